"""The template's EventBridge buses, as the message function's boto3 client sees them:
PutEvents on API_PATH, with EventBridge's checks. Nothing routes the events (on AWS,
your rules do): each one is printed, and GET /@local/events lists them as a rule's
target would get them, oldest first (the last KEEP of them), so an app developer sees
what a push would carry. ``?recipientId=alice`` (any detail field; ``null`` for a null
one) keeps only the matching ones.

As on AWS, an event for a bus that does not exist is answered with an EventId and
dropped (it is printed here as dropped), and each entry is checked against its signer's
role (local/iam.py): events:PutEvents on the bus, with the entry's source and detail-type
as the condition keys events:source and events:detail-type; a refused entry gets
AccessDeniedException, NotAuthorizedForSourceException or
NotAuthorizedForDetailTypeException. Not reproduced: an entry's own Time (the event's
time is when it arrived), Source and DetailType length limits, Resources' ARN format."""

from __future__ import annotations

import json
import uuid
from collections import deque
from datetime import UTC, datetime

from aiohttp import web

from . import iam

API_PATH = "/@local/eventbridge"  # AWS_ENDPOINT_URL_EVENTBRIDGE points here
LIST_PATH = "/@local/events"
ACCOUNT = iam.ACCOUNT
KEEP = 1000  # the most recent events kept for GET /@local/events
MAX_ENTRIES = 10  # PutEvents' limits
MAX_ENTRIES_BYTES = 256 * 1024  # the entries' size as EventBridge counts it (_entry_size)
MAX_BODY_BYTES = 4 * 1024 * 1024  # the request as sent: the entries, JSON-escaped twice at worst
JSON_TYPE = "application/x-amz-json-1.1"


def _strict_json(text):
    """json.loads, refusing NaN and Infinity as EventBridge does (they are not JSON)."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _entry_size(entry: dict) -> int:
    """An entry's size by EventBridge's rule: Time counts 14 bytes, and Source,
    DetailType, Detail and each of Resources their UTF-8 bytes."""
    size = 14 if entry.get("Time") else 0
    for field in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(field) or "").encode())
    return size + sum(len(str(r).encode()) for r in entry.get("Resources") or [])


def _matches(detail: dict, wanted: dict[str, str]) -> bool:
    """Each wanted field is in the detail with that value (a string as it is, anything
    else as JSON: null, 3, true)."""
    for field, value in wanted.items():
        if field not in detail:
            return False
        found = detail[field]
        if (found if isinstance(found, str) else json.dumps(found)) != value:
            return False
    return True


def _error(code: str, message: str, status: int = 400) -> web.Response:
    body = json.dumps({"__type": code, "message": message})
    return web.Response(status=status, text=body, content_type=JSON_TYPE, headers={"x-amzn-ErrorType": code})


class EventBuses:
    def __init__(self, bus_names, region: str, log=print, authorizer: iam.Authorizer | None = None):
        """authorizer: IAM on PutEvents; without it any request is taken (its own tests)."""
        self.names, self.region, self.log = set(bus_names), region, log
        self.authorizer = authorizer
        self.events: deque[dict] = deque(maxlen=KEEP)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(API_PATH, self.handle), web.get(LIST_PATH, self.list_events)]

    async def handle(self, request: web.Request) -> web.Response:
        target = request.headers.get("X-Amz-Target", "")
        if target != "AWSEvents.PutEvents":
            return _error("UnknownOperationException", f"the local stack serves PutEvents only, not {target!r}")
        role = None
        if self.authorizer is not None:
            if "Authorization" not in request.headers:
                return _error("MissingAuthenticationTokenException", "Request is missing Authentication Token")
            role = self.authorizer.caller(request.headers)
            if role is None:
                return _error("UnrecognizedClientException", "The security token included in the request is invalid.")
        # read here, not with request.read(): the gateway caps bodies at two frames (64 KiB)
        raw = bytearray()
        async for chunk in request.content.iter_chunked(64 * 1024):
            raw += chunk
            if len(raw) > MAX_BODY_BYTES:
                return _error("ValidationException", "Total size of the entries in the request is over the limit.")
        try:
            entries = _strict_json(bytes(raw)).get("Entries")
        except (ValueError, AttributeError, RecursionError):
            return _error("SerializationException", "the request is not a JSON object")
        if not isinstance(entries, list) or not 1 <= len(entries) <= MAX_ENTRIES:
            return _error("ValidationException", f"Entries must hold 1 to {MAX_ENTRIES} entries")
        if sum(_entry_size(e) for e in entries if isinstance(e, dict)) > MAX_ENTRIES_BYTES:
            return _error("ValidationException", "Total size of the entries in the request is over the limit.")
        results = [self._put(entry, role) for entry in entries]
        failed = sum("ErrorCode" in r for r in results)
        return web.json_response({"FailedEntryCount": failed, "Entries": results}, content_type=JSON_TYPE)

    def _put(self, entry, role: iam.Role | None) -> dict:
        """One entry: its EventId, or why it was refused (PutEvents refuses entries, not requests)."""
        if not isinstance(entry, dict):
            return {"ErrorCode": "InvalidArgument", "ErrorMessage": "an entry must be an object"}
        bus = str(entry.get("EventBusName") or "default")
        name = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
        for field in ("Source", "DetailType", "Detail"):
            if not isinstance(entry.get(field), str) or not entry[field]:
                return {"ErrorCode": "InvalidArgument", "ErrorMessage": f"Parameter {field} is not valid."}
        if role is not None:
            arn = bus if bus.startswith("arn:") else f"arn:aws:events:{self.region}:{ACCOUNT}:event-bus/{name}"
            refused = self._refusal(role, arn, entry["Source"], entry["DetailType"])
            if refused is not None:
                return refused
        try:
            detail = _strict_json(entry["Detail"])
        except (ValueError, RecursionError):
            detail = None
        if not isinstance(detail, dict):
            return {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": ACCOUNT,
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self.region,
            "resources": entry.get("Resources") or [],
            "detail": detail,
        }
        if name not in self.names:  # EventBridge takes it and drops it, without a word
            self.log(
                iam.one_line(f"event {event['detail-type']} put on {name}, which does not exist: dropped, as on AWS")
            )
            return {"EventId": event["id"]}
        self.events.append(event)
        self.log(iam.one_line(f"event {event['detail-type']} on {name}: {json.dumps(detail, ensure_ascii=False)}"))
        return {"EventId": event["id"]}

    def _refusal(self, role: iam.Role, bus_arn: str, source: str, detail_type: str) -> dict | None:
        """None if the role may put this entry on this bus, else the entry's error, told
        apart as EventBridge does: the bus, the source, or the detail-type."""
        action = "events:PutEvents"
        context = {"events:source": source, "events:detail-type": detail_type}
        decision = self.authorizer.check(role, action, bus_arn, context)
        if decision.allowed:
            return None
        keys = set(context)
        if not iam.evaluate(action, bus_arn, role.principal, context, role.policies, assume=keys).allowed:
            message = iam.not_authorized(role.principal, action, bus_arn, decision)
            return {"ErrorCode": "AccessDeniedException", "ErrorMessage": message}
        if not iam.evaluate(
            action, bus_arn, role.principal, context, role.policies, assume={"events:detail-type"}
        ).allowed:
            message = "You do not have permissions to publish events with this source onto this event bus."
            return {"ErrorCode": "NotAuthorizedForSourceException", "ErrorMessage": message}
        message = "You do not have permissions to publish events with this detail type onto this event bus."
        return {"ErrorCode": "NotAuthorizedForDetailTypeException", "ErrorMessage": message}

    def clear(self) -> None:
        self.events.clear()

    async def list_events(self, request: web.Request) -> web.Response:
        wanted = dict(request.query)
        return web.json_response([e for e in self.events if _matches(e["detail"], wanted)])
