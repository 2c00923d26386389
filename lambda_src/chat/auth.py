"""Who is connecting: decided once, in $connect, and recorded with the connection.

``cognito`` (default): ``?token=<Cognito ID or access token>``; the user is its ``sub``.
``dev``: ``?userId=<id>``, trusted as given. Only for local runs and experiments.
"""

from __future__ import annotations

import re

from . import tokens
from .config import Settings

USER_ID = re.compile(r"[A-Za-z0-9_.@:+=-]{1,128}")  # the whole string: fullmatch


class Unauthorized(Exception):
    pass


class Authenticator:
    def __init__(self, settings: Settings, jwks: tokens.JwksCache | None = None):
        self.settings = settings
        if settings.auth_mode not in ("cognito", "dev"):
            raise ValueError(f"AUTH_MODE must be cognito or dev, not {settings.auth_mode!r}")
        self.jwks = jwks or tokens.JwksCache(settings.jwks_url)

    def user_id(self, query: dict | None) -> str:
        query = query or {}
        if self.settings.auth_mode == "dev":
            user = query.get("userId")
            if not isinstance(user, str) or not USER_ID.fullmatch(user):
                raise Unauthorized("dev mode needs ?userId=<1-128 of A-Z a-z 0-9 _ . @ : + = ->")
            return user
        try:
            claims = tokens.verify(
                query.get("token"),
                issuer=self.settings.token_issuer,
                client_ids=self.settings.token_client_ids,
                jwks=self.jwks,
            )
        except tokens.InvalidToken as exc:
            raise Unauthorized(str(exc)) from None
        return claims["sub"]
