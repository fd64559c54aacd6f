"""The exact SageMaker API requests the deployer sends, built as plain dicts (pure, no AWS calls).

Tests validate each against botocore's service model, shapes and enums.
"""

from __future__ import annotations

from typing import Any

from . import naming
from .package import ServingSpec
from .settings import DeployerSettings

# Instance families with NVMe instance storage, which SageMaker encrypts with a hardware module and for which
# CreateEndpointConfig refuses a KmsKeyId (API reference, CreateEndpointConfig.KmsKeyId). Inf2 and the CPU
# families this project allows (m5, c5, r5, t3, m6i ...) are EBS-backed, so their volumes take the ML key.
INSTANCE_STORAGE_FAMILIES = frozenset(
    {"c5d", "m5d", "r5d", "g4dn", "g5", "g6", "g6e", "p3dn", "p4d", "p4de", "p5", "trn1", "trn1n"}
)
CAPTURE_CONTENT_TYPES = {"JsonContentTypes": ["application/json"], "CsvContentTypes": ["text/csv"]}


def volume_kms_applies(instance_type: str) -> bool:
    family = instance_type.split(".")[1] if instance_type.count(".") == 2 else instance_type
    return family not in INSTANCE_STORAGE_FAMILIES


def tags(settings: DeployerSettings, spec: ServingSpec) -> list[dict[str, str]]:
    values = {
        **settings.tags,
        "telecom-ml:environment": settings.env_name,
        "telecom-ml:managed-by": "endpoint-deployer",
        "telecom-ml:model-package-group": spec.group,
        "telecom-ml:model-package-version": str(spec.version),
    }
    return [{"Key": k, "Value": v} for k, v in sorted(values.items())]


def create_model(settings: DeployerSettings, spec: ServingSpec) -> dict[str, Any]:
    request: dict[str, Any] = {
        "ExecutionRoleArn": settings.execution_role_arn,
        "EnableNetworkIsolation": settings.network_isolation,
    }
    if len(spec.containers) == 1:
        request["PrimaryContainer"] = dict(spec.containers[0])
    else:
        request["Containers"] = [dict(c) for c in spec.containers]
        request["InferenceExecutionConfig"] = {"Mode": "Serial"}
    if settings.network is not None:
        request["VpcConfig"] = {
            "SecurityGroupIds": list(settings.network.security_group_ids),
            "Subnets": list(settings.network.subnet_ids),
        }
    # The package ARN enters the content hash: two packages never share a model.
    name = naming.model_name(settings.endpoint_name, spec.version, {**request, "package": spec.package_arn})
    return {"ModelName": name, **request, "Tags": tags(settings, spec)}


def create_endpoint_config(settings: DeployerSettings, spec: ServingSpec, model_name: str) -> dict[str, Any]:
    variant: dict[str, Any] = {
        "VariantName": settings.variant_name,
        "ModelName": model_name,
        "InstanceType": settings.instance_type,
        "InitialInstanceCount": settings.initial_instance_count,
        "InitialVariantWeight": 1.0,
        "ContainerStartupHealthCheckTimeoutInSeconds": settings.container_startup_timeout_seconds,
        "ModelDataDownloadTimeoutInSeconds": settings.model_data_download_timeout_seconds,
    }
    request: dict[str, Any] = {"ProductionVariants": [variant]}
    if volume_kms_applies(settings.instance_type):
        request["KmsKeyId"] = settings.volume_kms_key_arn
    capture = settings.capture
    if capture.enabled:
        request["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": capture.sampling_percent,
            "DestinationS3Uri": capture.destination_s3_uri,
            "KmsKeyId": capture.kms_key_arn,
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": CAPTURE_CONTENT_TYPES,
        }
    if settings.mode == "async":
        request["AsyncInferenceConfig"] = async_inference_config(settings)
    name = naming.endpoint_config_name(settings.endpoint_name, spec.version, request)
    return {"EndpointConfigName": name, **request, "Tags": tags(settings, spec)}


def async_inference_config(settings: DeployerSettings) -> dict[str, Any]:
    config = settings.async_inference
    if config is None:
        raise ValueError("mode 'async' needs async_inference settings")
    return {
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": config.max_concurrent_invocations_per_instance},
        "OutputConfig": {
            "KmsKeyId": config.kms_key_arn,
            "S3OutputPath": config.output_s3_uri,
            "S3FailurePath": config.failure_s3_uri,
            "NotificationConfig": {"SuccessTopic": config.success_topic_arn, "ErrorTopic": config.error_topic_arn},
        },
    }


def create_endpoint(settings: DeployerSettings, spec: ServingSpec, config_name: str) -> dict[str, Any]:
    return {"EndpointName": settings.endpoint_name, "EndpointConfigName": config_name, "Tags": tags(settings, spec)}


def update_endpoint(settings: DeployerSettings, config_name: str) -> dict[str, Any]:
    """Blue/green with a canary, rolled back automatically by the alarms the stack created."""
    canary = settings.canary
    return {
        "EndpointName": settings.endpoint_name,
        "EndpointConfigName": config_name,
        "RetainAllVariantProperties": False,
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": canary.size_percent},
                    "WaitIntervalInSeconds": canary.wait_seconds,
                },
                "TerminationWaitInSeconds": canary.termination_wait_seconds,
                "MaximumExecutionTimeoutInSeconds": canary.maximum_execution_seconds,
            },
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": name} for name in settings.rollback_alarm_names]},
        },
    }
