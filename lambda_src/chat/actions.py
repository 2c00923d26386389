"""What each client action does, once handlers.py has parsed the frame and knows the
caller. Each action reads and writes through store.py and posts through delivery.py.

Delivery, in one place (store.py describes the stored states):
- A connection opened with ``ack=1`` confirms what it receives with markDelivered. A
  message frame to it is only an attempt: the message stays pending, and comes again on
  every sync of the recipient, until a device confirms it (at least once).
- To a connection without ack mode, a successful post is the confirmation. Posting is
  done under a lease, so a live send and a sync racing for one such connection post a
  message once, and a lease ends with its invocation, so nothing is stranded.
- The sender's ack says ``delivered`` only when this send confirmed it; a later
  confirmation reaches the sender's devices as a ``delivered`` receipt, exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice

from . import log as metrics
from . import protocol
from .aws import WORST_DYNAMODB_MS, WORST_POST_MS
from .delivery import Delivery
from .log import log
from .push import PushHandoff
from .store import DELIVERED, QUOTE_FIELDS, READ, SENT, Connection, Store, now_iso

# A lease never outlives the invocation that holds it; without a Lambda context (tests)
# it lasts this long, which is more than the message function's 29 s.
MAX_LEASE_MS = 30_000

# Requests that do not depend on each other run at once, on threads (boto3 clients are
# thread-safe). A container runs one invocation at a time: a few threads are enough.
_THREADS = ThreadPoolExecutor(max_workers=2, thread_name_prefix="together")


def _together(*calls: Callable):
    """Run the calls at once (the first on this thread); their results, in order. Returns
    or raises only once every call is done: none outlives the invocation."""
    others = [_THREADS.submit(call) for call in calls[1:]]
    try:
        first = calls[0]()
    finally:
        wait(others)
    return [first, *(other.result() for other in others)]


def _or_none(lookup: Callable) -> Callable:
    """The lookup, answering None if it fails: what needs it looks again, in its own try."""

    def run():
        try:
            return lookup()
        except Exception as exc:
            log("warning", "lookup_failed", error=type(exc).__name__)
            return None

    return run


@dataclass
class Invocation:
    """One client frame being handled: who sent it, and what an action works with."""

    caller: Connection
    store: Store
    delivery: Delivery
    push: PushHandoff  # for a message that reached none of its recipient's devices
    time_left_ms: Callable[[], float]

    @property
    def user_id(self) -> str:
        return self.caller.user_id

    @property
    def connection_id(self) -> str:
        return self.caller.id

    @property
    def ack_mode(self) -> bool:  # the caller's connection confirms what it receives
        return self.caller.ack

    def lease_until(self) -> int:
        """The end of this invocation, in epoch ms: when a lease it takes runs out."""
        return self.store.now_ms() + int(min(self.time_left_ms(), MAX_LEASE_MS))

    def has_time_for(self, *calls_ms: int) -> bool:
        """Whether these calls fit in the time left, even if each takes its longest,
        with room after them for one more post (the frame that says where we stopped)."""
        return self.time_left_ms() >= sum(calls_ms) + WORST_POST_MS


# ---- sendMessage -------------------------------------------------------------------


def send_message(inv: Invocation, msg: protocol.SendMessage) -> None:
    """Checks, in this order: the frame (parsed already), senderId, the reply target,
    membership of the conversation, then the messageId (a retry, or CONFLICT)."""
    sender, recipient = inv.user_id, msg.recipient_id
    if msg.sender_id is not None and msg.sender_id != sender:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "senderId is not the user of this connection", msg.message_id)
    quote = {}
    if msg.reply_to is not None:  # a reply may only point at a message its sender can see
        original = inv.store.get_message(msg.reply_to, consistent=True)  # a delete just now counts
        if original is None or sender not in (original.get("senderId"), original.get("recipientId")):
            # one answer for "missing" and "not yours", so ids cannot be probed
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "replyToMessageId is not a message you can see", msg.message_id
            )
        quote = _quote(inv.store.with_content([original])[0])
    conversation_id = msg.conversation_id or protocol.canonical_conversation_id(sender, recipient)
    sent_at = now_iso()
    message = {  # as sent: none of this ever changes (store.py: Contents)
        "messageId": msg.message_id,
        "conversationId": conversation_id,
        "senderId": sender,
        # in token mode the verified name, never the frame's: a recipient must be able to trust it
        "senderName": inv.caller.name if inv.caller.named else msg.sender_name,
        "recipientId": recipient,
        "timestamp": msg.timestamp or sent_at,
        "sentAt": sent_at,
        "content": msg.content,
        **quote,
    }
    protocol.ensure_fits({**message, "status": DELIVERED}, msg.message_id)  # a frame too big claims nothing
    taken = _join(inv, conversation_id, recipient, msg.message_id)
    if taken is not None:
        _answer_taken_id(inv, msg.message_id, taken)
        return
    # Durable before anything is acknowledged: the message as sent, then its row. Who is
    # online is looked up meanwhile, so the row is stored already leased for posting to
    # devices without ack mode, and the recipient's post follows it: two round trips.
    earlier, devices, _ = _together(
        lambda: inv.store.put_new_content(message),
        _or_none(lambda: inv.delivery.others_of(recipient)),
        _or_none(lambda: inv.delivery.others_of(sender) if sender != recipient else None),  # for the copies
    )
    if earlier is not None:
        _refuse_another_senders(inv, msg.message_id, earlier)
        message = earlier  # this sender's earlier attempt, which died before its row: it stands
    looked_up, recipient = recipient, message["recipientId"]  # (the earlier attempt's, if any)
    legacy = recipient == looked_up and devices and any(not c.ack for c in devices)
    lease = inv.lease_until() if legacy else None
    row = inv.store.new_row(message, lease_until=lease)
    existing = inv.store.put_new_message(row)
    if existing is not None:
        if earlier is None and ("content" in existing or existing.get("isDeleted")):
            # the id is a deleted message's, or one's from before the Contents table: ours goes again
            inv.store.drop_content(msg.message_id, sender)
        _answer_taken_id(inv, msg.message_id, existing)
        return
    metrics.count("MessagesStored")
    try:
        item = _quote_still_there(inv, {**row, **message})  # the message as it is posted
    except Exception:
        _give_back(inv, msg.message_id, lease)  # nothing posts it: sync may, at once
        raise

    status, reached = SENT, False
    try:
        status, reached = _deliver_new(inv, item, lease)
    except Exception as exc:  # stored already: it stays pending and sync delivers it
        log("warning", "delivery_failed", error=type(exc).__name__)
        _give_back(inv, msg.message_id, lease)
    metrics.count("DeliveredLive" if reached else "LeftWaiting")
    # each user's list: this conversation first (after delivery, which does not need it)
    conversation_id, sent_at = item["conversationId"], item["sentAt"]
    inv.store.touch(conversation_id, sender, recipient, msg.message_id, sent_at)
    if recipient != sender:
        inv.store.touch(conversation_id, recipient, sender, msg.message_id, sent_at)
    inv.delivery.reply(protocol.ack_frame(msg.message_id, status, sent_at, conversation_id))
    if not reached and recipient != sender:  # after the ack: the sender does not wait for it
        inv.push.hand_off(item)


def _give_back(inv: Invocation, message_id: str, lease: int | None) -> None:
    """Release the lease the new row was stored with, if it still holds it, when the send
    fails before its posts: sync need not wait for the invocation's end."""
    if lease is not None:
        try:
            inv.store.release(message_id, lease)
        except Exception as exc:  # it runs out with the invocation anyway
            log("warning", "release_failed", error=type(exc).__name__)


def _quote_still_there(inv: Invocation, item: dict) -> dict:
    """The stored reply, without its quote if the original was deleted since it was read
    (its delete may not have found this reply, stored after it looked)."""
    if "replyToContent" not in item:
        return item
    original = inv.store.get_message(item["replyToMessageId"], consistent=True)
    if original is not None and not original.get("isDeleted"):
        return item
    inv.store.unquote(item["messageId"], item["replyToMessageId"])
    return {k: v for k, v in item.items() if k not in QUOTE_FIELDS}


def _answer_taken_id(inv: Invocation, message_id: str, existing: dict) -> None:
    """A messageId that is stored already: the sender's retry (matched on messageId and
    sender alone) gets the ack again; anyone else's is a CONFLICT."""
    _refuse_another_senders(inv, message_id, existing)
    stored = existing["status"], existing["sentAt"], existing["conversationId"]
    inv.delivery.reply(protocol.ack_frame(message_id, *stored, duplicate=True))


def _refuse_another_senders(inv: Invocation, message_id: str, stored: dict) -> None:
    """CONFLICT if what is stored under the messageId is another sender's."""
    if stored.get("senderId", inv.user_id) != inv.user_id:
        raise protocol.ProtocolError(protocol.CONFLICT, "messageId is already used by another message", message_id)


def _join(inv: Invocation, conversation_id: str, recipient: str, message_id: str) -> dict | None:
    """The conversation is between the caller and the recipient: it is theirs, or new
    and now claimed for them. FORBIDDEN if it belongs to another pair. If it is new but
    the messageId is taken (a retry, or a CONFLICT), nothing is claimed and the stored
    message is returned."""
    sender = inv.user_id
    ours = tuple(sorted((sender, recipient)))
    pair = inv.store.pair(conversation_id)
    if pair is None and (
        not conversation_id.startswith(protocol.CANONICAL_PREFIX)
        or conversation_id == protocol.canonical_conversation_id(sender, recipient)
    ):
        taken = inv.store.get_message(message_id, consistent=True)
        if taken is not None:
            return taken  # a refused frame claims nothing
        pair = inv.store.claim(conversation_id, sender, recipient)
        if pair == ours and not conversation_id.startswith(protocol.CANONICAL_PREFIX):
            # the pair's canonical conversation says they share one (presence)
            inv.store.add_contact(protocol.canonical_conversation_id(sender, recipient), sender, recipient)
    if pair != ours:
        raise protocol.ProtocolError(
            protocol.FORBIDDEN, "this conversationId belongs to other users; use a new, random one", message_id
        )
    return None


def _members(inv: Invocation, conversation_id: str) -> tuple[str, str]:
    """The conversation's pair if the caller is in it. FORBIDDEN otherwise, and for one
    that does not exist, so conversation ids cannot be probed."""
    pair = inv.store.pair(conversation_id)
    if pair is None or inv.user_id not in pair:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "not a conversation of yours")
    return pair


def _peer(inv: Invocation, pair: tuple[str, str]) -> str:
    return pair[1] if pair[0] == inv.user_id else pair[0]


def _quote(original: dict) -> dict:
    """The reply fields, taken from the message replied to: never a client's words.
    replyToSenderId says who really wrote it (replyToSenderName is the name they gave).
    A deleted original is pointed at, but not quoted."""
    pointer = {"replyToMessageId": original["messageId"], "replyToSenderId": original["senderId"]}
    if original.get("isDeleted"):
        return pointer
    return {**pointer, "replyToContent": original.get("content"), "replyToSenderName": original.get("senderName")}


def _deliver_new(inv: Invocation, item: dict, lease: int | None) -> tuple[str, bool]:
    """Post a just-stored message to the recipient's devices and the sender's other
    ones. Returns DELIVERED if this confirmed it, else SENT; and whether a device of the
    recipient got it, or has it in hand already (another invocation is posting it, or a
    device confirmed it meanwhile): if not, the message is handed off for a push. The
    connections were looked up as it was stored, with the lease its row holds, if any."""
    sender, recipient = item["senderId"], item["recipientId"]
    devices = inv.delivery.others_of(recipient)
    # ack-mode devices first: an attempt, which the device confirms with markDelivered
    reached = inv.delivery.post_each([c.id for c in devices if c.ack], protocol.message_frame(item)) > 0
    status = SENT
    legacy = [c.id for c in devices if not c.ack]
    if legacy:
        status, handled = _post_confirming(inv, item, legacy, lease)
        reached = reached or handled
    if sender != recipient:  # the sender's other devices see the message too
        try:
            others = [c.id for c in inv.delivery.others_of(sender)]
            inv.delivery.post_each(others, protocol.message_frame({**item, "status": status}))
        except Exception as exc:  # the status stands: a confirmed message gets no later receipt
            log("warning", "copies_failed", error=type(exc).__name__)
    return status, reached


def _post_confirming(inv: Invocation, item: dict, connection_ids: list[str], lease: int | None) -> tuple[str, bool]:
    """Post to connections without ack mode, where a post that reaches one confirms the
    message. If none is reached, the lease is given back and the recipient's connections
    are looked up once more: a connection that synced while the lease was held skipped
    the message, and gets it now. Returns DELIVERED if this confirmed it, else SENT; and
    whether it reached a device or was in other hands (not to be pushed). ``lease``: one
    held already (the new row's), else one is taken."""
    message_id, recipient = item["messageId"], item["recipientId"]
    frame = protocol.message_frame({**item, "status": DELIVERED})
    tried = set(connection_ids)
    for attempt in range(2):
        if lease is None:
            lease = inv.lease_until()
            if not inv.store.lease(message_id, lease):
                return SENT, True  # another invocation is posting it, or a device confirmed it meanwhile
        if inv.delivery.post_each(connection_ids, frame):
            if inv.store.confirm(message_id, recipient) != DELIVERED:
                # confirmed meanwhile by an ack device, or marked read: that sent the sender's receipts
                return SENT, True
            _delivered(inv, message_id, "post")
            return DELIVERED, True
        inv.store.release(message_id, lease)
        lease = None
        if attempt == 0:
            # again: connections that appeared meanwhile, and young ones that answered 410 (in
            # their handshake, the frame did not get there), never one that failed otherwise,
            # which may have the frame already (a timeout)
            connection_ids = [
                c.id
                for c in inv.delivery.others_of(recipient, fresh=True)
                if not c.ack and (c.id not in tried or (c.id in inv.delivery.gone and inv.store.in_handshake(c)))
            ]
            if not connection_ids:
                break
    return SENT, False


# ---- sync ----------------------------------------------------------------------------


def sync(inv: Invocation, after: tuple[str, str] | None) -> None:
    """Every message a device of the caller does not have yet, oldest first, to this
    connection, then syncComplete. Stops before the function's time limit, or at a post
    that fails, with more=true and a cursor to continue from."""
    # what one message costs at most: a post (ack mode), or lease, post and confirm
    per_message = (WORST_POST_MS,) if inv.ack_mode else (WORST_DYNAMODB_MS, WORST_POST_MS, WORST_DYNAMODB_MS)
    count, position, more = 0, after, False
    for item in _pending_in_time(inv, after):
        if item is None or not inv.has_time_for(*per_message):
            more = True
            break
        if inv.ack_mode:
            posted = inv.delivery.reply(protocol.message_frame(item))
        else:
            posted = _sync_confirming(inv, item)
            if posted is None:
                continue  # a live send holds it: that send delivers it
        if not posted:
            if inv.connection_id in inv.delivery.gone:
                return  # this connection is gone: nobody to tell
            more = True  # the post failed otherwise (a timeout, a 5xx): the client continues from here
            break
        count += 1
        position = (item["sentAt"], item["messageId"])
    if more:
        log("info", "sync_paused", count=count)
    metrics.count("DeliveredBySync", count)
    inv.delivery.reply(protocol.sync_complete_frame(count, more, position))


def _pending_in_time(inv: Invocation, after: tuple[str, str] | None):
    """The caller's pending messages with what they say, a page at a time; None in
    place of a page there is no time left to read (a Query and a BatchGetItem)."""
    pages = inv.store.pages_with_content(inv.store.pending(inv.user_id, after))
    while inv.has_time_for(WORST_DYNAMODB_MS, WORST_DYNAMODB_MS):
        page = next(pages, None)
        if page is None:
            return
        yield from page
    yield None


def _sync_confirming(inv: Invocation, item: dict) -> bool | None:
    """One message to a connection without ack mode, where the post confirms it. True if
    posted, False if the post failed, None if another invocation holds the message."""
    message_id, lease = item["messageId"], inv.lease_until()
    if not inv.store.lease(message_id, lease):
        return None
    status = DELIVERED if item["status"] == SENT else item["status"]
    if not inv.delivery.reply(protocol.message_frame({**item, "status": status})):
        inv.store.release(message_id, lease)
        return False
    if inv.store.confirm(message_id, inv.user_id, item["status"]) == DELIVERED:
        _delivered(inv, message_id, "sync")
        _receipt(inv, item, DELIVERED)
    return True


def _delivered(inv: Invocation, message_id: str, how: str) -> None:
    """Log each transition to delivered (the soak counts them: at most one per message)."""
    log("info", "delivered", messageId=message_id, by=how)


def _receipt(inv: Invocation, item: dict, status: str) -> None:
    """A delivered or read receipt to the sender's live connections, if there is time to
    reach them all before the function's limit."""
    senders = inv.delivery.connections_of(item["senderId"]) if inv.has_time_for(WORST_DYNAMODB_MS) else None
    if senders is None or not inv.has_time_for(*[WORST_POST_MS] * len(senders)):
        log("warning", "receipt_skipped", messageId=item["messageId"], status=status)
        return
    inv.delivery.post_each(
        [c.id for c in senders], protocol.receipt_frame(item["messageId"], item["conversationId"], status)
    )


# ---- markDelivered, markRead, deleteMessage -----------------------------------------


def _own_messages(inv: Invocation, ids: list[str], verb: str) -> dict[str, dict]:
    """The messages, all addressed to the caller, or FORBIDDEN naming the first that is not."""
    items = inv.store.get_messages(ids)
    for message_id in ids:  # all or nothing: check every id before changing any
        item = items.get(message_id)
        if item is None or item.get("recipientId") != inv.user_id:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, f"only the recipient can mark a message {verb}", message_id
            )
    return items


def _out_of_time(inv: Invocation, message_id: str, action: str) -> bool:
    """Before each message of a batch: is there time to change it and tell its sender?
    If not, the client is told to send the frame again (the messages done are no-ops then)."""
    if inv.has_time_for(WORST_DYNAMODB_MS, WORST_DYNAMODB_MS, WORST_POST_MS):
        return False
    message = f"out of time at this message; send {action} again (what is done stays done)"
    metrics.count_error(protocol.INTERNAL)
    inv.delivery.reply(protocol.error_frame(protocol.INTERNAL, message, message_id))
    return True


def mark_delivered(inv: Invocation, ids: list[str]) -> None:
    """A device of the recipient has these messages: they leave sync, and each sender
    gets one delivered receipt. Confirming again changes nothing and sends nothing."""
    items = _own_messages(inv, ids, "delivered")
    for message_id in ids:
        if _out_of_time(inv, message_id, "markDelivered"):
            return
        item = items[message_id]
        if "pendingFor" in item and inv.store.confirm(message_id, inv.user_id, item["status"]) == DELIVERED:
            _delivered(inv, message_id, "markDelivered")
            _receipt(inv, item, DELIVERED)


def mark_read(inv: Invocation, request: protocol.MarkRead) -> None:
    """Each sender gets a read receipt, preceded by a delivered one if it never had that;
    the reader's other devices learn which messages were read. A message marked read
    before a device had it stays in sync, so its content is never lost. By
    conversationId: every message to the caller there that is not read, up to now."""
    if request.conversation_id is not None:
        _members(inv, request.conversation_id)
        now = now_iso()
        unread = [r for r in inv.store.unread_in(inv.user_id, request.conversation_id) if r["sentAt"] <= now]
        ids = [r["messageId"] for r in unread]
        items = {r["messageId"]: {**r, "status": SENT} for r in unread}  # at most delivered: the update tells
    else:
        ids = request.message_ids
        items = _own_messages(inv, ids, "read")
    read_now: dict[str, list[str]] = {}
    for message_id in ids:
        item = items[message_id]
        if item["status"] == READ or item.get("isDeleted"):
            continue  # read already, or deleted: there is nothing to read
        if _out_of_time(inv, message_id, "markRead"):
            break
        was = inv.store.mark_read(message_id, inv.user_id)
        if was is None:
            continue
        if was == SENT:
            _receipt(inv, item, DELIVERED)
        _receipt(inv, item, READ)
        read_now.setdefault(item["conversationId"], []).append(message_id)
    mine = [c.id for c in inv.delivery.others_of(inv.user_id)] if read_now else []
    for conversation_id, message_ids in read_now.items():
        inv.delivery.post_each(mine, protocol.read_frame(conversation_id, message_ids))


def delete_message(inv: Invocation, message_id: str) -> None:
    item = inv.store.soft_delete(message_id, inv.user_id)
    if item is None:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "only the sender can delete a message", message_id)
    for reply_id in inv.store.replies_to(message_id):  # the deleted text leaves their quotes too
        inv.store.unquote(reply_id, message_id)
    notice = protocol.deleted_frame(message_id, item["conversationId"])
    both = inv.delivery.connections_of(item["recipientId"]) + inv.delivery.connections_of(inv.user_id)
    inv.delivery.post_each(dict.fromkeys(c.id for c in both), notice)  # the caller's included, as confirmation


# ---- conversations, history, typing, presence -----------------------------------------


def conversations(inv: Invocation, request: protocol.PageRequest) -> None:
    """The caller's conversations, latest activity first, a page at a time."""
    rows = list(islice(inv.store.conversations_of(inv.user_id, request.cursor, request.limit + 1), request.limit + 1))
    more, rows = len(rows) > request.limit, rows[: request.limit]
    found = inv.store.get_messages([r["lastMessageId"] for r in rows]) if rows else {}
    last = {m["messageId"]: m for m in inv.store.with_content(list(found.values()))}
    unread = inv.store.unread_counts(inv.user_id) if rows else {}
    entries = [
        (
            (row["updatedAt"], row["conversationId"]),
            {
                "conversationId": row["conversationId"],
                "peerId": row["peerId"],
                "lastMessage": protocol.message_frame(last[row["lastMessageId"]])["data"],
                "unreadCount": unread.get(row["conversationId"], 0),
                "updatedAt": row["updatedAt"],
            },
        )
        for row in rows
        if row["lastMessageId"] in last
    ]

    def frame(page, next_position):
        return protocol.conversations_frame(page, next_position, request.request_id)

    inv.delivery.reply(frame(*protocol.fill_page(frame, entries, more)))


def history(inv: Invocation, request: protocol.PageRequest) -> None:
    """A conversation's messages, newest first, to its two users only. Changes nothing."""
    pair = _members(inv, request.conversation_id)
    rows = inv.store.history(request.conversation_id, request.cursor, request.limit + 1)
    # before conversations had members, two pairs could share an id: only this pair's
    ours = (row for row in rows if tuple(sorted((row.get("senderId", ""), row.get("recipientId", "")))) == pair)
    page = list(islice(ours, request.limit + 1))
    more, page = len(page) > request.limit, inv.store.whole(page[: request.limit])
    entries = [((row["sentAt"], row["messageId"]), protocol.message_frame(row)["data"]) for row in page]

    def frame(messages, next_position):
        return protocol.history_frame(request.conversation_id, messages, next_position, request.request_id)

    inv.delivery.reply(frame(*protocol.fill_page(frame, entries, more)))


def typing(inv: Invocation, request: protocol.Typing) -> None:
    """To the peer's live connections; nothing is stored."""
    peer = _peer(inv, _members(inv, request.conversation_id))
    frame = protocol.typing_frame(request.conversation_id, inv.user_id, request.state)
    inv.delivery.post_each([c.id for c in inv.delivery.others_of(peer)], frame)


def presence(inv: Invocation, request: protocol.Presence) -> None:
    """Online and last seen, for the users the caller shares a conversation with; anyone
    else is answered like an unknown user (offline, no lastSeen)."""
    canonical = {u: protocol.canonical_conversation_id(inv.user_id, u) for u in request.user_ids}
    shared = inv.store.existing(list(canonical.values()))
    partners = [u for u in request.user_ids if canonical[u] in shared]
    seen = inv.store.last_seen(partners) if partners else {}
    users = []
    for user_id in request.user_ids:
        entry = {"userId": user_id, "online": user_id in partners and inv.store.online(user_id)}
        if user_id in seen:
            entry["lastSeen"] = seen[user_id]
        users.append(entry)
    inv.delivery.reply(protocol.presence_frame(users, request.request_id))


# Every client action: its name (the route key), how its frame is parsed, and what it
# does. Parsing comes first, so bad input costs no request. stacks/api.py gives each
# one a route; tests/infra/test_config.py keeps the two in step.
ACTIONS = {
    "sendMessage": (
        lambda frame, settings: protocol.parse_send_message(frame, settings.max_content_bytes),
        send_message,
    ),
    "sync": (lambda frame, settings: protocol.parse_sync(frame), sync),
    "markDelivered": (lambda frame, settings: protocol.parse_message_ids(frame), mark_delivered),
    "markRead": (lambda frame, settings: protocol.parse_mark_read(frame), mark_read),
    "deleteMessage": (lambda frame, settings: protocol.parse_delete_message(frame), delete_message),
    "conversations": (lambda frame, settings: protocol.parse_conversations(frame), conversations),
    "history": (lambda frame, settings: protocol.parse_history(frame), history),
    "typing": (lambda frame, settings: protocol.parse_typing(frame), typing),
    "presence": (lambda frame, settings: protocol.parse_presence(frame), presence),
}
