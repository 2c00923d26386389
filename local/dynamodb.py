"""A real DynamoDB-compatible server for the local stack: dynalite (npm, installed by
`npm ci`), persisting to a folder so data survives restarts, and the IAM check in front
of it that the functions reach it through (DynamoDBGuard)."""

from __future__ import annotations

import asyncio
import json
import shutil
import urllib.parse
import uuid
import zlib
from pathlib import Path

from .children import die_with_parent
from .iam import not_authorized
from .ports import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
DYNALITE = ROOT / "node_modules" / "dynalite" / "cli.js"


class Dynalite:
    def __init__(self, data_dir: Path | None, port: int | None = None, log=print):
        self.data_dir = data_dir
        self.port = port or free_port()
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        node = shutil.which("node")
        if node is None or not DYNALITE.exists():
            raise RuntimeError("dynalite is not installed: run `npm ci` (make local does it for you)")
        # Tables become ACTIVE at once: dynalite's default 500 ms in CREATING per table
        # would only slow every start (no client can connect before they exist anyway).
        args = [node, str(DYNALITE), "--host", "127.0.0.1", "--port", str(self.port)]
        args += ["--createTableMs", "0", "--deleteTableMs", "0", "--updateTableMs", "0"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            args += ["--path", str(self.data_dir)]
        # Its own session: a terminal's Ctrl-C goes to the whole foreground process group,
        # and Node resets an inherited SIG_IGN, so without this dynalite would die before
        # the gateway's shutdown runs $disconnect for the open connections.
        self.proc = await asyncio.create_subprocess_exec(
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
            start_new_session=True,
        )
        try:
            await wait_for_port(self.port, 30, self.proc)
        except RuntimeError as exc:
            err = (await self.proc.stderr.read()).decode(errors="replace")[-2000:]
            await self.stop()
            raise RuntimeError(f"dynalite did not start: {exc}\n{err}") from None
        self._stderr_task = asyncio.create_task(self._forward_stderr(self.proc))

    async def _forward_stderr(self, proc) -> None:
        async for line in proc.stderr:
            self.log(f"[dynalite] {line.decode(errors='replace').rstrip()}")

    async def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class DynamoDBGuard:
    """The functions' DynamoDB endpoint: IAM in front of dynalite. Each request's signer
    (its access key: local/iam.py) must be allowed the request's action on each table or
    index it names, as DynamoDB checks; an allowed request goes to dynalite as it came,
    and dynalite's reply comes back as it was sent. A denied one is answered as DynamoDB
    answers it (400 AccessDeniedException) and never reaches the table.

    A plain HTTP/1.1 relay on asyncio's streams, not aiohttp's client and server: it reads
    heads and lengths, nothing more, and each client connection keeps one connection to
    dynalite, as botocore keeps its own (its cost: docs/performance.md)."""

    def __init__(self, upstream_port: int, authorizer, region: str, account: str, port: int | None = None, log=print):
        self.upstream_port, self.authorizer = upstream_port, authorizer
        self.region, self.account, self.log = region, account, log
        self.port = port or free_port()
        self.server: asyncio.Server | None = None
        self._writers: dict[asyncio.StreamWriter, float] = {}  # each client connection: when it last asked
        self._sweeper: asyncio.Task | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, limit=MAX_HEAD_BYTES)
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.server is not None:
            self.server.close()
            for writer in list(self._writers):
                writer.close()
            self.server = None

    async def _sweep(self) -> None:
        """Close the connections that have sent no whole request for CLIENT_IDLE_S, as
        dynalite's own server would (a kept-alive client opens another when it needs one)."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(CLIENT_IDLE_S / 6)
            for writer, asked_at in list(self._writers.items()):
                if loop.time() - asked_at > CLIENT_IDLE_S:
                    writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One client connection, one request at a time (a pipelined request waits in the
        buffer until the reply before it has gone), each allowed one over one connection
        to dynalite, opened again when dynalite may have closed it."""
        loop = asyncio.get_running_loop()
        self._writers[writer] = loop.time()
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        used_at = 0.0
        try:
            while True:
                request = await _read_message(reader)
                if request is None:
                    return
                head, headers, body = request
                self._writers[writer] = loop.time()
                if "transfer-encoding" in headers:  # botocore always sends a Content-Length
                    writer.write(_reply(411, {"message": "a Content-Length is required"}, close=True))
                    return
                refused = self._refusal(head, headers, body)
                if refused is None:
                    if upstream is None or loop.time() - used_at > UPSTREAM_IDLE_S:
                        if upstream is not None:
                            upstream[1].close()
                        upstream = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                    upstream[1].write(head + body)
                    reply = await _read_message(upstream[0], reply=True)
                    used_at = loop.time()
                    if reply is None:  # dynalite closed it: the client's retry gets a new one
                        return
                    refused = reply[0] + reply[2]
                writer.write(refused)
                await writer.drain()
        except (asyncio.LimitOverrunError, ValueError):  # a head too long, a length that is not one
            writer.write(_reply(400, _error("SerializationException", "not an HTTP/1.1 request DynamoDB takes"), True))
        except ConnectionError:
            return
        finally:
            self._writers.pop(writer, None)
            if upstream is not None:
                upstream[1].close()
            writer.close()

    def _refusal(self, head: bytes, headers: dict[str, str], body: bytes) -> bytes | None:
        """None if the request may go on to dynalite, else DynamoDB's answer."""
        target = head.split(b" ", 2)[1] if head.count(b" ") >= 2 else b"/"  # POST /?X-Amz-Credential=... HTTP/1.1
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(target.decode("latin-1")).query))
        if "authorization" not in headers and "X-Amz-Credential" not in query:
            return None  # dynalite answers MissingAuthenticationTokenException, as DynamoDB does
        role = self.authorizer.caller(headers, query)
        if role is None:
            return _reply(
                400, _error("UnrecognizedClientException", "The security token included in the request is invalid.")
            )
        # What cannot be read here is refused here: dynalite's JSON reader takes some of
        # it (invalid UTF-8, a number of 5,000 digits), and would then run it unchecked.
        try:
            request = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            request = None
        if not isinstance(request, dict):
            return _reply(400, _error("SerializationException", "the request body is not a JSON object"))
        operation = headers.get("x-amz-target", "").rpartition(".")[2]
        for action, resource in dynamodb_calls(operation, request, self.region, self.account):
            decision = self.authorizer.check(role, action, resource)
            if not decision.allowed:
                message = not_authorized(role.principal, action, resource, decision)
                return _reply(400, {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": message})
        return None


MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 16 * 1024 * 1024  # DynamoDB's largest request (a 25-item batch of 400 KB items) is less
# dynalite (Node) closes a kept-alive connection after 5 s idle: one idle this long is not
# used again, so a request never races that close
UPSTREAM_IDLE_S = 4.0
# a client connection that sends no whole request for this long is closed (Node's own
# server gives a request's head 60 s)
CLIENT_IDLE_S = 60.0


async def _read_message(reader: asyncio.StreamReader, reply: bool = False) -> tuple[bytes, dict, bytes] | None:
    """One HTTP/1.1 request or reply: its head, its headers and its body (by
    Content-Length, or chunked for a reply); None if the connection ends first."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        while reply and head[9:10] == b"1":  # an interim reply (HTTP/1.1 100 Continue): dropped, the body is sent
            head = await reader.readuntil(b"\r\n\r\n")
        headers = _headers(head)
        if reply and headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size_line = await reader.readuntil(b"\r\n")
                body += size_line
                size = int(size_line.split(b";")[0], 16)
                body += await reader.readexactly(size + 2)
                if size == 0:
                    return head, headers, bytes(body)
        length = int(headers.get("content-length", "0"))
        if not 0 <= length <= MAX_BODY_BYTES:
            raise ValueError(f"Content-Length {length}")
        return head, headers, await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


def dynamodb_calls(operation: str, request: dict, region: str, account: str) -> list[tuple[str, str]]:
    """What IAM checks for one DynamoDB request: (action, resource ARN) for each table or
    index it touches. A transaction is checked as the writes it holds, and a batch per
    table, as DynamoDB does."""

    def arn(table, index=None) -> str:
        table = str(table)
        base = table if table.startswith("arn:") else f"arn:aws:dynamodb:{region}:{account}:table/{table}"
        return f"{base}/index/{index}" if index else base

    if operation in ("BatchGetItem", "BatchWriteItem"):
        tables = request.get("RequestItems")
        return [(f"dynamodb:{operation}", arn(t)) for t in tables] if isinstance(tables, dict) else []
    if operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = {
            "ConditionCheck": "ConditionCheckItem",
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
        }
        kinds["Get"] = "GetItem"
        calls = []
        for item in request.get("TransactItems") or []:
            for kind, action in kinds.items():
                if isinstance(item, dict) and isinstance(item.get(kind), dict):
                    calls.append((f"dynamodb:{action}", arn(item[kind].get("TableName"))))
        return calls
    table = request.get("TableName")
    if table is None:
        return [(f"dynamodb:{operation}", "*")]  # ListTables and the like
    index = request.get("IndexName") if operation in ("Query", "Scan") else None
    return [(f"dynamodb:{operation}", arn(table, index))]


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _error(code: str, message: str) -> dict:
    return {"__type": f"com.amazon.coral.service#{code}", "message": message}


def _reply(status: int, body: dict, close: bool = False) -> bytes:
    data = json.dumps(body).encode()
    reason = {400: "Bad Request", 411: "Length Required"}[status]
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/x-amz-json-1.0"]
    lines += [f"x-amzn-RequestId: {uuid.uuid4()}", f"x-amz-crc32: {zlib.crc32(data)}", f"Content-Length: {len(data)}"]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data
