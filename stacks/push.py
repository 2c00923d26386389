"""The push hand-off: a message that reached no live device of its recipient becomes an
event on this bus, for rules to route to a push provider (docs/operations.md has an
example); no Lambda. The message function alone may put events on it (chat/push.py)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .contract import contract

# The push events the message function puts (chat/contract.py): its role may put only these.
PUSH_SOURCE = contract.PUSH_SOURCE
PUSH_DETAIL_TYPE = contract.PUSH_DETAIL_TYPE


class PushBus(events.EventBus):
    """The bus itself, not a construct around it: the bus's logical ID and its generated
    Name (<stack><id><hash>) both come from its construct path, so a wrapper would
    rename it, and CloudFormation would replace the bus (and drop the rules on it)."""

    def __init__(self, scope: Construct, id: str, *, message: lambda_.Function, preview: bool) -> None:
        """message: the function that puts the events; preview: whether they carry the message's content."""
        super().__init__(scope, id, description="Messages that reached no live device of their recipient")
        # only these events, only on this bus (chat/push.py)
        message.add_to_role_policy(
            iam.PolicyStatement(
                actions=["events:PutEvents"],
                resources=[self.event_bus_arn],
                conditions={"StringEquals": {"events:source": PUSH_SOURCE, "events:detail-type": PUSH_DETAIL_TYPE}},
            )
        )
        message.add_environment("EVENT_BUS_NAME", self.event_bus_name)
        message.add_environment("PUSH_PREVIEW", "true" if preview else "false")
