"""API Gateway caps every WebSocket frame at 32 KB, in both directions: a larger client
frame closes the connection (1009) before any Lambda runs, and a larger @connections
post is refused. Every frame the server posts must therefore fit, a message with its
reply quote included."""

from __future__ import annotations

from chat import protocol
from chat.messages import Message
from harness import send_frame
from stacks.config import DEFAULTS, MAX_CONTENT_BYTES_LIMIT

ID_FIELDS = ("messageId", "conversationId", "senderId", "recipientId", "replyToMessageId", "replyToSenderId")


def test_the_largest_allowed_message_with_the_largest_quote_fits_in_one_frame():
    # Given content and a quote at the largest maxContentBytes, and every other field at its maximum
    longest_id, longest_name = "i" * protocol.ID_MAX_CHARS, "n" * protocol.NAME_MAX_CHARS
    item = {
        **dict.fromkeys(ID_FIELDS, longest_id),
        "senderName": longest_name,
        "replyToSenderName": longest_name,
        "content": "x" * MAX_CONTENT_BYTES_LIMIT,
        "replyToContent": "y" * MAX_CONTENT_BYTES_LIMIT,
        "timestamp": "2025-10-21T10:30:00.123456789+05:30",
        "sentAt": "2025-10-21T10:30:00.123456Z",
        "status": "delivered",
    }
    # Then the message frame the server posts fits API Gateway's frame
    message = Message.from_items(item, item)  # (a row, and its Contents item)
    assert len(protocol.encode(protocol.message_frame(message))) <= protocol.FRAME_LIMIT_BYTES
    assert DEFAULTS["maxContentBytes"] <= MAX_CONTENT_BYTES_LIMIT


def test_a_message_whose_frame_would_not_fit_is_refused_before_it_is_stored(chat):
    # Given content within the byte limit that JSON must escape (each control character becomes \\u00XX)
    alice, bob = chat.online("alice"), chat.online("bob")
    content = "\x01" * 6000  # 6,000 UTF-8 bytes, 36,000 in a frame
    chat.send(alice, send_frame("m1", "bob", content))
    [error] = chat.frames(alice)
    assert error["data"]["code"] == "BAD_REQUEST" and "32768" in error["data"]["message"]
    assert chat.items("messages") == [] and chat.frames(bob) == []


def test_a_long_reply_to_a_long_message_reaches_the_recipient(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    limit = chat.settings.max_content_bytes
    chat.send(bob, send_frame("m0", "alice", "b" * limit))
    chat.send(alice, send_frame("m1", "bob", "a" * limit, replyToMessageId="m0"))
    reply = [f for f in chat.frames(bob) if f["type"] == "message"][-1]["data"]
    assert reply["content"] == "a" * limit and reply["replyToContent"] == "b" * limit
