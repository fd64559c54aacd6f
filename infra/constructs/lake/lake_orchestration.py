"""A new raw subscriber snapshot -> conform job -> feature job -> "features ready" event; a new raw
labels batch -> labels job (same state machine, chosen by the object key's prefix).

EventBridge starts a Step Functions state machine for every object created under the raw
snapshot prefix. A failed job notifies the environment's ops topic from inside the execution;
independently of the execution, a CloudWatch alarm on failed, timed-out or aborted executions
and an EventBridge rule on failed Glue job runs publish there too. An event EventBridge cannot
deliver lands in an encrypted dead-letter queue instead of being dropped.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from infra.compliance import Finding, acknowledge, acknowledge_grant_policy, grant_policy_of
from infra.constructs.foundation.log_retention import retention
from infra.constructs.lake.glue_etl_job import GlueEtlJob
from infra.template_hygiene import keep_only_dependencies
from infra.trust import condition_trust

FEATURES_READY_SOURCE = "telecom-ml.data-lake"
FEATURES_READY_DETAIL_TYPE = "FeaturesReady"


class LakeOrchestration(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        raw_bucket: s3.IBucket,
        snapshot_prefix: str,
        conform_job: GlueEtlJob,
        features_job: GlueEtlJob,
        features_location: str,
        features_table: str,
        ops_topic: sns.ITopic,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
        destroy_on_removal: bool,
        labels_job: GlueEtlJob | None = None,
        labels_prefix: str = "",
    ) -> None:
        super().__init__(scope, construct_id)
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self.ops_topic = ops_topic
        self._env_name = env_name
        definition = self._definition(conform_job, features_job, features_location, features_table)
        if labels_job is not None:
            definition = self._route_labels(labels_job, labels_prefix, definition)
        log_group = logs.LogGroup(
            self,
            "ExecutionLogs",
            encryption_key=logs_key,
            retention=retention(log_retention_days),
            removal_policy=removal,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            timeout=cdk.Duration.hours(4),
            tracing_enabled=True,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
        )
        condition_trust(self.state_machine.role, "states", "stateMachine:*")
        acknowledge_grant_policy(self.state_machine.role, Finding.XRAY_AND_LOG_DELIVERY_WILDCARDS)
        keep_only_dependencies(self.state_machine, grant_policy_of(self.state_machine.role))
        prefixes = [snapshot_prefix, *([labels_prefix] if labels_job is not None else [])]
        self._start_on_new_snapshots(raw_bucket, prefixes, data_key, removal)
        self._alert_on_failures(conform_job, features_job, *([labels_job] if labels_job is not None else []))

    def _definition(
        self, conform_job: GlueEtlJob, features_job: GlueEtlJob, features_location: str, features_table: str
    ) -> sfn.IChainable:
        """conform -> features -> announce FeaturesReady; a failed job notifies, then fails the execution."""
        raw_object = sfn.JsonPath.format(
            "s3://{}/{}", sfn.JsonPath.string_at("$.detail.bucket.name"), sfn.JsonPath.string_at("$.detail.object.key")
        )
        conform = tasks.GlueStartJobRun(
            self,
            "Conform",
            glue_job_name=conform_job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=sfn.TaskInput.from_object({"--input_uri": raw_object}),
            result_path="$.conform",
        )
        build_features = tasks.GlueStartJobRun(
            self,
            "BuildFeatures",
            glue_job_name=features_job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            result_path="$.features",
        )
        announce = tasks.EventBridgePutEvents(
            self,
            "AnnounceFeaturesReady",
            entries=[
                tasks.EventBridgePutEventsEntry(
                    source=FEATURES_READY_SOURCE,
                    detail_type=FEATURES_READY_DETAIL_TYPE,
                    detail=sfn.TaskInput.from_object(
                        {
                            "environment": self._env_name,
                            "features_uri": features_location,
                            "features_table": features_table,
                            "raw_object": raw_object,
                            "execution": sfn.JsonPath.execution_id,
                        }
                    ),
                )
            ],
            result_path=sfn.JsonPath.DISCARD,
        )
        notify = self._failure_chain = self._notify_failure()
        conform.add_catch(notify, result_path="$.error")
        build_features.add_catch(notify, result_path="$.error")
        return conform.next(build_features).next(announce).next(sfn.Succeed(self, "FeaturesReady"))

    def _route_labels(self, labels_job: GlueEtlJob, labels_prefix: str, snapshots: sfn.IChainable) -> sfn.IChainable:
        """Objects under `labels_prefix` run the labels job; every other object the snapshot chain."""
        raw_object = sfn.JsonPath.format(
            "s3://{}/{}", sfn.JsonPath.string_at("$.detail.bucket.name"), sfn.JsonPath.string_at("$.detail.object.key")
        )
        conform_labels = tasks.GlueStartJobRun(
            self,
            "ConformLabels",
            glue_job_name=labels_job.job_name,
            integration_pattern=sfn.IntegrationPattern.RUN_JOB,
            arguments=sfn.TaskInput.from_object({"--input_uri": raw_object}),
            result_path="$.labels",
        )
        conform_labels.add_catch(self._failure_chain, result_path="$.error")
        return (
            sfn.Choice(self, "LabelsOrSnapshot")
            .when(
                sfn.Condition.string_matches("$.detail.object.key", f"{labels_prefix}*"),
                conform_labels.next(sfn.Succeed(self, "LabelsConformed")),
            )
            .otherwise(snapshots)
        )

    def _notify_failure(self) -> sfn.Chain:
        return tasks.SnsPublish(
            self,
            "NotifyFailure",
            topic=self.ops_topic,
            subject="Telecom ML data lake ETL failed",
            message=sfn.TaskInput.from_object(
                {
                    "execution": sfn.JsonPath.execution_id,
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        ).next(sfn.Fail(self, "EtlFailed", error="EtlFailed", cause="A Glue job failed; see the failure topic"))

    def _start_on_new_snapshots(
        self, raw_bucket: s3.IBucket, prefixes: list[str], data_key: kms.IKey, removal: cdk.RemovalPolicy
    ) -> None:
        """EventBridge starts an execution per new object under the prefix; undeliverable events are kept."""
        self.dead_letters = sqs.Queue(
            self,
            "UndeliveredEvents",
            encryption=sqs.QueueEncryption.KMS,
            encryption_master_key=data_key,
            enforce_ssl=True,
            retention_period=cdk.Duration.days(14),
            removal_policy=removal,
        )
        acknowledge(self.dead_letters, Finding.QUEUE_IS_A_DEAD_LETTER_QUEUE)
        # The data key's policy admits EventBridge rules of this account (Foundation, EncryptionKeys).
        self.rule = events.Rule(
            self,
            "OnRawSnapshot",
            description="A new raw subscriber snapshot starts the conform -> features pipeline",
            event_pattern=events.EventPattern(
                source=["aws.s3"],
                detail_type=["Object Created"],
                detail={
                    "bucket": {"name": [raw_bucket.bucket_name]},
                    "object": {"key": [{"prefix": prefix} for prefix in prefixes]},
                },
            ),
            targets=[
                targets.SfnStateMachine(
                    self.state_machine,
                    dead_letter_queue=self.dead_letters,
                    retry_attempts=4,
                    max_event_age=cdk.Duration.hours(24),
                )
            ],
        )
        events_role = self.state_machine.node.find_child("EventsRole")
        assert isinstance(events_role, iam.Role)
        condition_trust(events_role, "events", "rule/*")
        acknowledge_grant_policy(events_role)

    def _alert_on_failures(self, *jobs: GlueEtlJob) -> None:
        """Alerts that do not depend on the execution reaching its catch: alarm + job-state rule."""
        failed = cloudwatch.MathExpression(
            expression="failed + timedout + aborted",
            using_metrics={
                "failed": self.state_machine.metric_failed(),
                "timedout": self.state_machine.metric_timed_out(),
                "aborted": self.state_machine.metric_aborted(),
            },
            period=cdk.Duration.minutes(5),
            label="ETL executions failed, timed out or aborted",
        )
        self.failed_executions_alarm = cloudwatch.Alarm(
            self,
            "FailedExecutionsAlarm",
            alarm_description="An ETL state machine execution failed, timed out or was aborted",
            metric=failed,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed_executions_alarm.add_alarm_action(cw_actions.SnsAction(self.ops_topic))
        self.failed_job_rule = events.Rule(
            self,
            "OnFailedGlueJob",
            description="A lake Glue job run failed, timed out or errored",
            event_pattern=events.EventPattern(
                source=["aws.glue"],
                detail_type=["Glue Job State Change"],
                detail={"jobName": [job.job_name for job in jobs], "state": ["FAILED", "TIMEOUT", "ERROR"]},
            ),
            targets=[
                targets.SnsTopic(
                    self.ops_topic,
                    message=events.RuleTargetInput.from_text(
                        f"Glue job {events.EventField.from_path('$.detail.jobName')} run "
                        f"{events.EventField.from_path('$.detail.jobRunId')} ended "
                        f"{events.EventField.from_path('$.detail.state')}: "
                        f"{events.EventField.from_path('$.detail.message')}"
                    ),
                )
            ],
        )
