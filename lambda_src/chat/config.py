"""Settings read once per container from the function's environment. The stack sets
every variable (stacks/messaging_stack.py), and their defaults live in
stacks/config.py, so nothing here has a default of its own: a missing variable is a
deployment error and says so."""

from __future__ import annotations

import os
from dataclasses import dataclass


class MissingSetting(KeyError):
    def __str__(self) -> str:
        return f"environment variable {self.args[0]} is not set; the stack sets it (stacks/messaging_stack.py)"


@dataclass(frozen=True)
class Settings:
    connections_table: str
    messages_table: str
    conversations_table: str
    contents_table: str
    history_index: str  # history-index (conversation-index during an upgrade: README)
    connection_ttl_seconds: int
    max_content_bytes: int
    # Only the message function posts, so only it is given the stage's @connections URL
    # (https://{api}.execute-api.{region}.amazonaws.com/{stage}).
    callback_url: str = ""
    # ... and the EventBridge bus it hands messages that reached no device to (a push),
    # with or without their content (context pushPreview).
    event_bus_name: str = ""
    push_preview: bool = False
    # Only the connect function authenticates, so only it is given these.
    auth_mode: str | None = None
    token_issuer: str = ""
    token_client_ids: tuple[str, ...] = ()
    jwks_url: str = ""

    @property
    def tables(self) -> dict[str, str]:
        """The table names (and the index history reads), as chat.tables.Tables.open takes them."""
        return {
            "connections": self.connections_table,
            "messages": self.messages_table,
            "conversations": self.conversations_table,
            "contents": self.contents_table,
            "history_index": self.history_index,
        }

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = os.environ if env is None else env

        def required(name: str) -> str:
            if not env.get(name):
                raise MissingSetting(name)
            return env[name]

        issuer = env.get("TOKEN_ISSUER", "")
        return cls(
            connections_table=required("CONNECTIONS_TABLE"),
            messages_table=required("MESSAGES_TABLE"),
            conversations_table=required("CONVERSATIONS_TABLE"),
            contents_table=required("CONTENTS_TABLE"),
            history_index=required("HISTORY_INDEX"),
            connection_ttl_seconds=int(required("CONNECTION_TTL_SECONDS")),
            max_content_bytes=int(required("MAX_CONTENT_BYTES")),
            callback_url=env.get("CALLBACK_URL", ""),
            event_bus_name=env.get("EVENT_BUS_NAME", ""),
            push_preview=env.get("PUSH_PREVIEW", "false") == "true",
            auth_mode=env.get("AUTH_MODE"),
            token_issuer=issuer,
            token_client_ids=tuple(c for c in env.get("TOKEN_CLIENT_IDS", "").split(",") if c),
            jwks_url=env.get("JWKS_URL") or (issuer + "/.well-known/jwks.json" if issuer else ""),
        )
