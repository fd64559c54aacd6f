"""The environment's operations topic: every alarm and operational notice publishes here.

The topic is encrypted with its own key, whose policy lets exactly the publishers use it:
CloudWatch alarms and EventBridge rules of this account, and its AWS Budgets (service principals
with aws:SourceAccount / aws:SourceArn conditions), and roles that the composing stacks grant
explicitly (`grant_publish`). A topic whose key no publisher can use drops every alert.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.config import NotificationConfig
from infra.constructs.foundation.encryption_keys import key_policy
from infra.grants import add_statements

# (service principal, ARN service, whether its ARNs name a region, resource pattern of this account's publishers)
SERVICE_PUBLISHERS = (
    ("cloudwatch.amazonaws.com", "cloudwatch", True, "alarm:*"),
    ("events.amazonaws.com", "events", True, "rule/*"),
    ("budgets.amazonaws.com", "budgets", False, "budget/*"),  # arn:aws:budgets::<account>:budget/<name>
)
KEY_USE_FOR_PUBLISHING = ["kms:Decrypt", "kms:GenerateDataKey"]


def ops_topic_name(env_name: str) -> str:
    """Named: operators subscribe to it, and stacks import it by ARN without a cross-stack export."""
    return f"telecom-ml-{env_name}-ops"


class OpsNotifications(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        notifications: tuple[NotificationConfig, ...],
        key_admin_role_names: tuple[str, ...],
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.env_name = env_name
        self.key = kms.Key(
            self,
            "Key",
            alias=f"telecom-ml/{env_name}/ops",
            description="Telecom ML reference solution: operations topic (alarms and notices)",
            enable_key_rotation=True,
            rotation_period=cdk.Duration.days(365),
            pending_window=cdk.Duration.days(30),
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
            policy=key_policy(stack, key_admin_role_names),
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            topic_name=ops_topic_name(env_name),
            display_name=f"Telecom ML {env_name}: operations",
            master_key=self.key,
            enforce_ssl=True,
        )
        for service, arn_service, regional, resource in SERVICE_PUBLISHERS:
            region = stack.region if regional else ""
            publishers = f"arn:{stack.partition}:{arn_service}:{region}:{stack.account}:{resource}"
            source = {"StringEquals": {"aws:SourceAccount": stack.account}, "ArnLike": {"aws:SourceArn": publishers}}
            principal = iam.ServicePrincipal(service)
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Publish{arn_service.capitalize()}",
                    principals=[principal],
                    actions=KEY_USE_FOR_PUBLISHING,
                    resources=["*"],
                    conditions=source,
                )
            )
            self.topic.add_to_resource_policy(
                iam.PolicyStatement(
                    sid=f"Publish{arn_service.capitalize()}",
                    principals=[principal],
                    actions=["sns:Publish"],
                    resources=[self.topic.topic_arn],
                    conditions=source,
                )
            )
        for subscriber in notifications:
            if subscriber.protocol == "email":
                self.topic.add_subscription(subscriptions.EmailSubscription(subscriber.endpoint))
            else:
                self.topic.add_subscription(subscriptions.UrlSubscription(subscriber.endpoint))

    def import_topic(self, scope: Construct) -> sns.ITopic:
        """The topic in `scope`'s stack, by its literal ARN: its policy stays here, so no stack cycle."""
        arn = cdk.Stack.of(scope).format_arn(service="sns", resource=ops_topic_name(self.env_name))
        return sns.Topic.from_topic_arn(scope, "OpsTopic", arn)

    def grant_publish(self, role: iam.IRole) -> None:
        """sns:Publish on this topic and use of its key, in `role`'s own policy."""
        stack = cdk.Stack.of(role)
        topic_arn = stack.format_arn(service="sns", resource=ops_topic_name(self.env_name))
        key_use = iam.PolicyStatement(
            actions=KEY_USE_FOR_PUBLISHING,
            resources=[self.key.key_arn],
            conditions={"StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}},
        )
        add_statements(role, [iam.PolicyStatement(actions=["sns:Publish"], resources=[topic_arn]), key_use])


def alarm_on_dead_letters(scope: Construct, queue: sqs.IQueue, description: str, ops_topic: sns.ITopic
                          ) -> cloudwatch.Alarm:
    """`DeadLettersAlarm` in `scope`: any message visible in `queue` (5-minute maximum) notifies the ops topic."""
    alarm = cloudwatch.Alarm(
        scope,
        "DeadLettersAlarm",
        alarm_description=description,
        metric=queue.metric_approximate_number_of_messages_visible(
            period=cdk.Duration.minutes(5), statistic="Maximum"
        ),
        threshold=1,
        evaluation_periods=1,
        comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
    )
    alarm.add_alarm_action(cw_actions.SnsAction(ops_topic))
    return alarm
