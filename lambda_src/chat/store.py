"""DynamoDB access for the Connections, Messages, Contents and Conversations tables. No
Scan anywhere.

Connections: ``connectionId`` key; ``connections-by-user`` (userId -> every attribute:
the connection's ttl, its ``ack`` mode, when it connected, and in token mode the
verified display ``name``). Beside them, one ``#lastSeen:<userId>`` row per user whose
connection closed, without a userId attribute (so in no index): their ``lastSeen``.
Messages: ``messageId`` key;
  ``pending-index``       pendingFor + sentAt. Sparse: ``pendingFor`` (the recipient)
                          exists only until a device of the recipient has the message,
                          so "what is waiting for user X, oldest first" costs what it returns.
  ``history-index``       conversationId + sentAt, with senderId and recipientId only: a
                          conversation's history by time. Nothing it holds ever changes,
                          so status changes do not write to it; history reads the rows.
                          (``conversation-index``, the same with every attribute, during
                          the upgrade from before it: HISTORY_INDEX names the one to read.)
  ``replies-index``       replyToMessageId, keys only. Sparse: the replies to a message,
                          whose quotes of it go when it is deleted.
  ``unread-index``        unreadBy + conversationId. Sparse: ``unreadBy`` (the recipient)
                          exists until the message is read or deleted, so a user's unread
                          counts cost what is unread. Messages stored before it existed
                          are not counted.
Contents: ``messageId`` key. Each message as sent: what it says (``content``, and a
  reply's quote: ``replyToContent``, ``replyToSenderName``) with its ids, names and
  times, which never change; no index. Written before the message's Messages row, so a
  row never lacks its content, and deleted first when the message is. Apart from the
  row because a row's status changes rewrite the whole row, and every index copy of it:
  here they do not touch the content. Rows stored before Contents existed hold their
  content themselves. A send that died between the two writes leaves a content item
  with no row: nothing reads it, and the sender's retry (same messageId) completes the
  message as it was first sent.
Conversations: ``conversationId`` + ``userId`` keys. The ``#pair`` row holds the two
  users (``memberA`` <= ``memberB``), claimed by the first message and never changed.
  A row per user holds ``peerId``, ``updatedAt`` and ``lastMessageId`` (only moves
  forward); ``conversations-by-user`` (userId + updatedAt) is each user's list. The
  pair row of the pair's canonical conversation exists as soon as they share any
  conversation: that is how presence knows who may see whom.

A message's life, as stored:
  status      sent -> delivered -> read, only forward. ``delivered`` means a device of the
              recipient has it: an ack-mode device confirmed it (markDelivered), or a post
              to a connection without ack mode succeeded.
  pendingFor  set until then, and so in every sync. An early markRead (a message the
              recipient has not received) sets ``read`` and leaves it pending.
  leaseUntil  (epoch ms) while an invocation posts the message to connections without ack
              mode, so that a live send and a sync racing for one such connection post it
              once. The send that stores a message stores its row leased already when the
              recipient has such a connection; otherwise a lease is taken (lease()). A
              lease ends with its invocation's deadline, so a message whose poster died
              becomes deliverable again on its own.

The index and attribute names here must match stacks/storage.py.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import chain, islice

from . import contract
from .aws import error_code
from .log import count_units

# A message's status only ever moves forward along this order.
SENT, DELIVERED, READ = "sent", "delivered", "read"

USER_INDEX = contract.CONNECTIONS_BY_USER
CONVERSATIONS_INDEX = contract.CONVERSATIONS_BY_USER
UNREAD_INDEX = contract.UNREAD_INDEX
PAIR = "#pair"  # the sort key of a conversation's own row; user ids cannot contain "#"
LAST_SEEN = "#lastSeen:"  # + userId: the Connections row that says when they were last seen
# API Gateway keeps a connection at most 2 hours: a row older than that is not online,
# whatever its ttl says (its $disconnect may have been missed).
MAX_CONNECTION_SECONDS = contract.MAX_CONNECTION_SECONDS
PENDING_INDEX = contract.PENDING_INDEX
REPLIES_INDEX = contract.REPLIES_INDEX
# history reads one, and the other if that one is gone or not built yet (an upgrade: README)
HISTORY_INDEXES = (contract.HISTORY_INDEX, contract.OLD_HISTORY_INDEX)
# What a message says, kept in the Contents table (and, for messages stored before it,
# in their Messages row).
QUOTE_FIELDS = contract.QUOTE_FIELDS  # a reply's copy of the original
CONTENT_FIELDS = ("content", *QUOTE_FIELDS)

# Connection ids never repeat and a connection's user and mode never change, and a
# conversation's pair never changes either, so both are cached for the life of the
# container, up to this many entries each.
CACHE_SIZE = 10_000
# A connection this young that answers 410 may still be in its handshake: keep its row.
HANDSHAKE_GRACE_SECONDS = 10


def now_iso() -> str:
    """Server time, sortable: 2025-10-21T10:30:00.123456Z."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _to_attr(value):
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int):
        return {"N": str(value)}
    if isinstance(value, str):
        return {"S": value}
    raise TypeError(f"cannot store {type(value).__name__}")


def _from_attr(attr: dict):
    ((kind, value),) = attr.items()
    if kind == "N":
        return int(value)
    if kind in ("S", "BOOL"):
        return value
    raise TypeError(f"unexpected DynamoDB type {kind}")


def to_item(values: dict) -> dict:
    return {k: _to_attr(v) for k, v in values.items() if v is not None}


def from_item(item: dict) -> dict:
    return {k: _from_attr(v) for k, v in item.items()}


def _if_condition_holds(write, **request) -> dict | None:
    """A conditional write: its reply, or None if its condition did not hold (nothing was
    written then). Any other error raises."""
    try:
        return write(**request)
    except Exception as exc:
        if error_code(exc) == "ConditionalCheckFailedException":
            return None
        raise


@dataclass(frozen=True)
class Connection:
    id: str
    user_id: str
    ack: bool  # the client confirms what it receives (markDelivered)
    ttl: int
    connected_at: int
    name: str | None = None  # the display name from the verified token, if named
    named: bool = False  # token mode: senderName is name, never what a frame says


READS = frozenset({"GetItem", "Query", "BatchGetItem", "Scan", "TransactGetItems"})


def _ask_for_capacity(params: dict, model, **_) -> None:
    if "ReturnConsumedCapacity" in model.input_shape.members:
        params.setdefault("ReturnConsumedCapacity", "TOTAL")


def _count_capacity(parsed: dict, model, **_) -> None:
    consumed = parsed.get("ConsumedCapacity")  # a list for batches; absent from errors
    if consumed:
        units = sum(c.get("CapacityUnits", 0) for c in (consumed if isinstance(consumed, list) else [consumed]))
        count_units("ReadUnits" if model.name in READS else "WriteUnits", units)


class Store:
    def __init__(
        self,
        client,
        *,
        connections: str,
        messages: str,
        conversations: str,
        contents: str,
        history_index: str,
        clock=time.time,
    ):
        """The four table names and the index history reads, as chat.config.Settings.tables gives them.

        Every request asks DynamoDB for the capacity it consumed (ReturnConsumedCapacity:
        no charge, a few bytes more in the reply), and the invocation's metrics line
        reports the sum as ReadUnits and WriteUnits (docs/operations.md). A conditional
        write whose condition fails is billed too, but its error reply says nothing."""
        client.meta.events.register("provide-client-params.dynamodb", _ask_for_capacity, unique_id="chat-capacity-ask")
        client.meta.events.register("after-call.dynamodb", _count_capacity, unique_id="chat-capacity-count")
        self.db = client
        self.connections = connections
        self.messages = messages
        self.conversations = conversations
        self.contents = contents
        self.history_index = history_index
        self.clock = clock
        self._connections: OrderedDict[str, Connection] = OrderedDict()
        self._pairs: OrderedDict[str, tuple[str, str]] = OrderedDict()  # membership never changes

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- connections ---------------------------------------------------------

    def put_connection(
        self, connection_id: str, user_id: str, ttl_seconds: int, *, ack: bool, name: str | None, named: bool
    ) -> None:
        """named: the display name comes from the verified token (name may then be None)."""
        now = int(self.clock())
        item = {"connectionId": connection_id, "userId": user_id, "connectedAt": now, "ttl": now + ttl_seconds}
        self.db.put_item(TableName=self.connections, Item=to_item({**item, "ack": ack, "named": named, "name": name}))

    def delete_connection(self, connection_id: str) -> None:
        """Forget a closed connection, and remember when its user was last seen."""
        self._connections.pop(connection_id, None)
        old = self.db.delete_item(
            TableName=self.connections, Key={"connectionId": {"S": connection_id}}, ReturnValues="ALL_OLD"
        ).get("Attributes")
        if old and "userId" in old:
            row = {"connectionId": LAST_SEEN + old["userId"]["S"], "lastSeen": now_iso()}
            self.db.put_item(TableName=self.connections, Item=to_item(row))

    def last_seen(self, user_ids: list[str]) -> dict[str, str]:
        """userId -> when their last connection closed, for those who have one."""
        rows = self._batch_get(self.connections, [{"connectionId": {"S": LAST_SEEN + u}} for u in user_ids])
        return {row["connectionId"][len(LAST_SEEN) :]: row["lastSeen"] for row in rows}

    def online(self, user_id: str) -> bool:
        """Whether the user has a connection API Gateway could still hold."""
        oldest = self.clock() - MAX_CONNECTION_SECONDS
        return any(c.connected_at > oldest for c in self.live_connections(user_id))

    def delete_gone_connection(self, connection_id: str) -> bool:
        """Delete a connection whose post answered 410, unless it connected in the last
        HANDSHAKE_GRACE_SECONDS: API Gateway cannot post to a connection until its
        handshake completes, shortly after $connect returns, and a post in that window
        answers 410 too. A young row that really is dead goes with its $disconnect or ttl."""
        cutoff = int(self.clock()) - HANDSHAKE_GRACE_SECONDS
        deleted = _if_condition_holds(
            self.db.delete_item,
            TableName=self.connections,
            Key={"connectionId": {"S": connection_id}},
            ConditionExpression="connectedAt < :cutoff",
            ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
        )
        if deleted is None:
            return False
        self._connections.pop(connection_id, None)
        return True

    def in_handshake(self, connection: Connection) -> bool:
        """Whether a 410 from this connection may mean its handshake is not done yet."""
        return connection.connected_at >= int(self.clock()) - HANDSHAKE_GRACE_SECONDS

    def connection(self, connection_id: str) -> Connection | None:
        """A live connection: its user and mode; None if unknown or past its ttl.

        DynamoDB's TTL delete can lag by up to two days, so expiry is checked here.
        """
        found = self._connections.get(connection_id)
        if found is None:
            item = self.db.get_item(TableName=self.connections, Key={"connectionId": {"S": connection_id}}).get("Item")
            if item is None:
                return None
            found = _connection(from_item(item))
            self._connections[connection_id] = found
            if len(self._connections) > CACHE_SIZE:
                self._connections.popitem(last=False)
        return found if found.ttl > self.clock() else None

    def _query(self, start: dict | None = None, **query):
        """Every item a Query finds, one request per page (1 MB, or Limit), read lazily."""
        while True:
            page = self.db.query(**query, **({"ExclusiveStartKey": start} if start else {}))
            yield from page.get("Items", [])
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def live_connections(self, user_id: str) -> list[Connection]:
        """Every unexpired connection of a user."""
        now = self.clock()
        rows = self._query(
            TableName=self.connections,
            IndexName=USER_INDEX,
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
        )
        return [c for c in (_connection(from_item(row)) for row in rows) if c.ttl > now]

    # ---- messages ------------------------------------------------------------

    def _put_new(self, table: str, item: dict) -> dict | None:
        """PutItem unless the messageId is there. Returns None if stored, else the item there."""
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
            key = {"messageId": {"S": item["messageId"]}}
            found = self.db.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
            if found is None:  # deleted between the two requests
                raise RuntimeError(f"{item['messageId']} changed while it was being stored; retry") from None
            return from_item(found)

    def put_new_content(self, message: dict) -> dict | None:
        """Store a new message as sent (its ids, names, times and CONTENT_FIELDS: what never
        changes), the first of its two writes. Returns None if stored, else what was
        stored with that messageId before: another sender's (a CONFLICT), or this
        sender's earlier attempt, which died before its row."""
        return self._put_new(self.contents, message)

    @staticmethod
    def new_row(message: dict, *, lease_until: int | None = None) -> dict:
        """A new message's Messages row: the message as sent without CONTENT_FIELDS, and
        its first state: sent, pending for its recipient, unread by them; and leased until
        lease_until, if given, by the send that stores it (as lease() would)."""
        row = {k: v for k, v in message.items() if k not in CONTENT_FIELDS}
        recipient = message["recipientId"]
        unread = recipient if recipient != message["senderId"] else None
        state = {"status": SENT, "pendingFor": recipient, "unreadBy": unread, "isDeleted": False}
        return {**row, **state, "leaseUntil": lease_until}

    def drop_content(self, message_id: str, sender_id: str) -> None:
        """Delete a message's content if it is this sender's (nothing if it is another's,
        or there is none). For a delete, and to take back content just stored whose row
        could not be: its messageId is a deleted message's, or one's stored before
        Contents existed (which holds its content in its row)."""
        _if_condition_holds(
            self.db.delete_item,
            TableName=self.contents,
            Key={"messageId": {"S": message_id}},
            ConditionExpression="senderId = :me",
            ExpressionAttributeValues={":me": {"S": sender_id}},
        )

    def put_new_message(self, message: dict) -> dict | None:
        """Store a message's row (its content is stored already) unless its id exists.
        Returns None if stored, else the existing row."""
        return self._put_new(self.messages, message)

    def get_message(self, message_id: str, *, consistent: bool = False) -> dict | None:
        item = self.db.get_item(
            TableName=self.messages, Key={"messageId": {"S": message_id}}, ConsistentRead=consistent
        ).get("Item")
        return from_item(item) if item else None

    def get_messages(self, message_ids: list[str]) -> dict[str, dict]:
        """BatchGetItem for up to 100 ids: the rows, without what the messages say."""
        rows = self._batch_get(self.messages, [{"messageId": {"S": m}} for m in message_ids])
        return {row["messageId"]: row for row in rows}

    def with_content(self, rows: list[dict]) -> list[dict]:
        """The messages with what they say, read from Contents (a BatchGetItem per 100)
        for the rows that do not hold it themselves."""
        wanted = [r["messageId"] for r in rows if "content" not in r and not r.get("isDeleted")]
        found: dict[str, dict] = {}
        for start in range(0, len(wanted), 100):
            keys = [{"messageId": {"S": m}} for m in wanted[start : start + 100]]
            found.update((c["messageId"], c) for c in self._batch_get(self.contents, keys))
        return [_with(row, found.get(row["messageId"])) for row in rows]

    def whole(self, entries: list[dict]) -> list[dict]:
        """Index entries (keys and a few attributes) as whole messages: each one's row and
        what it says, read together, one BatchGetItem per 50 messages. The rows are read
        eventually consistent (half the read units; a status a moment old is fine in a
        history), what they say strongly (a message deleted a moment ago shows as deleted)."""
        rows: dict[str, dict] = {}
        contents: dict[str, dict] = {}
        for start in range(0, len(entries), 50):
            keys = [{"messageId": {"S": e["messageId"]}} for e in entries[start : start + 50]]
            found = self._batch_get_tables({self.messages: keys, self.contents: keys}, eventual={self.messages})
            rows.update((r["messageId"], r) for r in found[self.messages])
            contents.update((c["messageId"], c) for c in found[self.contents])
        # (a row is never deleted: an entry without one was read as it was being stored)
        return [_with(rows[e["messageId"]], contents.get(e["messageId"])) for e in entries if e["messageId"] in rows]

    def pages_with_content(self, rows, page_size: int = 100):
        """A long (lazy) run of rows, as lists of page_size messages with what they say:
        each page read when it is asked for (about a Query and a BatchGetItem)."""
        rows = iter(rows)
        while page := list(islice(rows, page_size)):
            yield self.with_content(page)

    def _batch_get(self, table: str, keys: list[dict]) -> list[dict]:
        """BatchGetItem (consistent) for up to 100 keys of one table, retrying unprocessed keys."""
        return self._batch_get_tables({table: keys})[table]

    def _batch_get_tables(self, keys: dict[str, list[dict]], eventual=frozenset()) -> dict[str, list[dict]]:
        """BatchGetItem for up to 100 keys in all, of these tables (strongly consistent but
        for the tables in eventual), retrying unprocessed keys up to 4 times: table ->
        the items found."""
        found: dict[str, list[dict]] = {table: [] for table in keys}
        request = {t: {"Keys": k, "ConsistentRead": t not in eventual} for t, k in keys.items() if k}
        if not request:
            return found
        for attempt in range(5):
            if attempt:
                time.sleep(0.05 * 2 ** (attempt - 1))
            reply = self.db.batch_get_item(RequestItems=request)
            for table, items in reply.get("Responses", {}).items():
                found[table] += [from_item(item) for item in items]
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                return found
        raise RuntimeError("BatchGetItem left keys unprocessed after retries")

    def _ordered(self, table: str, index: str, key: tuple, order: tuple, *, position, page_size: int, forward: bool):
        """The items of one partition of an index in its sort order, from after a position
        (sort value, table key value) if given: one Query per page_size, read lazily.
        key is (partition attribute, value); order is (sort attribute, the table's key
        attribute that is not already the partition), which make a position unique."""
        (name, value), (sort_name, tiebreak) = key, order
        start = None
        if position:
            start = {name: {"S": value}, sort_name: {"S": position[0]}, tiebreak: {"S": position[1]}}
        rows = self._query(
            start,
            TableName=table,
            IndexName=index,
            KeyConditionExpression=f"{name} = :v",
            ExpressionAttributeValues={":v": {"S": value}},
            ScanIndexForward=forward,
            Limit=page_size,
        )
        return (from_item(row) for row in rows)

    def pending(self, user_id: str, after: tuple[str, str] | None = None, page_size: int = 100):
        """Every message a device of the user does not have yet, oldest first, from after
        the (sentAt, messageId) position if given."""
        key, order = ("pendingFor", user_id), ("sentAt", "messageId")
        return self._ordered(
            self.messages, PENDING_INDEX, key, order, position=after, page_size=page_size, forward=True
        )

    def _update(self, message_id: str, update: str, condition: str, values: dict, names=None, returns="ALL_NEW"):
        """A conditional UpdateItem; the returned attributes, or None if the condition did not hold."""
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        reply = _if_condition_holds(
            self.db.update_item,
            TableName=self.messages,
            Key={"messageId": {"S": message_id}},
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
        pending: marking it read does not give the recipient its content, sync does."""
        old = self._update(
            message_id,
            "SET #s = :read, readAt = :now REMOVE unreadBy",
            "recipientId = :me AND #s IN (:sent, :delivered) AND attribute_not_exists(deletedAt)",
            {":me": reader_id, ":read": READ, ":sent": SENT, ":delivered": DELIVERED, ":now": now_iso()},
            {"#s": "status"},
            returns="UPDATED_OLD",
        )
        return old["status"] if old is not None else None

    def replies_to(self, message_id: str):
        """The ids of the replies that quote a message."""
        rows = self._query(
            TableName=self.messages,
            IndexName=REPLIES_INDEX,
            KeyConditionExpression="replyToMessageId = :m",
            ExpressionAttributeValues={":m": {"S": message_id}},
        )
        return (row["messageId"]["S"] for row in rows)

    def unquote(self, reply_id: str, original_id: str) -> None:
        """Remove a reply's quote of a deleted message; the pointer stays. The quote is in
        the reply's content, or in its row if stored before Contents existed."""
        in_content = _if_condition_holds(
            self.db.update_item,
            TableName=self.contents,
            Key={"messageId": {"S": reply_id}},
            UpdateExpression="REMOVE " + ", ".join(QUOTE_FIELDS),
            ConditionExpression="attribute_exists(replyToContent)",
        )
        if in_content is not None:
            return
        self._update(
            reply_id,
            "REMOVE " + ", ".join(QUOTE_FIELDS),
            "replyToMessageId = :m",
            {":m": original_id},
            returns="NONE",
        )

    def unread_counts(self, user_id: str) -> dict[str, int]:
        """conversationId -> how many messages to the user there are not read yet."""
        counts: dict[str, int] = {}
        rows = self._query(
            TableName=self.messages,
            IndexName=UNREAD_INDEX,
            KeyConditionExpression="unreadBy = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ProjectionExpression="conversationId",
        )
        for row in rows:
            conversation_id = row["conversationId"]["S"]
            counts[conversation_id] = counts.get(conversation_id, 0) + 1
        return counts

    def unread_in(self, user_id: str, conversation_id: str):
        """The messages to the user in a conversation not read yet: messageId, senderId,
        conversationId and sentAt of each."""
        rows = self._query(
            TableName=self.messages,
            IndexName=UNREAD_INDEX,
            KeyConditionExpression="unreadBy = :u AND conversationId = :c",
            ExpressionAttributeValues={":u": {"S": user_id}, ":c": {"S": conversation_id}},
        )
        return (from_item(row) for row in rows)

    def history(self, conversation_id: str, before: tuple[str, str] | None, page_size: int):
        """A conversation's messages' index entries (messageId, sentAt, senderId,
        recipientId: whole() reads the rest), newest first, from before the (sentAt,
        messageId) position if given."""
        key, order = ("conversationId", conversation_id), ("sentAt", "messageId")

        def read(index: str):
            return self._ordered(self.messages, index, key, order, position=before, page_size=page_size, forward=False)

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

    # ---- conversations -----------------------------------------------------------

    def pair(self, conversation_id: str) -> tuple[str, str] | None:
        """The conversation's two users (sorted), or None if it does not exist."""
        found = self._pairs.get(conversation_id)
        if found is None:
            key = {"conversationId": {"S": conversation_id}, "userId": {"S": PAIR}}
            item = self.db.get_item(TableName=self.conversations, Key=key, ConsistentRead=True).get("Item")
            if item is None:
                return None
            found = self._remember(conversation_id, from_item(item))
        return found

    def claim(self, conversation_id: str, user_a: str, user_b: str) -> tuple[str, str]:
        """Make the conversation theirs if nobody has; returns the pair that has it (the
        first claim wins a race)."""
        row = _pair_row(conversation_id, user_a, user_b)
        try:
            self.db.put_item(
                TableName=self.conversations,
                Item=to_item(row),
                ConditionExpression="attribute_not_exists(userId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except Exception as exc:
            if error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            return self._remember(conversation_id, from_item(old)) if old else self.pair(conversation_id)
        return self._remember(conversation_id, row)

    def add_contact(self, conversation_id: str, user_a: str, user_b: str) -> None:
        """The pair row of their canonical conversation, which says they share one (the
        same two users every time: writing it again changes nothing)."""
        self.db.put_item(TableName=self.conversations, Item=to_item(_pair_row(conversation_id, user_a, user_b)))

    def existing(self, conversation_ids: list[str]) -> set[str]:
        """Which of these conversations exist (up to 100)."""
        keys = [{"conversationId": {"S": c}, "userId": {"S": PAIR}} for c in dict.fromkeys(conversation_ids)]
        return {row["conversationId"] for row in self._batch_get(self.conversations, keys)}

    def _remember(self, conversation_id: str, row: dict) -> tuple[str, str]:
        pair = (row["memberA"], row["memberB"])
        self._pairs[conversation_id] = pair
        if len(self._pairs) > CACHE_SIZE:
            self._pairs.popitem(last=False)
        return pair

    def touch(self, conversation_id: str, user_id: str, peer_id: str, message_id: str, sent_at: str) -> None:
        """The user's row of the conversation: its latest message, which puts it first
        in their list. Only moves forward, so sends that race leave the latest."""
        _if_condition_holds(
            self.db.update_item,
            TableName=self.conversations,
            Key={"conversationId": {"S": conversation_id}, "userId": {"S": user_id}},
            UpdateExpression="SET peerId = :p, updatedAt = :t, lastMessageId = :m",
            ConditionExpression="attribute_not_exists(updatedAt) OR updatedAt <= :t",
            ExpressionAttributeValues=to_item({":p": peer_id, ":t": sent_at, ":m": message_id}),
        )

    def conversations_of(self, user_id: str, after: tuple[str, str] | None, page_size: int):
        """The user's conversation rows, latest activity first, from after the
        (updatedAt, conversationId) position if given."""
        key, order = ("userId", user_id), ("updatedAt", "conversationId")
        return self._ordered(
            self.conversations, CONVERSATIONS_INDEX, key, order, position=after, page_size=page_size, forward=False
        )

    def soft_delete(self, message_id: str, sender_id: str) -> dict | None:
        """isDeleted=true and the content gone. None if the caller is not the sender. The
        content first (a row whose content is gone reads as deleted), then the row (a
        retry of the delete finishes it if this dies in between), then the content once
        more; each conditional on the sender. The last one is for a retry of the send
        racing the delete: it can store the content again between the first two, and
        then find the row not yet deleted and keep it; it always stores it before the row
        is marked, so after that nothing brings it back. A message from before Contents
        has its content in its row."""
        self.drop_content(message_id, sender_id)  # not theirs, or none: the row's condition decides
        deleted = self._update(
            message_id,
            "SET isDeleted = :true, deletedAt = :now"
            f" REMOVE #c, {', '.join(QUOTE_FIELDS)}, pendingFor, leaseUntil, unreadBy",
            "senderId = :me",
            {":me": sender_id, ":true": True, ":now": now_iso()},
            {"#c": "content"},
        )
        if deleted is not None:
            self.drop_content(message_id, sender_id)
        return deleted


def _with(row: dict, content: dict | None) -> dict:
    """A message's row with what it says. A row holds it itself if stored before
    Contents existed; a deleted message has none, and a row whose content is gone was
    deleted while this read it: a tombstone too."""
    if row.get("isDeleted"):  # (its content may be there a moment longer: soft_delete)
        return {k: v for k, v in row.items() if k not in CONTENT_FIELDS}
    if content is not None:
        return {**row, **{k: v for k, v in content.items() if k in CONTENT_FIELDS}}
    return row if "content" in row else {**row, "isDeleted": True}


def _pair_row(conversation_id: str, user_a: str, user_b: str) -> dict:
    first, second = sorted((user_a, user_b))
    row = {"conversationId": conversation_id, "userId": PAIR, "memberA": first, "memberB": second}
    return {**row, "createdAt": now_iso()}


def _connection(row: dict) -> Connection:
    return Connection(
        row["connectionId"],
        row["userId"],
        bool(row.get("ack", False)),
        row.get("ttl", 0),
        row.get("connectedAt", 0),
        row.get("name"),
        bool(row.get("named", False)),
    )
