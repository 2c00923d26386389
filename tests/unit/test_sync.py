"""sync: what waits for the caller, oldest first: once, for a device without ack mode;
again and again until a device confirms it, in ack mode (markDelivered), so a phone whose
socket died without a close frame loses nothing. A sync that runs out of time or fails
to post stops with more, and continues from its cursor without a gap or a repeat."""

from __future__ import annotations

import pytest

from harness import TimeFor, confirm, messages, receipts, send_frame, sync_complete


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


def test_a_message_deleted_before_delivery_is_not_synced(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == []


def test_a_phone_that_died_before_confirming_gets_the_message_again_on_its_next_sync(chat):
    # Given bob's phone received m1 in ack mode, then lost its network without a close frame
    alice, phone = chat.online("alice"), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m1", "bob", "don't lose me"))
    assert messages(chat.frames(phone)) == ["m1"]  # posted: the gateway took it for the dead socket
    chat.take(alice)
    # When it reconnects (or bob opens another device) and syncs
    again = chat.online("bob", ack=True)
    chat.send(again, {"action": "sync"})
    # Then the message comes again, and the sender still has no false receipt
    assert messages(chat.frames(again)) == ["m1"] and sync_complete(chat.frames(again)) == {"count": 1, "more": False}
    assert chat.frames(alice) == []
    # And once confirmed, the next sync brings nothing, and the sender hears delivered exactly once
    chat.send(again, confirm("m1"))
    chat.take(again)
    chat.send(again, {"action": "sync"})
    assert chat.frames(again) == [{"type": "syncComplete", "data": {"count": 0, "more": False}}]
    assert receipts(chat.frames(alice)) == [("m1", "delivered")]


def test_an_ack_mode_sync_changes_nothing(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    before = chat.message("m1")
    phone = chat.online("bob", ack=True)
    chat.send(phone, {"action": "sync"})
    chat.send(phone, {"action": "sync"})
    assert messages(chat.frames(phone)) == ["m1", "m1"]  # at least once: clients dedupe by messageId
    assert chat.message("m1") == before


def test_a_stopped_sync_continues_from_its_cursor_without_repeats(chat):
    # Given nine messages waiting for bob's ack-mode phone, and a function with time for four
    alice = chat.online("alice")
    ids = [f"m{i}" for i in range(9)]
    for mid in ids:
        chat.send(alice, send_frame(mid, "bob"))
    phone = chat.online("bob", ack=True)

    # When it syncs, it stops with more and a cursor; syncing from the cursor continues
    chat.send(phone, {"action": "sync"}, context=TimeFor(checks=1 + 4))  # (its page, then four messages)
    first = chat.take(phone)
    done = sync_complete(first)
    assert messages(first) == ids[:4] and done["count"] == 4 and done["more"] is True
    chat.send(phone, {"action": "sync", "after": done["next"]}, context=TimeFor(checks=1 + 4))
    second = chat.take(phone)
    chat.send(phone, {"action": "sync", "after": sync_complete(second)["next"]})
    third = chat.frames(phone)
    # Then every message came once, in order, and the last sync says there is no more
    assert messages(first) + messages(second) + messages(third) == ids
    assert sync_complete(third) == {"count": 1, "more": False}


@pytest.mark.parametrize("after", [7, "", "not-a-cursor", "W1tdXQ", "x" * 600], ids=repr)
def test_a_cursor_that_is_not_a_syncComplete_cursor_is_a_bad_request(chat, after):
    phone = chat.online("bob", ack=True)
    chat.send(phone, {"action": "sync", "after": after})
    [error] = chat.frames(phone)
    assert error["data"]["code"] == "BAD_REQUEST" and "'after'" in error["data"]["message"]


@pytest.mark.parametrize("ack_mode", [True, False], ids=["ack mode", "without ack mode"])
def test_a_sync_whose_post_fails_without_a_410_ends_with_more_and_continues(chat, ack_mode):
    # Given three messages waiting, and a connection whose second post fails with a 500
    alice = chat.online("alice")
    for mid in ("m1", "m2", "m3"):
        chat.send(alice, send_frame(mid, "bob"))
    device = chat.online("bob", ack=ack_mode)
    posts = []

    def fail_the_second(connection_id):
        if connection_id != device:
            return
        posts.append(connection_id)
        if len(posts) == 2:
            chat.api.broken.add(device)
        elif len(posts) == 3:
            chat.api.broken.discard(device)

    chat.api.before_post = fail_the_second
    # When it syncs, the sync stops there and says so, with where to continue
    chat.send(device, {"action": "sync"})
    first = chat.take(device)
    assert messages(first) == ["m1"]
    done = sync_complete(first)
    assert done["count"] == 1 and done["more"] is True
    # Then continuing from the cursor brings the rest, the failed one included
    chat.send(device, {"action": "sync", "after": done["next"]})
    assert messages(chat.frames(device)) == ["m2", "m3"]
    assert sync_complete(chat.frames(device)) == {"count": 2, "more": False}


def test_a_sync_without_time_to_read_its_next_page_stops_before_reading_it(chat):
    # Given 101 messages waiting for bob's phone: two pages
    alice = chat.online("alice")
    for i in range(101):
        chat.send(alice, send_frame(f"m{i:03}", "bob"))
    phone = chat.online("bob", ack=True)
    # When the function has time for the first page and its messages only
    chat.requests.reset()
    chat.send(phone, {"action": "sync"}, context=TimeFor(checks=1 + 100))
    # Then it stops before the second page's reads (which could take longer than the time left)
    done = sync_complete(chat.take(phone))
    assert done["count"] == 100 and done["more"] is True
    assert chat.requests.calls["Query"] == 1 and chat.requests.calls["BatchGetItem"] == 1
    chat.send(phone, {"action": "sync", "after": done["next"]})
    assert messages(chat.take(phone)) == ["m100"]


@pytest.mark.parametrize("message_id", ["😀" * 128, "\x01" * 128, "é" * 128], ids=["emoji", "controls", "accents"])
def test_the_cursor_of_the_longest_message_id_is_accepted_back(chat, message_id):
    # Given a sync that stops right after a message whose id is as long as ids may be
    alice = chat.online("alice")
    chat.send(alice, send_frame(message_id, "bob"))
    chat.send(alice, send_frame("after", "bob"))
    phone = chat.online("bob", ack=True)

    chat.send(phone, {"action": "sync"}, context=TimeFor(checks=2))  # its page, its first message
    done = sync_complete(chat.take(phone))
    # Then the server accepts the cursor it gave
    chat.send(phone, {"action": "sync", "after": done["next"]})
    assert messages(chat.frames(phone)) == ["after"]


def test_a_message_whose_words_went_while_it_was_read_is_shown_as_deleted(chat):
    # Given a row whose content is gone (deleted between reading the row and its content)
    alice, bob = chat.online("alice"), chat.online("bob", ack=True)
    chat.send(alice, send_frame("m1", "bob", "soon gone"))
    chat.client.delete_item(TableName=chat.settings.contents_table, Key={"messageId": {"S": "m1"}})
    chat.take(bob)
    # Then a sync shows a tombstone, never a message without content
    chat.send(bob, {"action": "sync"})
    [data] = [f["data"] for f in chat.frames(bob) if f["type"] == "message"]
    assert data["isDeleted"] is True and "content" not in data
