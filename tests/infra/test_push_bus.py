"""The push hand-off's infrastructure: the bus the message function alone may put events
on, and the worked example in docs/operations.md, run against the stack as written."""

from __future__ import annotations

import json
import re

from aws_cdk.assertions import Template
from cfnlint.api import lint
from test_stack import function_id, policy_statements, resources
from test_static_checks import findings

from chat import push
from synth import ROOT, build, synth


def message_environment(template) -> dict:
    function = resources(template, "AWS::Lambda::Function")[function_id(template, "message.handler")]
    return function["Properties"]["Environment"]["Variables"]


def test_the_stack_creates_one_bus_and_only_the_message_function_may_put_events_on_it():
    template = synth()[1]
    [bus] = resources(template, "AWS::Events::EventBus")
    functions = resources(template, "AWS::Lambda::Function")
    assert len(functions) == 3  # no Lambda for push
    env = message_environment(template)
    assert env["EVENT_BUS_NAME"] == {"Ref": bus} and env["PUSH_PREVIEW"] == "false"
    put = [s for s in policy_statements(template, "message.handler") if "events" in json.dumps(s["Action"])]
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
        assert "events:" not in json.dumps(policy_statements(template, handler))
        assert (
            "EVENT_BUS_NAME" not in functions[function_id(template, handler)]["Properties"]["Environment"]["Variables"]
        )
    outputs = template.to_json()["Outputs"]
    assert outputs["PushEventBusName"]["Value"] == {"Ref": bus}
    assert outputs["PushEventBusArn"]["Value"] == {"Fn::GetAtt": [bus, "Arn"]}
    assert "DeletionPolicy" not in resources(template, "AWS::Events::EventBus")[bus]  # cdk destroy removes it


def test_push_preview_is_off_unless_asked_for():
    assert message_environment(synth(pushPreview="true")[1])["PUSH_PREVIEW"] == "true"


def docs_example() -> str:
    text = (ROOT / "docs" / "operations.md").read_text()
    found = re.search(r"<!-- push-example:.*?-->\n```python\n(.*?)```", text, re.S)
    assert found, "docs/operations.md lost its push example"
    return found.group(1)


def test_the_docs_worked_example_routes_push_events_to_an_sns_topic_and_passes_the_checks():
    app, stack = build(auth="dev")
    exec(docs_example(), {"stack": stack})  # noqa: S102 (our own docs, run as a user would paste them)
    assert findings(app) == []
    template = Template.from_stack(stack)
    assert [str(m) for m in lint(json.dumps(template.to_json()))] == []
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
    role = resources(template, "AWS::IAM::Role")[role_id]["Properties"]
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
