"""Cold-start rules: importing a handler makes no network call and needs no boto3;
the Lambda code never imports aws_cdk."""

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


def test_clients_use_short_timeouts_and_standard_retries():
    from chat import aws

    config = aws.dynamodb().meta.config
    assert config.connect_timeout <= 2 and config.read_timeout <= 5
    assert config.retries["mode"] == "standard"
