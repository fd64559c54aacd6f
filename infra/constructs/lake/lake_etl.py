"""The lake's Glue jobs with what they share: the pseudonymisation key, the dataset schema
as JSON, the security configuration and the job library. Subscriber snapshots: conform and
features; ground truth: labels (etl/labels.py, its own schema as JSON); privacy: erasure
(etl/erasure.py, started by an operator, dry run unless told otherwise).

Job roles start empty: the composing stack grants them the zones they touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.compliance import Finding, acknowledge
from infra.config import DataLakeConfig
from infra.constructs.lake.glue_etl_job import GlueEtlJob, GlueJobLibrary, GlueSecurity
from infra.constructs.lake.glue_network import GlueNetwork
from infra.constructs.lake.schema_asset import SchemaAsset
from infra.logical_ids import TransparentGroup
from infra.runtime_code import REPO_ROOT

# The labels feed's schema is the labels contract (dataset/schema_labels.py), the same in every environment.
LABELS_SCHEMA_FILE = REPO_ROOT / "dataset" / "schemas" / "churn_labels.yaml"


@dataclass(frozen=True)
class LakeLocations:
    """Where the jobs read and write, as s3:// URIs (the jobs' --*_uri arguments)."""

    curated: str
    features: str
    quarantine: str
    cdr: str
    cdr_quarantine: str
    labels: str = ""
    labels_quarantine: str = ""
    # Parquet prefixes with a subscriber_id column and the data-capture root the erasure job covers.
    erasure_parquet: tuple[str, ...] = ()
    erasure_captures: tuple[str, ...] = ()
    # Model Monitor ground truth the labels job also writes (engine model_monitor with model quality).
    ground_truth: str = ""
    # The erased-subscriber suppression list (etl/suppression.py): erasure adds to it, conform and labels read it.
    suppression: str = ""


class LakeEtl(TransparentGroup):
    """conform (raw snapshot -> curated + quarantine), features (curated + CDR usage -> features),
    labels (raw labels batch -> churn_labels + quarantine) and erasure (one subscriber, on request).

    Transparent: the secret and the jobs keep the logical ids they were deployed with.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        config: DataLakeConfig,
        schema_file: Path,
        locations: LakeLocations,
        data_key: kms.IKey,
        secrets_key: kms.IKey,
        logs_key: kms.IKey,
        network: GlueNetwork | None,
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self.pseudonymisation_key = secretsmanager.Secret(
            self,
            "PseudonymisationKey",
            description="Keyed-hash (HMAC) key that pseudonymises subscriber identifiers in the lake",
            encryption_key=secrets_key,
            generate_secret_string=secretsmanager.SecretStringGenerator(password_length=64, exclude_punctuation=True),
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.pseudonymisation_key, Finding.PSEUDONYMISATION_KEY_NOT_ROTATED)
        self.schema = SchemaAsset(self, "DatasetSchema", schema_file=schema_file).asset
        security = GlueSecurity(
            self, "GlueSecurity", name=f"telecom-ml-{env_name}-etl", data_key=data_key, logs_key=logs_key
        )
        library = GlueJobLibrary(self, "GlueLibrary")
        shared_arguments = {
            "--schema_uri": self.schema.s3_object_url,
            "--pseudonymisation_secret_id": self.pseudonymisation_key.secret_arn,
            "--curated_uri": locations.curated,
        }
        job_options = {
            "library": library,
            "security": security,
            "logs_key": logs_key,
            "worker_type": config.glue_worker_type,
            "workers": config.glue_workers,
            "network": network,
        }
        self.conform_job = GlueEtlJob(
            self,
            "ConformSubscribers",
            script="glue_conform.py",
            description="Conform a raw subscriber snapshot: schema, types, data-quality gate, pseudonymisation",
            arguments={
                **shared_arguments,
                "--quarantine_uri": locations.quarantine,
                **({"--suppression_uri": locations.suppression} if locations.suppression else {}),
            },
            **job_options,  # type: ignore[arg-type]
        )
        self.features_job = GlueEtlJob(
            self,
            "BuildFeatures",
            script="glue_features.py",
            description="Aggregate CDR usage and join it with curated subscribers into the training table",
            arguments={
                **shared_arguments,
                "--cdr_uri": locations.cdr,
                "--cdr_quarantine_uri": locations.cdr_quarantine,
                "--features_uri": locations.features,
            },
            **job_options,  # type: ignore[arg-type]
        )
        self.labels_schema = SchemaAsset(self, "LabelsSchema", schema_file=LABELS_SCHEMA_FILE).asset
        self.labels_job = GlueEtlJob(
            self,
            "ConformLabels",
            script="labels.py",
            description="Conform a raw churn-labels batch: data-quality gate, pseudonymisation, label_date partition",
            arguments={
                "--schema_uri": self.labels_schema.s3_object_url,
                "--pseudonymisation_secret_id": self.pseudonymisation_key.secret_arn,
                "--labels_uri": locations.labels,
                "--quarantine_uri": locations.labels_quarantine,
                **({"--ground_truth_uri": locations.ground_truth} if locations.ground_truth else {}),
                **({"--suppression_uri": locations.suppression} if locations.suppression else {}),
            },
            **job_options,  # type: ignore[arg-type]
        )
        self.erasure_job = GlueEtlJob(
            self,
            "EraseSubscriber",
            script="erasure.py",
            description="Erase one pseudonymised subscriber (--subscriber_id) from curated, features, scores, "
            "labels and data capture; a dry run unless --dry_run false",
            arguments={
                "--parquet_uris": ",".join(locations.erasure_parquet),
                "--capture_uris": ",".join(locations.erasure_captures),
                **({"--suppression_uri": locations.suppression} if locations.suppression else {}),
                # For --request_uri: the job derives the pseudonym from a clear id with this key.
                "--pseudonymisation_secret_id": self.pseudonymisation_key.secret_arn,
                "--dry_run": "true",
            },
            **{**job_options, "workers": 2},  # type: ignore[arg-type]
        )

    def restrict_secret_to(self, *roles: iam.IRole) -> None:
        """Resource policy: nobody but `roles` reads the key's value, whatever their IAM policies say."""
        self.pseudonymisation_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="OnlyTheEtlJobsReadTheValue",
                effect=iam.Effect.DENY,
                principals=[iam.AnyPrincipal()],
                actions=["secretsmanager:GetSecretValue"],
                resources=["*"],
                conditions={"ArnNotEquals": {"aws:PrincipalArn": [role.role_arn for role in roles]}},
            )
        )
