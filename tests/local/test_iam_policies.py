"""IAM in the local stack (local/iam.py): the policy evaluation, checked against the
examples of AWS's IAM User Guide (policy evaluation logic, the Condition element and its
operators, multivalued keys), and DynamoDB's IAM check in front of dynalite, reached as a
function reaches it: boto3, signed with the function's key."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from local import iam
from local.dynamodb import Dynalite, DynamoDBGuard, dynamodb_calls

ROLE = iam.Principal(arn=f"arn:aws:iam::{iam.ACCOUNT}:role/ExampleRole", name="ExampleFunction")


def allowed(statements, action: str, resource: str = "*", **context) -> bool:
    return iam.evaluate(action, resource, ROLE, context, [iam.Policy.of({"Statement": statements})]).allowed


def statement(effect="Allow", action="*", resource="*", **more) -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource, **more}


# ---- the evaluation logic ---------------------------------------------------------------


def test_a_request_no_statement_allows_is_denied_implicitly():
    decision = iam.evaluate("dynamodb:GetItem", "arn:aws:dynamodb:us-east-1:000000000000:table/Books", ROLE)
    assert not decision.allowed
    assert decision.reason == "no identity-based policy allows the dynamodb:GetItem action"


def test_an_explicit_deny_overrides_any_allow():
    # the guide's example: allow everything on DynamoDB, deny one table
    books = "arn:aws:dynamodb:us-east-1:000000000000:table/Books"
    statements = [statement(action="dynamodb:*"), statement("Deny", "dynamodb:*", books)]
    assert allowed(statements, "dynamodb:GetItem", books.replace("Books", "Music"))
    decision = iam.evaluate("dynamodb:GetItem", books, ROLE, {}, [iam.Policy.of({"Statement": statements})])
    assert not decision.allowed and decision.reason == "an explicit deny in an identity-based policy"


def test_actions_match_with_wildcards_and_without_case_resources_with_case():
    table = "arn:aws:dynamodb:us-east-1:000000000000:table/Books"
    statements = [statement(action="DynamoDB:Get*", resource="arn:aws:dynamodb:*:*:table/Boo?s")]
    assert allowed(statements, "dynamodb:GetItem", table)
    assert not allowed(statements, "dynamodb:PutItem", table)
    assert not allowed(statements, "dynamodb:GetItem", table.replace("Books", "books"))  # ARNs are case sensitive
    assert not allowed(statements, "dynamodb:GetItem", table + "/index/byAuthor")  # a table is not its indexes
    assert allowed(
        [statement(action="dynamodb:Query", resource=table + "/index/*")], "dynamodb:Query", table + "/index/x"
    )


def test_not_action_allows_everything_but_the_actions_it_names():
    # the guide's "NotAction with Allow": everything except IAM
    statements = [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]
    assert allowed(statements, "s3:GetObject")
    assert not allowed(statements, "iam:CreateUser")


def test_not_resource_with_deny_denies_everything_but_the_resources_it_names():
    bucket = "arn:aws:s3:::HRBucket/Payroll"
    statements = [
        statement(action="s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": [bucket, bucket + "/*"]},
    ]
    assert allowed(statements, "s3:GetObject", bucket + "/2026.csv")
    assert not allowed(statements, "s3:GetObject", "arn:aws:s3:::HRBucket/Other/x")


def test_conditions_hold_together_and_a_keys_values_are_alternatives():
    # the guide: several operators or keys are AND, several values of one key are OR
    condition = {"StringEquals": {"events:source": ["app", "billing"], "events:detail-type": "Paid"}}
    statements = [statement(action="events:PutEvents", Condition=condition)]
    assert allowed(statements, "events:PutEvents", **{"events:source": "billing", "events:detail-type": "Paid"})
    assert not allowed(statements, "events:PutEvents", **{"events:source": "billing", "events:detail-type": "Due"})
    assert not allowed(statements, "events:PutEvents", **{"events:source": "other", "events:detail-type": "Paid"})
    assert allowed(
        statements, "events:PutEvents", **{"EVENTS:Source": "app", "events:detail-type": "Paid"}
    )  # keys: any case


def test_a_missing_key_fails_a_condition_but_a_negated_one_or_if_exists_or_null():
    ask = {"StringEquals": {"aws:PrincipalTag/team": "chat"}}
    assert not allowed([statement(Condition=ask)], "s3:GetObject")
    assert allowed([statement(Condition={"StringNotEquals": {"aws:PrincipalTag/team": "ops"}})], "s3:GetObject")
    # the guide's IfExists example: "if the key is present, it must be t1.*"
    if_exists = {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*"]}}
    assert allowed([statement(Condition=if_exists)], "ec2:RunInstances")
    assert allowed([statement(Condition=if_exists)], "ec2:RunInstances", **{"ec2:InstanceType": "t2.micro"})
    assert not allowed([statement(Condition=if_exists)], "ec2:RunInstances", **{"ec2:InstanceType": "m5.large"})
    # Null: true when the key is absent
    assert allowed([statement(Condition={"Null": {"aws:TokenIssueTime": "true"}})], "s3:GetObject")
    assert not allowed([statement(Condition={"Null": {"aws:TokenIssueTime": "false"}})], "s3:GetObject")
    decision = iam.evaluate("s3:GetObject", "*", ROLE, {}, [iam.Policy.of({"Statement": [statement(Condition=ask)]})])
    assert decision.missing_keys == ("aws:principaltag/team",)


def test_the_ssl_only_deny_applies_to_plain_http_alone():
    # the guide's and CDK's enforce_ssl statement
    deny = statement("Deny", "sns:Publish", Condition={"Bool": {"aws:SecureTransport": "false"}})
    statements = [statement(action="sns:Publish"), deny]
    assert allowed(statements, "sns:Publish")  # boto3 on AWS: HTTPS
    assert not allowed(statements, "sns:Publish", **{"aws:SecureTransport": "false"})


def test_numeric_date_ip_and_arn_operators():
    def holds(operator, key, wanted, value) -> bool:
        return allowed([statement(Condition={operator: {key: wanted}})], "s3:GetObject", **{key: value})

    assert holds("NumericLessThanEquals", "s3:max-keys", "10", "10")
    assert not holds("NumericLessThan", "s3:max-keys", "10", "10")
    assert not holds("NumericEquals", "s3:max-keys", "10", "ten")
    assert holds("DateLessThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", "2026-12-08T00:00:00Z")
    assert not holds("DateGreaterThan", "aws:CurrentTime", "2030-01-01T00:00:00Z", "2026-12-08T00:00:00Z")
    assert holds("IpAddress", "aws:SourceIp", "203.0.113.0/24", "203.0.113.7")
    assert not holds("IpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.7")
    assert holds("NotIpAddress", "aws:SourceIp", "203.0.113.0/24", "198.51.100.7")
    # ArnLike compares the six parts one by one: a * does not cross into the account
    pattern = "arn:aws:sqs:*:123456789012:queue*"
    assert holds("ArnLike", "aws:SourceArn", pattern, "arn:aws:sqs:eu-west-1:123456789012:queue1")
    assert not holds("ArnLike", "aws:SourceArn", pattern, "arn:aws:sqs:eu-west-1:999999999999:queue1")
    assert not holds("ArnEquals", "aws:SourceArn", pattern, "not an arn")
    assert holds("StringEqualsIgnoreCase", "aws:username", "Alice", "ALICE")


def test_set_operators_on_multivalued_keys():
    # the guide's examples with aws:TagKeys
    only = {"ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert allowed([statement(Condition=only)], "ec2:CreateTags", **{"aws:TagKeys": ["environment"]})
    assert not allowed([statement(Condition=only)], "ec2:CreateTags", **{"aws:TagKeys": ["environment", "owner"]})
    assert allowed([statement(Condition=only)], "ec2:CreateTags")  # no key: ForAllValues holds
    some = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment"]}}
    assert allowed([statement(Condition=some)], "ec2:CreateTags", **{"aws:TagKeys": ["owner", "environment"]})
    assert not allowed([statement(Condition=some)], "ec2:CreateTags", **{"aws:TagKeys": ["owner"]})
    assert not allowed([statement(Condition=some)], "ec2:CreateTags")


def test_a_resource_policy_allows_the_principals_it_names():
    topic = "arn:aws:sns:us-east-1:000000000000:Alarms"
    policy = iam.Policy.of(
        {
            "Statement": [
                statement(action="sns:Publish", resource=topic, Principal={"Service": "cloudwatch.amazonaws.com"})
            ]
        }
    )
    cloudwatch = iam.Principal(service="cloudwatch.amazonaws.com")
    assert iam.evaluate("sns:Publish", topic, cloudwatch, resource_policy=policy).allowed
    assert not iam.evaluate(
        "sns:Publish", topic, iam.Principal(service="events.amazonaws.com"), resource_policy=policy
    ).allowed
    assert not iam.evaluate("sns:Publish", topic, ROLE, resource_policy=policy).allowed
    # a statement naming the role, or its session, allows it on its own
    for name in (ROLE.arn, ROLE.session_arn):
        names = iam.Policy.of({"Statement": [statement(resource=topic, Principal={"AWS": name})]}, resource=True)
        assert iam.evaluate("sns:Publish", topic, ROLE, resource_policy=names).allowed
    # naming the account leaves it to the account's identity policies
    account = iam.Policy.of({"Statement": [statement(resource=topic, Principal={"AWS": iam.ACCOUNT})]}, resource=True)
    assert not iam.evaluate("sns:Publish", topic, ROLE, resource_policy=account).allowed
    identity = [iam.Policy.of({"Statement": [statement(action="sns:Publish", resource=topic)]})]
    assert iam.evaluate("sns:Publish", topic, ROLE, {}, identity, account).allowed
    # and a deny for the account applies to the role
    deny = iam.Policy.of(
        {"Statement": [statement("Deny", resource=topic, Principal={"AWS": iam.ACCOUNT})]}, resource=True
    )
    assert not iam.evaluate("sns:Publish", topic, ROLE, {}, identity, deny).allowed


def test_a_policy_the_local_stack_cannot_evaluate_stops_it_with_the_reason():
    with pytest.raises(iam.PolicyError, match="condition operator 'BinaryEquals'"):
        iam.Policy.of({"Statement": [statement(Condition={"BinaryEquals": {"k": "QmluYXJ5"}})]})
    with pytest.raises(iam.PolicyError, match="policy variables"):
        iam.Policy.of({"Statement": [statement(resource="arn:aws:s3:::bucket/${aws:username}/*")]})
    with pytest.raises(iam.PolicyError, match="Effect must be Allow or Deny"):
        iam.Policy.of({"Statement": [statement(effect="allow")]})
    with pytest.raises(iam.PolicyError, match="'NullIfExists'"):  # not an operator AWS takes
        iam.Policy.of({"Statement": [statement(Condition={"NullIfExists": {"aws:TokenIssueTime": "true"}})]})
    with pytest.raises(iam.PolicyError, match="needs Principal"):
        iam.Policy.of({"Statement": [statement()]}, "a topic's policy", resource=True)


# ---- DynamoDB: what each request is checked for -------------------------------------------


def test_each_dynamodb_request_is_checked_on_every_table_and_index_it_touches():
    table = "arn:aws:dynamodb:us-east-1:000000000000:table/"
    assert dynamodb_calls("Query", {"TableName": "M", "IndexName": "history"}, "us-east-1", iam.ACCOUNT) == [
        ("dynamodb:Query", table + "M/index/history")
    ]
    batch = {"RequestItems": {"M": {"Keys": []}, "C": {"Keys": []}}}
    assert dynamodb_calls("BatchGetItem", batch, "us-east-1", iam.ACCOUNT) == [
        ("dynamodb:BatchGetItem", table + "M"),
        ("dynamodb:BatchGetItem", table + "C"),
    ]
    transaction = {"TransactItems": [{"Put": {"TableName": "M"}}, {"ConditionCheck": {"TableName": "C"}}]}
    assert dynamodb_calls("TransactWriteItems", transaction, "us-east-1", iam.ACCOUNT) == [
        ("dynamodb:PutItem", table + "M"),
        ("dynamodb:ConditionCheckItem", table + "C"),
    ]
    assert dynamodb_calls("ListTables", {}, "us-east-1", iam.ACCOUNT) == [("dynamodb:ListTables", "*")]


@pytest.fixture(scope="module")
def guarded_dynamodb():
    """dynalite with the IAM check in front of it, on a loop of its own: the guard's port,
    dynalite's port, and the lines it printed. The function's role may read and write
    table Books, and only read table Music."""
    printed: list[str] = []
    arn = "arn:aws:dynamodb:us-east-1:000000000000:table/"
    policy = iam.Policy.of(
        {
            "Statement": [
                statement(action=["dynamodb:GetItem", "dynamodb:PutItem"], resource=arn + "Books"),
                statement(action="dynamodb:GetItem", resource=arn + "Music"),
            ]
        }
    )
    role = iam.Role(ROLE, [policy])
    authorizer = iam.Authorizer({"ExampleFunction": role}, "us-east-1", printed.append)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    db = Dynalite(None)
    guard = DynamoDBGuard(db.port, authorizer, "us-east-1", iam.ACCOUNT, log=printed.append)
    asyncio.run_coroutine_threadsafe(db.start(), loop).result(60)
    asyncio.run_coroutine_threadsafe(guard.start(), loop).result(10)
    admin = client(db.port, "admin")
    for name in ("Books", "Music"):
        admin.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    try:
        yield guard.port, db.port, printed
    finally:
        asyncio.run_coroutine_threadsafe(guard.stop(), loop).result(10)
        asyncio.run_coroutine_threadsafe(db.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)


def client(port: int, key: str):
    return boto3.session.Session().client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        aws_access_key_id=key,
        aws_secret_access_key="local",  # noqa: S106 (never reaches AWS)
    )


def test_a_functions_allowed_calls_reach_dynalite_and_denied_ones_are_answered_as_dynamodb_does(guarded_dynamodb):
    port, _, printed = guarded_dynamodb
    function = client(port, iam.access_key("ExampleFunction"))
    # allowed calls go through, over one kept-alive connection, before and after a denial
    function.put_item(TableName="Books", Item={"id": {"S": "b1"}})
    with pytest.raises(ClientError) as denied:
        function.put_item(TableName="Music", Item={"id": {"S": "m1"}})
    assert function.get_item(TableName="Books", Key={"id": {"S": "b1"}})["Item"] == {"id": {"S": "b1"}}
    # the denial: AccessDeniedException with AWS's message, printed on one line, nothing written
    error = denied.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::000000000000:assumed-role/ExampleRole/ExampleFunction is not authorized to perform: "
        "dynamodb:PutItem on resource: arn:aws:dynamodb:us-east-1:000000000000:table/Music "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert printed[-1] == (
        "denied by IAM: ExampleFunction may not dynamodb:PutItem on arn:aws:dynamodb:us-east-1:000000000000:"
        "table/Music: no identity-based policy allows the dynamodb:PutItem action"
    )
    assert "Item" not in function.get_item(TableName="Music", Key={"id": {"S": "m1"}})


def test_an_unknown_key_or_no_signature_is_refused_before_any_table(guarded_dynamodb):
    port, _, _ = guarded_dynamodb
    with pytest.raises(ClientError) as unknown:
        client(port, "AKIDSOMEONEELSE").get_item(TableName="Books", Key={"id": {"S": "b1"}})
    assert unknown.value.response["Error"]["Code"] == "UnrecognizedClientException"
    unsigned = boto3.session.Session().client(
        "dynamodb",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}",
        config=Config(signature_version=UNSIGNED),
    )
    with pytest.raises(ClientError) as missing:
        unsigned.get_item(TableName="Books", Key={"id": {"S": "b1"}})
    assert missing.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"


def test_pipelined_requests_are_answered_in_their_order_allowed_or_denied(guarded_dynamodb):
    port, _, _ = guarded_dynamodb

    def request(operation: str, body: dict) -> bytes:
        data = json.dumps(body).encode()
        credential = f"{iam.access_key('ExampleFunction')}/20261208/us-east-1/dynamodb/aws4_request"
        return (
            f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.{operation}\r\n"
            "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Date: 20261208T000000Z\r\n"
            f"Authorization: AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=00\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data

    get_book = request("GetItem", {"TableName": "Books", "Key": {"id": {"S": "none"}}})
    put_song = request("PutItem", {"TableName": "Music", "Item": {"id": {"S": "s1"}}})
    # Given three requests sent at once on one connection, the second of them denied
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(get_book + put_song + get_book)
        received = b""
        while received.count(b"HTTP/1.1 ") < 3 or not received.endswith(b"}"):
            received += sock.recv(65536)
    # Then the answers come in the requests' order: the denial between the two reads
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", received)
    assert statuses == [b"200", b"400", b"200"]
    assert b"AccessDeniedException" in received.split(b"HTTP/1.1 ")[2]


def test_a_presigned_request_is_checked_as_a_signed_one(guarded_dynamodb):
    # Given a PutItem that Music's role may not make, authenticated in the query string
    # rather than a header (which dynalite takes too)
    port, _, _ = guarded_dynamodb
    data = json.dumps({"TableName": "Music", "Item": {"id": {"S": "q1"}}}).encode()
    credential = f"{iam.access_key('ExampleFunction')}%2F20261208%2Fus-east-1%2Fdynamodb%2Faws4_request"
    query = f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}&X-Amz-Date=20261208T000000Z"
    query += "&X-Amz-SignedHeaders=host&X-Amz-Signature=00"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            f"POST /?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"
            f"Content-Type: application/x-amz-json-1.0\r\nContent-Length: {len(data)}\r\n\r\n".encode()
            + data
        )
        received = sock.recv(65536)
    # Then it is refused as the signed one would be
    assert received.startswith(b"HTTP/1.1 400 ") and b"AccessDeniedException" in received


@pytest.mark.parametrize(
    "body",
    [
        b'{"TableName":"Music","Item":{"id":{"S":"u1"}},"pad":"\xff"}',  # invalid UTF-8, which Node's reader takes
        b'{"TableName":"Music","Item":{"id":{"S":"u2"}},"pad":' + b"1" * 5000 + b"}",  # past Python's 4,300 digits
        b"[" * 100_000 + b"]" * 100_000,  # nested past Python's recursion limit
        b'["TableName", "Music"]',  # not an object
    ],
)
def test_a_body_the_check_cannot_read_is_refused_not_passed_on_unchecked(guarded_dynamodb, body):
    port, dynalite, _ = guarded_dynamodb
    # Given a PutItem the role may not make, in a body that Python's JSON reader refuses
    credential = f"{iam.access_key('ExampleFunction')}/20261208/us-east-1/dynamodb/aws4_request"
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: DynamoDB_20120810.PutItem\r\n"
        "Content-Type: application/x-amz-json-1.0\r\nX-Amz-Date: 20261208T000000Z\r\n"
        f"Authorization: AWS4-HMAC-SHA256 Credential={credential}, SignedHeaders=host, Signature=00\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        received = sock.recv(65536)
    # Then the check answers it (it never reaches dynalite, which might have run it)
    assert received.startswith(b"HTTP/1.1 400 ") and b"SerializationException" in received
    assert client(dynalite, "admin").scan(TableName="Music")["Count"] == 0


def test_a_denial_is_printed_on_one_line_whatever_the_resource_holds():
    decision = iam.Decision(False, "no identity-based policy allows the x:Y action")
    line = iam.denial_line(ROLE, "x:Y", "arn:aws:x:::a\ndenied by IAM: forged\u2028b", decision)
    assert line.splitlines() == [line] and "\\u000a" in line and "\\u2028" in line
