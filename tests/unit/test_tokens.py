"""Cognito token verification (standard library RS256) and the cognito $connect path.
Tokens are minted with PyJWT and cryptography, which only the tests use."""

from __future__ import annotations

import base64
import json
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chat import tokens
from harness import Chat, send_frame

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool"
CLIENT = "client-abc"


def b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class Issuer:
    """A pool's signing key and JWKS document."""

    def __init__(self, kid="key-1"):
        self.kid = kid
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        numbers = self.key.public_key().public_numbers()
        self.jwk = {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": kid,
            "n": b64url_uint(numbers.n),
            "e": b64url_uint(numbers.e),
        }

    def token(self, use="id", headers=None, **overrides) -> str:
        now = int(time.time())
        claims = {"sub": "user-123", "iss": ISSUER, "token_use": use, "iat": now, "exp": now + 3600}
        claims["aud" if use == "id" else "client_id"] = CLIENT
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return pyjwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid, **(headers or {})})


@pytest.fixture(scope="module")
def issuer():
    return Issuer()


@pytest.fixture
def jwks(issuer):
    fetched = []

    def fetch(url):
        fetched.append(url)
        return {"keys": [issuer.jwk]}

    cache = tokens.JwksCache("https://example.invalid/jwks.json", fetch=fetch)
    cache.fetched = fetched
    return cache


def verify(token, jwks):
    return tokens.verify(token, issuer=ISSUER, client_ids=(CLIENT,), jwks=jwks)


def forge(token: str, **claims) -> str:
    """Change the payload but keep the original signature."""
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body.update(claims)
    encoded = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{header}.{encoded}.{signature}"


def test_a_valid_id_token_is_accepted(issuer, jwks):
    assert verify(issuer.token("id"), jwks)["sub"] == "user-123"


def test_a_valid_access_token_is_accepted(issuer, jwks):
    assert verify(issuer.token("access"), jwks)["sub"] == "user-123"


def test_leeway_admits_a_token_that_expired_seconds_ago(issuer, jwks):
    assert verify(issuer.token(exp=int(time.time()) - 10), jwks)


def _hs256_with_public_key(issuer):
    public_pem = issuer.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": issuer.kid}).encode()).rstrip(b"=")
    payload = issuer.token().split(".")[1].encode()
    import hashlib
    import hmac

    signature = hmac.new(public_pem, header + b"." + payload, hashlib.sha256).digest()
    return b".".join([header, payload, base64.urlsafe_b64encode(signature).rstrip(b"=")]).decode()


def _alg_none(issuer):
    header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": issuer.kid}).encode()).rstrip(b"=").decode()
    return f"{header}.{issuer.token().split('.')[1]}."


def _rs512_with_the_pools_key(issuer):
    claims = json.loads(base64.urlsafe_b64decode(issuer.token().split(".")[1] + "=="))
    return pyjwt.encode(claims, issuer.key, algorithm="RS512", headers={"kid": issuer.kid})


def _attacker_key_named_in_header(issuer, where):
    attacker = Issuer(kid=issuer.kid)
    headers = {"jku": "https://attacker.example/jwks.json"} if where == "jku" else {"jwk": attacker.jwk}
    return attacker.token(headers=headers)


def _signature_of_another_token(issuer):
    header, payload, _ = issuer.token(sub="admin").split(".")
    return ".".join([header, payload, issuer.token().split(".")[2]])


REJECTED = {
    "RS512 with the pool's key": _rs512_with_the_pools_key,
    "attacker's key via jku header": lambda i: _attacker_key_named_in_header(i, "jku"),
    "attacker's key embedded as jwk header": lambda i: _attacker_key_named_in_header(i, "jwk"),
    "signature of another token": _signature_of_another_token,
    "exp as a string": lambda i: i.token(exp=str(int(time.time()) + 3600)),
    "aud as a list": lambda i: i.token("id", aud=[CLIENT]),
    "issuer with a trailing slash": lambda i: i.token(iss=ISSUER + "/"),
    "no sub": lambda i: i.token(sub=None),
    "empty sub": lambda i: i.token(sub=""),
    "expired": lambda i: i.token(exp=int(time.time()) - 120),
    "not yet valid": lambda i: i.token(nbf=int(time.time()) + 120),
    "no exp": lambda i: i.token(exp=None),
    "wrong issuer": lambda i: i.token(iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"),
    "wrong client (id token)": lambda i: i.token("id", aud="someone-else"),
    "wrong client (access token)": lambda i: i.token("access", client_id="someone-else"),
    "wrong token_use": lambda i: i.token("refresh"),
    "no token_use": lambda i: i.token(token_use=None),
    "tampered payload": lambda i: forge(i.token(), sub="admin"),
    "unknown kid": lambda i: i.token(headers={"kid": "key-unknown"}),
    "alg none": _alg_none,
    "HS256 signed with the public key": _hs256_with_public_key,
    "signed by another key": lambda i: Issuer().token(),
    "malformed": lambda i: "not.a.jwt",
    "two segments": lambda i: "abc.def",
    "garbage base64": lambda i: "!!!.???.***",
    "missing": lambda i: None,
    "empty": lambda i: "",
    "oversized": lambda i: "a" * 10_000,
}


@pytest.mark.parametrize("make", REJECTED.values(), ids=REJECTED.keys())
def test_bad_tokens_are_rejected(issuer, jwks, make):
    with pytest.raises(tokens.InvalidToken):
        verify(make(issuer), jwks)


def test_jwks_is_fetched_once_and_cached(issuer, jwks):
    for _ in range(3):
        verify(issuer.token(), jwks)
    assert len(jwks.fetched) == 1


def test_an_unknown_kid_refetches_but_at_most_once_a_minute(issuer):
    now = [0.0]
    fetched = []
    rotated = Issuer(kid="key-2")
    documents = [{"keys": [issuer.jwk]}, {"keys": [issuer.jwk, rotated.jwk]}]
    cache = tokens.JwksCache(
        "u", fetch=lambda url: fetched.append(url) or documents[min(len(fetched) - 1, 1)], clock=lambda: now[0]
    )
    verify(issuer.token(), cache)
    now[0] = 10
    with pytest.raises(tokens.InvalidToken):  # too soon to refetch
        verify(rotated.token(), cache)
    assert len(fetched) == 1
    now[0] = 61
    assert verify(rotated.token(), cache)["sub"] == "user-123"  # key rotation picked up
    with pytest.raises(tokens.InvalidToken):
        verify(issuer.token(headers={"kid": "nope"}), cache)
    assert len(fetched) == 2


def test_a_jwks_outage_rejects_tokens_without_raising_anything_else(issuer):
    def down(url):
        raise OSError("timed out")

    cache = tokens.JwksCache("u", fetch=down)
    with pytest.raises(tokens.InvalidToken):
        verify(issuer.token(), cache)


def test_connect_in_cognito_mode_records_the_token_subject(dynamodb, cognito_template, issuer, jwks):
    chat = Chat(
        dynamodb, cognito_template, env_overrides={"TOKEN_ISSUER": ISSUER, "TOKEN_CLIENT_IDS": CLIENT}, jwks=jwks
    )
    conn, response = chat.connect({"token": issuer.token("access")})
    assert response == {"statusCode": 200}
    assert chat.tables.connections.get(conn).user_id == "user-123"


def test_connect_in_cognito_mode_refuses_bad_tokens_and_userId_with_401_and_writes_nothing(
    dynamodb, cognito_template, issuer, jwks
):
    chat = Chat(
        dynamodb, cognito_template, env_overrides={"TOKEN_ISSUER": ISSUER, "TOKEN_CLIENT_IDS": CLIENT}, jwks=jwks
    )
    for query in ({"token": issuer.token(exp=1)}, {"userId": "alice"}, None, {"token": forge(issuer.token(), sub="x")}):
        _, response = chat.connect(query)
        assert response["statusCode"] == 401
    assert chat.items("connections") == []


def test_the_cognito_template_points_the_connect_function_at_the_pool(cognito_template):
    from local.template import functions

    env = next(f["environment"] for f in functions(cognito_template).values() if f["handler"] == "connect.handler")
    assert env["AUTH_MODE"] == "cognito"
    assert "TOKEN_ISSUER" in env and "TOKEN_CLIENT_IDS" in env


def test_logs_are_json_lines_with_the_connection_and_never_hold_a_token_or_message_content(
    dynamodb, cognito_template, issuer, jwks, capsys
):
    # Given a cognito deployment, a good and a bad token, and a message with recognisable content
    chat = Chat(
        dynamodb, cognito_template, env_overrides={"TOKEN_ISSUER": ISSUER, "TOKEN_CLIENT_IDS": CLIENT}, jwks=jwks
    )
    good, bad = issuer.token(), forge(issuer.token(sub="bob"), sub="mallory")
    alice, _ = chat.connect({"token": good})
    bob, _ = chat.connect({"token": issuer.token("access", sub="bob")})
    chat.connect({"token": bad})
    secret = "the-launch-code-is-0000"
    chat.send(alice, send_frame("m1", "bob", secret, replyToContent=secret))
    chat.send(bob, {"action": "markRead", "messageIds": ["m1"]})
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    chat.send(alice, "not json " + secret)
    chat.disconnect(bob)
    # Then every line is JSON naming its connection, and no token or content appears anywhere
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in out.splitlines()]
    assert len(lines) >= 8 and all(line.get("connectionId") and line.get("route") for line in lines)
    events = [line for line in lines if "event" in line]  # the others are metrics (docs/operations.md)
    assert {line["event"] for line in events} >= {"connected", "connect_refused", "handled", "refused", "disconnected"}
    for token in (good, bad):
        assert token not in out and token.split(".")[1] not in out and token.split(".")[2] not in out
    assert secret not in out


def test_in_token_mode_the_sender_name_comes_from_the_token_never_from_the_frame(
    dynamodb, cognito_template, issuer, jwks
):
    chat = Chat(
        dynamodb, cognito_template, env_overrides={"TOKEN_ISSUER": ISSUER, "TOKEN_CLIENT_IDS": CLIENT}, jwks=jwks
    )
    named, _ = chat.connect({"token": issuer.token(name="Alice Liddell", **{"cognito:username": "alice"})})
    plain, _ = chat.connect({"token": issuer.token(sub="carol", **{"cognito:username": "carol77"})})
    anonymous, _ = chat.connect({"token": issuer.token("access", sub="dave")})  # an access token has username only
    bob, _ = chat.connect({"token": issuer.token("access", sub="bob")})
    # When each sends bob a message claiming to be the CEO
    for i, conn in enumerate((named, plain, anonymous)):
        chat.send(conn, send_frame(f"m{i}", "bob", "wire the money", senderName="The CEO"))
    # Then bob sees the names the tokens carry: name, else cognito:username, else none at all
    names = [(f["data"]["senderId"], f["data"].get("senderName")) for f in chat.frames(bob)]
    assert names == [("user-123", "Alice Liddell"), ("carol", "carol77"), ("dave", None)]
    assert chat.message("m0")["senderName"] == "Alice Liddell"  # and so does the store (history, pushes)
