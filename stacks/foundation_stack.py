"""Per-environment foundation: keys, isolated network, access logs and the ML artefact bucket.

Stateful and long-lived: the data lake and ML stacks reference what this stack exposes.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from infra.compliance import Finding, acknowledge_grant_policy, acknowledge_resource_wildcard
from infra.config import LifecycleConfig, NetworkConfig, OpsConfig, SecurityConfig
from infra.constructs.foundation.encryption_keys import EncryptionKeys
from infra.constructs.foundation.isolated_network import IsolatedNetwork
from infra.constructs.foundation.ops_notifications import OpsNotifications
from infra.constructs.foundation.secure_bucket import SecureBucket
from infra.grants import grant_key, grant_prefix, s3_context
from infra.logical_ids import logical_id_of
from infra.pipeline.churn import ARTIFACT_PREFIX, pipeline_role_name
from infra.sagemaker_role import sagemaker_role_name
from infra.trust import source_conditions

# Where endpoints write data capture in the ML artefact bucket (the data capture layout; ServingStack.capture_prefix).
DATA_CAPTURE_PREFIX = "data-capture/"


class FoundationStack(cdk.Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        env_name: str,
        network: NetworkConfig,
        ops: OpsConfig,
        security: SecurityConfig,
        availability_zones: tuple[str, str],
        access_log_lifecycle: LifecycleConfig,
        destroy_on_removal: bool,
        capture_retention_days: int | None = None,
        ground_truth_prefix: str | None = None,
        **kwargs: object,
    ) -> None:
        """`ground_truth_prefix`: where the labels job writes Model Monitor ground truth (engine model_monitor
        with model quality); the erasure policy covers it and a writer policy is made for the labels job."""
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        removal = cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN

        self.keys = EncryptionKeys(
            self,
            "Keys",
            env_name=env_name,
            admin_role_names=security.key_admin_role_names,
            destroy_on_removal=destroy_on_removal,
        )
        self.network = IsolatedNetwork(
            self,
            "Network",
            config=network,
            availability_zones=availability_zones,
            logs_key=self.keys.logs_key,
            removal_policy=removal,
        )
        self.access_logs = SecureBucket(
            self,
            "AccessLogs",
            encryption_key=None,
            access_logs=None,
            access_log_destination=True,
            lifecycle=access_log_lifecycle,
            destroy_on_removal=destroy_on_removal,
        ).bucket
        self.ml_artifacts = SecureBucket(
            self,
            "MlArtifacts",
            encryption_key=self.keys.ml_key,
            access_logs=self.access_logs,
            lifecycle=LifecycleConfig(intelligent_tiering_after_days=0),
            destroy_on_removal=destroy_on_removal,
        ).bucket
        if capture_retention_days is not None:  # captured requests are personal data: docs/data-lake.md#retention
            self.ml_artifacts.add_lifecycle_rule(
                id="ExpireDataCapture",
                prefix=DATA_CAPTURE_PREFIX,
                expiration=cdk.Duration.days(capture_retention_days),
            )

        self.ops = OpsNotifications(
            self,
            "Ops",
            env_name=env_name,
            notifications=ops.notifications,
            key_admin_role_names=security.key_admin_role_names,
            destroy_on_removal=destroy_on_removal,
        )

        # The one identity SageMaker Pipelines, Processing, Training and endpoints run as. It starts
        # with no permissions; each stack that owns data grants it exactly what the ML steps need.
        self.sagemaker_role = iam.Role(
            self,
            "SageMakerExecutionRole",
            assumed_by=iam.ServicePrincipal(
                "sagemaker.amazonaws.com", conditions=source_conditions(self, "sagemaker", "*")
            ),
            # Named: operators and pipeline definitions refer to it, and other stacks attach policies.
            role_name=sagemaker_role_name(env_name),
            description="SageMaker pipeline steps and endpoints (grants made by the owning stacks)",
        )
        # The role SageMaker Pipelines runs the churn pipeline as (named for the same reasons); the MlPipeline
        # stack grants it the pipeline's jobs, Lambda step and model registry.
        self.pipeline_role = iam.Role(
            self,
            "PipelineExecutionRole",
            assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
            role_name=pipeline_role_name(env_name),
            description="SageMaker Pipelines: runs the churn pipeline (its jobs run as the SageMaker role)",
        )
        self._grant_pipeline_artifacts()
        self.ground_truth_prefix = ground_truth_prefix
        self.capture_erasure_policy = self._capture_erasure_policy()
        self.ground_truth_writer_policy = self._ground_truth_writer_policy() if ground_truth_prefix else None

    def _grant_pipeline_artifacts(self) -> None:
        """The pipeline's area of the ML artefact bucket, granted here where bucket and key live: the jobs read
        and write it, the pipeline reads the property files (evaluation, selection) its jobs write there."""
        prefix = f"{ARTIFACT_PREFIX}/"
        context = s3_context(self.ml_artifacts)
        grant_prefix(self.sagemaker_role, self.ml_artifacts, prefix, read=True, write=True)
        grant_key(self.sagemaker_role, self.keys.ml_key, via="s3", write=True, context=context)
        grant_prefix(self.pipeline_role, self.ml_artifacts, prefix, read=True)
        grant_key(self.pipeline_role, self.keys.ml_key, via="s3", write=False, context=context)
        acknowledge_grant_policy(self.sagemaker_role)
        acknowledge_grant_policy(self.pipeline_role)

    def _capture_erasure_policy(self) -> iam.ManagedPolicy:
        """Rewrite and delete data-capture objects (and Model Monitor ground truth) with their old versions, made
        here where bucket and key live; the data lake attaches it to its erasure job's role."""
        prefixes = [DATA_CAPTURE_PREFIX, *([self.ground_truth_prefix] if self.ground_truth_prefix else [])]
        listing = {"StringLike": {"s3:prefix": [p for prefix in prefixes for p in (prefix.rstrip("/"), f"{prefix}*")]}}
        return self._ml_objects_policy(
            "CaptureErasurePolicy",
            "Erasure job: rewrite or delete data-capture objects (and old versions) of one subscriber",
            prefixes,
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"],
            iam.PolicyStatement(
                actions=["s3:ListBucket", "s3:ListBucketVersions"],
                resources=[self.ml_artifacts.bucket_arn],
                conditions=listing,
            ),
        )

    def _ground_truth_writer_policy(self) -> iam.ManagedPolicy:
        """The labels job writes Model Monitor ground truth under one prefix of the ML artefact bucket (made
        here where bucket and key live; the data lake attaches it to the labels job's role)."""
        assert self.ground_truth_prefix is not None
        return self._ml_objects_policy(
            "GroundTruthWriterPolicy",
            "Labels job: write Model Monitor ground truth (one prefix of the ML artefact bucket)",
            [self.ground_truth_prefix],
            ["s3:PutObject", "s3:AbortMultipartUpload"],
        )

    def _ml_objects_policy(
        self,
        construct_id: str,
        description: str,
        prefixes: list[str],
        object_actions: list[str],
        *listing: iam.PolicyStatement,
    ) -> iam.ManagedPolicy:
        """A managed policy on the objects under `prefixes` of the ML artefact bucket, with the ML key through S3
        for that bucket only (a multipart upload under SSE-KMS needs Decrypt as well as GenerateDataKey)."""
        bucket, key = self.ml_artifacts, self.keys.ml_key
        context_key, contexts = s3_context(bucket)
        policy = iam.ManagedPolicy(
            self,
            construct_id,
            description=description,
            statements=[
                iam.PolicyStatement(
                    actions=object_actions, resources=[bucket.arn_for_objects(f"{prefix}*") for prefix in prefixes]
                ),
                *listing,
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={
                        "StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"},
                        "ArnLike": {f"kms:EncryptionContext:{context_key}": contexts},
                    },
                ),
            ],
        )
        cfn_bucket = bucket.node.default_child
        assert isinstance(cfn_bucket, cdk.CfnResource)
        logical_id = logical_id_of(cfn_bucket)
        for prefix in prefixes:
            acknowledge_resource_wildcard(policy, f"<{logical_id}.Arn>/{prefix}*", Finding.OBJECTS_UNDER_ONE_PREFIX)
        return policy
