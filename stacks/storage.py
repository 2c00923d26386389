"""The Connections, Messages, Contents and Conversations tables. The index names come from
the functions' contract (chat/contract.py); docs/design.md says which access pattern each serves."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Validations
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .contract import contract
from .lifecycle import removal_policy

S = dynamodb.AttributeType.STRING


class Storage(Construct):
    """The tables, and what each function may do with them (``grant_*``: least privilege,
    each function gets exactly the DynamoDB calls it makes)."""

    def __init__(self, scope: Construct, id: str, *, retain_data: bool, keep_conversation_index: bool) -> None:
        super().__init__(scope, id)
        # every table: on demand, and kept or destroyed with the stack as configured
        lifecycle = {
            "billing": dynamodb.Billing.on_demand(),
            "removal_policy": removal_policy(retain_data),
            "deletion_protection": retain_data,
        }
        # the tables a user's data lives in (not the connections, which expire anyway)
        recovery = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)
        self.connections = self._connections(lifecycle)
        # While the upgrade keeps the old index (_old_history_index), history reads it.
        self.history_index = contract.OLD_HISTORY_INDEX if keep_conversation_index else contract.HISTORY_INDEX
        self.messages = dynamodb.TableV2(
            self,
            "Messages",
            partition_key=dynamodb.Attribute(name="messageId", type=S),
            global_secondary_indexes=_message_indexes(keep_conversation_index),
            **lifecycle,
            point_in_time_recovery_specification=recovery,
        )
        # What each message says: its content and the quote of the message it replies
        # to, written once with the message and removed when it is deleted. Apart from
        # the Messages rows, whose status changes would otherwise rewrite the content
        # (with every index copy of it) each time: a status change costs the same for a
        # 16 KB message as for a short one. No index: read by messageId only.
        self.contents = dynamodb.TableV2(
            self,
            "Contents",
            partition_key=dynamodb.Attribute(name="messageId", type=S),
            **lifecycle,
            point_in_time_recovery_specification=recovery,
        )
        self.conversations = self._conversations(lifecycle, recovery)
        # What the functions find the tables by: their names are CloudFormation's, never ours.
        self.environment = {
            "CONNECTIONS_TABLE": self.connections.table_name,
            "MESSAGES_TABLE": self.messages.table_name,
            "CONVERSATIONS_TABLE": self.conversations.table_name,
            "CONTENTS_TABLE": self.contents.table_name,
            "HISTORY_INDEX": self.history_index,
        }

    def _connections(self, lifecycle: dict) -> dynamodb.TableV2:
        # A user's connections with everything a post needs to know (ttl, ack mode).
        # Projecting ALL costs nothing more: an entry changes only when its row is put or
        # deleted. (A projection cannot change in place: the index before ack mode,
        # userId-index with ttl only, had to be replaced: README, Upgrading.)
        return dynamodb.TableV2(
            self,
            "Connections",
            partition_key=dynamodb.Attribute(name="connectionId", type=S),
            time_to_live_attribute="ttl",
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=contract.CONNECTIONS_BY_USER,
                    partition_key=dynamodb.Attribute(name="userId", type=S),
                    projection_type=dynamodb.ProjectionType.ALL,
                )
            ],
            **lifecycle,
        )

    def _conversations(self, lifecycle: dict, recovery: dynamodb.PointInTimeRecoverySpecification) -> dynamodb.TableV2:
        # Who is in each conversation, and each user's list of them. Per conversation:
        # one "#pair" row (its two users, claimed by its first message) and a row per
        # user (userId, peerId, the last message's id and time). User ids cannot
        # contain "#" (lambda_src/chat/protocol.py USER_ID), so the pair row never collides.
        return dynamodb.TableV2(
            self,
            "Conversations",
            partition_key=dynamodb.Attribute(name="conversationId", type=S),
            sort_key=dynamodb.Attribute(name="userId", type=S),
            global_secondary_indexes=[
                # A user's conversations, the latest activity first. Sparse: the pair
                # row has no updatedAt.
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=contract.CONVERSATIONS_BY_USER,
                    partition_key=dynamodb.Attribute(name="userId", type=S),
                    sort_key=dynamodb.Attribute(name="updatedAt", type=S),
                    projection_type=dynamodb.ProjectionType.ALL,
                ),
            ],
            **lifecycle,
            point_in_time_recovery_specification=recovery,
        )

    def grant_connect(self, fn: lambda_.IFunction) -> None:
        """$connect records the connection."""
        _grant(self.connections, fn, "dynamodb:PutItem")

    def grant_disconnect(self, fn: lambda_.IFunction) -> None:
        """$disconnect forgets the connection and records when its user was last seen."""
        _grant(self.connections, fn, "dynamodb:DeleteItem", "dynamodb:PutItem")

    def grant_message(self, fn: lambda_.IFunction) -> None:
        """The client actions: every table, and no DeleteItem where rows are never deleted."""
        _grant(
            self.connections,
            fn,
            "dynamodb:GetItem",
            "dynamodb:Query",
            "dynamodb:DeleteItem",  # a connection whose post answered 410
            "dynamodb:BatchGetItem",  # presence: the #lastSeen: rows
        )
        for table in (self.messages, self.conversations):  # no DeleteItem: messages are soft-deleted
            _grant(
                table,
                fn,
                "dynamodb:PutItem",
                "dynamodb:GetItem",
                "dynamodb:BatchGetItem",
                "dynamodb:UpdateItem",
                "dynamodb:Query",
            )
        # what a message says: written with it, read with it, deleted with it
        _grant(
            self.contents,
            fn,
            "dynamodb:PutItem",
            "dynamodb:GetItem",  # only where a failed conditional put does not return the item
            "dynamodb:BatchGetItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        )


def _grant(table: dynamodb.TableV2, fn: lambda_.IFunction, *actions: str) -> None:
    """The actions on the table itself, and Query on its indexes only (every query the
    store makes names an index): each where it is used. The cdk-nag acknowledgement of the
    "<table>/index/*" wildcard goes on the role that gets it."""
    on_table = [action for action in actions if action != "dynamodb:Query"]
    if on_table:
        iam.Grant.add_to_principal(grantee=fn, actions=on_table, resource_arns=[table.table_arn])
    if "dynamodb:Query" not in actions:
        return
    iam.Grant.add_to_principal(grantee=fn, actions=["dynamodb:Query"], resource_arns=[f"{table.table_arn}/index/*"])
    table_id = Stack.of(table).get_logical_id(table.node.default_child)
    Validations.of(fn.role).acknowledge(
        Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::<{table_id}.Arn>/index/*]",
            reason=f"Query on this table's own indexes only ({', '.join(contract.INDEXES)}), which the "
            "function queries; no other table or account resource.",
        )
    )


def _message_indexes(keep_conversation_index: bool) -> list[dynamodb.GlobalSecondaryIndexPropsV2]:
    """The Messages table's indexes. Each projects what its readers need, and every attribute
    an index copies costs a write unit there each time it changes (bench/write_units.py
    counts them)."""
    indexes = [
        # Sparse: only undelivered messages carry pendingFor (their recipient). All of
        # the row: sync sends each message from here, with its status.
        dynamodb.GlobalSecondaryIndexPropsV2(
            index_name=contract.PENDING_INDEX,
            partition_key=dynamodb.Attribute(name="pendingFor", type=S),
            sort_key=dynamodb.Attribute(name="sentAt", type=S),
            projection_type=dynamodb.ProjectionType.ALL,
        ),
        # Sparse: only replies carry replyToMessageId. Deleting a message finds the
        # replies that quote it here, and takes its text out of them.
        dynamodb.GlobalSecondaryIndexPropsV2(
            index_name=contract.REPLIES_INDEX,
            partition_key=dynamodb.Attribute(name="replyToMessageId", type=S),
            projection_type=dynamodb.ProjectionType.KEYS_ONLY,
        ),
        # Sparse: only messages their recipient has not read carry unreadBy (the
        # recipient). A user's unread counts, and "mark this conversation read".
        dynamodb.GlobalSecondaryIndexPropsV2(
            index_name=contract.UNREAD_INDEX,
            partition_key=dynamodb.Attribute(name="unreadBy", type=S),
            sort_key=dynamodb.Attribute(name="conversationId", type=S),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["senderId", "sentAt"],
        ),
        # A conversation's history by time: the keys and the two users, which never
        # change, so a message's status changes (delivered, read, deleted) and its
        # leases write nothing here. history reads the rows and what they say by key.
        dynamodb.GlobalSecondaryIndexPropsV2(
            index_name=contract.HISTORY_INDEX,
            partition_key=dynamodb.Attribute(name="conversationId", type=S),
            sort_key=dynamodb.Attribute(name="sentAt", type=S),
            projection_type=dynamodb.ProjectionType.INCLUDE,
            non_key_attributes=["senderId", "recipientId"],
        ),
    ]
    if keep_conversation_index:
        indexes.insert(1, _old_history_index())
    return indexes


def _old_history_index() -> dynamodb.GlobalSecondaryIndexPropsV2:
    """The index history read before history-index: every attribute, so each change of a
    message's status rewrote its entry. Kept for the first deploy of the upgrade (README,
    Upgrading), while history-index is built; history reads it meanwhile."""
    return dynamodb.GlobalSecondaryIndexPropsV2(
        index_name=contract.OLD_HISTORY_INDEX,
        partition_key=dynamodb.Attribute(name="conversationId", type=S),
        sort_key=dynamodb.Attribute(name="sentAt", type=S),
        projection_type=dynamodb.ProjectionType.ALL,
    )
