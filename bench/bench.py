"""make bench: the local stack under load, beside the floor it cannot beat.

Starts the local stack (`python -m local run`, fresh data) from a synthesized dev-mode
cdk.out, connects N clients (one user each), and has every client send its share of M
messages to random other users, waiting for each ack before its next send, while all
of them receive at the same time. Then every client syncs, and the messages each one
got (live or on sync) are checked against what was sent.

It prints throughput, delivery latency (send -> the recipient's receive), ack latency,
DynamoDB requests per message (counted by the local stack's Lambda containers) and messages lost
or duplicated, which must be zero. The floor is measured on the same machine in the
same run: a raw WebSocket relay on loopback plus the two DynamoDB round trips a warm
send makes before the recipient can get the message, as the stack's server serves them
(PutItem its content and the two Queries for connections at once, then PutItem its row,
stored leased when it must be).

With --ack the clients connect in ack mode and confirm each message they receive, and
the DynamoDB requests per message include the confirmation's.

    python -m bench.bench --cdk-out .local/bench/cdk.out [--clients 100] [--messages 2000] [--ack]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import random
import sys
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import websockets

from local.defaults import WORKERS
from local.launcher import LocalStackProcess as Stack
from local.ports import free_port
from local.template import functions, load_assembly
from local.waiting import until

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 20  # rounds run first and not counted: first connections, JIT, caches

# ---- figures ------------------------------------------------------------------------


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def summary(values_ms: list[float]) -> str:
    return " ".join(f"p{p} {percentile(values_ms, p):6.2f}" for p in (50, 95, 99)) + " ms"


# ---- where the CPU goes ------------------------------------------------------------------


def units(stats: dict) -> tuple[float, float]:
    """(read, write) capacity units in a route's /@local/stats counters, which hold them
    per operation ("units.dynamodb.PutItem"); the writes are the local server's table
    units only."""
    read = sum(stats.get(f"units.dynamodb.{op}", 0) for op in ("GetItem", "Query", "BatchGetItem"))
    return read, sum(v for k, v in stats.items() if k.startswith("units.dynamodb.")) - read


def process_cpu(root_pid: int, functions: tuple[str, ...] = ()) -> dict[str, float]:
    """CPU seconds used so far by the local stack's processes, by part: the gateway (the
    launcher's process: WebSocket, @connections, the bus), the DynamoDB server, and each
    function's workers (and "other": the server they are forked from), named by their
    handler module (functions: the kernel keeps 15 bytes of a process's name, so "lambda
    disconnect" reads "lambda disconne"). From /proc (Linux); empty elsewhere."""
    proc = Path("/proc")
    if not proc.is_dir():
        return {}
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, str, str, float]] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        found[int(entry.name)] = (int(fields[1]), cmdline, comm, (int(fields[11]) + int(fields[12])) / tick)
    parts: Counter = Counter()
    for pid, (_ppid, cmdline, comm, seconds) in found.items():
        ancestor = pid
        while ancestor in found and ancestor != root_pid:
            ancestor = found[ancestor][0]
        if ancestor != root_pid:
            continue
        if pid == root_pid:
            part = "gateway"
        elif comm.startswith("lambda "):  # a container, named by local/lambda_runtime.py
            short = comm.split()[1]
            part = "function " + next((name for name in functions if name.startswith(short)), short)
        elif "dynalite" in cmdline or "node" in cmdline:
            part = "dynalite"
        else:
            part = "other"
        parts[part] += seconds
    return dict(parts)


# ---- the floor ----------------------------------------------------------------------------


def _relay_server(port: int, ready) -> None:
    """A raw relay: every frame from one client goes to the other one. Nothing else."""

    async def main():
        peers: list = []

        async def handle(ws):
            peers.append(ws)
            await ws.send("ready")  # now this client's frames reach the other one, and back
            async for frame in ws:
                for peer in peers:
                    if peer is not ws:
                        await peer.send(frame)

        async with websockets.serve(handle, "127.0.0.1", port, compression=None):
            ready.set()
            await asyncio.Future()

    asyncio.run(main())


async def relay_latency(rounds: int) -> list[float]:
    port = free_port()
    spawn = multiprocessing.get_context("spawn")  # not fork: the caller may have threads (boto3, pytest)
    ready = spawn.Event()
    server = spawn.Process(target=_relay_server, args=(port, ready), daemon=True)
    server.start()
    try:
        ready.wait(10)
        url = f"ws://127.0.0.1:{port}"
        async with websockets.connect(url, compression=None) as a, websockets.connect(url, compression=None) as b:
            assert await a.recv() == "ready" and await b.recv() == "ready"
            frame = json.dumps({"action": "sendMessage", "content": "x" * 64})
            times: list[float] = []
            for i in range(WARMUP + rounds):
                if i == WARMUP:
                    times.clear()
                start = time.perf_counter()
                await a.send(frame)
                await b.recv()
                times.append((time.perf_counter() - start) * 1000)
            return times
    finally:
        server.terminate()
        server.join()


def dynamodb_latency(stack: Stack, rounds: int) -> dict[str, list[float]]:
    """One request of each kind a warm send makes before delivery, on the stack's server
    as the message function reaches it (through IAM: local/iam.py)."""
    tables = stack.dynamodb().list_tables()["TableNames"]
    db = stack.functions_dynamodb()
    messages = next(t for t in tables if "Messages" in t)
    connections = next(t for t in tables if "Connections" in t)
    times: dict[str, list[float]] = defaultdict(list)
    pool = ThreadPoolExecutor(max_workers=2)

    def timed(name, fn, **kwargs):
        start = time.perf_counter()
        fn(**kwargs)
        times[name].append((time.perf_counter() - start) * 1000)

    for i in range(WARMUP + rounds):
        if i == WARMUP:
            times.clear()
        mid = f"floor-{i}"
        item = {
            "messageId": {"S": mid},
            "conversationId": {"S": "floor"},
            "sentAt": {"S": f"{i:08d}"},
            "status": {"S": "sent"},
            "pendingFor": {"S": "floor-user"},
            "content": {"S": "x" * 64},
        }
        timed(
            "PutItem", db.put_item, TableName=messages, Item=item, ConditionExpression="attribute_not_exists(messageId)"
        )
        query = {
            "TableName": connections,
            "IndexName": "connections-by-user",
            "KeyConditionExpression": "userId = :u",
            "ExpressionAttributeValues": {":u": {"S": "floor-user"}},
        }
        timed("Query", db.query, **query)
        # the first round of a send as the handler makes it: content and two lookups at once
        start = time.perf_counter()
        lookups = [pool.submit(db.query, **query) for _ in range(2)]
        db.put_item(TableName=messages, Item={**item, "messageId": {"S": mid + "-c"}})
        for lookup in lookups:
            lookup.result()
        times["round"].append((time.perf_counter() - start) * 1000)
        timed(
            "UpdateItem",
            db.update_item,
            TableName=messages,
            Key={"messageId": {"S": mid}},
            UpdateExpression="SET #s = :d REMOVE pendingFor",
            ConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "sent"}, ":d": {"S": "delivered"}},
        )
    pool.shutdown()
    return times


# ---- one message at a time ------------------------------------------------------------------


async def unloaded(stack: Stack, rounds: int, ack: bool) -> list[float]:
    """Delivery latency with nothing else going on: one sender, one recipient, one message
    in flight. This is the figure to hold against the floor. In ack mode the recipient
    confirms each message, and the next is sent once the sender has heard delivered."""
    mode = "&ack=1" if ack else ""
    connect = lambda user: websockets.connect(f"{stack.url}?userId={user}{mode}", compression=None)  # noqa: E731
    async with connect("solo-alice") as alice, connect("solo-bob") as bob:
        for ws in (alice, bob):
            await ws.send(json.dumps({"action": "sync"}))
            assert json.loads(await ws.recv())["type"] == "syncComplete"
        times: list[float] = []
        for i in range(WARMUP + rounds):
            if i == WARMUP:
                times.clear()
            frame = {
                "action": "sendMessage",
                "messageId": f"solo-{i:06d}",
                "conversationId": "solo",
                "recipientId": "solo-bob",
                "content": "x" * 64,
            }
            start = time.perf_counter()
            await alice.send(json.dumps(frame))
            assert json.loads(await bob.recv())["data"]["messageId"] == frame["messageId"]
            times.append((time.perf_counter() - start) * 1000)
            if ack:
                await bob.send(json.dumps({"action": "markDelivered", "messageIds": [frame["messageId"]]}))
            heard = {json.loads(await alice.recv())["type"] for _ in range(2 if ack else 1)}
            assert heard == ({"ack", "receipt"} if ack else {"ack"}), heard
        return times


# ---- the load ----------------------------------------------------------------------------


class User:
    def __init__(self, name: str, ws, ack: bool):
        self.name, self.ws, self.ack = name, ws, ack
        self.received: Counter = Counter()  # messageId -> times received
        self.acks: dict[str, asyncio.Future] = {}
        self.syncs = 0  # syncComplete frames received
        self.errors: list[dict] = []

    async def read(self, sent_at: dict[str, float], delivery_ms: list[float]) -> None:
        async for raw in self.ws:
            frame = json.loads(raw)
            kind, data = frame.get("type"), frame.get("data", {})
            if kind == "message":
                mid = data["messageId"]
                self.received[mid] += 1
                if mid in sent_at and self.received[mid] == 1:
                    delivery_ms.append((time.perf_counter() - sent_at[mid]) * 1000)
                if self.ack:  # stored: confirm it, as an app does
                    await self.ws.send(json.dumps({"action": "markDelivered", "messageIds": [mid]}))
            elif kind == "syncComplete":
                self.syncs += 1
            elif kind == "ack" and data["messageId"] in self.acks:
                self.acks.pop(data["messageId"]).set_result(data["status"])
            elif kind == "error":
                self.errors.append(data)
                future = self.acks.pop(data.get("messageId"), None)
                if future:
                    future.set_result("error")


async def load(stack: Stack, n_clients: int, n_messages: int, seed: int, ack: bool, rate: float | None = None) -> dict:
    """Closed loop (each client waits for its ack before its next send) unless rate: then
    the messages go out at that many per second in all, whatever the acks (open loop)."""
    rng = random.Random(seed)
    users = [User(f"bench-{i:04d}", None, ack) for i in range(n_clients)]
    mode = "&ack=1" if ack else ""
    for user in users:
        user.ws = await websockets.connect(f"{stack.url}?userId={user.name}{mode}", max_size=None, compression=None)
    sent_at: dict[str, float] = {}
    delivery_ms: list[float] = []
    ack_ms: list[float] = []
    readers = [asyncio.create_task(u.read(sent_at, delivery_ms)) for u in users]
    for user in users:  # the sync a client sends after connecting (and it warms each connection)
        await user.ws.send(json.dumps({"action": "sync"}))
    await until(lambda: all(u.syncs == 1 for u in users), timeout=60, what="every client's first syncComplete")

    plan: dict[str, list[tuple[str, str]]] = defaultdict(list)  # sender -> [(messageId, recipient)]
    for i in range(n_messages):
        sender, recipient = rng.sample(users, 2)
        plan[sender.name].append((f"m-{i:06d}", recipient.name))
    expected = {mid: recipient for messages in plan.values() for mid, recipient in messages}
    statuses: Counter = Counter()

    async def send(user: User, mid: str, recipient: str) -> str:
        """One message to the pair's own conversation; its ack's status."""
        future = asyncio.get_running_loop().create_future()
        user.acks[mid] = future
        frame = {
            "action": "sendMessage",
            "messageId": mid,
            "recipientId": recipient,
            "content": f"hello {mid} " + "x" * 48,
        }
        await user.ws.send(json.dumps(frame))
        return await asyncio.wait_for(future, 60)

    async def sender(user: User) -> None:
        for mid, recipient in plan[user.name]:
            sent_at[mid] = start = time.perf_counter()
            statuses[await send(user, mid, recipient)] += 1
            ack_ms.append((time.perf_counter() - start) * 1000)

    # each conversation exists, and is known to the sender's container, before measuring:
    # a first message costs more (README)
    pairs = sorted({(user, recipient) for user in users for _, recipient in plan[user.name]}, key=lambda p: p[0].name)
    for i, (user, recipient) in enumerate(pairs):
        await send(user, f"w-{i:06d}", recipient)
    ready = {"sendMessage": len(pairs), **({"markDelivered": len(pairs)} if ack else {})}
    await until(
        lambda: all(stack.invocations(route) >= n for route, n in ready.items()), timeout=60, what="the warm-up done"
    )
    idle = {"frames": 0, "invocations": 0}  # and nothing of it still queued or running
    await until(lambda: stack.in_flight() == idle, timeout=60, what="the local stack idle after the warm-up")

    async def paced(user: User, mid: str, recipient: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.perf_counter()))
        sent_at[mid] = start = time.perf_counter()
        statuses[await send(user, mid, recipient)] += 1
        ack_ms.append((time.perf_counter() - start) * 1000)

    handlers = tuple(spec["handler"].rsplit(".", 1)[0] for spec in functions(load_assembly(stack.cdk_out)[1]).values())
    before, cpu_before = stack.stats(), process_cpu(stack.proc.pid, handlers)
    started = time.perf_counter()
    if rate:
        by_id = sorted((mid, user, recipient) for user in users for mid, recipient in plan[user.name])
        await asyncio.gather(*(paced(u, mid, r, started + i / rate) for i, (mid, u, r) in enumerate(by_id)))
    else:
        await asyncio.gather(*(sender(u) for u in users))
    # every live delivery is posted before its ack, so by now they are all on the wire
    elapsed = time.perf_counter() - started
    # an invocation is counted when it returns, a little after its ack: read once all have
    sent = before.get("sendMessage", {}).get("invocations", 0) + n_messages
    await until(lambda: stack.invocations("sendMessage") >= sent, timeout=60, what="every send's invocation done")
    if ack:  # and every confirmation, which is part of what a message costs in ack mode
        confirmed = before.get("markDelivered", {}).get("invocations", 0) + n_messages
        await until(lambda: stack.invocations("markDelivered") >= confirmed, timeout=60, what="every confirmation")
    after, cpu_after = stack.stats(), process_cpu(stack.proc.pid, handlers)
    cpu_ms = {part: (s - cpu_before.get(part, 0)) * 1000 / n_messages for part, s in cpu_after.items()}

    for user in users:  # anything not delivered live arrives now, before each syncComplete
        await user.ws.send(json.dumps({"action": "sync"}))
    await until(lambda: all(u.syncs == 2 for u in users), timeout=60, what="every client's last syncComplete")
    by_name = {u.name: u for u in users}
    for user in users:
        await user.ws.close()
    await asyncio.gather(*readers, return_exceptions=True)

    lost = [mid for mid, recipient in expected.items() if by_name[recipient].received[mid] == 0]
    duplicated = [mid for mid, recipient in expected.items() if by_name[recipient].received[mid] > 1]
    spent: Counter = Counter()  # by the sends (and in ack mode their confirmations) of the timed load
    for route in ("sendMessage", "markDelivered"):
        route_before, route_after = before.get(route, {}), after.get(route, {})
        spent.update({k: v - route_before.get(k, 0) for k, v in route_after.items()})
    dynamodb = +Counter({k: v for k, v in spent.items() if k.startswith("dynamodb.")})  # drop the zeros
    read_units, write_units = units(spent)
    return {
        "elapsed_s": elapsed,
        "throughput": n_messages / elapsed,
        "delivery_ms": delivery_ms,
        "ack_ms": ack_ms,
        "acks": dict(statuses),
        "dynamodb_per_message": sum(dynamodb.values()) / n_messages,
        "dynamodb_by_operation": {k.removeprefix("dynamodb."): v / n_messages for k, v in sorted(dynamodb.items())},
        "read_units_per_message": read_units / n_messages,
        "table_write_units_per_message": write_units / n_messages,
        "handler_cpu_ms_per_message": spent["cpu_ms"] / n_messages,
        "process_cpu_ms_per_message": dict(sorted(cpu_ms.items(), key=lambda kv: -kv[1])),
        "lost": len(lost),
        "duplicated": len(duplicated),
        "errors": sum(len(u.errors) for u in users),
    }


# ---- main ----------------------------------------------------------------------------------


def load_parser(doc: str, name: str, clients: int, messages: int) -> argparse.ArgumentParser:
    """The options make bench and make soak share."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--cdk-out", type=Path, required=True, help="a dev-mode (auth=dev) synthesized cdk.out")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local" / name)
    parser.add_argument("--clients", type=int, default=clients)
    parser.add_argument("--messages", type=int, default=messages)
    parser.add_argument("--workers", type=int, default=WORKERS, help="worker processes per function")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def start_stack(args) -> Stack:
    """The local stack with fresh data, or exit saying why it did not start."""
    stack = Stack(args.cdk_out, args.state_dir, "--fresh", "--workers", str(args.workers))
    try:
        return stack.start()
    except RuntimeError as exc:
        sys.exit(str(exc))


def main(argv=None) -> int:
    parser = load_parser(__doc__, "bench", clients=100, messages=2000)
    parser.add_argument("--floor-rounds", type=int, default=300)
    parser.add_argument("--ack", action="store_true", help="clients in ack mode, confirming what they receive")
    parser.add_argument("--rate", type=float, help="send this many messages per second in all (open loop)")
    args = parser.parse_args(argv)
    if args.clients < 2 or args.messages < 1:
        parser.error("need at least 2 clients and 1 message")

    relay = asyncio.run(relay_latency(args.floor_rounds))
    stack = start_stack(args)
    try:
        db = dynamodb_latency(stack, args.floor_rounds)
        solo = asyncio.run(unloaded(stack, args.floor_rounds, args.ack))
        result = asyncio.run(load(stack, args.clients, args.messages, args.seed, args.ack, args.rate))
    finally:
        stack.stop()
    result["iam_denials"] = len(stack.iam_denials())  # a call the template does not grant: it fails on AWS

    relay_p50 = percentile(relay, 50)
    # what a send must do before the recipient's post, in two rounds: store what it says
    # while looking up connections, then store its row; the confirmation comes after
    db_p50 = {op: percentile(db[op], 50) for op in ("PutItem", "Query", "UpdateItem")}
    # the first round as this server serves it: dynalite works through requests one at a
    # time, so three at once take about as long as three in a row (DynamoDB overlaps them)
    round_p50 = percentile(db["round"], 50)
    floor = relay_p50 + round_p50 + db_p50["PutItem"]
    solo_p50 = percentile(solo, 50)
    ops = ", ".join(f"{op} {n:.2f}" for op, n in result["dynamodb_by_operation"].items())
    sequential = db_p50["PutItem"] + 2 * db_p50["Query"]
    floor_parts = (
        f"PutItem and 2 Queries at once {round_p50:.2f} ({sequential:.2f} one after another) "
        f"+ PutItem {db_p50['PutItem']:.2f}"
    )
    rows = [
        (
            "make bench",
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}",
        ),
        ("one at a time", f"delivery {summary(solo)} ({len(solo)} messages, one in flight)"),
        ("floor", f"{floor:.2f} ms = relay p50 {relay_p50:.2f} + DynamoDB p50 {floor_parts}"),
        ("ratio", f"one-at-a-time delivery p50 / floor = {solo_p50 / floor:.2f} (aim: under 2)"),
        (
            "load",
            f"{args.clients} clients{' in ack mode' if args.ack else ''}, {args.messages} messages"
            f"{f', offered at {args.rate:g}/s' if args.rate else ', each waiting for its ack'}, "
            f"{args.workers} workers per function",
        ),
        ("throughput", f"{result['throughput']:.0f} messages/s ({result['elapsed_s']:.1f} s)"),
        ("delivery", f"{summary(result['delivery_ms'])} ({len(result['delivery_ms'])} delivered live)"),
        ("ack", f"{summary(result['ack_ms'])} (acks: {result['acks']})"),
        ("dynamodb", f"{result['dynamodb_per_message']:.2f} requests per message ({ops})"),
        (
            "units",
            f"{result['read_units_per_message']:.2f} read units per message, "
            f"{result['table_write_units_per_message']:.2f} write units on tables (this server does not count "
            "index entries: make units)",
        ),
        ("handler CPU", f"{result['handler_cpu_ms_per_message']:.2f} ms per message, in the message function"),
        (
            "stack CPU",
            "ms per message: "
            + ", ".join(f"{part} {ms:.2f}" for part, ms in result["process_cpu_ms_per_message"].items())
            + f" (total {sum(result['process_cpu_ms_per_message'].values()):.2f}, {os.cpu_count()} cores)",
        ),
        (
            "lost",
            f"{result['lost']}, duplicated {result['duplicated']}, error frames {result['errors']}, "
            f"denied by IAM {result['iam_denials']}",
        ),
    ]
    for label, text in rows:
        print(f"{label:<14}{text}")
    if args.json:
        figures = {k: v for k, v in result.items() if not k.endswith("_ms")}
        figures.update(
            delivery={f"p{p}": percentile(result["delivery_ms"], p) for p in (50, 95, 99)},
            ack={f"p{p}": percentile(result["ack_ms"], p) for p in (50, 95, 99)},
            one_at_a_time={f"p{p}": percentile(solo, p) for p in (50, 95, 99)},
            floor={
                "total": floor,
                "relay_p50": relay_p50,
                "first_round_p50": round_p50,
                **{f"{op}_p50": ms for op, ms in db_p50.items()},
            },
        )
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if result["lost"] == result["duplicated"] == result["iam_denials"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
