"""DynamoDB's IAM check in front of dynalite (local/dynamodb.py), reached as a function
reaches it: boto3, signed with the function's key. What each request is checked for, and
how a denial is answered: as DynamoDB answers it."""

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
from test_iam_policies import ROLE, statement

from local import iam
from local.dynamodb import Dynalite, DynamoDBGuard, dynamodb_calls


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
