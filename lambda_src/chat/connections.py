"""The Connections table: who is connected, and when each user was last seen.

Access patterns (docs/design.md has the why):
- a connection by its id (every frame: who sent it), cached per container, as a
  connection's user and mode never change;
- a user's connections (every post to them), on connections-by-user;
- each user's lastSeen, on a row of its own, "#lastSeen:<userId>" (no userId attribute,
  so in no index).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

from . import contract
from .dynamo import batch_get, from_item, if_condition_holds, key, query, to_item
from .timing import now_iso

LAST_SEEN = "#lastSeen:"  # + userId: the row that says when they were last seen
CACHE_SIZE = 10_000  # connections remembered per container


@dataclass(frozen=True)
class Connection:
    id: str
    user_id: str
    ack: bool  # the client confirms what it receives (markDelivered)
    ttl: int
    connected_at: int
    name: str | None = None  # the display name from the verified token, if named
    named: bool = False  # token mode: senderName is name, never what a frame says

    @classmethod
    def from_row(cls, row: dict) -> Connection:
        return cls(
            row["connectionId"],
            row["userId"],
            bool(row.get("ack", False)),
            row.get("ttl", 0),
            row.get("connectedAt", 0),
            row.get("name"),
            bool(row.get("named", False)),
        )


class ConnectionsTable:
    def __init__(self, db, name: str, clock=time.time):
        self.db, self.name, self.clock = db, name, clock
        self._cache: OrderedDict[str, Connection] = OrderedDict()

    def put(self, connection_id: str, user_id: str, ttl_seconds: int, *, ack: bool, name: str | None, named: bool):
        """named: the display name comes from the verified token (name may then be None)."""
        now = int(self.clock())
        row = {"connectionId": connection_id, "userId": user_id, "connectedAt": now, "ttl": now + ttl_seconds}
        self.db.put_item(TableName=self.name, Item=to_item({**row, "ack": ack, "named": named, "name": name}))

    def delete(self, connection_id: str) -> None:
        """Forget a closed connection, and remember when its user was last seen."""
        self._cache.pop(connection_id, None)
        old = self.db.delete_item(TableName=self.name, Key=key(connectionId=connection_id), ReturnValues="ALL_OLD").get(
            "Attributes"
        )
        if old and "userId" in old:
            row = {"connectionId": LAST_SEEN + old["userId"]["S"], "lastSeen": now_iso()}
            self.db.put_item(TableName=self.name, Item=to_item(row))

    def delete_if_connected_before(self, connection_id: str, cutoff: int) -> bool:
        """Delete the row if its connection opened before cutoff (epoch seconds)."""
        deleted = if_condition_holds(
            self.db.delete_item,
            TableName=self.name,
            Key=key(connectionId=connection_id),
            ConditionExpression="connectedAt < :cutoff",
            ExpressionAttributeValues={":cutoff": {"N": str(cutoff)}},
        )
        if deleted is None:
            return False
        self._cache.pop(connection_id, None)
        return True

    def get(self, connection_id: str) -> Connection | None:
        """A live connection: its user and mode; None if unknown or past its ttl (TTL's
        deletes can lag by two days, so expiry is checked here)."""
        found = self._cache.get(connection_id)
        if found is None:
            item = self.db.get_item(TableName=self.name, Key=key(connectionId=connection_id)).get("Item")
            if item is None:
                return None
            found = self._cache[connection_id] = Connection.from_row(from_item(item))
            if len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)
        return found if found.ttl > self.clock() else None

    def of_user(self, user_id: str) -> list[Connection]:
        """Every unexpired connection of a user."""
        rows = query(
            self.db,
            TableName=self.name,
            IndexName=contract.CONNECTIONS_BY_USER,
            KeyConditionExpression="userId = :u",
            ExpressionAttributeValues={":u": {"S": user_id}},
        )
        now = self.clock()
        return [c for c in (Connection.from_row(from_item(row)) for row in rows) if c.ttl > now]

    def last_seen(self, user_ids: list[str]) -> dict[str, str]:
        """userId -> when their last connection closed, for those who have one."""
        keys = [key(connectionId=LAST_SEEN + u) for u in user_ids]
        rows = batch_get(self.db, {self.name: keys})[self.name]
        return {row["connectionId"][len(LAST_SEEN) :]: row["lastSeen"] for row in rows}
