"""Per-environment telecom data lake: zones, catalog, Glue ETL, Lake Formation, Athena, CDR stream,
the churn labels feed, personal-data retention and the erasure job.

Composes the constructs and makes every grant here, as tables, so a reviewer sees each
permission where the pieces meet.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lakeformation as lakeformation
from aws_cdk import aws_s3 as s3
from constructs import Construct

from dataset.schema import DatasetSchema
from dataset.schema_labels import LABELS_TABLE, SUBSCRIBER_ID
from infra.compliance import Finding, acknowledge_bucket_notifications, acknowledge_grant_policy
from infra.config import DataLakeConfig
from infra.constructs.foundation.isolated_network import IsolatedNetwork
from infra.constructs.foundation.ops_notifications import OpsNotifications
from infra.constructs.lake.athena_workgroup import AthenaWorkgroup
from infra.constructs.lake.cdr_stream import CDR_PREFIX, CdrStream
from infra.constructs.lake.glue_network import GlueNetwork, glue_can_run_in_vpc
from infra.constructs.lake.lake_catalog import LakeCatalog
from infra.constructs.lake.lake_etl import LakeEtl, LakeLocations
from infra.constructs.lake.lake_formation import LakeGovernance
from infra.constructs.lake.lake_orchestration import LakeOrchestration
from infra.constructs.lake.lake_zones import LakeZones
from infra.grants import add_statements, grant_key, grant_prefix, grant_versions, s3_context
from infra.logical_ids import StableIdStack
from infra.sagemaker_role import import_sagemaker_role
from infra.template_hygiene import drop_cdk_handler_role_dependency
from stacks.foundation_stack import DATA_CAPTURE_PREFIX

# The erased-subscriber suppression list in the curated zone (etl/suppression.py); the underscore keeps it
# out of the curated tables' reads.
SUPPRESSION_PREFIX = "_suppression/"
# Raw zone: erasure requests, {"subscriber_id": "<clear id>"} objects the erasure job reads and then deletes.
ERASURE_REQUESTS_PREFIX = "erasure-requests/"

SNAPSHOT_PREFIX = "subscribers/"
RAW_LABELS_PREFIX = "labels/"  # raw zone: labels/ingest_date=YYYY-MM-DD/<file>.csv
LABELS_PREFIX = f"{LABELS_TABLE}/"  # curated zone: churn_labels/label_date=YYYY-MM-DD/*.parquet
CATALOG_READ_ACTIONS = ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions", "glue:GetPartition"]


class DataLakeStack(StableIdStack):
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
        secrets_key: kms.IKey,
        logs_key: kms.IKey,
        access_logs: s3.IBucket,
        ops: OpsNotifications,
        network: IsolatedNetwork,
        interface_endpoints: tuple[str, ...],
        log_retention_days: int,
        destroy_on_removal: bool,
        ml_artifacts: s3.IBucket | None = None,
        capture_erasure_policy: iam.IManagedPolicy | None = None,
        ground_truth: tuple[str, iam.IManagedPolicy] | None = None,
        scores_reader_role_names: tuple[str, ...] = (),
        **kwargs: object,
    ) -> None:
        """`ml_artifacts`: the bucket holding endpoint data capture; with `capture_erasure_policy` (Foundation)
        the erasure job covers captures too. `ground_truth`: (key prefix in `ml_artifacts`, the Foundation's
        writer policy): the labels job also writes Model Monitor ground truth there, which erasure covers."""
        super().__init__(scope, construct_id, **kwargs)
        self.scores_reader_role_names = scores_reader_role_names
        # Declared up front so grants on the foundation's keys go into this stack's role policies
        # rather than back into the key policies (which would make the stacks depend on each other).
        self.add_stack_dependency(cdk.Stack.of(data_key))
        self.sagemaker_role = import_sagemaker_role(self, env_name)
        self.ops = ops
        self.ops_topic = ops.import_topic(self)
        self.dataset = schema.name
        # Curated and feature tables name the id as the dataset schema does; labels and scores say subscriber_id.
        self.id_suffix = "" if schema.id_column == SUBSCRIBER_ID else f"#{schema.id_column}"
        self.zones = LakeZones(
            self,
            "Zones",
            config=config,
            data_key=data_key,
            access_logs=access_logs,
            destroy_on_removal=destroy_on_removal,
        )
        self._build_catalog_and_ingestion(env_name, config, schema, data_key, logs_key, log_retention_days,
                                          destroy_on_removal)
        self.config_erasure_prefixes = config.erasure.features_zone_prefixes
        self.ground_truth = ground_truth if ml_artifacts is not None else None
        self.ground_truth_bucket = ml_artifacts
        self.capture_store = (
            (ml_artifacts, capture_erasure_policy)
            if ml_artifacts is not None and capture_erasure_policy is not None
            else None
        )
        self.locations = self._etl_locations(config)
        self.zones.curated.add_lifecycle_rule(
            id="ExpireLabels", prefix=LABELS_PREFIX, expiration=cdk.Duration.days(config.retention.labels_days)
        )
        self.catalog.add_labels_table(self.zones.curated, LABELS_PREFIX)
        self.glue_network = self._glue_network(env_name, network, interface_endpoints)
        self.etl = LakeEtl(
            self,
            "Etl",
            env_name=env_name,
            config=config,
            schema_file=schema_file,
            locations=self.locations,
            data_key=data_key,
            secrets_key=secrets_key,
            logs_key=logs_key,
            network=self.glue_network,
            destroy_on_removal=destroy_on_removal,
        )
        self._grant_storage(data_key, secrets_key)
        self._grant_erasure(data_key, secrets_key)
        self.governance = LakeGovernance(
            self,
            "LakeFormation",
            admin_role_name=config.lake_formation_admin_role_name,
            locations={"Curated": self.zones.curated, "Features": self.zones.features},
            prefix=f"{self.dataset}/",
            data_key=data_key,
        )
        self.governance.register_location("Labels", self.zones.curated, LABELS_PREFIX)
        self._grant_tables()
        self._govern_scores()
        self._orchestrate(env_name, data_key, logs_key, log_retention_days, destroy_on_removal)
        acknowledge_grant_policy(self.sagemaker_role, Finding.APIS_WITHOUT_RESOURCE_PERMISSIONS)
        acknowledge_bucket_notifications(self.zones.raw)
        drop_cdk_handler_role_dependency(self, "BucketNotificationsHandler")

    def _build_catalog_and_ingestion(
        self,
        env_name: str,
        config: DataLakeConfig,
        schema: DatasetSchema,
        data_key: kms.IKey,
        logs_key: kms.IKey,
        log_retention_days: int,
        destroy_on_removal: bool,
    ) -> None:
        """Glue catalog and Athena workgroup over the zones; the Firehose stream into the raw CDR zone."""
        zones = self.zones
        self.catalog = LakeCatalog(
            self,
            "Catalog",
            database_name=f"telecom_ml_{env_name.replace('-', '_')}",
            schema=schema,
            curated_bucket=zones.curated,
            features_bucket=zones.features,
            scores_prefix=f"{schema.name}_scores/",
        )
        # Batch scoring writes here (one scoring_date=YYYY-MM-DD partition per run); see docs/serving.md.
        self.scores_prefix = f"{schema.name}_scores/"
        self.scores_location = f"s3://{zones.features.bucket_name}/{self.scores_prefix}"
        self.workgroup = AthenaWorkgroup(
            self,
            "Athena",
            name=f"telecom-ml-{env_name}",
            results_bucket=zones.athena_results,
            data_key=data_key,
            bytes_scanned_cutoff=config.athena_bytes_scanned_cutoff_mib * 1024 * 1024,
            destroy_on_removal=destroy_on_removal,
        )
        self.cdr_stream = CdrStream(
            self,
            "CdrStream",
            bucket=zones.raw_cdr,
            data_key=data_key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            buffer_seconds=config.firehose_buffer_seconds,
            buffer_mib=config.firehose_buffer_mib,
            destroy_on_removal=destroy_on_removal,
        )

    def _glue_network(
        self, env_name: str, network: IsolatedNetwork, interface_endpoints: tuple[str, ...]
    ) -> GlueNetwork | None:
        """Glue runs in the VPC wherever the VPC has the endpoints Glue needs; elsewhere in Glue's network."""
        if not glue_can_run_in_vpc(interface_endpoints):
            return None
        subnet = network.vpc.isolated_subnets[0]
        return GlueNetwork(self, "GlueNetwork", name=f"telecom-ml-{env_name}-etl", vpc=network.vpc, subnet=subnet)

    def _etl_locations(self, config: DataLakeConfig) -> LakeLocations:
        zones, dataset = self.zones, self.dataset
        curated, features = f"s3://{zones.curated.bucket_name}", f"s3://{zones.features.bucket_name}"
        captures: tuple[str, ...] = ()
        if self.capture_store is not None:
            captures = (f"s3://{self.capture_store[0].bucket_name}/{DATA_CAPTURE_PREFIX}",)
        ground_truth = ""
        if self.ground_truth is not None and self.ground_truth_bucket is not None:
            ground_truth = f"s3://{self.ground_truth_bucket.bucket_name}/{self.ground_truth[0]}"
            captures += (ground_truth,) if self.capture_store is not None else ()
        return LakeLocations(
            curated=f"{curated}/{dataset}/",
            features=f"{features}/{dataset}/",
            quarantine=f"s3://{zones.quarantine.bucket_name}/{dataset}/subscribers/",
            cdr=f"s3://{zones.raw_cdr.bucket_name}/{CDR_PREFIX}",
            cdr_quarantine=f"s3://{zones.quarantine.bucket_name}/{dataset}/cdr/",
            labels=f"{curated}/{LABELS_PREFIX}",
            labels_quarantine=f"s3://{zones.quarantine.bucket_name}/{dataset}/labels/",
            erasure_parquet=(
                f"{curated}/{dataset}/{self.id_suffix}",
                f"{features}/{dataset}/{self.id_suffix}",
                *(f"{features}/{prefix}" for prefix in config.erasure.features_zone_prefixes),
                f"{curated}/{LABELS_PREFIX}",
            ),
            erasure_captures=captures,
            ground_truth=ground_truth,
            suppression=f"{curated}/{SUPPRESSION_PREFIX}",
        )

    def _grant_storage(self, data_key: kms.IKey, secrets_key: kms.IKey) -> None:
        """Every S3, secret and KMS permission of the lake's readers and writers."""
        conform: iam.IRole = self.etl.conform_job.role
        features: iam.IRole = self.etl.features_job.role
        labels: iam.IRole = self.etl.labels_job.role
        zones, dataset, schema, secret = self.zones, self.dataset, self.etl.schema, self.etl.pseudonymisation_key
        # (who, zone, key prefix, read, write)
        object_access: list[tuple[iam.IRole, s3.IBucket, str, bool, bool]] = [
            (conform, zones.raw, SNAPSHOT_PREFIX, True, False),
            (conform, zones.curated, f"{dataset}/", True, True),
            (conform, zones.quarantine, f"{dataset}/subscribers/", False, True),
            (features, zones.curated, f"{dataset}/", True, False),
            (features, zones.raw_cdr, CDR_PREFIX, True, False),
            (features, zones.quarantine, f"{dataset}/cdr/", False, True),
            (features, zones.features, f"{dataset}/", True, True),
            (self.sagemaker_role, zones.features, f"{dataset}/", True, False),
            (labels, zones.raw, RAW_LABELS_PREFIX, True, False),
            (labels, zones.curated, LABELS_PREFIX, True, True),
            (labels, zones.quarantine, f"{dataset}/labels/", False, True),
            # The erased-subscriber suppression list: read (listed) by the jobs that could bring one back.
            (conform, zones.curated, SUPPRESSION_PREFIX, True, False),
            (labels, zones.curated, SUPPRESSION_PREFIX, True, False),
            (self.sagemaker_role, zones.curated, LABELS_PREFIX, True, False),
            (self.sagemaker_role, zones.features, self.scores_prefix, False, True),
        ]
        schema_of = {conform: schema, features: schema, labels: self.etl.labels_schema}
        for job_role in (conform, features, labels):
            job_schema = schema_of[job_role]
            schema_file = iam.PolicyStatement(
                actions=["s3:GetObject"], resources=[job_schema.bucket.arn_for_objects(job_schema.s3_object_key)]
            )
            pseudonym_secret = iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[secret.secret_arn],
            )
            add_statements(job_role, [schema_file, pseudonym_secret])
            secret_context = ("SecretARN", [secret.secret_arn])
            grant_key(job_role, secrets_key, via="secretsmanager", write=False, context=secret_context)
        # The erasure job derives a pseudonym from a clear id in a request object, under its own role.
        self.etl.restrict_secret_to(conform, features, labels, self.etl.erasure_job.role)
        if self.ground_truth is not None:
            labels.add_managed_policy(self.ground_truth[1])  # made in Foundation, beside the bucket and its key
        for role in (conform, features, labels, self.sagemaker_role):
            rows = [row for row in object_access if row[0] is role]
            buckets = list({id(b): b for _, b, _, _, _ in rows}.values())
            writes = any(write for *_, write in rows)
            grant_key(role, data_key, via="s3", write=writes, context=s3_context(*buckets))
        for role, bucket, prefix, read, write in object_access:
            grant_prefix(role, bucket, prefix, read=read, write=write)

    def _grant_erasure(self, data_key: kms.IKey, secrets_key: kms.IKey) -> None:
        """The erasure job rewrites objects under exactly the prefixes it erases from, old versions included."""
        role: iam.IRole = self.etl.erasure_job.role
        zones, dataset = self.zones, self.dataset
        lake_prefixes: list[tuple[s3.IBucket, str]] = [
            (zones.curated, f"{dataset}/"),
            (zones.curated, LABELS_PREFIX),
            (zones.features, f"{dataset}/"),
            *((zones.features, prefix) for prefix in self.config_erasure_prefixes),
        ]
        for bucket, prefix in lake_prefixes:
            grant_prefix(role, bucket, prefix, read=True, write=True)
            grant_versions(role, bucket, prefix)
        grant_prefix(role, zones.curated, SUPPRESSION_PREFIX, write=True)  # adds the erased pseudonym
        # Erasure by request: read the request (a clear id, in the raw zone with the other clear-id data),
        # delete it when done, and derive the pseudonym with the key the conform job uses.
        grant_prefix(role, zones.raw, ERASURE_REQUESTS_PREFIX, read=True)
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["s3:DeleteObject"], resources=[zones.raw.arn_for_objects(f"{ERASURE_REQUESTS_PREFIX}*")]
            )
        )
        grant_key(role, data_key, via="s3", write=False, context=s3_context(zones.raw))
        secret = self.etl.pseudonymisation_key
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[secret.secret_arn],
            )
        )
        grant_key(role, secrets_key, via="secretsmanager", write=False, context=("SecretARN", [secret.secret_arn]))
        grant_key(role, data_key, via="s3", write=True, context=s3_context(zones.curated, zones.features))
        if self.capture_store is not None:
            role.add_managed_policy(self.capture_store[1])  # made in Foundation, beside the bucket and its key

    def _grant_tables(self) -> None:
        """Every Lake Formation grant, and the catalog reads that go with them."""
        conform: iam.IRole = self.etl.conform_job.role
        features: iam.IRole = self.etl.features_job.role
        labels: iam.IRole = self.etl.labels_job.role
        sagemaker = self.sagemaker_role
        lf, cat = self.governance, self.catalog
        lf.grant_data_location("ConformWritesCurated", conform, "Curated")
        lf.grant_data_location("FeaturesWritesFeatures", features, "Features")
        lf.grant_data_location("LabelsWritesLabels", labels, "Labels")
        write = ["SELECT", "INSERT", "ALTER", "DESCRIBE"]
        read = ["SELECT", "DESCRIBE"]
        curated = (cat.curated_table, cat.curated_table_name)
        features_table = (cat.features_table, cat.features_table_name)
        labels_table = (cat.labels_table, cat.labels_table_name)
        # (grant id, who, (table, name), permissions)
        table_grants: list[tuple[str, iam.IRole, tuple[glue.CfnTable, str], list[str]]] = [
            ("ConformCuratedTable", conform, curated, write),
            ("FeaturesReadCurated", features, curated, read),
            ("FeaturesFeatureTable", features, features_table, write),
            ("SageMakerReadsFeatures", sagemaker, features_table, read),
            ("LabelsLabelsTable", labels, labels_table, write),
            ("SageMakerReadsLabels", sagemaker, labels_table, read),
        ]
        for grant_id, role, (table, name), permissions in table_grants:
            lf.grant_table(grant_id, role, cat.database_name, table, name, permissions)
        readers: list[tuple[iam.IRole, list[glue.CfnTable]]] = [
            (conform, [cat.curated_table]),
            (features, [cat.curated_table, cat.features_table]),
            (sagemaker, [cat.features_table, cat.labels_table]),
            (labels, [cat.labels_table]),
        ]
        for reader, tables in readers:
            catalog = iam.PolicyStatement(
                actions=CATALOG_READ_ACTIONS,
                resources=[cat.catalog_arn, cat.database_arn, *(cat.table_arn(t) for t in tables)],
            )
            # GetDataAccess has no resource-level permissions; Lake Formation grants scope it.
            data_access = iam.PolicyStatement(actions=["lakeformation:GetDataAccess"], resources=["*"])
            add_statements(reader, [catalog, data_access])

    def _govern_scores(self) -> None:
        """The scores table's folder registered with Lake Formation (the same data-access role as the zones),
        and SELECT/DESCRIBE on the table for the configured reader roles (e.g. the retention team's)."""
        lf, cat, features = self.governance, self.catalog, self.zones.features
        assert cat.scores_table is not None
        grant_prefix(lf.data_access_role, features, self.scores_prefix, read=True, write=True)
        location = lakeformation.CfnResource(
            self,
            "ScoresLocation",
            resource_arn=features.arn_for_objects(self.scores_prefix.rstrip("/")),
            use_service_linked_role=False,
            role_arn=lf.data_access_role.role_arn,
        )
        location.node.add_dependency(lf.settings)
        for name in self.scores_reader_role_names:
            reader = iam.Role.from_role_name(self, f"ScoresReader{name}", name)
            lf.grant_table(f"ScoresReader{name}", reader, cat.database_name, cat.scores_table,
                           cat.scores_table_name, ["SELECT", "DESCRIBE"])

    def _orchestrate(
        self, env_name: str, data_key: kms.IKey, logs_key: kms.IKey, log_retention_days: int, destroy_on_removal: bool
    ) -> None:
        """New raw snapshot -> conform -> features -> FeaturesReady; undeliverable events alarm."""
        self.orchestration = LakeOrchestration(
            self,
            "Orchestration",
            env_name=env_name,
            raw_bucket=self.zones.raw,
            snapshot_prefix=SNAPSHOT_PREFIX,
            conform_job=self.etl.conform_job,
            features_job=self.etl.features_job,
            features_location=self.locations.features,
            features_table=f"{self.catalog.database_name}.{self.catalog.features_table_name}",
            ops_topic=self.ops_topic,
            data_key=data_key,
            logs_key=logs_key,
            log_retention_days=log_retention_days,
            destroy_on_removal=destroy_on_removal,
            labels_job=self.etl.labels_job,
            labels_prefix=RAW_LABELS_PREFIX,
        )
        self.ops.grant_publish(self.orchestration.state_machine.role)
        self._alarm_on_undelivered_events()

    def _alarm_on_undelivered_events(self) -> None:
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
        undelivered.add_alarm_action(cw_actions.SnsAction(self.ops_topic))
