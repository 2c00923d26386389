"""The request counts the docs give, recomputed: each is what the handlers do now, so a
change that makes an action cheaper or dearer fails here until the docs say so (the
README's table of requests per action, docs/performance.md's `make cpu` and `make bench`
tables). Counted on moto, as tests/unit/test_request_counts.py counts."""

from __future__ import annotations

import re
from pathlib import Path

from bench import cpu
from harness import send_frame

ROOT = Path(__file__).resolve().parents[2]


def counted(chat, action) -> int:
    chat.requests.reset()
    action()
    return chat.requests.total


def make_cpu_scenario(chat) -> dict[str, int]:
    """bench/cpu.py's scenario, warm, on moto: its action -> DynamoDB requests."""
    alice, bob, carol = chat.online("alice"), chat.online("bob"), chat.online("carol", ack=True)
    ids = iter(range(10**6))
    found: dict[str, int] = {}

    def send(name, recipient, **extra) -> dict:
        frame = send_frame(f"m{next(ids)}", recipient, "x" * 200, **extra)
        found[name] = counted(chat, lambda: chat.send(alice, frame))
        return chat.take(alice)[-1]["data"]

    for _ in range(2):  # the first time warms the containers and makes the conversations
        devices = []
        found["$connect"] = counted(chat, lambda devices=devices: devices.append(chat.online("erin")))
        found["$disconnect"] = counted(chat, lambda devices=devices: chat.disconnect(devices[0]))
        ack = send("sendMessage, online", "bob")
        to_carol = send("sendMessage, online in ack mode", "carol")["messageId"]
        to_dave = send("sendMessage, offline", "dave")["messageId"]
        send("sendMessage, a reply", "bob", replyToMessageId=ack["messageId"])
        frames = {
            "markDelivered, 1 message": (carol, {"action": "markDelivered", "messageIds": [to_carol]}),
            "markRead, 1 message": (bob, {"action": "markRead", "messageIds": [ack["messageId"]]}),
            "history, 20 messages": (bob, {"action": "history", "conversationId": ack["conversationId"], "limit": 20}),
            "conversations": (bob, {"action": "conversations"}),
            "presence, 2 users": (bob, {"action": "presence", "userIds": ["alice", "carol"]}),
            "typing": (bob, {"action": "typing", "conversationId": ack["conversationId"], "state": "start"}),
            "deleteMessage": (alice, {"action": "deleteMessage", "messageId": to_dave}),
        }
        for name, (who, frame) in frames.items():
            found[name] = counted(chat, lambda who=who, frame=frame: chat.send(who, frame))
        for _ in range(10):
            send("", "dave")
        dave = chat.online("dave")
        found["sync, 10 messages"] = counted(chat, lambda dave=dave: chat.send(dave, {"action": "sync"}))
        chat.disconnect(dave)
    del found[""]
    return found


def test_the_make_cpu_tables_request_counts_are_what_the_handlers_make(chat):
    documented = cpu.documented((ROOT / "docs" / "performance.md").read_text())
    assert documented == make_cpu_scenario(chat)


def readme_requests() -> dict[str, str]:
    """The README's "DynamoDB requests per action" table: row -> its requests cell."""
    section = (ROOT / "README.md").read_text().split("## DynamoDB requests per action", 1)[1].split("\n## ", 1)[0]
    rows = (line.split(" | ") for line in section.splitlines() if line.startswith("| `"))
    return {cells[0].removeprefix("| "): cells[1] for cells in rows}


def test_the_readmes_requests_per_action_are_what_the_handlers_make(chat):
    alice, bob, carol = chat.online("alice"), chat.online("bob"), chat.online("carol", ack=True)
    for peer in ("bob", "carol", "dave"):  # each conversation exists; every cache is warm below
        chat.send(alice, send_frame(f"first-{peer}", peer))

    def cold_and_warm(recipient: str, n: int) -> str:
        chat.new_container()
        cold = counted(chat, lambda: chat.send(alice, send_frame(f"c{n}", recipient)))
        warm = counted(chat, lambda: chat.send(alice, send_frame(f"w{n}", recipient)))
        return f"{cold} cold, {warm} warm"

    readme = readme_requests()
    assert readme["`$connect`"] == str(counted(chat, lambda: chat.online("erin")))
    assert readme["`$disconnect`"] == str(counted(chat, lambda: chat.disconnect("conn-4")))
    assert readme["`sendMessage`, recipient online in ack mode"] == cold_and_warm("carol", 1)
    assert readme["`sendMessage`, recipient online without ack mode"] == cold_and_warm("bob", 2)
    retry = counted(chat, lambda: chat.send(alice, send_frame("w2", "bob")))
    assert readme["`sendMessage`, a retry"] == f"{retry} warm"
    assert readme["`sendMessage`, recipient offline"] == cold_and_warm("dave", 3)
    delete = counted(chat, lambda: chat.send(alice, {"action": "deleteMessage", "messageId": "w3"}))
    assert readme["`deleteMessage`, R replies quoting it"] == f"{delete} + R warm"  # here R = 0
    mallory = chat.online("mallory")
    chat.send(mallory, send_frame("m-warm", "bob"))
    conflict = counted(chat, lambda: chat.send(mallory, send_frame("w2", "bob")))
    assert readme["`sendMessage`, another sender's messageId (CONFLICT)"] == f"{conflict} warm"
    chat.new_container()
    conversation = chat.message("w2")["conversationId"]
    typing = counted(
        chat, lambda: chat.send(bob, {"action": "typing", "conversationId": conversation, "state": "start"})
    )
    assert sum(map(int, readme["`typing`"].split(" + "))) == typing  # cold: the caller and the pair looked up
    chat.new_container()
    history = counted(chat, lambda: chat.send(bob, {"action": "history", "conversationId": conversation}))
    assert sum(map(int, readme["`history`, a page"].split(" + "))) == history
    assert carol  # (online throughout: the ack-mode recipient)


def test_the_bench_tables_requests_per_message_are_what_a_warm_send_makes(chat):
    # docs/performance.md gives, beside what make bench measured, what one warm message costs
    text = (ROOT / "docs" / "performance.md").read_text()
    [plain] = re.findall(r"(\d+) per warm send, without ack mode", text)
    [ack] = re.findall(r"(\d+) per warm send in ack mode, with its confirmation", text)
    alice, bob, carol = chat.online("alice"), chat.online("bob"), chat.online("carol", ack=True)
    for peer in ("bob", "carol"):
        chat.send(alice, send_frame(f"first-{peer}", peer))
    chat.send(carol, {"action": "markDelivered", "messageIds": ["first-carol"]})
    assert int(plain) == counted(chat, lambda: chat.send(alice, send_frame("m1", "bob")))
    sent = counted(chat, lambda: chat.send(alice, send_frame("m2", "carol")))
    confirmed = counted(chat, lambda: chat.send(carol, {"action": "markDelivered", "messageIds": ["m2"]}))
    assert int(ack) == sent + confirmed
    assert bob
