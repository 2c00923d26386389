"""A local token issuer for `make local AUTH=token`: signs RS256 tokens shaped like
Cognito's and serves their JWKS, so the connect function's real verification runs.
Its key lives in the local state folder, so tokens stay valid across restarts."""

from __future__ import annotations

import base64
import json
import time
import uuid
from pathlib import Path

from aiohttp import web

CLIENT_ID = "local-app-client"
POOL_PATH = "local-issuer"
KID = "local-key-1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issuer_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/{POOL_PATH}"


class LocalIssuer:
    def __init__(self, state_dir: Path, port: int):
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.url = issuer_url(port)
        key_file = state_dir / "issuer-key.pem"
        if key_file.exists():
            self.key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
        else:
            state_dir.mkdir(parents=True, exist_ok=True)
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = self.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            key_file.write_bytes(pem)
            key_file.chmod(0o600)

    def routes(self) -> list[web.RouteDef]:
        """Where the connect function fetches the keys (the issuer URL's JWKS path), and
        where the web client gets a token (/@local/token?userId=, not part of AWS)."""
        return [
            web.get(f"/{POOL_PATH}/.well-known/jwks.json", self._serve_jwks),
            web.get("/@local/token", self._serve_token),
        ]

    async def _serve_token(self, request: web.Request) -> web.Response:
        """A token as `make token USER=<id>` prints, so the web client can sign in locally."""
        user = request.query.get("userId", "")
        if not 1 <= len(user) <= 128:  # the connect function checks the rest, as for any token
            return web.Response(status=400, text="give ?userId=<1 to 128 characters>\n")
        return web.json_response({"token": self.token(user)})

    async def _serve_jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks())

    def jwks(self) -> dict:
        numbers = self.key.public_key().public_numbers()

        def uint(value: int) -> str:
            return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))

        return {
            "keys": [
                {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": KID, "n": uint(numbers.n), "e": uint(numbers.e)}
            ]
        }

    def why_refused(self, query: dict) -> str:
        """Why $connect refused a connection with this query, as far as this issuer can tell,
        in words that say what to do; never the token itself. The client is told only 401,
        as on AWS: this is for the local stack's output."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        token = query.get("token")
        if not token:
            return "no ?token= (this stack checks tokens: make -s token USER=<id>)"
        try:
            header, payload, signature = token.split(".")
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            signed = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        except ValueError:
            return "the token is not a JWT"
        try:
            self.key.public_key().verify(signed, f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "bad signature: the token was not signed by this stack's issuer (minted with another LOCAL_DIR?)"
        issuer = claims.get("iss") if isinstance(claims, dict) else None
        if issuer != self.url:
            port = self.url.split(":")[2].split("/")[0]
            return (
                f"wrong issuer: the token was minted for {issuer}, not this stack ({self.url}): make token PORT={port}"
            )
        if not isinstance(claims.get("exp"), int) or claims["exp"] < time.time():
            return "expired: make -s token USER=<id> mints a new one, valid for an hour"
        return "the connect function refused it (its log line says why)"

    def token(self, user_id: str, *, use: str = "id", lifetime_s: int = 3600) -> str:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        now = int(time.time())
        claims = {
            "sub": user_id,
            "iss": self.url,
            "token_use": use,
            "iat": now,
            "exp": now + lifetime_s,
            "auth_time": now,
            "jti": str(uuid.uuid4()),
            "cognito:username": user_id,
        }
        claims["aud" if use == "id" else "client_id"] = CLIENT_ID
        header = {"alg": "RS256", "kid": KID, "typ": "JWT"}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"
