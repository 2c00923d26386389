"""The local stack's EventBridge bus (local/eventbridge.py), reached as the message
function reaches it: boto3's events client, through the gateway's HTTP server, with
EventBridge's checks and answers."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from local import iam
from local.eventbridge import API_PATH, LIST_PATH, EventBuses
from local.gateway import Gateway
from local.ports import free_port
from local.template import WebSocketApi

BUS = "RealtimeMessagingPushEvents1234"


def entry(detail, **fields) -> dict:
    text = detail if isinstance(detail, str) else json.dumps(detail)
    return {
        "EventBusName": BUS,
        "Source": "realtime-messaging",
        "DetailType": "MessageWaiting",
        "Detail": text,
    } | fields


def with_bus(scenario, authorizer=None, key="local"):
    """Run scenario(events client, base URL, printed lines) against a gateway serving one
    bus (with IAM, if given an authorizer: the client signs with `key`)."""
    printed: list[str] = []
    if authorizer is not None:
        authorizer.log = printed.append
    buses = EventBuses([BUS], "us-east-1", printed.append, authorizer)
    port = free_port()
    api = WebSocketApi("$request.body.action", "production", {})
    client = boto3.session.Session().client(
        "events",
        region_name="us-east-1",
        endpoint_url=f"http://127.0.0.1:{port}{API_PATH}",
        aws_access_key_id=key,
        aws_secret_access_key="local",  # noqa: S106 (never reaches AWS)
    )

    async def run():
        gateway = Gateway(api, {}, port=port, extra_routes=buses.routes())
        await gateway.start()
        try:
            await scenario(client, f"http://127.0.0.1:{port}", printed)
        finally:
            await gateway.stop()

    asyncio.run(run())


async def listed(base: str, query: str = "") -> list[dict]:
    async with aiohttp.ClientSession() as session, session.get(f"{base}{LIST_PATH}{query}") as reply:
        return await reply.json()


def test_an_event_is_listed_as_a_rule_target_gets_it_even_past_the_gateways_64_kib_bodies():
    async def scenario(events, base, printed):
        big = {"recipientId": "bob", "content": "\x7f" * 15_000}  # as \\u007f: 90 KB, over the gateway's 64 KiB
        answer = await asyncio.to_thread(events.put_events, Entries=[entry({"recipientId": "bob"}), entry(big)])
        assert answer["FailedEntryCount"] == 0 and len(answer["Entries"]) == 2
        first, second = await listed(base)
        assert first["detail"] == {"recipientId": "bob"} and second["detail"] == big
        assert first["id"] == answer["Entries"][0]["EventId"]
        assert (first["source"], first["detail-type"], first["region"]) == (
            "realtime-messaging",
            "MessageWaiting",
            "us-east-1",
        )
        too_big = entry({"content": "x" * (256 * 1024)})
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(events.put_events, Entries=[too_big])
        assert refused.value.response["Error"]["Code"] == "ValidationException"

    with_bus(scenario)


def test_bad_entries_are_refused_one_by_one_and_bad_requests_as_a_whole_and_the_bus_goes_on():
    async def scenario(events, base, printed):
        answer = await asyncio.to_thread(
            events.put_events,
            Entries=[
                entry({"a": 1}, EventBusName="no-such-bus"),
                entry('{"a": NaN}'),
                entry("[1, 2]"),
                entry("[" * 20_000 + "]" * 20_000),
                entry({"ok": True}),
            ],
        )
        codes = [e.get("ErrorCode") for e in answer["Entries"]]
        # a bus that does not exist: taken and dropped, as EventBridge does (aws/aws-cli#9186)
        assert codes == [None, "MalformedDetail", "MalformedDetail", "MalformedDetail", None]
        assert answer["FailedEntryCount"] == 3 and "EventId" in answer["Entries"][0]
        assert any("no-such-bus, which does not exist: dropped" in line for line in printed)
        headers = {"X-Amz-Target": "AWSEvents.PutEvents", "Content-Type": "application/x-amz-json-1.1"}
        async with aiohttp.ClientSession() as session:
            for body in (b"not json", b"[" * 20_000, json.dumps({"Entries": []}).encode()):
                async with session.post(f"{base}{API_PATH}", data=body, headers=headers) as reply:
                    assert reply.status == 400 and (await reply.json(content_type=None))["__type"] in (
                        "SerializationException",
                        "ValidationException",
                    )
        assert [e["detail"] for e in await listed(base)] == [{"ok": True}]

    with_bus(scenario)


def test_each_event_is_printed_on_one_line_whatever_it_holds():
    async def scenario(events, base, printed):
        hostile = {"senderName": "a\u2028b\u0085c\x1b[2Jd\u009b\u202e", "content": "line1\nline2\x7f"}
        await asyncio.to_thread(events.put_events, Entries=[entry(hostile, DetailType="Message\nevent FORGED")])
        [line] = printed
        assert line.splitlines() == [line] and line.isprintable()
        assert "\\u2028" in line and "\\u001b" in line and "FORGED" in line
        assert [e["detail"] for e in await listed(base)] == [hostile]  # listed exactly as sent

    with_bus(scenario)


def test_the_list_keeps_only_events_whose_detail_has_each_asked_value():
    async def scenario(events, base, printed):
        details = [{"recipientId": "bob", "senderName": None}, {"recipientId": "carol", "senderName": "None"}]
        await asyncio.to_thread(events.put_events, Entries=[entry(d) for d in details])
        assert [e["detail"] for e in await listed(base, "?recipientId=bob")] == [details[0]]
        assert [e["detail"] for e in await listed(base, "?senderName=null")] == [details[0]]
        assert [e["detail"] for e in await listed(base, "?senderName=None")] == [details[1]]
        assert await listed(base, "?nosuchfield=None") == []

    with_bus(scenario)


def test_each_entry_is_checked_against_its_signers_role_as_eventbridge_does():
    # Given a role that may put only MessageWaiting events from realtime-messaging, on BUS
    # (the message function's statement in the template)
    allow = {
        "Effect": "Allow",
        "Action": "events:PutEvents",
        "Resource": f"arn:aws:events:us-east-1:{iam.ACCOUNT}:event-bus/{BUS}",
        "Condition": {"StringEquals": {"events:source": "realtime-messaging", "events:detail-type": "MessageWaiting"}},
    }
    principal = iam.Principal(arn=f"arn:aws:iam::{iam.ACCOUNT}:role/MessageRole", name="MessageFunction")
    authorizer = iam.Authorizer(
        {"MessageFunction": iam.Role(principal, [iam.Policy.of({"Statement": [allow]})])}, "us-east-1"
    )

    async def scenario(events, base, printed):
        answer = await asyncio.to_thread(
            events.put_events,
            Entries=[
                entry({"n": 1}),
                entry({"n": 2}, Source="someone-else"),
                entry({"n": 3}, DetailType="MessageRead"),
                entry({"n": 4}, EventBusName="default"),
            ],
        )
        # Then each entry is refused or taken on its own, with EventBridge's codes
        codes = [e.get("ErrorCode") for e in answer["Entries"]]
        assert codes == [
            None,
            "NotAuthorizedForSourceException",
            "NotAuthorizedForDetailTypeException",
            "AccessDeniedException",
        ]
        assert answer["FailedEntryCount"] == 3
        assert [e["detail"] for e in await listed(base)] == [{"n": 1}]
        # and each refusal is printed, naming the function, the action and the bus
        denials = [
            line for line in printed if line.startswith("denied by IAM: MessageFunction may not events:PutEvents")
        ]
        assert len(denials) == 3 and all(":event-bus/" in line for line in denials)

    with_bus(scenario, authorizer, iam.access_key("MessageFunction"))

    async def stranger(events, base, printed):
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(events.put_events, Entries=[entry({"n": 5})])
        assert refused.value.response["Error"]["Code"] == "UnrecognizedClientException"
        assert await listed(base) == []

    with_bus(stranger, authorizer, "AKIDSOMEONEELSE")
