"""The local stack, end to end, with real WebSocket clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import websockets
import websockets.exceptions  # (websockets loads it lazily: on its own, a test could find it missing)
from botocore.exceptions import ClientError

from clients import Client, connection_ids, descendants, processes_mentioning, run, still_running
from harness import send_frame
from local.issuer import LocalIssuer
from local.launcher import ROOT
from local.ports import free_port
from local.waiting import until, wait_until

# The frame the first client (an iOS app) sends, as in the README's wscat example.
IOS_CLIENT_FRAME = {
    "action": "sendMessage",
    "messageId": "test-123",
    "conversationId": "conv-1",
    "senderId": "test-user-1",
    "senderName": "Test User",
    "recipientId": "test-user-2",
    "content": "Hello from wscat!",
    "timestamp": "2025-10-21T10:30:00Z",
}


def test_the_ios_clients_frame_reaches_an_online_recipient_at_once(stack):
    async def scenario():
        bob = await Client.connect(stack.url, "test-user-2")  # wscat -c 'ws://127.0.0.1:8080?userId=test-user-2'
        alice = await Client.connect(stack.url, "test-user-1")
        await alice.send(IOS_CLIENT_FRAME)
        message = await bob.next("message")
        expected = {k: v for k, v in IOS_CLIENT_FRAME.items() if k != "action"} | {"status": "delivered"}
        assert {k: v for k, v in message["data"].items() if k != "sentAt"} == expected  # and the server's sentAt
        ack = (await alice.next("ack"))["data"]
        sent_at = message["data"]["sentAt"]
        assert ack == {"messageId": "test-123", "status": "delivered", "sentAt": sent_at, "conversationId": "conv-1"}

    run(scenario())
    # Then the DynamoDB requests on real storage are the README's: 12 for a cold first message
    # of a conversation (with the app's own id) to a recipient online without ack mode
    wait_until(lambda: stack.invocations("sendMessage") == 1)
    assert stack.calls("sendMessage") == {
        "invocations": 1,
        "dynamodb.GetItem": 3,  # the caller's connection (cold container), the conversation (new), the messageId
        "dynamodb.PutItem": 4,  # the claim of the conversation, the pair's canonical one, the content, the row
        "dynamodb.Query": 2,  # the recipient's connections, the sender's other connections
        "dynamodb.UpdateItem": 3,  # the confirmation after posting (the row was stored leased), each user's row
        "apigatewaymanagementapi.PostToConnection": 2,  # the message to bob, the ack to alice
    }
    assert stack.calls("$connect") == {"invocations": 2, "dynamodb.PutItem": 2}
    # each asked DynamoDB what it consumed: the local server counts a write's table units only
    units = stack.stats()["sendMessage"]
    assert units["units.dynamodb.PutItem"] >= 4 and units["units.dynamodb.Query"] > 0


def test_online_delivery_reaches_every_device_of_both_users(stack):
    async def scenario():
        a1, a2 = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "alice")
        b1, b2 = await Client.connect(stack.url, "bob"), await Client.connect(stack.url, "bob")
        await a1.send(send_frame("m1", "bob"))
        for device in (b1, b2, a2):
            assert (await device.next("message"))["data"]["messageId"] == "m1"
        assert (await a1.next())["type"] == "ack"
        assert (await a1.synced())[0] == []  # the sending device gets the ack only (its send posts the ack last)

    run(scenario())


def test_an_offline_recipient_gets_everything_on_sync_in_order_exactly_once(stack):
    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        ids = [f"m{i}" for i in range(12)]
        acks = []
        for mid in ids:  # each after the one before is stored (a connection's frames run at the same time)
            await alice.send(send_frame(mid, "bob"))
            acks.append(await alice.next("ack"))
        assert {a["data"]["status"] for a in acks} == {"sent"}
        bob = await Client.connect(stack.url, "bob")
        await bob.send({"action": "sync"})
        got = await bob.collect(len(ids), "message")
        assert [m["data"]["messageId"] for m in got] == ids
        assert (await bob.next())["data"] == {"count": len(ids), "more": False}  # syncComplete
        await bob.send({"action": "sync"})
        assert await bob.next() == {"type": "syncComplete", "data": {"count": 0, "more": False}}  # nothing twice
        receipts = await alice.collect(len(ids), "receipt")
        assert [(r["data"]["messageId"], r["data"]["status"]) for r in receipts] == [(m, "delivered") for m in ids]

    run(scenario())


def test_read_receipts_and_delete(stack):
    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        await alice.send(send_frame("m1", "bob", "to be deleted", conversationId="conv-1"))
        await bob.next("message")
        await alice.next("ack")
        await bob.send({"action": "markRead", "messageIds": ["m1"]})
        receipt = await alice.next("receipt")
        assert receipt["data"] == {"messageId": "m1", "conversationId": "conv-1", "status": "read"}
        await alice.send({"action": "deleteMessage", "messageId": "m1"})
        notice = {"type": "messageDeleted", "data": {"messageId": "m1", "conversationId": "conv-1"}}
        assert await bob.next("messageDeleted") == notice
        assert await alice.next("messageDeleted") == notice

    run(scenario())


@pytest.mark.slow
def test_ten_concurrent_sends_of_one_message_store_it_once_and_deliver_it_once(start_stack):
    stack = start_stack(None, "--workers", "4")  # four message-function workers: real concurrency

    async def scenario():
        # Given bob online, and alice on ten devices that all send the same message at once
        bob = await Client.connect(stack.url, "bob")
        devices = [await Client.connect(stack.url, "alice") for _ in range(10)]
        frame = send_frame("dup-1", "bob")
        await asyncio.gather(*(device.send(frame) for device in devices))
        # Then every device is acknowledged, and bob gets the message exactly once
        for device in devices:
            assert (await device.next("ack"))["data"]["messageId"] == "dup-1"
        assert (await bob.next("message"))["data"]["messageId"] == "dup-1"
        await until(lambda: stack.invocations("sendMessage") == 10, what="all ten sends returned")
        assert await bob.synced() == ([], {"count": 0, "more": False})  # nothing more, and nothing left to sync
        # and alice's other devices see it at most once each
        for device in devices:
            await device.synced()  # (every frame it got is in device.received)
            assert sum(f["type"] == "message" for f in device.received) <= 1

    run(scenario())
    messages = next(t for t in stack.dynamodb().list_tables()["TableNames"] if "Messages" in t)
    assert stack.dynamodb().scan(TableName=messages, Select="COUNT")["Count"] == 1  # test-only look


@pytest.mark.slow
def test_every_error_code_over_the_wire(stack):
    async def scenario():
        alice, mallory = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "mallory")

        async def error_of(client, frame, timeout=10):
            await client.send(frame)
            return (await client.next("error", timeout))["data"]

        assert (await error_of(alice, "not json"))["code"] == "BAD_REQUEST"
        assert (await error_of(alice, {"action": "wave"}))["code"] == "UNKNOWN_ACTION"
        assert (await error_of(mallory, send_frame("m1", "bob", senderId="alice")))["code"] == "FORBIDDEN"
        await alice.send(send_frame("m1", "bob"))
        await alice.next("ack")
        assert (await error_of(mallory, send_frame("m1", "bob")))["code"] == "CONFLICT"
        assert (await error_of(mallory, {"action": "deleteMessage", "messageId": "m1"}))["code"] == "FORBIDDEN"

        # INTERNAL: the database goes away under a running stack; the client is told to retry
        for pid in _pids_listening(stack.dynamodb_port):
            subprocess.run(["kill", "-STOP", str(pid)], check=True)
        try:
            error = await error_of(alice, send_frame("m2", "bob"), timeout=60)  # after boto3's retries
        finally:
            for pid in _pids_listening(stack.dynamodb_port):
                subprocess.run(["kill", "-CONT", str(pid)], check=True)
        assert error["code"] == "INTERNAL" and error["messageId"] == "m2"
        assert (await error_of(alice, send_frame("m2", "bob", "")))["code"] == "BAD_REQUEST"
        await alice.send(send_frame("m2", "bob"))  # the retry goes through
        assert (await alice.next("ack"))["data"]["messageId"] == "m2"

    run(scenario())


def _pids_listening(port: int) -> list[int]:
    return processes_mentioning(f"--port {port}")


def test_connect_is_refused_before_the_upgrade_without_a_user(stack):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
            await websockets.connect(stack.url)
        assert refused.value.response.status_code == 401

    run(scenario())


def test_disconnect_runs_on_an_abrupt_close(stack):
    async def scenario():
        bob = await Client.connect(stack.url, "bob")
        assert len(connection_ids(stack)) == 1  # written by $connect, before the handshake completed
        bob.ws.transport.abort()  # no close frame, TCP reset
        await until(lambda: len(connection_ids(stack)) == 0, what="$disconnect removing the aborted connection")

    run(scenario())


def _age_connections(stack, seconds: int) -> None:
    """Make every connection row look older (test-only write to the table)."""
    db = stack.dynamodb()
    table = next(t for t in db.list_tables()["TableNames"] if "Connections" in t)
    for item in db.scan(TableName=table)["Items"]:
        older = str(int(item["connectedAt"]["N"]) - seconds)
        db.update_item(
            TableName=table,
            Key={"connectionId": item["connectionId"]},
            UpdateExpression="SET connectedAt = :t",
            ExpressionAttributeValues={":t": {"N": older}},
        )


@pytest.mark.slow
@pytest.mark.parametrize("dead", ["bob", "alice"], ids=["recipient's device", "sender's other device"])
def test_a_dead_connection_is_cleaned_up_by_410_and_the_message_waits_for_sync(start_stack, dead):
    stack = start_stack()  # its own: it kills it

    # Given a connection row that outlives its connection (the stack crashed: no close frame, no $disconnect)
    async def before():
        await Client.connect(stack.url, dead)

    run(before())
    stack.kill()
    stack.start()
    assert len(connection_ids(stack)) == 1
    _age_connections(stack, 3600)  # it died an hour ago, well past any handshake

    async def after():
        # When alice messages bob, the post to the dead connection answers 410: the row goes
        alice = await Client.connect(stack.url, "alice")
        await alice.send(send_frame("m1", "bob"))
        assert (await alice.next("ack"))["data"]["status"] == "sent"
        await until(lambda: len(connection_ids(stack)) == 1, what="the dead row removed: alice's live one only")
        await until(lambda: '"event":"connection_gone"' in stack.log_text(), what="the 410 in the log")
        # And the message waits: bob gets it, once, when he comes back and syncs
        bob = await Client.connect(stack.url, "bob")
        await bob.send({"action": "sync"})
        assert (await bob.next())["data"]["messageId"] == "m1"
        assert await bob.next() == {"type": "syncComplete", "data": {"count": 1, "more": False}}

    run(after())


@pytest.mark.slow
def test_a_restart_loses_no_stored_message(start_stack):
    stack = start_stack()  # its own: it restarts it

    async def send_all():
        alice = await Client.connect(stack.url, "alice")
        for i in range(5):
            await alice.send(send_frame(f"m{i}", "bob"))
        await alice.collect(5, "ack")
        await alice.close()

    run(send_all())
    stack.stop()
    stack.start()

    async def receive_all():
        bob = await Client.connect(stack.url, "bob")
        await bob.send({"action": "sync"})
        # (all five: their order is the server's sentAt, and a connection's frames run at the same time)
        assert sorted(m["data"]["messageId"] for m in await bob.collect(5, "message")) == [f"m{i}" for i in range(5)]

    run(receive_all())


@pytest.mark.slow
def test_ctrl_c_closes_every_connection_and_runs_disconnect_for_each(start_stack):
    stack = start_stack()  # its own: it stops it

    async def scenario():
        # Given two users connected
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        assert len(connection_ids(stack)) == 2
        # When the developer presses Ctrl-C (the terminal signals the whole process group)
        await asyncio.to_thread(stack.stop)
        # Then each client is told the server is going away
        for client in (alice, bob):
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await client.next(timeout=5)
            assert closed.value.rcvd.code == 1001

    run(scenario())
    # and $disconnect ran for both before the database stopped: a restart finds no rows
    stack.start()
    assert len(connection_ids(stack)) == 0
    assert "$disconnect failed" not in stack.log_text()


def test_a_frame_over_32_kb_closes_the_connection_with_1009_as_api_gateway_does(stack):
    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        await alice.send(json.dumps({"action": "markRead", "messageIds": ["x"], "pad": "x" * (31 * 1024)}))
        assert (await alice.next("error"))["data"]["code"] == "FORBIDDEN"  # just under: served
        await alice.send(json.dumps({"action": "sync", "pad": "x" * (32 * 1024)}))
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await alice.next(timeout=5)
        assert closed.value.rcvd.code == 1009

    run(scenario())


def test_an_idle_connection_is_closed_with_1001(start_stack):
    stack = start_stack(None, "--idle-timeout", "1")

    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await alice.next(timeout=5)
        assert closed.value.rcvd.code == 1001

    run(scenario())


def test_management_api_answers_410_for_an_unknown_connection(stack):
    with pytest.raises(ClientError) as gone:
        stack.management_api().post_to_connection(ConnectionId="nope", Data=b"x")
    assert gone.value.response["Error"]["Code"] == "GoneException"
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_token_mode_accepts_a_good_token_and_refuses_a_bad_one(start_stack, cognito_cdk_out):
    stack = start_stack(cognito_cdk_out)
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "local",
            "token",
            "alice",
            "--port",
            str(stack.port),
            "--state-dir",
            str(stack.state_dir),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    async def scenario():
        alice = await Client.connect(stack.url, token=token)
        await alice.send(send_frame("m1", "bob"))
        assert (await alice.next("ack"))["data"]["messageId"] == "m1"
        for bad in (token[:-4] + "AAAA", "garbage"):
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(f"{stack.url}?token={bad}")
            assert refused.value.response.status_code == 401
        with pytest.raises(websockets.exceptions.InvalidStatus):  # dev-style ?userId= is not accepted
            await websockets.connect(f"{stack.url}?userId=alice")

    run(scenario())


def test_a_reset_leaves_nothing_of_what_came_before(stack):
    async def scenario():
        # Given alice connected, and a message to bob (offline) stored and put on the bus
        alice = await Client.connect(stack.url, "alice")
        await alice.send(send_frame("m1", "bob"))
        assert (await alice.next("ack"))["data"]["status"] == "sent"
        await until(lambda: stack.push_events(recipientId="bob"), what="the push event for bob")
        # When the stack is reset (POST /@local/reset), as an app's test suite would between tests
        await asyncio.to_thread(stack.reset)
        # Then alice was told the service restarts, and her $disconnect ran before the tables emptied
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await alice.next(timeout=5)
        assert closed.value.rcvd.code == 1012
        log = stack.log_text()
        assert '"disconnected"' in log and log.index('"disconnected"') < log.index("reset: every connection closed")
        # and nothing is left: no connection, no figures, no push event, no message to sync
        assert (connection_ids(stack), stack.stats(), stack.push_events()) == ([], {}, [])
        bob = await Client.connect(stack.url, "bob")
        assert await bob.synced() == ([], {"count": 0, "more": False})
        # and the stack serves as before
        alice = await Client.connect(stack.url, "alice")
        await alice.send(send_frame("m1", "bob"))
        assert (await bob.next("message"))["data"]["messageId"] == "m1"

    run(scenario())


def test_a_reset_under_a_flood_drops_what_is_queued_and_nothing_of_it_lands_after(stack):
    async def scenario():
        # Given ten clients sending as fast as their loop lets them: far more than the
        # functions can take
        clients = [await Client.connect(stack.url, f"u{i}") for i in range(10)]

        async def flood(i: int, client: Client) -> None:
            with contextlib.suppress(websockets.exceptions.ConnectionClosed):
                for n in itertools.count():
                    await client.send(send_frame(f"f{i}-{n}", f"u{(i + 1) % 10}"))
                    await asyncio.sleep(0)  # (so the clients' loop also reads, the close frame too)

        floods = [asyncio.create_task(flood(i, c)) for i, c in enumerate(clients)]
        await until(lambda: stack.in_flight()["invocations"] > 50, what="a backlog of invocations")
        # When the stack is reset
        await asyncio.to_thread(stack.reset)
        # Then the backlog is gone with the connections: nothing runs, nothing was counted
        # after it, and nothing of it was stored
        assert (stack.in_flight(), stack.stats()) == ({"frames": 0, "invocations": 0}, {})
        db = stack.dynamodb()
        for table in db.list_tables()["TableNames"]:
            assert db.scan(TableName=table, Select="COUNT")["Count"] == 0, table
        await asyncio.gather(*floods)

    run(scenario())


def test_nothing_listens_after_the_stack_stops(start_stack):
    stack = start_stack()
    stack.stop()
    for port in (stack.port, stack.dynamodb_port):
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0


def test_a_kill_9_of_the_stacks_process_alone_ends_all_it_started_even_what_is_stopped(start_stack):
    # Given a stack whose container server and message container are stopped (SIGSTOP), as a
    # debugger or a starved machine may leave them, and so cannot clean up after themselves
    stack = start_stack()
    family = descendants(stack.proc.pid)
    comm = {pid: Path(f"/proc/{pid}/comm").read_text().strip() for pid, _ in family}
    stopped = [pid for pid, name in comm.items() if name in ("lambda-server", "lambda message")]
    assert len(stopped) == 2, comm
    for pid in stopped:
        os.kill(pid, signal.SIGSTOP)
    # When the stack's own process is killed, not its process group (kill -9 <pid>)
    os.kill(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait(timeout=10)
    # Then every process it started ends: dynalite, the container server, each container
    wait_until(lambda: not still_running(family), timeout=10, what="every process the stack started ended")


def test_the_connections_api_refuses_a_post_over_32_kb_as_api_gateway_does(stack):
    api = stack.management_api()

    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        [row] = connection_ids(stack)
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(api.post_to_connection, ConnectionId=row, Data=b"x" * (32 * 1024 + 1))
        assert refused.value.response["Error"]["Code"] == "PayloadTooLargeException"
        await asyncio.to_thread(api.post_to_connection, ConnectionId=row, Data=b'{"fits":1}')
        assert await alice.next() == {"fits": 1}

    run(scenario())


def test_a_longest_reply_to_a_longest_message_crosses_the_gateway(stack):
    async def scenario():
        alice, bob = await Client.connect(stack.url, "alice"), await Client.connect(stack.url, "bob")
        await bob.send(send_frame("m0", "alice", "b" * 12288))
        await alice.next("message")
        await alice.send(send_frame("m1", "bob", "a" * 12288, replyToMessageId="m0"))
        reply = (await bob.next("message"))["data"]
        assert reply["messageId"] == "m1" and reply["replyToContent"] == "b" * 12288

    run(scenario())


@pytest.mark.slow
def test_reconnecting_under_a_stream_of_sends_orphans_no_connection(stack):
    # Given alice streaming messages to bob as fast as her acks come back
    async def scenario():
        alice = await Client.connect(stack.url, "alice")
        streaming = True

        async def stream():
            i = 0
            while streaming:
                await alice.send(send_frame(f"s{i}", "bob"))
                await alice.next("ack")
                i += 1
            return i

        sender = asyncio.create_task(stream())
        # When bob reconnects again and again (a phone switching networks), each new
        # connection hit by posts during its handshake (410s)
        orphaned = 0
        for _ in range(15):
            bob = await Client.connect(stack.url, "bob", ack=1)
            # Then each new connection is registered: its sync is answered, not refused
            await bob.send({"action": "sync"})
            while (frame := await bob.next())["type"] not in ("syncComplete", "error"):
                pass
            orphaned += frame["type"] == "error"
            bob.ws.transport.abort()
        streaming = False
        sent = await sender
        assert sent > 15 and orphaned == 0, f"{orphaned} of 15 reconnects were orphaned ({sent} messages sent)"

    run(scenario())


def test_a_second_make_local_on_the_same_state_stops_at_once_naming_the_first_and_leaves_it_serving(start_stack):
    # Given a stack running on its state directory (make local in one terminal)
    first = start_stack()
    # When make local runs again there (AUTH=token PORT=... in another terminal)
    second = subprocess.run(
        ["make", "--no-print-directory", "local", f"LOCAL_DIR={first.state_dir}", f"PORT={free_port()}", "AUTH=token"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Then it stops before installing or synthesizing anything, in one line that names the
    # first stack's PID and port and how to run a second one
    assert second.returncode != 0 and second.stdout == ""
    [line] = second.stderr.splitlines()
    assert f"(PID {first.proc.pid}, port {first.port}) is using {first.state_dir}" in line
    assert f"make local LOCAL_DIR={first.state_dir}-2 PORT=" in line
    assert not (first.state_dir / "cdk.out").exists()  # make local would synthesize into it
    # and python -m local run, started by hand, is refused the same way
    direct = subprocess.run(
        [sys.executable, "-m", "local", "run", "--cdk-out", str(first.cdk_out), "--state-dir", str(first.state_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode == 1 and f"(PID {first.proc.pid}, port {first.port})" in direct.stderr

    # and the first stack keeps serving
    async def scenario():
        alice, bob = await Client.connect(first.url, "alice"), await Client.connect(first.url, "bob")
        await alice.send(send_frame("m1", "bob"))
        assert (await bob.next("message"))["data"]["messageId"] == "m1"

    run(scenario())


def test_a_refused_token_is_explained_in_the_stacks_output_but_not_to_the_client(
    start_stack, cognito_cdk_out, tmp_path
):
    stack = start_stack(cognito_cdk_out)
    ours = LocalIssuer(stack.state_dir, stack.port)
    tokens = {
        # make token for another port (one with no stack, or another stack's)
        "wrong issuer": LocalIssuer(stack.state_dir, stack.port + 1).token("alice"),
        "expired": ours.token("alice", lifetime_s=-3600),
        # minted with another state directory's key
        "bad signature": LocalIssuer(tmp_path / "elsewhere", stack.port).token("alice"),
    }

    async def scenario():
        for token in tokens.values():
            with pytest.raises(websockets.exceptions.InvalidStatus) as refused:
                await websockets.connect(f"{stack.url}?token={token}")
            assert refused.value.response.status_code == 401  # all the client learns, as on AWS
            assert refused.value.response.body == b"Unauthorized\n"

    run(scenario())
    # each refusal is one warning line in the stack's output, saying why, without the token
    warnings = [line for line in stack.log_text().splitlines() if line.startswith("warning: $connect refused")]
    assert [next(why for why in tokens if why in line) for line in warnings] == list(tokens)
    assert f"make token PORT={stack.port}" in warnings[0]
    assert not any(token in stack.log_text() for token in tokens.values())
