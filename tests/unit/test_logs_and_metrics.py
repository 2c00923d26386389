"""What an operator gets from CloudWatch: log lines that name their invocation, failures
with a traceback and the AWS error code, and one line of metrics per invocation in the
Embedded Metric Format (docs/operations.md)."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from harness import send_frame


class Context:
    """A Lambda context: its request id and time left."""

    def __init__(self, request_id: str):
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return 20_000


def lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def metrics(records: list[dict]) -> list[dict]:
    """The EMF lines: each names its metrics in _aws.CloudWatchMetrics and holds their values."""
    found = [r for r in records if "_aws" in r]
    for record in found:
        for directive in record["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "RealtimeMessaging"
            for names in directive["Dimensions"]:
                assert all(name in record for name in names)
            assert all(m["Name"] in record for m in directive["Metrics"])
    return found


def test_every_line_of_an_invocation_names_its_request_route_and_connection(chat, capsys):
    alice, _bob = chat.online("alice"), chat.online("bob")
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob"), context=Context("req-1"))
    records = lines(capsys)
    assert records and all(
        (r["requestId"], r["route"], r["connectionId"]) == ("req-1", "sendMessage", alice) for r in records
    )


def test_a_send_counts_a_stored_message_and_whether_a_device_got_it(chat, capsys):
    alice, _bob = chat.online("alice"), chat.online("bob")
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob"))  # bob is online
    chat.send(alice, send_frame("m2", "carol"))  # carol is not
    live, waiting = metrics(lines(capsys))
    assert (live["Action"], live["MessagesStored"], live["DeliveredLive"], live["LeftWaiting"]) == (
        "sendMessage",
        1,
        1,
        0,
    )
    assert (waiting["MessagesStored"], waiting["DeliveredLive"], waiting["LeftWaiting"]) == (1, 0, 1)
    assert live["Duration"] > 0


def test_a_sync_counts_what_it_delivered(chat, capsys):
    alice = chat.online("alice")
    for i in range(3):
        chat.send(alice, send_frame(f"m{i}", "bob"))
    bob = chat.online("bob")
    capsys.readouterr()
    chat.send(bob, {"action": "sync"})
    [synced] = metrics(lines(capsys))
    assert (synced["Action"], synced["DeliveredBySync"]) == ("sync", 3)


def test_error_frames_are_counted_by_code(chat, capsys):
    alice = chat.online("alice")
    capsys.readouterr()
    chat.send(alice, {"action": "sendMessage"})
    by_code, invocation = metrics(lines(capsys))
    assert (by_code["Code"], by_code["ErrorFrames"]) == ("BAD_REQUEST", 1)
    assert invocation["ErrorFrames"] == 1


def test_a_failure_logs_its_traceback_and_aws_error_code_but_never_the_content(chat, capsys, monkeypatch):
    alice = chat.online("alice")

    def throttled(*args, **kwargs):
        error = {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}
        raise ClientError(error, "PutItem")

    monkeypatch.setattr(chat.tables.messages, "put_new_content", throttled)
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob", "the-secret-words"))
    records = lines(capsys)
    [failure] = [r for r in records if r.get("event") == "failed"]
    assert failure["awsErrorCode"] == "ProvisionedThroughputExceededException"
    assert "Traceback" in failure["traceback"] and "put_new_content" in failure["traceback"]
    assert "the-secret-words" not in json.dumps(records)
    [by_code, _] = metrics(records)
    assert by_code["Code"] == "INTERNAL"


def test_the_metrics_line_reports_the_capacity_units_dynamodb_said_each_request_consumed(chat, capsys):
    # What DynamoDB answered, summed apart from the handler: reads (GetItem, Query,
    # BatchGetItem) and writes; every request asked for it
    answered = {"ReadUnits": 0.0, "WriteUnits": 0.0}
    asked = []

    def seen(model, params, **_):
        asked.append(params.get("ReturnConsumedCapacity"))

    def replied(parsed, model, **_):
        consumed = parsed.get("ConsumedCapacity") or []
        for c in consumed if isinstance(consumed, list) else [consumed]:
            kind = "ReadUnits" if model.name in ("GetItem", "Query", "BatchGetItem") else "WriteUnits"
            answered[kind] += c["CapacityUnits"]

    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(bob, send_frame("m0", "alice"))
    chat.client.meta.events.register("before-parameter-build.dynamodb", seen)
    chat.client.meta.events.register("after-call.dynamodb", replied)
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob", replyToMessageId="m0"))
    [line] = metrics(lines(capsys))
    assert asked and set(asked) == {"TOTAL"}
    assert answered["ReadUnits"] > 0 and answered["WriteUnits"] > 0
    assert line["ReadUnits"] == round(answered["ReadUnits"], 1)
    assert line["WriteUnits"] == round(answered["WriteUnits"], 1)
    # plain fields of the line, not metrics (a metric per action would be billed by CloudWatch)
    declared = {m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert not declared & {"ReadUnits", "WriteUnits"}


def test_only_what_happened_is_declared_a_metric_as_each_metric_seen_is_billed_monthly(chat, capsys):
    alice, bob = chat.online("alice"), chat.online("bob")
    chat.send(alice, send_frame("m0", "bob"))
    capsys.readouterr()
    # A send that reached bob: two counts happened, the others did not
    chat.send(alice, send_frame("m1", "bob"))
    [line] = [r for r in lines(capsys) if "Duration" in r]
    declared = [m["Name"] for d in line["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    assert sorted(declared) == ["DeliveredLive", "MessagesStored"]
    assert (line["LeftWaiting"], line["Duration"] > 0) == (0, True)  # still in the line, for Logs Insights
    # An action that counts nothing writes a plain line: no metric at all
    chat.send(bob, {"action": "typing", "conversationId": chat.message("m1")["conversationId"], "state": "start"})
    [line] = [r for r in lines(capsys) if "Duration" in r]
    assert "_aws" not in line and line["Action"] == "typing" and line["ErrorFrames"] == 0
