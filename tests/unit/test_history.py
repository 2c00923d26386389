"""history: a conversation's messages, newest first, each with its status and words as
they are now. Each page is one frame API Gateway accepts (32 KB), so a page of large
messages is shorter than its limit, and its cursor continues where it stopped, with no
gap and no repeat."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from chat.tables import Tables
from harness import pages, send_frame


def test_a_history_of_large_messages_comes_in_frame_sized_pages_without_gaps(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    big = chat.settings.max_content_bytes
    for i in range(5):
        chat.send(alice, send_frame(f"m{i}", "bob", f"{i}" * big, conversationId="c1"))
    chat.take(bob)
    found = pages(chat, bob, {"action": "history", "conversationId": "c1", "limit": 50})
    assert len(found) > 1 and all(len(p["messages"]) < 50 for p in found)  # cut by size, not by limit
    assert [m["messageId"] for p in found for m in p["messages"]] == ["m4", "m3", "m2", "m1", "m0"]


def test_a_page_of_exactly_limit_entries_says_whether_there_is_more(chat):
    alice, bob = chat.online("alice"), chat.online("bob")
    for i in range(4):
        chat.send(alice, send_frame(f"m{i}", "bob", conversationId="c1"))
    found = pages(chat, bob, {"action": "history", "conversationId": "c1", "limit": 2})
    assert [len(p["messages"]) for p in found] == [2, 2]  # and no empty third page


def test_history_shows_each_messages_status_now_though_its_index_holds_none(chat):
    # Given three messages to bob, one read, one deleted, one delivered
    alice, bob = chat.online("alice"), chat.online("bob")
    for i in range(3):
        chat.send(alice, send_frame(f"m{i}", "bob", f"text {i}"))
    chat.send(bob, {"action": "markRead", "messageIds": ["m0"]})
    chat.send(alice, {"action": "deleteMessage", "messageId": "m1"})
    conversation = chat.message("m0")["conversationId"]
    # The index history reads holds the keys and the two users only
    [entry] = chat.client.query(
        TableName=chat.settings.messages_table,
        IndexName=chat.settings.history_index,
        KeyConditionExpression="conversationId = :c AND sentAt = :t",
        ExpressionAttributeValues={":c": {"S": conversation}, ":t": {"S": chat.message("m0")["sentAt"]}},
    )["Items"]
    assert set(entry) == {"messageId", "conversationId", "sentAt", "senderId", "recipientId"}
    # When bob reads the history, each message has its status and content as they are now
    chat.take(bob)
    chat.send(bob, {"action": "history", "conversationId": conversation})
    [page] = [f["data"] for f in chat.take(bob) if f["type"] == "history"]
    shown = [(m["messageId"], m["status"], m.get("content"), m.get("isDeleted", False)) for m in page["messages"]]
    assert shown == [
        ("m2", "delivered", "text 2", False),
        ("m1", "delivered", None, True),
        ("m0", "read", "text 0", False),
    ]


@pytest.mark.parametrize("told", ["conversation-index", "history-index"])
def test_history_reads_the_other_index_when_the_one_it_was_told_is_gone_or_still_being_built(chat, monkeypatch, told):
    # Given an upgrade under way: the function was told one index, and DynamoDB refuses it
    # (CloudFormation removes the old index before the functions learn of the new one, and
    # a new index cannot be read while it is being built)
    alice, bob = chat.online("alice"), chat.online("bob")
    for i in range(3):
        chat.send(alice, send_frame(f"m{i}", "bob"))
    conversation = chat.message("m0")["conversationId"]
    tables = chat.services.tables = Tables.open(chat.client, **{**chat.settings.tables, "history_index": told})
    query = chat.client.query

    def refused(**request):
        if request.get("IndexName") == told:
            message = "Cannot read from backfilling global secondary index: " + told
            raise ClientError({"Error": {"Code": "ValidationException", "Message": message}}, "Query")
        return query(**request)

    monkeypatch.setattr(chat.client, "query", refused)
    if told == "history-index":  # (the other one is there, as in the first deploy of the upgrade)
        keys = [("conversationId", "HASH"), ("sentAt", "RANGE")]
        index = {"IndexName": "conversation-index", "Projection": {"ProjectionType": "ALL"}}
        index["KeySchema"] = [{"AttributeName": name, "KeyType": kind} for name, kind in keys]
        chat.client.update_table(
            TableName=chat.settings.messages_table,
            AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
    # When bob reads the history, he gets it all the same
    chat.take(bob)
    chat.send(bob, {"action": "history", "conversationId": conversation})
    [page] = [f["data"] for f in chat.take(bob) if f["type"] == "history"]
    assert [m["messageId"] for m in page["messages"]] == ["m2", "m1", "m0"]
    assert tables.messages.history_index == told
