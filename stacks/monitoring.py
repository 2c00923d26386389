"""A dashboard and the alarms that say something is wrong, each to one SNS topic
(docs/operations.md says what each alarm means and what to do)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Duration, Stack, Validations
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from .contract import contract

NAMESPACE = contract.METRICS_NAMESPACE  # lambda_src/chat/log.py writes these metrics
PERIOD = Duration.minutes(5)
# The message function's p99 above this is slow enough for a person to look: about a
# third of its time limit (API Gateway's), where sync starts stopping early.
SLOW_P99 = Duration.seconds(round(contract.INTEGRATION_TIMEOUT_S / 3))
# What every table is asked to do; ThrottledRequests is reported per operation.
TABLE_OPERATIONS = [
    dynamodb.Operation.GET_ITEM,
    dynamodb.Operation.PUT_ITEM,
    dynamodb.Operation.UPDATE_ITEM,
    dynamodb.Operation.DELETE_ITEM,
    dynamodb.Operation.QUERY,
    dynamodb.Operation.BATCH_GET_ITEM,
]


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        functions: dict[str, lambda_.IFunction],
        message_function: lambda_.IFunction,
        tables: dict[str, dynamodb.ITableV2],
        api_id: str,
        stage_name: str,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, id)
        self.topic = self._alarm_topic(alarm_email)
        message_name = message_function.function_name
        internal = _custom("ErrorFrames", {"Function": message_name, "Code": "INTERNAL"})
        gateway = {"ApiId": api_id, "Stage": stage_name}
        integration_errors = cloudwatch.Metric(
            namespace="AWS/ApiGateway", metric_name="IntegrationError", dimensions_map=gateway, period=PERIOD
        ).with_(statistic="Sum")
        failed_push = _custom("FailedPushEvents", {"Function": message_name, "Action": "sendMessage"})

        self.alarms: list[cloudwatch.Alarm] = []
        for label, fn in functions.items():
            self._alarm(f"{label}Errors", fn.metric_errors(period=PERIOD), 1, f"The {label} function failed.")
            self._alarm(
                f"{label}Throttles", fn.metric_throttles(period=PERIOD), 1, f"The {label} function was throttled."
            )
        for label, table in tables.items():
            throttled = table.metric_throttled_requests_for_operations(operations=TABLE_OPERATIONS, period=PERIOD)
            self._alarm(f"{label}Throttled", throttled, 1, f"DynamoDB throttled requests to the {label} table.")
        self._alarm("IntegrationErrors", integration_errors, 1, "API Gateway could not invoke a function.")
        self._alarm("InternalErrorFrames", internal, 1, "Clients were sent INTERNAL: the server failed a frame.")
        self._alarm("PushFailed", failed_push, 1, "Push events for offline recipients could not be put on the bus.")
        slow = message_function.metric_duration(period=PERIOD, statistic="p99")
        self._alarm("MessageSlow", slow, SLOW_P99.to_milliseconds(), "The message function's p99 duration is high.")
        self.dashboard = self._dashboard(functions, message_function, [internal, integration_errors, failed_push])

    def _alarm_topic(self, alarm_email: str | None) -> sns.Topic:
        """The topic every alarm notifies, with alarm_email subscribed to it if given."""
        topic = sns.Topic(self, "Alarms", display_name="Real-time messaging alarms", enforce_ssl=True)
        Validations.of(topic).acknowledge(
            Acknowledgment(
                id="AwsSolutions-SNS2",
                reason="Alarm notifications carry no message content or user data. CloudWatch cannot publish "
                "to a topic encrypted with the AWS managed SNS key, and a customer managed key would add a "
                "monthly KMS charge to a personal stack.",
            )
        )
        # enforce_ssl gives the topic a policy of its own, which replaces the default one that
        # let the account's alarms publish: without this, no alarm would ever notify anyone.
        # Only this account's alarms (aws:SourceAccount, aws:SourceArn: no confused deputy).
        stack = Stack.of(self)
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowThisAccountsAlarms",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "StringEquals": {"aws:SourceAccount": stack.account},
                    "ArnLike": {
                        "aws:SourceArn": f"arn:{stack.partition}:cloudwatch:{stack.region}:{stack.account}:alarm:*"
                    },
                },
            )
        )
        if alarm_email:
            topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        return topic

    def _alarm(self, name: str, metric: cloudwatch.IMetric, threshold: float, what: str) -> None:
        """An alarm at threshold or above in one period, to the topic; missing data is fine."""
        created = metric.create_alarm(
            self,
            name,
            alarm_description=f"{what} See docs/operations.md, '{name}'.",
            threshold=threshold,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        created.add_alarm_action(actions.SnsAction(self.topic))
        self.alarms.append(created)

    def _dashboard(
        self,
        functions: dict[str, lambda_.IFunction],
        message_function: lambda_.IFunction,
        errors: list[cloudwatch.IMetric],
    ) -> cloudwatch.Dashboard:
        """What happens to messages, the errors (those given, then each function's), the
        message function's duration, and the alarms' states."""
        message_name = message_function.function_name

        def counts(*names: str) -> list[cloudwatch.IMetric]:
            return [_custom(n, {"Function": message_name, "Action": a}) for n, a in names]

        dashboard = cloudwatch.Dashboard(self, "Dashboard")
        dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Messages",
                left=counts(
                    ("MessagesStored", "sendMessage"),
                    ("DeliveredLive", "sendMessage"),
                    ("LeftWaiting", "sendMessage"),
                    ("DeliveredBySync", "sync"),
                    ("PushEvents", "sendMessage"),
                ),
            ),
            cloudwatch.GraphWidget(
                title="Errors",
                left=[*errors, *[fn.metric_errors(period=PERIOD) for fn in functions.values()]],
            ),
            cloudwatch.GraphWidget(
                title="Message function duration",
                left=[message_function.metric_duration(period=PERIOD, statistic=s) for s in ("p50", "p99")],
            ),
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=self.alarms),
        )
        return dashboard


def _custom(name: str, dimensions: dict, statistic: str = "Sum") -> cloudwatch.Metric:
    """One of the metrics the functions write (lambda_src/chat/log.py)."""
    return cloudwatch.Metric(
        namespace=NAMESPACE, metric_name=name, dimensions_map=dimensions, statistic=statistic, period=PERIOD
    )
