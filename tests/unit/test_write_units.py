"""Write units: the meter applies DynamoDB's rules, and a message's status changes cost
the same whatever it says. README.md ("What a message costs") quotes these figures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.write_units import KB, SIZES, WriteMeter, measure

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture
def meter(dynamodb):
    def index(name, key, projection):
        return {
            "IndexName": name,
            "KeySchema": [{"AttributeName": key, "KeyType": "HASH"}],
            "Projection": projection,
        }

    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in ("id", "all", "few")],
        GlobalSecondaryIndexes=[
            index("all-index", "all", {"ProjectionType": "ALL"}),
            index("few-index", "few", {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["small"]}),
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return WriteMeter(dynamodb)


def test_the_meter_bills_the_item_and_each_index_entry_a_write_touches(meter, dynamodb):
    big = {"id": {"S": "a"}, "all": {"S": "x"}, "few": {"S": "y"}, "body": {"S": "z" * 3000}}
    dynamodb.put_item(TableName="t", Item=big)
    # ~3 KB: the item and its ALL copy 3 units each; the INCLUDE entry is small
    assert meter.take() == {
        ("t", "table", "PutItem"): 3,
        ("t", "all-index", "PutItem"): 3,
        ("t", "few-index", "PutItem"): 1,
    }
    key = {"id": {"S": "a"}}
    dynamodb.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET #n = :v",
        ExpressionAttributeNames={"#n": "note"},
        ExpressionAttributeValues={":v": {"S": "1"}},
    )
    # an attribute the INCLUDE index does not hold: only the item and the ALL copy are rewritten
    assert meter.take() == {("t", "table", "UpdateItem"): 3, ("t", "all-index", "UpdateItem"): 3}
    dynamodb.update_item(
        TableName="t",
        Key=key,
        UpdateExpression="SET #f = :v",
        ExpressionAttributeNames={"#f": "few"},
        ExpressionAttributeValues={":v": {"S": "2"}},
    )
    # a changed index key: the old entry deleted and the new one put
    assert meter.take() == {
        ("t", "table", "UpdateItem"): 3,
        ("t", "all-index", "UpdateItem"): 3,
        ("t", "few-index", "UpdateItem"): 2,
    }
    dynamodb.update_item(TableName="t", Key=key, UpdateExpression="REMOVE #a", ExpressionAttributeNames={"#a": "all"})
    # out of a sparse index: its entry deleted
    assert meter.take() == {("t", "table", "UpdateItem"): 3, ("t", "all-index", "UpdateItem"): 3}
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(TableName="t", Item=big, ConditionExpression="attribute_not_exists(id)")
    assert meter.take() == {("t", "table", "PutItem"): 3}  # a failed condition is billed, and writes nothing


@pytest.fixture(scope="module")
def figures(dev_template):
    return measure(dev_template)


def test_what_a_message_says_costs_once_and_its_status_changes_cost_the_same_at_any_size(figures):
    small, large = (figures[name] for name in SIZES)
    for kind in small:
        for step in small[kind]:
            if step == "sendMessage":  # the content is written once, to its own table
                contents = {k: n for k, n in large[kind][step].items() if "Contents" in k[0]}
                assert sum(contents.values()) == (12 * KB + 4 * KB) // KB + 1  # and its ids: 17
                reply = {k: n for k, n in large[kind][step].items() if k[1] == "replies-index"}
                assert sum(reply.values()) == 1  # (the large one is a reply: its entry in replies-index)
                rest = {k: n for k, n in large[kind][step].items() if k not in contents and k not in reply}
                assert rest == {k: n for k, n in small[kind][step].items() if "Contents" not in k[0]}, kind
            else:  # confirm, markDelivered, sync, markRead: the same units at 1 KB and 16 KB
                assert small[kind][step] == large[kind][step], (kind, step)
    # and what those steps cost: the row and its index entries, a few hundred bytes each
    steps = {(kind, step): sum(units.values()) for kind in small for step, units in small[kind].items()}
    assert {k: n for k, n in steps.items() if k[1] != "sendMessage"} == {
        # history-index holds nothing that changes: no status change writes to it
        ("online, without ack mode", "markRead"): 2,  # the row, out of unread-index
        ("online, ack mode", "markDelivered"): 2,  # the row, out of pending-index
        ("online, ack mode", "markRead"): 2,
        ("offline, then sync", "sync"): 4,  # the lease (the row and its pending-index entry) and the confirmation
        ("offline, then sync", "markRead"): 2,
    }


def test_the_readme_quotes_the_measured_write_units(figures):
    text = README.read_text()
    for kind in figures["1 KB"]:
        send = [sum(figures[s][kind]["sendMessage"].values()) for s in SIZES]
        life = [sum(sum(c.values()) for c in figures[s][kind].values()) for s in SIZES]
        row = "| " + " | ".join([kind, *map(str, send + life)]) + " |"
        assert row in text, f"README.md should have the row {row}"
    assert re.search(r"make units", text)
