"""make soak: the local stack under load while clients drop, vanish and reconnect.

N clients (one user each) send M messages in all to random other users. A share of them
(--ack-share) connect in ack mode and confirm each message they receive with
markDelivered, as an app does once it has stored it; with probability --drop-rate such
a client vanishes right after receiving a message, before confirming it (no close frame,
as when a phone loses its network). An ack-mode client may also drop right after a send,
before its ack can come, abruptly or cleanly. A client that dropped reconnects and syncs
on its next send; a send whose ack does not come is sent again with the same messageId.
Clients without ack mode stay connected: what is posted to such a connection as it goes
away may be lost, the documented limit of that mode (docs/protocol.md), so their drops
would prove nothing.

At the end every client syncs (and confirms) once more, and the run passes only if:
- no message is lost: each recipient's view, deduplicated by messageId, holds every
  message addressed to it exactly once, and nothing else;
- a recipient without ack mode got each message exactly once (the original promise);
- each message made exactly one transition to delivered, counted from the server's log;
- a sender whose connection stayed up from a send to the end heard "delivered" for that
  message exactly once: in its ack, or in one receipt. A send it had to send again on
  that connection (no ack within ACK_TIMEOUT_S: the local stack runs a connection's
  frames one after another, so an ack-mode client's send can queue behind many
  confirmations) is answered again by its retry's ack, by design: it must be told at
  least once.

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
from local.waiting import until

ACK_TIMEOUT_S = 30


class Client:
    """One user's app: one connection at a time, what it received, its unacked sends."""

    def __init__(self, name: str, url: str, ack: bool, drop_rate: float, rng: random.Random, stats: Counter):
        self.name, self.url, self.ack, self.drop_rate, self.rng, self.stats = name, url, ack, drop_rate, rng, stats
        self.received: Counter = Counter()  # messageId -> times this user got it
        self.delivered_notices: Counter = Counter()  # (connection number, messageId) -> delivered acks and receipts
        self.asked_again: set[tuple[int, str]] = set()  # (connection number, messageId) sent again on it
        self.connection = 0  # how many times this client has connected
        self.syncs = 0  # syncComplete frames on the current connection
        self.ws = None
        self.reader: asyncio.Task | None = None
        self.waiting: dict[str, asyncio.Future] = {}  # messageId -> its ack (or why not)

    @property
    def connected(self) -> bool:
        return self.reader is not None and not self.reader.done()

    async def connect(self) -> None:
        query = f"userId={self.name}" + ("&ack=1" if self.ack else "")
        self.ws = await websockets.connect(f"{self.url}?{query}", max_size=None, compression=None)
        self.connection += 1
        self.syncs = 0
        self.reader = asyncio.create_task(self._read(self.ws, self.connection))
        await self.ws.send(json.dumps({"action": "sync"}))

    async def _read(self, ws, connection: int) -> None:
        try:
            async for raw in ws:
                frame = json.loads(raw)
                kind, data = frame.get("type"), frame.get("data", {})
                if kind == "message" and data.get("recipientId") == self.name:
                    await self._on_message(ws, data["messageId"])
                elif kind == "syncComplete":
                    self.syncs += 1
                elif kind in ("ack", "error"):
                    self.stats[f"frames: {kind}" + (f" {data.get('code')}" if kind == "error" else "")] += 1
                    future = self.waiting.pop(data.get("messageId"), None)
                    if future and not future.done():
                        future.set_result(kind)
                if kind in ("ack", "receipt") and data.get("status") == "delivered":
                    self.delivered_notices[(connection, data["messageId"])] += 1
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            for future in self.waiting.values():
                if not future.done():
                    future.set_result("dropped")
            self.waiting.clear()

    async def _on_message(self, ws, message_id: str) -> None:
        self.received[message_id] += 1
        self.stats["frames: message"] += 1
        if not self.ack:
            return
        if self.rng.random() < self.drop_rate:  # gone before it could confirm
            self.stats["vanished before confirming"] += 1
            ws.transport.abort()
            return
        await ws.send(json.dumps({"action": "markDelivered", "messageIds": [message_id]}))

    async def drop(self, abrupt: bool) -> None:
        self.stats["drops after a send: abrupt" if abrupt else "drops after a send: clean"] += 1
        if abrupt:
            self.ws.transport.abort()  # no close frame: the server finds out on its own
        else:
            await self.ws.close()
        await self.reader

    async def send(self, message_id: str, recipient: str, drop_after: bool | None) -> int:
        """Until acknowledged: send, and on a drop or an error, reconnect and send again.
        drop_after (True: abruptly, False: cleanly) drops the connection right after the
        first send, before its ack can arrive. Returns the connection of the first send."""
        frame = json.dumps(
            {
                "action": "sendMessage",
                "messageId": message_id,
                "recipientId": recipient,
                "conversationId": f"{self.name}:{recipient}",
                "content": f"soak {message_id}",
            }
        )
        first = None
        for attempt in range(20):
            if attempt:
                self.stats["resends"] += 1
            if not self.connected:
                await self.connect()
            elif attempt:  # no ack in time on a live connection: the retry's ack says it again
                self.stats["resends on the same connection (ack timeout)"] += 1
                self.asked_again.add((self.connection, message_id))
            first = first or self.connection
            future = asyncio.get_running_loop().create_future()
            self.waiting[message_id] = future
            try:
                await self.ws.send(frame)
                if drop_after is not None and attempt == 0:
                    await self.drop(abrupt=drop_after)
                    await asyncio.sleep(self.rng.uniform(0, 0.3))  # the app's reconnect delay
                outcome = await asyncio.wait_for(future, ACK_TIMEOUT_S)
            except (websockets.exceptions.ConnectionClosed, TimeoutError):
                outcome = "dropped"
            if outcome == "ack":
                return first
            await asyncio.sleep(0.05 * attempt)  # the app's backoff
        raise RuntimeError(f"{message_id} was never acknowledged")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            await self.reader


def pending_messages(stack: Stack) -> int:
    """Messages no device has confirmed (a test-only look at the table)."""
    db = stack.dynamodb()
    table = next(t for t in db.list_tables()["TableNames"] if "Messages" in t)
    pages = db.get_paginator("scan").paginate(TableName=table, FilterExpression="attribute_exists(pendingFor)")
    return sum(page["Count"] for page in pages)


async def settled(stack: Stack) -> None:
    """Until no client frame is queued at the gateway and no invocation is running."""
    idle = {"frames": 0, "invocations": 0}
    await until(lambda: stack.in_flight() == idle, timeout=120, what="the local stack idle")


async def sync_all(clients: list[Client]) -> None:
    """Every client syncs on a live connection and has its syncComplete: everything posted to
    it before has arrived (one connection's frames keep their order)."""
    for client in clients:
        if client.connected:
            client.syncs = 0
            await client.ws.send(json.dumps({"action": "sync"}))
        else:
            await client.connect()
    await until(lambda: all(c.syncs >= 1 or not c.connected for c in clients), timeout=120, what="every sync done")


async def soak(stack: Stack, args) -> dict:
    rng = random.Random(args.seed)
    stats: Counter = Counter()
    ack_clients = round(args.clients * args.ack_share)  # the first ones
    clients = [
        Client(f"soak-{i:04d}", stack.url, i < ack_clients, args.drop_rate, random.Random(rng.random()), stats)
        for i in range(args.clients)
    ]
    for client in clients:
        await client.connect()
    plan: dict[str, list[tuple[str, str]]] = {c.name: [] for c in clients}
    for i in range(args.messages):
        sender, recipient = rng.sample(clients, 2)
        plan[sender.name].append((f"s-{i:06d}", recipient.name))
    expected = {mid: recipient for messages in plan.values() for mid, recipient in messages}
    first_sent_on: dict[str, tuple[Client, int]] = {}

    async def run_client(client: Client) -> None:
        for message_id, recipient in plan[client.name]:
            drop = client.ack and client.rng.random() < args.drop_rate
            abrupt = client.rng.random() < 0.5
            connection = await client.send(message_id, recipient, drop_after=abrupt if drop else None)
            first_sent_on[message_id] = (client, connection)

    started = time.perf_counter()
    await asyncio.gather(*(run_client(c) for c in clients))
    elapsed = time.perf_counter() - started

    # Everyone catches up: reconnect, sync, confirm, until no message is left unconfirmed.
    deadline = time.monotonic() + 120
    while True:
        await sync_all(clients)
        await settled(stack)
        if (left := await asyncio.to_thread(pending_messages, stack)) == 0 or time.monotonic() > deadline:
            break
    await sync_all(clients)  # receipts of the last confirmations are in before these syncCompletes
    connected_at_end = {c.name: c.connection for c in clients if c.connected}
    for client in clients:
        await client.close()

    views = {c.name: set(c.received) for c in clients}
    addressed: dict[str, set[str]] = {c.name: set() for c in clients}
    for mid, recipient in expected.items():
        addressed[recipient].add(mid)
    lost_ids = sorted(mid for name in addressed for mid in addressed[name] - views[name])
    unexpected = sum(len(views[name] - addressed[name]) for name in addressed)
    repeats = {
        mode: sum(n - 1 for c in clients if c.ack == (mode == "ack") for n in c.received.values() if n > 1)
        for mode in ("ack", "without_ack")
    }
    transitions = server_transitions(stack)
    # sends whose connection stayed up to the end; one sent again on it (no ack in time)
    # asked again, and its retry's ack rightly says it again, so it is only checked for "told"
    stayed = [(mid, client, connection) for mid, (client, connection) in first_sent_on.items()]
    stayed = [s for s in stayed if connected_at_end.get(s[1].name) == s[2]]
    watched = [(mid, c.delivered_notices[(n, mid)]) for mid, c, n in stayed if (n, mid) not in c.asked_again]
    asked = [(mid, c.delivered_notices[(n, mid)]) for mid, c, n in stayed if (n, mid) in c.asked_again]
    return {
        "clients": args.clients,
        "ack_clients": sum(c.ack for c in clients),
        "messages": args.messages,
        "elapsed_s": elapsed,
        "throughput": args.messages / elapsed,
        "lost": len(lost_ids),
        "lost_ids": lost_ids,
        "unexpected": unexpected,
        "left_unconfirmed": left,
        "repeats_ack": repeats["ack"],
        "repeats_without_ack": repeats["without_ack"],
        "transitions_not_one": sum(transitions[mid] != 1 for mid in expected),
        "transitions_max": max((transitions[mid] for mid in expected), default=0),
        "senders_watched": len(watched),
        "senders_not_told_once": sum(n != 1 for _, n in watched),
        "senders_not_told_once_ids": sorted(f"{mid}:{n}" for mid, n in watched if n != 1),  # messageId:times
        "senders_asked_again": len(asked),
        "senders_asked_again_never_told": sum(n == 0 for _, n in asked),
        "stats": dict(sorted(stats.items())),
    }


def server_transitions(stack: Stack) -> Counter:
    """messageId -> transitions to delivered, from the message function's log lines."""
    counts: Counter = Counter()
    for line in stack.log_text().splitlines():  # this run's: make soak reuses its state dir
        if '"event":"delivered"' in line:
            record = json.loads(line[line.index("{") :])
            counts[record["messageId"]] += 1
    return counts


def passed(result: dict) -> bool:
    failures = (
        "lost",
        "unexpected",
        "left_unconfirmed",
        "repeats_without_ack",
        "transitions_not_one",
        "senders_not_told_once",
        "senders_asked_again_never_told",
        "iam_denials",
    )
    return all(result[key] == 0 for key in failures)


def main(argv=None) -> int:
    parser = load_parser(__doc__, "soak", clients=200, messages=10_000)
    parser.add_argument("--drop-rate", type=float, default=0.01, help="chance of a drop after a send or a receive")
    parser.add_argument("--ack-share", type=float, default=0.5, help="share of clients in ack mode (0 to 1)")
    args = parser.parse_args(argv)
    if args.clients < 2 or args.messages < 1 or not 0 <= args.drop_rate < 1 or not 0 <= args.ack_share <= 1:
        parser.error("need at least 2 clients, 1 message, a drop rate in [0, 1) and an ack share in [0, 1]")

    stack = start_stack(args)
    try:
        result = asyncio.run(soak(stack, args))
    finally:
        stack.stop()
    result["iam_denials"] = len(stack.iam_denials())  # a call the template does not grant: it fails on AWS

    rows = [
        (
            "make soak",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
        ),
        (
            "load",
            f"{args.clients} clients ({result['ack_clients']} in ack mode), {args.messages} messages, "
            f"drop rate {args.drop_rate}, {args.workers} workers per function",
        ),
        ("throughput", f"{result['throughput']:.0f} messages/s ({result['elapsed_s']:.1f} s)"),
        ("events", ", ".join(f"{k} {v}" for k, v in result["stats"].items())),
        (
            "lost",
            f"{result['lost']} {' '.join(result['lost_ids'][:10])}, unexpected {result['unexpected']}, "
            f"left unconfirmed {result['left_unconfirmed']}, denied by IAM {result['iam_denials']}",
        ),
        (
            "repeats",
            f"ack mode {result['repeats_ack']} (deduped by messageId), without ack mode "
            f"{result['repeats_without_ack']} (must be 0)",
        ),
        (
            "delivered",
            f"transitions per message: at most {result['transitions_max']}, "
            f"{result['transitions_not_one']} messages not exactly 1",
        ),
        (
            "senders",
            f"{result['senders_watched']} sends whose connection stayed up: "
            f"{result['senders_not_told_once']} not told 'delivered' exactly once "
            + " ".join(result["senders_not_told_once_ids"][:10])
            + f"; {result['senders_asked_again']} sent again on it (no ack in {ACK_TIMEOUT_S} s), "
            f"{result['senders_asked_again_never_told']} of them never told",
        ),
    ]
    for label, text in rows:
        print(f"{label:<12}{text}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if passed(result) else 1


if __name__ == "__main__":
    sys.exit(main())
