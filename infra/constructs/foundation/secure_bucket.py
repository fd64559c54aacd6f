"""The one S3 bucket construct used for every bucket in the project."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.compliance import Finding, acknowledge
from infra.config import LifecycleConfig, ObjectLockConfig

ABORT_INCOMPLETE_UPLOADS_AFTER = cdk.Duration.days(7)


class SecureBucket(Construct):
    """KMS (with bucket key), TLS-only, no public access, owner-enforced, versioned, access-logged.

    `encryption_key=None` is reserved for the server-access-log destination, which S3 only
    supports with SSE-S3; it is the only bucket created that way (`access_log_destination=True`).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        encryption_key: kms.IKey | None,
        lifecycle: LifecycleConfig,
        destroy_on_removal: bool,
        access_logs: s3.IBucket | None,
        access_log_destination: bool = False,
        object_lock: ObjectLockConfig | None = None,
        event_bridge: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        if access_log_destination == (access_logs is not None):
            raise ValueError(f"{self.node.path}: give access_logs, or mark the bucket as the log destination")
        if access_log_destination != (encryption_key is None):
            raise ValueError(f"{self.node.path}: only the access-log destination may use SSE-S3")

        lock_enabled = bool(object_lock and object_lock.enabled)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.S3_MANAGED if encryption_key is None else s3.BucketEncryption.KMS,
            encryption_key=encryption_key,
            bucket_key_enabled=encryption_key is not None,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=None if access_logs is None else f"{construct_id.lower()}/",
            lifecycle_rules=_lifecycle_rules(lifecycle),
            object_lock_enabled=lock_enabled or None,
            object_lock_default_retention=_retention(object_lock) if lock_enabled else None,
            event_bridge_enabled=event_bridge,
            removal_policy=cdk.RemovalPolicy.DESTROY if destroy_on_removal else cdk.RemovalPolicy.RETAIN,
        )
        acknowledge(self.bucket, Finding.BUCKET_REPLICATION)
        if access_log_destination:
            acknowledge(self.bucket, Finding.ACCESS_LOG_BUCKET_SSE_S3)


def _retention(lock: ObjectLockConfig | None) -> s3.ObjectLockRetention:
    assert lock is not None
    days = cdk.Duration.days(lock.retention_days)
    if lock.mode == "COMPLIANCE":
        return s3.ObjectLockRetention.compliance(days)
    return s3.ObjectLockRetention.governance(days)


def _lifecycle_rules(cfg: LifecycleConfig) -> list[s3.LifecycleRule]:
    transitions = []
    if cfg.intelligent_tiering_after_days is not None:
        transitions.append(
            s3.Transition(
                storage_class=s3.StorageClass.INTELLIGENT_TIERING,
                transition_after=cdk.Duration.days(cfg.intelligent_tiering_after_days),
            )
        )
    if cfg.glacier_after_days is not None:
        transitions.append(
            s3.Transition(
                storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                transition_after=cdk.Duration.days(cfg.glacier_after_days),
            )
        )
    rules = [
        s3.LifecycleRule(
            id="AbortIncompleteMultipartUploads",
            abort_incomplete_multipart_upload_after=ABORT_INCOMPLETE_UPLOADS_AFTER,
        ),
        s3.LifecycleRule(
            id="ExpireNoncurrentVersions",
            noncurrent_version_expiration=cdk.Duration.days(cfg.noncurrent_versions_expire_after_days),
        ),
    ]
    if transitions or cfg.expire_after_days is not None:
        rules.append(
            s3.LifecycleRule(
                id="CurrentVersions",
                transitions=transitions or None,
                expiration=None if cfg.expire_after_days is None else cdk.Duration.days(cfg.expire_after_days),
            )
        )
    return rules
