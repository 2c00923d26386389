"""Deploy hygiene: what `cdk destroy` leaves behind, backups, logs and passwords
(the functions' time limits: tests/unit/test_time_limits.py)."""

from __future__ import annotations

import json
import re

import pytest

from synth import synth

STATEFUL = ("AWS::DynamoDB::GlobalTable", "AWS::Logs::LogGroup", "AWS::Cognito::UserPool")


def stateful_resources(template):
    return {lid: r for type_ in STATEFUL for lid, r in template.find_resources(type_).items()}


def test_by_default_destroy_deletes_every_table_log_group_and_the_user_pool():
    # Given the default (personal, throwaway) deployment
    found = stateful_resources(synth()[1])
    # Then nothing stateful is kept by CloudFormation on delete, and nothing blocks the delete
    assert len(found) == 4 + 3 + 1  # tables, log groups, user pool
    for logical_id, resource in found.items():
        assert resource.get("DeletionPolicy") == "Delete", logical_id
        assert resource.get("UpdateReplacePolicy") == "Delete", logical_id
        replicas = resource["Properties"].get("Replicas", [{}])
        assert not replicas[0].get("DeletionProtectionEnabled"), logical_id


def test_retain_data_keeps_tables_logs_and_pool_and_turns_on_deletion_protection():
    # Given -c retainData=true
    template = synth(retainData="true")[1]
    found = stateful_resources(template)
    # Then CloudFormation keeps each of them once created (a first deploy that rolls back
    # leaves nothing behind), and the tables and the user pool refuse a delete
    for logical_id, resource in found.items():
        assert resource.get("DeletionPolicy") == "RetainExceptOnCreate", logical_id
        assert resource.get("UpdateReplacePolicy") == "Retain", logical_id
    for logical_id, table in template.find_resources("AWS::DynamoDB::GlobalTable").items():
        assert table["Properties"]["Replicas"][0]["DeletionProtectionEnabled"] is True, logical_id
    [pool] = template.find_resources("AWS::Cognito::UserPool").values()
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


def test_the_created_app_client_has_no_oauth_flows_and_no_placeholder_callback():
    [client] = synth()[1].find_resources("AWS::Cognito::UserPoolClient").values()
    properties = client["Properties"]
    assert properties["AllowedOAuthFlowsUserPoolClient"] is False
    assert "CallbackURLs" not in properties and "AllowedOAuthFlows" not in properties


def test_every_table_of_user_data_has_point_in_time_recovery():
    tables = synth()[1].find_resources("AWS::DynamoDB::GlobalTable")
    recovered = {
        logical_id
        for logical_id, t in tables.items()
        if t["Properties"]["Replicas"][0].get("PointInTimeRecoverySpecification")
        == {"PointInTimeRecoveryEnabled": True}
    }
    # messages, what they say, and who is in which conversation; not the connections, which expire anyway
    assert {re.sub(r"^Storage|[0-9A-F]{8}$", "", t) for t in recovered} == {"Messages", "Contents", "Conversations"}


@pytest.mark.parametrize("days", [14, 90])
def test_every_function_logs_to_its_own_group_with_a_retention(days):
    context = {} if days == 14 else {"logRetentionDays": str(days)}
    template = synth(**context)[1]
    groups = template.find_resources("AWS::Logs::LogGroup")
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {days}
    for fn in template.find_resources("AWS::Lambda::Function").values():
        assert fn["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in groups


def stage_of(template) -> dict:
    [stage] = template.find_resources("AWS::ApiGatewayV2::Stage").values()
    return stage


def test_the_stage_and_connect_are_throttled_by_default_and_configurably():
    stage = stage_of(synth()[1])
    assert stage["Properties"]["DefaultRouteSettings"] == {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200}
    assert stage["Properties"]["RouteSettings"] == {"$connect": {"ThrottlingRateLimit": 10, "ThrottlingBurstLimit": 20}}
    # the stage may only be created once the route it names exists, or the deploy fails
    connect_route = next(
        lid
        for lid, r in synth()[1].find_resources("AWS::ApiGatewayV2::Route").items()
        if r["Properties"]["RouteKey"] == "$connect"
    )
    assert connect_route in stage["DependsOn"]

    tuned = stage_of(synth(throttleRate="5", throttleBurst="10", connectThrottleRate="1", connectThrottleBurst="2")[1])
    assert tuned["Properties"]["DefaultRouteSettings"] == {"ThrottlingRateLimit": 5, "ThrottlingBurstLimit": 10}
    assert tuned["Properties"]["RouteSettings"]["$connect"] == {"ThrottlingRateLimit": 1, "ThrottlingBurstLimit": 2}


def test_access_logs_are_off_by_default():
    assert "AccessLogSettings" not in stage_of(synth()[1])["Properties"]


def test_access_logs_when_on_are_json_without_the_query_string_in_their_own_group():
    template = synth(accessLogs="true")[1]
    settings = stage_of(template)["Properties"]["AccessLogSettings"]
    fields = json.loads(settings["Format"])
    assert {"requestId", "connectionId", "routeKey", "eventType", "status", "ip"} <= set(fields)
    # the token travels in the query string in cognito mode: nothing that could hold it is logged
    assert not any(word in value for value in fields.values() for word in ("querystring", "path", "header"))
    group = settings["DestinationArn"]["Fn::GetAtt"][0]
    assert template.find_resources("AWS::Logs::LogGroup")[group]["Properties"]["RetentionInDays"] == 14


def test_the_created_pool_demands_long_mixed_passwords():
    [pool] = synth()[1].find_resources("AWS::Cognito::UserPool").values()
    policy = pool["Properties"]["Policies"]["PasswordPolicy"]
    assert policy["MinimumLength"] >= 12
    assert all(policy[k] for k in ("RequireLowercase", "RequireUppercase", "RequireNumbers", "RequireSymbols"))


def test_every_table_keeps_dynamodbs_default_encryption_at_rest():
    for logical_id, table in synth()[1].find_resources("AWS::DynamoDB::GlobalTable").items():
        # no SSESpecification: DynamoDB encrypts with an AWS owned key, at no cost; a customer
        # managed key would add a KMS bill and a key to manage in a personal account
        assert "SSESpecification" not in table["Properties"], logical_id
