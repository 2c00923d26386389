"""Verify Cognito JWTs (RS256) with the standard library only.

Why not PyJWT or python-jose: they need `cryptography`, a native wheel that would
have to be built for arm64 and bundled (Docker), and it adds tens of milliseconds
to every cold start. RS256 verification is small: RSASSA-PKCS1-v1_5 per RFC 8017
§8.2.2, done as encode-then-compare: recompute the expected encoded message from
the hash and compare it, in constant time, with the one recovered from the
signature. Nothing is parsed out of the recovered block, which avoids the classic
padding-parsing forgeries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.request

LEEWAY_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 2.0
# a fetch at its slowest: urlopen's timeout bounds the connect, then the reply's read
JWKS_WORST_MS = int(2 * JWKS_TIMEOUT_SECONDS * 1000)
JWKS_REFETCH_INTERVAL_SECONDS = 60.0
JWKS_FAILURE_RETRY_SECONDS = 5.0
MAX_TOKEN_CHARS = 8192
MIN_RSA_BITS = 2048
# DER prefix of DigestInfo for SHA-256 (RFC 8017 §9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")  # the whole segment: fullmatch


class InvalidToken(Exception):
    """Any reason a token is not accepted. The message is for logs, never for clients."""


def _b64url_decode(part: str) -> bytes:
    if not _B64URL.fullmatch(part):
        raise InvalidToken("token segment is not base64url")
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _json_object(raw: bytes, what: str) -> dict:
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidToken(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidToken(f"{what} is not a JSON object")
    return value


def rsa_pkcs1_sha256_verify(n: int, e: int, message: bytes, signature: bytes) -> bool:
    k = (n.bit_length() + 7) // 8
    if len(signature) != k:
        return False
    s = int.from_bytes(signature, "big")
    if s >= n:
        return False
    recovered = pow(s, e, n).to_bytes(k, "big")
    digest_info = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    padding = k - len(digest_info) - 3
    if padding < 8:
        return False
    expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + digest_info
    return hmac.compare_digest(recovered, expected)


class JwksCache:
    """The pool's public keys, fetched once per container and refetched on an unknown
    ``kid`` (key rotation) at most once per JWKS_REFETCH_INTERVAL_SECONDS."""

    def __init__(self, url: str, fetch=None, clock=time.monotonic):
        self.url = url
        self.fetch = fetch or self._fetch
        self.clock = clock
        self.keys: dict[str, tuple[int, int]] = {}
        self.fetched_at: float | None = None
        self._lock = threading.Lock()

    def _fetch(self, url: str) -> dict:
        with urllib.request.urlopen(url, timeout=JWKS_TIMEOUT_SECONDS) as reply:  # noqa: S310 (https URL from config)
            return json.loads(reply.read(1_000_000))

    def key(self, kid: str) -> tuple[int, int]:
        with self._lock:
            if kid not in self.keys:
                due = self.fetched_at is None or self.clock() - self.fetched_at >= JWKS_REFETCH_INTERVAL_SECONDS
                if due:
                    self._refresh()
            if kid not in self.keys:
                raise InvalidToken("unknown kid")
            return self.keys[kid]

    def _refresh(self) -> None:
        self.fetched_at = self.clock()
        try:
            document = self.fetch(self.url)
        except Exception as exc:  # network, HTTP or JSON: the token cannot be checked
            self.fetched_at -= JWKS_REFETCH_INTERVAL_SECONDS - JWKS_FAILURE_RETRY_SECONDS
            raise InvalidToken(f"JWKS fetch failed: {type(exc).__name__}") from None
        keys = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or jwk.get("alg", "RS256") != "RS256":
                continue
            if jwk.get("use", "sig") != "sig" or not isinstance(jwk.get("kid"), str):
                continue
            try:
                n = int.from_bytes(_b64url_decode(jwk["n"]), "big")
                e = int.from_bytes(_b64url_decode(jwk["e"]), "big")
            except (KeyError, TypeError, InvalidToken):
                continue
            if n.bit_length() >= MIN_RSA_BITS and e >= 3:
                keys[jwk["kid"]] = (n, e)
        self.keys = keys


def verify(token, *, issuer: str, client_ids: tuple[str, ...], jwks: JwksCache, now: float | None = None) -> dict:
    """The verified claims of a Cognito ID or access token, or InvalidToken."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
        raise InvalidToken("missing or oversized token")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWS compact token")
    header = _json_object(_b64url_decode(parts[0]), "header")
    if header.get("alg") != "RS256":
        raise InvalidToken("alg must be RS256")
    kid = header.get("kid")
    if not isinstance(kid, str):
        raise InvalidToken("no kid")
    n, e = jwks.key(kid)
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    if not rsa_pkcs1_sha256_verify(n, e, signing_input, _b64url_decode(parts[2])):
        raise InvalidToken("bad signature")

    claims = _json_object(_b64url_decode(parts[1]), "payload")
    now = time.time() if now is None else now
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, (int, float)) or isinstance(exp, bool) or now > exp + LEEWAY_SECONDS:
        raise InvalidToken("expired or no exp")
    if nbf is not None and (not isinstance(nbf, (int, float)) or now + LEEWAY_SECONDS < nbf):
        raise InvalidToken("not yet valid")
    if claims.get("iss") != issuer:
        raise InvalidToken("wrong issuer")
    use = claims.get("token_use")
    if use == "id":
        audience = claims.get("aud")
    elif use == "access":
        audience = claims.get("client_id")
    else:
        raise InvalidToken("token_use must be id or access")
    if not isinstance(audience, str) or audience not in client_ids:
        raise InvalidToken("token is for another app client")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise InvalidToken("no sub")
    return claims
