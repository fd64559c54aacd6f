"""The lake's zones: one SecureBucket each, encrypted with the data key and access-logged."""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.config import DataLakeConfig, LifecycleConfig, ObjectLockConfig
from infra.constructs.foundation.secure_bucket import SecureBucket
from infra.logical_ids import TransparentGroup


class LakeZones(TransparentGroup):
    """raw (EventBridge notifications on), raw CDR (optional Object Lock), curated, features,
    quarantine and Athena results. Transparent: the buckets keep the logical ids they were deployed with.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: DataLakeConfig,
        data_key: kms.IKey,
        access_logs: s3.IBucket,
        destroy_on_removal: bool,
    ) -> None:
        super().__init__(scope, construct_id)

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
