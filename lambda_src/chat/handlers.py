"""The three Lambda handlers' logic: an API Gateway event in, an action run, a response
out. ../connect.py, ../disconnect.py and ../message.py call in here with the Services
built once per container."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from . import actions, aws, protocol
from .actions import Invocation
from .auth import Authenticator, Unauthorized
from .config import MissingSetting, Settings
from .delivery import Delivery
from .log import bind, count_error, flush, log, log_failure
from .push import PushHandoff
from .tables import Tables


@dataclass
class Services:
    settings: Settings
    tables: Tables
    management_api: Callable[[str], Any]  # stage endpoint -> client with post_to_connection
    events: Callable[[], Any]  # -> client with put_events (push events)
    authenticator: Authenticator | None = None

    @cached_property
    def actions(self) -> dict[str, tuple[Callable, Callable]]:
        return actions.by_name(self.settings)


@lru_cache(maxsize=1)
def default_services() -> Services:
    """Built on first use, once per container; no network until a request needs it."""
    settings = Settings.from_env()
    return Services(
        settings=settings,
        tables=Tables.open(aws.dynamodb(), **settings.tables),
        management_api=aws.management_api,
        events=aws.events,
        authenticator=Authenticator(settings) if settings.auth_mode else None,
    )


@contextmanager
def observed(event: dict, context, action: str, reserve_ms: int = 0):
    """Each log line of the invocation names it (request id, route, connectionId), and its
    metrics go out at its end, however it ends. No AWS call starts that could not end
    before the time limit, with reserve_ms left after a DynamoDB call (chat/aws.py)."""
    request = event["requestContext"]
    request_id = getattr(context, "aws_request_id", None)
    bind(requestId=request_id, route=request.get("routeKey"), connectionId=request.get("connectionId"))
    started = time.perf_counter()
    aws.limit_time(context.get_remaining_time_in_millis if context is not None else None, reserve_ms)
    try:
        yield
    finally:
        aws.limit_time(None)
        flush(action, (time.perf_counter() - started) * 1000)


def on_connect(event: dict, services: Services, context=None) -> dict:
    with observed(event, context, "$connect"):
        return _connect(event, services)


def on_disconnect(event: dict, services: Services, context=None) -> dict:
    with observed(event, context, "$disconnect"):
        connection_id = event["requestContext"]["connectionId"]
        services.tables.connections.delete(connection_id)
        log("info", "disconnected")
        return {"statusCode": 200}


def _connect(event: dict, services: Services) -> dict:
    connection_id = event["requestContext"]["connectionId"]
    query = event.get("queryStringParameters") or {}
    try:
        identity = services.authenticator.identify(query)
    except Unauthorized as exc:
        log("info", "connect_refused", reason=str(exc))
        return {"statusCode": 401, "body": "Unauthorized"}
    ack = query.get("ack", "0")  # 1: this client confirms what it receives (markDelivered)
    if ack not in ("0", "1"):
        log("info", "connect_refused", reason="bad ack")
        return {"statusCode": 400, "body": "ack must be 1 (confirm deliveries with markDelivered) or 0"}
    services.tables.connections.put(
        connection_id,
        identity.user_id,
        services.settings.connection_ttl_seconds,
        ack=ack == "1",
        name=identity.name,
        named=identity.named,
    )
    log("info", "connected", userId=identity.user_id, ack=ack == "1")
    return {"statusCode": 200}


def on_message(event: dict, context, services: Services) -> dict:
    """Every client frame: routed by its ``action``. Never raises; errors become frames."""
    action = event["requestContext"].get("routeKey") or "$default"
    with observed(event, context, action, reserve_ms=aws.WORST_POST_MS):  # for an error frame
        settings = services.settings
        for name, value in (("CALLBACK_URL", settings.callback_url), ("EVENT_BUS_NAME", settings.event_bus_name)):
            if not value:
                raise MissingSetting(name)
        # the stage's execute-api URL, never the request's domain (a custom domain answers 403)
        api = services.management_api(settings.callback_url)
        delivery = Delivery(api, services.tables.connections, event["requestContext"]["connectionId"])
        try:
            _answer(event, context, services, delivery)
        finally:
            delivery.forget_gone()
        return {"statusCode": 200}


def _answer(event: dict, context, services: Services, delivery: Delivery) -> None:
    """Run the frame's action; a refused or failed frame gets an error frame instead."""
    frame: dict = {}
    try:
        frame = protocol.parse_frame(event.get("body"))
        action, parsed = _parse(frame, services)
        run = services.actions[action][1]
        run(_invocation(context, services, delivery), parsed)
        log("info", "handled", action=action)
    except protocol.ProtocolError as exc:
        log("info", "refused", code=exc.code)
        count_error(exc.code)
        delivery.reply(protocol.error_frame(exc.code, exc.message, exc.message_id, protocol.frame_request_id(frame)))
    except Exception as exc:
        log_failure("failed", exc)
        count_error(protocol.INTERNAL)
        message_id, request_id = protocol.frame_message_id(frame), protocol.frame_request_id(frame)
        message = "the server could not finish this; retry"
        delivery.reply(protocol.error_frame(protocol.INTERNAL, message, message_id, request_id))


def _parse(frame: dict, services: Services):
    """The frame's action and what its parser makes of it: BAD_REQUEST or UNKNOWN_ACTION
    before any request is made."""
    action = frame.get("action")
    if not isinstance(action, str) or not action:
        raise protocol.ProtocolError(protocol.BAD_REQUEST, "'action' is required and must be a string")
    if action not in services.actions:
        known = ", ".join(services.actions)
        raise protocol.ProtocolError(protocol.UNKNOWN_ACTION, f"unknown action {action[:64]!r}; known: {known}")
    return action, services.actions[action][0](frame)


def _invocation(context, services: Services, delivery: Delivery) -> Invocation:
    """The caller (FORBIDDEN if its connection is unknown or expired) and what the action works with."""
    caller = services.tables.connections.get(delivery.caller)
    if caller is None:
        raise protocol.ProtocolError(protocol.FORBIDDEN, "this connection is not registered or has expired; reconnect")
    settings = services.settings
    push = PushHandoff(services.events, settings.event_bus_name, settings.push_preview)
    time_left_ms = context.get_remaining_time_in_millis if context is not None else lambda: float("inf")
    return Invocation(caller, services.tables, delivery, push, time_left_ms)
