"""The one way a training pipeline execution starts: FeaturesReady (and retraining alarms) -> start_training.

An EventBridge rule matches only this environment's FeaturesReady (source, detail-type and
detail.environment) and invokes the function asynchronously. The function (lambdas/start_training)
decides under a DynamoDB conditional-write lock and writes an audit record per decision into the
same table (customer-managed key, point-in-time recovery, TTL). A failed invocation is retried
`retry_attempts` times, then kept in the dead-letter queue, where EventBridge also puts events it
could not deliver; a message there alarms on the ops topic. Powertools comes from the AWS-published
layer of the pinned version (requirements/lambdas.txt), named through AWS's public SSM parameter
and resolved by CloudFormation at deploy time: no lookup at synth, nothing installed at run time.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.compliance import (
    Finding,
    acknowledge,
    acknowledge_grant_policy,
    acknowledge_resource_wildcard,
    grant_policy_of,
)
from infra.config import RetrainingConfig
from infra.constructs.foundation.log_retention import encrypted_log_group
from infra.constructs.foundation.ops_notifications import alarm_on_dead_letters
from infra.constructs.lake.lake_orchestration import FEATURES_READY_DETAIL_TYPE, FEATURES_READY_SOURCE
from infra.grants import grant_key
from infra.runtime_code import runtime_path
from infra.template_hygiene import keep_only_dependencies

POWERTOOLS_VERSION = "3.37.0"  # = requirements/lambdas.txt (a test keeps them equal)
PYTHON_VERSION = "3.11"  # the project's one Python (Glue 5.1, SageMaker jobs, tests)
FUNCTION_TIMEOUT = cdk.Duration.seconds(60)
# A decider holds the lock this long while starting; longer than the function may run, so a live
# decider is never overtaken, and short enough that a crashed attempt's retry can take it over.
START_LOCK_SECONDS = 3 * 60
# Only the runtime package ships: lambdas/start_training/*.py as start_training/ (no caches, no siblings).
CODE_ROOT = "lambdas"
CODE_INCLUDE = ["*", "!start_training", "!start_training/*.py"]
HANDLER = "start_training.handler.handler"
ALARM_SOURCE = "aws.cloudwatch"
ALARM_DETAIL_TYPE = "CloudWatch Alarm State Change"
TTL_ATTRIBUTE = "expiration"
# In a VPC the function needs ENI actions that have no resource-level permissions: AWS's managed policy.
VPC_ACCESS_POLICY = "service-role/AWSLambdaVPCAccessExecutionRole"


def pipeline_name_for(env_name: str) -> str:
    return f"telecom-ml-{env_name}-churn"


def retrain_alarm_prefix(env_name: str) -> str:
    """Alarms named with this prefix may start training (= lambdas/start_training/events.py)."""
    return f"telecom-ml-{env_name}-retrain-"


def powertools_layer_arn(version: str = POWERTOOLS_VERSION) -> str:
    """AWS publishes each Powertools layer version's ARN as a public SSM parameter in every region."""
    python = PYTHON_VERSION
    return f"{{{{resolve:ssm:/aws/service/powertools/python/x86_64/python{python}/{version}}}}}"


class TrainingTrigger(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        pipeline_name: str,
        pipeline_arn: str,
        config: RetrainingConfig,
        ml_key: kms.IKey,
        dead_letter_key: kms.IKey,
        logs_key: kms.IKey,
        ops_topic: sns.ITopic,
        log_retention_days: int,
        destroy_on_removal: bool,
        vpc: ec2.IVpc | None = None,
        subnets: ec2.SubnetSelection | None = None,
        security_group: ec2.ISecurityGroup | None = None,
    ) -> None:
        """`dead_letter_key` must let EventBridge rules of this account write (the Foundation's data key
        does); `ml_key` encrypts the state table. With `vpc`, `subnets` and `security_group` are required."""
        super().__init__(scope, construct_id)
        if pipeline_name != pipeline_name_for(env_name):
            raise ValueError(f"pipeline_name '{pipeline_name}' is not '{pipeline_name_for(env_name)}'")
        if (vpc is None) != (subnets is None) or (vpc is None) != (security_group is None):
            raise ValueError("vpc, subnets and security_group go together (all or none)")
        self.env_name = env_name
        self._removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self.table = self._state_table(ml_key, destroy_on_removal)
        self.dead_letters = self._dead_letter_queue(dead_letter_key)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"start_training ({env_name}): decide and start the training pipeline",
        )
        self.log_group = encrypted_log_group(self, logs_key, log_retention_days, self._removal)
        if vpc is not None:
            self.role.add_managed_policy(iam.ManagedPolicy.from_aws_managed_policy_name(VPC_ACCESS_POLICY))
        self.function = self._function(env_name, pipeline_name, config, vpc, subnets, security_group)
        # Execution ARNs are made at run time: DescribePipelineExecution names them by this pattern.
        self.execution_arns = f"{pipeline_arn}/execution/*"
        self._grant(pipeline_arn, ml_key, dead_letter_key)
        self._acknowledge(in_vpc=vpc is not None)
        keep_only_dependencies(self.function, grant_policy_of(self.role))
        self._target = targets.LambdaFunction(
            self.function,
            dead_letter_queue=self.dead_letters,
            retry_attempts=8,
            max_event_age=cdk.Duration.hours(24),
        )
        self.rule = events.Rule(
            self,
            "OnFeaturesReady",
            description=f"The data lake's FeaturesReady for {env_name} starts the training trigger",
            event_pattern=events.EventPattern(
                source=[FEATURES_READY_SOURCE],
                detail_type=[FEATURES_READY_DETAIL_TYPE],
                detail={"environment": [env_name]},
            ),
            targets=[self._target],
        )
        self.dead_letter_alarm = self._alarm_on_dead_letters(ops_topic)

    def retrain_on_alarms(self) -> events.Rule:
        """Also trigger when one of this environment's retraining alarms (named `retrain_alarm_prefix`)
        goes to ALARM; the function trains on the latest snapshot it has seen."""
        return events.Rule(
            self,
            "OnRetrainingAlarm",
            description=f"A retraining alarm of {self.env_name} in ALARM starts the training trigger",
            event_pattern=events.EventPattern(
                source=[ALARM_SOURCE],
                detail_type=[ALARM_DETAIL_TYPE],
                detail={
                    "alarmName": events.Match.prefix(retrain_alarm_prefix(self.env_name)),
                    "state": {"value": ["ALARM"]},
                },
            ),
            targets=[self._target],
        )

    def _state_table(self, key: kms.IKey, destroy_on_removal: bool) -> dynamodb.Table:
        """Lock, daily counters, latest snapshot, audit and idempotency records (docs/retraining-trigger.md)."""
        return dynamodb.Table(
            self,
            "State",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute=TTL_ATTRIBUTE,
            deletion_protection=not destroy_on_removal,
            removal_policy=self._removal,
        )

    def _dead_letter_queue(self, key: kms.IKey) -> sqs.Queue:
        queue = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=self._removal,
        )
        # cdk-nag sees that this queue is the function's dead-letter queue: no SQS3 finding to acknowledge.
        return queue

    def _function(
        self,
        env_name: str,
        pipeline_name: str,
        config: RetrainingConfig,
        vpc: ec2.IVpc | None,
        subnets: ec2.SubnetSelection | None,
        security_group: ec2.ISecurityGroup | None,
    ) -> lambda_.Function:
        hours = 3600
        return lambda_.Function(
            self,
            "Function",
            description=f"start_training ({env_name}): the one way a training pipeline execution starts",
            runtime=lambda_.Runtime.PYTHON_3_11,
            architecture=lambda_.Architecture.X86_64,
            handler=HANDLER,
            code=lambda_.Code.from_asset(str(runtime_path(CODE_ROOT)), exclude=CODE_INCLUDE),
            layers=[lambda_.LayerVersion.from_layer_version_arn(self, "Powertools", powertools_layer_arn())],
            role=self.role,
            memory_size=256,
            timeout=FUNCTION_TIMEOUT,
            reserved_concurrent_executions=config.reserved_concurrency,
            retry_attempts=config.retry_attempts,
            max_event_age=cdk.Duration.hours(6),
            dead_letter_queue=self.dead_letters,
            tracing=lambda_.Tracing.ACTIVE,
            log_group=self.log_group,
            vpc=vpc,
            vpc_subnets=subnets,
            security_groups=[security_group] if security_group else None,
            environment={
                "ENVIRONMENT_NAME": env_name,
                "PIPELINE_NAME": pipeline_name,
                "TABLE_NAME": self.table.table_name,
                "COOLDOWN_SECONDS": str(config.cooldown_hours * hours),
                "DAILY_CAP": str(config.daily_cap),
                "MAX_RUN_SECONDS": str(config.max_run_hours * hours),
                "START_LOCK_SECONDS": str(START_LOCK_SECONDS),
                "DUPLICATE_WINDOW_SECONDS": str(config.duplicate_window_hours * hours),
                "AUDIT_RETENTION_DAYS": str(config.audit_retention_days),
                "POWERTOOLS_SERVICE_NAME": "start-training",
                "POWERTOOLS_LOG_LEVEL": "INFO",
            },
        )

    def _grant(self, pipeline_arn: str, ml_key: kms.IKey, dead_letter_key: kms.IKey) -> None:
        """Exactly what the function calls, on exactly its resources (sqs:SendMessage to the dead-letter
        queue and the X-Ray statement are added by CDK for `dead_letter_queue` and `tracing`)."""
        self.log_group.grant_write(self.role)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
                resources=[self.table.table_arn],
            )
        )
        grant_key(self.role, ml_key, via="dynamodb", write=True)
        grant_key(self.role, dead_letter_key, via="sqs", write=True)
        self.role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:StartPipelineExecution", "sagemaker:ListPipelineExecutions"],
                resources=[pipeline_arn],
            )
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:DescribePipelineExecution"], resources=[self.execution_arns])
        )

    def _acknowledge(self, *, in_vpc: bool) -> None:
        acknowledge_grant_policy(self.role, Finding.LAMBDA_XRAY_TRACING)
        acknowledge_resource_wildcard(
            grant_policy_of(self.role), self.execution_arns, Finding.PIPELINE_EXECUTIONS_OF_ONE_PIPELINE
        )
        acknowledge(self.function, Finding.LAMBDA_RUNTIME_IS_THE_PROJECT_PYTHON)
        acknowledge(self.table, Finding.TRIGGER_STATE_TABLE_RECOVERY)
        if in_vpc:
            acknowledge(self.role, Finding.LAMBDA_VPC_ACCESS_MANAGED_POLICY)
        else:
            acknowledge(self.function, Finding.LAMBDA_OUTSIDE_VPC_IN_ISOLATED_MODE)

    def _alarm_on_dead_letters(self, ops_topic: sns.ITopic) -> cloudwatch.Alarm:
        description = (f"Training trigger ({self.env_name}): an event failed or could not be delivered; "
                       "see the dead-letter runbook in docs/retraining-trigger.md")
        return alarm_on_dead_letters(self, self.dead_letters, description, ops_topic)

