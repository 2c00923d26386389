"""The local stack: a synthesized template run on this machine.

Everything comes from the template in cdk.out: the routes and the functions behind
them (handler, asset, environment, timeout), the route selection expression, the stage,
and the tables (keys, indexes, ttl). Add a route or an index to the stack and this
follows without edits.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from aiohttp import WSCloseCode, web

from . import iam
from . import template as t
from .defaults import HANDSHAKE_DELAY_S, IDLE_TIMEOUT_S, WORKERS
from .dynamodb import Dynalite, DynamoDBGuard
from .eventbridge import API_PATH, EventBuses
from .gateway import Gateway
from .issuer import CLIENT_ID, LocalIssuer
from .lambda_pool import FunctionPool, InvocationError, base_environment

REGION = "us-east-1"
API_ID = "local"  # the WebSocket API's id, in its callback URL and its ARN
WEB_CLIENT = Path(__file__).resolve().parent.parent / "web"  # index.html, app.js, favicon.svg


class Uninvokable:
    """A route whose function API Gateway may not invoke (its resource policy says no):
    each invocation fails, as on AWS."""

    def __init__(self, line: str):
        self.line = line

    async def invoke(self, event: dict, connection_id: str) -> dict:
        raise InvocationError(self.line)


class LocalStack:
    def __init__(
        self,
        cdk_out: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        state_dir: Path = Path(".local"),
        fresh: bool = False,
        workers: int = WORKERS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        handshake_delay_s: float = HANDSHAKE_DELAY_S,
        ordered: bool = False,
        dynamodb_port: int | None = None,
        functions_dynamodb_port: int | None = None,
        stack: str | None = None,
        log=print,
    ):
        self.cdk_out, self.host, self.port = Path(cdk_out).resolve(), host, port
        self.state_dir, self.fresh, self.workers = Path(state_dir), fresh, workers
        self.idle_timeout_s, self.dynamodb_port, self.stack_name = idle_timeout_s, dynamodb_port, stack
        self.functions_dynamodb_port = functions_dynamodb_port
        self.handshake_delay_s = handshake_delay_s
        self.ordered = ordered
        self.log = log
        self.db: Dynalite | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.gateway: Gateway | None = None
        self.issuer: LocalIssuer | None = None
        self.auth_mode = "dev"
        self.table_names: dict[str, str] = {}
        self.buses = EventBuses((), REGION, log)
        self.authorizer: iam.Authorizer | None = None
        self.guard: DynamoDBGuard | None = None  # IAM in front of DynamoDB, for the functions
        self.template: dict = {}
        self._dynamodb = None  # a boto3 client of the local DynamoDB server, made when first needed
        self._resetting = asyncio.Lock()
        self._stopping = False

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> None:
        self.stack_name, template = t.load_assembly(self.cdk_out, self.stack_name)
        api = t.websocket_api(template)
        specs = t.functions(template)

        data_dir = self.state_dir / "dynamodb"
        if self.fresh and data_dir.exists():
            shutil.rmtree(data_dir)
        self.db = Dynalite(data_dir, self.dynamodb_port, self.log)
        try:
            await self._start(template, api, specs)
        except BaseException:
            await self.stop()
            raise

    async def _start(self, template: dict, api: t.WebSocketApi, specs: dict) -> None:
        await self.db.start()
        self.template = template
        self.table_names = await asyncio.to_thread(self._create_tables, template)
        refs = {**self.table_names, **t.aws_refs(template, REGION, API_ID, iam.ACCOUNT)}
        attributes = t.arn_attributes(template, REGION, self.table_names, iam.ACCOUNT)
        self.authorizer = self._authorizer(template, refs, attributes)
        self.guard = DynamoDBGuard(
            self.db.port, self.authorizer, REGION, iam.ACCOUNT, self.functions_dynamodb_port, self.log
        )
        await self.guard.start()
        self.buses = EventBuses(t.event_buses(template).values(), REGION, self.log, self.authorizer)

        self.auth_mode = next(
            (s["environment"].get("AUTH_MODE") for s in specs.values() if "AUTH_MODE" in s["environment"]), "dev"
        )
        if self.auth_mode == "cognito":
            self.issuer = LocalIssuer(self.state_dir, self.port)
            for logical_id, resource in template["Resources"].items():
                if resource["Type"] == "AWS::Cognito::UserPool":
                    refs[logical_id] = "local-pool"
                    attributes[(logical_id, "ProviderURL")] = self.issuer.url
                elif resource["Type"] == "AWS::Cognito::UserPoolClient":
                    refs[logical_id] = CLIENT_ID

        for logical_id, spec in specs.items():
            if not spec["asset_path"]:
                raise t.TemplateError(f"function {logical_id} has no asset path; synthesize with assets staged")
            env = base_environment()
            for key, value in spec["environment"].items():
                try:
                    env[key] = t.resolve(value, refs, attributes)
                except t.TemplateError as exc:
                    raise t.TemplateError(f"{logical_id} environment {key}: {exc}") from None
            env.update(
                AWS_REGION=REGION,
                AWS_DEFAULT_REGION=REGION,
                AWS_ACCESS_KEY_ID=iam.access_key(logical_id),  # its role's, as Lambda gives it
                AWS_ENDPOINT_URL_DYNAMODB=self.guard.endpoint,
                AWS_ENDPOINT_URL_APIGATEWAYMANAGEMENTAPI=f"http://127.0.0.1:{self.port}/{api.stage}",
                AWS_ENDPOINT_URL_EVENTBRIDGE=f"http://127.0.0.1:{self.port}{API_PATH}",
                AWS_LAMBDA_FUNCTION_NAME=logical_id,
                _HANDLER=spec["handler"],
            )
            self.pools[logical_id] = FunctionPool(
                logical_id, spec, self.cdk_out / spec["asset_path"], env, self.workers, self.log
            )
        await asyncio.gather(*(pool.start() for pool in self.pools.values()))

        routes = {route: self.pools[fn] for route, fn in api.routes.items()}
        for route, line in iam.uninvokable_routes(
            template, api.routes, api.stage, API_ID, refs, attributes, t.resolve, REGION
        ).items():
            self.log(line)
            routes[route] = Uninvokable(line)
        self.gateway = Gateway(
            api,
            routes,
            host=self.host,
            port=self.port,
            idle_timeout_s=self.idle_timeout_s,
            handshake_delay_s=self.handshake_delay_s,
            ordered=self.ordered,
            page=self._serve_page,
            authorizer=self.authorizer,
            why_refused=self.issuer.why_refused if self.issuer else None,
            stage_arn=f"arn:aws:execute-api:{REGION}:{iam.ACCOUNT}:{API_ID}/{api.stage}",
            extra_routes=[
                web.get("/app.js", self._serve_page),
                web.get("/favicon.svg", self._serve_page),
                web.get("/@local/config", self._serve_config),
                web.get("/@local/stats", self._serve_stats),
                web.get("/@local/in-flight", self._serve_in_flight),
                web.post("/@local/reset", self._serve_reset),
                *self.buses.routes(),
                *(self.issuer.routes() if self.issuer else []),
            ],
            log=self.log,
        )
        await self.gateway.start()

    def _authorizer(self, template: dict, refs: dict, attributes: dict) -> iam.Authorizer:
        """Each function's role, read from the template, enforced from now on; what the
        local stack cannot see of a role, and an alarm topic that refuses its alarms, said once."""
        try:
            roles = iam.roles(template, refs, attributes, t.resolve)
        except iam.PolicyError as exc:
            raise t.TemplateError(str(exc)) from None
        for function_id, role in roles.items():
            for key in sorted(role.unsent_keys()):
                self.log(
                    f"IAM: {function_id}'s role asks for the condition key {key}, which the local stack does not "
                    "send: its conditions on it are evaluated as if the request did not carry it"
                )
            for what in role.unresolved:
                self.log(
                    f"IAM: {function_id}'s role holds what the local stack cannot resolve (it allows nothing): {what}"
                )
        for line in iam.alarm_denials(template, refs, attributes, t.resolve, REGION):
            self.log(line)
        return iam.Authorizer(roles, REGION, self.log)

    async def _serve_page(self, request: web.Request) -> web.StreamResponse:
        """The reference web client (web/), at http://127.0.0.1:<port>/."""
        name = request.path.lstrip("/") if request.path in ("/app.js", "/favicon.svg") else "index.html"
        return web.FileResponse(WEB_CLIENT / name, headers={"Cache-Control": "no-cache"})

    async def _serve_config(self, request: web.Request) -> web.Response:
        """Not part of API Gateway: what the web client needs to connect here."""
        return web.json_response({"auth": self.auth_mode, "stage": self.gateway.api.stage})

    async def _serve_stats(self, request: web.Request) -> web.Response:
        """Not part of API Gateway: per route, the invocations, the AWS API calls they
        made (what `make bench` reports as DynamoDB requests per message), the capacity
        units DynamoDB reported for them ("units.dynamodb.PutItem"; this server counts a
        write's table units, not its index entries), their CPU time ("cpu_ms") and how
        long they took ("wall_ms"). Each
        route belongs to one function, so the pools' figures do not overlap."""
        stats: dict[str, dict[str, float]] = {}
        for pool in self.pools.values():
            stats.update(pool.stats())
        return web.json_response(stats)

    async def _serve_in_flight(self, request: web.Request) -> web.Response:
        """Not part of API Gateway: client frames waiting for or in an invocation, and
        invocations running, so a load test can tell when everything has settled."""
        queued = sum(conn.inbox.qsize() for conn in self.gateway.connections.values()) if self.gateway else 0
        running = sum(pool.in_flight for pool in self.pools.values())
        return web.json_response({"frames": queued, "invocations": running})

    async def _serve_reset(self, request: web.Request) -> web.Response:
        """Not part of API Gateway: back to a fresh start without a restart, for an app's
        own test suite (and ours) to start each test from nothing."""
        async with self._resetting:
            if self._stopping:
                return web.json_response({"message": "The local stack is stopping"}, status=503)
            await self.reset()
        return web.json_response({"reset": True})

    async def reset(self) -> None:
        """What `--fresh` and a restart would give, without the restart: every connection
        closed (1012, service restart; each runs $disconnect first), then every table
        emptied, every function cold, and no stats or push events kept. A connection
        attempted meanwhile waits, and is served once the reset is done."""
        async with self.gateway.paused(WSCloseCode.SERVICE_RESTART, b"Local stack reset"):
            # the functions stop first: nothing an invocation under way does may land after
            await asyncio.gather(*(pool.stop() for pool in self.pools.values()))
            await asyncio.to_thread(self._create_tables, self.template, fresh=True)
            self.buses.clear()
            await asyncio.gather(*(pool.reset() for pool in self.pools.values()))
            self.log("reset: every connection closed, every table emptied, every function cold")

    def _create_tables(self, template: dict, fresh: bool = False) -> dict[str, str]:
        """The template's tables; fresh: dropped first, so they are empty."""
        if self._dynamodb is None:
            import boto3

            self._dynamodb = boto3.session.Session().client(
                "dynamodb",
                endpoint_url=self.db.endpoint,
                region_name=REGION,
                aws_access_key_id="local",
                aws_secret_access_key="local",  # noqa: S106 (never reaches AWS)
            )
        if fresh:
            for name in self.table_names.values():
                self._dynamodb.delete_table(TableName=name)
                self._dynamodb.get_waiter("table_not_exists").wait(TableName=name, WaiterConfig={"Delay": 0.05})
        return t.create_tables(self._dynamodb, template, lambda logical_id: logical_id, self.log)

    async def stop(self) -> None:
        self._stopping = True
        async with self._resetting:  # a reset under way ends first (its closes are bounded)
            pass
        if self.gateway:
            await self.gateway.stop()
            self.gateway = None
        await asyncio.gather(*(pool.stop() for pool in self.pools.values()), return_exceptions=True)
        self.pools = {}
        if self.guard:
            await self.guard.stop()
        if self.db:
            await self.db.stop()
