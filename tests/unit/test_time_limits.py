"""Each function ends within its time limit whatever AWS does: its time limit covers the
calls on its fixed path at their slowest (stacks/functions.py), and no call starts that
could not end in time (chat/aws.py), so an invocation answers instead of being cut off."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from chat import aws
from chat.actions import MAX_LEASE_MS
from chat.aws import WORST_DYNAMODB_MS, WORST_POST_MS, OutOfTime
from chat.tokens import JWKS_WORST_MS
from harness import Chat, ack, send_frame
from local.template import functions


def timeouts_ms(template: dict) -> dict[str, int]:
    return {spec["handler"]: spec["timeout"] * 1000 for spec in functions(template).values()}


def test_disconnect_has_time_for_its_calls_at_their_slowest(chat, dev_template):
    # Given a connection that closes
    connection = chat.online("alice")
    chat.requests.reset()
    # When $disconnect runs
    chat.disconnect(connection)
    # Then even if each of its calls took its slowest, it would end within its limit (it
    # did not: two calls at 6 s each against 5 s, so lastSeen went unwritten)
    assert chat.requests.calls == {"DeleteItem": 1, "PutItem": 1}
    assert timeouts_ms(dev_template)["disconnect.handler"] >= chat.requests.total * WORST_DYNAMODB_MS


def test_connect_has_time_for_a_jwks_fetch_and_its_calls_at_their_slowest(chat, cognito_template):
    chat.requests.reset()
    chat.online("alice")
    # in token mode $connect may also fetch the pool's keys first (a cold container)
    assert chat.requests.calls == {"PutItem": 1}
    slowest = JWKS_WORST_MS + chat.requests.total * WORST_DYNAMODB_MS
    assert timeouts_ms(cognito_template)["connect.handler"] >= slowest


@pytest.fixture
def timed_client():
    """The message function's own DynamoDB client (chat.aws), on moto."""
    aws.dynamodb.cache_clear()
    with mock_aws():
        yield aws.dynamodb()
    aws.dynamodb.cache_clear()
    aws.limit_time(None)


def test_a_call_that_could_end_past_the_time_limit_is_not_started(timed_client):
    # Given an invocation with time left for a DynamoDB call at its slowest, but not for
    # the error frame after it
    aws.limit_time(lambda: WORST_DYNAMODB_MS + WORST_POST_MS - 1, reserve_ms=WORST_POST_MS)
    # Then the call is refused before it is sent (the table does not even exist)
    with pytest.raises(OutOfTime, match="GetItem not started"):
        timed_client.get_item(TableName="missing", Key={"id": {"S": "x"}})
    # and with room for both, it goes to DynamoDB, which answers
    aws.limit_time(lambda: WORST_DYNAMODB_MS + WORST_POST_MS, reserve_ms=WORST_POST_MS)
    with pytest.raises(timed_client.exceptions.ResourceNotFoundException):
        timed_client.get_item(TableName="missing", Key={"id": {"S": "x"}})
    # and $connect and $disconnect, which send no frame after it, keep nothing back
    aws.limit_time(lambda: WORST_DYNAMODB_MS, reserve_ms=0)
    with pytest.raises(timed_client.exceptions.ResourceNotFoundException):
        timed_client.get_item(TableName="missing", Key={"id": {"S": "x"}})
    # and outside an invocation nothing is refused
    aws.limit_time(None)
    with pytest.raises(timed_client.exceptions.ResourceNotFoundException):
        timed_client.get_item(TableName="missing", Key={"id": {"S": "x"}})


class RunningOut:
    """A Lambda context with plenty of time for the first `calls` looks at the clock, then
    2.5 s: time for a post, not for a DynamoDB call."""

    def __init__(self, calls: int):
        self.calls = calls

    def get_remaining_time_in_millis(self) -> int:
        self.calls -= 1
        return 20_000 if self.calls >= 0 else 2_500


@pytest.mark.parametrize("looks", range(14))  # a send to an online user looks 12 times
def test_a_send_whose_time_runs_out_answers_and_its_retry_stores_it_once(dynamodb, dev_template, looks):
    # Given the message function's clients, which refuse what would not end in time
    client = aws._within_time(boto3.client("dynamodb", region_name="us-east-1"), WORST_DYNAMODB_MS, keep_reserve=True)
    chat = Chat(client, dev_template)
    alice, bob = chat.online("alice"), chat.online("bob")
    # When a send's time runs out after `looks` looks at the clock
    chat.send(alice, send_frame("m1", "bob"), context=RunningOut(looks))
    # Then alice gets an answer all the same: the ack, or INTERNAL for that message (retry)
    [answer] = chat.take(alice)
    assert answer == ack("m1", answer["data"].get("status")) or (
        answer["type"] == "error" and answer["data"]["code"] == "INTERNAL" and answer["data"]["messageId"] == "m1"
    )
    # and her retry, with time, is acknowledged, with the message stored once and bob's
    chat.send(alice, send_frame("m1", "bob"))
    assert chat.take(alice)[-1]["type"] == "ack"
    assert [m["messageId"] for m in chat.items("messages")] == ["m1"]
    chat.send(bob, {"action": "sync"})
    received = [f for f in chat.frames(bob) if f["type"] == "message"]
    assert {f["data"]["messageId"] for f in received} == {"m1"}


def test_the_slowest_sync_step_and_a_lease_fit_the_message_functions_time_limit(dev_template):
    # The message function's limit, from the template
    [timeout_s] = [f["timeout"] for f in functions(dev_template).values() if f["handler"] == "message.handler"]
    # One message in a sync without ack mode (lease, post, confirm) and the closing syncComplete,
    # every call at its slowest, must fit, leaving a sync at least 10 s of work per invocation
    slowest_step = WORST_DYNAMODB_MS + WORST_POST_MS + WORST_DYNAMODB_MS + WORST_POST_MS
    assert timeout_s * 1000 - slowest_step >= 10_000
    # A lease taken without a Lambda deadline outlasts any invocation
    assert MAX_LEASE_MS > timeout_s * 1000
