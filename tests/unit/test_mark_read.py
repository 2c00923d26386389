"""markRead: the recipient marks messages read, the sender gets a read receipt once, the
reader's other devices learn which; status only moves forward."""

from __future__ import annotations

from harness import receipts, send_frame


def test_mark_read_moves_to_read_and_sends_the_sender_a_read_receipt(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", conversationId="conv-1"))
    chat.send(alice, send_frame("m2", "bob", conversationId="conv-1"))
    chat.take(alice)
    chat.send(bob, {"action": "markRead", "messageIds": ["m1", "m2"]})
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})  # again: no second receipt
    assert receipts(chat.frames(alice)) == [("m1", "read"), ("m2", "read")]
    assert chat.frames(alice)[0] == {
        "type": "receipt",
        "data": {"messageId": "m1", "conversationId": "conv-1", "status": "read"},
    }
    assert [chat.message(m)["status"] for m in ("m1", "m2")] == ["read", "read"]


def test_only_the_recipient_can_mark_read_and_a_mixed_batch_changes_nothing(chat):
    alice, _bob, mallory = chat.online("alice"), chat.online("bob"), chat.online("mallory")
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, send_frame("m2", "mallory"))
    chat.take(alice)
    chat.take(mallory)
    chat.send(mallory, {"action": "markRead", "messageIds": ["m2", "m1"]})
    [error] = chat.frames(mallory)
    assert error["data"]["code"] == "FORBIDDEN" and error["data"]["messageId"] == "m1"
    assert [chat.message(m)["status"] for m in ("m1", "m2")] == ["delivered", "delivered"]
    assert chat.frames(alice) == []


def test_mark_read_of_a_message_that_does_not_exist_is_forbidden(chat):
    bob = chat.online("bob")
    chat.send(bob, {"action": "markRead", "messageIds": ["nope"]})
    assert chat.frames(bob)[0]["data"]["code"] == "FORBIDDEN"


def test_an_early_markRead_never_swallows_the_message(chat):
    # Given a message bob has not received (he was offline)
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", "the content"))
    chat.take(alice)
    # When a device of bob's marks it read before it has it (say, from a notification)
    bob = chat.online("bob")
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})
    # Then alice hears delivered before read, both from that invocation
    assert receipts(chat.take(alice)) == [("m1", "delivered"), ("m1", "read")]
    # And bob's sync still brings the content, once, and the status stays read
    chat.send(bob, {"action": "sync"})
    chat.send(bob, {"action": "sync"})
    [message] = [f["data"] for f in chat.frames(bob) if f["type"] == "message"]
    assert message["content"] == "the content" and message["status"] == "read"
    assert chat.message("m1")["status"] == "read" and "pendingFor" not in chat.message("m1")
    assert chat.frames(alice) == []  # no second delivered receipt when sync confirms it


def test_a_deleted_message_cannot_be_marked_read_and_its_sender_hears_nothing(chat):
    # Given a message deleted before bob ever had it
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", "never mind"))
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    chat.take(alice)
    # When bob marks it read anyway
    bob = chat.online("bob")
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})
    # Then nothing changes and alice hears no receipt for a message nobody got
    assert chat.frames(alice) == [] and chat.message("m1")["status"] == "sent"


def test_read_on_one_device_tells_the_readers_other_devices(chat):
    # Given two messages in one conversation and one in another, on bob's phone and laptop
    alice, phone, laptop = chat.online("alice"), chat.online("bob", ack=True), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m1", "bob", conversationId="conv-1"))
    chat.send(alice, send_frame("m2", "bob", conversationId="conv-1"))
    chat.send(alice, send_frame("m3", "bob", conversationId="conv-2"))
    chat.take(phone)
    chat.take(laptop)
    # When the laptop marks them read
    chat.send(laptop, {"action": "markRead", "messageIds": ["m1", "m2", "m3"]})
    # Then the phone learns which, per conversation, so its unread badges are right
    assert chat.take(phone) == [
        {"type": "read", "data": {"conversationId": "conv-1", "messageIds": ["m1", "m2"]}},
        {"type": "read", "data": {"conversationId": "conv-2", "messageIds": ["m3"]}},
    ]
    assert chat.take(laptop) == []  # the device that read them knows
    # And marking them read again tells nobody anything
    chat.send(laptop, {"action": "markRead", "messageIds": ["m1"]})
    assert chat.frames(phone) == [] and chat.frames(laptop) == []
