"""What each client action does, once handlers.py has parsed the frame and knows the
caller: reads and writes through the table stores, posts through delivery.py. How
delivery is confirmed, and why with leases: docs/design.md.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice

from . import log as metrics
from . import protocol
from .aws import WORST_DYNAMODB_MS, WORST_POST_MS
from .config import Settings
from .connections import Connection
from .delivery import Delivery
from .log import log
from .messages import DELIVERED, READ, SENT, Message
from .push import PushHandoff
from .tables import Tables
from .timing import now_iso

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
    tables: Tables
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

    @property
    def messages(self):
        return self.tables.messages

    @property
    def conversations(self):
        return self.tables.conversations

    def lease_until(self) -> int:
        """The end of this invocation, in epoch ms: when a lease it takes runs out."""
        return self.messages.now_ms() + int(min(self.time_left_ms(), MAX_LEASE_MS))

    def has_time_for(self, *calls_ms: int) -> bool:
        """Whether these calls fit in the time left, even if each takes its longest,
        with room after them for one more post (the frame that says where we stopped)."""
        return self.time_left_ms() >= sum(calls_ms) + WORST_POST_MS


# ---- sendMessage -------------------------------------------------------------------


def send_message(inv: Invocation, request: protocol.SendMessage) -> None:
    """Check the frame (parsed already), the sender and the reply; claim the
    conversation; store; deliver; acknowledge; hand off for a push."""
    message = _new_message(inv, request)
    taken = _join(inv, message.conversation_id, message.recipient_id, message.message_id)
    if taken is not None:
        _answer_taken_id(inv, taken)
        return
    stored = _store(inv, message)
    if stored is None:
        return  # its id was taken meanwhile: answered
    message, lease = stored
    message, status, reached = _deliver_stored(inv, message, lease)
    _touch_both(inv, message)
    inv.delivery.reply(protocol.ack_frame(message.message_id, status, message.sent_at, message.conversation_id))
    if not reached and message.recipient_id != message.sender_id:  # after the ack: the sender does not wait
        inv.push.hand_off(message)


def _new_message(inv: Invocation, request: protocol.SendMessage) -> Message:
    """The message as it will be stored, once its sender and reply target check out:
    FORBIDDEN for another senderId or a reply to what the sender cannot see;
    BAD_REQUEST if it would not fit a frame. Nothing is stored yet."""
    sender = inv.user_id
    if request.sender_id is not None and request.sender_id != sender:
        raise protocol.ProtocolError(
            protocol.FORBIDDEN, "senderId is not the user of this connection", request.message_id
        )
    quote = _quote_for(inv, request)
    sent_at = now_iso()
    message = Message(
        message_id=request.message_id,
        conversation_id=request.conversation_id or protocol.canonical_conversation_id(sender, request.recipient_id),
        sender_id=sender,
        # in token mode the verified name, never the frame's: a recipient must be able to trust it
        sender_name=inv.caller.name if inv.caller.named else request.sender_name,
        recipient_id=request.recipient_id,
        timestamp=request.timestamp or sent_at,
        sent_at=sent_at,
        content=request.content,
        **quote,
    )
    protocol.ensure_fits(message.but(status=DELIVERED), request.message_id)  # a frame too big claims nothing
    return message


def _quote_for(inv: Invocation, request: protocol.SendMessage) -> dict:
    """A reply's fields, taken from the message it replies to: never a client's words.
    replyToSenderId says who really wrote it (replyToSenderName is the name they gave).
    A deleted original is pointed at, but not quoted."""
    if request.reply_to is None:
        return {}
    original = inv.messages.get(request.reply_to, consistent=True)  # a delete just now counts
    if original is None or inv.user_id not in (original.sender_id, original.recipient_id):
        # one answer for "missing" and "not yours", so ids cannot be probed
        raise protocol.ProtocolError(
            protocol.FORBIDDEN, "replyToMessageId is not a message you can see", request.message_id
        )
    original = inv.messages.joined([original])[0]
    pointer = {"reply_to_message_id": original.message_id, "reply_to_sender_id": original.sender_id}
    if original.is_deleted:
        return pointer
    return {**pointer, "reply_to_content": original.content, "reply_to_sender_name": original.sender_name}


def _store(inv: Invocation, message: Message) -> tuple[Message, int | None] | None:
    """Durable before anything is acknowledged: what it says, then its row. Who is online
    is looked up meanwhile, so the row is stored already leased for posting to devices
    without ack mode: two round trips. Returns the message as stored and its lease, or
    None if its id turned out to be taken (answered then)."""
    sender, recipient = message.sender_id, message.recipient_id
    earlier, devices, _ = _together(
        lambda: inv.messages.put_new_content(message),
        _or_none(lambda: inv.delivery.others_of(recipient)),
        _or_none(lambda: inv.delivery.others_of(sender) if sender != recipient else None),  # for the copies
    )
    if earlier is not None:
        _refuse_another_senders(inv, message.message_id, earlier)
        message = earlier  # this sender's earlier attempt, which died before its row: it stands
    without_ack = message.recipient_id == recipient and devices and any(not c.ack for c in devices)
    lease = inv.lease_until() if without_ack else None
    stored = _first_state(message, lease)
    existing = inv.messages.put_new_row(stored)
    if existing is not None:
        if earlier is None and (existing.content_in_row or existing.is_deleted):
            # the id is a deleted message's, or one's from before the Contents table: ours goes again
            inv.messages.drop_content(message.message_id, sender)
        _answer_taken_id(inv, existing)
        return None
    metrics.count("MessagesStored")
    return stored, lease


def _first_state(message: Message, lease_until: int | None) -> Message:
    """A new message's state: sent, pending for its recipient, unread by them (but a
    note to oneself), and leased by the send that stores it, if lease_until is given."""
    recipient = message.recipient_id
    unread = recipient if recipient != message.sender_id else None
    return message.but(status=SENT, pending_for=recipient, unread_by=unread, is_deleted=False, lease_until=lease_until)


def _deliver_stored(inv: Invocation, message: Message, lease: int | None) -> tuple[Message, str, bool]:
    """Post a message just stored. Returns it as posted (its quote gone if the original
    was deleted meanwhile), DELIVERED if this confirmed it or else SENT, and whether a
    device of the recipient got it. A failure here leaves it pending: sync brings it."""
    try:
        message = _quote_still_there(inv, message)
    except Exception:
        _give_back(inv, message.message_id, lease)  # nothing posts it: sync may, at once
        raise
    status, reached = SENT, False
    try:
        status, reached = _deliver_new(inv, message, lease)
    except Exception as exc:  # stored already: it stays pending and sync delivers it
        log("warning", "delivery_failed", error=type(exc).__name__)
        _give_back(inv, message.message_id, lease)
    metrics.count("DeliveredLive" if reached else "LeftWaiting")
    return message, status, reached


def _touch_both(inv: Invocation, message: Message) -> None:
    """Each user's list: this conversation first (after delivery, which does not need it)."""
    sender, recipient = message.sender_id, message.recipient_id
    inv.conversations.touch(message.conversation_id, sender, recipient, message.message_id, message.sent_at)
    if recipient != sender:
        inv.conversations.touch(message.conversation_id, recipient, sender, message.message_id, message.sent_at)


def _give_back(inv: Invocation, message_id: str, lease: int | None) -> None:
    """Release the lease the new row was stored with, if it still holds it, when the send
    fails before its posts: sync need not wait for the invocation's end."""
    if lease is not None:
        try:
            inv.messages.release(message_id, lease)
        except Exception as exc:  # it runs out with the invocation anyway
            log("warning", "release_failed", error=type(exc).__name__)


def _quote_still_there(inv: Invocation, message: Message) -> Message:
    """The stored reply, without its quote if the original was deleted since it was read
    (its delete may not have found this reply, stored after it looked)."""
    if message.reply_to_content is None:
        return message
    original = inv.messages.get(message.reply_to_message_id, consistent=True)
    if original is not None and not original.is_deleted:
        return message
    inv.messages.unquote(message.message_id, message.reply_to_message_id)
    return message.without_quote()


def _answer_taken_id(inv: Invocation, existing: Message) -> None:
    """A messageId that is stored already: the sender's retry (matched on messageId and
    sender alone) gets the ack again, marked a duplicate; anyone else's is a CONFLICT."""
    _refuse_another_senders(inv, existing.message_id, existing)
    stored = existing.status, existing.sent_at, existing.conversation_id
    inv.delivery.reply(protocol.ack_frame(existing.message_id, *stored, duplicate=True))


def _refuse_another_senders(inv: Invocation, message_id: str, stored: Message) -> None:
    """CONFLICT if what is stored under the messageId is another sender's."""
    if stored.sender_id != inv.user_id:
        raise protocol.ProtocolError(protocol.CONFLICT, "messageId is already used by another message", message_id)


def _join(inv: Invocation, conversation_id: str, recipient: str, message_id: str) -> Message | None:
    """The conversation is between the caller and the recipient: it is theirs, or new
    and now claimed for them. FORBIDDEN if it belongs to another pair. If it is new but
    the messageId is taken (a retry, or a CONFLICT), nothing is claimed and the stored
    message is returned."""
    sender = inv.user_id
    ours = tuple(sorted((sender, recipient)))
    pair = inv.conversations.pair(conversation_id)
    if pair is None and (
        not conversation_id.startswith(protocol.CANONICAL_PREFIX)
        or conversation_id == protocol.canonical_conversation_id(sender, recipient)
    ):
        taken = inv.messages.get(message_id, consistent=True)
        if taken is not None:
            return taken  # a refused frame claims nothing
        pair = inv.conversations.claim(conversation_id, sender, recipient)
        if pair == ours and not conversation_id.startswith(protocol.CANONICAL_PREFIX):
            # the pair's canonical conversation says they share one (presence)
            inv.conversations.add_contact(protocol.canonical_conversation_id(sender, recipient), sender, recipient)
    if pair != ours:
        raise protocol.ProtocolError(
            protocol.FORBIDDEN, "this conversationId belongs to other users; use a new, random one", message_id
        )
    return None


def _members(inv: Invocation, conversation_id: str) -> tuple[str, str]:
    """The conversation's pair if the caller is in it. FORBIDDEN otherwise, and for one
    that does not exist, so conversation ids cannot be probed."""
    pair = inv.conversations.pair(conversation_id)
    if pair is None or inv.user_id not in pair:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "not a conversation of yours")
    return pair


def _peer(inv: Invocation, pair: tuple[str, str]) -> str:
    return pair[1] if pair[0] == inv.user_id else pair[0]


def _deliver_new(inv: Invocation, message: Message, lease: int | None) -> tuple[str, bool]:
    """Post a just-stored message to the recipient's devices and the sender's other
    ones. Returns DELIVERED if this confirmed it, else SENT; and whether a device of the
    recipient got it, or has it in hand already (another invocation is posting it, or a
    device confirmed it meanwhile): if not, the message is handed off for a push. The
    connections were looked up as it was stored, with the lease its row holds, if any."""
    devices = inv.delivery.others_of(message.recipient_id)
    # ack-mode devices first: an attempt, which the device confirms with markDelivered
    reached = inv.delivery.post_each([c.id for c in devices if c.ack], protocol.message_frame(message)) > 0
    status = SENT
    without_ack = [c.id for c in devices if not c.ack]
    if without_ack:
        status, handled = _post_confirming(inv, message, without_ack, lease)
        reached = reached or handled
    if message.sender_id != message.recipient_id:  # the sender's other devices see the message too
        try:
            others = [c.id for c in inv.delivery.others_of(message.sender_id)]
            inv.delivery.post_each(others, protocol.message_frame(message.but(status=status)))
        except Exception as exc:  # the status stands: a confirmed message gets no later receipt
            log("warning", "copies_failed", error=type(exc).__name__)
    return status, reached


def _post_confirming(inv: Invocation, message: Message, connection_ids: list[str], lease: int | None):
    """Post to connections without ack mode, where a post that reaches one confirms the
    message. If none is reached, the lease is given back and the recipient's connections
    are looked up once more: one that synced while the lease was held skipped the
    message, and gets it now. Returns (DELIVERED if this confirmed it, else SENT;
    whether it reached a device or was in other hands: not to be pushed)."""
    outcome = _post_and_confirm(inv, message, connection_ids, lease)
    if outcome is not None:
        return outcome
    # again: connections that appeared meanwhile, and young ones that answered 410 (in
    # their handshake, the frame did not get there), never one that failed otherwise,
    # which may have the frame already (a timeout)
    tried, delivery = set(connection_ids), inv.delivery
    again = [
        c.id
        for c in delivery.others_of(message.recipient_id, fresh=True)
        if not c.ack and (c.id not in tried or (c.id in delivery.gone and delivery.in_handshake(c)))
    ]
    return (_post_and_confirm(inv, message, again, None) if again else None) or (SENT, False)


def _post_and_confirm(inv: Invocation, message: Message, connection_ids: list[str], lease: int | None):
    """One try, under the lease (taken now if None): (status, handled), or None if no
    post reached a device (the lease is given back)."""
    if lease is None:
        lease = inv.lease_until()
        if not inv.messages.lease(message.message_id, lease):
            return SENT, True  # another invocation is posting it, or a device confirmed it meanwhile
    if inv.delivery.post_each(connection_ids, protocol.message_frame(message.but(status=DELIVERED))):
        if inv.messages.confirm(message.message_id, message.recipient_id) != DELIVERED:
            # confirmed meanwhile by an ack device, or marked read: that sent the sender's receipts
            return SENT, True
        _delivered(inv, message.message_id, "post")
        return DELIVERED, True
    inv.messages.release(message.message_id, lease)
    return None


# ---- sync ----------------------------------------------------------------------------


def sync(inv: Invocation, after: tuple[str, str] | None) -> None:
    """Every message a device of the caller does not have yet, oldest first, to this
    connection, then syncComplete. Stops before the function's time limit, or at a post
    that fails, with more=true and a cursor to continue from."""
    # what one message costs at most: a post (ack mode), or lease, post and confirm
    per_message = (WORST_POST_MS,) if inv.ack_mode else (WORST_DYNAMODB_MS, WORST_POST_MS, WORST_DYNAMODB_MS)
    count, position, more = 0, after, False
    for message in _pending_in_time(inv, after):
        if message is None or not inv.has_time_for(*per_message):
            more = True
            break
        if inv.ack_mode:
            posted = inv.delivery.reply(protocol.message_frame(message))
        else:
            posted = _sync_confirming(inv, message)
            if posted is None:
                continue  # a live send holds it: that send delivers it
        if not posted:
            if inv.connection_id in inv.delivery.gone:
                return  # this connection is gone: nobody to tell
            more = True  # the post failed otherwise (a timeout, a 5xx): the client continues from here
            break
        count += 1
        position = (message.sent_at, message.message_id)
    if more:
        log("info", "sync_paused", count=count)
    metrics.count("DeliveredBySync", count)
    inv.delivery.reply(protocol.sync_complete_frame(count, more, position))


def _pending_in_time(inv: Invocation, after: tuple[str, str] | None):
    """The caller's pending messages with what they say, a page at a time; None in
    place of a page there is no time left to read (a Query and a BatchGetItem)."""
    pages = inv.messages.joined_pages(inv.messages.pending(inv.user_id, after))
    while inv.has_time_for(WORST_DYNAMODB_MS, WORST_DYNAMODB_MS):
        page = next(pages, None)
        if page is None:
            return
        yield from page
    yield None


def _sync_confirming(inv: Invocation, message: Message) -> bool | None:
    """One message to a connection without ack mode, where the post confirms it. True if
    posted, False if the post failed, None if another invocation holds the message."""
    lease = inv.lease_until()
    if not inv.messages.lease(message.message_id, lease):
        return None
    status = DELIVERED if message.status == SENT else message.status
    if not inv.delivery.reply(protocol.message_frame(message.but(status=status))):
        inv.messages.release(message.message_id, lease)
        return False
    if inv.messages.confirm(message.message_id, inv.user_id, message.status) == DELIVERED:
        _delivered(inv, message.message_id, "sync")
        _receipt(inv, message, DELIVERED)
    return True


def _delivered(inv: Invocation, message_id: str, how: str) -> None:
    """Log each transition to delivered (the soak counts them: at most one per message)."""
    log("info", "delivered", messageId=message_id, by=how)


def _receipt(inv: Invocation, message: Message, status: str) -> None:
    """A delivered or read receipt to the sender's live connections, if there is time to
    reach them all before the function's limit."""
    senders = inv.delivery.connections_of(message.sender_id) if inv.has_time_for(WORST_DYNAMODB_MS) else None
    if senders is None or not inv.has_time_for(*[WORST_POST_MS] * len(senders)):
        log("warning", "receipt_skipped", messageId=message.message_id, status=status)
        return
    frame = protocol.receipt_frame(message.message_id, message.conversation_id, status)
    inv.delivery.post_each([c.id for c in senders], frame)


# ---- markDelivered, markRead, deleteMessage -----------------------------------------


def _own_messages(inv: Invocation, ids: list[str], verb: str) -> dict[str, Message]:
    """The messages, all addressed to the caller, or FORBIDDEN naming the first that is not."""
    found = inv.messages.get_many(ids)
    for message_id in ids:  # all or nothing: check every id before changing any
        message = found.get(message_id)
        if message is None or message.recipient_id != inv.user_id:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, f"only the recipient can mark a message {verb}", message_id
            )
    return found


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
    found = _own_messages(inv, ids, "delivered")
    for message_id in ids:
        if _out_of_time(inv, message_id, "markDelivered"):
            return
        message = found[message_id]
        if (
            message.pending_for is not None
            and inv.messages.confirm(message_id, inv.user_id, message.status) == DELIVERED
        ):
            _delivered(inv, message_id, "markDelivered")
            _receipt(inv, message, DELIVERED)


def mark_read(inv: Invocation, request: protocol.MarkRead) -> None:
    """Each sender gets a read receipt, preceded by a delivered one if it never had that;
    the reader's other devices learn which messages were read. A message marked read
    before a device had it stays in sync, so its content is never lost. By
    conversationId: every message to the caller there that is not read, up to now."""
    if request.conversation_id is not None:
        _members(inv, request.conversation_id)
        now = now_iso()
        unread = [m for m in inv.messages.unread_in(inv.user_id, request.conversation_id) if m.sent_at <= now]
        ids, found = [m.message_id for m in unread], {m.message_id: m for m in unread}
    else:
        ids = request.message_ids
        found = _own_messages(inv, ids, "read")
    read_now: dict[str, list[str]] = {}
    for message_id in ids:
        message = found[message_id]
        if message.status == READ or message.is_deleted:
            continue  # read already, or deleted: there is nothing to read
        if _out_of_time(inv, message_id, "markRead"):
            break
        if _read(inv, message):
            read_now.setdefault(message.conversation_id, []).append(message_id)
    mine = [c.id for c in inv.delivery.others_of(inv.user_id)] if read_now else []
    for conversation_id, message_ids in read_now.items():
        inv.delivery.post_each(mine, protocol.read_frame(conversation_id, message_ids))


def _read(inv: Invocation, message: Message) -> bool:
    """Mark one message read, and tell its sender: True if this changed it."""
    was = inv.messages.mark_read(message.message_id, inv.user_id)
    if was is None:
        return False
    if was == SENT:
        _receipt(inv, message, DELIVERED)
    _receipt(inv, message, READ)
    return True


def delete_message(inv: Invocation, message_id: str) -> None:
    deleted = inv.messages.soft_delete(message_id, inv.user_id)
    if deleted is None:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "only the sender can delete a message", message_id)
    for reply_id in inv.messages.replies_to(message_id):  # the deleted words leave their quotes too
        inv.messages.unquote(reply_id, message_id)
    notice = protocol.deleted_frame(message_id, deleted.conversation_id)
    both = inv.delivery.connections_of(deleted.recipient_id) + inv.delivery.connections_of(inv.user_id)
    inv.delivery.post_each(dict.fromkeys(c.id for c in both), notice)  # the caller's included, as confirmation


# ---- conversations, history, typing, presence -----------------------------------------


def conversations(inv: Invocation, request: protocol.PageRequest) -> None:
    """The caller's conversations, latest activity first, a page at a time."""
    rows = list(islice(inv.conversations.of_user(inv.user_id, request.cursor, request.limit + 1), request.limit + 1))
    more, rows = len(rows) > request.limit, rows[: request.limit]
    found = inv.messages.get_many([r["lastMessageId"] for r in rows]) if rows else {}
    last = {m.message_id: m for m in inv.messages.joined(list(found.values()))}
    unread = inv.messages.unread_counts(inv.user_id) if rows else {}
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
    entries = inv.messages.history(request.conversation_id, pair, request.cursor, request.limit + 1)
    page = list(islice(entries, request.limit + 1))
    more, page = len(page) > request.limit, inv.messages.joined_by_key(page[: request.limit])
    listed = [((m.sent_at, m.message_id), protocol.message_frame(m)["data"]) for m in page]

    def frame(messages, next_position):
        return protocol.history_frame(request.conversation_id, messages, next_position, request.request_id)

    inv.delivery.reply(frame(*protocol.fill_page(frame, listed, more)))


def typing(inv: Invocation, request: protocol.Typing) -> None:
    """To the peer's live connections; nothing is stored."""
    peer = _peer(inv, _members(inv, request.conversation_id))
    frame = protocol.typing_frame(request.conversation_id, inv.user_id, request.state)
    inv.delivery.post_each([c.id for c in inv.delivery.others_of(peer)], frame)


def presence(inv: Invocation, request: protocol.Presence) -> None:
    """Online and last seen, for the users the caller shares a conversation with; anyone
    else is answered like an unknown user (offline, no lastSeen)."""
    canonical = {u: protocol.canonical_conversation_id(inv.user_id, u) for u in request.user_ids}
    shared = inv.conversations.existing(list(canonical.values()))
    partners = [u for u in request.user_ids if canonical[u] in shared]
    seen = inv.tables.connections.last_seen(partners) if partners else {}
    users = []
    for user_id in request.user_ids:
        entry = {"userId": user_id, "online": user_id in partners and inv.delivery.online(user_id)}
        if user_id in seen:
            entry["lastSeen"] = seen[user_id]
        users.append(entry)
    inv.delivery.reply(protocol.presence_frame(users, request.request_id))


def by_name(settings: Settings) -> dict[str, tuple[Callable, Callable]]:
    """Every client action (chat/contract.py ACTIONS), in that order: how its frame is
    parsed, which comes first so bad input costs no request, and what it does."""
    return {
        "sendMessage": (lambda frame: protocol.parse_send_message(frame, settings.max_content_bytes), send_message),
        "sync": (protocol.parse_sync, sync),
        "markDelivered": (protocol.parse_message_ids, mark_delivered),
        "markRead": (protocol.parse_mark_read, mark_read),
        "deleteMessage": (protocol.parse_delete_message, delete_message),
        "conversations": (protocol.parse_conversations, conversations),
        "history": (protocol.parse_history, history),
        "typing": (protocol.parse_typing, typing),
        "presence": (protocol.parse_presence, presence),
    }
