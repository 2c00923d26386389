"""What each route does. Handlers in ../connect.py, ../disconnect.py and ../message.py
only build the Services once per container and call in here.

Delivery is claimed before it is posted (a conditional sent -> delivered update), so
a message racing between a live send and a sync reaches the recipient exactly once;
if every post of a claimed message fails, the claim is released and sync delivers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from . import protocol as p
from .auth import Authenticator, Unauthorized
from .config import Settings
from .log import log
from .store import Store, now_iso

# Stop a sync when less than this much Lambda time is left; the client syncs again.
SYNC_TIME_RESERVE_MS = 3000


@dataclass
class Services:
    settings: Settings
    store: Store
    management_api: Callable[[str], Any]  # stage endpoint -> client with post_to_connection
    authenticator: Authenticator | None = None


@lru_cache(maxsize=1)
def default_services() -> Services:
    """Built on first use, once per container; no network until a request needs it."""
    from . import aws

    settings = Settings.from_env()
    return Services(
        settings=settings,
        store=Store(aws.dynamodb(), settings.connections_table, settings.messages_table),
        management_api=aws.management_api,
        authenticator=Authenticator(settings),
    )


def _is_gone(exc: Exception) -> bool:
    response = getattr(exc, "response", {}) or {}
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code == "GoneException" or status == 410


@dataclass
class Call:
    """One invocation of the message function, from one connection."""

    svc: Services
    connection_id: str
    endpoint: str
    context: Any = None
    _connections: dict = field(default_factory=dict)

    @property
    def store(self) -> Store:
        return self.svc.store

    def post(self, connection_id: str, frame: dict) -> bool:
        """True if the frame reached the connection. A 410 removes the stale row."""
        try:
            self.svc.management_api(self.endpoint).post_to_connection(ConnectionId=connection_id, Data=p.encode(frame))
            return True
        except Exception as exc:
            if _is_gone(exc):
                log("info", "connection_gone", connectionId=connection_id)
                try:
                    self.store.delete_connection(connection_id)
                except Exception as cleanup:  # the row also expires by ttl
                    log("warning", "gone_cleanup_failed", connectionId=connection_id, error=type(cleanup).__name__)
            else:
                log("warning", "post_failed", connectionId=connection_id, error=type(exc).__name__)
            return False

    def connections_of(self, user_id: str) -> list[str]:
        """Live connections of a user, looked up at most once per invocation."""
        if user_id not in self._connections:
            self._connections[user_id] = self.store.live_connections(user_id)
        return self._connections[user_id]

    def post_each(self, connection_ids, frame: dict) -> int:
        return sum(self.post(c, frame) for c in connection_ids)

    def time_left_ms(self) -> float:
        if self.context is None:
            return float("inf")
        return self.context.get_remaining_time_in_millis()


# ---- $connect / $disconnect ---------------------------------------------------


def on_connect(event: dict, svc: Services) -> dict:
    connection_id = event["requestContext"]["connectionId"]
    try:
        user_id = svc.authenticator.user_id(event.get("queryStringParameters"))
    except Unauthorized as exc:
        log("info", "connect_refused", connectionId=connection_id, reason=str(exc))
        return {"statusCode": 401, "body": "Unauthorized"}
    svc.store.put_connection(connection_id, user_id, svc.settings.connection_ttl_seconds)
    log("info", "connected", connectionId=connection_id, userId=user_id)
    return {"statusCode": 200}


def on_disconnect(event: dict, svc: Services) -> dict:
    connection_id = event["requestContext"]["connectionId"]
    svc.store.delete_connection(connection_id)
    log("info", "disconnected", connectionId=connection_id)
    return {"statusCode": 200}


# ---- client actions -------------------------------------------------------------


def send_message(call: Call, user_id: str, msg: p.SendMessage) -> None:
    if msg.sender_id is not None and msg.sender_id != user_id:
        raise p.ProtocolError(p.FORBIDDEN, "senderId is not the user of this connection", msg.message_id)
    reply_to = msg.reply.get("replyToMessageId")
    if reply_to is not None:  # a reply may only point at a message its sender can see
        original = call.store.get_message(reply_to)
        if original is None or user_id not in (original.get("senderId"), original.get("recipientId")):
            # one answer for "missing" and "not yours", so ids cannot be probed
            raise p.ProtocolError(p.FORBIDDEN, "replyToMessageId is not a message you can see", msg.message_id)
    sent_at = now_iso()
    item = {
        "messageId": msg.message_id,
        "conversationId": msg.conversation_id,
        "senderId": user_id,
        "senderName": msg.sender_name,
        "recipientId": msg.recipient_id,
        "content": msg.content,
        "timestamp": msg.timestamp or sent_at,
        "sentAt": sent_at,
        "status": p.SENT,
        "pendingFor": msg.recipient_id,
        "isDeleted": False,
        **msg.reply,
    }
    existing = call.store.put_new_message(item)  # durable before anything is acknowledged
    if existing is not None:
        if existing.get("senderId") != user_id:
            raise p.ProtocolError(p.CONFLICT, "messageId is already used by another message", msg.message_id)
        call.post(call.connection_id, p.ack_frame(msg.message_id, existing["status"]))  # a retry
        return

    status = p.SENT
    try:
        status = _deliver_new(call, item)
    except Exception as exc:  # stored already: it stays pending and sync delivers it
        log("warning", "delivery_failed", connectionId=call.connection_id, error=type(exc).__name__)
    call.post(call.connection_id, p.ack_frame(msg.message_id, status))


def _deliver_new(call: Call, item: dict) -> str:
    sender, recipient = item["senderId"], item["recipientId"]
    status = p.SENT
    targets = [c for c in call.connections_of(recipient) if c != call.connection_id]
    if targets and call.store.claim_delivery(item["messageId"]):
        if call.post_each(targets, p.message_frame({**item, "status": p.DELIVERED})):
            status = p.DELIVERED
        else:
            call.store.release_delivery(item["messageId"], recipient)
    if sender != recipient:  # the sender's other devices see the message too
        others = [c for c in call.connections_of(sender) if c != call.connection_id]
        call.post_each(others, p.message_frame({**item, "status": status}))
    return status


def sync(call: Call, user_id: str, _: None) -> None:
    """Every undelivered message for the caller, oldest first, to this connection."""
    for page in call.store.pending_pages(user_id):
        for item in page:
            if call.time_left_ms() < SYNC_TIME_RESERVE_MS:
                log("info", "sync_paused", connectionId=call.connection_id)
                return
            if not call.store.claim_delivery(item["messageId"]):
                continue  # delivered or read meanwhile
            if not call.post(call.connection_id, p.message_frame({**item, "status": p.DELIVERED})):
                call.store.release_delivery(item["messageId"], user_id)
                return
            receipt = p.receipt_frame(item["messageId"], item["conversationId"], p.DELIVERED)
            call.post_each(call.connections_of(item["senderId"]), receipt)


def mark_read(call: Call, user_id: str, ids: list[str]) -> None:
    items = call.store.get_messages(ids)
    for message_id in ids:  # all or nothing: check every id before changing any
        item = items.get(message_id)
        if item is None or item.get("recipientId") != user_id:
            raise p.ProtocolError(p.FORBIDDEN, "only the recipient can mark a message read", message_id)
    for message_id in ids:
        item = items[message_id]
        if item["status"] != p.READ and call.store.mark_read(message_id, user_id):
            receipt = p.receipt_frame(message_id, item["conversationId"], p.READ)
            call.post_each(call.connections_of(item["senderId"]), receipt)


def delete_message(call: Call, user_id: str, message_id: str) -> None:
    item = call.store.soft_delete(message_id, user_id)
    if item is None:
        raise p.ProtocolError(p.FORBIDDEN, "only the sender can delete a message", message_id)
    notice = p.deleted_frame(message_id, item["conversationId"])
    targets = dict.fromkeys(call.connections_of(item["recipientId"]) + call.connections_of(user_id))
    call.post_each(targets, notice)  # the caller's connection included, as confirmation


# action -> (parse the frame, then run it). Parsing comes first, so bad input costs no request.
ACTIONS = {
    "sendMessage": (lambda frame, settings: p.parse_send_message(frame, settings.max_content_bytes), send_message),
    "sync": (lambda frame, settings: None, sync),
    "markRead": (lambda frame, settings: p.parse_mark_read(frame), mark_read),
    "deleteMessage": (lambda frame, settings: p.parse_delete_message(frame), delete_message),
}


def on_message(event: dict, context, svc: Services) -> dict:
    """Every client frame: routed by its ``action``. Never raises; errors become frames."""
    rc = event["requestContext"]
    call = Call(svc, rc["connectionId"], f"https://{rc['domainName']}/{rc['stage']}", context)
    frame: dict = {}
    action = None
    try:
        frame = p.parse_frame(event.get("body"))
        action = frame.get("action")
        if not isinstance(action, str) or not action:
            raise p.ProtocolError(p.BAD_REQUEST, "'action' is required and must be a string")
        if action not in ACTIONS:
            known = ", ".join(ACTIONS)
            raise p.ProtocolError(p.UNKNOWN_ACTION, f"unknown action {action[:64]!r}; known: {known}")
        parse, run = ACTIONS[action]
        request = parse(frame, svc.settings)
        user_id = svc.store.connection_user(call.connection_id)
        if user_id is None:
            raise p.ProtocolError(p.FORBIDDEN, "this connection is not registered or has expired; reconnect")
        run(call, user_id, request)
        log("info", "handled", connectionId=call.connection_id, route=rc.get("routeKey"), action=action)
    except p.ProtocolError as exc:
        log("info", "refused", connectionId=call.connection_id, route=rc.get("routeKey"), code=exc.code)
        call.post(call.connection_id, p.error_frame(exc.code, exc.message, exc.message_id))
    except Exception as exc:
        log("error", "failed", connectionId=call.connection_id, route=rc.get("routeKey"), error=type(exc).__name__)
        mid = p.frame_message_id(frame)
        call.post(call.connection_id, p.error_frame(p.INTERNAL, "the server could not finish this; retry", mid))
    return {"statusCode": 200}
