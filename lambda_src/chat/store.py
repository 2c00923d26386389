"""DynamoDB access for the Connections and Messages tables. No Scan anywhere.

Connections: ``connectionId`` key; ``connections-by-user`` (userId -> every attribute:
the connection's ttl, its ``ack`` mode, when it connected).
Messages: ``messageId`` key;
  ``pending-index``       pendingFor + sentAt. Sparse: ``pendingFor`` (the recipient)
                          exists only until a device of the recipient has the message,
                          so "what is waiting for user X, oldest first" costs what it returns.
  ``conversation-index``  conversationId + sentAt: a conversation's history by time.
  ``replies-index``       replyToMessageId, keys only. Sparse: the replies to a message,
                          whose quotes of it go when it is deleted.

A message's life, as stored:
  status      sent -> delivered -> read, only forward. ``delivered`` means a device of the
              recipient has it: an ack-mode device confirmed it (markDelivered), or a post
              to a connection without ack mode succeeded.
  pendingFor  set until then, and so in every sync. An early markRead (a message the
              recipient has not received) sets ``read`` and leaves it pending.
  leaseUntil  (epoch ms) while an invocation posts the message to connections without ack
              mode, so that a live send and a sync racing for one such connection post it
              once. A lease ends with its invocation's deadline, so a message whose poster
              died becomes deliverable again on its own.

The index and attribute names here must match stacks/storage.py.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

# A message's status only ever moves forward along this order.
SENT, DELIVERED, READ = "sent", "delivered", "read"

USER_INDEX = "connections-by-user"
PENDING_INDEX = "pending-index"
REPLIES_INDEX = "replies-index"
CONVERSATION_INDEX = "conversation-index"

# Connection ids never repeat and a connection's user and mode never change, so what
# a connection is can be cached for the life of the container.
CONNECTION_CACHE_SIZE = 10_000
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


def _error_code(exc: Exception) -> str:
    return getattr(exc, "response", {}).get("Error", {}).get("Code", "")


@dataclass(frozen=True)
class Connection:
    id: str
    user_id: str
    ack: bool  # the client confirms what it receives (markDelivered)
    ttl: int
    connected_at: int


class Store:
    def __init__(self, client, connections_table: str, messages_table: str, clock=time.time):
        self.db = client
        self.connections = connections_table
        self.messages = messages_table
        self.clock = clock
        self._connections: OrderedDict[str, Connection] = OrderedDict()

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # ---- connections ---------------------------------------------------------

    def put_connection(self, connection_id: str, user_id: str, ttl_seconds: int, *, ack: bool) -> None:
        now = int(self.clock())
        item = {"connectionId": connection_id, "userId": user_id, "connectedAt": now, "ttl": now + ttl_seconds}
        self.db.put_item(TableName=self.connections, Item=to_item({**item, "ack": ack}))

    def delete_connection(self, connection_id: str) -> None:
        self._connections.pop(connection_id, None)
        self.db.delete_item(TableName=self.connections, Key={"connectionId": {"S": connection_id}})

    def delete_gone_connection(self, connection_id: str) -> bool:
        """Delete a connection whose post answered 410, unless it connected in the last
        HANDSHAKE_GRACE_SECONDS: API Gateway cannot post to a connection until its
        handshake completes, shortly after $connect returns, and a post in that window
        answers 410 too. A young row that really is dead goes with its $disconnect or ttl."""
        cutoff = int(self.clock()) - HANDSHAKE_GRACE_SECONDS
        try:
            self.db.delete_item(
                TableName=self.connections,
                Key={"connectionId": {"S": connection_id}},
                ConditionExpression="connectedAt < :cutoff",
                ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise
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
            if len(self._connections) > CONNECTION_CACHE_SIZE:
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

    def put_new_message(self, message: dict) -> dict | None:
        """Store a message unless its id exists. Returns None if stored, else the existing item."""
        try:
            self.db.put_item(
                TableName=self.messages,
                Item=to_item(message),
                ConditionExpression="attribute_not_exists(messageId)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except Exception as exc:
            if _error_code(exc) != "ConditionalCheckFailedException":
                raise
            old = getattr(exc, "response", {}).get("Item")
            return from_item(old) if old else self.get_message(message["messageId"], consistent=True)

    def get_message(self, message_id: str, *, consistent: bool = False) -> dict | None:
        item = self.db.get_item(
            TableName=self.messages, Key={"messageId": {"S": message_id}}, ConsistentRead=consistent
        ).get("Item")
        return from_item(item) if item else None

    def get_messages(self, message_ids: list[str]) -> dict[str, dict]:
        """BatchGetItem for up to 100 ids, retrying unprocessed keys."""
        keys = [{"messageId": {"S": m}} for m in message_ids]
        found: dict[str, dict] = {}
        request = {self.messages: {"Keys": keys, "ConsistentRead": True}}
        for attempt in range(5):
            reply = self.db.batch_get_item(RequestItems=request)
            for item in reply.get("Responses", {}).get(self.messages, []):
                row = from_item(item)
                found[row["messageId"]] = row
            request = reply.get("UnprocessedKeys") or {}
            if not request:
                return found
            time.sleep(0.05 * 2**attempt)
        raise RuntimeError("BatchGetItem left keys unprocessed after retries")

    def pending(self, user_id: str, after: tuple[str, str] | None = None, page_size: int = 100):
        """Every message a device of the user does not have yet, oldest first, from after
        the (sentAt, messageId) position if given: one Query per page_size, read lazily."""
        start = (
            {"pendingFor": {"S": user_id}, "sentAt": {"S": after[0]}, "messageId": {"S": after[1]}} if after else None
        )
        rows = self._query(
            start,
            TableName=self.messages,
            IndexName=PENDING_INDEX,
            KeyConditionExpression="pendingFor = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
            ScanIndexForward=True,
            Limit=page_size,
        )
        return (from_item(row) for row in rows)

    def _update(self, message_id: str, update: str, condition: str, values: dict, names=None, returns="ALL_NEW"):
        """A conditional UpdateItem; the returned attributes, or None if the condition did not hold."""
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        try:
            reply = self.db.update_item(
                TableName=self.messages,
                Key={"messageId": {"S": message_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
                ReturnValues=returns,
                **kwargs,
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return from_item(reply.get("Attributes", {}))

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
        """sent or delivered -> read. Returns the status it had, or None if it was read
        already or is deleted. A message still pending stays pending: marking it read does not give the
        recipient its content, sync does."""
        old = self._update(
            message_id,
            "SET #s = :read, readAt = :now",
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
        """Remove a reply's quote of a deleted message; the pointer stays."""
        self._update(
            reply_id,
            "REMOVE replyToContent, replyToSenderName",
            "replyToMessageId = :m",
            {":m": original_id},
            returns="NONE",
        )

    def soft_delete(self, message_id: str, sender_id: str) -> dict | None:
        """isDeleted=true and the content gone. None if the caller is not the sender."""
        return self._update(
            message_id,
            "SET isDeleted = :true, deletedAt = :now"
            " REMOVE #c, replyToContent, replyToSenderName, pendingFor, leaseUntil",
            "senderId = :me",
            {":me": sender_id, ":true": True, ":now": now_iso()},
            {"#c": "content"},
        )


def _connection(row: dict) -> Connection:
    return Connection(
        row["connectionId"], row["userId"], bool(row.get("ack", False)), row.get("ttl", 0), row.get("connectedAt", 0)
    )
