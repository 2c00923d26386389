"""The wire protocol: what a client may send, and every frame the server sends back.

docs/protocol.md describes the same rules for client authors; keep the two in step.
Client frames are JSON objects routed by ``action``. Server frames are
``{"type": ..., "data": {...}}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime

from . import contract
from .messages import Message

# Error codes a client can receive.
BAD_REQUEST = "BAD_REQUEST"
UNKNOWN_ACTION = "UNKNOWN_ACTION"
FORBIDDEN = "FORBIDDEN"
CONFLICT = "CONFLICT"
INTERNAL = "INTERNAL"

FRAME_LIMIT_BYTES = contract.FRAME_LIMIT_BYTES  # API Gateway's, both ways
ID_MAX_CHARS = contract.ID_MAX_CHARS
NAME_MAX_CHARS = contract.NAME_MAX_CHARS
MESSAGE_IDS_MAX = 100  # per markRead or markDelivered
PAGE_MAX = 100  # entries per conversations or history page, and user ids per presence
PAGE_DEFAULT = 50
TYPING_STATES = ("start", "stop")
USER_ID = re.compile(contract.USER_ID_PATTERN)  # the whole string (fullmatch)
# The conversation a sendMessage without conversationId goes to: one per pair of users,
# derived by the server. Nobody can claim an id with this prefix for another pair.
CANONICAL_PREFIX = "dm-"
SENT_AT_MAX_CHARS = 32  # 2025-10-21T10:30:00.123456Z, from the server

# Fields of a stored message that clients see, in the frame shape the first iOS client
# reads, plus sentAt (the server's time of storage). The reply quote is filled by the
# server from the original message; what a client sends as a quote is ignored.
MESSAGE_FIELDS = (
    "messageId",
    "conversationId",
    "senderId",
    "senderName",
    "recipientId",
    "content",
    "timestamp",
    "sentAt",
    "status",
    "replyToMessageId",
    "replyToSenderId",
    "replyToContent",
    "replyToSenderName",
    "isDeleted",
)


class ProtocolError(Exception):
    """A client frame we refuse. Turned into an error frame; nothing is written."""

    def __init__(self, code: str, message: str, message_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.message_id = message_id


def canonical_conversation_id(user_a: str, user_b: str) -> str:
    """The pair's own conversation id: the same whoever sends first."""
    digest = hashlib.sha256("\n".join(sorted((user_a, user_b))).encode("utf-8")).hexdigest()
    return CANONICAL_PREFIX + digest[:40]


# ---- server -> client frames -------------------------------------------------


def encode(frame: dict) -> bytes:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def message_frame(message: Message) -> dict:
    attributes = message.attributes()
    data = {k: attributes[k] for k in MESSAGE_FIELDS if k in attributes}
    if not data.get("isDeleted"):
        data.pop("isDeleted", None)
    return {"type": "message", "data": data}


def ack_frame(message_id: str, status: str, sent_at: str, conversation_id: str, duplicate: bool = False) -> dict:
    """duplicate: the messageId was stored already (a retry): this send stored and delivered nothing."""
    data = {"messageId": message_id, "status": status, "sentAt": sent_at, "conversationId": conversation_id}
    if duplicate:
        data["duplicate"] = True
    return {"type": "ack", "data": data}


def _answer(kind: str, data: dict, next_position: tuple[str, str] | None, request_id: str | None) -> dict:
    """A page of a request/response action: next is absent on the last page."""
    if next_position is not None:
        data["next"] = encode_cursor(next_position)
    if request_id is not None:
        data["requestId"] = request_id
    return {"type": kind, "data": data}


def conversations_frame(entries: list[dict], next_position, request_id: str | None) -> dict:
    return _answer("conversations", {"conversations": entries}, next_position, request_id)


def history_frame(conversation_id: str, messages: list[dict], next_position, request_id: str | None) -> dict:
    return _answer("history", {"conversationId": conversation_id, "messages": messages}, next_position, request_id)


def presence_frame(users: list[dict], request_id: str | None) -> dict:
    return _answer("presence", {"users": users}, None, request_id)


def typing_frame(conversation_id: str, user_id: str, state: str) -> dict:
    return {"type": "typing", "data": {"conversationId": conversation_id, "userId": user_id, "state": state}}


def fill_page(kind_frame, entries: list[tuple], more: bool) -> tuple[list[dict], tuple[str, str] | None]:
    """As many of the (position, entry) pairs as fit one frame. Returns the page and the
    position the next page continues after: None if nothing is left (more: the entries
    are not all there is)."""
    # the frame with no entries and the longest cursor, then each entry and its comma
    size = len(encode(kind_frame([], LONGEST_POSITION)))
    page: list[dict] = []
    for i, (_, entry) in enumerate(entries):
        size += len(encode(entry)) + 1
        if size > FRAME_LIMIT_BYTES:
            if not page:  # every message fits a frame (ensure_fits at send), so this is a bug
                raise RuntimeError("a page entry does not fit a frame on its own")
            return page, entries[i - 1][0]
        page.append(entry)
    return page, entries[-1][0] if more and entries else None


def receipt_frame(message_id: str, conversation_id: str, status: str) -> dict:
    data = {"messageId": message_id, "conversationId": conversation_id, "status": status}
    return {"type": "receipt", "data": data}


def read_frame(conversation_id: str, message_ids: list[str]) -> dict:
    """To the reader's other devices: these messages were read on one of yours."""
    return {"type": "read", "data": {"conversationId": conversation_id, "messageIds": message_ids}}


def sync_complete_frame(count: int, more: bool, position: tuple[str, str] | None) -> dict:
    """The end of a sync: count message frames posted. With more (the function stopped at
    its time limit), the client sends sync again with after=next to continue."""
    data: dict = {"count": count, "more": more}
    if more and position is not None:
        data["next"] = encode_cursor(position)
    return {"type": "syncComplete", "data": data}


def deleted_frame(message_id: str, conversation_id: str) -> dict:
    return {"type": "messageDeleted", "data": {"messageId": message_id, "conversationId": conversation_id}}


# The longest position a page's cursor can hold, and the longest requestId: what a page
# of history or conversations may need beside its entries.
LONGEST_POSITION = ("0" * SENT_AT_MAX_CHARS, "\x00" * ID_MAX_CHARS)
LONGEST_REQUEST_ID = "\x00" * ID_MAX_CHARS


def ensure_fits(message: Message, message_id: str | None = None) -> None:
    """BAD_REQUEST unless the message, as the server would post it, fits API Gateway's
    limit in every frame it can be in: its own message frame, and a history or
    conversations page that holds only it, with the longest cursor and requestId (so a
    page can always hold it). Escapes count: JSON writes a control character as six bytes."""
    data = message_frame(message)["data"]
    entry = {"conversationId": data["conversationId"], "peerId": "x" * ID_MAX_CHARS, "lastMessage": data}
    entry |= {"unreadCount": 10**9, "updatedAt": "0" * SENT_AT_MAX_CHARS}
    frames = (
        message_frame(message),
        history_frame(data["conversationId"], [data], LONGEST_POSITION, LONGEST_REQUEST_ID),
        conversations_frame([entry], LONGEST_POSITION, LONGEST_REQUEST_ID),
    )
    size = max(len(encode(frame)) for frame in frames)
    if size > FRAME_LIMIT_BYTES:
        raise ProtocolError(
            BAD_REQUEST,
            f"this message would be a {size}-byte frame (JSON escapes and any reply quote included); frames are "
            f"limited to {FRAME_LIMIT_BYTES} bytes",
            message_id,
        )


def error_frame(code: str, message: str, message_id: str | None = None, request_id: str | None = None) -> dict:
    data = {"code": code, "message": message}
    if message_id is not None:
        data["messageId"] = message_id
    if request_id is not None:
        data["requestId"] = request_id
    return {"type": "error", "data": data}


# ---- client -> server frames -------------------------------------------------


def parse_frame(body) -> dict:
    """The JSON object a client sent, or BAD_REQUEST."""
    if body is None or body == "":
        raise ProtocolError(BAD_REQUEST, "empty frame: send a JSON object with an 'action'")
    try:
        frame = json.loads(body)
    except (TypeError, ValueError):
        raise ProtocolError(BAD_REQUEST, "frame is not valid JSON") from None
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "frame is nested too deeply to parse") from None
    if not isinstance(frame, dict):
        raise ProtocolError(BAD_REQUEST, "frame must be a JSON object with an 'action'")
    return frame


def frame_message_id(frame: dict) -> str | None:
    """The frame's messageId if it is a usable string, so errors can name it."""
    return _usable_id(frame, "messageId")


def frame_request_id(frame: dict) -> str | None:
    """The frame's requestId if it is usable, so an answer or error can echo it."""
    return _usable_id(frame, "requestId")


def _usable_id(frame: dict, field: str) -> str | None:
    value = frame.get(field)
    if isinstance(value, str) and 0 < len(value) <= ID_MAX_CHARS and value.isprintable():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return None
        return value
    return None


@dataclass(frozen=True)
class SendMessage:
    message_id: str
    conversation_id: str | None  # None: the pair's canonical conversation
    recipient_id: str
    content: str
    sender_name: str | None
    timestamp: str | None
    sender_id: str | None
    reply_to: str | None  # replyToMessageId


def _string(frame: dict, field: str, *, required: bool, max_chars: int, mid: str | None) -> str | None:
    value = frame.get(field)
    if value is None:
        if required:
            raise ProtocolError(BAD_REQUEST, f"'{field}' is required", mid)
        return None
    if not isinstance(value, str):
        raise ProtocolError(BAD_REQUEST, f"'{field}' must be a string", mid)
    if not value.strip():
        raise ProtocolError(BAD_REQUEST, f"'{field}' must not be empty", mid)
    if len(value) > max_chars:
        raise ProtocolError(BAD_REQUEST, f"'{field}' is longer than {max_chars} characters", mid)
    _utf8_size(value, field, 4 * max_chars, mid)
    return value


def _utf8_size(value: str, field: str, limit: int, mid: str | None) -> None:
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:  # lone surrogates from a "\ud800" escape
        raise ProtocolError(BAD_REQUEST, f"'{field}' is not valid Unicode text", mid) from None
    if size > limit:
        raise ProtocolError(BAD_REQUEST, f"'{field}' is {size} bytes; the limit is {limit}", mid)


def _timestamp(value: str | None, mid: str | None) -> str | None:
    if value is None:
        return None
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ProtocolError(BAD_REQUEST, "'timestamp' must be ISO-8601, e.g. 2025-10-21T10:30:00Z", mid) from None
    return value


def parse_send_message(frame: dict, max_content_bytes: int) -> SendMessage:
    mid = frame_message_id(frame)
    message_id = _string(frame, "messageId", required=True, max_chars=ID_MAX_CHARS, mid=mid)
    conversation_id = _string(frame, "conversationId", required=False, max_chars=ID_MAX_CHARS, mid=mid)
    recipient_id = _user_id(frame, "recipientId", mid)
    content = frame.get("content")
    if not isinstance(content, str) or content == "":
        raise ProtocolError(BAD_REQUEST, "'content' is required and must be a non-empty string", mid)
    _utf8_size(content, "content", max_content_bytes, mid)
    # replyToContent and replyToSenderName are not read: the server quotes the original.
    reply_to = _string(frame, "replyToMessageId", required=False, max_chars=ID_MAX_CHARS, mid=mid)
    sender_name = _string(frame, "senderName", required=False, max_chars=NAME_MAX_CHARS, mid=mid)
    timestamp = _string(frame, "timestamp", required=False, max_chars=64, mid=mid)
    sender_id = _string(frame, "senderId", required=False, max_chars=ID_MAX_CHARS, mid=mid)
    return SendMessage(
        message_id=message_id,
        conversation_id=conversation_id,
        recipient_id=recipient_id,
        content=content,
        sender_name=sender_name,
        timestamp=_timestamp(timestamp, mid),
        sender_id=sender_id,
        reply_to=reply_to,
    )


def _user_id(frame: dict, field: str, mid: str | None) -> str:
    value = frame.get(field)
    if not isinstance(value, str) or not USER_ID.fullmatch(value):
        raise ProtocolError(BAD_REQUEST, f"'{field}' must be a user id: {contract.USER_ID_RULE}", mid)
    return value


def _request_id(frame: dict) -> str | None:
    value = frame.get("requestId")
    if value is not None and frame_request_id(frame) is None:
        raise ProtocolError(BAD_REQUEST, f"'requestId' must be a string of 1 to {ID_MAX_CHARS} printable characters")
    return value


def _limit(frame: dict) -> int:
    value = frame.get("limit", PAGE_DEFAULT)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PAGE_MAX:
        raise ProtocolError(BAD_REQUEST, f"'limit' must be a whole number from 1 to {PAGE_MAX}")
    return value


@dataclass(frozen=True)
class PageRequest:
    """conversations and history: a page of limit entries, from a cursor."""

    limit: int
    cursor: tuple[str, str] | None
    request_id: str | None
    conversation_id: str | None = None  # history's


def parse_conversations(frame: dict) -> PageRequest:
    request_id = _request_id(frame)
    limit = _limit(frame)
    cursor = frame.get("cursor")
    position = None if cursor is None else decode_cursor(cursor, "'cursor' must be the 'next' of an earlier page")
    return PageRequest(limit, position, request_id)


def parse_history(frame: dict) -> PageRequest:
    page = parse_conversations(frame)
    conversation_id = _conversation_id(frame)
    return PageRequest(page.limit, page.cursor, page.request_id, conversation_id)


def _conversation_id(frame: dict) -> str:
    value = frame.get("conversationId")
    if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
        raise ProtocolError(BAD_REQUEST, f"'conversationId' is required: a string of 1 to {ID_MAX_CHARS} characters")
    _utf8_size(value, "conversationId", 4 * ID_MAX_CHARS, None)
    return value


@dataclass(frozen=True)
class Typing:
    conversation_id: str
    state: str


def parse_typing(frame: dict) -> Typing:
    state = frame.get("state", "start")
    if state not in TYPING_STATES:
        raise ProtocolError(BAD_REQUEST, "'state' must be start or stop")
    return Typing(_conversation_id(frame), state)


@dataclass(frozen=True)
class Presence:
    user_ids: list[str]
    request_id: str | None


def parse_presence(frame: dict) -> Presence:
    request_id = _request_id(frame)
    ids = frame.get("userIds")
    if (
        not isinstance(ids, list)
        or not 1 <= len(ids) <= PAGE_MAX
        or not all(isinstance(u, str) and USER_ID.fullmatch(u) for u in ids)
    ):
        raise ProtocolError(BAD_REQUEST, f"'userIds' must be a list of 1 to {PAGE_MAX} user ids")
    return Presence(list(dict.fromkeys(ids)), request_id)


@dataclass(frozen=True)
class MarkRead:
    message_ids: list[str] | None
    conversation_id: str | None  # everything to the caller in it, up to now


def parse_mark_read(frame: dict) -> MarkRead:
    if ("messageIds" in frame) == ("conversationId" in frame):
        raise ProtocolError(BAD_REQUEST, "markRead takes either 'messageIds' or 'conversationId'")
    if "conversationId" in frame:
        return MarkRead(None, _conversation_id(frame))
    return MarkRead(parse_message_ids(frame), None)


def parse_message_ids(frame: dict) -> list[str]:
    """markRead and markDelivered: 1 to 100 message ids, repeats dropped."""
    ids = frame.get("messageIds")
    if not isinstance(ids, list) or not 1 <= len(ids) <= MESSAGE_IDS_MAX:
        raise ProtocolError(BAD_REQUEST, f"'messageIds' must be a list of 1 to {MESSAGE_IDS_MAX} message ids")
    for value in ids:
        if not isinstance(value, str) or not value.strip() or len(value) > ID_MAX_CHARS:
            raise ProtocolError(BAD_REQUEST, "every entry of 'messageIds' must be a non-empty string id")
        _utf8_size(value, "messageIds", 4 * ID_MAX_CHARS, None)
    return list(dict.fromkeys(ids))  # drop repeats, keep order


def parse_delete_message(frame: dict) -> str:
    mid = frame_message_id(frame)
    return _string(frame, "messageId", required=True, max_chars=ID_MAX_CHARS, mid=mid)


def parse_sync(frame: dict) -> tuple[str, str] | None:
    """The position to continue from: the ``after`` cursor of a syncComplete, or None."""
    cursor = frame.get("after")
    if cursor is None:
        return None
    return decode_cursor(cursor, "'after' must be the 'next' cursor of a syncComplete frame")


# A cursor is opaque to clients: a position in an index, (sentAt, messageId) of the last
# message a sync or history page holds, or (updatedAt, conversationId) of the last entry
# of a conversations page, which is where the next one continues.
def encode_cursor(position: tuple[str, str]) -> str:
    text = json.dumps(list(position), ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode("utf-8")).decode().rstrip("=")


# the longest cursor: an id of control characters, each escaped to six bytes
CURSOR_MAX_CHARS = len(encode_cursor(("0" * SENT_AT_MAX_CHARS, "\x00" * ID_MAX_CHARS)))


def decode_cursor(cursor, what: str) -> tuple[str, str]:
    bad = ProtocolError(BAD_REQUEST, what)
    if not isinstance(cursor, str) or not 0 < len(cursor) <= CURSOR_MAX_CHARS:
        raise bad
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError):
        raise bad from None
    if not (
        isinstance(position, list)
        and len(position) == 2
        and all(isinstance(p, str) for p in position)
        and 0 < len(position[0]) <= SENT_AT_MAX_CHARS
        and 0 < len(position[1]) <= ID_MAX_CHARS
    ):
        raise bad
    try:
        "".join(position).encode("utf-8")
    except UnicodeEncodeError:
        raise bad from None
    return position[0], position[1]
