"""Per-environment monitoring of the churn endpoint, with the engine the environment's config names.

- `drift_job`: the drift pipeline (infra/pipeline/drift.py, the churn pipeline's code bundle, roles and key)
  and the EventBridge Scheduler schedule that starts it once per window;
- `model_monitor`: Model Monitor data-quality (and, with ground truth, model-quality) job definitions; the
  endpoint deployer creates their MonitoringSchedules from `schedule_specs` after each deployment.
Both read the current-baseline prefix and the endpoint's data capture and publish the same CloudWatch
metrics, so the retraining alarms (and their EventBridge path to start_training) are the same for both.
Grants for the job role (the Foundation's SageMaker role) are made here, scoped to the endpoint's prefixes.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dataset.schema import load_schema
from infra.compliance import Finding, acknowledge_grant_policy, acknowledge_resource_wildcard, grant_policy_of
from infra.config import EnvironmentConfig
from infra.constructs.foundation.isolated_network import IsolatedNetwork
from infra.constructs.foundation.ops_notifications import OpsNotifications
from infra.constructs.ml.job_access import network_interfaces_arn
from infra.constructs.ml.pipeline_code import PipelineCode
from infra.constructs.ml.sagemaker_pipeline import SageMakerPipeline, notify_failed_executions
from infra.constructs.ml.training_trigger import retrain_alarm_prefix
from infra.constructs.monitoring.drift_dashboard import DriftDashboard, alarm_arns, dashboard_body
from infra.constructs.monitoring.drift_schedule import DriftSchedule
from infra.constructs.monitoring.drift_window import DriftWindowFunction
from infra.constructs.monitoring.model_monitor_jobs import (
    ANALYZER_REPOSITORY,
    ModelMonitorJobs,
    MonitoringJobSettings,
    analyzer_image,
)
from infra.constructs.monitoring.record_preprocessor import RecordPreprocessor
from infra.constructs.monitoring.retrain_alarms import DATA_NAMESPACE, MODEL_NAMESPACE, RetrainAlarms, alarm_specs
from infra.constructs.serving.serving_grants import cross_stack_arn_as_nag_renders
from infra.grants import grant_key, s3_context
from infra.logical_ids import StableIdStack
from infra.pipeline import churn, drift
from infra.runtime_code import REPO_ROOT
from infra.sagemaker_role import import_sagemaker_role, sagemaker_role_name
from infra.template_hygiene import keep_only_dependencies

LABELS_PREFIX = "churn_labels/"  # the lake's labels table in the curated zone (the labels contract)


def apply_retention(config: EnvironmentConfig, artifacts: s3.Bucket) -> None:
    """Monitoring reports expire after `monitoring.reports_retention_days` (on the ML artefact bucket, in the
    Foundation). Captures and labels, the personal data they are computed from, expire by
    `data_lake.retention` (docs/data-lake.md, "Retention"), and so does Model Monitor's ground truth (labels)."""
    prefix = f"{drift.MONITORING_PREFIX}/{drift.endpoint_name(config.name)}/reports/"
    artifacts.add_lifecycle_rule(
        id="ExpireMonitoringReports",
        prefix=prefix,
        expiration=cdk.Duration.days(config.monitoring.reports_retention_days),
    )
    if config.monitoring.engine == "model_monitor" and config.monitoring.model_quality:
        # Ground truth is the labels feed in Model Monitor's format: it expires as the labels do.
        artifacts.add_lifecycle_rule(
            id="ExpireGroundTruth",
            prefix=drift.ground_truth_prefix(config.name),
            expiration=cdk.Duration.days(config.data_lake.retention.labels_days),
        )


class MonitoringStack(StableIdStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        features: tuple[str, ...],
        artifacts: s3.IBucket,
        labels_bucket: s3.IBucket,
        ml_key: kms.IKey,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        network: IsolatedNetwork,
        ops: OpsNotifications,
        code: PipelineCode,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.add_stack_dependency(cdk.Stack.of(ml_key))
        self.config = config
        self.monitoring = config.monitoring
        env = config.name
        self.endpoint_name = drift.endpoint_name(env)
        self.data_quality_schedule = drift.data_quality_schedule_name(env)
        self.model_quality_schedule = drift.model_quality_schedule_name(env)
        self.ops_topic = ops.import_topic(self)
        self.job_role = import_sagemaker_role(self, env)
        self.job_role_arn = self.format_arn(
            service="iam", region="", resource="role", resource_name=sagemaker_role_name(env)
        )
        self.security_group_ids: tuple[str, ...] = ()
        self.subnet_ids: tuple[str, ...] = ()
        if network.workload_security_group is not None:
            self.security_group_ids = (network.workload_security_group.security_group_id,)
            self.subnet_ids = tuple(s.subnet_id for s in network.vpc.isolated_subnets)
        self.schedule_specs: list[dict[str, str]] = []
        self.drift_pipeline: SageMakerPipeline | None = None
        self.model_monitor: ModelMonitorJobs | None = None
        self.window_guard: DriftWindowFunction | None = None
        if self.monitoring.engine == "drift_job":
            self._build_window_guard(artifacts, labels_bucket, ml_key, logs_key, network)
            self._build_drift_job(artifacts, labels_bucket, ml_key, data_key, code, network)
        else:
            self._build_model_monitor(artifacts, ml_key)
        self._grant_job_role(artifacts, labels_bucket, ml_key, data_key)
        min_auc = self.monitoring.min_auc(config.ml.quality_gate) if self.monitoring.model_quality else None
        self.alarms = RetrainAlarms(
            self,
            "RetrainAlarms",
            name_prefix=retrain_alarm_prefix(env),
            endpoint_name=self.endpoint_name,
            specs=alarm_specs(
                features=features,
                data_schedule=self.data_quality_schedule,
                model_schedule=self.model_quality_schedule,
                drift_distance=self.monitoring.thresholds.drift_distance,
                feature_psi=self.monitoring.thresholds.feature_psi,
                prediction_psi=self.monitoring.thresholds.prediction_psi,
                min_auc=min_auc,
            ),
            period_hours=self.monitoring.window_hours,
            evaluation_periods=self.monitoring.thresholds.evaluation_periods,
            ops_topic=self.ops_topic,
        )
        thresholds = self.monitoring.thresholds
        self.dashboard = DriftDashboard(
            self,
            "Dashboard",
            dashboard_name=f"telecom-ml-{env}-churn-drift",
            body=dashboard_body(
                region=self.region,
                endpoint_name=self.endpoint_name,
                data_schedule=self.data_quality_schedule,
                model_schedule=self.model_quality_schedule,
                features=features,
                period_hours=self.monitoring.window_hours,
                drift_distance=thresholds.drift_distance,
                feature_psi=thresholds.feature_psi,
                prediction_psi=thresholds.prediction_psi,
                min_auc=min_auc,
                alarm_arns=alarm_arns(self, self.alarms.alarm_names),
            ),
        )

    # ------------------------------------------------------------------------------------- drift_job
    def _build_window_guard(
        self,
        artifacts: s3.IBucket,
        labels_bucket: s3.IBucket,
        ml_key: kms.IKey,
        logs_key: kms.IKey,
        network: IsolatedNetwork,
    ) -> None:
        """The drift pipeline's first step: lists the baseline, the window's captures (and labels), writes
        the manifest of the window's capture files. Listing only, on the prefixes it looks at."""
        config = self.config
        in_vpc = network.workload_security_group is not None
        guard = self.window_guard = DriftWindowFunction(
            self,
            "WindowGuard",
            logs_key=logs_key,
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
            vpc=network.vpc if in_vpc else None,
            security_group=network.workload_security_group,
        )
        env = config.name
        guard.grant_list(artifacts, [drift.capture_prefix(env), drift.baseline_prefix(env)])
        if self.monitoring.model_quality:
            guard.grant_list(labels_bucket, [LABELS_PREFIX])
        manifests = drift.manifests_prefix(env)
        guard.grant_manifests(artifacts, manifests, ml_key)
        # The function already references its role (GetAtt); it need only wait for the role's policy.
        policy = grant_policy_of(guard.role)
        keep_only_dependencies(guard.function, policy)
        acknowledge_grant_policy(guard.role, *([Finding.DRIFT_WINDOW_VPC_NETWORK_INTERFACES] if in_vpc else []))
        acknowledge_resource_wildcard(
            policy, f"{cross_stack_arn_as_nag_renders(artifacts)}/{manifests}*", Finding.DRIFT_WINDOW_MANIFESTS
        )
        if in_vpc:
            acknowledge_resource_wildcard(
                policy, self.resolve(network_interfaces_arn(self)), Finding.NETWORK_INTERFACES_CREATED_AT_RUN_TIME
            )

    def _build_drift_job(
        self,
        artifacts: s3.IBucket,
        labels_bucket: s3.IBucket,
        ml_key: kms.IKey,
        data_key: kms.IKey,
        code: PipelineCode,
        network: IsolatedNetwork,
    ) -> None:
        config = self.config
        pipeline = drift.build(drift.DriftPipelineInputs(config, config.data_lake.dataset_schema, code.object_key))
        variables = {
            churn.ARTIFACT_BUCKET: artifacts.bucket_name,
            churn.CODE_BUCKET: code.bucket_name,
            churn.JOB_ROLE: self.job_role_arn,
            churn.ML_KEY: ml_key.key_arn,
            drift.LABELS_LOCATION: f"s3://{labels_bucket.bucket_name}/{LABELS_PREFIX}",
        }
        assert self.window_guard is not None
        variables[drift.WINDOW_GUARD] = self.window_guard.function_arn
        if self.subnet_ids:  # network mode 'vpc': the churn pipeline's security group and subnets
            variables.update(zip(churn.VPC_VARIABLES, self.security_group_ids + self.subnet_ids, strict=True))
        # The pipeline role (the Foundation's) may invoke this one function from here; the MlPipeline stack
        # grants it the jobs and ChampionLookup.
        role = iam.Role.from_role_name(self, "PipelineExecutionRole", churn.pipeline_role_name(config.name))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                sid="WindowGuardStep", actions=["lambda:InvokeFunction"], resources=[self.window_guard.function_arn]
            )
        )
        acknowledge_grant_policy(role)
        self.drift_pipeline = SageMakerPipeline(
            self,
            "DriftPipeline",
            pipeline=pipeline,
            variables={k: v for k, v in variables.items() if k in pipeline.variables},
            role=role,
            description=f"Drift of {self.endpoint_name}'s captured traffic against the deployed model's baseline",
            max_parallel_steps=1,
        )
        # SageMaker checks the Lambda step's permission when the pipeline runs; let the grant exist first.
        self.drift_pipeline.resource.node.add_dependency(grant_policy_of(role))
        self.schedule = DriftSchedule(
            self,
            "DriftSchedule",
            schedule_name=drift.pipeline_name(config.name),
            schedule_expression=self.monitoring.schedule,
            pipeline_name=self.drift_pipeline.pipeline_name,
            pipeline_arn=self.drift_pipeline.pipeline_arn,
            payload_key=ml_key,
            dead_letter_key=data_key,
            ops_topic=self.ops_topic,
            destroy_on_removal=config.destroy_on_removal,
        )
        notify_failed_executions(
            self,
            "OnFailedDriftRun",
            pipeline_name=self.drift_pipeline.pipeline_name,
            pipeline_arn=self.drift_pipeline.pipeline_arn,
            topic=self.ops_topic,
            description="a drift run failed (job error or missing input)",
        )

    # --------------------------------------------------------------------------------- model_monitor
    def _build_model_monitor(self, artifacts: s3.IBucket, ml_key: kms.IKey) -> None:
        monitoring = self.monitoring
        bucket = artifacts.bucket_name
        self.record_preprocessor = RecordPreprocessor(
            self,
            "RecordPreprocessor",
            schema=load_schema(REPO_ROOT / self.config.data_lake.dataset_schema),
            env_name=self.config.name,
        )
        self.record_preprocessor.grant_read(self.job_role)
        settings = MonitoringJobSettings(
            env_name=self.config.name,
            endpoint_name=self.endpoint_name,
            region=self.config.region,
            role_arn=self.job_role_arn,
            kms_key_arn=ml_key.key_arn,
            instance_type=monitoring.instance_type,
            volume_gb=monitoring.volume_gb,
            max_runtime_seconds=60 * monitoring.max_runtime_minutes,
            baseline_uri=self._uri(bucket, self.baseline_prefix),
            reports_uri=self._uri(bucket, self.reports_prefix),
            window_hours=monitoring.window_hours,
            record_preprocessor_uri=self.record_preprocessor.s3_uri,
            security_group_ids=self.security_group_ids,
            subnets=self.subnet_ids,
        )
        ground_truth = self._uri(bucket, self.ground_truth_prefix) if monitoring.model_quality else None
        self.model_monitor = ModelMonitorJobs(
            self,
            "ModelMonitor",
            settings=settings,
            ground_truth_uri=ground_truth,
            data_quality_schedule=self.data_quality_schedule,
            model_quality_schedule=self.model_quality_schedule,
            schedule_expression=monitoring.schedule,
        )
        self.schedule_specs = self.model_monitor.schedule_specs

    # ----------------------------------------------------------------------------------- prefixes
    @staticmethod
    def _uri(bucket: str, prefix: str) -> str:
        return f"s3://{bucket}/{prefix}"

    @property
    def baseline_prefix(self) -> str:
        return f"{drift.MONITORING_PREFIX}/{self.endpoint_name}/current-baseline/"

    @property
    def reports_prefix(self) -> str:
        return f"{drift.MONITORING_PREFIX}/{self.endpoint_name}/reports/"

    @property
    def ground_truth_prefix(self) -> str:
        """Model Monitor's ground truth (its own JSON-lines format), written by the labels job (etl/labels.py)."""
        return drift.ground_truth_prefix(self.config.name)

    @property
    def capture_prefix(self) -> str:
        return f"{drift.CAPTURE_PREFIX}/{self.endpoint_name}/"

    # ------------------------------------------------------------------------------------- grants
    def _grant_job_role(
        self, artifacts: s3.IBucket, labels_bucket: s3.IBucket, ml_key: kms.IKey, data_key: kms.IKey
    ) -> None:
        """The job role reads the baseline, captures (and ground truth), writes reports, publishes metrics."""
        role, monitoring = self.job_role, self.monitoring
        reads = [self.baseline_prefix, self.capture_prefix]
        labels = monitoring.model_quality and monitoring.engine == "drift_job"
        if monitoring.model_quality and monitoring.engine == "model_monitor":
            reads.append(self.ground_truth_prefix)
        if monitoring.engine == "drift_job":
            reads.append(drift.manifests_prefix(self.config.name))  # SageMaker reads the window's manifest as the job
        grants = [
            (artifacts, reads, ["s3:GetObject"]),
            (artifacts, [self.reports_prefix], ["s3:PutObject", "s3:AbortMultipartUpload"]),
        ]
        if labels:
            grants.append((labels_bucket, [LABELS_PREFIX], ["s3:GetObject"]))
        for bucket, prefixes, actions in grants:
            role.add_to_principal_policy(
                iam.PolicyStatement(actions=actions, resources=[bucket.arn_for_objects(f"{p}*") for p in prefixes])
            )
        listed = {artifacts: [*reads, self.reports_prefix], **({labels_bucket: [LABELS_PREFIX]} if labels else {})}
        for bucket, prefixes in listed.items():
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"],
                    resources=[bucket.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}},
                )
            )
        grant_key(role, ml_key, via="s3", write=True, context=s3_context(artifacts))
        if labels:
            grant_key(role, data_key, via="s3", write=False, context=s3_context(labels_bucket))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": [DATA_NAMESPACE, MODEL_NAMESPACE]}},
            )
        )
        if monitoring.engine == "model_monitor":
            self._grant_analyzer_image(role)
        self._acknowledge(grants)

    def _grant_analyzer_image(self, role: iam.IRole) -> None:
        image = analyzer_image(self.config.region)
        repository = self.format_arn(
            service="ecr", account=image.split(".", 1)[0], resource="repository", resource_name=ANALYZER_REPOSITORY
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                resources=[repository],
            )
        )
        role.add_to_principal_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))

    def _acknowledge(self, grants: list[tuple[s3.IBucket, list[str], list[str]]]) -> None:
        acknowledge_grant_policy(self.job_role, Finding.MONITORING_JOB_SERVICE_WIDE_ACTIONS)
        policy = grant_policy_of(self.job_role)
        for bucket, prefixes, _ in grants:
            rendered = cross_stack_arn_as_nag_renders(bucket)
            for prefix in prefixes:
                acknowledge_resource_wildcard(policy, f"{rendered}/{prefix}*", Finding.MONITORING_PREFIXES)
