"""A local WebSocket gateway with API Gateway's lifecycle where a client can see it.

- $connect runs before the upgrade completes; a non-2xx answer rejects the handshake.
  The handshake then takes handshake_delay_s more, and until it is done the
  connection answers 410 to @connections posts, as on AWS.
- $disconnect runs on every close, clean or abrupt.
- A connection's frames go, in arrival order, to the route that routing.py selects.
- A client frame over 32 KB closes the connection with 1009 (aiohttp counts a whole
  message; API Gateway counts each frame of one, but clients send one frame per message),
  and the @connections API refuses a larger post with 413. 10 minutes idle (or 2 hours
  in all) closes a connection with 1001.
- A close the client does not take within 2 s (it stopped reading, so even the close
  frame cannot go out) cuts the TCP connection: no client can hold up a stop or a reset.
- A function that fails gives the client API Gateway's "Internal server error" frame.

The events come from events.py and the @connections API is connections_api.py. Routes
that are not API Gateway's (the local stack's stats, the local token issuer's keys)
are passed in by stack.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from dataclasses import dataclass, field

from aiohttp import WSCloseCode, WSMsgType, web

from stacks.contract import contract

from .connections_api import ConnectionsApi
from .defaults import HANDSHAKE_DELAY_S, IDLE_TIMEOUT_S
from .events import Client, Events, new_id, now_ms
from .lambda_pool import InvocationError
from .routing import RouteSelector
from .template import WebSocketApi

MAX_FRAME_BYTES = contract.FRAME_LIMIT_BYTES  # API Gateway's WebSocket frame size, both ways
MAX_CONNECTION_S = float(contract.MAX_CONNECTION_SECONDS)
# A close that has not finished in this time (a client that stopped reading has let its
# socket fill, so not even the close frame goes out) ends with the TCP connection cut.
CLOSE_TIMEOUT_S = 2.0


@dataclass
class Connection:
    id: str
    ws: web.WebSocketResponse
    client: Client
    transport: asyncio.BaseTransport | None = None
    connected_at: int = field(default_factory=now_ms)
    last_active: int = field(default_factory=now_ms)
    open: bool = True
    inbox: asyncio.Queue = field(default_factory=asyncio.Queue)  # frames from the client, for the routes
    outbox: asyncio.Queue = field(default_factory=asyncio.Queue)  # frames for the client, in posting order

    def post(self, data: bytes | str) -> None:
        """Take a frame for the client. Like API Gateway, this does not wait for a slow
        client to read: the frame is sent at the client's pace, after those before it."""
        if isinstance(data, bytes):
            try:
                data = data.decode("utf-8")
            except UnicodeDecodeError:
                pass  # sent as a binary frame
        self.outbox.put_nowait(data)

    async def close(self, code: int, message: bytes = b"") -> None:
        """Close with this code, waiting CLOSE_TIMEOUT_S at most: a server cannot let a
        client that stopped reading hold its close (or a reset, or a stop) for ever."""
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=message), CLOSE_TIMEOUT_S)
        except TimeoutError:
            if self.transport is not None:
                self.transport.abort()


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
        handshake_delay_s: float = HANDSHAKE_DELAY_S,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        ordered: bool = False,
        extra_routes: list[web.RouteDef] = (),
        page=None,
        authorizer=None,
        stage_arn: str = "",
        why_refused=None,
        log=print,
    ):
        """ordered: run one connection's frames one after another, in arrival order (API
        Gateway does not: it invokes the function for each frame as it comes).
        page: a handler for a plain GET of `/` (not a WebSocket), the local stack's web
        client; without it, and always at the stage's path, such a GET gets 426 as on AWS.
        authorizer (local/iam.py) and stage_arn: IAM on the @connections API; without
        them it takes any request (this module's own tests).
        why_refused: query -> why $connect answered 401, printed as a warning (the local
        token issuer's diagnosis); the client gets only the 401, as on AWS."""
        self.api, self.routes = api, routes
        self.selector = RouteSelector(api.route_selection, routes)
        self.events = Events(api.stage, f"{host}:{port}")
        self.host, self.port = host, port
        self.idle_timeout_s, self.max_connection_s = idle_timeout_s, max_connection_s
        self.handshake_delay_s = handshake_delay_s
        self.max_frame_bytes = max_frame_bytes
        self.ordered = ordered
        self.connections_api = ConnectionsApi(self._open_connection, max_frame_bytes, authorizer, stage_arn)
        self.extra_routes = list(extra_routes)
        self.page = page
        self.why_refused = why_refused
        self.log = log
        self.connections: dict[str, Connection] = {}
        self._handlers: set[asyncio.Task] = set()
        self._frames: set[asyncio.Task] = set()  # frames being handled, when not ordered
        self._runner: web.AppRunner | None = None
        self._accepting = asyncio.Event()  # cleared while paused(): new connections wait
        self._accepting.set()
        self._dropping = False  # True while paused(): frames are dropped

    async def start(self) -> None:
        app = web.Application(client_max_size=self.max_frame_bytes * 2)
        app.add_routes(self.connections_api.routes(self.api.stage))
        app.add_routes(self.extra_routes)
        app.router.add_get("/", self._websocket)
        app.router.add_get(f"/{self.api.stage}", self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()

    async def stop(self) -> None:
        """Close every connection (each runs $disconnect), then stop serving."""
        await self.close_all(WSCloseCode.GOING_AWAY, b"Going away")
        if self._frames:
            await asyncio.wait(self._frames, timeout=10)
        if self._runner:
            await self._runner.cleanup()

    async def close_all(self, code: int, message: bytes) -> None:
        """Close every connection with this code, and wait until each one's $disconnect
        has run (10 s at most). One whose $connect or handshake was under way is closed
        once it is open."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while self._handlers and loop.time() < deadline:
            opened = [conn for conn in self.connections.values() if not conn.ws.closed]
            await asyncio.gather(*(conn.close(code, message) for conn in opened))
            if self._handlers:  # (the closes may have ended them all)
                await asyncio.wait(list(self._handlers), timeout=0.05)

    @contextlib.asynccontextmanager
    async def paused(self, code: int, message: bytes):
        """For a reset of what lies behind the gateway: every connection closed (each runs
        $disconnect), every frame not yet handled dropped and those under way cancelled
        (stop the functions before anything else), and new connections held before
        $connect until the block ends."""
        self._accepting.clear()
        self._dropping = True
        try:
            for task in list(self._frames):
                task.cancel()
            await self.close_all(code, message)
            await asyncio.gather(*self._frames, return_exceptions=True)
            yield
        finally:
            self._dropping = False
            self._accepting.set()

    def _open_connection(self, connection_id: str) -> Connection | None:
        conn = self.connections.get(connection_id)
        return conn if conn is not None and conn.open and not conn.ws.closed else None

    async def _invoke(self, route: str, event: dict, connection_id: str):
        return await self.routes[route].invoke(event, connection_id)

    # ---- $connect, frames, $disconnect ------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=self.max_frame_bytes, autoping=False, compress=False)
        if not ws.can_prepare(request).ok:
            if self.page and request.path == "/":
                return await self.page(request)
            return web.Response(status=426, text="This is a WebSocket endpoint: connect with a WebSocket client\n")
        await self._accepting.wait()  # during a reset, a new connection waits for it to end
        task = asyncio.current_task()
        self._handlers.add(task)  # from $connect on, so close_all() waits for it too
        try:
            return await self._connection(request, ws)
        finally:
            self._handlers.discard(task)

    async def _connection(self, request: web.Request, ws: web.WebSocketResponse) -> web.StreamResponse:
        conn_id = new_id()
        client = Client(request.remote or "127.0.0.1", request.headers.get("User-Agent", ""), dict(request.headers))
        if "$connect" in self.routes:
            event = self.events.connect(
                conn_id,
                client,
                {k: request.headers.getall(k) for k in request.headers},
                dict(request.query),
                {k: request.query.getall(k) for k in request.query},
            )
            try:
                result = await self._invoke("$connect", event, conn_id)
            except InvocationError as exc:
                self.log(f"$connect failed: {exc}")
                return web.Response(status=500, text="Internal server error\n")
            status = (result or {}).get("statusCode", 200) if isinstance(result, dict) else 200
            if not 200 <= int(status) < 300:
                if int(status) == 401 and self.why_refused is not None:
                    self.log(f"warning: $connect refused a connection (401): {self.why_refused(dict(request.query))}")
                return web.Response(status=int(status), text=f"{(result or {}).get('body') or 'Forbidden'}\n")

        conn = Connection(conn_id, ws, client, request.transport)
        if self.handshake_delay_s:  # the connection exists, but is not postable yet
            await asyncio.sleep(self.handshake_delay_s)
        try:
            await ws.prepare(request)
        except ConnectionError:  # the client left during the handshake: $connect ran, so $disconnect does
            conn.open = False
            await self._disconnect(conn)
            return ws
        self.connections[conn_id] = conn
        writing = asyncio.create_task(self._write_frames(conn))
        processing = asyncio.create_task(self._process_frames(conn))
        try:
            await self._read_frames(conn)
        finally:
            conn.open = False
            self.connections.pop(conn_id, None)
            await conn.inbox.put(None)
            await processing
            writing.cancel()
            await self._disconnect(conn)
        return ws

    async def _write_frames(self, conn: Connection) -> None:
        while True:
            data = await conn.outbox.get()
            try:
                await (conn.ws.send_str(data) if isinstance(data, str) else conn.ws.send_bytes(data))
            except ConnectionError:
                return

    async def _read_frames(self, conn: Connection) -> None:
        ws = conn.ws
        while True:
            now = now_ms()
            idle_left = self.idle_timeout_s - (now - conn.last_active) / 1000
            life_left = self.max_connection_s - (now - conn.connected_at) / 1000
            try:
                msg = await ws.receive(timeout=max(0.0, min(idle_left, life_left)))
            except TimeoutError:
                await conn.close(WSCloseCode.GOING_AWAY, b"Going away")
                return
            conn.last_active = now_ms()
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
                    await conn.close(WSCloseCode.OK)
                return

    async def _process_frames(self, conn: Connection) -> None:
        """One connection's frames as they arrive: each invoked at once, as API Gateway
        does (the invocations run at the same time, and can finish in any order), or, if
        ordered, one after another. Whatever one frame does, the next is served. When
        the connection closes, $disconnect does not wait for frames still being handled
        (on AWS it can run before them too), unless ordered."""
        while (item := await conn.inbox.get()) is not None:
            if self.ordered:
                await self._serve_frame(conn, *item)
                continue
            task = asyncio.create_task(self._serve_frame(conn, *item))
            self._frames.add(task)
            task.add_done_callback(self._frames.discard)

    async def _serve_frame(self, conn: Connection, body: str, is_base64: bool) -> None:
        if self._dropping:  # a reset is under way: as a restart would, it loses the frame
            return
        try:
            await self._process_frame(conn, body, is_base64)
        except Exception as exc:  # a bug here must not silently stop the connection
            self.log(f"frame on {conn.id} failed in the gateway: {type(exc).__name__}: {exc}")
            await self._send_error(conn, "Internal server error", new_id())

    async def _process_frame(self, conn: Connection, body: str, is_base64: bool) -> None:
        route = self.selector.select(body, is_base64)
        event = self.events.message(conn.id, route or "$default", body, is_base64, conn.connected_at, conn.client)
        request_id = event["requestContext"]["requestId"]
        if route is None:
            await self._send_error(conn, "Forbidden", request_id)
            return
        try:
            await self._invoke(route, event, conn.id)
        except InvocationError as exc:
            self.log(f"{route} failed: {exc}")
            await self._send_error(conn, "Internal server error", request_id)

    async def _send_error(self, conn: Connection, message: str, request_id: str) -> None:
        if conn.open and not conn.ws.closed:
            conn.post(json.dumps({"message": message, "connectionId": conn.id, "requestId": request_id}))

    async def _disconnect(self, conn: Connection) -> None:
        if "$disconnect" not in self.routes:
            return
        close_code = int(conn.ws.close_code or WSCloseCode.ABNORMAL_CLOSURE)
        try:
            await self._invoke(
                "$disconnect", self.events.disconnect(conn.id, conn.client, conn.connected_at, close_code), conn.id
            )
        except InvocationError as exc:
            self.log(f"$disconnect failed: {exc}")
