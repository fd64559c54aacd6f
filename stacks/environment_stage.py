"""One stage per environment: the same stacks everywhere, differences only in typed config."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from dataset.schema import DatasetSchema
from infra.config import EnvironmentConfig
from infra.constructs.serving.promotion import share_promotion_source
from infra.pipeline import drift
from infra.pipeline.churn import ARTIFACT_PREFIX
from stacks.data_lake_stack import DataLakeStack
from stacks.foundation_stack import FoundationStack
from stacks.ml_pipeline_stack import MlPipelineStack
from stacks.monitoring_stack import MonitoringStack, apply_retention
from stacks.serving_stack import ServingStack, endpoint_can_run_in_vpc


class EnvironmentStage(cdk.Stage):
    def __init__(self, scope: Construct, config: EnvironmentConfig, schema: DatasetSchema, schema_file: Path) -> None:
        super().__init__(
            scope,
            config.stage_name,
            env=cdk.Environment(account=config.account, region=config.region),
        )
        self.config = config
        # Model Monitor's model quality merges ground truth that the labels job writes (etl/labels.py).
        monitoring = config.monitoring
        ground_truth = (
            drift.ground_truth_prefix(config.name)
            if monitoring.engine == "model_monitor" and monitoring.model_quality
            else None
        )
        self.foundation = FoundationStack(
            self,
            "Foundation",
            description=f"Telecom ML reference solution ({config.name}): keys, network, logs",
            env_name=config.name,
            network=config.network,
            ops=config.ops,
            security=config.security,
            availability_zones=config.availability_zones,
            access_log_lifecycle=config.access_logs,
            capture_retention_days=config.data_lake.retention.captures_days,
            ground_truth_prefix=ground_truth,
            destroy_on_removal=config.destroy_on_removal,
            termination_protection=not config.destroy_on_removal,
        )
        keys = self.foundation.keys
        self.data_lake = DataLakeStack(
            self,
            "DataLake",
            description=f"Telecom ML reference solution ({config.name}): data lake, ETL, CDR ingestion",
            env_name=config.name,
            config=config.data_lake,
            schema=schema,
            schema_file=schema_file,
            data_key=keys.data_key,
            secrets_key=keys.secrets_key,
            logs_key=keys.logs_key,
            access_logs=self.foundation.access_logs,
            ops=self.foundation.ops,
            network=self.foundation.network,
            interface_endpoints=config.network.interface_endpoints,
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
            ml_artifacts=self.foundation.ml_artifacts,
            capture_erasure_policy=self.foundation.capture_erasure_policy,
            ground_truth=(
                (ground_truth, self.foundation.ground_truth_writer_policy)
                if ground_truth and self.foundation.ground_truth_writer_policy
                else None
            ),
            scores_reader_role_names=config.ml.batch_scoring.reader_role_names,
            termination_protection=not config.destroy_on_removal,
        )
        self.ml_pipeline = MlPipelineStack(
            self,
            "MlPipeline",
            description=f"Telecom ML reference solution ({config.name}): SageMaker pipeline and model registry",
            config=config,
            artifacts=self.foundation.ml_artifacts,
            ml_key=keys.ml_key,
            data_key=keys.data_key,
            logs_key=keys.logs_key,
            network=self.foundation.network,
            ops=self.foundation.ops,
            features_location=self.data_lake.locations.features,
            scores_location=self.data_lake.scores_location,
            termination_protection=not config.destroy_on_removal,
        )
        self.ml_pipeline.add_stack_dependency(self.data_lake)
        # Drift and model-quality monitoring with the configured engine; its alarms start retraining through
        # the MlPipeline stack's trigger. Model Monitor schedules need the endpoint, which exists only at run
        # time: the endpoint deployer creates them from MonitoringStack.schedule_specs after each deployment.
        self.monitoring = MonitoringStack(
            self,
            "Monitoring",
            description=f"Telecom ML reference solution ({config.name}): drift monitoring "
            f"({config.monitoring.engine}), retraining alarms",
            config=config,
            features=tuple(schema.raw_feature_columns),
            artifacts=self.foundation.ml_artifacts,
            labels_bucket=self.data_lake.zones.curated,
            ml_key=keys.ml_key,
            data_key=keys.data_key,
            logs_key=keys.logs_key,
            network=self.foundation.network,
            ops=self.foundation.ops,
            code=self.ml_pipeline.code,
            termination_protection=not config.destroy_on_removal,
        )
        self.monitoring.add_stack_dependency(self.ml_pipeline)
        self.serving = ServingStack(
            self,
            "Serving",
            description=f"Telecom ML reference solution ({config.name}): endpoint deployer, rollback alarms, dashboard",
            env_name=config.name,
            config=config.ml.endpoint,
            budget=config.budget,
            budget_emails=tuple(n.endpoint for n in config.ops.notifications if n.protocol == "email"),
            model_package_group_name=self.ml_pipeline.model_package_group_name,
            ml_key=keys.ml_key,
            data_key=keys.data_key,
            logs_key=keys.logs_key,
            ml_artifacts=self.foundation.ml_artifacts,
            ops=self.foundation.ops,
            network=self.foundation.network,
            vpc_placement=endpoint_can_run_in_vpc(config.network.interface_endpoints),
            log_retention_days=config.log_retention_days,
            destroy_on_removal=config.destroy_on_removal,
            resource_tags=dict(config.tags),
            promotion=config.ml.promotion,
            serving_images=tuple(config.ml.pipeline.image(r, config.region) for r in ("neuron_serving", "xgboost")),
            monitoring_schedules=self.monitoring.schedule_specs,
            batch_scoring_pipeline_name=self.ml_pipeline.batch_scoring.pipeline_name,
            termination_protection=not config.destroy_on_removal,
        )
        registry = self.ml_pipeline.registry
        share_promotion_source(registry.group, registry.group_arn, registry.packages_arn, self.foundation.ml_artifacts,
                               keys.ml_key, config.ml.registry.share_with_accounts, f"{ARTIFACT_PREFIX}/")
        apply_retention(config, self.foundation.ml_artifacts)
        cdk.Tags.of(self).add("project", "telecom-ml-reference")
        cdk.Tags.of(self).add("environment", config.name)
        for key, value in sorted(config.tags.items()):
            cdk.Tags.of(self).add(key, value)
