"""The push hand-off: a stored message that reached no live device of its recipient
becomes one event on the stack's bus, which a rule routes to APNs or FCM. The sender
never waits for it or hears of its failure, and the message waits for sync either way."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from test_logs_and_metrics import lines, metrics

from harness import Chat, ack, messages, send_frame, sync_complete
from local.template import event_buses

EXPECTED_DETAIL_KEYS = {"recipientId", "messageId", "conversationId", "senderId", "senderName", "sentAt"}


def test_a_message_to_an_offline_recipient_is_handed_off_once_naming_it_but_not_what_it_says(chat, dev_template):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", "meet at 6", senderName="Alice"))
    assert chat.take(alice) == [ack("m1", "sent")]
    (entry,) = chat.events.entries
    (bus,) = event_buses(dev_template).values()
    assert (entry["EventBusName"], entry["Source"], entry["DetailType"]) == (
        bus,
        "realtime-messaging",
        "MessageWaiting",
    )
    stored = chat.message("m1")
    assert entry["Detail"] == {key: stored[key] for key in EXPECTED_DETAIL_KEYS}
    assert entry["Detail"]["senderName"] == "Alice" and "content" not in entry["Detail"]
    chat.send(alice, send_frame("m1", "bob", "meet at 6", senderName="Alice"))  # a retry
    assert len(chat.events.entries) == 1


def test_with_push_preview_the_event_carries_the_content(dynamodb, dev_template):
    chat = Chat(dynamodb, dev_template, env_overrides={"PUSH_PREVIEW": "true"})
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", "meet at 6 🙂"))
    assert chat.events.details()[0]["content"] == "meet at 6 🙂"


def test_a_message_a_live_device_got_is_not_handed_off(chat):
    alice, _bob, _carol = chat.online("alice"), chat.online("bob"), chat.online("carol", ack=True)
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, send_frame("m2", "carol"))  # ack mode: the frame was posted, the device confirms it
    assert chat.events.entries == []


def test_a_recipient_whose_only_connection_died_without_a_close_gets_a_push(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.api.gone.add(bob)  # API Gateway answers 410
    chat.later(60)  # long past its handshake
    chat.send(alice, send_frame("m1", "bob"))
    assert [d["messageId"] for d in chat.events.details()] == ["m1"]
    assert [c["connectionId"] for c in chat.items("connections") if "connectionId" in c] == [alice]


def test_a_note_to_self_and_refused_sends_hand_off_nothing(chat):
    alice, mallory = chat.online("alice"), chat.online("mallory")
    chat.send(alice, send_frame("m1", "alice"))  # alice's other devices are offline: no push to herself
    chat.send(alice, send_frame("m2", "bob"))
    chat.send(mallory, send_frame("m2", "bob"))  # CONFLICT: alice's id
    chat.send(mallory, send_frame("m3", "bob", senderId="alice"))  # FORBIDDEN
    chat.send(mallory, send_frame("m4", "bob", "x" * 20_000))  # longer than maxContentBytes
    assert [d["messageId"] for d in chat.events.details()] == ["m2"]
    assert [f["data"]["code"] for f in chat.take(mallory)] == ["CONFLICT", "FORBIDDEN", "BAD_REQUEST"]


def test_the_hand_off_comes_after_the_senders_ack(chat):
    alice = chat.online("alice")
    seen_by_alice = []
    chat.events.before_put = lambda: seen_by_alice.append(list(chat.frames(alice)))
    chat.send(alice, send_frame("m1", "bob"))
    assert seen_by_alice == [[ack("m1", "sent")]]


def test_an_entry_refused_as_throttled_is_tried_once_more(chat):
    chat.events.refusing = ["ThrottlingException"]
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    assert [d["messageId"] for d in chat.events.details()] == ["m1"]


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        ("eventbridge down", "AccessDeniedException"),
        ("throttled twice", "ThrottlingException"),
        ("refused", "InvalidArgument"),  # not worth a retry
    ],
)
def test_a_failed_hand_off_is_counted_and_the_message_still_acked_and_synced(chat, failure, code, capsys):
    chat.events.down = failure == "eventbridge down"
    chat.events.refusing = {"throttled twice": [code, code], "refused": [code, "never asked"]}.get(failure, [])
    alice = chat.online("alice")
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob"))
    records = lines(capsys)
    assert [r["awsErrorCode"] for r in records if r.get("event") == "push_failed"] == [code]
    assert [(r["PushEvents"], r["FailedPushEvents"]) for r in metrics(records)] == [(0, 1)]
    assert chat.events.refusing == {"refused": ["never asked"]}.get(failure, [])  # one retry, only if throttled
    assert chat.take(alice) == [ack("m1", "sent")]
    assert chat.events.entries == []
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    frames = chat.take(bob)
    assert messages(frames) == ["m1"] and sync_complete(frames)["count"] == 1


def test_hand_offs_are_counted_and_a_failure_logs_why_without_the_content(dynamodb, dev_template, capsys):
    chat = Chat(dynamodb, dev_template, env_overrides={"PUSH_PREVIEW": "true"})
    alice = chat.online("alice")
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob", "secret plans"))
    chat.events.down = True
    chat.send(alice, send_frame("m2", "bob", "secret plans"))
    records = lines(capsys)
    emf = metrics(records)
    assert [(r["PushEvents"], r["FailedPushEvents"]) for r in emf] == [(1, 0), (0, 1)]
    (failed,) = [r for r in records if r.get("event") == "push_failed"]
    assert failed["awsErrorCode"] == "AccessDeniedException"
    assert all("secret plans" not in json.dumps(r) for r in records)


def test_the_message_function_refuses_to_run_without_its_bus(dev_template):
    with mock_aws():
        import boto3

        chat = Chat(
            boto3.client("dynamodb", region_name="us-east-1"), dev_template, env_overrides={"EVENT_BUS_NAME": ""}
        )
        alice = chat.online("alice")
        with pytest.raises(KeyError, match="EVENT_BUS_NAME"):
            chat.send(alice, send_frame("m1", "bob"))


def test_a_message_a_racing_sync_delivered_is_not_pushed(chat):
    # Given bob's phone (ack mode) whose socket is dead, and his laptop without ack mode
    alice, phone, laptop = chat.online("alice"), chat.online("bob", ack=True), chat.online("bob")
    chat.later(60)
    chat.api.gone.add(phone)
    synced = []

    def laptop_syncs(connection_id):  # while alice's send posts to the dead phone
        if connection_id == phone and not synced:
            synced.append(chat.send(laptop, {"action": "sync"}))

    chat.api.before_post = laptop_syncs
    chat.send(alice, send_frame("m1", "bob"))
    # Then the laptop got it from its sync, once, and the send, finding it taken, pushes nothing
    assert messages(chat.frames(laptop)) == ["m1"] and chat.message("m1")["status"] == "delivered"
    assert chat.events.entries == []


def test_on_a_bus_that_is_gone_the_event_is_lost_without_a_word_as_on_aws(chat, capsys):
    # EventBridge answers PutEvents to a bus that does not exist with an EventId (aws/aws-cli#9186)
    chat.events.buses.clear()
    alice = chat.online("alice")
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob"))
    assert [e["Detail"]["messageId"] for e in chat.events.dropped] == ["m1"] and chat.events.entries == []
    emf = metrics(lines(capsys))
    assert [(r["PushEvents"], r["FailedPushEvents"]) for r in emf] == [(1, 0)]  # why operations.md says so
