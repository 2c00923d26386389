"""make soak: the local stack under load while clients drop and reconnect.

N clients (one user each) send M messages in all to random other users. Right after a
send, before its ack can come, a client may drop its connection (with probability
--drop-rate): abruptly (no close frame, as when a phone loses its network) or cleanly;
then it waits a moment, reconnects and sends `sync`, as the apps do. A send whose ack
does not come (the connection dropped, or the server answered INTERNAL) is sent again
with the same messageId, as the apps do.
At the end every client syncs once more, and each message must have reached its
recipient exactly once, live or on sync.

    python -m bench.soak --cdk-out .local/soak/cdk.out [--clients 200] [--messages 10000]
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime

import websockets

from bench.bench import Stack, load_parser, start_stack

ACK_TIMEOUT_S = 30


class Client:
    """One user's app: one connection at a time, everything it received, its unacked sends."""

    def __init__(self, name: str, url: str, stats: Counter):
        self.name, self.url, self.stats = name, url, stats
        self.received: Counter = Counter()  # messageId -> times this user got it
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.waiting: dict[str, asyncio.Future] = {}  # messageId -> its ack (or why not)

    async def connect(self) -> None:
        self.ws = await websockets.connect(f"{self.url}?userId={self.name}", max_size=None, compression=None)
        self.reader = asyncio.create_task(self._read(self.ws))
        await self.ws.send(json.dumps({"action": "sync"}))

    async def _read(self, ws) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind, data = frame.get("type"), frame.get("data", {})
                if kind == "message" and data.get("recipientId") == self.name:
                    self.received[data["messageId"]] += 1
                    self.stats["frames: message"] += 1
                elif kind in ("ack", "error"):
                    self.stats[f"frames: {kind}" + (f" {data.get('code')}" if kind == "error" else "")] += 1
                    future = self.waiting.pop(data.get("messageId"), None)
                    if future and not future.done():
                        future.set_result(kind)
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_result("dropped")
            self.waiting.clear()

    async def drop(self, abrupt: bool) -> None:
        self.stats["drops: abrupt" if abrupt else "drops: clean"] += 1
        if abrupt:
            self.ws.transport.abort()  # no close frame: the server finds out on its own
        else:
            await self.ws.close()
        await self.reader

    async def send(self, message_id: str, recipient: str, drop_after: bool | None = None) -> None:
        """Until acknowledged: send, and on a drop or an error, reconnect and send again.
        drop_after (True: abruptly, False: cleanly) drops the connection right after the
        first send, before its ack can arrive."""
        frame = json.dumps(
            {
                "action": "sendMessage",
                "messageId": message_id,
                "recipientId": recipient,
                "conversationId": f"{self.name}:{recipient}",
                "content": f"soak {message_id}",
            }
        )
        for attempt in range(20):
            if attempt:
                self.stats["resends"] += 1
            if self.reader is None or self.reader.done():
                await self.connect()
            future = asyncio.get_running_loop().create_future()
            self.waiting[message_id] = future
            try:
                await self.ws.send(frame)
                if drop_after is not None and attempt == 0:
                    await self.drop(abrupt=drop_after)
                    await asyncio.sleep(random.uniform(0, 0.3))  # noqa: S311
                outcome = await asyncio.wait_for(future, ACK_TIMEOUT_S)
            except (websockets.exceptions.ConnectionClosed, TimeoutError):
                outcome = "dropped"
            if outcome == "ack":
                return
            await asyncio.sleep(0.05 * attempt)
        raise RuntimeError(f"{message_id} was never acknowledged")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


async def soak(stack: Stack, n_clients: int, n_messages: int, drop_rate: float, seed: int) -> dict:
    rng = random.Random(seed)
    stats: Counter = Counter()
    clients = [Client(f"soak-{i:04d}", stack.url, stats) for i in range(n_clients)]
    for client in clients:
        await client.connect()
    plan: dict[str, list[tuple[str, str]]] = {c.name: [] for c in clients}
    for i in range(n_messages):
        sender, recipient = rng.sample(clients, 2)
        plan[sender.name].append((f"s-{i:06d}", recipient.name))
    expected = {mid: recipient for messages in plan.values() for mid, recipient in messages}

    async def run_client(client: Client, crng: random.Random) -> None:
        for message_id, recipient in plan[client.name]:
            drop = crng.random() < drop_rate
            await client.send(message_id, recipient, drop_after=(crng.random() < 0.5) if drop else None)

    started = time.perf_counter()
    await asyncio.gather(*(run_client(c, random.Random(rng.random())) for c in clients))
    elapsed = time.perf_counter() - started

    # everyone syncs once more, then waits until nothing more arrives
    for client in clients:
        if client.reader is None or client.reader.done():
            await client.connect()
        else:
            await client.ws.send(json.dumps({"action": "sync"}))
    quiet_since, last = time.monotonic(), -1
    while time.monotonic() - quiet_since < 2:
        total = sum(sum(c.received.values()) for c in clients)
        if total != last:
            quiet_since, last = time.monotonic(), total
        await asyncio.sleep(0.1)
    for client in clients:
        await client.close()

    by_name = {c.name: c for c in clients}
    times = Counter(by_name[recipient].received[mid] for mid, recipient in expected.items())
    return {
        "clients": n_clients,
        "messages": n_messages,
        "elapsed_s": elapsed,
        "throughput": n_messages / elapsed,
        "lost": times[0],
        "duplicated": sum(n for k, n in times.items() if k > 1),
        "unexpected": sum(sum(c.received.values()) for c in clients) - sum(k * n for k, n in times.items()),
        "stats": dict(sorted(stats.items())),
    }


def main(argv=None) -> int:
    parser = load_parser(__doc__, "soak", clients=200, messages=10_000)
    parser.add_argument("--drop-rate", type=float, default=0.01, help="chance of a drop right after each send")
    args = parser.parse_args(argv)
    if args.clients < 2 or args.messages < 1 or not 0 <= args.drop_rate < 1:
        parser.error("need at least 2 clients, 1 message and a drop rate in [0, 1)")

    stack = start_stack(args)
    try:
        result = asyncio.run(soak(stack, args.clients, args.messages, args.drop_rate, args.seed))
    finally:
        stack.stop()

    rows = [
        (
            "make soak",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
        ),
        (
            "load",
            f"{args.clients} clients, {args.messages} messages, drop rate {args.drop_rate}, "
            f"{args.workers} workers per function",
        ),
        ("throughput", f"{result['throughput']:.0f} messages/s ({result['elapsed_s']:.1f} s)"),
        ("events", ", ".join(f"{k} {v}" for k, v in result["stats"].items())),
        ("lost", f"{result['lost']}, duplicated {result['duplicated']}, unexpected {result['unexpected']}"),
    ]
    for label, text in rows:
        print(f"{label:<12}{text}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["lost"] == result["duplicated"] == result["unexpected"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
