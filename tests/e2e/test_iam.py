"""IAM on the local stack (local/iam.py): each function may make only the calls its role
in the template allows, as on AWS, so a grant missing from the stack fails here, with the
denied call named, and not first on a real deploy. (Every other end-to-end test fails if
any call it caused was denied: conftest.py.)"""

from __future__ import annotations

import json
import shutil

import pytest
from botocore.exceptions import ClientError

from clients import Client, connection_ids, run
from harness import send_frame
from local.template import functions, load_assembly


def without_grant(template: dict, handler: str, action: str, table: str) -> str:
    """Take `action` on `table` from the function's (by handler) role; its logical id."""
    [function_id] = [k for k, spec in functions(template).items() if spec["handler"] == handler]
    role = template["Resources"][function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    [policy] = [p for p in resources(template, "AWS::IAM::Policy") if {"Ref": role} in p["Properties"]["Roles"]]
    [statement] = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if table in json.dumps(s["Resource"]) and action in s["Action"]
    ]
    statement["Action"].remove(action)
    return function_id


def resources(template: dict, kind: str) -> list[dict]:
    return [r for r in template["Resources"].values() if r["Type"] == kind]


@pytest.mark.iam_denials
def test_a_grant_taken_from_the_template_fails_the_call_that_needs_it_and_the_stack_names_it(
    start_stack, dev_cdk_out, tmp_path
):
    # Given the stack without the message function's BatchGetItem on the Connections table
    # (presence reads the #lastSeen: rows with it: the grant the first stacks lacked), and
    # with an alarm topic whose policy does not let CloudWatch publish (the other one)
    cdk_out = tmp_path / "cdk.out"
    shutil.copytree(dev_cdk_out, cdk_out)
    stack_name, template = load_assembly(cdk_out)
    message_function = without_grant(template, "message.handler", "dynamodb:BatchGetItem", "StorageConnections")
    [topic_policy] = resources(template, "AWS::SNS::TopicPolicy")
    document = topic_policy["Properties"]["PolicyDocument"]
    document["Statement"] = [s for s in document["Statement"] if s["Effect"] == "Deny"]
    (cdk_out / f"{stack_name}.template.json").write_text(json.dumps(template))
    stack = start_stack(cdk_out)

    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        await alice.send(send_frame("m1", "bob"))
        await alice.next("ack")
        # When alice asks whether bob, her conversation's other user, is online
        await alice.send({"action": "presence", "userIds": ["bob"], "requestId": "p"})
        # Then she gets INTERNAL, as she would on AWS
        error = await alice.next("error")
        assert error["data"]["code"] == "INTERNAL" and error["data"]["requestId"] == "p"
        await bob.close()

    run(scenario())
    # and the stack's output says which function was denied what, on which table, and at
    # its start, that the alarms could never notify anyone
    topic, call = [line for line in stack.log_text().splitlines() if line.startswith("denied by IAM")]
    assert topic.startswith("denied by IAM: cloudwatch.amazonaws.com may not sns:Publish on arn:aws:sns:")
    assert call.startswith(f"denied by IAM: {message_function} may not dynamodb:BatchGetItem on ")
    assert ":table/StorageConnections" in call and "no identity-based policy allows" in call


@pytest.mark.iam_denials
def test_only_the_message_function_may_post_to_connections(start_stack):
    stack = start_stack()

    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        [row] = connection_ids(stack)
        # the connect function's role has no execute-api:ManageConnections: 403, as on AWS
        with pytest.raises(ClientError) as denied:
            stack.management_api("connect.handler").post_to_connection(ConnectionId=row, Data=b"{}")
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert "execute-api:ManageConnections" in denied.value.response["Error"]["Message"]
        # the message function's may
        stack.management_api().post_to_connection(ConnectionId=row, Data=b'{"from":"message"}')
        assert await alice.next() == {"from": "message"}

    run(scenario())
    denied = [line for line in stack.log_text().splitlines() if line.startswith("denied by IAM")]
    assert len(denied) == 1 and "may not execute-api:ManageConnections on arn:aws:execute-api:" in denied[0]
    assert "/production/POST/@connections/" in denied[0]


def test_the_template_as_synthesized_denies_nothing_from_the_start(stack):
    # not at the start (the alarm topic's policy, what a role holds that cannot be resolved)
    # nor in any test on this stack since (conftest.py)
    assert "denied by IAM" not in stack.log.read_text()
    assert "cannot resolve" not in stack.log.read_text() and "does not send" not in stack.log.read_text()
