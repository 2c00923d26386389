"""The Messages and Contents tables, and Message, a message as the rest of the code
sees it: converted here, at the store's edge, from rows of any age.

A message is two items: in Contents, what its sender sent (never changes), written
first; in Messages, its row: the same ids and times, and its delivery state. Rows
stored before the Contents table hold what they say themselves (content_in_row): the
only place that knows is from_items() and the writes that remove a message's words.

Access patterns (docs/design.md has the why):
- a message by id (a retry, a reply's original, a receipt), and up to 100 at once;
- what waits for a user, oldest first: pending-index (sparse: pendingFor);
- a conversation's history, newest first: history-index (keys and the two users);
- the replies that quote a message: replies-index (sparse);
- a user's unread counts, and their unread messages in one conversation: unread-index.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from itertools import chain, islice

from . import contract
from .aws import error_code
from .dynamo import batch_get, from_item, if_condition_holds, key, ordered, query, to_item
from .timing import now_iso

# A message's status only ever moves forward along this order.
SENT, DELIVERED, READ = "sent", "delivered", "read"
QUOTE_FIELDS = contract.QUOTE_FIELDS  # a reply's copy of the original's words
CONTENT_FIELDS = ("content", *QUOTE_FIELDS)  # what a message says: in Contents (or an old row)
# history reads one, and the other if that one is gone or not built yet (an upgrade: README)
HISTORY_INDEXES = (contract.HISTORY_INDEX, contract.OLD_HISTORY_INDEX)


@dataclass(frozen=True)
class Message:
    """A message: what its sender sent, and its delivery state."""

    message_id: str
    conversation_id: str
    sender_id: str
    recipient_id: str
    sent_at: str  # the server's time of storage
    timestamp: str = ""  # the sender's
    sender_name: str | None = None
    content: str | None = None  # None: deleted, or not read with the row
    reply_to_message_id: str | None = None
    reply_to_sender_id: str | None = None  # who really wrote the original
    reply_to_content: str | None = None  # the original's words, copied by the server
    reply_to_sender_name: str | None = None
    status: str = SENT
    pending_for: str | None = None  # the recipient, until a device of theirs has it
    unread_by: str | None = None  # the recipient, until they read it
    lease_until: int | None = None  # epoch ms: an invocation is posting it (actions.py)
    is_deleted: bool = False
    content_in_row: bool = False  # stored before the Contents table: its row holds its words

    def but(self, **changes) -> Message:
        return dataclasses.replace(self, **changes)

    def without_quote(self) -> Message:
        return self.but(reply_to_content=None, reply_to_sender_name=None)

    # ---- the edge: items in DynamoDB's shape (camelCase attributes) ----------------

    @classmethod
    def from_items(cls, row: dict, content: dict | None = None, *, joined: bool = True) -> Message:
        """A message from its row and its Contents item. joined: its words were read too,
        so a row whose words are gone was deleted while this read it (a tombstone)."""
        fields = {name: row[attr] for name, attr in _ATTRIBUTES.items() if attr in row}
        in_row = "content" in row and content is None  # an old row: its words are its own
        words = {}
        if content is not None:
            words = {name: content[attr] for name, attr in _WORDS.items() if attr in content}
        elif not in_row:
            fields = {k: v for k, v in fields.items() if _ATTRIBUTES[k] not in CONTENT_FIELDS}
        message = cls(**{**fields, **words}, content_in_row=in_row)
        if message.is_deleted:  # (its words may be there a moment longer: soft_delete)
            return message.but(content=None, reply_to_content=None, reply_to_sender_name=None)
        if joined and content is None and not in_row:
            return message.but(is_deleted=True)
        return message

    def attributes(self) -> dict:
        """Its fields that are set, by their stored names (which frames use too)."""
        return {attr: value for name, attr in _ATTRIBUTES.items() if (value := getattr(self, name)) is not None}

    def content_item(self) -> dict:
        """Its Contents item: what was sent, which never changes."""
        return {attr: value for attr, value in self.attributes().items() if attr in _SENT}

    def row_item(self) -> dict:
        """Its Messages row: what was sent less its words, and its state."""
        return {attr: value for attr, value in self.attributes().items() if attr not in CONTENT_FIELDS}


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(part.title() for part in rest)


_ATTRIBUTES = {f.name: _camel(f.name) for f in dataclasses.fields(Message) if f.name != "content_in_row"}
_WORDS = {name: attr for name, attr in _ATTRIBUTES.items() if attr in CONTENT_FIELDS}
_STATE = ("status", "pendingFor", "unreadBy", "leaseUntil", "isDeleted")
_SENT = tuple(attr for attr in _ATTRIBUTES.values() if attr not in _STATE)


class MessagesTable:
    def __init__(self, db, messages: str, contents: str, history_index: str, clock=time.time):
        self.db, self.messages, self.contents = db, messages, contents
        self.history_index, self.clock = history_index, clock

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- storing a new message: its words, then its row --------------------------------

    def put_new_content(self, message: Message) -> Message | None:
        """Store what a new message says (the first of its two writes). None if stored,
        else what was stored with that messageId before: another sender's (a CONFLICT),
        or this sender's earlier attempt, which died before its row."""
        old = self._put_new(self.contents, message.content_item())
        return None if old is None else Message.from_items(old, old)

    def put_new_row(self, message: Message) -> Message | None:
        """Store a message's row (its words are stored already) unless its id exists.
        None if stored, else the row there."""
        old = self._put_new(self.messages, message.row_item())
        return None if old is None else Message.from_items(old, joined=False)

    def _put_new(self, table: str, item: dict) -> dict | None:
        """PutItem unless the messageId is there: None if stored, else the item there."""
        try:
            self.db.put_item(
                TableName=table,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(messageId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            if old:
                return from_item(old)
            found = self.db.get_item(TableName=table, Key=key(messageId=item["messageId"]), ConsistentRead=True)
            if "Item" not in found:  # deleted between the two requests
                raise RuntimeError(f"{item['messageId']} changed while it was being stored; retry") from None
            return from_item(found["Item"])

    def drop_content(self, message_id: str, sender_id: str) -> None:
        """Delete a message's words if they are this sender's (nothing if another's, or
        none): for a delete, and to take back words just stored whose row could not be."""
        if_condition_holds(
            self.db.delete_item,
            TableName=self.contents,
            Key=key(messageId=message_id),
            ConditionExpression="senderId = :me",
            ExpressionAttributeValues={":me": {"S": sender_id}},
        )

    # ---- reading -----------------------------------------------------------------------

    def get(self, message_id: str, *, consistent: bool = False) -> Message | None:
        """Its row (no words: joined() reads them)."""
        item = self.db.get_item(TableName=self.messages, Key=key(messageId=message_id), ConsistentRead=consistent).get(
            "Item"
        )
        return Message.from_items(from_item(item), joined=False) if item else None

    def get_many(self, message_ids: list[str]) -> dict[str, Message]:
        """Up to 100 rows (no words), by id."""
        rows = batch_get(self.db, {self.messages: [key(messageId=m) for m in message_ids]})[self.messages]
        return {row["messageId"]: Message.from_items(row, joined=False) for row in rows}

    def joined(self, messages: list[Message]) -> list[Message]:
        """The messages with what they say, read from Contents (a BatchGetItem per 100)."""
        wanted = [m.message_id for m in messages if not m.content_in_row and not m.is_deleted]
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), 100):
            keys = [key(messageId=m) for m in wanted[start : start + 100]]
            found.update((c["messageId"], c) for c in batch_get(self.db, {self.contents: keys})[self.contents])
        return [_joined(m, found.get(m.message_id)) for m in messages]

    def joined_by_key(self, entries: list[dict]) -> list[Message]:
        """Index entries as whole messages: each one's row and what it says, read
        together, one BatchGetItem per 50. The rows eventually consistent (a status a
        moment old is fine in a history), the words strongly (a message deleted a moment
        ago shows as deleted)."""
        rows: dict[str, dict] = {}
        contents: dict[str, dict] = {}
        for start in range(0, len(entries), 50):
            keys = [key(messageId=e["messageId"]) for e in entries[start : start + 50]]
            found = batch_get(self.db, {self.messages: keys, self.contents: keys}, eventual={self.messages})
            rows.update((r["messageId"], r) for r in found[self.messages])
            contents.update((c["messageId"], c) for c in found[self.contents])
        # (a row is never deleted: an entry without one was read as it was being stored)
        ids = [e["messageId"] for e in entries if e["messageId"] in rows]
        return [Message.from_items(rows[m], contents.get(m)) for m in ids]

    def joined_pages(self, messages, page_size: int = 100):
        """A long (lazy) run of messages as lists of page_size, each joined with what its
        messages say when it is asked for (about a Query and a BatchGetItem)."""
        messages = iter(messages)
        while page := list(islice(messages, page_size)):
            yield self.joined(page)

    def pending(self, user_id: str, after: tuple[str, str] | None = None, page_size: int = 100):
        """Every message a device of the user does not have yet, oldest first, from after
        the (sentAt, messageId) position if given (rows: no words)."""
        rows = ordered(
            self.db,
            self.messages,
            contract.PENDING_INDEX,
            ("pendingFor", user_id),
            ("sentAt", "messageId"),
            after=after,
            page_size=page_size,
            forward=True,
        )
        return (Message.from_items(row, joined=False) for row in rows)

    def history(self, conversation_id: str, pair: tuple[str, str], before: tuple[str, str] | None, page_size: int):
        """A conversation's index entries (messageId, sentAt, senderId, recipientId:
        joined_by_key() reads the rest), newest first, from before the (sentAt,
        messageId) position if given: its pair's only (before conversations had members,
        two pairs could share an id)."""
        entries = self._history(conversation_id, before, page_size)
        return (e for e in entries if tuple(sorted((e.get("senderId", ""), e.get("recipientId", "")))) == pair)

    def _history(self, conversation_id: str, before: tuple[str, str] | None, page_size: int):

        def read(index: str):
            order = ("sentAt", "messageId")
            partition = ("conversationId", conversation_id)
            return ordered(
                self.db, self.messages, index, partition, order, after=before, page_size=page_size, forward=False
            )

        rows = read(self.history_index)
        try:
            first = next(rows, None)
        except Exception as exc:
            if error_code(exc) != "ValidationException":
                raise
            # "does not have the specified index" or "Cannot read from backfilling global
            # secondary index": an upgrade is under way, and the other index is there
            (other,) = (i for i in HISTORY_INDEXES if i != self.history_index)
            rows = read(other)
            first = next(rows, None)
        return chain([first] if first is not None else [], rows)

    def replies_to(self, message_id: str):
        """The ids of the replies that quote a message."""
        rows = query(
            self.db,
            TableName=self.messages,
            IndexName=contract.REPLIES_INDEX,
            KeyConditionExpression="replyToMessageId = :m",
            ExpressionAttributeValues={":m": {"S": message_id}},
        )
        return (row["messageId"]["S"] for row in rows)

    def unread_counts(self, user_id: str) -> dict[str, int]:
        """conversationId -> how many messages to the user there are not read yet."""
        counts: dict[str, int] = {}
        rows = query(
            self.db,
            TableName=self.messages,
            IndexName=contract.UNREAD_INDEX,
            KeyConditionExpression="unreadBy = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ProjectionExpression="conversationId",
        )
        for row in rows:
            conversation_id = row["conversationId"]["S"]
            counts[conversation_id] = counts.get(conversation_id, 0) + 1
        return counts

    def unread_in(self, user_id: str, conversation_id: str):
        """The messages to the user in a conversation not read yet, as the index has them
        (ids, sender, sentAt): at most delivered, for all the caller can tell."""
        rows = query(
            self.db,
            TableName=self.messages,
            IndexName=contract.UNREAD_INDEX,
            KeyConditionExpression="unreadBy = :u AND conversationId = :c",
            ExpressionAttributeValues={":u": {"S": user_id}, ":c": {"S": conversation_id}},
        )
        for row in (from_item(item) for item in rows):
            yield Message(row["messageId"], conversation_id, row["senderId"], user_id, row["sentAt"])

    # ---- a message's state ---------------------------------------------------------------

    def _update(self, message_id: str, update: str, condition: str, values: dict, names=None, returns="ALL_NEW"):
        """A conditional UpdateItem; the returned attributes, or None if the condition did not hold."""
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        reply = if_condition_holds(
            self.db.update_item,
            TableName=self.messages,
            Key=key(messageId=message_id),
            UpdateExpression=update,
            ConditionExpression=condition,
            ExpressionAttributeValues=to_item(values),
            ReturnValues=returns,
            **kwargs,
        )
        return None if reply is None else from_item(reply.get("Attributes", {}))

    def lease(self, message_id: str, until_ms: int) -> bool:
        """Take the message for posting to connections without ack mode, until until_ms,
        if it is still pending and nobody else holds it."""
        held = self._update(
            message_id,
            "SET leaseUntil = :until",
            "attribute_exists(pendingFor) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)",
            {":until": until_ms, ":now": self.now_ms()},
        )
        return held is not None

    def release(self, message_id: str, until_ms: int) -> None:
        """Give back a lease whose posts all failed: the message is deliverable at once."""
        self._update(message_id, "REMOVE leaseUntil", "leaseUntil = :mine", {":mine": until_ms}, returns="NONE")

    def confirm(self, message_id: str, recipient_id: str, status: str = SENT) -> str | None:
        """A device of the recipient has the message: it leaves sync. Returns DELIVERED if
        this call moved it from sent to delivered (the sender's receipt is due), READ if it
        was read already (an early markRead), None if it was not pending (confirmed before).
        ``status`` is what the caller last saw, to try the likely update first."""
        if status == SENT:
            moved = self._update(
                message_id,
                "SET #s = :delivered, deliveredAt = :now REMOVE pendingFor, leaseUntil",
                "recipientId = :me AND #s = :sent AND attribute_exists(pendingFor)",
                {":me": recipient_id, ":sent": SENT, ":delivered": DELIVERED, ":now": now_iso()},
                {"#s": "status"},
            )
            if moved is not None:
                return DELIVERED
        kept = self._update(
            message_id,
            "REMOVE pendingFor, leaseUntil",
            "recipientId = :me AND attribute_exists(pendingFor)",
            {":me": recipient_id},
        )
        return kept["status"] if kept is not None else None

    def mark_read(self, message_id: str, reader_id: str) -> str | None:
        """sent or delivered -> read, and out of the unread counts. Returns the status it
        had, or None if it was read already or is deleted. A message still pending stays
        pending: marking it read does not give the recipient its words, sync does."""
        old = self._update(
            message_id,
            "SET #s = :read, readAt = :now REMOVE unreadBy",
            "recipientId = :me AND #s IN (:sent, :delivered) AND attribute_not_exists(deletedAt)",
            {":me": reader_id, ":read": READ, ":sent": SENT, ":delivered": DELIVERED, ":now": now_iso()},
            {"#s": "status"},
            returns="UPDATED_OLD",
        )
        return old["status"] if old is not None else None

    def unquote(self, reply_id: str, original_id: str) -> None:
        """Remove a reply's quote of a deleted message; the pointer stays. The quote is in
        the reply's Contents item, or in its row if stored before Contents existed."""
        in_content = if_condition_holds(
            self.db.update_item,
            TableName=self.contents,
            Key=key(messageId=reply_id),
            UpdateExpression="REMOVE " + ", ".join(QUOTE_FIELDS),
            ConditionExpression="attribute_exists(replyToContent)",
        )
        if in_content is None:
            remove = "REMOVE " + ", ".join(QUOTE_FIELDS)
            self._update(reply_id, remove, "replyToMessageId = :m", {":m": original_id}, returns="NONE")

    def soft_delete(self, message_id: str, sender_id: str) -> Message | None:
        """isDeleted, and its words gone (docs/design.md: why three writes). None if the
        caller is not the sender."""
        self.drop_content(message_id, sender_id)  # not theirs, or none: the row's condition decides
        deleted = self._update(
            message_id,
            "SET isDeleted = :true, deletedAt = :now"
            f" REMOVE #c, {', '.join(QUOTE_FIELDS)}, pendingFor, leaseUntil, unreadBy",  # (#c: an old row's words)
            "senderId = :me",
            {":me": sender_id, ":true": True, ":now": now_iso()},
            {"#c": "content"},
        )
        if deleted is None:
            return None
        self.drop_content(message_id, sender_id)  # a retry of the send may have stored them again
        return Message.from_items(deleted, joined=False)


def _joined(message: Message, content: dict | None) -> Message:
    """A message read without its words, with them: from its Contents item, or its own
    row (content_in_row); a deleted message has none, and one whose words are gone was
    deleted while this read it: a tombstone too."""
    if message.is_deleted or message.content_in_row:
        return message
    if content is None:
        return message.but(is_deleted=True)
    return message.but(**{name: content.get(attr) for name, attr in _WORDS.items()})
