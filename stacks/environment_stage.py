"""One stage per environment: the same stacks everywhere, differences only in typed config."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from dataset.schema import DatasetSchema
from infra.config import EnvironmentConfig
from stacks.data_lake_stack import DataLakeStack
from stacks.foundation_stack import FoundationStack
from stacks.ml_pipeline_stack import MlPipelineStack
from stacks.serving_stack import ServingStack, endpoint_can_run_in_vpc


class EnvironmentStage(cdk.Stage):
    def __init__(self, scope: Construct, config: EnvironmentConfig, schema: DatasetSchema, schema_file: Path) -> None:
        super().__init__(
            scope,
            config.stage_name,
            env=cdk.Environment(account=config.account, region=config.region),
        )
        self.config = config
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
            termination_protection=not config.destroy_on_removal,
        )
        cdk.Tags.of(self).add("project", "telecom-ml-reference")
        cdk.Tags.of(self).add("environment", config.name)
        for key, value in sorted(config.tags.items()):
            cdk.Tags.of(self).add(key, value)
