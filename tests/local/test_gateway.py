"""The gateway with stand-in functions: a failing function becomes API Gateway's
error frame, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import json
import socket
import struct

import aiohttp
import websockets
from aiohttp import web

from local.gateway import Gateway
from local.lambda_pool import InvocationError
from local.ports import free_port
from local.template import WebSocketApi
from local.waiting import until


class Fn:
    def __init__(self, behaviour):
        self.behaviour, self.events = behaviour, []

    async def invoke(self, event, key):
        self.events.append(event)
        return self.behaviour(event)


def fail(event):
    raise InvocationError("RuntimeError: boom")


def test_a_failing_function_gives_the_client_an_internal_server_error_frame_and_the_gateway_goes_on():
    connect, default, echo = Fn(lambda e: {"statusCode": 200}), Fn(fail), Fn(lambda e: None)
    disconnect = Fn(lambda e: None)
    api = WebSocketApi(
        "$request.body.action", "production", {"$connect": "c", "$disconnect": "d", "$default": "x", "echo": "e"}
    )
    port = free_port()

    async def scenario():
        gateway = Gateway(
            api, {"$connect": connect, "$disconnect": disconnect, "$default": default, "echo": echo}, port=port
        )
        await gateway.start()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/production?userId=a&x=1") as ws:
                await ws.send("not json")
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert frame["message"] == "Internal server error" and frame["connectionId"]
                await ws.send(json.dumps({"action": "echo"}))
                await until(lambda: echo.events, what="the echo route's invocation")
            await until(lambda: disconnect.events, what="$disconnect after the close")
        finally:
            await gateway.stop()

    asyncio.run(scenario())
    [event] = connect.events
    assert event["queryStringParameters"] == {"userId": "a", "x": "1"}
    context = event["requestContext"]
    assert context["eventType"] == "CONNECT" and context["routeKey"] == "$connect" and context["stage"] == "production"
    assert echo.events[0]["requestContext"]["routeKey"] == "echo" and echo.events[0]["body"] == '{"action": "echo"}'
    assert default.events[0]["requestContext"]["routeKey"] == "$default"
    assert disconnect.events[0]["requestContext"]["eventType"] == "DISCONNECT"
    ids = {e["requestContext"]["connectionId"] for e in connect.events + echo.events + disconnect.events}
    assert len(ids) == 1


def test_a_frame_too_deep_to_parse_goes_to_default_and_the_connection_keeps_serving():
    connect, default, disconnect = Fn(lambda e: {"statusCode": 200}), Fn(lambda e: None), Fn(lambda e: None)
    api = WebSocketApi("$request.body.action", "production", {"$connect": "c", "$disconnect": "d", "$default": "x"})
    port = free_port()

    async def scenario():
        gateway = Gateway(api, {"$connect": connect, "$disconnect": disconnect, "$default": default}, port=port)
        await gateway.start()
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/production", max_size=None) as ws:
                await ws.send("[" * 15_000 + "]" * 15_000)  # under 32 KB, far past the recursion limit
                await ws.send(json.dumps({"action": "after"}))
                await until(lambda: len(default.events) == 2, what="both frames routed to $default")
            await until(lambda: disconnect.events, what="$disconnect after the close")
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def gateway_with(handshake_delay_s: float = 0.0):
    functions = {
        "$connect": Fn(lambda e: {"statusCode": 200}),
        "$disconnect": Fn(lambda e: None),
        "$default": Fn(lambda e: None),
    }
    api = WebSocketApi("$request.body.action", "production", {k: k for k in functions})
    port = free_port()
    return Gateway(api, functions, port=port, handshake_delay_s=handshake_delay_s), functions, port


def small_buffered_socket(port: int) -> socket.socket:
    """A client socket with a 4 KB receive buffer (a phone on a bad network), connected:
    with websockets' max_queue=1 on it, a client that stops reading fills it at once."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def test_a_post_to_a_client_that_reads_slowly_is_accepted_at_once_and_arrives_in_order():
    # Given a client that does not read at all for now (its socket buffers fill up)
    gateway, functions, port = gateway_with()

    async def scenario():
        await gateway.start()
        try:
            slow = small_buffered_socket(port)
            url = f"ws://127.0.0.1:{port}/production"
            async with websockets.connect(url, sock=slow, max_queue=1, max_size=None) as ws:
                await until(lambda: gateway.connections, what="the connection registered")
                [conn_id] = gateway.connections
                url = f"http://127.0.0.1:{port}/production/@connections/{conn_id}"
                # When 3 MB of frames are posted to it, every post is accepted without waiting for the client
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
                    for i in range(100):
                        async with http.post(url, data=json.dumps({"n": i, "pad": "x" * 30_000})) as reply:
                            assert reply.status == 200
                # Then the client gets them all, in order, when it reads
                assert [json.loads(await ws.recv())["n"] for _ in range(100)] == list(range(100))
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def test_a_client_that_resets_during_the_handshake_still_gets_its_disconnect():
    # Given a handshake that takes a moment after $connect, as on AWS
    gateway, functions, port = gateway_with(handshake_delay_s=0.3)

    async def scenario():
        await gateway.start()
        try:
            # When a client sends its upgrade request and resets the connection before the handshake completes
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /production HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await writer.drain()
            await until(lambda: functions["$connect"].events, what="$connect ran")
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            writer.transport.abort()
            # Then $disconnect runs for it, as for every connection $connect accepted
            await until(lambda: functions["$disconnect"].events, timeout=5, what="$disconnect for the reset client")
        finally:
            await gateway.stop()

    asyncio.run(scenario())
    [connect], [disconnect] = functions["$connect"].events, functions["$disconnect"].events
    assert connect["requestContext"]["connectionId"] == disconnect["requestContext"]["connectionId"]


def test_a_plain_get_of_the_root_gets_the_web_client_and_of_the_stage_426_as_on_api_gateway():
    api = WebSocketApi("$request.body.action", "production", {"$default": "x"})
    port = free_port()

    async def page(request):
        return web.Response(text="<!doctype html>the page", content_type="text/html")

    async def scenario():
        gateway = Gateway(api, {"$default": Fn(lambda e: None)}, port=port, page=page)
        await gateway.start()
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/?userId=alice") as root:
                    assert (root.status, await root.text()) == (200, "<!doctype html>the page")
                async with http.get(f"http://127.0.0.1:{port}/production") as stage:
                    assert stage.status == 426
            async with websockets.connect(f"ws://127.0.0.1:{port}/?userId=a") as ws:  # / still upgrades
                await ws.send(json.dumps({"action": "anything"}))
        finally:
            await gateway.stop()

    asyncio.run(scenario())


def test_a_client_that_stopped_reading_cannot_hold_up_a_stop_it_is_cut_off_and_gets_its_disconnect():
    # Given a client that stopped reading, with more posted to it than the sockets between can hold
    gateway, functions, port = gateway_with()

    async def scenario():
        await gateway.start()
        try:
            stuck = small_buffered_socket(port)
            url = f"ws://127.0.0.1:{port}/production"
            # (close_timeout: its own close, at the end, need not wait for a server that is gone)
            async with websockets.connect(url, sock=stuck, max_queue=1, max_size=None, close_timeout=0.1):
                await until(lambda: gateway.connections, what="the connection registered")
                [conn_id] = gateway.connections
                url = f"http://127.0.0.1:{port}/production/@connections/{conn_id}"
                async with aiohttp.ClientSession() as http:
                    for i in range(200):  # 6 MB: more than the kernel buffers a socket's sends (4 MB here)
                        async with http.post(url, data=json.dumps({"n": i, "pad": "x" * 30_000})) as reply:
                            assert reply.status == 200
                # When the gateway stops (as on Ctrl-C, or for a reset), it does not wait on the
                # client for ever: not even the close frame can go out, so the client is cut off
                await asyncio.wait_for(gateway.stop(), 60)  # (a hang fails here, not the test run)
                # Then it ran the client's $disconnect, as for every connection
                [event] = functions["$disconnect"].events
                assert event["requestContext"]["connectionId"] == conn_id
        finally:
            await gateway.stop()

    asyncio.run(scenario())
