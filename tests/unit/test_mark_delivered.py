"""Delivery a phone can trust: a connection opened with ?ack=1 confirms what it receives
(markDelivered), and until a device of the recipient does, the message stays in sync.
A phone whose socket died without a close frame loses nothing."""

from __future__ import annotations

import pytest

from chat.actions import MAX_LEASE_MS
from chat.aws import WORST_DYNAMODB_MS, WORST_POST_MS
from harness import TimeFor, ack, messages, receipts, send_frame, sync_complete
from local.template import functions


def confirm(*ids: str) -> dict:
    return {"action": "markDelivered", "messageIds": list(ids)}


def test_a_message_to_an_ack_device_stays_pending_until_the_device_confirms_it(chat):
    # Given bob's phone in ack mode
    alice, phone = chat.online("alice"), chat.online("bob", ack=True)
    # When alice sends, the phone gets the message, but it is only an attempt
    chat.send(alice, send_frame("m1", "bob"))
    assert messages(chat.frames(phone)) == ["m1"]
    assert chat.frames(phone)[0]["data"]["status"] == "sent"
    assert chat.take(alice) == [ack("m1", "sent")]  # not confirmed, so not delivered
    assert chat.message("m1")["pendingFor"] == "bob"
    # When the phone confirms it, the sender hears delivered, once
    chat.send(phone, confirm("m1"))
    assert receipts(chat.take(alice)) == [("m1", "delivered")]
    assert chat.message("m1")["status"] == "delivered" and "pendingFor" not in chat.message("m1")
    # And confirming again changes nothing and sends nothing
    chat.send(phone, confirm("m1"))
    assert chat.frames(alice) == [] and chat.take(phone)[-1]["type"] == "message"


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


def test_only_the_recipient_may_confirm_and_one_foreign_id_refuses_the_whole_frame(chat):
    alice, phone, mallory = chat.online("alice"), chat.online("bob", ack=True), chat.online("mallory", ack=True)
    chat.send(alice, send_frame("m1", "bob"))
    chat.send(alice, send_frame("m2", "mallory"))
    chat.take(alice)
    chat.send(mallory, confirm("m2", "m1"))
    assert [f for f in chat.frames(mallory) if f["type"] == "error"] == [
        {
            "type": "error",
            "data": {
                "code": "FORBIDDEN",
                "message": "only the recipient can mark a message delivered",
                "messageId": "m1",
            },
        }
    ]
    assert [chat.message(m)["status"] for m in ("m1", "m2")] == ["sent", "sent"]
    assert chat.frames(alice) == [] and messages(chat.frames(phone)) == ["m1"]


def test_a_device_without_ack_mode_confirms_by_receiving_as_before(chat):
    # Given bob on an ack phone and a laptop without ack mode
    alice, phone, laptop = chat.online("alice"), chat.online("bob", ack=True), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob"))
    # Then both get it, the laptop's post confirms it, and the sender's ack says so
    assert messages(chat.frames(phone)) == ["m1"] and messages(chat.frames(laptop)) == ["m1"]
    assert chat.frames(laptop)[0]["data"]["status"] == "delivered"
    assert chat.take(alice) == [ack("m1", "delivered")]
    # And the phone's confirmation afterwards sends no second receipt
    chat.send(phone, confirm("m1"))
    assert chat.frames(alice) == []


@pytest.mark.parametrize("value", ["2", "true", "", "1\n"])
def test_connect_with_an_unknown_ack_value_is_refused_and_writes_nothing(chat, value):
    _, response = chat.connect({"userId": "bob", "ack": value})
    assert response["statusCode"] == 400 and "ack must be 1" in response["body"]
    assert chat.items("connections") == []


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


def test_the_slowest_sync_step_and_a_lease_fit_the_message_functions_time_limit(dev_template):
    # The message function's limit, from the template
    [timeout_s] = [f["timeout"] for f in functions(dev_template).values() if f["handler"] == "message.handler"]
    # One message in a sync without ack mode (lease, post, confirm) and the closing syncComplete,
    # every call at its slowest, must fit, leaving a sync at least 10 s of work per invocation
    slowest_step = WORST_DYNAMODB_MS + WORST_POST_MS + WORST_DYNAMODB_MS + WORST_POST_MS
    assert timeout_s * 1000 - slowest_step >= 10_000
    # A lease taken without a Lambda deadline outlasts any invocation
    assert MAX_LEASE_MS > timeout_s * 1000


def test_a_post_that_times_out_is_not_repeated_to_the_same_connection(chat):
    # Given bob's laptop (no ack mode) answering a post late: it times out, though the frame arrives
    alice, laptop = chat.online("alice"), chat.online("bob")
    chat.api.slow.add(laptop)
    chat.send(alice, send_frame("m1", "bob"))
    # Then the send does not post it again to that connection (that would be a second copy)
    assert messages(chat.frames(laptop)) == ["m1"]
    # and, not knowing it arrived, leaves it waiting: the sender is not told delivered
    assert chat.frames(alice) == [ack("m1", "sent")] and chat.message("m1")["pendingFor"] == "bob"


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


def test_a_confirmation_that_runs_out_of_time_says_where_it_stopped_and_can_be_sent_again(chat):
    alice, phone = chat.online("alice"), chat.online("bob", ack=True)
    for mid in ("m1", "m2", "m3"):
        chat.send(alice, send_frame(mid, "bob"))
    chat.take(alice)

    chat.take(phone)
    chat.send(phone, confirm("m1", "m2", "m3"), context=TimeFor(checks=3))  # m1: its check, its receipt's two
    [error] = chat.take(phone)
    assert error["data"]["code"] == "INTERNAL" and error["data"]["messageId"] == "m2"
    assert [chat.message(m)["status"] for m in ("m1", "m2", "m3")] == ["delivered", "sent", "sent"]
    chat.send(phone, confirm("m1", "m2", "m3"))
    assert receipts(chat.frames(alice)) == [("m1", "delivered"), ("m2", "delivered"), ("m3", "delivered")]
