"""The WebSocket API: routes selected by the frame's ``action``, one auto-deployed stage.

To add a client action: add its route key to MESSAGE_ROUTES and its function to
ACTIONS in lambda_src/chat/actions.py.
"""

from __future__ import annotations

from aws_cdk import aws_apigatewayv2 as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk.aws_apigatewayv2_integrations import WebSocketLambdaIntegration
from constructs import Construct

ROUTE_SELECTION = "$request.body.action"
# Routes served by the message function ($default catches everything else).
MESSAGE_ROUTES = ("sendMessage", "sync", "markRead", "deleteMessage")


class WebSocket(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage_name: str,
        connect: lambda_.IFunction,
        disconnect: lambda_.IFunction,
        message: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, id)
        message_integration = WebSocketLambdaIntegration("Message", message)
        self.api = apigw.WebSocketApi(
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
            self.api.add_route(route, integration=message_integration)
        self.stage = apigw.WebSocketStage(
            self, "Stage", web_socket_api=self.api, stage_name=stage_name, auto_deploy=True
        )
        # Only the message function posts to connections, and only on this stage.
        self.stage.grant_management_api_access(message)
