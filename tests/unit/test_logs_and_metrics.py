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

    monkeypatch.setattr(chat.store, "put_new_content", throttled)
    capsys.readouterr()
    chat.send(alice, send_frame("m1", "bob", "the-secret-words"))
    records = lines(capsys)
    [failure] = [r for r in records if r.get("event") == "failed"]
    assert failure["awsErrorCode"] == "ProvisionedThroughputExceededException"
    assert "Traceback" in failure["traceback"] and "put_new_content" in failure["traceback"]
    assert "the-secret-words" not in json.dumps(records)
    [by_code, _] = metrics(records)
    assert by_code["Code"] == "INTERNAL"
