"""Read what the local stack and the tests need out of a synthesized template, so
nothing about the tables or routes is described twice."""

from __future__ import annotations

TABLE_TYPES = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")


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


def create_tables(client, template: dict, name_for) -> dict[str, str]:
    """Create every table of the template that does not exist yet. Returns logical id -> table name."""
    existing = set(client.list_tables().get("TableNames", []))
    names = {}
    for logical_id, definition in table_definitions(template).items():
        name = name_for(logical_id)
        names[logical_id] = name
        if name in existing:
            continue
        ttl_attribute = definition.pop("ttl_attribute")
        client.create_table(TableName=name, **definition)
        if ttl_attribute:
            client.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute}
            )
    return names


def resolve(value, refs: dict[str, str]):
    """Resolve ``{"Ref": id}`` against ``refs``; leave plain strings alone."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return refs[value["Ref"]]
    if isinstance(value, str):
        return value
    raise ValueError(f"cannot resolve {value!r} locally")


def functions(template: dict) -> dict[str, dict]:
    """Logical id -> {"handler", "environment" (unresolved)} for every Lambda function."""
    return {
        logical_id: {
            "handler": resource["Properties"]["Handler"],
            "environment": resource["Properties"].get("Environment", {}).get("Variables", {}),
        }
        for logical_id, resource in template.get("Resources", {}).items()
        if resource.get("Type") == "AWS::Lambda::Function"
    }
