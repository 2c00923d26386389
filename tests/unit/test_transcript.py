"""A scripted conversation, snapshotted: every frame each connection received and the
items left in the tables (times normalized). A diff here is a protocol change."""

from __future__ import annotations

import re

from syrupy.extensions.json import JSONSnapshotExtension

from harness import send_frame

TIME_FIELDS = {"connectedAt", "ttl", "sentAt", "deliveredAt", "readAt", "deletedAt", "createdAt", "lastSeen"}
CURSOR_FIELDS = {"next"}  # base64 of a position that holds a server time
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def normalize(value):
    if isinstance(value, dict):
        return {
            k: "<time>" if k in TIME_FIELDS else "<cursor>" if k in CURSOR_FIELDS else normalize(v)
            for k, v in sorted(value.items())
        }
    if isinstance(value, list):
        return [normalize(v) for v in value]
    if isinstance(value, str) and ISO.match(value):
        return "<server time>"
    return value


def test_scripted_conversation_transcript(chat, snapshot):
    alice_phone, alice_laptop, bob = chat.online("alice"), chat.online("alice"), chat.online("bob")
    chat.send(
        alice_phone,
        send_frame(
            "m1", "bob", "Hi Bob", senderName="Alice", timestamp="2025-10-21T10:30:00Z", conversationId="conv-1"
        ),
    )
    chat.send(
        bob,
        send_frame(
            "m2",
            "alice",
            "Hi Alice",
            senderName="Bob",
            replyToMessageId="m1",
            replyToContent="Hi Bob",
            replyToSenderName="Alice",
            conversationId="conv-1",
        ),
    )
    chat.send(alice_phone, send_frame("m3", "carol", "Carol, are you there?", conversationId="conv-2"))
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})
    chat.send(alice_phone, send_frame("m1", "bob", "Hi Bob", conversationId="conv-1"))  # a retry
    chat.send(bob, send_frame("m1", "alice", "hijack"))  # CONFLICT
    chat.send(bob, {"action": "deleteMessage", "messageId": "m1"})  # FORBIDDEN: not the sender
    chat.send(alice_phone, {"action": "deleteMessage", "messageId": "m1"})
    carol = chat.online("carol")
    chat.send(carol, {"action": "sync"})
    chat.send(carol, {"action": "markRead", "messageIds": ["m3"]})
    chat.send(carol, {"action": "typing", "conversationId": "conv-2"})
    chat.send(carol, {"action": "typing", "conversationId": "conv-2", "state": "stop"})
    chat.send(carol, send_frame("m4", "bob", "Bob?", conversationId="conv-2"))  # FORBIDDEN: alice and carol's
    chat.send(bob, {"action": "typing", "conversationId": "conv-2"})  # FORBIDDEN: not bob's
    chat.send(alice_phone, send_frame("m5", "carol", "Yes?"))  # no conversationId: the pair's own
    chat.send(carol, {"action": "conversations", "limit": 1, "requestId": "r1"})
    chat.send(carol, {"action": "history", "conversationId": "conv-2", "requestId": "r2"})
    chat.send(carol, {"action": "presence", "userIds": ["alice", "bob"], "requestId": "r3"})
    chat.send(carol, {"action": "markRead", "conversationId": "conv-2"})
    chat.send(carol, {"action": "history", "conversationId": "conv-1"})  # FORBIDDEN: alice and bob's
    chat.send(carol, {"action": "wave"})  # UNKNOWN_ACTION
    chat.send(carol, "{oops")  # BAD_REQUEST
    chat.disconnect(alice_laptop)

    transcript = {
        "frames": {
            name: chat.frames(conn)
            for name, conn in [
                ("alice_phone", alice_phone),
                ("alice_laptop", alice_laptop),
                ("bob", bob),
                ("carol", carol),
            ]
        },
        "connections": sorted(chat.items("connections"), key=lambda r: r["connectionId"]),
        "messages": sorted(chat.items("messages"), key=lambda r: r["messageId"]),
        "contents": sorted(chat.items("contents"), key=lambda r: r["messageId"]),
        "conversations": sorted(chat.items("conversations"), key=lambda r: (r["conversationId"], r["userId"])),
    }
    assert normalize(transcript) == snapshot(extension_class=JSONSnapshotExtension)
