"""markDelivered, delivery a phone can trust: a connection opened with ?ack=1 confirms
what it receives, and until a device of the recipient does, the message stays pending and
in sync (test_sync.py). A device without ack mode confirms by receiving."""

from __future__ import annotations

from harness import TimeFor, ack, confirm, messages, receipts, send_frame


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
