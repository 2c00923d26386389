"""Who is connecting: decided once, in $connect, and recorded with the connection.

``cognito`` (default): ``?token=<Cognito ID or access token>``; the user is its ``sub``.
``dev``: ``?userId=<id>``, trusted as given. Only for local runs and experiments.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import contract, tokens
from .config import Settings
from .protocol import USER_ID


@dataclass(frozen=True)
class Identity:
    user_id: str
    name: str | None  # the display name from the verified token (token mode only)
    named: bool  # token mode: the name comes from the token, never from a frame


class Unauthorized(Exception):
    pass


class Authenticator:
    def __init__(self, settings: Settings, jwks: tokens.JwksCache | None = None):
        self.settings = settings
        if settings.auth_mode not in ("cognito", "dev"):
            raise ValueError(f"AUTH_MODE must be cognito or dev, not {settings.auth_mode!r}")
        self.jwks = jwks or tokens.JwksCache(settings.jwks_url)

    def identify(self, query: dict | None) -> Identity:
        query = query or {}
        if self.settings.auth_mode == "dev":
            user = query.get("userId")
            if not isinstance(user, str) or not USER_ID.fullmatch(user):
                raise Unauthorized(f"dev mode needs ?userId=<{contract.USER_ID_RULE}>")
            return Identity(user, None, named=False)
        try:
            claims = tokens.verify(
                query.get("token"),
                issuer=self.settings.token_issuer,
                client_ids=self.settings.token_client_ids,
                jwks=self.jwks,
            )
        except tokens.InvalidToken as exc:
            raise Unauthorized(str(exc)) from None
        if not isinstance(claims.get("sub"), str) or not USER_ID.fullmatch(claims["sub"]):
            raise Unauthorized("the token's sub is not a usable user id")
        # an ID token has name (if the pool has it) and cognito:username; an access token username
        names = (claims[k] for k in ("name", "cognito:username", "username") if isinstance(claims.get(k), str))
        name = next(names, None)
        return Identity(claims["sub"], name[: contract.NAME_MAX_CHARS] if name else None, named=True)
