"""sync, markRead and deleteMessage; status only moves forward."""

from __future__ import annotations

import json

from harness import messages, receipts, send_frame, sync_complete


def test_sync_delivers_everything_waiting_oldest_first_exactly_once(chat):
    # Given bob was offline while alice sent three messages
    alice = chat.online("alice")
    for mid in ("m1", "m2", "m3"):
        chat.send(alice, send_frame(mid, "bob"))
    chat.take(alice)
    # When bob connects and syncs, twice
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    chat.send(bob, {"action": "sync"})
    # Then he gets each message once, in the order sent, marked delivered, and each sync ends with syncComplete
    assert messages(chat.frames(bob)) == ["m1", "m2", "m3"]
    assert {f["data"]["status"] for f in chat.frames(bob) if f["type"] == "message"} == {"delivered"}
    assert [f["data"] for f in chat.frames(bob) if f["type"] == "syncComplete"] == [
        {"count": 3, "more": False},
        {"count": 0, "more": False},
    ]
    assert [chat.message(m)["status"] for m in ("m1", "m2", "m3")] == ["delivered"] * 3
    assert all("pendingFor" not in chat.message(m) for m in ("m1", "m2", "m3"))
    # And alice gets a delivered receipt for each
    assert receipts(chat.frames(alice)) == [("m1", "delivered"), ("m2", "delivered"), ("m3", "delivered")]


def test_sync_walks_every_page_in_order(chat, monkeypatch):
    alice = chat.online("alice")
    ids = [f"m{i:02d}" for i in range(7)]
    for mid in ids:
        chat.send(alice, send_frame(mid, "bob"))
    pending = chat.tables.messages.pending
    monkeypatch.setattr(chat.tables.messages, "pending", lambda user, after: pending(user, after, page_size=2))
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ids
    assert sync_complete(chat.frames(bob)) == {"count": 7, "more": False}


def test_sync_only_delivers_the_callers_messages(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("to-bob", "bob"))
    chat.send(alice, send_frame("to-carol", "carol"))
    carol = chat.online("carol")
    chat.send(carol, {"action": "sync"})
    assert messages(chat.frames(carol)) == ["to-carol"]
    assert chat.message("to-bob")["status"] == "sent"


def test_sync_stops_when_the_lambda_runs_out_of_time_and_resumes_next_time(chat):
    class AlmostOutOfTime:
        def get_remaining_time_in_millis(self):
            return 1000

    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"}, context=AlmostOutOfTime())
    assert chat.take(bob) == [{"type": "syncComplete", "data": {"count": 0, "more": True}}]
    assert chat.message("m1")["status"] == "sent"
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ["m1"]


def test_sync_into_a_dead_connection_marks_nothing_delivered(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    bob = chat.online("bob")
    chat.api.gone.add(bob)
    chat.later(60)  # a connection that died a minute ago
    chat.send(bob, {"action": "sync"})
    stored = chat.message("m1")
    assert stored["status"] == "sent" and stored["pendingFor"] == "bob"
    assert chat.tables.connections.get(bob) is None  # the dead row is gone
    assert chat.frames(bob) == []  # no syncComplete either: there is nobody to tell


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


def test_the_sender_deletes_and_every_live_connection_of_both_users_is_told(chat):
    alice, alice_laptop, bob = chat.online("alice"), chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "secret", replyToContent="quoted", conversationId="conv-1"))
    for conn in (alice, alice_laptop, bob):
        chat.take(conn)
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    notice = {"type": "messageDeleted", "data": {"messageId": "m1", "conversationId": "conv-1"}}
    assert chat.frames(bob) == [notice]
    assert chat.frames(alice_laptop) == [notice]
    assert chat.frames(alice) == [notice]  # the caller's confirmation
    stored = chat.message("m1")
    assert stored["isDeleted"] is True and "content" not in stored and "replyToContent" not in stored
    # and the words are gone from every table, not only hidden
    assert "secret" not in json.dumps(chat.items("messages") + chat.items("contents"))


def test_a_deleted_reply_quote_leaves_the_stored_reply_too(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice", "regrettable"))
    chat.send(alice, send_frame("m1", "bob", "what?", replyToMessageId="m0"))
    chat.send(bob, {"action": "deleteMessage", "messageId": "m0"})
    assert "regrettable" not in json.dumps(chat.items("messages") + chat.items("contents"))
    assert chat.message("m1")["content"] == "what?" and chat.message("m1")["replyToMessageId"] == "m0"


def test_only_the_sender_can_delete(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "keep me"))
    chat.take(bob)
    chat.send(bob, {"action": "deleteMessage", "messageId": "m1"})
    assert chat.frames(bob)[0]["data"] == {
        "code": "FORBIDDEN",
        "message": "only the sender can delete a message",
        "messageId": "m1",
    }
    assert chat.message("m1")["content"] == "keep me" and chat.message("m1")["isDeleted"] is False


def test_deleting_a_message_that_does_not_exist_creates_nothing(chat):
    alice = chat.online("alice")
    chat.send(alice, {"action": "deleteMessage", "messageId": "ghost"})
    assert chat.frames(alice)[0]["data"]["code"] == "FORBIDDEN"
    assert chat.items("messages") == []


def test_a_message_deleted_before_delivery_is_not_synced(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == []


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


def test_deleting_a_message_removes_its_text_from_the_replies_that_quote_it(chat):
    # Given bob offline, and alice's message m0 quoted in her own reply m1 and in carol's reply
    alice, carol = chat.online("alice"), chat.online("carol")
    chat.send(alice, send_frame("m0", "bob", "my password is hunter2", senderName="Alice"))
    chat.send(alice, send_frame("m1", "bob", "oops", replyToMessageId="m0"))
    chat.send(carol, send_frame("c0", "carol", "hm"))
    # When alice deletes m0
    chat.send(alice, {"action": "deleteMessage", "messageId": "m0"})
    # Then bob's sync brings the reply without the deleted text, and nothing stored keeps it
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    [reply] = [f["data"] for f in chat.frames(bob) if f["type"] == "message"]
    assert reply["messageId"] == "m1" and reply["replyToMessageId"] == "m0"
    assert "replyToContent" not in reply and "replyToSenderName" not in reply
    assert not [item for item in chat.items("messages") if "hunter2" in json.dumps(item)]
