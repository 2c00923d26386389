"""What the template must say: tables, indexes, ttl, exactly three functions, the
routes, the stage, least-privilege IAM, and a snapshot for everything else."""

from __future__ import annotations

import json
import re

import pytest
from aws_cdk.assertions import Match
from syrupy.extensions.json import JSONSnapshotExtension

from local.iam import uninvokable_routes
from local.template import arn_attributes, aws_refs, resolve, websocket_api
from stacks.config import ConfigError, StackConfig
from synth import synth

CONTEXTS = {"cognito": {}, "dev": {"auth": "dev"}}


@pytest.fixture(scope="module")
def template():
    return synth()[1]


def resources(template, type_):
    return template.find_resources(type_)


def function_id(template, handler):
    return next(
        k for k, v in resources(template, "AWS::Lambda::Function").items() if v["Properties"]["Handler"] == handler
    )


def policy_statements(template, handler):
    """The function's statements, less the log-writing ones, which must name only its own log group."""
    fn = resources(template, "AWS::Lambda::Function")[function_id(template, handler)]["Properties"]
    role_id = fn["Role"]["Fn::GetAtt"][0]
    policies = [
        p for p in resources(template, "AWS::IAM::Policy").values() if {"Ref": role_id} in p["Properties"]["Roles"]
    ]
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    logs = [s for s in statements if all(a.startswith("logs:") for a in actions_of([s]))]
    own_group = {"Fn::GetAtt": [fn["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}
    assert [(actions_of([s]), s["Resource"]) for s in logs] == [
        ({"logs:CreateLogStream", "logs:PutLogEvents"}, own_group)
    ]
    return [s for s in statements if s not in logs]


def actions_of(statements):
    found = set()
    for statement in statements:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def test_connections_table_has_connectionId_key_userId_index_and_ttl(template):
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "connectionId", "KeyType": "HASH"}],
            "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": True},
            "GlobalSecondaryIndexes": [
                Match.object_like(
                    {"IndexName": "connections-by-user", "KeySchema": [{"AttributeName": "userId", "KeyType": "HASH"}]}
                )
            ],
        },
    )


def test_messages_table_has_the_sparse_pending_index_and_the_narrow_history_index(template):
    template.has_resource_properties(
        "AWS::DynamoDB::GlobalTable",
        {
            "KeySchema": [{"AttributeName": "messageId", "KeyType": "HASH"}],
            "GlobalSecondaryIndexes": Match.array_with(
                [
                    Match.object_like(
                        {
                            "IndexName": "pending-index",
                            "KeySchema": [
                                {"AttributeName": "pendingFor", "KeyType": "HASH"},
                                {"AttributeName": "sentAt", "KeyType": "RANGE"},
                            ],
                        }
                    ),
                    Match.object_like(
                        {
                            "IndexName": "history-index",
                            "KeySchema": [
                                {"AttributeName": "conversationId", "KeyType": "HASH"},
                                {"AttributeName": "sentAt", "KeyType": "RANGE"},
                            ],
                            "Projection": {
                                "ProjectionType": "INCLUDE",
                                "NonKeyAttributes": ["senderId", "recipientId"],
                            },
                        }
                    ),
                ]
            ),
        },
    )


def test_no_table_has_a_hard_coded_name(template):
    tables = resources(template, "AWS::DynamoDB::GlobalTable").values()
    assert len(tables) == 4  # (so the check below cannot pass on no table at all)
    for table in tables:
        assert "TableName" not in table["Properties"]


@pytest.mark.parametrize("context", CONTEXTS.values(), ids=CONTEXTS.keys())
def test_exactly_three_python_313_arm64_functions_and_no_helper_lambdas(context):
    template = synth(**context)[1]
    functions = resources(template, "AWS::Lambda::Function")
    assert sorted(f["Properties"]["Handler"] for f in functions.values()) == [
        "connect.handler",
        "disconnect.handler",
        "message.handler",
    ]
    for function in functions.values():
        props = function["Properties"]
        assert props["Runtime"] == "python3.13" and props["Architectures"] == ["arm64"]
        assert "FunctionName" not in props
        assert "LoggingConfig" in props  # an explicit log group, not log_retention's helper Lambda
    assert resources(template, "Custom::LogRetention") == {}
    assert len(resources(template, "AWS::Logs::LogGroup")) == 3


def test_routes_select_on_action(template):
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Api",
        {"ProtocolType": "WEBSOCKET", "RouteSelectionExpression": "$request.body.action"},
    )


def test_the_stage_is_production_and_auto_deploys(template):
    template.has_resource_properties("AWS::ApiGatewayV2::Stage", {"StageName": "production", "AutoDeploy": True})


def test_each_functions_memory_is_1024_mb_unless_memory_mb_says_otherwise():
    # (docs/performance.md, "Memory": where the measured CPU curve bends)
    for memory, context in ((1024, {}), (256, {"memoryMb": "256"})):
        functions = resources(synth(**context)[1], "AWS::Lambda::Function").values()
        assert [f["Properties"]["MemorySize"] for f in functions] == [memory] * 3


def test_the_stage_name_is_configurable_and_separate_from_the_instance():
    stack, template = synth(stage="beta", instance="alice")
    assert stack.stack_name == "RealtimeMessaging-alice"
    template.has_resource_properties("AWS::ApiGatewayV2::Stage", {"StageName": "beta"})


def test_outputs_give_the_urls_and_table_names(template):
    outputs = template.to_json()["Outputs"]
    for name in (
        "WebSocketUrl",
        "CallbackUrl",
        "ConnectionsTableName",
        "MessagesTableName",
        "ConversationsTableName",
        "ContentsTableName",
        "UserPoolId",
        "UserPoolClientId",
    ):
        assert name in outputs
    assert "wss://" in json.dumps(outputs["WebSocketUrl"]["Value"])


def test_connect_may_only_put_connections(template):
    statements = policy_statements(template, "connect.handler")
    assert actions_of(statements) == {"dynamodb:PutItem"}
    assert "Messages" not in json.dumps(statements)


def test_disconnect_may_only_delete_connections_and_record_last_seen(template):
    statements = policy_statements(template, "disconnect.handler")
    assert actions_of(statements) == {"dynamodb:DeleteItem", "dynamodb:PutItem"}
    assert all(t not in json.dumps(statements) for t in ("Messages", "Conversations", "Contents"))


def test_only_the_message_function_may_post_to_connections_and_only_on_this_stage(template):
    for handler in ("connect.handler", "disconnect.handler"):
        assert "execute-api:ManageConnections" not in actions_of(policy_statements(template, handler))
    statements = policy_statements(template, "message.handler")
    [manage] = [s for s in statements if s["Action"] == "execute-api:ManageConnections"]
    resource = json.dumps(manage["Resource"])
    assert "WebSocketApi" in resource and "/production/POST/@connections/*" in resource  # it only posts
    assert actions_of(statements) == {
        "execute-api:ManageConnections",
        "dynamodb:GetItem",
        "dynamodb:Query",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:BatchGetItem",
        "dynamodb:UpdateItem",
        "events:PutEvents",  # the push hand-off, on the stack's bus only (test_push_bus.py)
    }
    assert "dynamodb:Scan" not in actions_of(statements)


def grants_by_table(template, handler) -> dict[str, set[str]]:
    """Table, or "<table>/index/*" -> the actions the function may make there."""
    found: dict[str, set[str]] = {}
    for statement in policy_statements(template, handler):
        listed = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in listed:  # a table's Arn, or the join of its Arn and "/index/*"
            first = resource.get("Fn::Join", [None, [resource]])[1][0]
            arn = first.get("Fn::GetAtt") if isinstance(first, dict) else None
            table = re.fullmatch(r"Storage([A-Za-z]+)[0-9A-F]{8}", (arn or [""])[0])
            if table:
                where = table.group(1) + ("/index/*" if "Fn::Join" in resource else "")
                found.setdefault(where, set()).update(actions_of([statement]))
    return found


def test_the_message_function_may_make_on_each_table_exactly_the_calls_its_store_makes_there(template):
    # per table, not over all of them: presence's BatchGetItem on Connections was missing,
    # and a set of every table's actions still held it (from Messages); and Query on the
    # indexes only, as every query names one
    reads_and_writes = {"dynamodb:PutItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:UpdateItem"}
    assert grants_by_table(template, "message.handler") == {
        # a caller's connection; a 410's row; presence's lastSeen rows
        "Connections": {"dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:BatchGetItem"},
        "Connections/index/*": {"dynamodb:Query"},  # each user's connections
        "Messages": reads_and_writes,  # no DeleteItem: messages are soft-deleted
        "Messages/index/*": {"dynamodb:Query"},
        "Conversations": reads_and_writes,
        "Conversations/index/*": {"dynamodb:Query"},
        # what a message says: written with it, read with it, deleted with it
        "Contents": reads_and_writes | {"dynamodb:DeleteItem"},
    }
    assert grants_by_table(template, "connect.handler") == {"Connections": {"dynamodb:PutItem"}}
    assert grants_by_table(template, "disconnect.handler") == {
        "Connections": {"dynamodb:DeleteItem", "dynamodb:PutItem"}
    }


def test_no_role_has_a_managed_policy_or_a_bare_wildcard_resource(template):
    for logical_id, role in resources(template, "AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id
    tables = set(resources(template, "AWS::DynamoDB::GlobalTable"))
    [api] = resources(template, "AWS::ApiGatewayV2::Api")
    for policy in resources(template, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            listed = statement["Resource"]
            for resource in listed if isinstance(listed, list) else [listed]:
                if "*" not in json.dumps(resource):
                    continue
                # the only wildcards: a table's own indexes, and connection ids on this API's stage
                parts = resource["Fn::Join"][1]
                index = parts[0] in [{"Fn::GetAtt": [t, "Arn"]} for t in tables] and parts[1:] == ["/index/*"]
                connections = {"Ref": api} in parts and parts[-1] == "/production/POST/@connections/*"
                assert index or connections, resource


def test_dev_mode_has_no_user_pool_and_warns():
    stack, template = synth(auth="dev")
    assert resources(template, "AWS::Cognito::UserPool") == {}
    warnings = [m for m in stack.node.metadata if m.type == "aws:cdk:warning"]
    assert any("auth=dev" in str(m.data) for m in warnings)


def test_cognito_mode_creates_a_pool_and_app_client_by_default(template):
    assert len(resources(template, "AWS::Cognito::UserPool")) == 1
    assert len(resources(template, "AWS::Cognito::UserPoolClient")) == 1


def test_an_existing_pool_is_used_when_named():
    template = synth(userPoolId="eu-west-1_AbC123", userPoolClientIds="c1,c2")[1]
    assert resources(template, "AWS::Cognito::UserPool") == {}
    env = resources(template, "AWS::Lambda::Function")[function_id(template, "connect.handler")]["Properties"]
    variables = json.dumps(env["Environment"]["Variables"])
    assert "https://cognito-idp.eu-west-1." in variables and "eu-west-1_AbC123" in variables and "c1,c2" in variables


def test_an_existing_pool_with_the_updated_issuer_is_trusted_under_that_issuer():
    # such a pool's tokens say iss=https://issuer-cognito-idp.<region>...; any other would be a 401
    template = synth(userPoolId="eu-west-1_AbC123", userPoolClientIds="c1", userPoolIssuer="updated")[1]
    env = resources(template, "AWS::Lambda::Function")[function_id(template, "connect.handler")]["Properties"]
    assert "https://issuer-cognito-idp.eu-west-1." in json.dumps(env["Environment"]["Variables"]["TOKEN_ISSUER"])


def test_the_created_pools_issuer_is_pinned_to_the_one_connect_trusts(template):
    [pool] = resources(template, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["IssuerConfiguration"] == {"Type": "ORIGINAL"}
    updated = synth(userPoolIssuer="updated")[1]
    [pool] = resources(updated, "AWS::Cognito::UserPool").values()
    assert pool["Properties"]["IssuerConfiguration"] == {"Type": "UPDATED"}
    env = resources(updated, "AWS::Lambda::Function")[function_id(updated, "connect.handler")]["Properties"]
    assert "https://issuer-cognito-idp." in json.dumps(env["Environment"]["Variables"]["TOKEN_ISSUER"])


@pytest.mark.parametrize(
    "context",
    [
        {"auth": "none"},
        {"userPoolId": "eu-west-1_AbC123"},
        {"instance": "has space"},
        {"stage": "a/b"},
        {"connectionTtlHours": "0"},
        {"logRetentionDays": "13"},
        {"retainData": "maybe"},
        {"userPoolId": "nope", "userPoolClientIds": "c"},
        {"throttleRate": "0"},
        {"connectThrottleBurst": "lots"},
        {"accessLogs": "maybe"},
        {"maxContentBytes": "12289"},  # a 12 KB message with its 12 KB quote could not be posted in 32 KB
        {"maxContentBytes": "0"},
        {"userPoolIssuer": "new"},
        {"alarmEmail": "not an address"},
        {"domainName": "chat.example.com"},  # without its certificate
        {"certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b"},  # without a domain
        {"domainName": "not a domain", "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b"},
        {"domainName": "chat.example.com", "certificateArn": "arn:aws:iam::123456789012:server-certificate/x"},
        {"memoryMb": "64"},  # below Lambda's 128 MB
        {"memoryMb": "lots"},
    ],
)
def test_bad_context_is_refused_with_a_clear_message(context):
    with pytest.raises(ConfigError):
        StackConfig.from_context(context.get)


def test_template_snapshot(snapshot):
    template = synth()[1].to_json()
    text = json.dumps(template, sort_keys=True)
    for key in {
        r["Properties"]["Code"]["S3Key"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"
    }:
        text = text.replace(key, "<asset hash>.zip")
    assert json.loads(text) == snapshot(extension_class=JSONSnapshotExtension)


def index_names(template) -> dict[str, set[str]]:
    """Per table (by its construct id: Messages, ...), the names of its global secondary indexes."""
    return {
        re.sub(r"^Storage|[0-9A-F]{8}$", "", logical_id): {
            i["IndexName"] for i in t["Properties"].get("GlobalSecondaryIndexes", [])
        }
        for logical_id, t in resources(template, "AWS::DynamoDB::GlobalTable").items()
    }


def test_the_upgrade_changes_one_index_per_table_per_deploy():
    # CloudFormation creates or deletes one global secondary index per table per update,
    # and cannot change an index's projection: README, "Upgrading". Before history-index
    # (the version 2cdfab4, whose own steps reach it from older stacks):
    before = {
        "Connections": {"connections-by-user"},
        "Messages": {"pending-index", "conversation-index", "replies-index", "unread-index"},
        "Conversations": {"conversations-by-user"},
        "Contents": set(),
    }
    step_one = index_names(synth(keepConversationIndex="true")[1])
    now = index_names(synth()[1])
    for older, newer in ((before, step_one), (step_one, now)):
        for table in older:
            assert len(older[table] ^ newer[table]) <= 1, (table, older[table], newer[table])
    assert step_one["Messages"] == before["Messages"] | {"history-index"}
    assert now["Messages"] == {"pending-index", "replies-index", "unread-index", "history-index"}
    assert now == {**before, "Messages": now["Messages"]}


def test_during_the_upgrade_history_reads_the_index_that_is_there():
    def history_index(template) -> set[str]:
        found = resources(template, "AWS::Lambda::Function").values()
        return {f["Properties"]["Environment"]["Variables"].get("HISTORY_INDEX") for f in found}

    assert history_index(synth()[1]) == {"history-index"}
    # the new index is created (and built) in the first deploy: the old one is read until the second
    assert history_index(synth(keepConversationIndex="true")[1]) == {"conversation-index"}


def test_the_flag_of_an_upgrade_this_version_cannot_make_is_refused_with_the_way():
    with pytest.raises(ConfigError, match="git checkout 2cdfab4"):
        StackConfig.from_context({"keepUserIdIndex": "true"}.get)
    assert StackConfig.from_context({"keepUserIdIndex": "false"}.get).keep_conversation_index is False


CERTIFICATE = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-1111-2222-3333-444455556666"


def test_a_custom_domain_serves_the_stage_while_posts_keep_the_stages_own_url():
    template = synth(domainName="Chat.Example.com", certificateArn=CERTIFICATE)[1]
    template.has_resource_properties(
        "AWS::ApiGatewayV2::DomainName",
        {
            "DomainName": "chat.example.com",
            "DomainNameConfigurations": [
                Match.object_like({"CertificateArn": CERTIFICATE, "SecurityPolicy": "TLS_1_2"})
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ApiGatewayV2::ApiMapping", {"Stage": "production", "ApiMappingKey": Match.absent()}
    )
    outputs = template.to_json()["Outputs"]
    assert outputs["CustomDomainUrl"]["Value"] == "wss://chat.example.com"
    assert "RegionalDomainName" in json.dumps(outputs["CustomDomainTarget"])
    # the message function still posts through execute-api, where @connections works
    [message] = [
        f
        for f in resources(template, "AWS::Lambda::Function").values()
        if f["Properties"]["Handler"] == "message.handler"
    ]
    callback = json.dumps(message["Properties"]["Environment"]["Variables"]["CALLBACK_URL"])
    assert ".execute-api." in callback and "example.com" not in callback


def test_without_a_custom_domain_there_is_none():
    template = synth()[1]
    template.resource_count_is("AWS::ApiGatewayV2::DomainName", 0)
    assert not any(k.startswith("CustomDomain") for k in template.to_json()["Outputs"])


def test_api_gateway_may_invoke_each_routes_function_for_that_route_only():
    # the functions' resource policies (AWS::Lambda::Permission), as the local stack reads them
    template = synth(auth="dev")[1].to_json()
    api = websocket_api(template)
    names = {k: k for k, r in template["Resources"].items() if r["Type"] == "AWS::DynamoDB::GlobalTable"}
    refs, attributes = (
        {**names, **aws_refs(template, "us-east-1", "api123")},
        arn_attributes(template, "us-east-1", names),
    )

    def denied(routes) -> dict:
        return uninvokable_routes(template, routes, api.stage, "api123", refs, attributes, resolve, "us-east-1")

    assert denied(api.routes) == {}
    # a route the message function was not given for (an action added without its route)
    assert set(denied({"block": api.routes["sendMessage"]})) == {"block"}
    # nor may one route's permission serve another function
    assert set(denied({"$connect": api.routes["sendMessage"]})) == {"$connect"}
