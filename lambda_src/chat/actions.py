"""What each client action does, once handlers.py has parsed the frame and knows the
caller. Each action reads and writes through store.py and posts through delivery.py.

Delivery is claimed before it is posted (a conditional sent -> delivered update), so
a message racing between a live send and a sync reaches the recipient exactly once;
if every post of a claimed message fails, the claim is released and sync delivers it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import protocol
from .delivery import Delivery
from .log import log
from .store import DELIVERED, READ, SENT, Store, now_iso

# Stop a sync when less than this much Lambda time is left; the client syncs again.
SYNC_TIME_RESERVE_MS = 3000


@dataclass
class Invocation:
    """One client frame being handled: who sent it, and what an action works with."""

    user_id: str
    connection_id: str
    store: Store
    delivery: Delivery
    time_left_ms: Callable[[], float]


def send_message(inv: Invocation, msg: protocol.SendMessage) -> None:
    if msg.sender_id is not None and msg.sender_id != inv.user_id:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "senderId is not the user of this connection", msg.message_id)
    quote = {}
    if msg.reply_to is not None:  # a reply may only point at a message its sender can see
        original = inv.store.get_message(msg.reply_to)
        if original is None or inv.user_id not in (original.get("senderId"), original.get("recipientId")):
            # one answer for "missing" and "not yours", so ids cannot be probed
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "replyToMessageId is not a message you can see", msg.message_id
            )
        quote = _quote(original)
    sent_at = now_iso()
    item = {
        "messageId": msg.message_id,
        "conversationId": msg.conversation_id,
        "senderId": inv.user_id,
        "senderName": msg.sender_name,
        "recipientId": msg.recipient_id,
        "content": msg.content,
        "timestamp": msg.timestamp or sent_at,
        "sentAt": sent_at,
        "status": SENT,
        "pendingFor": msg.recipient_id,
        "isDeleted": False,
        **quote,
    }
    protocol.ensure_fits(protocol.message_frame({**item, "status": DELIVERED}), msg.message_id)  # as it will be posted
    existing = inv.store.put_new_message(item)  # durable before anything is acknowledged
    if existing is not None:
        if existing.get("senderId") != inv.user_id:
            raise protocol.ProtocolError(
                protocol.CONFLICT, "messageId is already used by another message", msg.message_id
            )
        inv.delivery.reply(protocol.ack_frame(msg.message_id, existing["status"], existing["sentAt"]))  # a retry
        return

    status = SENT
    try:
        status = _deliver_new(inv, item)
    except Exception as exc:  # stored already: it stays pending and sync delivers it
        log("warning", "delivery_failed", connectionId=inv.connection_id, error=type(exc).__name__)
    inv.delivery.reply(protocol.ack_frame(msg.message_id, status, sent_at))


def _quote(original: dict) -> dict:
    """The reply fields, taken from the message replied to: never a client's words. A
    deleted original is pointed at, but not quoted."""
    if original.get("isDeleted"):
        return {"replyToMessageId": original["messageId"]}
    return {
        "replyToMessageId": original["messageId"],
        "replyToContent": original.get("content"),
        "replyToSenderName": original.get("senderName"),
    }


def _deliver_new(inv: Invocation, item: dict) -> str:
    """Post a just-stored message to the recipient's devices and the sender's other ones."""
    sender, recipient = item["senderId"], item["recipientId"]
    delivery = inv.delivery
    status = SENT
    targets = [c for c in delivery.connections_of(recipient) if c != inv.connection_id]
    if targets and inv.store.claim_delivery(item["messageId"]):
        if delivery.post_each(targets, protocol.message_frame({**item, "status": DELIVERED})):
            status = DELIVERED
        else:
            inv.store.release_delivery(item["messageId"], recipient)
    if sender != recipient:  # the sender's other devices see the message too
        others = [c for c in delivery.connections_of(sender) if c != inv.connection_id]
        delivery.post_each(others, protocol.message_frame({**item, "status": status}))
    return status


def sync(inv: Invocation, _: None) -> None:
    """Every undelivered message for the caller, oldest first, to this connection."""
    for page in inv.store.pending_pages(inv.user_id):
        for item in page:
            if inv.time_left_ms() < SYNC_TIME_RESERVE_MS:
                log("info", "sync_paused", connectionId=inv.connection_id)
                return
            if not inv.store.claim_delivery(item["messageId"]):
                continue  # delivered or read meanwhile
            if not inv.delivery.reply(protocol.message_frame({**item, "status": DELIVERED})):
                inv.store.release_delivery(item["messageId"], inv.user_id)
                return
            receipt = protocol.receipt_frame(item["messageId"], item["conversationId"], DELIVERED)
            inv.delivery.post_each(inv.delivery.connections_of(item["senderId"]), receipt)


def mark_read(inv: Invocation, ids: list[str]) -> None:
    items = inv.store.get_messages(ids)
    for message_id in ids:  # all or nothing: check every id before changing any
        item = items.get(message_id)
        if item is None or item.get("recipientId") != inv.user_id:
            raise protocol.ProtocolError(protocol.FORBIDDEN, "only the recipient can mark a message read", message_id)
    for message_id in ids:
        item = items[message_id]
        if item["status"] != READ and inv.store.mark_read(message_id, inv.user_id):
            receipt = protocol.receipt_frame(message_id, item["conversationId"], READ)
            inv.delivery.post_each(inv.delivery.connections_of(item["senderId"]), receipt)


def delete_message(inv: Invocation, message_id: str) -> None:
    item = inv.store.soft_delete(message_id, inv.user_id)
    if item is None:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "only the sender can delete a message", message_id)
    notice = protocol.deleted_frame(message_id, item["conversationId"])
    targets = dict.fromkeys(inv.delivery.connections_of(item["recipientId"]) + inv.delivery.connections_of(inv.user_id))
    inv.delivery.post_each(targets, notice)  # the caller's connection included, as confirmation


# Every client action: its name (the route key), how its frame is parsed, and what it
# does. Parsing comes first, so bad input costs no request. stacks/api.py gives each
# one a route; tests/unit/test_actions_and_routes.py keeps the two in step.
ACTIONS = {
    "sendMessage": (
        lambda frame, settings: protocol.parse_send_message(frame, settings.max_content_bytes),
        send_message,
    ),
    "sync": (lambda frame, settings: None, sync),
    "markRead": (lambda frame, settings: protocol.parse_mark_read(frame), mark_read),
    "deleteMessage": (lambda frame, settings: protocol.parse_delete_message(frame), delete_message),
}
