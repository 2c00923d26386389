"""The push hand-off's infrastructure: the bus the message function alone may put events
on, and the worked example in docs/operations.md, run against the stack as written."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Template
from cfnlint.api import lint
from test_static_checks import findings

from chat import push
from synth import ROOT, build, synth


def resources(template: dict, type_: str) -> dict:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == type_}


def function(template: dict, handler: str) -> dict:
    return next(
        r for r in resources(template, "AWS::Lambda::Function").values() if r["Properties"]["Handler"] == handler
    )


def statements_of(template: dict, handler: str) -> list[dict]:
    role = function(template, handler)["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role} in p["Properties"]["Roles"]
    ]
    return [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]


def test_the_stack_creates_one_bus_and_only_the_message_function_may_put_events_on_it():
    template = synth()[1].to_json()
    [bus] = resources(template, "AWS::Events::EventBus")
    assert len(resources(template, "AWS::Lambda::Function")) == 3  # no Lambda for push
    env = function(template, "message.handler")["Properties"]["Environment"]["Variables"]
    assert env["EVENT_BUS_NAME"] == {"Ref": bus} and env["PUSH_PREVIEW"] == "false"
    put = [s for s in statements_of(template, "message.handler") if "events" in json.dumps(s["Action"])]
    only_push_events = {"StringEquals": {"events:source": push.SOURCE, "events:detail-type": push.DETAIL_TYPE}}
    assert put == [
        {
            "Action": "events:PutEvents",
            "Condition": only_push_events,
            "Effect": "Allow",
            "Resource": {"Fn::GetAtt": [bus, "Arn"]},
        }
    ]
    for handler in ("connect.handler", "disconnect.handler"):
        assert "events:" not in json.dumps(statements_of(template, handler))
        assert "EVENT_BUS_NAME" not in function(template, handler)["Properties"]["Environment"]["Variables"]
    assert template["Outputs"]["PushEventBusName"]["Value"] == {"Ref": bus}
    assert template["Outputs"]["PushEventBusArn"]["Value"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert "DeletionPolicy" not in template["Resources"][bus]  # cdk destroy removes it


def test_push_preview_is_off_unless_asked_for():
    template = synth(pushPreview="true")[1].to_json()
    assert function(template, "message.handler")["Properties"]["Environment"]["Variables"]["PUSH_PREVIEW"] == "true"


def docs_example() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    found = re.search(r"<!-- push-example:.*?-->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/operations.md lost its push example"
    return found.group(1)


def test_the_docs_worked_example_routes_push_events_to_an_sns_topic_and_passes_the_checks():
    app, stack = build(auth="dev")
    exec(docs_example(), {"stack": stack})  # noqa: S102 (our own docs, run as a user would paste them)
    assert findings(app) == []
    template = Template.from_stack(stack).to_json()
    assert [str(m) for m in lint(json.dumps(template))] == []
    [bus] = resources(template, "AWS::Events::EventBus")
    [rule] = resources(template, "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["EventBusName"] == {"Ref": bus}
    # the pattern matches what the message function puts
    assert props["EventPattern"] == {"source": [push.SOURCE], "detail-type": [push.DETAIL_TYPE]}
    [(topic_id, _)] = [(k, r) for k, r in resources(template, "AWS::SNS::Topic").items() if "Push" in k]
    [target] = props["Targets"]
    assert target["Arn"] == {"Ref": topic_id} and target["InputPath"] == "$.detail"
    # EventBridge publishes with a role of this rule's: no topic policy lets any rule publish
    policies = [
        p
        for p in resources(template, "AWS::SNS::TopicPolicy").values()
        if {"Ref": topic_id} in p["Properties"]["Topics"]
    ]
    assert "events.amazonaws.com" not in json.dumps(policies)
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = template["Resources"][role_id]["Properties"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "events.amazonaws.com"}
    role_statements = [
        s
        for p in resources(template, "AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for s in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    assert role_statements == [{"Action": "sns:Publish", "Effect": "Allow", "Resource": {"Ref": topic_id}}]
    assert (target["RetryPolicy"], props["State"]) == (
        {"MaximumEventAgeInSeconds": 300, "MaximumRetryAttempts": 3},
        "ENABLED",
    )
