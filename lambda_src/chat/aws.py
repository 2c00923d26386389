"""boto3 clients, created lazily once per container.

Importing this module makes no network call and does not even import boto3, so a
cold start pays for boto3 only when a handler first needs it. Timeouts are short
because every caller is a WebSocket client waiting for a frame.
"""

from __future__ import annotations

import os
from functools import lru_cache


def _config():
    from botocore.config import Config

    return Config(
        connect_timeout=2,
        read_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
    )


@lru_cache(maxsize=1)
def dynamodb():
    import boto3

    return boto3.session.Session().client("dynamodb", config=_config())


@lru_cache(maxsize=8)
def management_api(endpoint_url: str):
    """The @connections API of one stage.

    On AWS the endpoint is ``https://{domainName}/{stage}`` from the event. boto3's
    standard ``AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI`` variable overrides it, as
    boto3 does for every service, which is how the local stack points it elsewhere.
    """
    import boto3

    override = os.environ.get("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI")
    return boto3.session.Session().client(
        "apigatewaymanagementapi", endpoint_url=override or endpoint_url, config=_config()
    )
