"""Per-environment SageMaker pipeline: model registry, the churn pipeline, its Lambda step and their grants.

Composes the constructs and makes the grants here: on the pipeline role and the job role, both named roles
of the Foundation (which grants them the artefact prefix, where bucket and key live; the lake grants the job
role its feature table). Executions start with `start-pipeline-execution` and the parameters SnapshotDate,
FeaturesUri and TriggerReason (docs/pipeline.md); `grant_start` lets the training trigger do so.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import Finding, acknowledge_grant_policy, acknowledge_resource_wildcard, grant_policy_of
from infra.config import EnvironmentConfig, PipelineImagesConfig
from infra.constructs.foundation.isolated_network import IsolatedNetwork
from infra.constructs.foundation.ops_notifications import OpsNotifications
from infra.constructs.ml.batch_scoring import BatchScoring, scoring_run_arns
from infra.constructs.ml.batch_scoring import grant_run as grant_batch_scoring
from infra.constructs.ml.champion_lookup import ChampionLookupFunction
from infra.constructs.ml.job_access import (
    grant_image_pull,
    grant_job_logs_and_metrics,
    grant_network_interfaces,
    grant_volume_encryption,
    job_log_group_arns,
    network_interfaces_arn,
)
from infra.constructs.ml.model_registry import ModelRegistry
from infra.constructs.ml.pipeline_code import PipelineCode
from infra.constructs.ml.pipeline_role import grant_pipeline_role, pipeline_job_arns
from infra.constructs.ml.sagemaker_pipeline import SageMakerPipeline, notify_failed_executions
from infra.constructs.ml.training_trigger import TrainingTrigger
from infra.logical_ids import StableIdStack
from infra.pipeline import churn, scoring
from infra.pipeline.code_bundle import bundle_files
from infra.sagemaker_role import import_sagemaker_role, sagemaker_role_name

MAX_PARALLEL_STEPS = 4


class MlPipelineStack(StableIdStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        artifacts: s3.IBucket,
        ml_key: kms.IKey,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        network: IsolatedNetwork,
        ops: OpsNotifications,
        features_location: str,
        scores_location: str | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        # Grants on the foundation's keys belong in this stack's role policies, never in the key policies.
        self.add_stack_dependency(cdk.Stack.of(ml_key))
        if config.data_lake.dataset_schema not in bundle_files():
            raise ValueError(f"data_lake.dataset_schema {config.data_lake.dataset_schema!r} is not shipped with "
                             "the job code (the pipeline ships dataset/schemas/*.yaml)")
        self.in_vpc = network.workload_security_group is not None
        self._build_registry_and_lookup(config, logs_key, network)
        self._grant_roles(config, ml_key, network)
        self._build_pipeline(config, artifacts.bucket_name, ml_key, network, features_location)
        self._notify(ops)
        self._build_trigger(config, ml_key, data_key, logs_key, ops, network)
        if scores_location is not None:
            self._build_batch_scoring(config, data_key, scores_location)
        self._acknowledge()
        cdk.CfnOutput(self, "PipelineName", value=self.pipeline_name,
                      description="aws sagemaker start-pipeline-execution --pipeline-name <this> (docs/pipeline.md)")

    def _build_registry_and_lookup(self, config: EnvironmentConfig, logs_key: kms.IKey,
                                   network: IsolatedNetwork) -> None:
        self.registry = ModelRegistry(self, "Registry", group_name=churn.model_package_group_name(config.name),
                                      destroy_on_removal=config.destroy_on_removal)
        self.model_package_group_name = self.registry.group_name
        self.code = PipelineCode(self, "Code")
        self.champion_lookup = ChampionLookupFunction(
            self,
            "ChampionLookup",
            packages_arn=self.registry.packages_arn,
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
            vpc=network.vpc if self.in_vpc else None,
            security_group=network.workload_security_group,
        )

    def _grant_roles(self, config: EnvironmentConfig, ml_key: kms.IKey, network: IsolatedNetwork) -> None:
        """The pipeline role runs the pipeline; the job role runs its jobs (both named, in the Foundation)."""
        self.job_role = import_sagemaker_role(self, config.name)
        self.job_role_arn = self.format_arn(service="iam", region="", resource="role",
                                            resource_name=sagemaker_role_name(config.name))
        self.role = iam.Role.from_role_name(self, "PipelineExecutionRole", churn.pipeline_role_name(config.name),
                                            mutable=True)
        grant_pipeline_role(
            self.role,
            job_role_arn=self.job_role_arn,
            function_arn=self.champion_lookup.function_arn,
            group_arn=self.registry.group_arn,
            packages_arn=self.registry.packages_arn,
            ml_key=ml_key,
        )
        self._grant_jobs(config, ml_key, network)

    def _build_pipeline(self, config: EnvironmentConfig, artifact_bucket: str, ml_key: kms.IKey,
                        network: IsolatedNetwork, features_location: str) -> None:
        schema = config.data_lake.dataset_schema
        pipeline = churn.build(churn.ChurnPipelineInputs(config, schema, self.code.object_key))
        variables = {
            churn.ARTIFACT_BUCKET: artifact_bucket,
            churn.CODE_BUCKET: self.code.bucket_name,
            churn.JOB_ROLE: self.job_role_arn,
            churn.ML_KEY: ml_key.key_arn,
            churn.CHAMPION_LOOKUP: self.champion_lookup.function_arn,
            churn.FEATURES_LOCATION: features_location,
        }
        if network.workload_security_group is not None:
            variables[churn.JOB_SECURITY_GROUP] = network.workload_security_group.security_group_id
            for name, subnet in zip(churn.JOB_SUBNETS, network.vpc.isolated_subnets, strict=True):
                variables[name] = subnet.subnet_id
        self.pipeline_variables = variables
        self.pipeline = SageMakerPipeline(
            self,
            "Churn",
            pipeline=pipeline,
            variables=variables,
            role=self.role,
            description=f"Churn models for {config.name}: preprocess, train XGBoost and PyTorch, evaluate against "
            "the champion, gate, baseline, compile for Inferentia2, register",
            max_parallel_steps=MAX_PARALLEL_STEPS,
        )
        # SageMaker runs the pipeline as the role: let its grants exist first.
        self.pipeline.resource.node.add_dependency(grant_policy_of(self.role))
        self.pipeline_name = self.pipeline.pipeline_name
        self.pipeline_arn = self.pipeline.pipeline_arn

    def _grant_jobs(self, config: EnvironmentConfig, ml_key: kms.IKey, network: IsolatedNetwork) -> None:
        """What the pipeline's jobs need beyond their data, on the job role. Their data: the feature table is
        the lake's grant, the pipeline's artefact prefix the Foundation's (where bucket and key live)."""
        role = self.job_role
        grant_volume_encryption(role, ml_key)
        self.code.grant_read(role)
        grant_image_pull(role, [config.ml.pipeline.image(r, config.region) for r in PipelineImagesConfig.model_fields])
        grant_job_logs_and_metrics(role)
        if network.workload_security_group is not None:
            grant_network_interfaces(role, network.vpc, network.workload_security_group)

    def _notify(self, ops: OpsNotifications) -> None:
        """Failed executions (a failed quality gate included) and packages awaiting approval reach the ops topic."""
        topic = self.ops_topic = ops.import_topic(self)
        notify_failed_executions(self, "OnFailedExecution", pipeline_name=self.pipeline_name,
                                 pipeline_arn=self.pipeline_arn, topic=topic,
                                 description="an execution failed (job error or quality gate)")
        events.Rule(
            self,
            "OnPackageAwaitingApproval",
            description=f"{self.registry.group_name}: a new model package waits for approval",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=["SageMaker Model Package State Change"],
                detail={"ModelPackageGroupName": [self.registry.group_name],
                        "ModelApprovalStatus": ["PendingManualApproval"]},
            ),
            targets=[targets.SnsTopic(topic)],
        )

    def _acknowledge(self) -> None:
        """The wildcards that remain are names SageMaker chooses at run time, each below a fixed prefix."""
        job_policy = grant_policy_of(self.job_role)
        for arn in job_log_group_arns(self):
            if arn.endswith("*"):
                acknowledge_resource_wildcard(job_policy, self.resolve(arn), Finding.SAGEMAKER_JOB_LOG_STREAMS)
        acknowledge_grant_policy(self.job_role, Finding.JOB_ROLE_SERVICE_WIDE_ACTIONS)
        if self.in_vpc:
            acknowledge_resource_wildcard(job_policy, self.resolve(network_interfaces_arn(self)),
                                          Finding.NETWORK_INTERFACES_CREATED_AT_RUN_TIME)
        role_policy = grant_policy_of(self.role)
        for arn in pipeline_job_arns(self):
            acknowledge_resource_wildcard(role_policy, self.resolve(arn), Finding.PIPELINE_JOBS_NAMED_AT_RUN_TIME)
        packages = self.resolve(self.registry.packages_arn)
        acknowledge_resource_wildcard(role_policy, packages, Finding.MODEL_PACKAGE_VERSIONS)
        acknowledge_grant_policy(self.role)
        lookup_policy = grant_policy_of(self.champion_lookup.role)
        acknowledge_resource_wildcard(lookup_policy, packages, Finding.MODEL_PACKAGE_VERSIONS)
        if self.in_vpc:
            acknowledge_resource_wildcard(lookup_policy, self.resolve(network_interfaces_arn(self)),
                                          Finding.NETWORK_INTERFACES_CREATED_AT_RUN_TIME)

    def _build_trigger(self, config: EnvironmentConfig, ml_key: kms.IKey, data_key: kms.IKey, logs_key: kms.IKey,
                       ops: OpsNotifications, network: IsolatedNetwork) -> None:
        """The one way an execution starts: the lake's FeaturesReady for this environment (and, with the
        monitoring layer, drift alarms) -> start_training, with its lock, cooldown, cap and audit."""
        placement: dict[str, object] = {}
        if network.workload_security_group is not None:
            placement = {"vpc": network.vpc, "subnets": network.isolated_subnets,
                         "security_group": network.workload_security_group}
        self.trigger = TrainingTrigger(
            self,
            "TrainingTrigger",
            env_name=config.name,
            pipeline_name=self.pipeline_name,
            # Literal (not a token): the trigger's acknowledgement names the execution ARNs exactly.
            pipeline_arn=self.format_arn(service="sagemaker", resource="pipeline", resource_name=self.pipeline_name),
            config=config.ml.retraining,
            ml_key=ml_key,
            dead_letter_key=data_key,
            logs_key=logs_key,
            ops_topic=self.ops_topic,
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
            **placement,  # type: ignore[arg-type]
        )
        # The monitoring layer's retraining alarms (telecom-ml-<env>-retrain-*) start training too.
        self.trigger.retrain_on_alarms()

    def _build_batch_scoring(self, config: EnvironmentConfig, data_key: kms.IKey, scores_location: str) -> None:
        """Batch scoring of the whole base into the lake's scores table, on config's schedule and whenever the
        deployer starts it (docs/serving.md "Batch scoring"); same roles, code bundle and Lambda step."""
        pipeline = scoring.build(churn.ChurnPipelineInputs(config, config.data_lake.dataset_schema,
                                                           self.code.object_key))
        grant_batch_scoring(self.role, self.job_role, data_key)
        self.batch_scoring = BatchScoring(
            self,
            "BatchScoring",
            pipeline=pipeline,
            variables={**self.pipeline_variables, scoring.DATA_KEY: data_key.key_arn,
                       scoring.SCORES_LOCATION: scores_location},
            role=self.role,
            config=config.ml.batch_scoring,
            description=f"Churn scores of every {config.name} subscriber with the approved model, into the lake",
        )
        self.batch_scoring.pipeline.resource.node.add_dependency(grant_policy_of(self.role))
        self.batch_scoring.notify_failures(self.ops_topic)
        role_policy = grant_policy_of(self.role)
        for arn in scoring_run_arns(self):
            acknowledge_resource_wildcard(role_policy, self.resolve(arn), Finding.PIPELINE_MODELS_AND_TRANSFORMS)
        if self.batch_scoring.schedule is not None:
            acknowledge_grant_policy(self.batch_scoring.scheduler_role)
        cdk.CfnOutput(self, "BatchScoringPipelineName", value=self.batch_scoring.pipeline_name,
                      description="Scores every subscriber into the lake's scores table (docs/serving.md)")

    def grant_start(self, principal: iam.IGrantable) -> None:
        """Let `principal` start executions of this pipeline and list them (with their status), e.g. the
        training trigger; both actions take the pipeline's ARN, so no wildcard."""
        principal.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["sagemaker:ListPipelineExecutions", "sagemaker:StartPipelineExecution"],
                resources=[self.pipeline_arn],
            )
        )
