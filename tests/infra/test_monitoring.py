"""The dashboard and the alarms: each alarm notifies the topic, and together they cover
what docs/operations.md says they do."""

from __future__ import annotations

import copy
import json

import pytest

from local import iam
from local.iam import alarm_denials
from local.template import arn_attributes, aws_refs, resolve
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


def alarm_topic_denials(template: dict) -> list[str]:
    """What the local stack says of the alarm topic's policy: one line per topic that
    would refuse CloudWatch's notifications (local/iam.py)."""
    refs = aws_refs(template, "us-east-1", "api123")
    return alarm_denials(template, refs, arn_attributes(template, "us-east-1", {}), resolve, "us-east-1")


def test_cloudwatch_may_publish_the_alarms_to_their_topic(template):
    # Given the topic's policy (enforce_ssl makes one, and it replaces SNS's default policy)
    # Then CloudWatch, publishing this account's alarms, is allowed
    assert alarm_topic_denials(template) == []
    # and without the statement that allows it, every alarm would go unheard (the defect it fixes)
    without = copy.deepcopy(template)
    [policy] = resources(without, "AWS::SNS::TopicPolicy").values()
    document = policy["Properties"]["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    [line] = alarm_topic_denials(without)
    assert "cloudwatch.amazonaws.com may not sns:Publish" in line and "none of their notifications" in line


def test_only_this_accounts_alarms_over_tls_may_publish_to_the_topic(template):
    [policy] = resources(template, "AWS::SNS::TopicPolicy").values()
    refs = aws_refs(template, "us-east-1", "api123")
    topic_policy = iam.Policy.of(iam._resolved(policy["Properties"]["PolicyDocument"], refs, {}, resolve, []))
    [topic] = [refs[k] for k in resources(template, "AWS::SNS::Topic")]
    alarm = f"arn:aws:cloudwatch:us-east-1:{iam.ACCOUNT}:alarm:MessageErrors"

    def publish(service="cloudwatch.amazonaws.com", **context) -> bool:
        context = {"aws:SourceAccount": iam.ACCOUNT, "aws:SourceArn": alarm, **context}
        principal = iam.Principal(service=service)
        return iam.evaluate("sns:Publish", topic, principal, context, resource_policy=topic_policy).allowed

    assert publish()
    assert not publish(**{"aws:SourceAccount": "111122223333"})  # another account's alarm (confused deputy)
    assert not publish(**{"aws:SourceArn": alarm.replace(iam.ACCOUNT, "111122223333")})
    assert not publish(**{"aws:SecureTransport": "false"})  # the SSL-only deny still holds
    assert not publish("events.amazonaws.com")  # only CloudWatch
