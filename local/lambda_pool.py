"""The parent side of the local Lambda: one pool of containers per function, each
container a process (lambda_runtime.py) with the function's own environment. A
container that overruns its timeout or dies is replaced, as Lambda replaces a failed
execution environment.

Containers are forked from one server process (container_server.py) that has imported
boto3 and botocore: a cold start still imports the handler and makes its clients, but
no longer starts an interpreter and imports boto3 (about 0.3 s of CPU)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import os
import select
import signal
import socket
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

from . import container_server

# How long a cold start may wait for its process (the container server's own start,
# boto3's import, included): a server that hangs (stopped, starved) is replaced after it.
START_TIMEOUT_S = 20.0


class InvocationError(Exception):
    """The function failed: it raised, timed out, or its process died."""


class ContainerProcess:
    """A container's process, forked by the container server (not this process's child,
    so waited on through a pidfd), with its stdin, stdout and stderr as streams."""

    def __init__(self, pid: int, streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]):
        self.pid, self._streams, self._exited = pid, streams, False
        self.stdin, self.stdout, self.stderr = streams[0][1], streams[1][0], streams[2][0]
        try:
            self._pidfd: int | None = os.pidfd_open(pid)
        except (AttributeError, OSError):  # not Linux (exited then polls), or it has exited
            self._pidfd = None

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str]) -> ContainerProcess:
        """A new container. A container server that hangs is replaced after START_TIMEOUT_S
        and the new one asked once more: it costs that cold start the wait, not its frame."""
        for _ in range(2):
            (server_pid, streams), hello = await cls._fork(argv, env), None
            try:
                hello = await asyncio.wait_for(streams[1][0].readline(), START_TIMEOUT_S)
            except TimeoutError:
                container_server.server.replace(server_pid)  # it hangs
            finally:
                if not hello:  # (and if cancelled: the container, if it starts, reads the end of its stdin)
                    for _, writer in streams:
                        writer.close()
            if hello:
                return cls(json.loads(hello)["pid"], streams)
            if hello == b"":
                why = "its process ended first (the container server's errors are in the log)"
                raise InvocationError(f"the container did not start: {why}")
        raise InvocationError(
            f"the container did not start: not within {START_TIMEOUT_S:g} s, from two container servers"
        )

    @staticmethod
    async def _fork(
        argv: list[str], env: dict[str, str]
    ) -> tuple[int, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
        """Asks the container server for a process: the server's pid, and the process's
        stdin, stdout and stderr."""
        ours, theirs = zip(*(socket.socketpair() for _ in range(3)), strict=True)
        try:
            server_pid = container_server.server.fork(argv, env, [sock.fileno() for sock in theirs])
        except BaseException:
            for sock in ours:
                sock.close()
            raise
        finally:
            for sock in theirs:
                sock.close()
        return server_pid, [await asyncio.open_unix_connection(sock=sock, limit=16 * 1024 * 1024) for sock in ours]

    @property
    def exited(self) -> bool:
        if not self._exited:
            if self._pidfd is not None:
                self._exited = bool(select.select([self._pidfd], [], [], 0)[0])
            else:
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    self._exited = True
        return self._exited

    def kill(self) -> None:
        if not self.exited:
            try:
                if self._pidfd is not None:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                else:
                    os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def wait(self, timeout: float) -> bool:
        """Whether it has exited, within timeout seconds."""
        loop = asyncio.get_running_loop()
        if self._pidfd is not None and not self.exited:
            readable = loop.create_future()
            loop.add_reader(self._pidfd, lambda: readable.done() or readable.set_result(None))
            try:
                await asyncio.wait_for(readable, timeout)
            except TimeoutError:
                pass
            finally:
                loop.remove_reader(self._pidfd)
        deadline = loop.time() + timeout
        while not self.exited and self._pidfd is None and loop.time() < deadline:
            await asyncio.sleep(0.02)  # (no pidfd: not Linux)
        return self.exited

    def close(self) -> None:
        """Once it has exited and its stderr is read: its sockets and its pidfd closed."""
        for _, writer in self._streams:
            writer.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd, self._exited = None, True


class Container:
    """One Lambda execution environment: a process that runs one invocation at a time."""

    def __init__(self, name: str, handler: str, code_dir: Path, env: dict[str, str], timeout_s: float, log):
        # absolute: the container process runs elsewhere and changes into this directory
        self.name, self.handler, self.code_dir = name, handler, Path(code_dir).resolve()
        self.env, self.timeout_s, self.log = env, timeout_s, log
        self.proc: ContainerProcess | None = None
        self.lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._stderr_task: asyncio.Task | None = None
        # route key -> {"invocations": n, "service.Operation": n, ...}
        self.stats: defaultdict[str, Counter] = defaultdict(Counter)

    @property
    def warm(self) -> bool:
        """Started (its process runs), so an invocation pays no cold start."""
        return self.proc is not None and not self.proc.exited

    async def start(self) -> None:
        self.proc = await ContainerProcess.start([self.handler, str(self.code_dir), self.name], self.env)
        self._stderr_task = asyncio.create_task(self._forward_stderr(self.proc))

    async def _forward_stderr(self, proc) -> None:
        async for line in proc.stderr:
            self.log(f"[{self.name}] {line.decode(errors='replace').rstrip()}")

    async def invoke(self, event: dict) -> dict:
        async with self.lock:
            if self.proc is None or self.proc.exited:
                await self.stop()
                try:
                    await self.start()
                except OSError as exc:  # the container server could not be started or asked
                    raise InvocationError(f"the container did not start: {type(exc).__name__}: {exc}") from None
            request_id = next(self._ids)
            deadline_ms = time.time() * 1000 + self.timeout_s * 1000
            line = json.dumps({"id": request_id, "event": event, "deadline_ms": deadline_ms}) + "\n"
            try:
                self.proc.stdin.write(line.encode())
                await self.proc.stdin.drain()
                raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout=self.timeout_s)
            except TimeoutError:
                self.log(f"[{self.name}] Task timed out after {self.timeout_s:.2f} seconds")
                self.proc.kill()  # at once, as Lambda does: nothing of it may run past its deadline
                await self.stop()
                raise InvocationError("Task timed out") from None
            except (BrokenPipeError, ConnectionResetError):
                raw = b""
            if not raw:
                await self.stop()
                raise InvocationError("Runtime exited")
            reply = json.loads(raw)
            stats = self.stats[event.get("requestContext", {}).get("routeKey", "?")]
            stats["invocations"] += 1
            stats.update(reply.get("calls", {}))
            stats["cpu_ms"] += reply.get("cpu_ms", 0)
            stats["wall_ms"] += reply.get("wall_ms", 0)
            if "error" in reply:
                raise InvocationError(f"{reply['error']['errorType']}: {reply['error']['errorMessage']}")
            return reply["result"]

    async def stop(self) -> None:
        """Its process ended: asked (the end of its stdin), then killed after 2 s. Bounded
        throughout, even if the process or its server is stopped (SIGSTOP)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.stdin.close()
        if not await proc.wait(2):
            proc.kill()
            if not await proc.wait(5):
                self.log(f"[{self.name}] process {proc.pid} has not ended 5 s after SIGKILL; left to the system")
        if self._stderr_task:  # its last lines (a process it started may hold its stderr: 1 s at most)
            done, _ = await asyncio.wait({self._stderr_task}, timeout=1)
            if not done:
                self._stderr_task.cancel()
            self._stderr_task = None
        proc.close()


class FunctionPool:
    """Invocations for one function, each on a container that is not busy, as Lambda
    runs each on an execution environment of its own: a connection's frames can run at
    the same time on two containers. One container starts with the pool; the others
    start when an invocation finds every started one busy (a cold start), as Lambda
    scales out, up to `size` (Lambda's would be its concurrency; at the limit an
    invocation waits for the first free). A key (a connection id) prefers one warm
    container, so its caches stay warm, as Lambda tends to reuse an environment; if that
    one is busy, any idle warm one takes it."""

    def __init__(self, name: str, spec: dict, code_dir: Path, env: dict[str, str], size: int, log):
        self.name = name
        self.in_flight = 0
        self.containers = [
            Container(f"{name}#{i}" if size > 1 else name, spec["handler"], code_dir, env, float(spec["timeout"]), log)
            for i in range(size)
        ]
        self._idle = list(self.containers)
        self._waiting: collections.deque[asyncio.Future] = collections.deque()

    async def start(self) -> None:
        await self.containers[0].start()

    async def _take(self, key: str) -> Container:
        warm = [c for c in self.containers if c.warm] or self.containers[:1]
        preferred = warm[zlib.crc32(key.encode()) % len(warm)]
        if preferred in self._idle:
            self._idle.remove(preferred)
            return preferred
        if self._idle and not self._waiting:  # a warm one if any is idle, else a cold start
            container = next((c for c in self._idle if c.warm), self._idle[0])
            self._idle.remove(container)
            return container
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:  # (_give_back skips a waiter cancelled before it was given one)
            if waiter.done() and not waiter.cancelled():
                self._give_back(waiter.result())
            raise

    def _give_back(self, container: Container) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(container)
                return
        self._idle.append(container)

    async def invoke(self, event: dict, key: str) -> dict:
        self.in_flight += 1  # waiting for a container, or running
        try:
            container = await self._take(key)
            try:
                return await container.invoke(event)
            finally:
                self._give_back(container)
        finally:
            self.in_flight -= 1

    async def stop(self) -> None:
        await asyncio.gather(*(c.stop() for c in self.containers))

    async def reset(self) -> None:
        """Cold again, with no figures: every container stopped, then one started, as at start."""
        await self.stop()
        for container in self.containers:
            container.stats.clear()
        await self.start()

    def stats(self) -> dict[str, dict[str, float]]:
        """Per route key: invocations, the AWS calls they made, the capacity units and the
        CPU time they used, summed over containers."""
        total: defaultdict[str, Counter] = defaultdict(Counter)
        for container in self.containers:
            for route, counts in container.stats.items():
                total[route].update(counts)
        return {route: dict(counts) for route, counts in total.items()}


def base_environment() -> dict[str, str]:
    """What every container inherits from this process: nothing that could reach AWS."""
    keep = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "SYSTEMROOT", "LOCAL_PROFILE")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env.update(
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",  # noqa: S106 (fake: the endpoints are local)
        AWS_EC2_METADATA_DISABLED="true",
        PYTHONDONTWRITEBYTECODE="1",  # keep cdk.out's asset copy byte-identical
        PYTHONUNBUFFERED="1",
    )
    return env
