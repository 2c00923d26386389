"""DynamoDB access for the Connections and Messages tables. No Scan anywhere.

Connections: ``connectionId`` key; ``userId-index`` (userId -> connectionId, ttl).
Messages: ``messageId`` key;
  ``pending-index``       pendingFor + sentAt. Sparse: ``pendingFor`` (the recipient)
                          exists only while a message is undelivered, so "what is
                          waiting for user X, oldest first" costs what it returns.
  ``conversation-index``  conversationId + sentAt: a conversation's history by time.

The index and attribute names here must match stacks/storage.py.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import UTC, datetime

# A message's status only ever moves forward along this order.
SENT, DELIVERED, READ = "sent", "delivered", "read"

USER_INDEX = "userId-index"
PENDING_INDEX = "pending-index"
CONVERSATION_INDEX = "conversation-index"

# Connection ids never repeat and a connection's user never changes, so the
# connection -> user mapping can be cached for the life of the container.
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


class Store:
    def __init__(self, client, connections_table: str, messages_table: str, clock=time.time):
        self.db = client
        self.connections = connections_table
        self.messages = messages_table
        self.clock = clock
        self._users: OrderedDict[str, tuple[str, int]] = OrderedDict()

    # ---- connections ---------------------------------------------------------

    def put_connection(self, connection_id: str, user_id: str, ttl_seconds: int) -> None:
        now = int(self.clock())
        item = {"connectionId": connection_id, "userId": user_id, "connectedAt": now, "ttl": now + ttl_seconds}
        self.db.put_item(TableName=self.connections, Item=to_item(item))

    def delete_connection(self, connection_id: str) -> None:
        self._users.pop(connection_id, None)
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
        self._users.pop(connection_id, None)
        return True

    def connection_user(self, connection_id: str) -> str | None:
        """The user a live connection belongs to; None if unknown or past its ttl.

        DynamoDB's TTL delete can lag by up to two days, so expiry is checked here.
        """
        cached = self._users.get(connection_id)
        if cached is None:
            item = self.db.get_item(TableName=self.connections, Key={"connectionId": {"S": connection_id}}).get("Item")
            if item is None:
                return None
            row = from_item(item)
            cached = (row["userId"], row.get("ttl", 0))
            self._users[connection_id] = cached
            if len(self._users) > CONNECTION_CACHE_SIZE:
                self._users.popitem(last=False)
        user_id, ttl = cached
        return user_id if ttl > self.clock() else None

    def live_connections(self, user_id: str) -> list[str]:
        """Every unexpired connection of a user (one Query per 1 MB page)."""
        now = self.clock()
        found, start = [], None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            page = self.db.query(
                TableName=self.connections,
                IndexName=USER_INDEX,
                KeyConditionExpression="userId = :u",
                ExpressionAttributeValues={":u": {"S": user_id}},
                **kwargs,
            )
            for item in page.get("Items", []):
                row = from_item(item)
                if row.get("ttl", 0) > now:
                    found.append(row["connectionId"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return found

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

    def pending_pages(self, user_id: str, page_size: int = 100):
        """Pages of undelivered messages for a user, oldest first."""
        start = None
        while True:
            kwargs = {"ExclusiveStartKey": start} if start else {}
            page = self.db.query(
                TableName=self.messages,
                IndexName=PENDING_INDEX,
                KeyConditionExpression="pendingFor = :u",
                ExpressionAttributeValues={":u": {"S": user_id}},
                ScanIndexForward=True,
                Limit=page_size,
                **kwargs,
            )
            yield [from_item(i) for i in page.get("Items", [])]
            start = page.get("LastEvaluatedKey")
            if not start:
                return

    def _update(self, message_id: str, update: str, condition: str, values: dict, names=None) -> dict | None:
        """A conditional UpdateItem; the new item, or None if the condition did not hold."""
        kwargs = {"ExpressionAttributeNames": names} if names else {}
        try:
            reply = self.db.update_item(
                TableName=self.messages,
                Key={"messageId": {"S": message_id}},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeValues=to_item(values),
                ReturnValues="ALL_NEW",
                **kwargs,
            )
        except Exception as exc:
            if _error_code(exc) == "ConditionalCheckFailedException":
                return None
            raise
        return from_item(reply["Attributes"])

    def claim_delivery(self, message_id: str) -> bool:
        """sent -> delivered, done before posting so only one path (send or sync) posts it."""
        return (
            self._update(
                message_id,
                "SET #s = :delivered, deliveredAt = :now REMOVE pendingFor",
                "#s = :sent",
                {":sent": SENT, ":delivered": DELIVERED, ":now": now_iso()},
                {"#s": "status"},
            )
            is not None
        )

    def release_delivery(self, message_id: str, recipient_id: str) -> bool:
        """Undo a claim whose posts all failed: the message waits for sync again."""
        return (
            self._update(
                message_id,
                "SET #s = :sent, pendingFor = :r REMOVE deliveredAt",
                "#s = :delivered AND attribute_not_exists(deletedAt)",
                {":sent": SENT, ":delivered": DELIVERED, ":r": recipient_id},
                {"#s": "status"},
            )
            is not None
        )

    def mark_read(self, message_id: str, reader_id: str) -> bool:
        return (
            self._update(
                message_id,
                "SET #s = :read, readAt = :now REMOVE pendingFor",
                "recipientId = :me AND #s IN (:sent, :delivered)",
                {
                    ":me": reader_id,
                    ":read": READ,
                    ":sent": SENT,
                    ":delivered": DELIVERED,
                    ":now": now_iso(),
                },
                {"#s": "status"},
            )
            is not None
        )

    def soft_delete(self, message_id: str, sender_id: str) -> dict | None:
        """isDeleted=true and the content gone. None if the caller is not the sender."""
        return self._update(
            message_id,
            "SET isDeleted = :true, deletedAt = :now REMOVE #c, replyToContent, pendingFor",
            "senderId = :me",
            {":me": sender_id, ":true": True, ":now": now_iso()},
            {"#c": "content"},
        )
