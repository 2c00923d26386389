"""docs/cost.md's tables: dollars per million messages, from what each message's life
really does, counted on the handlers, and bench/prices.py.

    make cost         (python -m bench.cost --write, with lambda_src and tests importable)

The counts come from running the handlers on moto (tests/harness.py), one message's
life at a time, for each kind of recipient: the Lambda invocations, the frames in and
out of API Gateway, the DynamoDB read and write units (bench/write_units.py applies
DynamoDB's rules to the items each request really reads or writes), the push events,
and the bytes each invocation logs. Lambda's duration per invocation is the one thing
not counted here: it is `make cpu`'s measurement, pinned in DURATION_MS with its date.
tests/unit/test_cost.py recounts everything and checks docs/cost.md against it.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from bench import prices
from bench.write_units import ReadMeter, WriteMeter, quiet

MEMORY_MB = 1024  # stacks/config.py's default memoryMb
# make cpu, 2026-11-27 (docs/performance.md, "Memory"): per invocation, (CPU p50, time
# p50) in ms on this machine; at MEMORY_MB Lambda runs the CPU part 1,769 / 1,024 slower.
MEASURED_MS = {
    "$connect": (2.41, 3.83),
    "$disconnect": (4.43, 6.81),
    "sendMessage": (17.17, 27.94),  # to a device without ack mode, the longest of the three
    "markDelivered": (7.87, 13.11),
    "markRead": (9.68, 16.13),
    "sync": (92.10, 160.04),  # a sync of SYNC_BATCH messages: each of them carries a tenth
}
LAMBDA_PLATFORM_LOG_BYTES = 350  # Lambda's own START, END and REPORT lines per invocation, about
CLOUDWATCH_LOGS_GB = 0.50  # ingestion, standard class: https://aws.amazon.com/cloudwatch/pricing/
CONTENT_BYTES = 200  # what a message says, in the lives counted here
SYNC_BATCH = 10  # messages waiting when an offline device syncs


def duration_ms(action: str) -> float:
    cpu, time = MEASURED_MS[action]
    return prices.lambda_ms(cpu, time - cpu, MEMORY_MB)


@dataclass
class Tally:
    """What some steps of a message's life cost: counts, and the Lambda time they took."""

    invocations: float = 0
    gb_seconds: float = 0
    frames: float = 0  # in and out, each up to 32 KB
    read_units: float = 0
    write_units: float = 0
    events: float = 0
    log_bytes: float = 0

    def __add__(self, other: Tally) -> Tally:
        return Tally(**{k: getattr(self, k) + getattr(other, k) for k in vars(self)})

    def __mul__(self, share: float) -> Tally:
        return Tally(**{k: v * share for k, v in vars(self).items()})

    def dollars(self) -> dict[str, float]:
        """Per message, by line of the bill."""
        return {
            "API Gateway messages": self.frames * prices.WEBSOCKET_MESSAGE,
            "Lambda requests": self.invocations * prices.LAMBDA_REQUEST,
            "Lambda GB-seconds": self.gb_seconds * prices.LAMBDA_ARM_GB_SECOND,
            "DynamoDB writes": self.write_units * prices.DYNAMODB_WRITE_UNIT,
            "DynamoDB reads": self.read_units * prices.DYNAMODB_READ_UNIT,
            "EventBridge events": self.events * prices.EVENTBRIDGE_EVENT,
            "CloudWatch Logs": self.log_bytes / 1e9 * CLOUDWATCH_LOGS_GB,
        }


class Counted:
    """The handlers on moto, with every meter on: each step() returns what it cost."""

    def __init__(self, chat):
        self.chat = chat
        self.writes, self.reads = WriteMeter(chat.client), ReadMeter(chat.client)

    def posted(self) -> int:
        return sum(len(frames) for frames in self.chat.api.received.values())

    def step(self, action: str, run, *, frames_in: int = 1) -> Tally:
        self.writes.take(), self.reads.take()
        posts, events, log = self.posted(), len(self.chat.events.entries), io.StringIO()
        with contextlib.redirect_stdout(log):
            run()
        return Tally(
            invocations=1,
            gb_seconds=prices.gb_seconds(duration_ms(action), MEMORY_MB),
            frames=frames_in + self.posted() - posts,
            read_units=sum(self.reads.take().values()),
            write_units=sum(self.writes.take().values()),
            events=len(self.chat.events.entries) - events,
            log_bytes=len(_steady(log.getvalue()).encode()) + LAMBDA_PLATFORM_LOG_BYTES,
        )


# times in the log lines, whose printed width varies by a character or two from run to
# run: counted at a fixed, typical width, so the byte counts are the same every run
_TIMES = {"ts": "1795000000.123", "Duration": "12.345", "Timestamp": "1795000000123"}


def _steady(log: str) -> str:
    return re.sub(r'"(ts|Duration|Timestamp)":[0-9.]+', lambda m: f'"{m[1]}":{_TIMES[m[1]]}', log)


def lives(chat) -> dict[str, Tally]:
    """One message's life to each kind of recipient, from the send to markRead (the
    sender and the recipient each with one device; the conversation exists already)."""
    from harness import send_frame

    counted = Counted(chat)
    alice = chat.online("alice")
    phone, ack_phone = chat.online("bob"), chat.online("carol", ack=True)
    ids = iter(range(10**6))

    def send(to: str, name: str | None = None) -> tuple[str, Tally]:
        message_id = name or f"m{next(ids)}"
        frame = send_frame(message_id, to, "x" * CONTENT_BYTES)
        return message_id, counted.step("sendMessage", lambda: chat.send(alice, frame))

    def read(connection: str, message_id: str) -> Tally:
        frame = {"action": "markRead", "messageIds": [message_id]}
        return counted.step("markRead", lambda: chat.send(connection, frame))

    def confirm(connection: str, message_id: str) -> Tally:
        frame = {"action": "markDelivered", "messageIds": [message_id]}
        return counted.step("markDelivered", lambda: chat.send(connection, frame))

    for peer in ("bob", "carol", "dave", "erin"):  # each conversation exists, nothing pending
        chat.send(alice, send_frame(f"first-{peer}", peer))
    chat.send(ack_phone, {"action": "markDelivered", "messageIds": ["first-carol"]})
    for user, ack in (("dave", False), ("erin", True)):
        device = chat.online(user, ack=ack)
        chat.send(device, {"action": "sync"})
        chat.send(device, {"action": "markDelivered", "messageIds": [f"first-{user}"]})
        chat.disconnect(device)

    found: dict[str, Tally] = {}
    live, sent = send("bob")
    found["live, without ack mode"] = sent + read(phone, live)
    live, sent = send("carol")
    found["live, ack mode"] = sent + confirm(ack_phone, live) + read(ack_phone, live)
    for user, ack in (("dave", False), ("erin", True)):
        waiting = [send(user) for _ in range(SYNC_BATCH)]
        device = chat.online(user, ack=ack)
        synced = counted.step("sync", lambda device=device: chat.send(device, {"action": "sync"}))
        later = synced * (1 / SYNC_BATCH)
        message_id, sent = waiting[0]  # one of them, with its share of the sync
        life = sent + later + (confirm(device, message_id) if ack else Tally()) + read(device, message_id)
        found[f"offline, {'ack mode' if ack else 'without ack mode'}"] = life
        chat.disconnect(device)
    return found


def sessions(chat) -> Tally:
    """One connection's $connect and $disconnect."""
    counted = Counted(chat)
    holder: list[str] = []
    opened = counted.step("$connect", lambda: holder.append(chat.online("frank")), frames_in=0)
    closed = counted.step("$disconnect", lambda: chat.disconnect(holder[0]), frames_in=0)
    return opened + closed


@dataclass(frozen=True)
class Profile:
    name: str
    about: str
    shares: dict[str, float]  # kind of recipient -> share of messages
    sessions_per_message: float  # connections opened (and closed) per message sent
    minutes_per_message: float  # connection minutes per message sent (both users' connections)


PROFILES = (
    Profile(
        "Web chat",
        "browsers without ack mode, open all day: 95 % of messages reach a live device; a user keeps "
        "one connection 8 hours a day (two sessions) and sends 100 messages",
        {"live, without ack mode": 0.95, "offline, without ack mode": 0.05},
        sessions_per_message=2 / 100,
        minutes_per_message=480 / 100,
    ),
    Profile(
        "Mobile app",
        "phones in ack mode, as docs/protocol.md asks: half the messages reach a live device, half wait "
        "for the app to open (a push, then sync); a user opens the app 10 times (30 minutes) a day "
        "and sends 40 messages",
        {"live, ack mode": 0.5, "offline, ack mode": 0.5},
        sessions_per_message=10 / 40,
        minutes_per_message=30 / 40,
    ),
    Profile(
        "Notifications first",
        "phones in ack mode that are rarely open: 90 % of messages wait for a push and a sync; a user "
        "opens the app 5 times (10 minutes) a day and sends 10 messages",
        {"live, ack mode": 0.1, "offline, ack mode": 0.9},
        sessions_per_message=5 / 10,
        minutes_per_message=10 / 10,
    ),
)


def per_message(profile: Profile, found: dict[str, Tally], session: Tally) -> dict[str, float]:
    """$ per message under a profile, by line of the bill."""
    tally = Tally()
    for kind, share in profile.shares.items():
        tally += found[kind] * share
    tally += session * profile.sessions_per_message
    bill = tally.dollars()
    bill["API Gateway connection minutes"] = profile.minutes_per_message * prices.WEBSOCKET_CONNECTION_MINUTE
    return bill


# ---- the design of aws-samples/simple-websockets-chat-app, for comparison ---------------------
# Its sendmessage function Scans the connections table (every connection, ids only) on
# each message and posts the message to every connection, at 256 MB (its template.yaml).
# Nothing is stored, so there is no sync, receipt or push. Its duration is estimated, not
# measured: the Scan, and each post's CPU, taken to be what one of our requests costs in
# a send (make cpu: 17.17 ms of CPU for 9 requests, about 1.9 ms each), 6.9 times slower
# at 256 MB, plus one network wait.
SCAN_DESIGN_MB = 256
CPU_PER_CALL_MS = 1.9
NETWORK_WAIT_MS = 10.0
SCAN_ITEM_BYTES = len("connectionId") + 28  # an API Gateway connection id is 16 characters; a margin


def scan_design(connected: int, profile: Profile) -> dict[str, float]:
    """$ per message sent when `connected` connections are open, by line of the bill."""
    scanned = connected * SCAN_ITEM_BYTES
    scan_pages = max(1, math.ceil(scanned / (1024 * 1024)))

    def invocation(requests: int) -> float:  # GB-seconds
        return prices.gb_seconds(
            prices.lambda_ms(requests * CPU_PER_CALL_MS, NETWORK_WAIT_MS, SCAN_DESIGN_MB), SCAN_DESIGN_MB
        )

    send_gb_seconds = invocation(scan_pages + connected)
    session_gb_seconds = 2 * invocation(1)  # $connect's PutItem, $disconnect's DeleteItem
    sessions = profile.sessions_per_message
    return {
        "API Gateway messages": (1 + connected) * prices.WEBSOCKET_MESSAGE,
        "API Gateway connection minutes": profile.minutes_per_message * prices.WEBSOCKET_CONNECTION_MINUTE,
        "Lambda requests": (1 + 2 * sessions) * prices.LAMBDA_REQUEST,
        "Lambda GB-seconds": (send_gb_seconds + sessions * session_gb_seconds) * prices.LAMBDA_ARM_GB_SECOND,
        "DynamoDB writes": 2 * sessions * prices.DYNAMODB_WRITE_UNIT,  # put and delete a connection
        "DynamoDB reads": 0.5 * max(1, math.ceil(scanned / 4096)) * prices.DYNAMODB_READ_UNIT,
        "EventBridge events": 0.0,
        "CloudWatch Logs": (1 + 2 * sessions) * LAMBDA_PLATFORM_LOG_BYTES / 1e9 * CLOUDWATCH_LOGS_GB,
    }


CONNECTED = (10, 100, 1000)


def measure(template: dict | None = None) -> tuple[dict[str, Tally], Tally]:
    """Each profile's message lives and a session, counted on the handlers over moto, from
    the dev-mode template (synthesized in-process if not given)."""
    import boto3
    from moto import mock_aws

    from harness import Chat

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if template is None:
        from synth import synth

        template = synth(auth="dev")[1].to_json()
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        chat = Chat(client, template)
        found = lives(chat)
        session = sessions(chat)
    return found, session


LINES = (
    "API Gateway messages",
    "API Gateway connection minutes",
    "Lambda requests",
    "Lambda GB-seconds",
    "DynamoDB writes",
    "DynamoDB reads",
    "EventBridge events",
    "CloudWatch Logs",
)


def tables(found: dict[str, Tally], session: Tally) -> str:
    """docs/cost.md's generated tables, as markdown."""
    out = ["| per message | " + " | ".join(found) + " | a session ($connect, $disconnect) |"]
    out.append("|---|" + "---|" * (len(found) + 1))
    for field, label in (
        ("invocations", "Lambda invocations"),
        ("gb_seconds", "Lambda GB-seconds"),
        ("frames", "API Gateway messages (in and out)"),
        ("write_units", "DynamoDB write units"),
        ("read_units", "DynamoDB read units"),
        ("events", "EventBridge events"),
        ("log_bytes", "log bytes"),
    ):
        cells = [getattr(t, field) for t in (*found.values(), session)]
        fmt = "{:.5f}" if field == "gb_seconds" else "{:.0f}" if field == "log_bytes" else "{:g}"
        out.append(f"| {label} | " + " | ".join(fmt.format(round(c, 5)) for c in cells) + " |")
    out.append("")
    out.append("| $ per million messages | " + " | ".join(p.name for p in PROFILES) + " |")
    out.append("|---|" + "---|" * len(PROFILES))
    bills = [per_message(p, found, session) for p in PROFILES]
    for line in LINES:
        out.append(f"| {line} | " + " | ".join(f"{bill[line] * 1e6:.2f}" for bill in bills) + " |")
    out.append("| **total** | " + " | ".join(f"**{sum(bill.values()) * 1e6:.2f}**" for bill in bills) + " |")
    out.append("")
    web = PROFILES[0]
    out.append(
        f"| $ per million messages, {web.name}'s sessions | this stack | "
        + " | ".join(f"Scan design, {n:,} connected" for n in CONNECTED)
        + " |"
    )
    out.append("|---|---|" + "---|" * len(CONNECTED))
    ours = bills[0]
    scans = [scan_design(n, web) for n in CONNECTED]
    for line in LINES:
        cells = [ours[line], *(s[line] for s in scans)]
        out.append(f"| {line} | " + " | ".join(f"{c * 1e6:,.2f}" for c in cells) + " |")
    totals = [sum(ours.values()), *(sum(s.values()) for s in scans)]
    out.append("| **total** | " + " | ".join(f"**{t * 1e6:,.2f}**" for t in totals) + " |")
    return "\n".join(out)


DOC = Path(__file__).resolve().parent.parent / "docs" / "cost.md"
BLOCK = re.compile(r"(<!-- cost-tables:[^\n]*-->\n)(.*?)(\n<!-- /cost-tables -->)", re.S)


def documented(text: str) -> str:
    """The tables as docs/cost.md has them."""
    return BLOCK.search(text).group(2)


def main(argv: list[str]) -> None:
    """Print the tables; with --write, put them in docs/cost.md."""
    with quiet():  # the handlers' log lines and the synth's notices: not what this command is for
        generated = tables(*measure())
    print(generated)
    if "--write" in argv:
        DOC.write_text(BLOCK.sub(lambda m: m.group(1) + generated + m.group(3), DOC.read_text()))
        print(f"\nwritten to {DOC}")


if __name__ == "__main__":
    main(sys.argv[1:])
