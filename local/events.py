"""Lambda events shaped like the ones API Gateway sends for a WebSocket API: $connect,
a client frame (MESSAGE) and $disconnect, with the requestContext fields handlers read."""

from __future__ import annotations

import base64
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime


def new_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(12)).decode()


def now_ms() -> int:
    return int(time.time() * 1000)


def _request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass(frozen=True)
class Client:
    """What API Gateway knows of the other end, from the upgrade request."""

    source_ip: str
    user_agent: str
    headers: dict[str, str]

    @property
    def identity(self) -> dict:
        return {"sourceIp": self.source_ip, "userAgent": self.user_agent}


@dataclass(frozen=True)
class Events:
    stage: str
    domain_name: str

    def _context(self, connection_id: str, route: str, event_type: str, **extra) -> dict:
        now = now_ms()
        request_id = new_id()
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.stage,
            "requestTimeEpoch": now,
            "requestId": request_id,
            "domainName": self.domain_name,
            "connectionId": connection_id,
            "apiId": "local",
            **extra,
        }

    def connect(self, connection_id: str, client: Client, multi_headers: dict, query: dict, multi_query: dict) -> dict:
        return {
            "headers": client.headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "requestContext": self._context(
                connection_id, "$connect", "CONNECT", connectedAt=now_ms(), identity=client.identity
            ),
            "isBase64Encoded": False,
        }

    def message(self, connection_id: str, route: str, body: str, is_base64: bool, connected_at: int, client) -> dict:
        context = self._context(
            connection_id, route, "MESSAGE", messageId=new_id(), connectedAt=connected_at, identity=client.identity
        )
        return {"requestContext": context, "body": body, "isBase64Encoded": is_base64}

    def disconnect(self, connection_id: str, client: Client, connected_at: int, close_code: int) -> dict:
        context = self._context(
            connection_id,
            "$disconnect",
            "DISCONNECT",
            connectedAt=connected_at,
            identity=client.identity,
            disconnectStatusCode=close_code,
            disconnectReason="",
        )
        return {"headers": client.headers, "requestContext": context, "isBase64Encoded": False}
