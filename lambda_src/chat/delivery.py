"""Connections as API Gateway has them, for one invocation of the message function: whose
they are, posting frames to them through the @connections API, and forgetting those
that are gone.

A post either reaches the connection, finds it gone (410: the client left without a
close, or is gone already), or fails otherwise. Posting changes nothing else: the
connections that answered 410 are collected, and their rows are removed once the action
is done (``forget_gone``), except those young enough to be in their handshake.
"""

from __future__ import annotations

from . import contract, protocol
from .aws import error_code
from .connections import Connection, ConnectionsTable
from .log import count, log

# On AWS a connection cannot be posted to until its handshake completes, shortly after
# $connect returns, and a post in that window answers 410 too: a connection this young
# that answers 410 keeps its row (a dead one goes with its $disconnect or its ttl).
HANDSHAKE_GRACE_SECONDS = 10


def _is_gone(exc: Exception) -> bool:
    status = (getattr(exc, "response", None) or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) == "GoneException" or status == 410


class Delivery:
    def __init__(self, management_api, connections: ConnectionsTable, caller: str):
        self.api = management_api  # a boto3 apigatewaymanagementapi client for this stage
        self.connections = connections
        self.caller = caller  # the connection the client frame came from
        self.gone: set[str] = set()
        self._of_user: dict[str, list[Connection]] = {}

    # ---- whose connections ----------------------------------------------------------

    def connections_of(self, user_id: str, *, fresh: bool = False) -> list[Connection]:
        """Live connections of a user, looked up once per invocation unless fresh."""
        if fresh or user_id not in self._of_user:
            self._of_user[user_id] = self.connections.of_user(user_id)
        return self._of_user[user_id]

    def others_of(self, user_id: str, *, fresh: bool = False) -> list[Connection]:
        """Live connections of a user but the one the client frame came from."""
        return [c for c in self.connections_of(user_id, fresh=fresh) if c.id != self.caller]

    def online(self, user_id: str) -> bool:
        """Whether the user has a connection API Gateway could still hold: none older than
        its 2 hours (a row can outlive its connection when a $disconnect is missed)."""
        oldest = self.connections.clock() - contract.MAX_CONNECTION_SECONDS
        return any(c.connected_at > oldest for c in self.connections.of_user(user_id))

    def in_handshake(self, connection: Connection) -> bool:
        """Whether a 410 from this connection may mean its handshake is not done yet."""
        return connection.connected_at >= int(self.connections.clock()) - HANDSHAKE_GRACE_SECONDS

    # ---- posting ------------------------------------------------------------------------

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

    def forget_gone(self) -> None:
        """Remove the rows of the connections that answered 410 (they also expire by ttl),
        but those that may still be in their handshake."""
        cutoff = int(self.connections.clock()) - HANDSHAKE_GRACE_SECONDS
        for connection_id in self.gone:
            try:
                if self.connections.delete_if_connected_before(connection_id, cutoff):
                    count("GoneCleanups")
            except Exception as exc:
                log("warning", "gone_cleanup_failed", to=connection_id, error=type(exc).__name__)
        self.gone.clear()
