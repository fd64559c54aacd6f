"""What the infrastructure tells the deployer: one JSON document in DEPLOYER_SETTINGS.

The stack renders it from the environment's typed config; here it is parsed once per cold start,
and a malformed document fails with the field that is wrong.
"""

from __future__ import annotations

import json
import os
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import InvalidSettingsError

SETTINGS_VARIABLE = "DEPLOYER_SETTINGS"
_NAME = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CanarySettings(_Frozen):
    size_percent: Annotated[int, Field(ge=1, le=50)]
    wait_seconds: Annotated[int, Field(ge=0, le=3600)]
    termination_wait_seconds: Annotated[int, Field(ge=0, le=3600)]
    maximum_execution_seconds: Annotated[int, Field(ge=600, le=28800)]


class CaptureSettings(_Frozen):
    enabled: bool
    sampling_percent: Annotated[int, Field(ge=0, le=100)]
    destination_s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+(/.*)?$")]
    kms_key_arn: str


class AsyncSettings(_Frozen):
    output_s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+/.+$")]
    failure_s3_uri: Annotated[str, Field(pattern=r"^s3://[a-z0-9.-]+/.+$")]
    kms_key_arn: str
    success_topic_arn: str
    error_topic_arn: str
    max_concurrent_invocations_per_instance: Annotated[int, Field(ge=1, le=1000)]


class ScalingSettings(_Frozen):
    min_instances: Annotated[int, Field(ge=0, le=20)]
    max_instances: Annotated[int, Field(ge=1, le=20)]
    target_value: Annotated[float, Field(gt=0)]
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0)]
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0)]
    wake_alarm_name: str | None = None  # async only: the HasBacklogWithoutCapacity alarm the deployer owns


class NetworkSettings(_Frozen):
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]


class BaselineSettings(_Frozen):
    """Where the approved package's drift baselines may be read, and the stable "current baseline"."""

    bucket: Annotated[str, Field(pattern=r"^[a-z0-9.-]{3,63}$")]
    source_prefixes: tuple[Annotated[str, Field(pattern=r"^[a-z0-9._-]+/([a-z0-9._-]+/)*$")], ...] = Field(min_length=1)
    current_prefix: Annotated[str, Field(pattern=r"^[a-z0-9._/-]+/current-baseline/$")]
    kms_key_arn: str
    # Where a package's baseline_predictions.csv may lie (the evaluate steps' per-execution outputs, promoted
    # copies); empty: the source prefixes. The role may read only objects of that name there.
    predictions_prefixes: tuple[Annotated[str, Field(pattern=r"^[a-z0-9._-]+/([a-z0-9._-]+/)*$")], ...] = ()


class MonitoringScheduleSpec(_Frozen):
    """One Model Monitor schedule the deployer keeps on the endpoint (job definition owned by the monitoring stack)."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
    job_definition_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]
    type: Literal["DataQuality", "ModelQuality"]
    schedule_expression: Annotated[str, Field(min_length=1, max_length=256)]


class DeployerSettings(_Frozen):
    env_name: str
    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: str
    endpoint_name: Annotated[str, Field(pattern=_NAME, max_length=40)]
    variant_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9-]{1,63}$")]
    model_package_group_name: str
    ledger_table: str
    mode: Literal["realtime", "async"]
    instance_type: str
    initial_instance_count: Annotated[int, Field(ge=1, le=20)]
    container_startup_timeout_seconds: Annotated[int, Field(ge=60, le=3600)]
    model_data_download_timeout_seconds: Annotated[int, Field(ge=60, le=3600)]
    execution_role_arn: str
    volume_kms_key_arn: str
    network_isolation: bool = True
    network: NetworkSettings | None = None
    capture: CaptureSettings
    async_inference: AsyncSettings | None = None
    canary: CanarySettings
    rollback_alarm_names: tuple[str, ...] = Field(min_length=1)
    scaling: ScalingSettings
    lease_seconds: Annotated[int, Field(ge=600, le=86400)]
    max_polls: Annotated[int, Field(ge=1, le=2000)]
    tags: dict[str, str] = {}
    baseline: BaselineSettings
    monitoring_schedules: tuple[MonitoringScheduleSpec, ...] = ()
    # Set where the environment promotes (prod): only packages copied by promotion deploy, never one trained here.
    require_promoted: bool = False
    batch_scoring_pipeline_name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$")] | None = None

    @field_validator("monitoring_schedules")
    @classmethod
    def _unique_schedules(cls, value: tuple[MonitoringScheduleSpec, ...]) -> tuple[MonitoringScheduleSpec, ...]:
        names = [spec.name for spec in value]
        if len(set(names)) != len(names):
            raise ValueError(f"schedule names must be unique, got {names}")
        return value

    @property
    def name_prefix(self) -> str:
        """Every model and endpoint configuration the deployer creates starts with `<endpoint>-`."""
        return f"{self.endpoint_name}-"

    @property
    def scaling_resource_id(self) -> str:
        return f"endpoint/{self.endpoint_name}/variant/{self.variant_name}"


def parse_settings(raw: str) -> DeployerSettings:
    try:
        return DeployerSettings.model_validate(json.loads(raw))
    except json.JSONDecodeError as exc:
        raise InvalidSettingsError("(document)", f"not JSON ({exc.msg})") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "(document)"
        raise InvalidSettingsError(field, error["msg"]) from None


def load_settings() -> DeployerSettings:
    raw = os.environ.get(SETTINGS_VARIABLE)
    if raw is None:
        raise InvalidSettingsError("(document)", f"environment variable {SETTINGS_VARIABLE} is not set")
    return parse_settings(raw)
