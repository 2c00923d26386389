"""make deploy's preflight: it stops, with the fix, what CloudFormation would roll back."""

from __future__ import annotations

import boto3
from botocore.stub import Stubber

from stacks.preflight import context_of, main


def apigateway(account: dict):
    """An API Gateway client that answers GetAccount with this (checked against the API's model)."""
    client = boto3.client("apigateway", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_response("get_account", account, {})
    stubber.activate()
    return client


def test_the_context_is_cdk_json_with_the_command_lines_over_it():
    context = context_of(["-c", "accessLogs=true", "--context", "stage=beta", "--context=instance=alice", "--force"])
    assert (context["accessLogs"], context["stage"], context["instance"]) == ("true", "beta", "alice")
    assert context["@aws-cdk/aws-apigateway:disableCloudWatchRole"] is True  # cdk.json's, kept


def test_access_logs_without_the_account_log_role_stop_before_deploying(capsys):
    fresh_account = {"throttleSettings": {"burstLimit": 5000, "rateLimit": 10000.0}, "features": []}
    assert main(["-c", "accessLogs=true"], lambda: apigateway(fresh_account)) == 2
    assert "account-level CloudWatch role" in capsys.readouterr().err


def test_access_logs_with_the_account_log_role_go_ahead():
    account = {"cloudwatchRoleArn": "arn:aws:iam::123456789012:role/APIGatewayCloudWatchLogs"}
    assert main(["-c", "accessLogs=true"], lambda: apigateway(account)) == 0


def test_without_access_logs_nothing_is_asked_of_aws():
    def no_aws():
        raise AssertionError("the preflight called AWS")

    assert main([], no_aws) == 0
    assert main(["-c", "instance=alice"], no_aws) == 0


def test_a_bad_context_value_stops_with_its_reason(capsys):
    assert main(["-c", "stage=a/b"], None) == 2
    assert "stage must be" in capsys.readouterr().err
