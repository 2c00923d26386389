"""Delivery a phone can trust, on the local stack with real WebSocket clients: ack-mode
devices that die without a close frame, confirmation, and hostile frames."""

from __future__ import annotations

import pytest
import websockets
import websockets.exceptions  # (websockets loads it lazily: on its own, a test could find it missing)

from chat.tables import Tables
from clients import Client, connection_ids, run
from harness import send_frame
from local.waiting import until


async def sync(client: Client, **fields) -> tuple[list[dict], dict]:
    """Send sync; the data of the messages it brought, and of its syncComplete."""
    frames, done = await client.synced(**fields)
    return [f["data"] for f in frames if f["type"] == "message"], done


def test_an_ack_phone_that_dies_before_confirming_gets_the_message_again_and_the_sender_one_receipt(stack):
    async def scenario():
        # Given alice connected throughout, and bob's phone in ack mode, synced
        alice = await Client.connect(stack.url, "alice")
        phone = await Client.connect(stack.url, "bob", ack=1)
        assert await sync(phone) == ([], {"count": 0, "more": False})
        # When alice sends, the phone receives the frame, then loses its network before confirming
        await alice.send(send_frame("m1", "bob", "are you there?"))
        assert (await phone.next("message"))["data"]["messageId"] == "m1"
        assert (await alice.next("ack"))["data"]["status"] == "sent"  # no false delivered
        phone.ws.transport.abort()  # no close frame
        # Then the reconnected phone gets it again on sync, and confirms it
        phone = await Client.connect(stack.url, "bob", ack=1)
        got, done = await sync(phone)
        assert [m["messageId"] for m in got] == ["m1"] and got[0]["content"] == "are you there?"
        assert done == {"count": 1, "more": False}
        await phone.send({"action": "markDelivered", "messageIds": ["m1"]})
        await until(lambda: stack.invocations("markDelivered") == 1, what="the confirmation handled")
        await phone.send({"action": "markDelivered", "messageIds": ["m1"]})  # a repeat, as a retrying app does
        await until(lambda: stack.invocations("markDelivered") == 2, what="both confirmations handled")
        # (on real storage, the README's counts: the first confirms, the repeat only reads)
        calls = stack.calls("markDelivered")
        # (the phone's connection, if a confirmation ran on the container that had not seen it: any free one runs it)
        assert calls.pop("dynamodb.GetItem", 0) <= 1
        assert calls == {
            "invocations": 2,
            "dynamodb.BatchGetItem": 2,
            "dynamodb.UpdateItem": 1,  # pending -> delivered
            "dynamodb.Query": 1,  # alice's connections, for the receipt
            "apigatewaymanagementapi.PostToConnection": 1,  # the receipt
        }
        # And alice heard delivered exactly once: everything posted to her came before her own syncComplete
        await sync(alice)
        delivered = [
            f for f in alice.received if f["type"] in ("ack", "receipt") and f["data"]["status"] == "delivered"
        ]
        assert [(f["type"], f["data"]["messageId"]) for f in delivered] == [("receipt", "m1")]

    run(scenario())


def test_an_ack_phone_that_confirms_gets_nothing_again(stack):
    async def scenario():
        alice, phone = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob", ack=1)
        await alice.send(send_frame("m1", "bob"))
        await phone.next("message")
        await phone.send({"action": "markDelivered", "messageIds": ["m1"]})
        assert (await alice.next("receipt"))["data"]["status"] == "delivered"
        assert await sync(phone) == ([], {"count": 0, "more": False})
        other_device = await Client.connect(stack.url, "bob", ack=1)
        assert await sync(other_device) == ([], {"count": 0, "more": False})

    run(scenario())


def test_a_frame_nested_too_deep_to_parse_is_refused_and_the_connection_keeps_serving(stack):
    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        await alice.send('{"action":"sync","x":' + "[" * 15_000 + "]" * 15_000 + "}")
        assert (await alice.next("error"))["data"]["code"] == "BAD_REQUEST"
        assert await sync(alice) == ([], {"count": 0, "more": False})
        await alice.close()
        await until(lambda: not connection_ids(stack), what="$disconnect removing alice's row")

    run(scenario())


@pytest.mark.parametrize("user", ["alice%0A", "alice%0D%0A", "%0Aalice"])
def test_a_user_id_with_a_line_break_is_refused(stack, user):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(f"{stack.url}?userId={user}")
        assert refused.value.response.status_code == 401

    run(scenario())
    assert connection_ids(stack) == []


def test_connect_with_an_unknown_ack_value_is_refused_with_400(stack):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(f"{stack.url}?userId=bob&ack=yes")
        assert refused.value.response.status_code == 400

    run(scenario())


def test_a_sync_cursor_continues_on_the_real_server_even_when_its_message_has_left_sync(stack):
    # Given five messages waiting for bob, stored through the real stack
    async def send_five():
        alice = await Client.connect(stack.url, "alice")
        for i in range(5):  # each after the one before is stored, so they are in this order
            await alice.send(send_frame(f"m{i}", "bob"))
            await alice.next("ack")

    run(send_five())
    db = stack.dynamodb()
    tables = db.list_tables()["TableNames"]
    kinds = ("Connections", "Messages", "Conversations", "Contents")
    names = {kind.lower(): next(t for t in tables if kind in t) for kind in kinds}
    messages = Tables.open(db, **names, history_index="history-index").messages
    waiting = list(messages.pending("bob"))
    assert [m.message_id for m in waiting] == [f"m{i}" for i in range(5)]
    # When the message a cursor points at is confirmed before the client continues
    position = (waiting[1].sent_at, waiting[1].message_id)
    assert messages.confirm("m1", "bob") == "delivered"
    # Then dynalite, like DynamoDB, continues after that position: nothing skipped, nothing repeated
    assert [m.message_id for m in messages.pending("bob", after=position)] == ["m2", "m3", "m4"]
    assert [m.message_id for m in messages.pending("bob", after=position, page_size=1)] == ["m2", "m3", "m4"]
