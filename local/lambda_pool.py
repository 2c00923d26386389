"""The parent side of the local Lambda: one pool of containers per function, each
container a process (lambda_runtime.py) with the function's own environment. A
container that overruns its timeout or dies is replaced, as Lambda replaces a failed
execution environment.

Containers are forked from one server process (multiprocessing's forkserver) that has
imported boto3 and botocore: a cold start still imports the handler and makes its
clients, but no longer starts an interpreter and imports boto3 (about 0.3 s of CPU)."""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import multiprocessing
import os
import socket
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path

from . import lambda_runtime

# What the container server imports once, for every container it forks.
PRELOAD = ["local.lambda_runtime", "boto3", "botocore.client"]
_server = None


def _container_server():
    global _server
    if _server is None:
        _server = multiprocessing.get_context("forkserver")
        _server.set_forkserver_preload(PRELOAD)
    return _server


class InvocationError(Exception):
    """The function failed: it raised, timed out, or its process died."""


class ContainerProcess:
    """A container's process, forked by the container server, with what Container uses
    of an asyncio subprocess: stdin, stdout, stderr, returncode, kill() and wait()."""

    def __init__(self, process, streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]):
        self._process, self._streams, self._returncode = process, streams, None
        self.stdin, self.stdout, self.stderr = streams[0][1], streams[1][0], streams[2][0]

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str]) -> ContainerProcess:
        ours, theirs = zip(*(socket.socketpair() for _ in range(3)), strict=True)
        process = _container_server().Process(
            target=lambda_runtime.main_in_fork, args=(argv, env, *theirs), name=argv[-1], daemon=True
        )
        try:
            await asyncio.to_thread(process.start)  # (the first start also starts the server)
        except BaseException:
            for sock in ours:
                sock.close()
            raise
        finally:
            for sock in theirs:
                sock.close()
        streams = [await asyncio.open_unix_connection(sock=sock, limit=16 * 1024 * 1024) for sock in ours]
        return cls(process, streams)

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._returncode if self._returncode is not None else self._process.exitcode

    def kill(self) -> None:
        if self._returncode is None:
            self._process.kill()

    async def wait(self) -> int:
        if self._returncode is None:
            loop = asyncio.get_running_loop()
            exited = loop.create_future()
            loop.add_reader(self._process.sentinel, lambda: exited.done() or exited.set_result(None))
            try:
                await exited
            finally:
                loop.remove_reader(self._process.sentinel)
            self._returncode = self._process.exitcode
            self._process.close()
        return self._returncode

    def close(self) -> None:
        """Once it has exited and its stderr is read: its sockets closed."""
        for _, writer in self._streams:
            writer.close()


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
        return self.proc is not None and self.proc.returncode is None

    async def start(self) -> None:
        self.proc = await ContainerProcess.start([self.handler, str(self.code_dir), self.name], self.env)
        self._stderr_task = asyncio.create_task(self._forward_stderr(self.proc))

    async def _forward_stderr(self, proc) -> None:
        async for line in proc.stderr:
            self.log(f"[{self.name}] {line.decode(errors='replace').rstrip()}")

    async def invoke(self, event: dict) -> dict:
        async with self.lock:
            if self.proc is None or self.proc.returncode is not None:
                try:
                    await self.start()
                except (OSError, EOFError) as exc:  # the container server died while forking it
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
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.returncode is None:
                proc.stdin.close()
                await asyncio.wait_for(proc.wait(), timeout=2)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            proc.kill()
        await proc.wait()
        if self._stderr_task:
            await asyncio.gather(self._stderr_task, return_exceptions=True)
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
