"""The whole backend in one Stack: tables, identity, functions, WebSocket API, push bus,
monitoring. Each is a construct of its own, which grants what it owns; the stack only
joins them and turns the config into their properties."""

from __future__ import annotations

from aws_cdk import Annotations, CfnOutput, Stack
from constructs import Construct

from .api import WebSocket
from .config import StackConfig
from .functions import RETENTION, Functions
from .identity import Identity
from .monitoring import Monitoring
from .push import PushBus
from .storage import Storage

DEV_AUTH_WARNING = (
    "auth=dev: $connect trusts ?userId= as given, so anyone who knows the URL can act as any user. "
    "Use it only for local runs and throwaway stacks."
)


class MessagingStack(Stack):
    def __init__(self, scope: Construct, id: str, *, config: StackConfig, **kwargs) -> None:
        super().__init__(
            scope, id, description="Real-time messaging backend (WebSocket API, DynamoDB, Lambda)", **kwargs
        )
        storage = Storage(
            self,
            "Storage",
            retain_data=config.retain_data,
            keep_conversation_index=config.keep_conversation_index,
        )
        identity = Identity(
            self,
            "Identity",
            auth=config.auth,
            user_pool_id=config.user_pool_id,
            user_pool_client_ids=config.user_pool_client_ids,
            user_pool_issuer=config.user_pool_issuer,
            retain_data=config.retain_data,
        )
        functions = self._functions(config, storage, identity)
        # Least privilege: each function gets exactly the DynamoDB calls it makes.
        storage.grant_connect(functions.connect)
        storage.grant_disconnect(functions.disconnect)
        storage.grant_message(functions.message)
        # the routes, and the message function's posts to connections (stacks/api.py)
        websocket = self._websocket(config, functions)
        # The push hand-off (stacks/push.py). "PushEvents" names the bus: keep the id and
        # the stack as its scope, or the bus is replaced.
        self.push_bus = PushBus(self, "PushEvents", message=functions.message, preview=config.push_preview)
        monitoring = self._monitoring(config, storage, functions, websocket)
        self._outputs(config, storage, identity, websocket, monitoring)
        if config.auth == "dev":
            Annotations.of(self).add_warning_v2("@realtime-messaging/dev-auth", DEV_AUTH_WARNING)

    def _functions(self, config: StackConfig, storage: Storage, identity: Identity) -> Functions:
        return Functions(
            self,
            "Functions",
            environment={
                **storage.environment,
                "CONNECTION_TTL_SECONDS": str(config.connection_ttl_hours * 3600),
                "MAX_CONTENT_BYTES": str(config.max_content_bytes),
            },
            connect_environment=identity.environment,
            log_retention_days=config.log_retention_days,
            retain_data=config.retain_data,
            memory_mb=config.memory_mb,
        )

    def _websocket(self, config: StackConfig, functions: Functions) -> WebSocket:
        return WebSocket(
            self,
            "WebSocket",
            stage_name=config.stage,
            connect=functions.connect,
            disconnect=functions.disconnect,
            message=functions.message,
            throttle=config.throttle,
            connect_throttle=config.connect_throttle,
            access_log_retention=RETENTION[config.log_retention_days] if config.access_logs else None,
            retain_data=config.retain_data,
            domain=(config.domain_name, config.certificate_arn) if config.domain_name else None,
        )

    def _monitoring(
        self, config: StackConfig, storage: Storage, functions: Functions, websocket: WebSocket
    ) -> Monitoring:
        return Monitoring(
            self,
            "Monitoring",
            functions={"Connect": functions.connect, "Disconnect": functions.disconnect, "Message": functions.message},
            message_function=functions.message,
            tables={
                "Connections": storage.connections,
                "Messages": storage.messages,
                "Contents": storage.contents,
                "Conversations": storage.conversations,
            },
            api_id=websocket.api.api_id,
            stage_name=config.stage,
            alarm_email=config.alarm_email,
        )

    def _outputs(
        self,
        config: StackConfig,
        storage: Storage,
        identity: Identity,
        websocket: WebSocket,
        monitoring: Monitoring,
    ) -> None:
        """The stack's outputs, in the stack itself: an output's logical ID is its path."""
        CfnOutput(self, "WebSocketUrl", value=websocket.stage.url, description="Connect here (wss://)")
        CfnOutput(self, "CallbackUrl", value=websocket.stage.callback_url, description="@connections management API")
        if websocket.domain is not None:
            CfnOutput(self, "CustomDomainUrl", value=f"wss://{config.domain_name}", description="Connect here too")
            CfnOutput(
                self,
                "CustomDomainTarget",
                value=websocket.domain.regional_domain_name,
                description=f"DNS: a CNAME (or an alias A record) from {config.domain_name} to this",
            )
            CfnOutput(self, "CustomDomainHostedZoneId", value=websocket.domain.regional_hosted_zone_id)
        CfnOutput(self, "ConnectionsTableName", value=storage.connections.table_name)
        CfnOutput(self, "MessagesTableName", value=storage.messages.table_name)
        CfnOutput(self, "ConversationsTableName", value=storage.conversations.table_name)
        CfnOutput(self, "ContentsTableName", value=storage.contents.table_name)
        CfnOutput(self, "AuthMode", value=config.auth)
        CfnOutput(self, "AlarmTopicArn", value=monitoring.topic.topic_arn, description="Subscribe to hear of alarms")
        CfnOutput(self, "DashboardName", value=monitoring.dashboard.dashboard_name)
        CfnOutput(self, "PushEventBusName", value=self.push_bus.event_bus_name, description="Route push events")
        CfnOutput(self, "PushEventBusArn", value=self.push_bus.event_bus_arn)
        if identity.user_pool_id:
            CfnOutput(self, "UserPoolId", value=identity.user_pool_id)
            CfnOutput(self, "UserPoolClientId", value=identity.client_ids[0])
