"""The Connections and Messages tables. Attribute and index names must match
lambda_src/chat/store.py, which documents the access patterns they serve."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

S = dynamodb.AttributeType.STRING


class Storage(Construct):
    def __init__(self, scope: Construct, id: str, *, retain_data: bool, keep_user_id_index: bool) -> None:
        super().__init__(scope, id)
        removal = RemovalPolicy.RETAIN if retain_data else RemovalPolicy.DESTROY

        # A user's connections with everything a post needs to know (ttl, ack mode).
        # Projecting ALL costs nothing more on rows this small, and a projection cannot
        # change in place: the index before ack mode (userId-index, ttl only) had to be
        # replaced, and keep_user_id_index keeps it for one deploy (README, Upgrading).
        user_indexes = [
            dynamodb.GlobalSecondaryIndexPropsV2(
                index_name="connections-by-user",
                partition_key=dynamodb.Attribute(name="userId", type=S),
                projection_type=dynamodb.ProjectionType.ALL,
            )
        ]
        if keep_user_id_index:
            user_indexes.insert(
                0,
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name="userId-index",
                    partition_key=dynamodb.Attribute(name="userId", type=S),
                    projection_type=dynamodb.ProjectionType.INCLUDE,
                    non_key_attributes=["ttl"],
                ),
            )
        self.connections = dynamodb.TableV2(
            self,
            "Connections",
            partition_key=dynamodb.Attribute(name="connectionId", type=S),
            time_to_live_attribute="ttl",
            global_secondary_indexes=user_indexes,
            billing=dynamodb.Billing.on_demand(),
            removal_policy=removal,
            deletion_protection=retain_data,
        )

        self.messages = dynamodb.TableV2(
            self,
            "Messages",
            partition_key=dynamodb.Attribute(name="messageId", type=S),
            global_secondary_indexes=[
                # Sparse: only undelivered messages carry pendingFor (their recipient).
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name="pending-index",
                    partition_key=dynamodb.Attribute(name="pendingFor", type=S),
                    sort_key=dynamodb.Attribute(name="sentAt", type=S),
                    projection_type=dynamodb.ProjectionType.ALL,
                ),
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name="conversation-index",
                    partition_key=dynamodb.Attribute(name="conversationId", type=S),
                    sort_key=dynamodb.Attribute(name="sentAt", type=S),
                    projection_type=dynamodb.ProjectionType.ALL,
                ),
                # Sparse: only replies carry replyToMessageId. Deleting a message finds the
                # replies that quote it here, and takes its text out of them.
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name="replies-index",
                    partition_key=dynamodb.Attribute(name="replyToMessageId", type=S),
                    projection_type=dynamodb.ProjectionType.KEYS_ONLY,
                ),
            ],
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            removal_policy=removal,
            deletion_protection=retain_data,
        )
