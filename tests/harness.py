"""Drive the real handlers against moto's DynamoDB, with tables made from the
synthesized template and a fake @connections API that records every frame."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from itertools import count
from unittest.mock import ANY

from botocore.exceptions import ClientError, ReadTimeoutError

from chat.auth import Authenticator
from chat.config import Settings
from chat.handlers import Services, on_connect, on_disconnect, on_message
from chat.protocol import FRAME_LIMIT_BYTES, encode
from chat.tables import Tables
from local.routing import RouteSelector
from local.template import aws_refs, create_tables, event_buses, functions, resolve, websocket_api

API_ID = "abc123"
DOMAIN = f"{API_ID}.execute-api.us-east-1.amazonaws.com"


class FakeManagementApi:
    """Stands in for boto3's apigatewaymanagementapi client."""

    def __init__(self):
        self.received: dict[str, list[dict]] = defaultdict(list)
        self.gone: set[str] = set()  # answer 410, like a connection that died without a close
        self.broken: set[str] = set()  # answer 500
        self.slow: set[str] = set()  # time out, though the frame does arrive (the outcome is unknown)
        self.endpoints: set[str] = set()
        self.before_post = lambda connection_id: None  # a test's hook: what happens while a post is in flight

    def post_to_connection(self, *, ConnectionId, Data):
        self.before_post(ConnectionId)
        if len(Data) > FRAME_LIMIT_BYTES:  # API Gateway refuses a frame over 32 KB
            raise _client_error("PayloadTooLargeException", 413)
        if ConnectionId in self.gone:
            raise _client_error("GoneException", 410)
        if ConnectionId in self.broken:
            raise _client_error("InternalServerErrorException", 500)
        self.received[ConnectionId].append(json.loads(Data))
        if ConnectionId in self.slow:
            raise ReadTimeoutError(endpoint_url=f"https://{DOMAIN}/production/@connections/{ConnectionId}")


class FakeEvents:
    """Stands in for boto3's events client: keeps what PutEvents puts on the template's bus."""

    def __init__(self, bus_names):
        self.buses = set(bus_names)
        self.entries: list[dict] = []
        self.dropped: list[dict] = []  # put on a bus that does not exist: taken, and lost, as on AWS
        self.down = False  # every call fails, as when EventBridge is unreachable or denies us
        self.refusing: list[str] = []  # the next calls' entries are refused with these codes (a 200)
        self.before_put = lambda: None  # a test's hook: what happens as the call arrives

    def put_events(self, *, Entries):
        self.before_put()
        if self.down:
            raise _client_error("AccessDeniedException", 400, "PutEvents")
        if self.refusing:
            code = self.refusing.pop(0)
            return {"FailedEntryCount": len(Entries), "Entries": [{"ErrorCode": code, "ErrorMessage": code}]}
        for entry in Entries:
            kept = self.entries if entry["EventBusName"] in self.buses else self.dropped
            kept.append({**entry, "Detail": json.loads(entry["Detail"])})
        return {"FailedEntryCount": 0, "Entries": [{"EventId": f"event-{len(self.entries)}"} for _ in Entries]}

    def details(self) -> list[dict]:
        return [e["Detail"] for e in self.entries]


def _client_error(code: str, status: int, operation: str = "PostToConnection") -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


class RequestCounter:
    """Counts DynamoDB API calls by operation through botocore's event hooks."""

    def __init__(self, client):
        self.calls: Counter = Counter()
        self._lock = threading.Lock()  # a send makes requests on several threads at once
        client.meta.events.register("before-call.dynamodb", self._count)

    def _count(self, model, **kwargs):
        with self._lock:
            self.calls[model.name] += 1

    def reset(self) -> None:
        self.calls.clear()

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class Chat:
    """One deployment's worth of state: tables, connections and recorded frames."""

    def __init__(self, client, template: dict, *, env_overrides: dict | None = None, jwks=None, clock=None):
        names = create_tables(client, template, lambda logical_id: logical_id)
        refs = {**names, **aws_refs(template, "us-east-1", API_ID)}
        handlers = {f["handler"]: f for f in functions(template).values()}
        env = dict(env_overrides or {})
        # one Settings for all three handlers: connect's variables and the message function's
        for handler in ("connect.handler", "message.handler"):
            for key, value in handlers[handler]["environment"].items():
                if key not in env:
                    env[key] = resolve(value, refs)
        self.settings = Settings.from_env(env)
        self.client = client
        self.offset = 0.0  # seconds added to the real clock by later()
        self.clock = clock or (lambda: time.time() + self.offset)
        self.api = FakeManagementApi()
        self.events = FakeEvents(event_buses(template).values())
        self.tables = Tables.open(client, **self.settings.tables, clock=self.clock)
        self.services = Services(
            settings=self.settings,
            tables=self.tables,
            management_api=self._management_api,
            authenticator=Authenticator(self.settings, jwks=jwks),
            events=lambda: self.events,
        )
        # the routes the template gives the message function, selected as API Gateway does
        api = websocket_api(template)
        self.routes = RouteSelector(api.route_selection, api.routes)
        self.requests = RequestCounter(client)
        self.domain = DOMAIN  # where requests arrive: the API's own domain, or a custom one
        self._ids = count(1)

    def new_container(self) -> None:
        """The next frames go to a fresh message-function container: nothing cached."""
        self.tables = self.services.tables = Tables.open(self.client, **self.settings.tables, clock=self.clock)

    def later(self, seconds: float) -> None:
        """Move this deployment's clock forward (the tables', for ttl, handshake grace and leases)."""
        self.offset += seconds

    def _management_api(self, endpoint: str):
        self.api.endpoints.add(endpoint)
        return self.api

    # ---- events shaped like API Gateway's ----------------------------------------

    def _event(self, route: str, connection_id: str, **extra) -> dict:
        event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
        return {
            "requestContext": {
                "routeKey": route,
                "eventType": event_type,
                "connectionId": connection_id,
                "domainName": self.domain,
                "stage": "production",
                "apiId": "abc123",
                "requestTimeEpoch": int(time.time() * 1000),
            },
            "isBase64Encoded": False,
            **extra,
        }

    def connect(self, query: dict | None = None, *, user: str | None = None) -> tuple[str, dict]:
        """Run $connect; returns (connectionId, response)."""
        connection_id = f"conn-{next(self._ids)}"
        if user is not None:
            query = {"userId": user}
        response = on_connect(self._event("$connect", connection_id, queryStringParameters=query), self.services)
        return connection_id, response

    def online(self, user: str, *, ack: bool = False) -> str:
        """A connection of the user; ack=True opens it in ack mode (?ack=1)."""
        connection_id, response = self.connect({"userId": user, **({"ack": "1"} if ack else {})})
        assert response["statusCode"] == 200
        return connection_id

    def disconnect(self, connection_id: str) -> dict:
        return on_disconnect(self._event("$disconnect", connection_id), self.services)

    def send(self, connection_id: str, frame, context=None) -> dict:
        body = frame if isinstance(frame, str) or frame is None else json.dumps(frame)
        route = self.routes.select(body, False) if body is not None else "$default"
        return on_message(self._event(route, connection_id, body=body), context, self.services)

    # ---- what the client saw and what the tables hold --------------------------------

    def frames(self, connection_id: str) -> list[dict]:
        return self.api.received.get(connection_id, [])

    def take(self, connection_id: str) -> list[dict]:
        """Frames received since the last take."""
        return self.api.received.pop(connection_id, [])

    def items(self, table: str) -> list[dict]:
        from chat.dynamo import from_item

        name = self.settings.tables[table]
        pages = self.client.get_paginator("scan").paginate(TableName=name)  # tests only; the app never scans
        return [from_item(i) for page in pages for i in page["Items"]]

    def message(self, message_id: str) -> dict | None:
        """The message as stored: its row, with what it says (the Contents table)."""
        row = self.tables.messages.get(message_id, consistent=True)
        return self.tables.messages.joined([row])[0].attributes() if row else None


class TimeFor:
    """A Lambda context whose time runs out after the first `checks` looks at the clock."""

    def __init__(self, checks: int):
        self.checks = checks

    def get_remaining_time_in_millis(self) -> int:
        self.checks -= 1
        return 20_000 if self.checks >= 0 else 1_000


def messages(frames: list[dict]) -> list[str]:
    """The ids of the message frames, in order."""
    return [f["data"]["messageId"] for f in frames if f["type"] == "message"]


def receipts(frames: list[dict]) -> list[tuple[str, str]]:
    return [(f["data"]["messageId"], f["data"]["status"]) for f in frames if f["type"] == "receipt"]


def sync_complete(frames: list[dict]) -> dict:
    """The data of the one syncComplete frame, which must be the last."""
    assert frames and frames[-1]["type"] == "syncComplete", frames
    assert [f["type"] for f in frames].count("syncComplete") == 1, frames
    return frames[-1]["data"]


def ack(message_id: str, status: str, *, duplicate: bool = False) -> dict:
    """The ack frame a sender gets (duplicate: to a retry of a stored messageId); sentAt
    is the server's time, so any string matches."""
    data = {"messageId": message_id, "status": status, "sentAt": ANY, "conversationId": ANY}
    return {"type": "ack", "data": {**data, "duplicate": True} if duplicate else data}


def send_frame(message_id: str, recipient: str, content: str = "hi", **extra) -> dict:
    """A sendMessage frame as the iOS client sends it, to the pair's own conversation
    unless conversationId is given."""
    return {
        "action": "sendMessage",
        "messageId": message_id,
        "recipientId": recipient,
        "content": content,
        **extra,
    }


def confirm(*ids: str) -> dict:
    """A markDelivered frame: a device in ack mode confirms it has these messages."""
    return {"action": "markDelivered", "messageIds": list(ids)}


def pages(chat, conn, request: dict) -> list[dict]:
    """Every page of a request, following next; each page's data."""
    found, cursor = [], None
    chat.take(conn)  # what came before
    while True:
        chat.send(conn, {**request, **({"cursor": cursor} if cursor else {})})
        [frame] = chat.take(conn)
        assert frame["type"] == request["action"], frame
        assert len(encode(frame)) <= FRAME_LIMIT_BYTES
        found.append(frame["data"])
        if "next" not in frame["data"]:
            return found
        cursor = frame["data"]["next"]
