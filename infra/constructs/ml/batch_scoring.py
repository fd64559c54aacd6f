"""Batch scoring of the whole subscriber base: the batch-scoring pipeline (infra/pipeline/scoring.py), what
its role may do beyond the churn pipeline's grants, and the EventBridge Scheduler schedule that starts it.

The schedule starts executions with no parameters: PrepareRequests then scores with the champion that the
pipeline's ChampionLookup step finds (the newest Approved package), so the schedule never needs to know
which package is current. The deployer starts the same pipeline after a deployment with ModelPackageArn.
Runs under the churn pipeline's role (named, in the Foundation, with the artefact prefix granted there) and
its jobs under the job role; `grant_run` adds what scoring needs beyond the churn pipeline's grants.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from constructs import Construct

from infra.config import BatchScoringConfig
from infra.constructs.ml.job_access import grant_volume_encryption
from infra.constructs.ml.pipeline_role import PIPELINE_JOB_PREFIX
from infra.constructs.ml.sagemaker_pipeline import SageMakerPipeline, notify_failed_executions
from infra.pipeline import render

MAX_PARALLEL_STEPS = 2


def scoring_run_arns(stack: cdk.Stack) -> list[str]:
    """The transform jobs and models SageMaker Pipelines creates, named pipelines-<execution>-... at run time."""
    return [
        stack.format_arn(service="sagemaker", resource=kind, resource_name=f"{PIPELINE_JOB_PREFIX}*")
        for kind in ("model", "transform-job")
    ]


class BatchScoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        pipeline: render.Pipeline,
        variables: dict[str, str],
        role: iam.IRole,
        config: BatchScoringConfig,
        description: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.pipeline = SageMakerPipeline(
            self,
            "Pipeline",
            pipeline=pipeline,
            variables=variables,
            role=role,
            description=description,
            max_parallel_steps=MAX_PARALLEL_STEPS,
        )
        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.pipeline_arn
        self.schedule: scheduler.CfnSchedule | None = None
        if config.schedule is not None:
            self.schedule = self._schedule(config)

    def grant_start(self, principal: iam.IGrantable) -> None:
        """Let `principal` (e.g. the endpoint deployer, after a deployment) start executions of this pipeline
        and list them; both actions take the pipeline's ARN."""
        principal.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[self.pipeline_arn],
            )
        )

    def notify_failures(self, topic: sns.ITopic) -> events.Rule:
        """A failed run (no approved package, bad transform output, a job error) reaches `topic`."""
        return notify_failed_executions(self, "OnFailedExecution", pipeline_name=self.pipeline_name,
                                        pipeline_arn=self.pipeline_arn, topic=topic,
                                        description="a batch-scoring execution failed")

    def _schedule(self, config: BatchScoringConfig) -> scheduler.CfnSchedule:
        stack = cdk.Stack.of(self)
        self.scheduler_role = iam.Role(
            self,
            "SchedulerRole",
            assumed_by=iam.ServicePrincipal(
                "scheduler.amazonaws.com",
                conditions={"StringEquals": {"aws:SourceAccount": stack.account}},
            ),
            description=f"EventBridge Scheduler: starts {self.pipeline_name}",
        )
        self.scheduler_role.add_to_principal_policy(
            iam.PolicyStatement(actions=["sagemaker:StartPipelineExecution"], resources=[self.pipeline_arn])
        )
        schedule = scheduler.CfnSchedule(
            self,
            "Schedule",
            description=f"Scores every subscriber with the approved churn model ({self.pipeline_name})",
            schedule_expression=config.schedule or "",
            schedule_expression_timezone=config.schedule_time_zone,
            flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
            state="ENABLED",
            target=scheduler.CfnSchedule.TargetProperty(
                arn=self.pipeline_arn,
                role_arn=self.scheduler_role.role_arn,
                # No parameters: the pipeline scores with the champion it looks up itself.
                sage_maker_pipeline_parameters=scheduler.CfnSchedule.SageMakerPipelineParametersProperty(
                    pipeline_parameter_list=[]
                ),
                retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=3
                ),
            ),
        )
        schedule.add_resource_dependency(self.pipeline.resource)
        return schedule


def grant_run(pipeline_role: iam.IRole, job_role: iam.IRole, data_key: kms.IKey) -> None:
    """Beyond the churn pipeline's grants: the pipeline role creates the scoring model (from a package of the
    group, which it may already describe) and runs the transform; both roles use the lake's data key for
    PublishScores' volume (its output goes to the lake under that key; the lake stack grants the S3 side)."""
    stack = cdk.Stack.of(pipeline_role)
    model_arn, transform_arn = scoring_run_arns(stack)
    pipeline_role.add_to_principal_policy(
        iam.PolicyStatement(
            sid="ScoringModelAndTransform",
            actions=[
                "sagemaker:AddTags",
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
            ],
            resources=[model_arn, transform_arn],
        )
    )
    # CreateModel passes the job role: the churn pipeline's PassTheJobRole statement already allows it.
    grant_volume_encryption(pipeline_role, data_key)
    grant_volume_encryption(job_role, data_key)
