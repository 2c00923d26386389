"""The three Lambda functions. One plain asset (lambda_src/, standard library plus the
runtime's boto3) serves all three: no Docker, no bundling, no layers."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from .api import MESSAGE_ROUTES
from .contract import contract
from .lifecycle import removal_policy

LAMBDA_SRC = Path(__file__).resolve().parent.parent / "lambda_src"
# Files in lambda_src that are not runtime code.
ASSET_EXCLUDE = ["**/__pycache__", "**/*.pyc", ".pytest_cache"]
# CloudWatch's retention choices by number of days (stacks/config.py validates against these).
RETENTION = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


# Each function's time limit, in seconds. A DynamoDB call takes 6 s at its slowest (two
# attempts that time out, and the backoff between them: lambda_src/chat/aws.py), so:
# $connect, a JWKS fetch (4 s: urlopen's 2 s timeout bounds the connect and then the
# reply's reads, not a DNS lookup) and a PutItem, with 2 s to spare for a cold
# container's boto3 import; $disconnect, a DeleteItem and the lastSeen PutItem, 3 s to
# spare; the message function, API Gateway's 29 s, within which it starts no call that
# could not end in time with room for its error frame (aws.OutOfTime).
# tests/unit/test_time_limits.py checks these against the calls each function makes.
CONNECT_TIMEOUT_S = 12
DISCONNECT_TIMEOUT_S = 15
MESSAGE_TIMEOUT_S = contract.INTEGRATION_TIMEOUT_S


class Functions(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: dict[str, str],
        connect_environment: dict[str, str],
        log_retention_days: int,
        retain_data: bool,
        memory_mb: int,
    ) -> None:
        super().__init__(scope, id)
        self._code = lambda_.Code.from_asset(str(LAMBDA_SRC), exclude=ASSET_EXCLUDE)
        self._retention = RETENTION[log_retention_days]
        self._removal = removal_policy(retain_data)
        self._memory_mb = memory_mb
        self.connect = self._function(
            "Connect",
            "connect.handler",
            CONNECT_TIMEOUT_S,
            {**environment, **connect_environment},
            "WebSocket $connect: authenticate, record the connection",
        )
        self.disconnect = self._function(
            "Disconnect",
            "disconnect.handler",
            DISCONNECT_TIMEOUT_S,
            environment,
            "WebSocket $disconnect: forget the connection, record when its user was last seen",
        )
        # sync may deliver a long backlog: it stops while it still has time for its slowest
        # next step and its last frame (syncComplete with a cursor), and the client continues.
        self.message = self._function(
            "Message",
            "message.handler",
            MESSAGE_TIMEOUT_S,
            environment,
            "WebSocket client actions: " + ", ".join([*MESSAGE_ROUTES, "$default"]),
        )

    def _function(self, name: str, handler: str, timeout_s: int, env: dict[str, str], description: str):
        """A function of the shared asset, with a log group and a role of its own."""
        log_group = logs.LogGroup(self, f"{name}Logs", retention=self._retention, removal_policy=self._removal)
        # Its own role, allowed to write only to its own log group. (The default role
        # would carry AWSLambdaBasicExecutionRole: logs:CreateLogGroup and writes on "*".)
        role = iam.Role(self, f"{name}Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"))
        log_group.grant_write(role)
        fn = lambda_.Function(
            self,
            name,
            role=role,
            description=description,
            runtime=lambda_.Runtime.PYTHON_3_13,
            architecture=lambda_.Architecture.ARM_64,
            handler=handler,
            code=self._code,
            memory_size=self._memory_mb,
            timeout=Duration.seconds(timeout_s),
            environment=env,
            log_group=log_group,
            logging_format=lambda_.LoggingFormat.TEXT,
        )
        # CDK makes the function depend on its role and the role's policy. The role is
        # already implied by the Role GetAtt (cfn-lint W3005), so keep only the policy:
        # the function must not run before it may write its logs.
        policy = role.node.find_child("DefaultPolicy").node.default_child
        fn.node.default_child.add_override("DependsOn", [Stack.of(self).get_logical_id(policy)])
        Validations.of(fn).acknowledge(
            Acknowledgment(
                id="AwsSolutions-L1",
                reason="python3.13 is the runtime this code is written and tested for; moving to a newer "
                "runtime is a deliberate change with its own tests, not something a linter should force.",
            )
        )
        return fn
