"""boto3 clients, created lazily once per container.

Importing this module makes no network call and does not even import boto3, so a
cold start pays for boto3 only when a handler first needs it.

Short timeouts bound how long one call can take (WORST_*_MS), and each client refuses to
start a call that could not end before the function's time limit (OutOfTime):
docs/design.md, "Time limits". A post is tried once: one that fails leaves the message
pending, and sync brings it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache

CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 1
DYNAMODB_ATTEMPTS = 2
POST_ATTEMPTS = 1
EVENTS_ATTEMPTS = 1  # PutEvents is not idempotent: chat/push.py retries only refused entries
# botocore's standard retry mode waits up to 2 s before a second attempt (after throttling).
RETRY_BACKOFF_S = 2

# The longest one call can take, every attempt timing out.
WORST_DYNAMODB_MS = 1000 * (DYNAMODB_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) + RETRY_BACKOFF_S)
WORST_POST_MS = 1000 * POST_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)
WORST_EVENTS_MS = 1000 * EVENTS_ATTEMPTS * (CONNECT_TIMEOUT_S + READ_TIMEOUT_S)

# The invocation's Lambda context's clock (ms left), set by handlers.invocation; None
# outside an invocation or without a context (tests), where nothing is refused. And the
# time kept after a DynamoDB call: the message function's error frame, if one is needed.
_time_left: Callable[[], float] | None = None
_reserve_ms = 0


class OutOfTime(Exception):
    """A call not started: at its slowest it would end too close to the time limit."""


def limit_time(time_left: Callable[[], float] | None, reserve_ms: int = 0) -> None:
    """From now on, calls are refused when they do not fit in time_left() (ms), with
    reserve_ms left after a DynamoDB call."""
    global _time_left, _reserve_ms
    _time_left, _reserve_ms = time_left, reserve_ms


def _within_time(client, worst_ms: int, keep_reserve: bool):
    """The client, refusing a call that at its slowest (worst_ms) would not end in time:
    with the reserve after it, if keep_reserve."""

    def check(model, **_):
        left = _time_left() if _time_left is not None else None
        if left is not None and left < worst_ms + (_reserve_ms if keep_reserve else 0):
            raise OutOfTime(f"{model.name} not started: {left:.0f} ms left, and it may take {worst_ms} ms")

    client.meta.events.register("before-call", check, unique_id="chat-time-limit")
    return client


def _config(attempts: int):
    from botocore.config import Config

    return Config(
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        retries={"mode": "standard", "total_max_attempts": attempts},
    )


def error_code(exc: BaseException) -> str:
    """The error code AWS answered with ("ConditionalCheckFailedException", ...), or ""
    for an exception that is not an AWS answer (a timeout, a bug)."""
    return ((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code") or ""


@lru_cache(maxsize=1)
def dynamodb():
    import boto3

    client = boto3.session.Session().client("dynamodb", config=_config(DYNAMODB_ATTEMPTS))
    return _within_time(client, WORST_DYNAMODB_MS, keep_reserve=True)


@lru_cache(maxsize=1)
def events():
    """EventBridge, for push events (chat.push)."""
    import boto3

    client = boto3.session.Session().client("events", config=_config(EVENTS_ATTEMPTS))
    return _within_time(client, WORST_EVENTS_MS, keep_reserve=False)  # after the ack: no frame follows it


@lru_cache(maxsize=8)
def management_api(endpoint_url: str):
    """The @connections API of one stage.

    On AWS the endpoint is the stage's callback URL (CALLBACK_URL, set by the stack). boto3's
    standard ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` variable overrides it, as
    boto3 does for every service, which is how the local stack points it elsewhere.
    """
    import boto3

    override = os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
    client = boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=override or endpoint_url, config=_config(POST_ATTEMPTS)
    )
    return _within_time(client, WORST_POST_MS, keep_reserve=False)
