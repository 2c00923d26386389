"""Frames to connections, through the stage's @connections API.

A post either reaches the connection, finds it gone (410: the client left without a
close, or is gone already), or fails otherwise. Posting changes nothing else: the
connections that answered 410 are collected, and the handler removes their rows once
the action is done (``forget_gone``).
"""

from __future__ import annotations

from . import protocol
from .aws import error_code
from .log import count, log
from .store import Connection, Store


def _is_gone(exc: Exception) -> bool:
    status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) == "GoneException" or status == 410


class Delivery:
    """Posting for one invocation of the message function."""

    def __init__(self, management_api, store: Store, caller: str):
        self.api = management_api  # a boto3 apigatewaymanagementapi client for this stage
        self.store = store
        self.caller = caller  # the connection the client frame came from
        self.gone: set[str] = set()
        self._connections: dict[str, list[Connection]] = {}

    def post(self, connection_id: str, frame: dict) -> bool:
        """True if the frame reached the connection."""
        try:
            self.api.post_to_connection(ConnectionId=connection_id, Data=protocol.encode(frame))
            return True
        except Exception as exc:
            if _is_gone(exc):
                log("info", "connection_gone", to=connection_id)
                self.gone.add(connection_id)
            else:
                log("warning", "post_failed", to=connection_id, error=type(exc).__name__)
                count("FailedPosts")
            return False

    def reply(self, frame: dict) -> bool:
        """To the connection the client frame came from."""
        return self.post(self.caller, frame)

    def post_each(self, connection_ids, frame: dict) -> int:
        """The number of connections the frame reached."""
        return sum(self.post(c, frame) for c in connection_ids)

    def connections_of(self, user_id: str, *, fresh: bool = False) -> list[Connection]:
        """Live connections of a user, looked up once per invocation unless fresh."""
        if fresh or user_id not in self._connections:
            self._connections[user_id] = self.store.live_connections(user_id)
        return self._connections[user_id]

    def others_of(self, user_id: str, *, fresh: bool = False) -> list[Connection]:
        """Live connections of a user but the one the client frame came from."""
        return [c for c in self.connections_of(user_id, fresh=fresh) if c.id != self.caller]

    def forget_gone(self) -> None:
        """Remove the rows of the connections that answered 410 (they also expire by ttl),
        except those still in their handshake (store.delete_gone_connection)."""
        for connection_id in self.gone:
            try:
                if self.store.delete_gone_connection(connection_id):
                    count("GoneCleanups")
            except Exception as exc:
                log("warning", "gone_cleanup_failed", to=connection_id, error=type(exc).__name__)
        self.gone.clear()
