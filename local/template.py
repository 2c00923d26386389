"""Read what the local stack and the tests need out of a synthesized template, so
nothing about the tables, routes or functions is described twice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

TABLE_TYPES = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")


class TemplateError(Exception):
    """The template has something the local stack cannot run; the message says what."""


# ---- tables ---------------------------------------------------------------------


def table_definitions(template: dict) -> dict[str, dict]:
    """Logical id -> CreateTable arguments (without TableName), plus ``ttl_attribute``."""
    tables = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in TABLE_TYPES:
            continue
        props = resource["Properties"]
        definition = {
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": "PAY_PER_REQUEST",
        }
        indexes = [
            {"IndexName": gsi["IndexName"], "KeySchema": gsi["KeySchema"], "Projection": gsi["Projection"]}
            for gsi in props.get("GlobalSecondaryIndexes", [])
        ]
        if indexes:
            definition["GlobalSecondaryIndexes"] = indexes
        ttl = props.get("TimeToLiveSpecification", {})
        definition["ttl_attribute"] = ttl.get("AttributeName") if ttl.get("Enabled") else None
        tables[logical_id] = definition
    return tables


def create_tables(client, template: dict, name_for, log=print) -> dict[str, str]:
    """Create every table of the template that does not exist yet, and rebuild one whose
    keys or indexes changed (dynalite cannot add or drop an index), keeping its items.
    Returns logical id -> table name.

    TTL is switched on where the server supports it (dynalite does not; the handlers
    ignore expired rows on read either way, as they must on AWS where TTL deletes lag).
    """
    existing = set(client.list_tables().get("TableNames", []))
    names = {}
    for logical_id, definition in table_definitions(template).items():
        name = name_for(logical_id)
        names[logical_id] = name
        items = []
        if name in existing:
            if _shape(client.describe_table(TableName=name)["Table"]) == _shape(definition):
                continue
            items = [i for page in client.get_paginator("scan").paginate(TableName=name) for i in page["Items"]]
            log(f"table {name}: its keys or indexes changed in the template; rebuilding it with its {len(items)} items")
            client.delete_table(TableName=name)
            client.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
        definition = dict(definition)
        ttl_attribute = definition.pop("ttl_attribute")
        client.create_table(TableName=name, **definition)
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 300})
        if ttl_attribute:
            try:
                client.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
                )
            except client.exceptions.ClientError as exc:
                if exc.response["Error"]["Code"] != "UnknownOperationException":
                    raise
        for item in items:
            client.put_item(TableName=name, Item=item)
    return names


def _shape(table: dict) -> tuple:
    """What a table's definition fixes: its key, and each index's key and projection."""
    indexes = sorted(
        (i["IndexName"], json.dumps(i["KeySchema"]), json.dumps(i["Projection"], sort_keys=True))
        for i in table.get("GlobalSecondaryIndexes", [])
    )
    return json.dumps(table["KeySchema"]), indexes


# ---- functions and the WebSocket API ----------------------------------------------


def functions(template: dict) -> dict[str, dict]:
    """Logical id -> {"handler", "environment" (unresolved), "timeout", "asset_path"}."""
    found = {}
    for logical_id, resource in template.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        found[logical_id] = {
            "handler": props["Handler"],
            "environment": props.get("Environment", {}).get("Variables", {}),
            "timeout": props.get("Timeout", 3),
            "asset_path": resource.get("Metadata", {}).get("aws:asset:path"),
        }
    return found


@dataclass(frozen=True)
class WebSocketApi:
    route_selection: str
    stage: str
    routes: dict[str, str]  # route key -> function logical id


def websocket_api(template: dict) -> WebSocketApi:
    resources = template.get("Resources", {})
    apis = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::ApiGatewayV2::Api" and r["Properties"].get("ProtocolType") == "WEBSOCKET"
    ]
    if len(apis) != 1:
        raise TemplateError(f"expected one WebSocket API in the template, found {len(apis)}")
    api_id = apis[0]
    stages = [
        r["Properties"]["StageName"]
        for r in resources.values()
        if r["Type"] == "AWS::ApiGatewayV2::Stage" and r["Properties"]["ApiId"] == {"Ref": api_id}
    ]
    if len(stages) != 1:
        raise TemplateError(f"expected one stage for the WebSocket API, found {len(stages)}")
    routes = {}
    for resource in resources.values():
        if resource["Type"] != "AWS::ApiGatewayV2::Route" or resource["Properties"]["ApiId"] != {"Ref": api_id}:
            continue
        props = resource["Properties"]
        integration_id = _integration_of(props.get("Target"))
        integration = resources[integration_id]["Properties"]
        routes[props["RouteKey"]] = _function_of(integration.get("IntegrationUri"), resources)
    return WebSocketApi(
        route_selection=resources[api_id]["Properties"].get("RouteSelectionExpression", "$request.body.action"),
        stage=stages[0],
        routes=routes,
    )


def _integration_of(target) -> str:
    # "integrations/<id>" as {"Fn::Join": ["", ["integrations/", {"Ref": id}]]}
    parts = target.get("Fn::Join", [None, []])[1] if isinstance(target, dict) else []
    refs = [p["Ref"] for p in parts if isinstance(p, dict) and "Ref" in p]
    if len(refs) != 1:
        raise TemplateError(f"cannot follow route target {target!r}")
    return refs[0]


def _function_of(uri, resources: dict) -> str:
    """The Lambda function an integration URI invokes (found by its Fn::GetAtt ... Arn)."""
    found = []

    def walk(value):
        if isinstance(value, dict):
            att = value.get("Fn::GetAtt")
            if (
                isinstance(att, list)
                and att[1:] == ["Arn"]
                and resources.get(att[0], {}).get("Type") == ("AWS::Lambda::Function")
            ):
                found.append(att[0])
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(uri)
    if len(found) != 1:
        raise TemplateError(f"integration does not invoke exactly one Lambda function: {uri!r}")
    return found[0]


# ---- intrinsic functions ----------------------------------------------------------


def aws_refs(template: dict, region: str, api_id: str, account: str = "000000000000") -> dict[str, str]:
    """Refs that only AWS can answer: the region, partition, account and URL suffix, the
    WebSocket API's id (so the stage's callback URL resolves; the local stack points posts
    at itself), each event bus's name and each SNS topic's ARN."""
    refs = {
        "AWS::Region": region,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::Partition": "aws",
        "AWS::AccountId": account,
    }
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::ApiGatewayV2::Api":
            refs[logical_id] = api_id
        elif resource["Type"] == "AWS::SNS::Topic":
            name = resource.get("Properties", {}).get("TopicName") or logical_id
            refs[logical_id] = f"arn:aws:sns:{region}:{account}:{name}"
    return refs | event_buses(template)


def arn_attributes(
    template: dict, region: str, table_names: dict[str, str], account: str = "000000000000"
) -> dict[tuple[str, str], str]:
    """Fn::GetAtt values that name a resource (its Arn, its name) for the resources the
    functions' policies point at: tables, event buses, topics, log groups, functions."""
    attributes = {}
    for logical_id, resource in template["Resources"].items():
        kind, props = resource["Type"], resource.get("Properties", {})
        if kind in TABLE_TYPES and logical_id in table_names:
            arn = f"arn:aws:dynamodb:{region}:{account}:table/{table_names[logical_id]}"
            attributes |= {(logical_id, "Arn"): arn, (logical_id, "StreamArn"): f"{arn}/stream/local"}
        elif kind == "AWS::Events::EventBus":
            name = props.get("Name") or logical_id
            attributes |= {(logical_id, "Name"): name}
            attributes[(logical_id, "Arn")] = f"arn:aws:events:{region}:{account}:event-bus/{name}"
        elif kind == "AWS::SNS::Topic":
            name = props.get("TopicName") or logical_id
            attributes |= {(logical_id, "TopicName"): name}
            attributes[(logical_id, "TopicArn")] = f"arn:aws:sns:{region}:{account}:{name}"
        elif kind == "AWS::Logs::LogGroup":
            name = props.get("LogGroupName") or logical_id
            attributes[(logical_id, "Arn")] = f"arn:aws:logs:{region}:{account}:log-group:{name}:*"
        elif kind == "AWS::Lambda::Function":  # named for its logical id, as its containers are
            attributes[(logical_id, "Arn")] = f"arn:aws:lambda:{region}:{account}:function:{logical_id}"
    return attributes


def event_buses(template: dict) -> dict[str, str]:
    """Logical id -> name of each EventBridge bus the template creates."""
    return {
        logical_id: resource.get("Properties", {}).get("Name") or logical_id
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Events::EventBus"
    }


def resolve(value, refs: dict[str, str], attributes: dict[tuple[str, str], str] | None = None):
    """Resolve Ref, Fn::GetAtt and Fn::Join against local values; plain strings pass."""
    attributes = attributes or {}
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((fn, arg),) = value.items()
        if fn == "Ref" and arg in refs:
            return refs[arg]
        if fn == "Fn::GetAtt" and tuple(arg) in attributes:
            return attributes[tuple(arg)]
        if fn == "Fn::Join":
            separator, parts = arg
            return separator.join(resolve(p, refs, attributes) for p in parts)
    raise TemplateError(f"the local stack cannot resolve {json.dumps(value)}")


# ---- the cloud assembly -------------------------------------------------------------


def load_assembly(cdk_out: Path, stack: str | None = None) -> tuple[str, dict]:
    """(stack name, template) from a cdk.out directory."""
    manifest_path = cdk_out / "manifest.json"
    if not manifest_path.exists():
        raise TemplateError(f"no {manifest_path}: synthesize first (make local does, or npx cdk synth -o {cdk_out})")
    manifest = json.loads(manifest_path.read_text())
    stacks = {
        name: a["properties"]["templateFile"]
        for name, a in manifest.get("artifacts", {}).items()
        if a.get("type") == "aws:cloudformation:stack"
    }
    if stack is None and len(stacks) == 1:
        stack = next(iter(stacks))
    if stack not in stacks:
        raise TemplateError(f"pick a stack with --stack; {cdk_out} has: {', '.join(sorted(stacks)) or 'none'}")
    return stack, json.loads((cdk_out / stacks[stack]).read_text())
