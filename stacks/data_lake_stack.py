"""Per-environment telecom data lake: zones, catalog, Glue ETL, Lake Formation, Athena, CDR stream.

Composes the constructs and makes every grant here, so a reviewer sees each permission where
the pieces meet.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from dataset.schema import DatasetSchema
from infra.compliance import (
    Finding,
    acknowledge,
    acknowledge_bucket_notifications,
    acknowledge_grant_policy,
)
from infra.config import DataLakeConfig, LifecycleConfig, ObjectLockConfig
from infra.constructs.athena_workgroup import AthenaWorkgroup
from infra.constructs.cdr_stream import CDR_PREFIX, CdrStream
from infra.constructs.glue_etl_job import GlueEtlJob, GlueJobLibrary, GlueSecurity
from infra.constructs.lake_catalog import LakeCatalog
from infra.constructs.lake_formation import LakeGovernance
from infra.constructs.lake_orchestration import LakeOrchestration
from infra.constructs.schema_asset import SchemaAsset
from infra.constructs.secure_bucket import SecureBucket
from infra.grants import grant_key, grant_prefix
from infra.template_hygiene import drop_cdk_handler_role_dependency

SNAPSHOT_PREFIX = "subscribers/"


class DataLakeStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        config: DataLakeConfig,
        schema: DatasetSchema,
        schema_file: Path,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        access_logs: s3.IBucket,
        sagemaker_role_name: str,
        log_retention_days: int,
        destroy_on_removal: bool,
        **kwargs: object,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        # Declared up front so grants on the foundation's keys go into this stack's role policies
        # rather than back into the key policies (which would make the stacks depend on each other).
        self.add_stack_dependency(cdk.Stack.of(data_key))
        # Imported so that its grants become a policy owned by this stack, attached to the role.
        sagemaker_role = iam.Role.from_role_name(self, "SageMakerExecutionRole", sagemaker_role_name, mutable=True)
        dataset = schema.name

        def zone(
            zone_id: str,
            lifecycle: LifecycleConfig,
            event_bridge: bool = False,
            object_lock: ObjectLockConfig | None = None,
        ) -> s3.Bucket:
            return SecureBucket(
                self,
                zone_id,
                encryption_key=data_key,
                access_logs=access_logs,
                lifecycle=lifecycle,
                destroy_on_removal=destroy_on_removal,
                event_bridge=event_bridge,
                object_lock=object_lock,
            ).bucket

        self.raw = zone("Raw", config.raw, event_bridge=True)
        self.raw_cdr = zone("RawCdr", config.raw, object_lock=config.raw_cdr_object_lock)
        self.curated = zone("Curated", config.curated)
        self.features = zone("Features", config.features)
        self.quarantine = zone("Quarantine", config.quarantine)
        self.athena_results = zone("AthenaResults", config.athena_results)

        self.catalog = LakeCatalog(
            self,
            "Catalog",
            database_name=f"telecom_ml_{env_name.replace('-', '_')}",
            schema=schema,
            curated_bucket=self.curated,
            features_bucket=self.features,
        )
        self.workgroup = AthenaWorkgroup(
            self,
            "Athena",
            name=f"telecom-ml-{env_name}",
            results_bucket=self.athena_results,
            data_key=data_key,
            bytes_scanned_cutoff=config.athena_bytes_scanned_cutoff_mib * 1024 * 1024,
            destroy_on_removal=destroy_on_removal,
        )
        self.cdr_stream = CdrStream(
            self,
            "CdrStream",
            bucket=self.raw_cdr,
            data_key=data_key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            buffer_seconds=config.firehose_buffer_seconds,
            buffer_mib=config.firehose_buffer_mib,
            destroy_on_removal=destroy_on_removal,
        )

        # --- ETL jobs -------------------------------------------------------------------------
        self.pseudonymisation_key = secretsmanager.Secret(
            self,
            "PseudonymisationKey",
            description="Keyed-hash (HMAC) key that pseudonymises subscriber identifiers in the lake",
            encryption_key=data_key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.pseudonymisation_key, Finding.PSEUDONYMISATION_KEY_NOT_ROTATED)
        schema_asset = SchemaAsset(self, "DatasetSchema", schema_file=schema_file).asset
        uris = {
            "curated": f"s3://{self.curated.bucket_name}/{dataset}/",
            "features": f"s3://{self.features.bucket_name}/{dataset}/",
            "quarantine": f"s3://{self.quarantine.bucket_name}/{dataset}/subscribers/",
            "cdr": f"s3://{self.raw_cdr.bucket_name}/{CDR_PREFIX}",
            "cdr_quarantine": f"s3://{self.quarantine.bucket_name}/{dataset}/cdr/",
        }
        security = GlueSecurity(
            self, "GlueSecurity", name=f"telecom-ml-{env_name}-etl", data_key=data_key, logs_key=logs_key
        )
        library = GlueJobLibrary(self, "GlueLibrary")
        common_args = {
            "--schema_uri": schema_asset.s3_object_url,
            "--pseudonymisation_secret_id": self.pseudonymisation_key.secret_arn,
            "--curated_uri": uris["curated"],
        }
        job_options = {
            "library": library,
            "security": security,
            "logs_key": logs_key,
            "worker_type": config.glue_worker_type,
            "workers": config.glue_workers,
        }
        self.conform_job = GlueEtlJob(
            self,
            "ConformSubscribers",
            script="etl/glue_conform.py",
            description="Conform a raw subscriber snapshot: schema, types, data-quality gate, pseudonymisation",
            arguments={**common_args, "--quarantine_uri": uris["quarantine"]},
            **job_options,  # type: ignore[arg-type]
        )
        self.features_job = GlueEtlJob(
            self,
            "BuildFeatures",
            script="etl/glue_features.py",
            description="Aggregate CDR usage and join it with curated subscribers into the training table",
            arguments={
                **common_args,
                "--cdr_uri": uris["cdr"],
                "--cdr_quarantine_uri": uris["cdr_quarantine"],
                "--features_uri": uris["features"],
            },
            **job_options,  # type: ignore[arg-type]
        )

        conform_role, features_role = self.conform_job.role, self.features_job.role
        for role in (conform_role, features_role):
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[schema_asset.bucket.arn_for_objects(schema_asset.s3_object_key)],
                )
            )
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    resources=[self.pseudonymisation_key.secret_arn],
                )
            )
            grant_key(role, data_key, encrypt=True)
        grant_prefix(conform_role, self.raw, SNAPSHOT_PREFIX, read=True)
        grant_prefix(conform_role, self.curated, f"{dataset}/", read=True, write=True)
        grant_prefix(conform_role, self.quarantine, f"{dataset}/subscribers/", write=True)
        grant_prefix(features_role, self.curated, f"{dataset}/", read=True)
        grant_prefix(features_role, self.raw_cdr, CDR_PREFIX, read=True)
        grant_prefix(features_role, self.quarantine, f"{dataset}/cdr/", write=True)
        grant_prefix(features_role, self.features, f"{dataset}/", read=True, write=True)
        grant_key(sagemaker_role, data_key, encrypt=False)
        grant_prefix(sagemaker_role, self.features, f"{dataset}/", read=True)

        # --- Lake Formation --------------------------------------------------------------------
        self.governance = LakeGovernance(
            self,
            "LakeFormation",
            admin_role_name=config.lake_formation_admin_role_name,
            locations={"Curated": self.curated, "Features": self.features},
            data_key=data_key,
        )
        db, cat = self.catalog.database_name, self.catalog
        self.governance.grant_data_location("ConformWritesCurated", conform_role, "Curated")
        self.governance.grant_data_location("FeaturesWritesFeatures", features_role, "Features")
        self.governance.grant_table(
            "ConformCuratedTable",
            conform_role,
            db,
            cat.curated_table,
            cat.curated_table_name,
            ["SELECT", "INSERT", "ALTER", "DESCRIBE"],
        )
        self.governance.grant_table(
            "FeaturesReadCurated", features_role, db, cat.curated_table, cat.curated_table_name, ["SELECT", "DESCRIBE"]
        )
        self.governance.grant_table(
            "FeaturesFeatureTable",
            features_role,
            db,
            cat.features_table,
            cat.features_table_name,
            ["SELECT", "INSERT", "ALTER", "DESCRIBE"],
        )
        self.governance.grant_table(
            "SageMakerReadsFeatures",
            sagemaker_role,
            db,
            cat.features_table,
            cat.features_table_name,
            ["SELECT", "DESCRIBE"],
        )
        readers: list[tuple[iam.IRole, list[glue.CfnTable]]] = [
            (conform_role, [cat.curated_table]),
            (features_role, [cat.curated_table, cat.features_table]),
            (sagemaker_role, [cat.features_table]),
        ]
        for reader, tables in readers:
            reader.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions", "glue:GetPartition"],
                    resources=[cat.catalog_arn, cat.database_arn, *(cat.table_arn(t) for t in tables)],
                )
            )
            reader.add_to_principal_policy(
                iam.PolicyStatement(
                    # GetDataAccess has no resource-level permissions; Lake Formation grants scope it.
                    actions=["lakeformation:GetDataAccess"],
                    resources=["*"],
                )
            )

        # --- Orchestration ---------------------------------------------------------------------
        self.orchestration = LakeOrchestration(
            self,
            "Orchestration",
            raw_bucket=self.raw,
            snapshot_prefix=SNAPSHOT_PREFIX,
            conform_job=self.conform_job,
            features_job=self.features_job,
            features_location=uris["features"],
            features_table=f"{db}.{cat.features_table_name}",
            data_key=data_key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            destroy_on_removal=destroy_on_removal,
        )
        undelivered = cloudwatch.Alarm(
            self,
            "UndeliveredEventsAlarm",
            alarm_description="Raw-snapshot events EventBridge could not deliver to the ETL state machine",
            metric=self.orchestration.dead_letters.metric_approximate_number_of_messages_visible(
                period=cdk.Duration.minutes(5)
            ),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        undelivered.add_alarm_action(cw_actions.SnsAction(self.orchestration.failure_topic))
        acknowledge_grant_policy(sagemaker_role, Finding.LAKE_FORMATION_DATA_ACCESS)
        acknowledge_bucket_notifications(self.raw)
        drop_cdk_handler_role_dependency(self, "BucketNotificationsHandler")
