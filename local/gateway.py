"""A local WebSocket gateway with API Gateway's semantics where a client can see them.

- $connect runs before the upgrade completes; a non-2xx answer rejects the handshake.
- $disconnect runs on every close, clean or abrupt.
- Frames are routed by the template's route selection expression, else $default.
- A frame over 128 KB closes the connection with 1009; 10 minutes idle (or 2 hours in
  all) closes it with 1001.
- The @connections API (POST/GET/DELETE /{stage}/@connections/{id}) answers 410 for a
  connection that is gone, which is what the handlers' boto3 client sees on AWS.
- A function that fails gives the client API Gateway's "Internal server error" frame.

Not part of API Gateway: GET /@local/stats gives, per route, the invocations and the
AWS API calls they made (what `make bench` reports as DynamoDB requests per message).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiohttp import WSCloseCode, WSMsgType, web

from .template import WebSocketApi
from .workers import InvocationError

MAX_FRAME_BYTES = 128 * 1024
IDLE_TIMEOUT_S = 600.0
MAX_CONNECTION_S = 7200.0


def _new_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(12)).decode()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _request_time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


@dataclass
class Connection:
    id: str
    ws: web.WebSocketResponse
    source_ip: str
    user_agent: str
    connected_at: int = field(default_factory=_now_ms)
    last_active: int = field(default_factory=_now_ms)
    open: bool = True
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)


class Gateway:
    def __init__(
        self,
        api: WebSocketApi,
        routes: dict,  # route key -> object with async invoke(event, key)
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_connection_s: float = MAX_CONNECTION_S,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        jwks: dict | None = None,
        jwks_path: str | None = None,
        log=print,
    ):
        if not api.route_selection.startswith("$request.body."):
            raise ValueError(f"unsupported route selection expression {api.route_selection!r}")
        self.api, self.routes = api, routes
        self.selection_path = api.route_selection.removeprefix("$request.body.").split(".")
        self.host, self.port = host, port
        self.idle_timeout_s, self.max_connection_s = idle_timeout_s, max_connection_s
        self.max_frame_bytes = max_frame_bytes
        self.jwks, self.jwks_path = jwks, jwks_path
        self.log = log
        self.connections: dict[str, Connection] = {}
        self._handlers: set[asyncio.Task] = set()
        self._runner: web.AppRunner | None = None

    # ---- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_frame_bytes * 2)
        stage = self.api.stage
        app.router.add_route("*", f"/{stage}/@connections/{{id}}", self._manage)
        app.router.add_route("*", "/@connections/{id}", self._manage)
        app.router.add_get("/@local/stats", self._stats)
        if self.jwks is not None:
            app.router.add_get(self.jwks_path, self._serve_jwks)
        app.router.add_get("/", self._websocket)
        app.router.add_get(f"/{stage}", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        """Close every connection (each runs $disconnect), then stop serving."""
        for conn in list(self.connections.values()):
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=10)
        if self._runner:
            await self._runner.cleanup()

    # ---- events shaped like API Gateway's -------------------------------------------

    def _context(self, conn_id: str, route: str, event_type: str, **extra) -> dict:
        now = _now_ms()
        request_id = _new_id()
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": _request_time(now),
            "messageDirection": "IN",
            "stage": self.api.stage,
            "requestTimeEpoch": now,
            "requestId": request_id,
            "domainName": f"{self.host}:{self.port}",
            "connectionId": conn_id,
            "apiId": "local",
            **extra,
        }

    async def _invoke(self, route: str, event: dict, conn_id: str):
        return await self.routes[route].invoke(event, conn_id)

    # ---- $connect, frames, $disconnect ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.max_frame_bytes, autoping=False, compress=False)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="This is a WebSocket endpoint: connect with a WebSocket client\n")
        conn_id = _new_id()
        source_ip = request.remote or "127.0.0.1"
        user_agent = request.headers.get("User-Agent", "")
        identity = {"sourceIp": source_ip, "userAgent": user_agent}
        headers = dict(request.headers)
        query = dict(request.query) or None
        event = {
            "headers": headers,
            "multiValueHeaders": {k: request.headers.getall(k) for k in request.headers},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: request.query.getall(k) for k in request.query} or None,
            "requestContext": self._context(conn_id, "$connect", "CONNECT", connectedAt=_now_ms(), identity=identity),
            "isBase64Encoded": False,
        }
        if "$connect" in self.routes:
            try:
                result = await self._invoke("$connect", event, conn_id)
            except InvocationError as exc:
                self.log(f"$connect failed: {exc}")
                return web.Response(status=500, text="Internal server error\n")
            status = (result or {}).get("statusCode", 200) if isinstance(result, dict) else 200
            if not 200 <= int(status) < 300:
                return web.Response(status=int(status), text=f"{(result or {}).get('body') or 'Forbidden'}\n")

        await ws.prepare(request)
        conn = Connection(conn_id, ws, source_ip, user_agent)
        self.connections[conn_id] = conn
        task = asyncio.current_task()
        self._handlers.add(task)
        worker = asyncio.create_task(self._process_frames(conn))
        try:
            await self._read_frames(conn)
        finally:
            conn.open = False
            self.connections.pop(conn_id, None)
            await conn.inbox.put(None)
            await worker
            await self._disconnect(conn, headers, identity)
            self._handlers.discard(task)
        return ws

    async def _read_frames(self, conn: Connection) -> None:
        ws = conn.ws
        while True:
            now = _now_ms()
            idle_left = self.idle_timeout_s - (now - conn.last_active) / 1000
            life_left = self.max_connection_s - (now - conn.connected_at) / 1000
            try:
                msg = await ws.receive(timeout=max(0.0, min(idle_left, life_left)))
            except TimeoutError:
                await ws.close(code=WSCloseCode.GOING_AWAY, message=b"Going away")
                return
            conn.last_active = _now_ms()
            if msg.type == WSMsgType.TEXT:
                await conn.inbox.put((msg.data, False))
            elif msg.type == WSMsgType.BINARY:
                await conn.inbox.put((base64.b64encode(msg.data).decode(), True))
            elif msg.type == WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                continue
            else:  # CLOSE, CLOSING, CLOSED, ERROR (1009 for an oversize frame is sent by aiohttp)
                if msg.type == WSMsgType.CLOSE:
                    await ws.close()
                return

    async def _process_frames(self, conn: Connection) -> None:
        """One connection's frames, in arrival order."""
        while (item := await conn.inbox.get()) is not None:
            body, is_base64 = item
            route = self._select_route(body, is_base64)
            context = self._context(
                conn.id,
                route or "$default",
                "MESSAGE",
                messageId=_new_id(),
                connectedAt=conn.connected_at,
                identity={"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            )
            if route is None:
                await self._send_error(conn, "Forbidden", context["requestId"])
                continue
            event = {"requestContext": context, "body": body, "isBase64Encoded": is_base64}
            try:
                await self._invoke(route, event, conn.id)
            except InvocationError as exc:
                self.log(f"{route} failed: {exc}")
                await self._send_error(conn, "Internal server error", context["requestId"])

    def _select_route(self, body: str, is_base64: bool) -> str | None:
        value = None
        if not is_base64:
            try:
                value = json.loads(body)
            except ValueError:
                value = None
            for key in self.selection_path:
                value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value in self.routes and not value.startswith("$"):
            return value
        return "$default" if "$default" in self.routes else None

    async def _send_error(self, conn: Connection, message: str, request_id: str) -> None:
        if conn.open and not conn.ws.closed:
            frame = {"message": message, "connectionId": conn.id, "requestId": request_id}
            await conn.ws.send_str(json.dumps(frame))

    async def _disconnect(self, conn: Connection, headers: dict, identity: dict) -> None:
        if "$disconnect" not in self.routes:
            return
        close_code = conn.ws.close_code or WSCloseCode.ABNORMAL_CLOSURE
        event = {
            "headers": headers,
            "requestContext": self._context(
                conn.id,
                "$disconnect",
                "DISCONNECT",
                connectedAt=conn.connected_at,
                identity=identity,
                disconnectStatusCode=int(close_code),
                disconnectReason="",
            ),
            "isBase64Encoded": False,
        }
        try:
            await self._invoke("$disconnect", event, conn.id)
        except InvocationError as exc:
            self.log(f"$disconnect failed: {exc}")

    # ---- the @connections management API ----------------------------------------------

    async def _manage(self, request: web.Request) -> web.Response:
        conn = self.connections.get(request.match_info["id"])
        if conn is None or not conn.open or conn.ws.closed:
            return web.json_response({"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"})
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.max_frame_bytes:
                return web.json_response(
                    {"message": "Message too long"},
                    status=413,
                    headers={"x-amzn-ErrorType": "PayloadTooLargeException"},
                )
            try:
                await conn.ws.send_str(data.decode("utf-8"))
            except UnicodeDecodeError:
                await conn.ws.send_bytes(data)
            except ConnectionResetError:
                return web.json_response({"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"})
            return web.Response(status=200)
        if request.method == "GET":
            iso = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()  # noqa: E731
            return web.json_response(
                {
                    "ConnectedAt": iso(conn.connected_at),
                    "Identity": {"SourceIp": conn.source_ip, "UserAgent": conn.user_agent},
                    "LastActiveAt": iso(conn.last_active),
                }
            )
        if request.method == "DELETE":
            await conn.ws.close(code=WSCloseCode.OK)
            return web.Response(status=204)
        return web.Response(status=405)

    async def _stats(self, request: web.Request) -> web.Response:
        # each function reports its own routes, and a route has one function: no overlap
        stats: dict[str, dict[str, int]] = {}
        for function in {id(f): f for f in self.routes.values()}.values():
            stats.update(function.stats() if hasattr(function, "stats") else {})
        return web.json_response(stats)

    async def _serve_jwks(self, request: web.Request) -> web.Response:
        return web.json_response(self.jwks)
