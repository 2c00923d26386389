"""$connect, $disconnect, 410 cleanup and the ttl filter."""

from __future__ import annotations

import dataclasses
from unittest.mock import ANY

import pytest

from chat.config import MissingSetting
from harness import Chat, ack, messages, send_frame


def test_connect_records_the_user_with_a_24_hour_ttl(chat):
    conn, response = chat.connect({"userId": "alice"})
    assert response == {"statusCode": 200}
    [row] = chat.items("connections")
    assert row["connectionId"] == conn and row["userId"] == "alice"
    assert row["ttl"] - row["connectedAt"] == 24 * 3600


def test_dev_mode_without_a_usable_userId_is_refused_with_401_and_nothing_written(chat):
    for query in (None, {}, {"userId": ""}, {"userId": "a b"}, {"userId": "x" * 129}, {"token": "abc"}):
        _, response = chat.connect(query)
        assert response["statusCode"] == 401, query
    assert chat.items("connections") == []


def test_disconnect_removes_the_connection_and_remembers_when_its_user_was_last_seen(chat):
    alice = chat.online("alice")
    assert chat.disconnect(alice) == {"statusCode": 200}
    assert chat.tables.connections.of_user("alice") == []
    [row] = chat.items("connections")
    assert row == {"connectionId": "#lastSeen:alice", "lastSeen": ANY}


def test_a_gone_recipient_connection_is_removed_and_the_message_waits_for_sync(chat):
    alice, bob_dead = chat.online("alice"), chat.online("bob")
    chat.api.gone.add(bob_dead)  # died without a close frame, a minute ago
    chat.later(60)
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.frames(alice) == [ack("m1", "sent")]
    assert [r["connectionId"] for r in chat.items("connections")] == [alice]
    stored = chat.message("m1")
    assert stored["status"] == "sent" and stored["pendingFor"] == "bob"
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ["m1"]


def test_410_on_every_recipient_device_removes_them_all_and_the_message_waits_for_sync(chat):
    # Given bob's phone and laptop both died without a close frame
    alice, phone, laptop = chat.online("alice"), chat.online("bob"), chat.online("bob")
    chat.api.gone.update({phone, laptop})
    chat.later(60)
    # When alice sends, both posts answer 410
    chat.send(alice, send_frame("m1", "bob"))
    # Then both rows are gone, nothing is marked delivered, and bob's next sync gets it once
    assert chat.frames(alice) == [ack("m1", "sent")]
    assert [r["connectionId"] for r in chat.items("connections")] == [alice]
    assert chat.message("m1")["status"] == "sent"
    bob = chat.online("bob")
    chat.send(bob, {"action": "sync"})
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ["m1"]


def test_a_410_from_a_connection_still_in_its_handshake_keeps_its_row(chat):
    # Given bob's phone connected a moment ago: API Gateway answers 410 until the handshake completes
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.api.gone.add(bob)
    # When alice's message is posted to it in that window
    chat.send(alice, send_frame("m1", "bob"))
    # Then the row stays (so bob's next frames are still his), and the message waits for sync
    assert bob in [r["connectionId"] for r in chat.items("connections")]
    chat.api.gone.clear()
    chat.send(bob, {"action": "sync"})
    assert [f["data"]["messageId"] for f in chat.frames(bob) if f["type"] == "message"] == ["m1"]


def test_one_gone_device_does_not_stop_delivery_to_the_others(chat):
    alice, bob_old, bob_new = chat.online("alice"), chat.online("bob"), chat.online("bob")
    chat.api.gone.add(bob_old)
    chat.later(60)
    chat.send(alice, send_frame("m1", "bob"))
    assert [f["type"] for f in chat.frames(bob_new)] == ["message"]
    assert chat.frames(alice)[-1]["data"]["status"] == "delivered"
    assert bob_old not in [r["connectionId"] for r in chat.items("connections")]


def test_a_non_410_post_failure_keeps_the_connection_and_the_message_deliverable(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.api.broken.add(bob)
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.frames(alice)[-1] == ack("m1", "sent")
    assert chat.message("m1")["status"] == "sent"
    assert bob in [r["connectionId"] for r in chat.items("connections")]
    chat.api.broken.clear()
    chat.send(bob, {"action": "sync"})
    assert messages(chat.frames(bob)) == ["m1"]


def test_connection_rows_past_their_ttl_are_ignored(dynamodb, dev_template):
    now = [1_000_000.0]
    chat = Chat(dynamodb, dev_template, clock=lambda: now[0])
    alice, bob = chat.online("alice"), chat.online("bob")
    now[0] += 24 * 3600 + 1  # DynamoDB has not deleted the rows yet
    chat.send(alice, send_frame("m1", "bob"))
    # alice's own row is expired too, so her frame is refused; nothing is sent to bob
    assert chat.frames(alice)[0]["data"]["code"] == "FORBIDDEN"
    assert chat.frames(bob) == []
    fresh = chat.online("alice")
    chat.send(fresh, send_frame("m1", "bob"))
    assert chat.frames(bob) == [] and chat.message("m1")["status"] == "sent"


def test_the_management_endpoint_is_the_stage_of_the_calling_api(chat):
    alice = chat.online("alice")
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.api.endpoints == {"https://abc123.execute-api.us-east-1.amazonaws.com/production"}


def test_behind_a_custom_domain_posts_still_go_to_the_stages_own_url(chat):
    # Given requests that arrive through a custom domain name (where @connections posts get 403)
    chat.domain = "chat.example.com"
    alice, bob = chat.online("alice"), chat.online("bob")
    # When alice sends
    chat.send(alice, send_frame("m1", "bob"))
    # Then the message function posted through the stage's execute-api URL, and bob got it
    assert chat.api.endpoints == {"https://abc123.execute-api.us-east-1.amazonaws.com/production"}
    assert messages(chat.frames(bob)) == ["m1"]


def test_a_message_function_without_its_callback_url_says_which_setting_is_missing(chat):
    alice = chat.online("alice")
    chat.services.settings = dataclasses.replace(chat.settings, callback_url="")
    with pytest.raises(MissingSetting, match="CALLBACK_URL is not set"):
        chat.send(alice, send_frame("m1", "bob"))


def test_dev_mode_refuses_a_userId_with_a_trailing_newline(chat):
    # alice%0A would otherwise be a second identity that prints as "alice"
    for user in ("alice\n", "alice\r\n", "\nalice"):
        _, response = chat.connect({"userId": user})
        assert response["statusCode"] == 401, repr(user)
    assert chat.items("connections") == []


@pytest.mark.parametrize("value", ["2", "true", "", "1\n"])
def test_connect_with_an_unknown_ack_value_is_refused_and_writes_nothing(chat, value):
    _, response = chat.connect({"userId": "bob", "ack": value})
    assert response["statusCode"] == 400 and "ack must be 1" in response["body"]
    assert chat.items("connections") == []
