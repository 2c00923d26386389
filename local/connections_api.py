"""The @connections management API of a stage, as the message function's boto3 client
sees it: POST sends a frame, GET describes the connection, DELETE closes it, and a
connection that is gone (or never was) answers 410 GoneException. Before any of that,
as on AWS, the signer's role must allow execute-api:ManageConnections on the
connection's ARN (local/iam.py), or the answer is 403."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiohttp import WSCloseCode, web

from . import iam


def _gone() -> web.Response:
    return web.json_response({"message": None}, status=410, headers={"x-amzn-ErrorType": "GoneException"})


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _forbidden(code: str, message: str) -> web.Response:
    return web.json_response({"message": message}, status=403, headers={"x-amzn-ErrorType": code})


class ConnectionsApi:
    def __init__(
        self,
        find: Callable[[str], object | None],
        max_frame_bytes: int,
        authorizer: iam.Authorizer | None = None,
        stage_arn: str = "",
    ):
        self.find = find  # connection id -> the open gateway Connection, or None
        self.max_frame_bytes = max_frame_bytes
        self.authorizer = authorizer  # None: no IAM (the gateway's own tests)
        self.stage_arn = stage_arn  # arn:aws:execute-api:<region>:<account>:<api id>/<stage>

    def routes(self, stage: str) -> list[web.RouteDef]:
        return [
            web.route("*", f"/{stage}/@connections/{{id}}", self.handle),
            web.route("*", "/@connections/{id}", self.handle),
        ]

    async def handle(self, request: web.Request) -> web.Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        conn = self.find(request.match_info["id"])
        if conn is None:
            return _gone()
        if request.method == "POST":
            data = await request.read()
            if len(data) > self.max_frame_bytes:
                return web.json_response(
                    {"message": "Message too long"},
                    status=413,
                    headers={"x-amzn-ErrorType": "PayloadTooLargeException"},
                )
            conn.post(data)  # accepted at once, as on AWS; the client reads it at its own pace
            return web.Response(status=200)
        if request.method == "GET":
            return web.json_response(
                {
                    "ConnectedAt": _iso(conn.connected_at),
                    "Identity": {"SourceIp": conn.client.source_ip, "UserAgent": conn.client.user_agent},
                    "LastActiveAt": _iso(conn.last_active),
                }
            )
        if request.method == "DELETE":
            await conn.close(WSCloseCode.OK)
            return web.Response(status=204)
        return web.Response(status=405)

    def _refusal(self, request: web.Request) -> web.Response | None:
        """API Gateway's 403 for a request its signer's role may not make, else None."""
        if self.authorizer is None:
            return None
        if "Authorization" not in request.headers:
            return _forbidden("MissingAuthenticationTokenException", "Missing Authentication Token")
        role = self.authorizer.caller(request.headers)
        if role is None:
            return _forbidden("UnrecognizedClientException", "The security token included in the request is invalid.")
        action = "execute-api:ManageConnections"
        resource = f"{self.stage_arn}/{request.method}/@connections/{request.match_info['id']}"
        decision = self.authorizer.check(role, action, resource)
        if decision.allowed:
            return None
        return _forbidden("AccessDeniedException", iam.not_authorized(role.principal, action, resource, decision))
