"""sendMessage: stored first, delivered to every live device, acknowledged once."""

from __future__ import annotations

import json
from unittest.mock import ANY

import pytest

from chat.actions import MAX_LEASE_MS
from chat.dynamo import to_item
from harness import ack, messages, receipts, send_frame, sync_complete


def test_online_recipient_gets_the_message_in_the_ios_client_frame_shape(chat):
    # Given alice and bob are online
    alice, bob = chat.online("alice"), chat.online("bob")
    # When alice sends bob a message the way the iOS client does
    frame = send_frame("m1", "bob", "Hello!", senderName="Alice", timestamp="2025-10-21T10:30:00Z")
    chat.send(alice, {**frame, "conversationId": "conv-1"})
    # Then bob receives it, marked delivered
    assert chat.frames(bob) == [
        {
            "type": "message",
            "data": {
                "messageId": "m1",
                "conversationId": "conv-1",
                "senderId": "alice",
                "senderName": "Alice",
                "recipientId": "bob",
                "content": "Hello!",
                "timestamp": "2025-10-21T10:30:00Z",
                "sentAt": ANY,  # the server's time of storage
                "status": "delivered",
            },
        }
    ]
    # And alice's connection gets an ack saying so
    assert chat.frames(alice) == [ack("m1", "delivered")]
    # And the stored message says delivered and is no longer pending
    stored = chat.message("m1")
    assert stored["status"] == "delivered" and "pendingFor" not in stored


def test_offline_recipient_message_is_stored_and_acked_as_sent(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.frames(alice) == [ack("m1", "sent")]
    stored = chat.message("m1")
    assert stored["status"] == "sent" and stored["pendingFor"] == "bob" and stored["senderId"] == "alice"


def test_every_recipient_device_and_the_senders_other_devices_get_it(chat):
    alice_phone, alice_laptop = chat.online("alice"), chat.online("alice")
    bob_phone, bob_tablet = chat.online("bob"), chat.online("bob")
    chat.send(alice_phone, send_frame("m1", "bob"))
    for conn in (bob_phone, bob_tablet, alice_laptop):
        assert [(f["type"], f["data"]["messageId"], f["data"]["status"]) for f in chat.frames(conn)] == [
            ("message", "m1", "delivered")
        ]
    assert [f["type"] for f in chat.frames(alice_phone)] == ["ack"]


def test_senders_other_device_sees_an_undelivered_message_as_sent(chat):
    alice_phone, alice_laptop = chat.online("alice"), chat.online("alice")
    chat.send(alice_phone, send_frame("m1", "bob"))
    assert [f["data"]["status"] for f in chat.frames(alice_laptop)] == ["sent"]


def test_a_retry_is_acknowledged_again_but_not_stored_or_delivered_twice(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "once"))
    chat.send(alice, send_frame("m1", "bob", "once"))
    assert [f["type"] for f in chat.frames(bob)] == ["message"]
    # the second ack says so: this frame stored and delivered nothing
    assert chat.frames(alice) == [ack("m1", "delivered"), ack("m1", "delivered", duplicate=True)]
    assert len(chat.items("messages")) == 1


def test_a_message_id_of_another_sender_is_a_conflict_and_overwrites_nothing(chat):
    alice, mallory = chat.online("alice"), chat.online("mallory")
    chat.send(alice, send_frame("m1", "bob", "original"))
    chat.send(mallory, send_frame("m1", "bob", "forged"))
    assert chat.frames(mallory) == [
        {
            "type": "error",
            "data": {"code": "CONFLICT", "message": "messageId is already used by another message", "messageId": "m1"},
        }
    ]
    stored = chat.message("m1")
    assert stored["content"] == "original" and stored["senderId"] == "alice"


def test_a_senderId_that_is_not_the_connection_user_is_forbidden_and_writes_nothing(chat):
    mallory = chat.online("mallory")
    chat.send(mallory, send_frame("m1", "bob", senderId="alice"))
    [frame] = chat.frames(mallory)
    assert frame["type"] == "error" and frame["data"]["code"] == "FORBIDDEN" and frame["data"]["messageId"] == "m1"
    assert chat.items("messages") == []


def test_a_senderId_equal_to_the_connection_user_is_accepted(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", senderId="alice"))
    assert chat.frames(alice)[0]["type"] == "ack"


def test_the_sender_is_always_the_connection_user_never_the_frame(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.message("m1")["senderId"] == "alice"


def test_the_reply_quote_comes_from_the_original_message_never_from_the_client(chat):
    # Given bob's earlier message
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice", "earlier", senderName="Bob"))
    chat.take(bob)
    # When alice replies to it with a quote of her own making
    forged = {"replyToMessageId": "m0", "replyToContent": "I owe alice $1000", "replyToSenderName": "Bank"}
    chat.send(alice, send_frame("m1", "bob", **forged))
    # Then bob sees, and the store keeps, what m0 really said and who said it
    quote = {"replyToMessageId": "m0", "replyToContent": "earlier", "replyToSenderName": "Bob"}
    assert {k: chat.frames(bob)[0]["data"].get(k) for k in quote} == quote
    assert {k: chat.message("m1").get(k) for k in quote} == quote


def test_a_reply_to_a_deleted_message_carries_no_quote(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice", "regrettable", senderName="Bob"))
    chat.send(bob, {"action": "deleteMessage", "messageId": "m0"})
    chat.take(bob)
    chat.send(alice, send_frame("m1", "bob", replyToMessageId="m0", replyToContent="regrettable"))
    data = chat.frames(bob)[0]["data"]
    assert data["replyToMessageId"] == "m0"
    assert "replyToContent" not in data and "replyToSenderName" not in data
    assert "replyToContent" not in chat.message("m1")


def crash_once(chat, monkeypatch, method: str) -> None:
    """The Messages store's method raises once (the function died there), then works again."""
    real = getattr(chat.tables.messages, method)

    def crash(*args, **kwargs):
        monkeypatch.setattr(chat.tables.messages, method, real)
        raise TimeoutError("the function died here")

    monkeypatch.setattr(chat.tables.messages, method, crash)


def before(chat, monkeypatch, method: str, first) -> None:
    """first() runs just before the Messages store's next call of method: another invocation wins a race."""
    real = getattr(chat.tables.messages, method)

    def racing(*args, **kwargs):
        monkeypatch.setattr(chat.tables.messages, method, real)
        first()
        return real(*args, **kwargs)

    monkeypatch.setattr(chat.tables.messages, method, racing)


def test_a_send_that_died_between_its_two_writes_is_completed_by_its_retry_as_first_sent(chat, monkeypatch):
    # Given alice's first attempt stored the message as sent and died before its row
    alice, bob, carol = chat.online("alice"), chat.online("bob"), chat.online("carol")
    crash_once(chat, monkeypatch, "put_new_row")
    chat.send(alice, send_frame("m1", "bob", "first words"))
    assert [f["data"]["code"] for f in chat.take(alice)] == ["INTERNAL"]
    assert chat.message("m1") is None and messages(chat.frames(bob)) == []  # nobody sees half a message
    # When her app retries with the same messageId, its frame changed meanwhile
    chat.send(alice, send_frame("m1", "carol", "second words"))
    # Then the message is completed as it was first sent (a retry matches on messageId and sender)
    assert chat.take(alice) == [ack("m1", "delivered")]
    assert chat.frames(bob)[0]["data"]["content"] == "first words" and messages(chat.frames(carol)) == []
    assert chat.message("m1")["content"] == "first words" and chat.message("m1")["recipientId"] == "bob"


def test_another_senders_half_stored_message_id_is_a_conflict(chat, monkeypatch):
    alice, bob = chat.online("alice"), chat.online("bob")
    crash_once(chat, monkeypatch, "put_new_row")
    chat.send(alice, send_frame("m1", "bob", "alice's words"))
    chat.send(bob, send_frame("m1", "alice", "bob's words"))
    assert [f["data"]["code"] for f in chat.take(bob)] == ["CONFLICT"]
    assert chat.message("m1") is None and chat.items("contents")[0]["content"] == "alice's words"


def test_two_devices_sending_one_messageId_at_once_keep_its_words(chat, monkeypatch):
    # Given alice's phone stored the message as sent, and her laptop's send of the same id
    # completes before the phone writes the row
    phone, laptop, bob = chat.online("alice"), chat.online("alice"), chat.online("bob")
    before(chat, monkeypatch, "put_new_row", lambda: chat.send(laptop, send_frame("m1", "bob", "hi")))
    chat.send(phone, send_frame("m1", "bob", "hi"))
    # Then both are acknowledged (the phone's as a duplicate: the laptop's send stored and
    # delivered it), and the message keeps what it says
    assert chat.take(laptop)[-1] == ack("m1", "delivered")
    assert chat.take(phone)[-1] == ack("m1", "delivered", duplicate=True)
    assert chat.message("m1")["content"] == "hi" and chat.message("m1").get("isDeleted") is False
    assert messages(chat.frames(bob)) == ["m1"]


def test_a_reply_stored_while_its_original_is_deleted_keeps_no_quote(chat, monkeypatch):
    # Given alice replies to bob's message, and bob deletes it between her read and her write
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice", "regrettable"))
    delete = {"action": "deleteMessage", "messageId": "m0"}
    before(chat, monkeypatch, "put_new_row", lambda: chat.send(bob, delete))
    chat.take(bob)
    chat.send(alice, send_frame("m1", "bob", "what?", replyToMessageId="m0"))
    # Then the deleted words are in no table and reach nobody; the reply points at m0
    assert "regrettable" not in json.dumps(chat.items("messages") + chat.items("contents"))
    [reply] = [f["data"] for f in chat.frames(bob) if f["type"] == "message"]
    assert reply["replyToMessageId"] == "m0" and "replyToContent" not in reply


def test_a_deleted_messages_id_sent_again_stores_nothing(chat):
    alice, _bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "regrettable"))
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    chat.send(alice, send_frame("m1", "bob", "regrettable"))  # a late retry
    assert "regrettable" not in json.dumps(chat.items("messages") + chat.items("contents"))


def test_a_frame_too_big_for_a_page_is_refused_and_claims_nothing(chat):
    # Given a message whose own frame would fit 32 KB, but not a history or conversations
    # page with it (the page's cursor and requestId need room too)
    alice, bob = chat.online("alice"), chat.online("bob")
    big = send_frame("m1", "bob", "\x01" * 5300, conversationId="squat-x")  # each escapes to 6 bytes
    assert len(json.dumps({"type": "message", "data": big})) < 32 * 1024
    chat.send(alice, big)
    # Then it is a BAD_REQUEST that stores nothing and claims no conversation
    assert [f["data"]["code"] for f in chat.take(alice)] == ["BAD_REQUEST"]
    assert chat.items("conversations") == [] and chat.items("messages") == [] and messages(chat.frames(bob)) == []
    # And the largest message that is taken can be read back in both kinds of page
    chat.send(alice, send_frame("m2", "bob", "\x01" * 5000, conversationId="c-1", requestId="😀" * 128))
    assert chat.take(alice)[-1] == ack("m2", "delivered")
    chat.send(bob, {"action": "history", "conversationId": "c-1", "requestId": "😀" * 128})
    chat.send(bob, {"action": "conversations", "requestId": "😀" * 128})
    kinds = [f["type"] for f in chat.take(bob) if f["type"] != "message"]
    assert kinds == ["history", "conversations"]


def test_a_message_from_before_the_contents_table_is_read_and_its_id_still_refused_to_others(chat):
    # Given a message stored before the Contents table: its content in its row
    alice, bob, carol = chat.online("alice"), chat.online("bob"), chat.online("carol")
    chat.send(alice, send_frame("m0", "bob"))  # (the conversation exists)
    row = {"messageId": "old", "conversationId": chat.message("m0")["conversationId"], "senderId": "alice"}
    row |= {"recipientId": "bob", "content": "from before", "sentAt": "2026-01-01T00:00:00.000000Z"}
    row |= {"timestamp": "2026-01-01T00:00:00Z", "status": "delivered", "isDeleted": False}
    chat.client.put_item(TableName=chat.settings.messages_table, Item=to_item(row))
    # When carol sends with its id, and alice retries it
    chat.send(carol, send_frame("old", "bob", "carol's words"))
    chat.send(alice, send_frame("old", "bob", "alice's retry"))
    # Then carol's is a CONFLICT, alice's a retry, and neither left words behind
    assert [f["data"]["code"] for f in chat.take(carol)] == ["CONFLICT"]
    assert chat.take(alice)[-1] == ack("old", "delivered", duplicate=True)
    assert [c["messageId"] for c in chat.items("contents")] == ["m0"]
    # And the old message reads as it was
    chat.send(bob, {"action": "history", "conversationId": row["conversationId"]})
    [page] = [f["data"] for f in chat.take(bob) if f["type"] == "history"]
    assert [m.get("content") for m in page["messages"]] == ["hi", "from before"]


def test_a_quote_without_a_message_to_point_at_is_dropped(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", replyToContent="words bob never said", replyToSenderName="Bob"))
    data = chat.frames(bob)[0]["data"]
    assert "replyToContent" not in data and "replyToSenderName" not in data


def test_every_message_and_ack_carries_the_servers_time_of_storage(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", timestamp="2020-01-01T00:00:00Z"))  # the client's clock
    chat.send(alice, send_frame("m2", "carol"))
    stored = chat.message("m1")["sentAt"]
    assert stored > "2025" and stored.endswith("Z")
    assert chat.frames(bob)[0]["data"]["sentAt"] == stored
    assert chat.frames(bob)[0]["data"]["timestamp"] == "2020-01-01T00:00:00Z"
    assert [a["data"]["sentAt"] for a in chat.frames(alice)] == [stored, chat.message("m2")["sentAt"]]
    carol = chat.online("carol")
    chat.send(carol, {"action": "sync"})
    assert [f["data"]["sentAt"] for f in chat.frames(carol) if f["type"] == "message"] == [chat.message("m2")["sentAt"]]


def test_a_reply_may_point_at_your_own_message_too(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m0", "bob"))
    chat.take(alice)
    chat.send(alice, send_frame("m1", "bob", replyToMessageId="m0"))
    assert chat.frames(alice)[0]["type"] == "ack"


def test_a_reply_to_a_message_you_cannot_see_is_forbidden_and_writes_nothing(chat):
    # Given a message between carol and dave
    carol, mallory = chat.online("carol"), chat.online("mallory")
    chat.send(carol, send_frame("secret", "dave", "for dave only"))
    before = chat.items("messages")
    # When mallory replies to it, or to a message that does not exist
    for target in ("secret", "no-such-message"):
        chat.send(mallory, send_frame(f"r-{target}", "carol", replyToMessageId=target))
        # Then both get the same refusal (no way to probe which ids exist), and nothing is stored
        [error] = chat.take(mallory)
        assert error["type"] == "error" and error["data"]["code"] == "FORBIDDEN"
        assert error["data"]["messageId"] == f"r-{target}"
    assert chat.items("messages") == before


def test_null_optional_fields_count_as_absent(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob", replyToMessageId=None, senderName=None))
    assert chat.frames(alice)[0]["type"] == "ack"
    assert "replyToMessageId" not in chat.message("m1")


def test_content_of_exactly_the_limit_is_accepted(chat):
    alice = chat.online("alice")
    limit = chat.settings.max_content_bytes
    chat.send(alice, send_frame("m1", "bob", "é" * (limit // 2)))  # 2 bytes each
    assert chat.frames(alice)[0]["type"] == "ack"


def test_a_message_to_yourself_reaches_your_other_devices_once(chat):
    phone, laptop = chat.online("alice"), chat.online("alice")
    chat.send(phone, send_frame("m1", "alice"))
    assert [f["type"] for f in chat.frames(laptop)] == ["message"]
    assert chat.frames(phone) == [ack("m1", "delivered")]


def test_a_quote_names_who_really_wrote_the_original(chat):
    # Given mallory's note to herself, signed with someone else's name
    mallory, bob = chat.online("mallory"), chat.online("bob")
    chat.send(mallory, send_frame("q1", "mallory", "I agree mallory gets $500", senderName="Alice"))
    # When she replies to it in a message to bob
    chat.send(mallory, send_frame("m1", "bob", "as agreed", replyToMessageId="q1"))
    # Then bob's app can show who wrote the quote, whatever name they gave
    data = chat.frames(bob)[0]["data"]
    assert data["replyToSenderId"] == "mallory" and data["replyToSenderName"] == "Alice"


class Crash(BaseException):
    """The function dies here (timeout, out of memory): nothing after it runs."""


def test_a_send_that_dies_after_taking_its_lease_strands_nothing(chat):
    # Given bob on a laptop without ack mode, and a message function that dies while posting to it
    alice, laptop = chat.online("alice"), chat.online("bob")

    def die(**kwargs):
        raise Crash

    chat.api.post_to_connection = die
    with pytest.raises(Crash):
        chat.send(alice, send_frame("m1", "bob"))
    del chat.api.post_to_connection
    assert chat.message("m1")["pendingFor"] == "bob" and "leaseUntil" in chat.message("m1")
    # When bob syncs while the dead invocation's lease runs, the message is left to it
    chat.send(laptop, {"action": "sync"})
    assert sync_complete(chat.take(laptop)) == {"count": 0, "more": False}
    # Then once the lease has run out, sync delivers it: nothing was stranded
    chat.later(MAX_LEASE_MS / 1000 + 1)
    chat.send(laptop, {"action": "sync"})
    assert messages(chat.frames(laptop)) == ["m1"] and chat.message("m1")["status"] == "delivered"
    assert receipts(chat.frames(alice)) == [("m1", "delivered")]


def test_a_device_that_synced_while_a_failed_send_held_the_message_still_gets_it(chat):
    # Given bob's old laptop connection is dead (410), and bob reconnects while alice's send is posting to it
    alice, old = chat.online("alice"), chat.online("bob")
    chat.later(60)
    chat.api.gone.add(old)
    new = {}

    def reconnect_and_sync(connection_id):
        if connection_id == old and not new:
            new["id"] = chat.online("bob")
            chat.send(new["id"], {"action": "sync"})  # the send holds the message: this sync skips it

    chat.api.before_post = reconnect_and_sync
    chat.send(alice, send_frame("m1", "bob"))
    # Then the send, seeing every post fail, looks again and delivers to the new connection, once
    skipped, delivered = chat.frames(new["id"])
    assert skipped == {"type": "syncComplete", "data": {"count": 0, "more": False}}
    assert delivered["type"] == "message" and delivered["data"]["messageId"] == "m1"
    assert chat.message("m1")["status"] == "delivered"
    assert chat.frames(alice) == [ack("m1", "delivered")]


def test_a_post_that_times_out_is_not_repeated_to_the_same_connection(chat):
    # Given bob's laptop (no ack mode) answering a post late: it times out, though the frame arrives
    alice, laptop = chat.online("alice"), chat.online("bob")
    chat.api.slow.add(laptop)
    chat.send(alice, send_frame("m1", "bob"))
    # Then the send does not post it again to that connection (that would be a second copy)
    assert messages(chat.frames(laptop)) == ["m1"]
    # and, not knowing it arrived, leaves it waiting: the sender is not told delivered
    assert chat.frames(alice) == [ack("m1", "sent")] and chat.message("m1")["pendingFor"] == "bob"


def test_a_failure_after_confirming_still_tells_the_sender_delivered(chat, monkeypatch):
    # Given bob online without ack mode, and the lookup of alice's other devices failing
    alice, laptop = chat.online("alice"), chat.online("bob")
    lookup = chat.tables.connections.of_user

    def failing_for_alice(user):
        if user == "alice":
            raise RuntimeError("throttled")
        return lookup(user)

    monkeypatch.setattr(chat.tables.connections, "of_user", failing_for_alice)
    # When alice sends, the post to bob's laptop confirms it
    chat.send(alice, send_frame("m1", "bob"))
    assert messages(chat.frames(laptop)) == ["m1"] and chat.message("m1")["status"] == "delivered"
    # Then the ack says so: no receipt will ever follow for it
    assert chat.frames(alice) == [ack("m1", "delivered")]
