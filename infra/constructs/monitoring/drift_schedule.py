"""EventBridge Scheduler schedule that starts the drift pipeline (engine `drift_job`) once per window.

The target is Scheduler's universal target for SageMaker StartPipelineExecution, because only a target's
Input gets Scheduler's context attributes substituted: WindowEnd is `<aws.scheduler.scheduled-time>`, and
the client token is built from it, so a retried delivery of the same run starts one execution, not two.
The schedule's payload is encrypted with the ML key; a run Scheduler could not deliver after its retries
lands in a KMS-encrypted dead-letter queue, whose depth alarms on the ops topic. Its role may start this one
pipeline and nothing else.
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.compliance import Finding, acknowledge, acknowledge_grant_policy, grant_policy_of
from infra.constructs.foundation.ops_notifications import alarm_on_dead_letters
from infra.grants import grant_key
from infra.template_hygiene import keep_only_dependencies

SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
START_PIPELINE_ACTION = "sagemaker:startPipelineExecution"
RETRY_ATTEMPTS = 3
MAX_EVENT_AGE = cdk.Duration.hours(1)


def start_request(pipeline_name: str) -> dict[str, object]:
    """The StartPipelineExecution request Scheduler sends (before it substitutes the scheduled time)."""
    return {
        "PipelineName": pipeline_name,
        "PipelineExecutionDescription": f"Scheduled drift check of the window ending {SCHEDULED_TIME}",
        "PipelineParameters": [{"Name": "WindowEnd", "Value": SCHEDULED_TIME}],
        "ClientRequestToken": f"{pipeline_name}-{SCHEDULED_TIME}",
    }


class DriftSchedule(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        schedule_name: str,
        schedule_expression: str,
        pipeline_name: str,
        pipeline_arn: str,
        payload_key: kms.IKey,
        dead_letter_key: kms.IKey,
        ops_topic: sns.ITopic,
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=dead_letter_key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.dead_letters, Finding.SCHEDULE_DEAD_LETTER_QUEUE)
        default_group = stack.format_arn(service="scheduler", resource="schedule-group", resource_name="default")
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": default_group}},
            ),
            description=f"EventBridge Scheduler: start {pipeline_name} and nothing else",
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[pipeline_arn])
        )
        self.role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sqs:SendMessage"], resources=[self.dead_letters.queue_arn])
        )
        grant_key(self.role, dead_letter_key, via="sqs", write=True)
        # Scheduler decrypts the payload with the execution role's permissions when it invokes the target.
        self.role.add_to_principal_policy(iam.PolicyStatement(actions=["kms:Decrypt"], resources=[payload_key.key_arn]))
        acknowledge_grant_policy(self.role)
        self.schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            name=schedule_name,
            description=f"Starts {pipeline_name} over the window that ends at each scheduled time",
            schedule_expression=schedule_expression,
            schedule_expression_timezone="UTC",
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            kms_key_arn=payload_key.key_arn,
            target=scheduler.CfnSchedule.TargetProperty(
                arn=f"arn:{stack.partition}:scheduler:::aws-sdk:{START_PIPELINE_ACTION}",
                role_arn=self.role.role_arn,
                input=json.dumps(start_request(pipeline_name), separators=(",", ":")),
                dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dead_letters.queue_arn),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_retry_attempts=RETRY_ATTEMPTS,
                    maximum_event_age_in_seconds=int(MAX_EVENT_AGE.to_seconds()),
                ),
            ),
        )
        # Scheduler checks the role when the schedule is created: its policy must exist first.
        keep_only_dependencies(self.schedule, grant_policy_of(self.role))
        self.dead_letter_alarm = self._alarm_on_dead_letters(schedule_name, ops_topic)

    def _alarm_on_dead_letters(self, schedule_name: str, ops_topic: sns.ITopic) -> cloudwatch.Alarm:
        description = (f"{schedule_name}: Scheduler could not start the drift pipeline; the request is in the "
                       "dead-letter queue (docs/monitoring.md)")
        return alarm_on_dead_letters(self, self.dead_letters, description, ops_topic)
