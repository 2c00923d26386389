"""The local stack's template reader (local/template.py): routes, stage and tables come
from `cdk synth`'s template, so nothing is described twice."""

from __future__ import annotations

import copy

import pytest

from chat.contract import ACTIONS
from local.template import TemplateError, create_tables, functions, resolve, websocket_api


def test_routes_and_stage_come_from_the_template(dev_template):
    api = websocket_api(dev_template)
    handlers = {lid: f["handler"] for lid, f in functions(dev_template).items()}
    assert api.route_selection == "$request.body.action" and api.stage == "production"
    assert {route: handlers[fn] for route, fn in api.routes.items()} == {
        "$connect": "connect.handler",
        "$disconnect": "disconnect.handler",
        "$default": "message.handler",
        **dict.fromkeys(ACTIONS, "message.handler"),
    }


def test_a_route_added_to_the_template_is_followed_without_edits(dev_template):
    template = copy.deepcopy(dev_template)
    route = next(
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ApiGatewayV2::Route" and r["Properties"]["RouteKey"] == "sync"
    )
    template["Resources"]["TypingRoute"] = {**route, "Properties": {**route["Properties"], "RouteKey": "typing"}}
    assert "typing" in websocket_api(template).routes


def test_unresolvable_intrinsics_are_named_in_the_error():
    assert resolve({"Fn::Join": ["-", ["a", {"Ref": "T"}]]}, {"T": "t"}) == "a-t"
    with pytest.raises(TemplateError, match="Fn::ImportValue"):
        resolve({"Fn::ImportValue": "x"}, {})


def test_a_local_table_whose_indexes_changed_is_rebuilt_with_its_items(dynamodb, dev_template):
    # Given local data from before ack mode: the Connections table with the old userId-index
    old = copy.deepcopy(dev_template)
    [(connections_id, connections)] = [
        (k, r) for k, r in old["Resources"].items() if r.get("Properties", {}).get("TimeToLiveSpecification")
    ]
    connections["Properties"]["GlobalSecondaryIndexes"] = [
        {
            "IndexName": "userId-index",
            "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["ttl"]},
        }
    ]
    create_tables(dynamodb, old, lambda logical_id: logical_id)
    row = {"connectionId": {"S": "c1"}, "userId": {"S": "bob"}, "ttl": {"N": "9999999999"}}
    dynamodb.put_item(TableName=connections_id, Item=row)
    # When the local stack starts from the new template
    logs: list[str] = []
    create_tables(dynamodb, dev_template, lambda logical_id: logical_id, logs.append)
    # Then that table (only) was rebuilt, its rows kept and the new index answers
    assert [line for line in logs if "rebuilding" in line] == [
        f"table {connections_id}: its keys or indexes changed in the template; rebuilding it with its 1 items"
    ]
    found = dynamodb.query(
        TableName=connections_id,
        IndexName="connections-by-user",
        KeyConditionExpression="userId = :u",
        ExpressionAttributeValues={":u": {"S": "bob"}},
    )["Items"]
    assert found == [row]
    create_tables(dynamodb, dev_template, lambda logical_id: logical_id, logs.append)
    assert len(logs) == 1  # a second start changes nothing
