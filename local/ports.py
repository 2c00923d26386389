"""Ports on 127.0.0.1: a free one to listen on, and waiting until something listens."""

from __future__ import annotations

import asyncio
import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
