"""The three Lambda handlers' logic: an API Gateway event in, an action run, a response
out. ../connect.py, ../disconnect.py and ../message.py call in here with the Services
built once per container."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from . import protocol
from .actions import ACTIONS, Invocation
from .auth import Authenticator, Unauthorized
from .config import MissingSetting, Settings
from .delivery import Delivery
from .log import log
from .store import Store


@dataclass
class Services:
    settings: Settings
    store: Store
    management_api: Callable[[str], Any]  # stage endpoint -> client with post_to_connection
    authenticator: Authenticator | None = None


@lru_cache(maxsize=1)
def default_services() -> Services:
    """Built on first use, once per container; no network until a request needs it."""
    from . import aws

    settings = Settings.from_env()
    return Services(
        settings=settings,
        store=Store(aws.dynamodb(), **settings.tables),
        management_api=aws.management_api,
        authenticator=Authenticator(settings) if settings.auth_mode else None,
    )


def on_connect(event: dict, services: Services) -> dict:
    connection_id = event["requestContext"]["connectionId"]
    query = event.get("queryStringParameters") or {}
    try:
        identity = services.authenticator.identify(query)
    except Unauthorized as exc:
        log("info", "connect_refused", connectionId=connection_id, reason=str(exc))
        return {"statusCode": 401, "body": "Unauthorized"}
    ack = query.get("ack", "0")  # 1: this client confirms what it receives (markDelivered)
    if ack not in ("0", "1"):
        log("info", "connect_refused", connectionId=connection_id, reason="bad ack")
        return {"statusCode": 400, "body": "ack must be 1 (confirm deliveries with markDelivered) or 0"}
    services.store.put_connection(
        connection_id,
        identity.user_id,
        services.settings.connection_ttl_seconds,
        ack=ack == "1",
        name=identity.name,
        named=identity.named,
    )
    log("info", "connected", connectionId=connection_id, userId=identity.user_id, ack=ack == "1")
    return {"statusCode": 200}


def on_disconnect(event: dict, services: Services) -> dict:
    connection_id = event["requestContext"]["connectionId"]
    services.store.delete_connection(connection_id)
    log("info", "disconnected", connectionId=connection_id)
    return {"statusCode": 200}


def on_message(event: dict, context, services: Services) -> dict:
    """Every client frame: routed by its ``action``. Never raises; errors become frames."""
    request = event["requestContext"]
    route, connection_id = request.get("routeKey"), request["connectionId"]
    if not services.settings.callback_url:
        raise MissingSetting("CALLBACK_URL")
    # the stage's execute-api URL, never the request's domain (a custom domain answers 403)
    delivery = Delivery(services.management_api(services.settings.callback_url), services.store, connection_id)
    frame: dict = {}
    try:
        frame = protocol.parse_frame(event.get("body"))
        action = frame.get("action")
        if not isinstance(action, str) or not action:
            raise protocol.ProtocolError(protocol.BAD_REQUEST, "'action' is required and must be a string")
        if action not in ACTIONS:
            known = ", ".join(ACTIONS)
            raise protocol.ProtocolError(protocol.UNKNOWN_ACTION, f"unknown action {action[:64]!r}; known: {known}")
        parse, run = ACTIONS[action]
        parsed = parse(frame, services.settings)
        caller = services.store.connection(connection_id)
        if caller is None:
            raise protocol.ProtocolError(
                protocol.FORBIDDEN, "this connection is not registered or has expired; reconnect"
            )
        time_left_ms = context.get_remaining_time_in_millis if context is not None else lambda: float("inf")
        run(Invocation(caller, services.store, delivery, time_left_ms), parsed)
        log("info", "handled", connectionId=connection_id, route=route, action=action)
    except protocol.ProtocolError as exc:
        log("info", "refused", connectionId=connection_id, route=route, code=exc.code)
        request_id = protocol.frame_request_id(frame)
        delivery.reply(protocol.error_frame(exc.code, exc.message, exc.message_id, request_id))
    except Exception as exc:
        log("error", "failed", connectionId=connection_id, route=route, error=type(exc).__name__)
        message_id, request_id = protocol.frame_message_id(frame), protocol.frame_request_id(frame)
        message = "the server could not finish this; retry"
        delivery.reply(protocol.error_frame(protocol.INTERNAL, message, message_id, request_id))
    finally:
        delivery.forget_gone()
    return {"statusCode": 200}
