"""make cpu: the handlers' CPU time per action, and what it means for each memory size.

Starts the local stack (fresh data, one worker process per function) from a
synthesized dev-mode cdk.out, warms every action up, then runs each action N times,
one invocation at a time, and reads what the local Lambda runtime measured for each
invocation: its CPU time on all its threads (the handler's own code, botocore's, the
JSON), how long it took, its AWS requests and the capacity units DynamoDB reported.
Posts are real HTTP requests to the local gateway, as on AWS.

Then, for 256, 512 and 1,024 MB, a model of each action's billed duration and cost on
Lambda, where a function gets CPU in proportion to its memory (1,769 MB is one vCPU):
CPU time stretched by 1,769 / memory, plus the time spent waiting on the network
(measured here: the invocation's time less its CPU time). docs/performance.md says
what the model leaves out.

    python -m bench.cpu --cdk-out .local/bench/cdk.out [--runs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import websockets

from bench.bench import percentile, start_stack, units
from bench.prices import LAMBDA_ARM_GB_SECOND, LAMBDA_REQUEST, VCPU_MB, gb_seconds, lambda_ms
from local.waiting import until

ROOT = Path(__file__).resolve().parent.parent
MEMORY_MB = (256, 512, 1024, 1769)
WARMUP = 5


class Client:
    def __init__(self, ws):
        self.ws = ws
        self.inbox: asyncio.Queue = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, url: str, user: str, ack: bool = False) -> Client:
        return cls(await websockets.connect(f"{url}?userId={user}&ack={int(ack)}", max_size=None))

    async def _read(self):
        async for raw in self.ws:
            await self.inbox.put(json.loads(raw))

    async def send(self, frame: dict) -> None:
        await self.ws.send(json.dumps(frame))

    async def next(self, type_: str) -> dict:
        while (frame := await asyncio.wait_for(self.inbox.get(), 10))["type"] != type_:
            pass
        return frame

    async def close(self) -> None:
        await self.ws.close()
        self.reader.cancel()


class Meter:
    """Each invocation's figures, from the local stack's per-route counters."""

    def __init__(self, stack):
        self.stack = stack
        self.runs: dict[str, list[dict]] = {}
        self.record = False

    async def measure(self, name: str, route: str, act):
        """Run act() (a coroutine), which makes one invocation of route, and keep what it cost."""
        before = self.stack.stats().get(route, {})
        result = await act
        done = before.get("invocations", 0) + 1
        await until(lambda: self.stack.invocations(route) >= done, timeout=30, what=f"{name} handled")
        after = self.stack.stats()[route]
        if self.record:
            self.runs.setdefault(name, []).append({k: v - before.get(k, 0) for k, v in after.items()})
        return result

    async def frame(self, name: str, client: Client, frame: dict, reply: tuple[Client, str] | None = None):
        """One frame from client, and (if given) the frame of that type it makes come to that client."""

        async def act():
            await client.send(frame)
            return await reply[0].next(reply[1]) if reply else None

        return await self.measure(name, frame["action"], act())


async def scenario(stack, meter: Meter, runs: int) -> None:
    url = stack.url
    alice, bob = await Client.connect(url, "alice"), await Client.connect(url, "bob")
    carol = await Client.connect(url, "carol", ack=True)
    ids = (f"m{i}" for i in range(10**6))

    async def send(name: str, recipient: str, to: Client | None, **extra) -> dict:
        frame = {"action": "sendMessage", "messageId": next(ids), "recipientId": recipient, "content": "x" * 200}
        ack = await meter.frame(name, alice, frame | extra, (alice, "ack"))
        if to is not None:
            await to.next("message")
        return ack["data"]

    for i in range(WARMUP + runs):
        meter.record = i >= WARMUP
        # $connect and $disconnect of a device that does nothing else
        device = await meter.measure("$connect", "$connect", Client.connect(url, "erin"))
        await meter.measure("$disconnect", "$disconnect", device.close())

        ack = await send("sendMessage, online", "bob", bob)
        conversation = ack["conversationId"]
        to_carol = (await send("sendMessage, online in ack mode", "carol", carol))["messageId"]
        to_dave = (await send("sendMessage, offline", "dave", None))["messageId"]
        await send("sendMessage, a reply", "bob", bob, replyToMessageId=ack["messageId"])
        confirm = {"action": "markDelivered", "messageIds": [to_carol]}
        await meter.frame("markDelivered, 1 message", carol, confirm)
        await meter.frame("markRead, 1 message", bob, {"action": "markRead", "messageIds": [ack["messageId"]]})
        history = {"action": "history", "conversationId": conversation, "limit": 20}
        await meter.frame("history, 20 messages", bob, history, (bob, "history"))
        await meter.frame("conversations", bob, {"action": "conversations"}, (bob, "conversations"))
        presence = {"action": "presence", "userIds": ["alice", "carol"]}
        await meter.frame("presence, 2 users", bob, presence, (bob, "presence"))
        typing = {"action": "typing", "conversationId": conversation, "state": "start"}
        await meter.frame("typing", bob, typing, (alice, "typing"))
        await meter.frame("deleteMessage", alice, {"action": "deleteMessage", "messageId": to_dave})

        if i % 5 == 0:  # dave comes online to 10 messages, and syncs them (without ack mode)
            record, meter.record = meter.record, False
            for _ in range(10):
                await send("", "dave", None)
            meter.record = record
            dave = await Client.connect(url, "dave")
            await meter.frame("sync, 10 messages", dave, {"action": "sync"}, (dave, "syncComplete"))
            await dave.close()
    for client in (alice, bob, carol):
        await client.close()


def model(cpu_ms: float, wall_ms: float, memory_mb: int) -> tuple[float, float]:
    """(duration ms, $ per million invocations) on Lambda at this memory: the CPU time
    stretched where the function has less than a vCPU, plus the same network wait."""
    wait = max(0.0, wall_ms - cpu_ms)
    duration = lambda_ms(cpu_ms, wait, memory_mb)
    dollars = 1e6 * (gb_seconds(duration, memory_mb) * LAMBDA_ARM_GB_SECOND + LAMBDA_REQUEST)
    return duration, dollars


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdk-out", type=Path, required=True, help="a dev-mode (auth=dev) synthesized cdk.out")
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".local" / "cpu")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--write", action="store_true", help="and the table in docs/performance.md")
    args = parser.parse_args(argv)
    args.workers = 1
    stack = start_stack(args)
    meter = Meter(stack)
    try:
        asyncio.run(scenario(stack, meter, args.runs))
    finally:
        stack.stop()

    print(
        f"make cpu: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {args.runs} runs of each action, one at a time\n"
    )
    header = f"{'action':34} {'CPU p50':>8} {'p90':>6} {'time p50':>9} {'requests':>9} {'read u.':>8}"
    print(header + "".join(f" {f'{m} MB: ms, $/M':>19}" for m in MEMORY_MB))
    figures = {}
    for name, runs in meter.runs.items():
        cpu = [r["cpu_ms"] for r in runs]
        wall = [r["wall_ms"] for r in runs]
        requests = sum(v for r in runs for k, v in r.items() if k.startswith("dynamodb.")) / len(runs)
        reads = sum(units(r)[0] for r in runs) / len(runs)
        cpu_p50, wall_p50 = percentile(cpu, 50), percentile(wall, 50)
        curve = {m: model(cpu_p50, wall_p50, m) for m in MEMORY_MB}
        row = f"{name:34} {cpu_p50:8.2f} {percentile(cpu, 90):6.2f} {wall_p50:9.2f} {requests:9.1f} {reads:8.1f}"
        print(row + "".join(f" {d:9.1f} {c:9.2f}" for d, c in curve.values()))
        figures[name] = {
            "cpu_p50_ms": cpu_p50,
            "cpu_p90_ms": percentile(cpu, 90),
            "time_p50_ms": wall_p50,
            "dynamodb_requests": requests,
            "read_units": reads,
            "model": {m: {"duration_ms": d, "dollars_per_million": c} for m, (d, c) in curve.items()},
        }
    print(
        f"\nmodel: duration = CPU x max(1, {VCPU_MB} / memory) + (time - CPU); "
        f"$ = duration x GB x ${LAMBDA_ARM_GB_SECOND * 1e6:,.2f} per million GB-s "
        f"+ ${LAMBDA_REQUEST * 1e6:.2f} per million requests (arm64, bench/prices.py)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if args.write:
        DOC.write_text(BLOCK.sub(lambda m: m.group(1) + doc_table(figures, args.runs) + m.group(3), DOC.read_text()))
        print(f"written to {DOC}")
    return 0


DOC = ROOT / "docs" / "performance.md"
BLOCK = re.compile(r"(<!-- make-cpu:[^\n]*-->\n)(.*?)(\n<!-- /make-cpu -->)", re.S)


def documented(text: str) -> dict[str, float]:
    """Action -> DynamoDB requests, as docs/performance.md's make cpu table has them."""
    rows = (line.split(" | ") for line in BLOCK.search(text).group(2).splitlines() if line.startswith("| `"))
    return {cells[0].strip("| `").replace("`", ""): float(cells[3]) for cells in rows}


def doc_table(figures: dict, runs: int) -> str:
    """The table docs/performance.md shows, with when and on what it was measured."""
    git = ["git", "describe", "--always", "--dirty"]  # the commit measured, "-dirty" with changes on it
    commit = subprocess.run(git, cwd=ROOT, capture_output=True, text=True)  # noqa: S607 (git from PATH)
    out = [
        f"`make cpu RUNS={runs}`, {datetime.now(UTC):%Y-%m-%d}, commit {commit.stdout.strip() or 'unknown'}, "
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()} (p50 of {runs} runs; "
        "duration in ms and $ per million invocations, modelled):",
        "",
        "| action | CPU | time | requests | " + " | ".join(f"{m:,} MB" for m in MEMORY_MB) + " |",
        "|---|---|---|---|" + "---|" * len(MEMORY_MB),
    ]
    for name, f in figures.items():
        action, _, case = name.partition(", ")
        label = f"`{action}`, {case}" if case else f"`{action}`"
        requests = f["dynamodb_requests"]
        model_cells = [f"{c['duration_ms']:.1f}, ${c['dollars_per_million']:.2f}" for c in f["model"].values()]
        cells = [label, f"{f['cpu_p50_ms']:.2f}", f"{f['time_p50_ms']:.2f}", f"{requests:g}", *model_cells]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
