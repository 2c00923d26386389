"""The dashboard and the alarms: each alarm notifies the topic, and together they cover
what docs/operations.md says they do."""

from __future__ import annotations

import json

import pytest

from synth import synth


@pytest.fixture(scope="module")
def template():
    return synth()[1].to_json()


def resources(template: dict, type_: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def alarms(template: dict) -> list[dict]:
    return [r["Properties"] for r in resources(template, "AWS::CloudWatch::Alarm").values()]


def watched(alarm: dict) -> tuple[str, str]:
    """(namespace, metric name) of an alarm on one metric; of the first, for metric math."""
    if "MetricName" in alarm:
        return alarm["Namespace"], alarm["MetricName"]
    stat = next(m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m)
    return stat["Metric"]["Namespace"], stat["Metric"]["MetricName"]


def test_every_alarm_notifies_the_alarm_topic(template):
    [topic] = resources(template, "AWS::SNS::Topic")
    found = alarms(template)
    assert found and all(a["AlarmActions"] == [{"Ref": topic}] for a in found)
    assert all(a["TreatMissingData"] == "notBreaching" for a in found)


def test_the_alarms_cover_functions_tables_the_gateway_internal_errors_and_slowness(template):
    kinds = [watched(a) for a in alarms(template)]
    assert kinds.count(("AWS/Lambda", "Errors")) == 3 and kinds.count(("AWS/Lambda", "Throttles")) == 3
    assert kinds.count(("AWS/DynamoDB", "ThrottledRequests")) == 4  # one per table
    assert ("AWS/ApiGateway", "IntegrationError") in kinds
    [internal] = [a for a in alarms(template) if watched(a) == ("RealtimeMessaging", "ErrorFrames")]
    assert {"Name": "Code", "Value": "INTERNAL"} in internal["Dimensions"]
    [slow] = [a for a in alarms(template) if watched(a) == ("AWS/Lambda", "Duration")]
    assert slow["ExtendedStatistic"] == "p99" and slow["Threshold"] == 10_000
    assert "message" in json.dumps(slow["Dimensions"]).lower()
    [push] = [a for a in alarms(template) if watched(a) == ("RealtimeMessaging", "FailedPushEvents")]
    assert {"Name": "Action", "Value": "sendMessage"} in push["Dimensions"] and push["Threshold"] == 1


def test_alarm_email_subscribes_the_address_and_none_is_subscribed_without_it(template):
    assert resources(template, "AWS::SNS::Subscription") == {}
    with_email = synth(alarmEmail="ops@example.com")[1].to_json()
    [subscription] = resources(with_email, "AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"
    assert subscription["Properties"]["Endpoint"] == "ops@example.com"


def test_the_topic_refuses_plain_http_and_the_stack_has_a_dashboard(template):
    [policy] = resources(template, "AWS::SNS::TopicPolicy").values()
    assert "aws:SecureTransport" in json.dumps(policy)
    assert len(resources(template, "AWS::CloudWatch::Dashboard")) == 1
    assert {"AlarmTopicArn", "DashboardName"} <= set(template["Outputs"])
