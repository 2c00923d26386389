"""The gateway with stand-in functions: a failing function becomes API Gateway's
error frame, and the gateway keeps serving."""

from __future__ import annotations

import asyncio
import json

import websockets

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
