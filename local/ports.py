"""Ports on 127.0.0.1: a free one to listen on, and waiting until something listens."""

from __future__ import annotations

import asyncio
import random
import socket
from pathlib import Path


def free_port() -> int:
    """A port nothing listens on, for a server that binds it soon after. Taken below the
    kernel's ephemeral range, which the stack's own outgoing connections (to dynalite, to
    the gateway) draw their local ports from: a port from that range (bind to 0) could be
    taken by one of them before the server binds it, and the server then fails to start."""
    low = _ephemeral_low()
    for _ in range(100):
        port = random.randrange(10_000, low)  # noqa: S311 (not a secret)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # a machine whose range starts low: what the kernel gives
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768  # Linux's default; macOS starts at 49152
    return max(low, 10_001)


async def wait_for_port(port: int, timeout_s: float, proc=None) -> None:
    """Until 127.0.0.1:port accepts a connection; fails early if proc has exited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return
        except OSError:
            if proc is not None and proc.returncode is not None:
                raise RuntimeError(f"the process serving port {port} exited with {proc.returncode}") from None
            if loop.time() > deadline:
                raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout_s:.0f}s") from None
            await asyncio.sleep(0.05)
