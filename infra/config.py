"""Typed per-environment configuration, one YAML file per environment under config/.

Loaded once in app.py. A bad file raises ConfigError whose message is one line naming the
file, the field and what is allowed; nothing below app.py reads files or the environment.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from infra.yaml_file import read_yaml

if TYPE_CHECKING:
    from botocore.model import ServiceModel

# Regions where every service this solution uses (SageMaker with Inferentia2, Glue 5,
# Lake Formation, Firehose) is offered. Adding a region is a deliberate review step.
SUPPORTED_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ca-central-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "eu-south-2",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "sa-east-1",
)

# Interface endpoints a deployment may switch on. Each costs about 0.01 USD per AZ-hour,
# so environments choose; the S3 gateway endpoint is always on (free).
INTERFACE_ENDPOINTS = (
    "sagemaker_api",
    "sagemaker_runtime",
    "sagemaker_studio",
    "glue",
    "sts",
    "cloudwatch_logs",
    "cloudwatch_monitoring",
    "ecr_api",
    "ecr_docker",
    "kms",
    "secrets_manager",
    "ssm",
    "events",
    "states",
    "firehose",
    "athena",
    "lakeformation",
)

# `vpc`: SageMaker jobs and the pipeline's Lambda run in the isolated subnets (inter-container traffic
# encrypted) and reach AWS through the configured interface endpoints. `isolated`: jobs run with network
# isolation and no VPC, the Lambda outside the VPC, so the environment needs no interface endpoint at all.
NETWORK_MODES = ("vpc", "isolated")
# What the pipeline itself needs in `vpc` mode: its Lambda calls the SageMaker API (jobs reach S3 through
# the gateway endpoint; SageMaker pulls images and writes job logs outside the VPC).
PIPELINE_VPC_ENDPOINTS = ("sagemaker_api",)

CPU_INSTANCE_FAMILIES = ("t3", "m5", "m6i", "m7i", "c5", "c6i", "c7i", "r5", "r6i")
ENDPOINT_ACCELERATED_FAMILIES = ("inf2",)
TRAINING_ACCELERATED_FAMILIES = ("g5", "g6", "p3", "p4d", "trn1")
INSTANCE_SIZES = (
    "medium",
    "large",
    "xlarge",
    "2xlarge",
    "4xlarge",
    "8xlarge",
    "12xlarge",
    "16xlarge",
    "24xlarge",
    "32xlarge",
    "48xlarge",
)

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{1,20}$")


class ConfigError(Exception):
    """An environment file is invalid. str(err) is the one line to show the user."""


def _instance_type_check(value: str, families: tuple[str, ...], field: str) -> str:
    match = re.fullmatch(r"ml\.([a-z0-9]+)\.([a-z0-9]+)", value)
    if not match or match.group(1) not in families or match.group(2) not in INSTANCE_SIZES:
        allowed = ", ".join(f"ml.{f}.*" for f in families)
        raise ValueError(f"'{value}' is not a supported {field} instance type (allowed: {allowed})")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NetworkConfig(_Strict):
    vpc_cidr: str = Field(pattern=r"^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}/(1[6-9]|2[0-4])$")
    # How SageMaker jobs and the pipeline's Lambda reach AWS (see NETWORK_MODES).
    mode: Literal[NETWORK_MODES] = "vpc"  # type: ignore[valid-type]
    interface_endpoints: tuple[Literal[INTERFACE_ENDPOINTS], ...] = ()  # type: ignore[valid-type]
    flow_logs_retention_days: Literal[30, 60, 90, 180, 365, 731, 1827, 3653] = 365

    @field_validator("interface_endpoints")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("lists an endpoint twice")
        return value

    @model_validator(mode="after")
    def _endpoints_fit_mode(self) -> NetworkConfig:
        if self.mode == "isolated" and self.interface_endpoints:
            raise ValueError(
                "interface_endpoints must be empty when mode is 'isolated' (jobs run with network isolation "
                "and the Lambda outside the VPC: nothing would use them)"
            )
        missing = [e for e in PIPELINE_VPC_ENDPOINTS if e not in self.interface_endpoints]
        if self.mode == "vpc" and missing:
            raise ValueError(
                f"mode 'vpc' needs interface endpoints {missing} (the pipeline's Lambda calls the SageMaker API "
                "from the isolated subnets)"
            )
        return self


class LifecycleConfig(_Strict):
    """Lifecycle of one bucket's objects; every rule is optional."""

    intelligent_tiering_after_days: Annotated[int, Field(ge=0, le=3650)] | None = None
    glacier_after_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    expire_after_days: Annotated[int, Field(ge=1, le=3650)] | None = None
    noncurrent_versions_expire_after_days: Annotated[int, Field(ge=1, le=3650)] = 90

    @model_validator(mode="after")
    def _ordered(self) -> LifecycleConfig:
        if (
            self.expire_after_days is not None
            and self.glacier_after_days is not None
            and self.expire_after_days <= self.glacier_after_days
        ):
            raise ValueError("expire_after_days must be later than glacier_after_days")
        return self


class ObjectLockConfig(_Strict):
    enabled: bool = False
    mode: Literal["GOVERNANCE", "COMPLIANCE"] = "GOVERNANCE"
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 365


class PersonalDataRetentionConfig(_Strict):
    """How long captured requests and churn labels (personal data) are kept, in days from their creation.

    captures_days expires `data-capture/` in the ML artefact bucket; labels_days expires the curated
    zone's labels prefix. Erasure (etl/erasure.py) removes one subscriber earlier on request.
    """

    captures_days: Annotated[int, Field(ge=1, le=3650)] = 90
    labels_days: Annotated[int, Field(ge=1, le=3650)] = 400


_PREFIX = r"^[a-z0-9][a-z0-9_=.-]*(/[a-z0-9][a-z0-9_=.-]*)*/$"


class ErasureConfig(_Strict):
    """Locations the erasure job covers besides the curated, features, labels and capture prefixes."""

    # Folders of the features bucket holding Parquet with a subscriber_id column (e.g. batch scores).
    features_zone_prefixes: tuple[Annotated[str, Field(pattern=_PREFIX)], ...] = ("scores/",)

    @field_validator("features_zone_prefixes")
    @classmethod
    def _unique(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError(f"repeats a prefix: {sorted(value)}")
        return value


class DataLakeConfig(_Strict):
    raw: LifecycleConfig = LifecycleConfig(intelligent_tiering_after_days=0, glacier_after_days=180)
    curated: LifecycleConfig = LifecycleConfig(intelligent_tiering_after_days=0)
    features: LifecycleConfig = LifecycleConfig(intelligent_tiering_after_days=0)
    quarantine: LifecycleConfig = LifecycleConfig(expire_after_days=90)
    athena_results: LifecycleConfig = LifecycleConfig(expire_after_days=7)
    raw_cdr_object_lock: ObjectLockConfig = ObjectLockConfig()
    athena_bytes_scanned_cutoff_mib: Annotated[int, Field(ge=10, le=10_485_760)] = 10_240
    lake_formation_admin_role_name: str = Field(pattern=r"^[\w+=,.@-]{1,64}$")
    firehose_buffer_seconds: Annotated[int, Field(ge=0, le=900)] = 300
    firehose_buffer_mib: Annotated[int, Field(ge=64, le=128)] = 64
    glue_worker_type: Literal["G.1X", "G.2X", "G.4X"] = "G.1X"
    glue_workers: Annotated[int, Field(ge=2, le=100)] = 2
    dataset_schema: str = "dataset/schemas/ibm_telco_churn.yaml"
    retention: PersonalDataRetentionConfig = PersonalDataRetentionConfig()
    erasure: ErasureConfig = ErasureConfig()

    @model_validator(mode="after")
    def _labels_within_curated_expiry(self) -> DataLakeConfig:
        curated = self.curated.expire_after_days
        if curated is not None and self.retention.labels_days > curated:
            raise ValueError(
                f"retention.labels_days ({self.retention.labels_days}) is longer than curated.expire_after_days "
                f"({curated}), which expires every object of the curated zone, labels included; shorten "
                "labels_days or lengthen the curated zone's expiry"
            )
        return self


class QualityGateConfig(_Strict):
    min_roc_auc: Annotated[float, Field(ge=0.5, le=1.0)]
    min_top_decile_lift: Annotated[float, Field(ge=1.0, le=10.0)]


class CanaryConfig(_Strict):
    """Blue/green update with canary traffic shifting (UpdateEndpoint's DeploymentConfig)."""

    size_percent: Annotated[int, Field(ge=1, le=50)] = 10
    wait_minutes: Annotated[int, Field(ge=1, le=60)] = 10
    termination_wait_minutes: Annotated[int, Field(ge=0, le=60)] = 10
    maximum_execution_minutes: Annotated[int, Field(ge=10, le=480)] = 120


class RollbackAlarmsConfig(_Strict):
    """Thresholds of the alarms that roll a canary back (and alert the ops topic)."""

    max_5xx_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 1
    max_model_errors_per_minute: Annotated[int, Field(ge=1, le=10_000)] = 1
    model_latency_p99_ms: Annotated[int, Field(ge=1, le=600_000)] = 1_000
    evaluation_minutes: Annotated[int, Field(ge=1, le=10)] = 2


class DataCaptureSettings(_Strict):
    enabled: bool = True
    sampling_percent: Annotated[int, Field(ge=1, le=100)] = 100


class EndpointConfig(_Strict):
    """The environment's one churn endpoint, created at run time by the deployer (docs/serving.md)."""

    mode: Literal["realtime", "async"]
    instance_type: str
    min_instances: Annotated[int, Field(ge=0, le=20)]
    max_instances: Annotated[int, Field(ge=1, le=20)]
    target_invocations_per_instance: Annotated[int, Field(ge=1, le=100_000)] = 1_000
    target_backlog_per_instance: Annotated[float, Field(gt=0, le=10_000)] = 5.0
    max_concurrent_invocations_per_instance: Annotated[int, Field(ge=1, le=1_000)] = 4
    scale_in_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 600
    scale_out_cooldown_seconds: Annotated[int, Field(ge=0, le=3600)] = 60
    # Neuron models load from a compiled artefact, but the runtime still takes minutes to start.
    container_startup_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 900
    model_data_download_timeout_seconds: Annotated[int, Field(ge=60, le=3600)] = 1200
    deployment_timeout_minutes: Annotated[int, Field(ge=30, le=720)] = 180
    data_capture: DataCaptureSettings = DataCaptureSettings()
    canary: CanaryConfig = CanaryConfig()
    rollback_alarms: RollbackAlarmsConfig = RollbackAlarmsConfig()

    @model_validator(mode="before")
    @classmethod
    def _default_mode(cls, data: object) -> object:
        # Without an explicit mode, an endpoint allowed to reach zero instances is asynchronous.
        if isinstance(data, dict) and "mode" not in data:
            return {**data, "mode": "async" if data.get("min_instances") == 0 else "realtime"}
        return data

    @field_validator("instance_type")
    @classmethod
    def _family(cls, value: str) -> str:
        return _instance_type_check(value, ENDPOINT_ACCELERATED_FAMILIES + CPU_INSTANCE_FAMILIES, "endpoint")

    @model_validator(mode="after")
    def _bounds(self) -> EndpointConfig:
        if self.min_instances > self.max_instances:
            raise ValueError("min_instances is greater than max_instances")
        if self.mode == "realtime" and self.min_instances < 1:
            raise ValueError("min_instances 0 needs mode 'async' (a real-time endpoint cannot scale to zero)")
        return self

    @property
    def initial_instances(self) -> int:
        """Instances the variant starts with: SageMaker needs at least one, even when scaling to zero."""
        return max(1, self.min_instances)


class BudgetConfig(_Strict):
    """A monthly AWS Budgets cost budget for the environment's account, alerting the ops subscribers."""

    monthly_limit_usd: Annotated[float, Field(gt=0, le=1_000_000)]
    alert_at_percent: tuple[Annotated[int, Field(ge=1, le=200)], ...] = (80, 100)


class RegistryConfig(_Strict):
    """Who may read this environment's model registry (the environment promoting from it: staging -> prod)."""

    share_with_accounts: tuple[Annotated[str, Field(pattern=r"^\d{12}$")], ...] = ()


class PromotionConfig(_Strict):
    """This environment deploys packages approved in another one, copied by promotion (docs/serving.md)."""

    source_account: Annotated[str, Field(pattern=r"^\d{12}$")]
    source_region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    source_group: Annotated[str, Field(pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")]


class RetrainingConfig(_Strict):
    """When a training pipeline execution may start (lambdas/start_training, docs/retraining-trigger.md)."""

    cooldown_hours: Annotated[int, Field(ge=0, le=168)] = 6  # between two starts; 0 = none
    daily_cap: Annotated[int, Field(ge=1, le=24)] = 2  # starts per UTC day
    max_run_hours: Annotated[int, Field(ge=1, le=72)] = 12  # the lock's longest hold on one execution
    duplicate_window_hours: Annotated[int, Field(ge=24, le=168)] = 48  # the same event is ignored this long
    audit_retention_days: Annotated[int, Field(ge=30, le=3653)] = 400
    retry_attempts: Annotated[int, Field(ge=0, le=2)] = 2  # Lambda's asynchronous retries before the DLQ
    reserved_concurrency: Annotated[int, Field(ge=1, le=10)] = 2

    @model_validator(mode="after")
    def _cap_reachable(self) -> RetrainingConfig:
        if self.daily_cap > 1 and self.cooldown_hours * (self.daily_cap - 1) >= 24:
            raise ValueError(
                f"daily_cap {self.daily_cap} can never be reached with cooldown_hours {self.cooldown_hours} "
                f"(at most {1 + 23 // self.cooldown_hours} starts fit in a day)"
            )
        return self


# --------------------------------------------------------------------------- ML pipeline (ml.pipeline)
# AWS-owned image registries per region: (SageMaker first-party images such as XGBoost, Deep Learning
# Containers). From the SageMaker Python SDK's bundled image_uri_config (xgboost 3.2-0, pytorch 2.9.0).
AWS_IMAGE_REGISTRIES: dict[str, tuple[str, str]] = {
    "us-east-1": ("683313688378", "763104351884"),
    "us-east-2": ("257758044811", "763104351884"),
    "us-west-2": ("246618743249", "763104351884"),
    "ca-central-1": ("341280168497", "763104351884"),
    "eu-west-1": ("141502667606", "763104351884"),
    "eu-west-2": ("764974769150", "763104351884"),
    "eu-west-3": ("659782779980", "763104351884"),
    "eu-central-1": ("492215442770", "763104351884"),
    "eu-north-1": ("662702820516", "763104351884"),
    "eu-south-2": ("104374241257", "503227376785"),
    "ap-south-1": ("720646828776", "763104351884"),
    "ap-northeast-1": ("354813040037", "763104351884"),
    "ap-northeast-2": ("366743142698", "763104351884"),
    "ap-southeast-1": ("121021644041", "763104351884"),
    "ap-southeast-2": ("783357654285", "763104351884"),
    "sa-east-1": ("737474898029", "763104351884"),
}
# Image of each role when config names none: (registry: 0 first-party / 1 DLC, repository, tag). The Neuron
# compile and serving images share one Neuron SDK (2.30.0); torch-neuronx is in maintenance from SDK 2.32.
DEFAULT_IMAGES: dict[str, tuple[int, str, str]] = {
    "xgboost": (0, "sagemaker-xgboost", "3.2-0"),
    "pytorch": (1, "pytorch-training", "2.9.0-cpu-py312-ubuntu22.04-sagemaker"),
    "neuron_compile": (1, "pytorch-training-neuronx", "2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"),
    "neuron_serving": (1, "pytorch-inference-neuronx", "2.9.0-neuronx-py312-sdk2.30.0-ubuntu24.04"),
}
IMAGE_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/"
    r"(?P<repository>[a-z0-9][a-z0-9._/-]{1,255}):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$"
)
_NEURON_SDK = re.compile(r"-sdk(\d+\.\d+\.\d+)")
_ISO_DURATION = r"^P(\d+D)?(T(\d+H)?(\d+M)?)?$"


@cache
def sagemaker_enum(shape: str) -> frozenset[str]:
    """The values botocore's SageMaker service model allows for an enum shape (data files only, no session)."""
    return frozenset(_sagemaker_model().shape_for(shape).enum)


@cache
def _sagemaker_model() -> ServiceModel:
    """botocore's SageMaker service model, read once (several MB of JSON)."""
    from botocore.loaders import Loader
    from botocore.model import ServiceModel

    return ServiceModel(Loader().load_service_model("sagemaker", "service-2"), "sagemaker")


def _api_instance_type(value: str | None, shape: str, field: str) -> str | None:
    if value is not None and value not in sagemaker_enum(shape):
        raise ValueError(f"'{value}' is not a {field} instance type SageMaker accepts (botocore {shape})")
    return value


class ProcessingStepConfig(_Strict):
    """Compute of one Processing step; instance_type None = ml.processing_instance_type."""

    instance_type: str | None = None
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    volume_gb: Annotated[int, Field(ge=1, le=1024)] = 30
    max_runtime_minutes: Annotated[int, Field(ge=5, le=1440)] = 60

    @field_validator("instance_type")
    @classmethod
    def _api(cls, value: str | None) -> str | None:
        return _api_instance_type(value, "ProcessingInstanceType", "processing")


class TrainingStepConfig(_Strict):
    """Compute of one Training step; instance_type None = ml.training_instance_type. Managed spot
    (with checkpoints) waits at most max_wait_minutes (default twice the runtime) for capacity."""

    instance_type: str | None = None
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    volume_gb: Annotated[int, Field(ge=1, le=1024)] = 30
    max_runtime_minutes: Annotated[int, Field(ge=5, le=1440)] = 120
    managed_spot: bool = False
    max_wait_minutes: Annotated[int, Field(ge=5, le=2880)] | None = None

    @field_validator("instance_type")
    @classmethod
    def _api(cls, value: str | None) -> str | None:
        return _api_instance_type(value, "TrainingInstanceType", "training")

    @model_validator(mode="after")
    def _spot(self) -> TrainingStepConfig:
        if self.max_wait_minutes is not None and not self.managed_spot:
            raise ValueError("max_wait_minutes applies to managed_spot training only")
        if self.max_wait_minutes is not None and self.max_wait_minutes < self.max_runtime_minutes:
            raise ValueError("max_wait_minutes must be at least max_runtime_minutes")
        return self

    @property
    def max_wait_seconds(self) -> int | None:
        if not self.managed_spot:
            return None
        return 60 * (self.max_wait_minutes or 2 * self.max_runtime_minutes)


class ModelChoiceConfig(_Strict):
    """Which candidate ships (docs/pipeline.md): PyTorch (Inferentia2) when its test ROC-AUC is within
    pytorch_tolerance of the best candidate's; it must also reach the champion's ROC-AUC, re-scored on the
    same test split, minus champion_tolerance."""

    pytorch_tolerance: Annotated[float, Field(ge=0.0, le=0.1)] = 0.005
    champion_tolerance: Annotated[float, Field(ge=0.0, le=0.1)] = 0.005


class PipelineImagesConfig(_Strict):
    """Container images (full ECR URIs in the environment's region); each left out = DEFAULT_IMAGES."""

    xgboost: str | None = None  # preprocess, train/evaluate/package XGBoost, baseline, selection; serves XGBoost
    pytorch: str | None = None  # train and evaluate the PyTorch network (CPU)
    neuron_compile: str | None = None  # CompileNeuron on trn1
    neuron_serving: str | None = None  # serves the compiled network on inf2

    @field_validator("xgboost", "pytorch", "neuron_compile", "neuron_serving")
    @classmethod
    def _uri(cls, value: str | None) -> str | None:
        if value is not None and not IMAGE_URI.match(value):
            raise ValueError(f"'{value}' is not an ECR image URI <account>.dkr.ecr.<region>.amazonaws.com/<repo>:<tag>")
        return value


class PipelineConfig(_Strict):
    """The SageMaker pipeline of one environment (stacks/ml_pipeline_stack.py, docs/pipeline.md)."""

    approval: Literal["Approved", "PendingManualApproval"] = "PendingManualApproval"
    cache_expire_after: str = Field(default="P30D", pattern=_ISO_DURATION)
    model_choice: ModelChoiceConfig = ModelChoiceConfig()
    preprocess: ProcessingStepConfig = ProcessingStepConfig()
    # Preprocess writes each split as this many files (--shards); XGBoost with more than one instance trains
    # distributed, each instance on its share of the train files (ShardedByS3Key), so shards >= its instance
    # count. The PyTorch network and the compile train on one instance.
    preprocess_shards: Annotated[int, Field(ge=1, le=1000)] = 1
    train_xgboost: TrainingStepConfig = TrainingStepConfig()
    train_pytorch: TrainingStepConfig = TrainingStepConfig()
    evaluate: ProcessingStepConfig = ProcessingStepConfig(max_runtime_minutes=30)
    baseline: ProcessingStepConfig = ProcessingStepConfig(max_runtime_minutes=30)
    compile_neuron: TrainingStepConfig = TrainingStepConfig(instance_type="ml.trn1.2xlarge", max_runtime_minutes=60)
    compile_batch_size: Annotated[int, Field(ge=1, le=4096)] = 64
    # Where an XGBoost package may be served (CPU); the PyTorch package names ml.endpoint.instance_type.
    xgboost_serving_instance_type: str = "ml.m5.large"
    images: PipelineImagesConfig = PipelineImagesConfig()

    @field_validator("xgboost_serving_instance_type")
    @classmethod
    def _serving(cls, value: str) -> str:
        return _instance_type_check(value, CPU_INSTANCE_FAMILIES, "XGBoost serving")

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        compile_type = self.compile_neuron.instance_type
        if compile_type is None or not compile_type.startswith(("ml.trn1.", "ml.trn1n.", "ml.trn2.")):
            raise ValueError(
                f"compile_neuron.instance_type {compile_type!r} must be a Trainium type (ml.trn1.*): the traced "
                "model is checked against eager where Neuron runs, and Processing has no Neuron instances"
            )
        for name in ("preprocess", "train_pytorch", "compile_neuron"):
            if getattr(self, name).instance_count > 1:
                raise ValueError(
                    f"{name}.instance_count must be 1: its script runs on one instance (only train_xgboost "
                    "trains distributed; preprocess_shards sets how many files the splits have)"
                )
        if self.compile_neuron.managed_spot:
            raise ValueError("compile_neuron.managed_spot is not supported: the compile keeps no checkpoints")
        if self.train_xgboost.instance_count > self.preprocess_shards:
            raise ValueError(
                f"train_xgboost.instance_count {self.train_xgboost.instance_count} needs preprocess_shards >= it "
                f"(got {self.preprocess_shards}): each instance trains on its own S3 shard"
            )
        return self

    def image(self, role: str, region: str) -> str:
        """The image URI of `role` (a PipelineImagesConfig field) in `region`."""
        configured: str | None = getattr(self.images, role)
        if configured is not None:
            return configured
        registry, repository, tag = DEFAULT_IMAGES[role]
        account = AWS_IMAGE_REGISTRIES[region][registry]
        return f"{account}.dkr.ecr.{region}.amazonaws.com/{repository}:{tag}"

    def check_images(self, region: str) -> None:
        """Images come from AWS's registries of `region`; compile and serving share one Neuron SDK."""
        for role in PipelineImagesConfig.model_fields:
            match = IMAGE_URI.match(self.image(role, region))
            assert match is not None
            if match["region"] != region or match["account"] not in AWS_IMAGE_REGISTRIES[region]:
                raise ValueError(
                    f"ml.pipeline.images.{role}: '{self.image(role, region)}' is not in an AWS image registry of "
                    f"{region} (accounts {', '.join(AWS_IMAGE_REGISTRIES[region])})"
                )
        sdks = {r: _NEURON_SDK.search(self.image(r, region)) for r in ("neuron_compile", "neuron_serving")}
        versions = {r: m.group(1) if m else None for r, m in sdks.items()}
        if None in versions.values() or len(set(versions.values())) != 1:
            raise ValueError(
                "ml.pipeline.images: neuron_compile and neuron_serving must name the same Neuron SDK "
                f"(-sdkX.Y.Z in the tag), got {versions}"
            )


class BatchScoringConfig(_Strict):
    """Batch scoring of the whole subscriber base into the lake's scores table (infra/pipeline/scoring.py,
    docs/serving.md "Batch scoring"). The transform runs where the package can: a PyTorch (Neuron) package on
    pytorch_instance_type (None = ml.endpoint.instance_type), an XGBoost package on xgboost_instance_type
    (None = ml.pipeline.xgboost_serving_instance_type)."""

    # EventBridge Scheduler expression (cron(...) or rate(...)) in schedule_time_zone; None = no schedule
    # (the deployer still starts a run after each deployment).
    schedule: str | None = Field(default="cron(0 5 1 * ? *)", pattern=r"^(cron|rate)\([^()]+\)$")
    schedule_time_zone: str = Field(default="UTC", pattern=r"^[A-Za-z]+(?:[/_+-][A-Za-z0-9_+-]+)*$")
    pytorch_instance_type: str | None = None
    xgboost_instance_type: str | None = None
    instance_count: Annotated[int, Field(ge=1, le=20)] = 1
    # Largest mini-batch (one request to the model); CreateTransformJob's default is 6.
    max_payload_mb: Annotated[int, Field(ge=1, le=100)] = 6
    shard_rows: Annotated[int, Field(ge=1_000, le=10_000_000)] = 100_000  # requests per input object
    prepare: ProcessingStepConfig = ProcessingStepConfig(max_runtime_minutes=30)
    publish: ProcessingStepConfig = ProcessingStepConfig(max_runtime_minutes=30)
    # IAM role names (this account) granted SELECT/DESCRIBE on the scores table, e.g. the retention team's.
    reader_role_names: tuple[Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")], ...] = ()

    @field_validator("pytorch_instance_type", "xgboost_instance_type")
    @classmethod
    def _transform(cls, value: str | None) -> str | None:
        return _api_instance_type(value, "TransformInstanceType", "transform")

    def instance_type(self, model_type: str, ml: MlConfig) -> str:
        if model_type == "pytorch":
            return self.pytorch_instance_type or ml.endpoint.instance_type
        return self.xgboost_instance_type or ml.pipeline.xgboost_serving_instance_type


class MlConfig(_Strict):
    quality_gate: QualityGateConfig
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    endpoint: EndpointConfig
    retraining: RetrainingConfig = RetrainingConfig()
    pipeline: PipelineConfig = PipelineConfig()
    registry: RegistryConfig = RegistryConfig()
    promotion: PromotionConfig | None = None
    batch_scoring: BatchScoringConfig = BatchScoringConfig()

    @field_validator("processing_instance_type")
    @classmethod
    def _processing(cls, value: str) -> str:
        # Processing jobs cannot run on Neuron instance types.
        return _instance_type_check(value, CPU_INSTANCE_FAMILIES, "processing")

    @field_validator("training_instance_type")
    @classmethod
    def _training(cls, value: str) -> str:
        return _instance_type_check(value, CPU_INSTANCE_FAMILIES + TRAINING_ACCELERATED_FAMILIES, "training")

    @model_validator(mode="after")
    def _pipeline_instance_types(self) -> MlConfig:
        """The defaults the pipeline's steps fall back to must be types SageMaker's API accepts too."""
        _api_instance_type(self.processing_instance_type, "ProcessingInstanceType", "processing")
        _api_instance_type(self.training_instance_type, "TrainingInstanceType", "training")
        for model_type in ("pytorch", "xgboost"):
            _api_instance_type(self.batch_scoring.instance_type(model_type, self), "TransformInstanceType",
                               f"batch_scoring {model_type} transform")
        return self

    def processing_type(self, step: ProcessingStepConfig) -> str:
        return step.instance_type or self.processing_instance_type

    def training_type(self, step: TrainingStepConfig) -> str:
        return step.instance_type or self.training_instance_type


# --------------------------------------------------------------------------- monitoring (monitoring:)
# model_monitor: SageMaker Model Monitor job definitions (accounts that still have Model Monitor);
# drift_job: the project's drift job in a small SageMaker pipeline (any account). docs/monitoring.md.
MONITORING_ENGINES = ("model_monitor", "drift_job")
# The comparison_threshold training_jobs/baseline.py writes into constraints.json (a test keeps them equal):
# the drift-distance alarm threshold when config names none.
BASELINE_COMPARISON_THRESHOLD = 0.1
# EventBridge Scheduler expressions: cron with six fields, or rate(<n> <unit>).
_SCHEDULE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\))$")
# What CreateMonitoringSchedule accepts: hourly, daily at hour H, or every N hours from hour H.
_MODEL_MONITOR_SCHEDULE = re.compile(r"^cron\(0 (\*|(1?\d|2[0-3])(/([1-9]|1\d|2[0-4]))?) \? \* \* \*\)$")
# Model Monitor: a model-quality job on an hourly schedule may run at most 1,800 s (data quality 3,600 s).
MODEL_MONITOR_MAX_RUNTIME_MINUTES = 30
# Alarms evaluate one period per run (period = window_hours); CloudWatch evaluates at most 7 days.
MAX_ALARM_EVALUATION_HOURS = 168
# Both engines publish CloudWatch metrics from the job: in network mode 'vpc' through this interface endpoint.
MONITORING_VPC_ENDPOINTS = ("cloudwatch_monitoring",)


class MonitoringThresholds(_Strict):
    """Alarm thresholds on the monitoring metrics; each alarm, named telecom-ml-<env>-retrain-..., starts training."""

    drift_distance: Annotated[float, Field(gt=0, le=1)] = BASELINE_COMPARISON_THRESHOLD  # feature_baseline_drift_*
    feature_psi: Annotated[float, Field(gt=0, le=10)] = 0.25  # feature_psi_<feature>
    prediction_psi: Annotated[float, Field(gt=0, le=10)] = 0.25  # prediction_drift_psi
    min_auc: Annotated[float, Field(ge=0.5, le=1.0)] | None = None  # auc; None = ml.quality_gate.min_roc_auc
    evaluation_periods: Annotated[int, Field(ge=1, le=24)] = 1  # consecutive breaching runs before ALARM


class MonitoringConfig(_Strict):
    """Drift and model-quality monitoring of the environment's endpoint (docs/monitoring.md)."""

    engine: Literal[MONITORING_ENGINES] = "drift_job"  # type: ignore[valid-type]
    schedule: str = "cron(0 * ? * * *)"  # hourly, at minute 0 (UTC)
    window_hours: Annotated[int, Field(ge=1, le=168)] = 1  # captured data each run reads, ending at its start
    instance_type: str = "ml.m5.xlarge"
    volume_gb: Annotated[int, Field(ge=1, le=1024)] = 30
    max_runtime_minutes: Annotated[int, Field(ge=5, le=1440)] = MODEL_MONITOR_MAX_RUNTIME_MINUTES
    thresholds: MonitoringThresholds = MonitoringThresholds()
    # Ground truth joins captured predictions: the drift job reads the lake's churn_labels, Model Monitor
    # a ground-truth prefix. Off until the environment has a labels feed (an empty input fails the job).
    model_quality: bool = False
    reports_retention_days: Annotated[int, Field(ge=1, le=3650)] = 400  # monitoring output

    @field_validator("instance_type")
    @classmethod
    def _api(cls, value: str) -> str:
        _instance_type_check(value, CPU_INSTANCE_FAMILIES, "monitoring")
        _api_instance_type(value, "ProcessingInstanceType", "monitoring")
        return value

    @field_validator("schedule")
    @classmethod
    def _expression(cls, value: str) -> str:
        if not _SCHEDULE.fullmatch(value):
            raise ValueError(f"'{value}' is not a schedule expression (cron(<6 fields>) or rate(<n> <unit>))")
        return value

    @model_validator(mode="after")
    def _engine_limits(self) -> MonitoringConfig:
        evaluated = self.window_hours * self.thresholds.evaluation_periods
        if evaluated > MAX_ALARM_EVALUATION_HOURS:
            raise ValueError(
                f"window_hours x thresholds.evaluation_periods = {evaluated} hours; a CloudWatch alarm evaluates "
                f"at most {MAX_ALARM_EVALUATION_HOURS} hours"
            )
        if self.engine != "model_monitor":
            return self
        if not _MODEL_MONITOR_SCHEDULE.fullmatch(self.schedule):
            raise ValueError(
                f"schedule '{self.schedule}' is not one Model Monitor accepts (engine model_monitor): hourly "
                "'cron(0 * ? * * *)', daily 'cron(0 H ? * * *)' or every N hours 'cron(0 H/N ? * * *)'"
            )
        if self.max_runtime_minutes > MODEL_MONITOR_MAX_RUNTIME_MINUTES:
            raise ValueError(
                f"max_runtime_minutes {self.max_runtime_minutes} exceeds the {MODEL_MONITOR_MAX_RUNTIME_MINUTES} "
                "minutes Model Monitor allows a model-quality job on an hourly schedule (engine model_monitor)"
            )
        return self

    def min_auc(self, gate: QualityGateConfig) -> float:
        """The AUC floor of the quality alarm: configured, or the pipeline's own quality gate."""
        return self.thresholds.min_auc if self.thresholds.min_auc is not None else gate.min_roc_auc


class NotificationConfig(_Strict):
    """One subscriber of the environment's ops topic."""

    protocol: Literal["email", "https"]
    endpoint: str

    @model_validator(mode="after")
    def _endpoint_fits_protocol(self) -> NotificationConfig:
        if self.protocol == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}", self.endpoint):
            raise ValueError(f"'{self.endpoint}' is not an email address")
        if self.protocol == "https" and not re.fullmatch(r"https://[^\s/]+(/\S*)?", self.endpoint):
            raise ValueError(f"'{self.endpoint}' is not an https:// URL")
        return self


class OpsConfig(_Strict):
    """Where alarms and operational notices go: one SNS topic per environment."""

    notifications: tuple[NotificationConfig, ...] = ()


class SecurityConfig(_Strict):
    """Who administers this environment's KMS keys (they cannot use them; IAM grants use)."""

    key_admin_role_names: tuple[Annotated[str, Field(pattern=r"^[\w+=,.@-]{1,64}$")], ...] = ()


class EnvironmentConfig(_Strict):
    """Everything one environment's stacks need, as typed values."""

    name: str = Field(pattern=_ENV_NAME.pattern)
    account: str = Field(pattern=r"^\d{12}$")
    region: Literal[SUPPORTED_REGIONS]  # type: ignore[valid-type]
    availability_zones: tuple[str, str]
    removal_policy: Literal["retain", "destroy"] = "retain"
    log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365, 731, 1827, 3653] = 365
    access_logs: LifecycleConfig = LifecycleConfig(glacier_after_days=90, expire_after_days=730)
    network: NetworkConfig
    ops: OpsConfig = OpsConfig()
    security: SecurityConfig = SecurityConfig()
    data_lake: DataLakeConfig
    ml: MlConfig
    monitoring: MonitoringConfig = MonitoringConfig()
    budget: BudgetConfig | None = None
    tags: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> EnvironmentConfig:
        for zone in self.availability_zones:
            if not (zone.startswith(self.region) and re.fullmatch(r"[a-z]", zone[len(self.region) :])):
                raise ValueError(f"availability zone '{zone}' is not in region {self.region}")
        if self.availability_zones[0] == self.availability_zones[1]:
            raise ValueError("availability_zones must be two different zones")
        if self.removal_policy == "destroy" and self.name not in ("dev", "sandbox"):
            raise ValueError(f"removal_policy 'destroy' is only allowed for dev/sandbox, not '{self.name}'")
        return self

    @model_validator(mode="after")
    def _promotion_crosses_accounts(self) -> EnvironmentConfig:
        promotion, shared = self.ml.promotion, self.ml.registry.share_with_accounts
        if promotion is not None and promotion.source_account == self.account:
            raise ValueError(f"ml.promotion.source_account {promotion.source_account} is this environment's own "
                             "account: promotion copies from another environment's account")
        if self.account in shared:
            raise ValueError(f"ml.registry.share_with_accounts names this environment's own account {self.account}")
        if promotion is not None and promotion.source_region not in AWS_IMAGE_REGISTRIES:
            raise ValueError(f"ml.promotion.source_region '{promotion.source_region}' is not one of "
                             f"{sorted(AWS_IMAGE_REGISTRIES)}")
        return self

    @model_validator(mode="after")
    def _pipeline_fits_environment(self) -> EnvironmentConfig:
        self.ml.pipeline.check_images(self.region)
        return self

    @model_validator(mode="after")
    def _monitoring_fits_network(self) -> EnvironmentConfig:
        missing = [e for e in MONITORING_VPC_ENDPOINTS if e not in self.network.interface_endpoints]
        if self.network.mode == "vpc" and missing:
            raise ValueError(
                f"monitoring needs network.interface_endpoints {missing} in mode 'vpc' (its jobs publish "
                "CloudWatch metrics from the isolated subnets)"
            )
        return self

    @property
    def stage_name(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("-"))

    @property
    def destroy_on_removal(self) -> bool:
        return self.removal_policy == "destroy"


def load_environment(path: str | Path) -> EnvironmentConfig:
    path = Path(path)
    raw = read_yaml(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    if raw.get("name", path.stem) != path.stem:
        raise ConfigError(f"{path}: name '{raw.get('name')}' must match the file name '{path.stem}'")
    raw.setdefault("name", path.stem)
    try:
        return EnvironmentConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None


def load_all(config_dir: str | Path, only: str | None = None) -> list[EnvironmentConfig]:
    """Every environment under config_dir (one *.yaml each), or just `only`."""
    files = sorted(Path(config_dir).glob("*.yaml"))
    if only is not None:
        files = [f for f in files if f.stem == only]
        if not files:
            known = ", ".join(sorted(f.stem for f in Path(config_dir).glob("*.yaml")))
            raise ConfigError(f"{config_dir}: no environment '{only}' (known: {known})")
    if not files:
        raise ConfigError(f"{config_dir}: no environment files (*.yaml)")
    configs = [load_environment(f) for f in files]
    _check_promotion_sources(configs, files)
    return configs


def _check_promotion_sources(configs: list[EnvironmentConfig], files: list[Path]) -> None:
    """A promotion source among the loaded environments must share its registry with the promoting account."""
    by_account = {c.account: (c, f) for c, f in zip(configs, files, strict=True)}
    for config, file in zip(configs, files, strict=True):
        promotion = config.ml.promotion
        if promotion is None or promotion.source_account not in by_account:
            continue
        source, source_file = by_account[promotion.source_account]
        problem = None
        if source.region != promotion.source_region:
            problem = f"source_region '{promotion.source_region}' but {source_file.name} is in {source.region}"
        elif config.account not in source.ml.registry.share_with_accounts:
            problem = f"{source_file.name} does not list {config.account} in ml.registry.share_with_accounts"
        if problem:
            raise ConfigError(f"{file}: ml.promotion: {problem}")


def _first_error(exc: ValidationError) -> str:
    """One line per problem is too much for a failing synth: report the first, precisely."""
    err = exc.errors()[0]
    loc = ".".join(str(part) for part in err["loc"]) or "(top level)"
    kind, msg, value = err["type"], err["msg"], err.get("input")
    if kind == "extra_forbidden":
        return f"{loc}: unknown setting (check the spelling against docs/configuration.md)"
    if kind == "missing":
        return f"{loc}: required setting is missing"
    if kind == "string_pattern_mismatch" and loc.endswith("account"):
        return f"{loc}: '{value}' is not a 12-digit AWS account id"
    if kind == "literal_error":
        return f"{loc}: {value!r} is not allowed; {msg[0].lower()}{msg[1:]}"
    msg = msg.removeprefix("Value error, ")
    shown = "" if isinstance(value, (dict, list)) else f" (got {value!r})"
    return f"{loc}: {msg}{shown}"
