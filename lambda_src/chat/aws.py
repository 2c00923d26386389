"""boto3 clients, created lazily once per container.

Importing this module makes no network call and does not even import boto3, so a
cold start pays for boto3 only when a handler first needs it.

Timeouts are short because every caller is a WebSocket client waiting for a frame, and
they bound how long one call can take, which actions.py budgets against the function's
time limit (29 s for the message function). A post is tried once: one that fails leaves
the message pending, and sync brings it.
"""

from __future__ import annotations

import os
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

    return boto3.session.Session().client("dynamodb", config=_config(DYNAMODB_ATTEMPTS))


@lru_cache(maxsize=1)
def events():
    """EventBridge, for push events (chat.push)."""
    import boto3

    return boto3.session.Session().client("events", config=_config(EVENTS_ATTEMPTS))


@lru_cache(maxsize=8)
def management_api(endpoint_url: str):
    """The @connections API of one stage.

    On AWS the endpoint is the stage's callback URL (CALLBACK_URL, set by the stack). boto3's
    standard ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` variable overrides it, as
    boto3 does for every service, which is how the local stack points it elsewhere.
    """
    import boto3

    override = os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=override or endpoint_url, config=_config(POST_ATTEMPTS)
    )
