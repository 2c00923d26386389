"""Settings read once per container from the function's environment (set by the stack)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    connections_table: str
    messages_table: str
    connection_ttl_seconds: int = 24 * 3600
    max_content_bytes: int = 16 * 1024
    auth_mode: str = "cognito"
    token_issuer: str = ""
    token_client_ids: tuple[str, ...] = ()
    jwks_url: str = ""

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = os.environ if env is None else env
        issuer = env.get("TOKEN_ISSUER", "")
        return cls(
            connections_table=env.get("CONNECTIONS_TABLE", ""),
            messages_table=env.get("MESSAGES_TABLE", ""),
            connection_ttl_seconds=int(env.get("CONNECTION_TTL_SECONDS", 24 * 3600)),
            max_content_bytes=int(env.get("MAX_CONTENT_BYTES", 16 * 1024)),
            auth_mode=env.get("AUTH_MODE", "cognito"),
            token_issuer=issuer,
            token_client_ids=tuple(c for c in env.get("TOKEN_CLIENT_IDS", "").split(",") if c),
            jwks_url=env.get("JWKS_URL") or (issuer + "/.well-known/jwks.json" if issuer else ""),
        )
