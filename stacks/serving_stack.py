"""Per-environment serving: the deployer that puts approved model packages on the endpoint, the rollback
alarms it names, the async topics, the endpoint network, the dashboard and the cost budget.

The endpoint, its configurations, models and autoscaling are created at run time by the deployer and
removed by its teardown when this stack is deleted. Every permission is granted here, as tables.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import Finding
from infra.config import BudgetConfig, EndpointConfig, PromotionConfig
from infra.constructs.foundation.isolated_network import IsolatedNetwork
from infra.constructs.foundation.ops_notifications import OpsNotifications
from infra.constructs.serving.async_topics import AsyncTopics
from infra.constructs.serving.cost_budget import CostBudget
from infra.constructs.serving.deployer_function import DeployerFunction
from infra.constructs.serving.endpoint_dashboard import EndpointDashboard
from infra.constructs.serving.endpoint_deployer import DeployerLogging, EndpointDeployer
from infra.constructs.serving.promotion import PROMOTED_PREFIX, promotion_role_name
from infra.constructs.serving.rollback_alarms import RollbackAlarms
from infra.constructs.serving.serving_grants import (
    acknowledge_state_machine_invocations,
    grant_deployer,
    grant_promotion,
    grant_sagemaker_role,
)
from infra.logical_ids import StableIdStack
from infra.pipeline.churn import ARTIFACT_PREFIX
from infra.sagemaker_role import import_sagemaker_role

VARIANT_NAME = "primary"
# Where the pipeline's Baseline step writes (content-addressed) and where promotion copies a package's files.
BASELINE_SOURCE_PREFIXES = (f"{ARTIFACT_PREFIX}/baseline/", PROMOTED_PREFIX)
# Where the evaluate steps write (per execution) and promotion copies a package's baseline_predictions.csv.
PREDICTIONS_SOURCE_PREFIXES = (f"{ARTIFACT_PREFIX}/executions/", PROMOTED_PREFIX)
SCHEDULE_KEYS = ("name", "job_definition_name", "type", "schedule_expression")
POLL_SECONDS = 60
# SageMaker's own endpoint traffic needs these interface endpoints when its model runs in the VPC.
VPC_ENDPOINTS_FOR_HOSTING = ("sagemaker_api", "sagemaker_runtime", "ecr_api", "ecr_docker")


def endpoint_name(env_name: str) -> str:
    """Fixed per environment: clients, alarms and the deployer's IAM scope all name it."""
    return f"telecom-ml-{env_name}-churn"


def endpoint_can_run_in_vpc(interface_endpoints: tuple[str, ...]) -> bool:
    return set(VPC_ENDPOINTS_FOR_HOSTING) <= set(interface_endpoints)


class ServingStack(StableIdStack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        config: EndpointConfig,
        budget: BudgetConfig | None,
        budget_emails: tuple[str, ...],
        model_package_group_name: str,
        ml_key: kms.IKey,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        ml_artifacts: s3.IBucket,
        ops: OpsNotifications,
        network: IsolatedNetwork,
        vpc_placement: bool,
        log_retention_days: int,
        destroy_on_removal: bool,
        resource_tags: dict[str, str],
        monitoring_schedules: Sequence[Mapping[str, str]] = (),
        batch_scoring_pipeline_name: str | None = None,
        promotion: PromotionConfig | None = None,
        serving_images: tuple[str, ...] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.promotion_config = promotion
        self.monitoring_schedules = [_schedule_spec(spec, i) for i, spec in enumerate(monitoring_schedules)]
        self.batch_scoring_pipeline_name = batch_scoring_pipeline_name
        self.add_stack_dependency(cdk.Stack.of(ml_key))
        self.endpoint_name = endpoint_name(env_name)
        self.config = config
        self.ops_topic = ops.import_topic(self)
        self.sagemaker_role = import_sagemaker_role(self, env_name)
        self.ml_artifacts = ml_artifacts
        self.rollback = RollbackAlarms(self, "RollbackAlarms", endpoint_name=self.endpoint_name,
                                       variant_name=VARIANT_NAME, config=config.rollback_alarms,
                                       ops_topic=self.ops_topic)
        self.async_topics = AsyncTopics(self, "AsyncTopics", endpoint_name=self.endpoint_name, ml_key=ml_key) \
            if config.mode == "async" else None
        self.network = network
        self.security_group = self._endpoint_security_group(network) if vpc_placement else None
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN
        self.deployer = EndpointDeployer(
            self, "Deployer", endpoint_name=self.endpoint_name, model_package_group_name=model_package_group_name,
            settings=self._settings(env_name, model_package_group_name, ml_key, resource_tags),
            table_key=ml_key, dead_letter_key=data_key, ops_topic=self.ops_topic,
            logging=DeployerLogging(logs_key, log_retention_days, removal),
            timeout=cdk.Duration.seconds(4 * self.lease_seconds),
        )
        self.promotion: DeployerFunction | None = None
        if promotion is not None:
            self.promotion = self._promotion_function(env_name, promotion, serving_images, model_package_group_name,
                                                      ml_key, DeployerLogging(logs_key, log_retention_days, removal))
            grant_promotion(self, ml_key, promotion, model_package_group_name)
        grant_deployer(self, ml_key, model_package_group_name)
        grant_sagemaker_role(self, ml_key)
        ops.grant_publish(self.deployer.state_machine.role)
        self.deployer.finalize_grants()
        acknowledge_state_machine_invocations(self)
        self._alarm_on_undelivered_approvals()
        self.dashboard = EndpointDashboard(
            self, "Dashboard", endpoint_name=self.endpoint_name, variant_name=VARIANT_NAME, mode=config.mode,
            state_machine=self.deployer.state_machine,
            functions=[f.function for f in [*self.deployer.functions.values(), self.deployer.teardown]],
            ops_topic=self.ops_topic,
        )
        if budget is not None:
            CostBudget(self, "Budget", name=f"telecom-ml-{env_name}-monthly", config=budget, emails=budget_emails,
                       ops_topic_arn=self.ops_topic.topic_arn)

    def _promotion_function(self, env_name: str, promotion: PromotionConfig, serving_images: tuple[str, ...],
                            group: str, ml_key: kms.IKey, logging: DeployerLogging) -> DeployerFunction:
        if not serving_images:
            raise ValueError("ServingStack: promotion needs serving_images (the images this environment serves)")
        settings = {
            "account": self.account, "region": self.region, "target_group": group,
            "source_account": promotion.source_account, "source_region": promotion.source_region,
            "source_group": promotion.source_group, "source_prefix": self.pipeline_prefix,
            "bucket": self.ml_artifacts.bucket_name, "prefix": PROMOTED_PREFIX, "kms_key_arn": ml_key.key_arn,
            "serving_images": list(serving_images),
        }
        return DeployerFunction(
            self, "Promotion", handler="promote", description=f"promote a package approved in {promotion.source_group}",
            settings_json=self.to_json_string(settings), settings_variable="PROMOTION_SETTINGS",
            logs_key=logging.logs_key, log_retention_days=logging.retention_days, removal=logging.removal,
            timeout_minutes=15, role_name=promotion_role_name(env_name), function_name=f"{self.endpoint_name}-promote",
            findings=(Finding.PROMOTION_INVOKED_BY_AN_OPERATOR, Finding.PROMOTION_OUTSIDE_VPC),
        )

    @property
    def max_polls(self) -> int:
        return math.ceil(self.config.deployment_timeout_minutes * 60 / POLL_SECONDS)

    @property
    def lease_seconds(self) -> int:
        """A deployment waits at most max_polls to start and max_polls to settle; the lease outlives both."""
        return 2 * self.max_polls * POLL_SECONDS + 600

    @property
    def capture_prefix(self) -> str:
        return "data-capture/"

    @property
    def pipeline_prefix(self) -> str:
        return f"{ARTIFACT_PREFIX}/"

    @property
    def promoted_prefix(self) -> str:
        return PROMOTED_PREFIX

    @property
    def baseline_source_prefixes(self) -> tuple[str, ...]:
        return BASELINE_SOURCE_PREFIXES

    @property
    def predictions_source_prefixes(self) -> tuple[str, ...]:
        return PREDICTIONS_SOURCE_PREFIXES

    @property
    def current_baseline_prefix(self) -> str:
        """The current baseline: the deployed package's baselines, refreshed by the deployer on every deployment."""
        return f"monitoring/{self.endpoint_name}/current-baseline/"

    @property
    def async_prefixes(self) -> dict[str, str]:
        return {kind: f"async-{kind}/{self.endpoint_name}/" for kind in ("input", "output", "failures")}

    def _endpoint_security_group(self, network: IsolatedNetwork) -> ec2.SecurityGroup:
        group = ec2.SecurityGroup(
            self, "EndpointSecurityGroup", vpc=network.vpc, allow_all_outbound=False,
            description=f"{self.endpoint_name}: model containers, HTTPS to AWS services through VPC endpoints only",
        )
        # Isolated subnets route only to the S3 gateway endpoint and the interface endpoints.
        group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS to AWS services through VPC endpoints")
        return group

    def _settings(self, env_name: str, group: str, ml_key: kms.IKey, tags: dict[str, str]) -> dict[str, object]:
        """The deployer's DEPLOYER_SETTINGS document (lambdas/deployer/settings.py parses it)."""
        config, bucket = self.config, self.ml_artifacts.bucket_name
        async_mode = config.mode == "async"
        network = None
        if self.security_group is not None:
            network = {"subnet_ids": [s.subnet_id for s in self.network.vpc.isolated_subnets],
                       "security_group_ids": [self.security_group.security_group_id]}
        settings: dict[str, object] = {
            "env_name": env_name, "account": self.account, "region": self.region,
            "endpoint_name": self.endpoint_name, "variant_name": VARIANT_NAME, "model_package_group_name": group,
            "mode": config.mode, "instance_type": config.instance_type,
            "initial_instance_count": config.initial_instances,
            "container_startup_timeout_seconds": config.container_startup_timeout_seconds,
            "model_data_download_timeout_seconds": config.model_data_download_timeout_seconds,
            "execution_role_arn": self.sagemaker_role.role_arn, "volume_kms_key_arn": ml_key.key_arn,
            "network": network,
            "capture": {"enabled": config.data_capture.enabled,
                        "sampling_percent": config.data_capture.sampling_percent,
                        "destination_s3_uri": f"s3://{bucket}/{self.capture_prefix.rstrip('/')}",
                        "kms_key_arn": ml_key.key_arn},
            "canary": {"size_percent": config.canary.size_percent, "wait_seconds": config.canary.wait_minutes * 60,
                       "termination_wait_seconds": config.canary.termination_wait_minutes * 60,
                       "maximum_execution_seconds": config.canary.maximum_execution_minutes * 60},
            "rollback_alarm_names": self.rollback.alarm_names,
            "scaling": {
                "min_instances": config.min_instances, "max_instances": config.max_instances,
                "target_value": config.target_backlog_per_instance if async_mode
                else float(config.target_invocations_per_instance),
                "scale_in_cooldown_seconds": config.scale_in_cooldown_seconds,
                "scale_out_cooldown_seconds": config.scale_out_cooldown_seconds,
                "wake_alarm_name": self.wake_alarm_name if async_mode else None,
            },
            "lease_seconds": self.lease_seconds, "max_polls": self.max_polls, "tags": dict(sorted(tags.items())),
            "baseline": {"bucket": bucket, "source_prefixes": list(self.baseline_source_prefixes),
                         "predictions_prefixes": list(self.predictions_source_prefixes),
                         "current_prefix": self.current_baseline_prefix, "kms_key_arn": ml_key.key_arn},
            "monitoring_schedules": self.monitoring_schedules,
            "batch_scoring_pipeline_name": self.batch_scoring_pipeline_name,
            "require_promoted": self.promotion_config is not None,
        }
        if self.async_topics is not None:
            prefixes = self.async_prefixes
            settings["async_inference"] = {
                "output_s3_uri": f"s3://{bucket}/{prefixes['output'].rstrip('/')}",
                "failure_s3_uri": f"s3://{bucket}/{prefixes['failures'].rstrip('/')}",
                "kms_key_arn": ml_key.key_arn,
                "success_topic_arn": self.async_topics.success.topic_arn,
                "error_topic_arn": self.async_topics.error.topic_arn,
                "max_concurrent_invocations_per_instance": config.max_concurrent_invocations_per_instance,
            }
        return settings

    @property
    def wake_alarm_name(self) -> str:
        return f"{self.endpoint_name}-has-backlog-without-capacity"

    def _alarm_on_undelivered_approvals(self) -> None:
        alarm = cloudwatch.Alarm(
            self, "UndeliveredApprovalsAlarm",
            alarm_description="Approval events EventBridge could not deliver to the endpoint deployer",
            metric=self.deployer.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5)),
            threshold=1, evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(cw_actions.SnsAction(self.ops_topic))


def _schedule_spec(spec: Mapping[str, str], index: int) -> dict[str, str]:
    """One entry of `monitoring_schedules` (the monitoring stack's schedule_specs), checked at synth."""
    keys = sorted(spec)
    if keys != sorted(SCHEDULE_KEYS):
        raise ValueError(f"monitoring_schedules[{index}]: expected keys {sorted(SCHEDULE_KEYS)}, got {keys}")
    if spec["type"] not in ("DataQuality", "ModelQuality"):
        raise ValueError(f"monitoring_schedules[{index}].type: '{spec['type']}' is not DataQuality or ModelQuality")
    return {key: spec[key] for key in SCHEDULE_KEYS}
