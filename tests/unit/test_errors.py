"""Bad input gets a clear error frame, never an exception, and writes nothing."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from harness import ack, send_frame

GOOD = send_frame("m1", "bob")


def without(field):
    return {k: v for k, v in GOOD.items() if k != field}


BAD_FRAMES = {
    "not json": "hello",
    "truncated json": '{"action": "sendMessage"',
    "json array": "[1, 2]",
    "json string": '"sendMessage"',
    "empty body": "",
    "no body": None,
    "no action": {"messageId": "m1"},
    "action not a string": {"action": 7},
    "missing messageId": without("messageId"),
    "conversationId blank": {**GOOD, "conversationId": " "},
    "conversationId a number": {**GOOD, "conversationId": 7},
    "recipientId not a user id": {**GOOD, "recipientId": "#pair"},
    "missing recipientId": without("recipientId"),
    "missing content": without("content"),
    "empty content": {**GOOD, "content": ""},
    "content not a string": {**GOOD, "content": {"text": "hi"}},
    "messageId a number": {**GOOD, "messageId": 1},
    "recipientId blank": {**GOOD, "recipientId": "   "},
    "recipientId too long": {**GOOD, "recipientId": "b" * 129},
    "senderName a list": {**GOOD, "senderName": ["A"]},
    "timestamp not ISO-8601": {**GOOD, "timestamp": "yesterday"},
    "lone surrogate content": '{"action":"sendMessage","messageId":"m1","conversationId":"c","recipientId":"b",'
    '"content":"\\ud800"}',
    "markRead without ids": {"action": "markRead"},
    "markRead empty list": {"action": "markRead", "messageIds": []},
    "markRead 101 ids": {"action": "markRead", "messageIds": [f"m{i}" for i in range(101)]},
    "markRead id not a string": {"action": "markRead", "messageIds": [1]},
    "deleteMessage without id": {"action": "deleteMessage"},
    "markDelivered without ids": {"action": "markDelivered"},
    "markDelivered 101 ids": {"action": "markDelivered", "messageIds": [f"m{i}" for i in range(101)]},
    "markDelivered id blank": {"action": "markDelivered", "messageIds": [" "]},
    "sync after a number": {"action": "sync", "after": 5},
    "markRead ids and a conversation": {"action": "markRead", "messageIds": ["m1"], "conversationId": "c"},
    "markRead conversation blank": {"action": "markRead", "conversationId": ""},
    "conversations limit 0": {"action": "conversations", "limit": 0},
    "conversations limit 101": {"action": "conversations", "limit": 101},
    "conversations limit true": {"action": "conversations", "limit": True},
    "conversations limit a string": {"action": "conversations", "limit": "5"},
    "conversations cursor not ours": {"action": "conversations", "cursor": "bm90IGEgY3Vyc29y"},
    "conversations requestId a number": {"action": "conversations", "requestId": 5},
    "history without conversationId": {"action": "history"},
    "history cursor a list": {"action": "history", "conversationId": "c", "cursor": ["a"]},
    "typing without conversationId": {"action": "typing"},
    "typing state sideways": {"action": "typing", "conversationId": "c", "state": "sideways"},
    "presence without ids": {"action": "presence"},
    "presence empty list": {"action": "presence", "userIds": []},
    "presence 101 ids": {"action": "presence", "userIds": [f"u{i}" for i in range(101)]},
    "presence id not a user id": {"action": "presence", "userIds": ["a b"]},
}


@pytest.mark.parametrize("frame", BAD_FRAMES.values(), ids=BAD_FRAMES.keys())
def test_bad_frames_get_BAD_REQUEST_and_write_nothing(chat, frame):
    alice = chat.online("alice")
    before = chat.items("connections")
    response = chat.send(alice, frame)
    assert response == {"statusCode": 200}
    [error] = chat.frames(alice)
    assert error["type"] == "error" and error["data"]["code"] == "BAD_REQUEST"
    assert error["data"]["message"]  # a sentence a developer can act on
    assert chat.items("messages") == [] and chat.items("connections") == before


def test_an_error_names_the_messageId_when_the_frame_had_one(chat):
    alice = chat.online("alice")
    chat.send(alice, without("content"))
    assert chat.frames(alice)[0]["data"] == {
        "code": "BAD_REQUEST",
        "message": "'content' is required and must be a non-empty string",
        "messageId": "m1",
    }


def test_oversize_content_is_refused_with_its_size(chat):
    alice = chat.online("alice")
    limit = chat.settings.max_content_bytes
    chat.send(alice, send_frame("m1", "bob", "é" * (limit // 2) + "x"))
    [error] = chat.frames(alice)
    assert error["data"]["code"] == "BAD_REQUEST" and str(limit) in error["data"]["message"]
    assert chat.items("messages") == []


def test_unknown_action_is_named_in_the_error(chat):
    alice = chat.online("alice")
    chat.send(alice, {"action": "sendMesage"})
    [error] = chat.frames(alice)
    assert error["data"]["code"] == "UNKNOWN_ACTION" and "sendMesage" in error["data"]["message"]


def test_a_connection_that_never_registered_is_forbidden(chat):
    chat.send("conn-unknown", GOOD)
    [error] = chat.frames("conn-unknown")
    assert error["data"]["code"] == "FORBIDDEN"
    assert chat.items("messages") == []


@pytest.mark.parametrize(
    "code, status",
    [("ProvisionedThroughputExceededException", 400), ("InternalServerError", 500)],
    ids=["throttled", "5xx"],
)
def test_a_store_failure_gives_a_retryable_INTERNAL_error_and_nobody_sees_the_message(chat, monkeypatch, code, status):
    alice, bob = chat.online("alice"), chat.online("bob")
    real_put = chat.client.put_item

    def failing(**kwargs):
        error = {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}
        raise ClientError(error, "PutItem")

    monkeypatch.setattr(chat.client, "put_item", failing)
    response = chat.send(alice, GOOD)
    assert response == {"statusCode": 200}
    assert chat.take(alice) == [
        {
            "type": "error",
            "data": {"code": "INTERNAL", "message": "the server could not finish this; retry", "messageId": "m1"},
        }
    ]
    assert chat.frames(bob) == [] and chat.items("messages") == []

    # When the client retries after the store recovers, the message goes through exactly once
    monkeypatch.setattr(chat.client, "put_item", real_put)
    chat.send(alice, GOOD)
    chat.send(alice, GOOD)
    assert [f["type"] for f in chat.frames(bob)] == ["message"]
    assert [f["type"] for f in chat.frames(alice)] == ["ack", "ack"]


def test_a_failure_after_storing_still_acks_and_the_message_waits_for_sync(chat, monkeypatch):
    alice, bob = chat.online("alice"), chat.online("bob")
    monkeypatch.setattr(chat.tables.connections, "of_user", lambda user: (_ for _ in ()).throw(RuntimeError("boom")))
    chat.send(alice, GOOD)
    assert chat.frames(alice) == [ack("m1", "sent")]
    assert chat.message("m1")["pendingFor"] == "bob"
    monkeypatch.undo()
    chat.send(bob, {"action": "sync"})
    assert [f["data"]["messageId"] for f in chat.frames(bob) if f["type"] == "message"] == ["m1"]


def test_frames_are_json_text_that_round_trips_unicode(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m1", "bob", "héllo 👋 \u202e"))
    assert chat.frames(bob)[0]["data"]["content"] == "héllo 👋 \u202e"
    assert json.loads(json.dumps(chat.frames(bob)[0])) == chat.frames(bob)[0]


def test_a_frame_nested_deeper_than_the_parser_allows_is_a_bad_request_not_internal(chat):
    # Given a frame nested far deeper than Python's recursion limit (a few KB of brackets)
    alice = chat.online("alice")
    deep = '{"action":"sendMessage","content":' + "[" * 15_000 + "]" * 15_000 + "}"  # under 32 KB
    # When it arrives, Then the client is told to fix it, not to retry
    assert chat.send(alice, deep) == {"statusCode": 200}
    [error] = chat.frames(alice)
    assert error["data"]["code"] == "BAD_REQUEST" and "nested" in error["data"]["message"]
    assert chat.items("messages") == []
