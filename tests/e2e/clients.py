"""A small WebSocket test client over the `websockets` library."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import websockets

TIMEOUT = 10


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.received: list[dict] = []

    @classmethod
    async def connect(cls, url: str, user: str | None = None, **query) -> Client:
        if user is not None:
            query["userId"] = user
        qs = "&".join(f"{k}={v}" for k, v in query.items())
        return cls(await websockets.connect(f"{url}?{qs}" if qs else url, max_size=None))

    async def send(self, frame) -> None:
        await self.ws.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def next(self, type_: str | None = None, timeout: float = TIMEOUT) -> dict:
        """The next frame (of a type, skipping others into .received)."""
        while True:
            frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            self.received.append(frame)
            if type_ is None or frame.get("type") == type_:
                return frame

    async def collect(self, n: int, type_: str, timeout: float = TIMEOUT) -> list[dict]:
        return [await self.next(type_, timeout) for _ in range(n)]

    async def synced(self, **fields) -> tuple[list[dict], dict]:
        """Send sync; every frame that comes before its syncComplete, and that one's data.
        Whatever was posted to this connection before the sync ran comes first (one
        connection's frames keep their order), so once the invocations that could post have
        returned, this shows all they sent."""
        await self.send({"action": "sync", **fields})
        frames = []
        while (frame := await self.next())["type"] != "syncComplete":
            frames.append(frame)
        return frames, frame["data"]

    async def close(self) -> None:
        await self.ws.close()


def run(coro):
    return asyncio.run(coro)


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains text (for checking nothing was left behind)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(pid))
    return found


def _stat(pid: int | str) -> list[str]:
    """/proc/<pid>/stat's fields after the command name: state, ppid, ... start time at [19]."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def descendants(pid: int) -> set[tuple[int, str]]:
    """The processes pid started, and theirs (dynalite, the container server, the
    containers), each as (pid, start time), so a pid the system reuses is not one of them."""
    children: dict[int, list[tuple[int, str]]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = _stat(entry)
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append((int(entry), fields[19]))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child[0])
    return found


def still_running(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of descendants()'s processes that have not ended (a zombie has)."""
    running = set()
    for pid, started in processes:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        if fields[19] == started and fields[0] != "Z":
            running.add((pid, started))
    return running


def connection_ids(stack) -> list[str]:
    """The connection ids the Connections table holds, not the users' lastSeen rows (a
    test-only look at the table)."""
    db = stack.dynamodb()
    table = next(t for t in db.list_tables()["TableNames"] if "Connections" in t)
    return [item["connectionId"]["S"] for item in db.scan(TableName=table)["Items"] if "userId" in item]
