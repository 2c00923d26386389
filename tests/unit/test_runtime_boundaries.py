"""Cold-start rules: importing a handler makes no network call and needs no boto3;
the Lambda code never imports aws_cdk. And the clients it makes then: where they post,
and how long a call can take at its slowest."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

LAMBDA_SRC = Path(__file__).resolve().parents[2] / "lambda_src"

PROBE = """
import socket, sys
def refuse(*a, **k):
    raise AssertionError("network call at import time")
socket.socket.connect = refuse
socket.create_connection = refuse
import connect, disconnect, message
assert "boto3" not in sys.modules, "boto3 imported eagerly"
print("ok")
"""


def test_importing_the_handlers_touches_no_network_and_defers_boto3():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=LAMBDA_SRC,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_lambda_code_never_imports_aws_cdk_or_the_stacks():
    forbidden = re.compile(r"^\s*(from|import)\s+(aws_cdk|constructs|stacks)\b", re.MULTILINE)
    for path in LAMBDA_SRC.rglob("*.py"):
        assert not forbidden.search(path.read_text()), path


def test_the_management_client_uses_the_stage_endpoint_unless_boto3s_override_is_set(monkeypatch):
    from chat import aws

    monkeypatch.delenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", raising=False)
    aws.management_api.cache_clear()
    client = aws.management_api("https://abc.execute-api.us-east-1.amazonaws.com/production")
    assert client.meta.endpoint_url == "https://abc.execute-api.us-east-1.amazonaws.com/production"
    monkeypatch.setenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", "http://127.0.0.1:8080/production")
    aws.management_api.cache_clear()
    assert aws.management_api("https://ignored/production").meta.endpoint_url == "http://127.0.0.1:8080/production"
    aws.management_api.cache_clear()


def test_each_clients_slowest_call_is_the_worst_case_the_time_limits_count_on(monkeypatch):
    from chat import aws

    # Given the three clients the functions make, as botocore holds their settings
    monkeypatch.delenv("AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI", raising=False)
    aws.management_api.cache_clear()
    clients = {
        "dynamodb": (aws.dynamodb(), aws.WORST_DYNAMODB_MS),
        "events": (aws.events(), aws.WORST_EVENTS_MS),
        "@connections": (aws.management_api("https://abc.execute-api.us-east-1.amazonaws.com/p"), aws.WORST_POST_MS),
    }
    aws.management_api.cache_clear()
    for name, (client, worst_ms) in clients.items():
        config = client.meta.config
        # When every attempt of a call times out, with the wait chat/aws.py allows for before each retry
        assert config.retries["mode"] == "standard"
        attempts = config.retries["total_max_attempts"]
        timeouts_s = attempts * (config.connect_timeout + config.read_timeout)
        slowest_ms = 1000 * (timeouts_s + (attempts - 1) * aws.RETRY_BACKOFF_S)
        # Then the call takes as long as the time limits allow for it (chat/aws.py), and no longer
        assert slowest_ms == worst_ms, name
