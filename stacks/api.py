"""The WebSocket API: routes selected by the frame's ``action``, one auto-deployed stage
with throttling, and opt-in access logs.

To add a client action: add it to ACTIONS in lambda_src/chat/contract.py, which gives it
its route here, and its function to ACTIONS in lambda_src/chat/actions.py.
"""

from __future__ import annotations

import json

import jsii
from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_apigateway as apigw_v1
from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk.aws_apigatewayv2_integrations import WebSocketLambdaIntegration
from constructs import Construct

from .contract import contract
from .lifecycle import removal_policy

ROUTE_SELECTION = "$request.body.action"
# Routes served by the message function ($default catches everything else).
MESSAGE_ROUTES = contract.ACTIONS
# One JSON line per request. Deliberately no query string: in cognito mode it holds the token.
ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId",
    "time": "$context.requestTimeEpoch",
    "ip": "$context.identity.sourceIp",
    "connectionId": "$context.connectionId",
    "eventType": "$context.eventType",
    "routeKey": "$context.routeKey",
    "status": "$context.status",
    "integrationLatency": "$context.integrationLatency",
    "error": "$context.error.message",
}


@jsii.implements(apigw.IAccessLogSettings)
class _AccessLogs:
    """IAccessLogSettings is an interface, not a struct, in aws-cdk-lib's Python binding."""

    def __init__(self, destination: apigw.IAccessLogDestination, format: apigw_v1.AccessLogFormat):
        self._destination, self._format = destination, format

    @property
    def destination(self) -> apigw.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw_v1.AccessLogFormat:
        return self._format


class WebSocket(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        connect: lambda_.IFunction,
        disconnect: lambda_.IFunction,
        message: lambda_.Function,
        throttle: tuple[int, int],
        connect_throttle: tuple[int, int],
        access_log_retention: logs.RetentionDays | None,
        retain_data: bool,
        domain: tuple[str, str] | None = None,
    ) -> None:
        """domain: (name, ACM certificate ARN) to serve the stage on a custom domain too."""
        super().__init__(scope, id)
        self.api = self._api(connect, disconnect, message)
        access_logs = self._access_logs(access_log_retention, retain_data)
        # A custom domain: the stage mapped at its root, so clients connect to wss://<name>.
        # Posts keep going to the execute-api URL (CALLBACK_URL): the domain refuses them.
        self.domain = None
        if domain is not None:
            name, certificate_arn = domain
            self.domain = apigw.DomainName(
                self,
                "Domain",
                domain_name=name,
                certificate=acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn),
                security_policy=apigw.SecurityPolicy.TLS_1_2,
            )
        self.stage = self._stage(stage_name, throttle, connect_throttle, access_logs)
        if self.domain is not None:
            apigw.ApiMapping(self, "DomainMapping", api=self.api, domain_name=self.domain, stage=self.stage)
        self._grant_posts(message, stage_name)

    def _api(
        self, connect: lambda_.IFunction, disconnect: lambda_.IFunction, message: lambda_.IFunction
    ) -> apigw.WebSocketApi:
        """The API and its routes: $connect, $disconnect, and the client actions and
        $default to the message function."""
        message_integration = WebSocketLambdaIntegration("Message", message)
        api = apigw.WebSocketApi(
            self,
            "Api",
            description="Real-time messaging",
            route_selection_expression=ROUTE_SELECTION,
            connect_route_options=apigw.WebSocketRouteOptions(
                integration=WebSocketLambdaIntegration("Connect", connect)
            ),
            disconnect_route_options=apigw.WebSocketRouteOptions(
                integration=WebSocketLambdaIntegration("Disconnect", disconnect)
            ),
            default_route_options=apigw.WebSocketRouteOptions(integration=message_integration),
        )
        for route in MESSAGE_ROUTES:
            api.add_route(route, integration=message_integration)
        Validations.of(api).acknowledge(
            Acknowledgment(
                id="AwsSolutions-APIG4",
                reason="Authentication happens once, in $connect: the connect function verifies the Cognito "
                "token (RS256, issuer, client) and refuses with 401. WebSocket APIs allow an authorizer only on "
                "$connect, and every later frame is tied to the connection's verified user.",
            )
        )
        return api

    def _access_logs(self, retention: logs.RetentionDays | None, retain_data: bool) -> _AccessLogs | None:
        """The stage's access logs and their log group, when asked for (retention given)."""
        if retention is None:
            return None
        self.access_log_group = logs.LogGroup(
            self,
            "AccessLogs",
            retention=retention,
            removal_policy=removal_policy(retain_data),
        )
        return _AccessLogs(
            apigw.LogGroupLogDestination(self.access_log_group),
            apigw_v1.AccessLogFormat.custom(json.dumps(ACCESS_LOG_FORMAT, separators=(",", ":"))),
        )

    def _stage(
        self,
        stage_name: str,
        throttle: tuple[int, int],
        connect_throttle: tuple[int, int],
        access_logs: _AccessLogs | None,
    ) -> apigw.WebSocketStage:
        """The one stage, deployed on every change and throttled, $connect more tightly."""
        rate, burst = throttle
        stage = apigw.WebSocketStage(
            self,
            "Stage",
            web_socket_api=self.api,
            stage_name=stage_name,
            auto_deploy=True,
            throttle=apigw.ThrottleSettings(rate_limit=rate, burst_limit=burst),
            access_log_settings=access_logs,
        )
        # $connect runs the token check; a tighter limit keeps a connection flood from
        # turning into a Lambda bill. The L2 stage has no per-route settings, hence the override.
        connect_rate, connect_burst = connect_throttle
        stage.node.default_child.add_property_override(
            "RouteSettings",
            {"$connect": {"ThrottlingRateLimit": connect_rate, "ThrottlingBurstLimit": connect_burst}},
        )
        # A stage naming a route that does not exist yet fails to deploy ("Unable to find
        # Route by key $connect within the provided RouteSettings"): create the route first.
        [connect_route] = [
            c for c in self.api.node.children if isinstance(c, apigw.WebSocketRoute) and c.route_key == "$connect"
        ]
        stage.node.add_dependency(connect_route)
        if access_logs is None:
            Validations.of(stage).acknowledge(
                Acknowledgment(
                    id="AwsSolutions-APIG1",
                    reason="Access logging is opt-in (-c accessLogs=true): WebSocket access logs need API "
                    "Gateway's account-level CloudWatch role, a per-region singleton that this stack does not "
                    "take over in someone's account. See docs/security.md.",
                )
            )
        return stage

    def _grant_posts(self, message: lambda_.Function, stage_name: str) -> None:
        """Only the message function posts to connections, only on this stage, and only posts
        (it never reads or closes one through @connections)."""
        # It posts through the stage's own execute-api URL, never the request's domain:
        # behind a custom domain that one answers 403 to @connections posts.
        message.add_environment("CALLBACK_URL", self.stage.callback_url)
        posts = Stack.of(self).format_arn(
            service="execute-api", resource=self.api.api_id, resource_name=f"{stage_name}/POST/@connections/*"
        )
        iam.Grant.add_to_principal(grantee=message, actions=["execute-api:ManageConnections"], resource_arns=[posts])
        api_id = Stack.of(self).get_logical_id(self.api.node.default_child)
        Validations.of(message.role).acknowledge(  # the grant lands in the role's policy
            Acknowledgment(
                id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:execute-api:<AWS::Region>:<AWS::AccountId>:"
                f"<{api_id}>/{stage_name}/POST/@connections/*]",
                reason="Posts to connections, on this API and stage only; the wildcard is the connection id, "
                "which is new for every connection.",
            )
        )
