"""Typed pipeline steps. `arguments()` is the matching SageMaker API request (CreateProcessingJob,
CreateTrainingJob, CreateModelPackage) without the job name, in the shape the SageMaker Python SDK
writes it; `to_request()` is the step as the definition holds it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from infra.pipeline.expressions import StepProperty, render

Value = Any  # a JSON value or an Expression


@dataclass(frozen=True)
class Compute:
    instance_type: str
    instance_count: int
    volume_gb: int
    max_runtime_seconds: int


@dataclass(frozen=True)
class JobSecurity:
    """What every job step shares: the role it runs as, the KMS key of its volumes and outputs, its network.

    `subnets`/`security_group_ids` empty: no VPC. Network isolation keeps the container off the network
    in both modes (SageMaker still moves the job's inputs and outputs)."""

    role_arn: str
    kms_key: str
    network_isolation: bool = True
    security_group_ids: tuple[str, ...] = ()
    subnets: tuple[str, ...] = ()

    def vpc_config(self) -> dict[str, Any] | None:
        if not self.subnets:
            return None
        return {"SecurityGroupIds": list(self.security_group_ids), "Subnets": list(self.subnets)}


@dataclass(frozen=True)
class Cache:
    expire_after: str

    def config(self) -> dict[str, Any]:
        return {"CacheConfig": {"Enabled": True, "ExpireAfter": self.expire_after}}


@dataclass(frozen=True)
class Step:
    name: str

    def arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_request(self) -> dict[str, Any]:
        raise NotImplementedError

    def nested(self) -> list[Step]:
        """Steps that live inside this one (condition branches)."""
        return []


@dataclass(frozen=True)
class ProcessingInput:
    name: str
    s3_uri: Value
    local_path: str
    # ManifestFile: s3_uri is a manifest ([{"prefix": ...}, relative keys...]) naming exactly the objects to copy.
    data_type: str = "S3Prefix"

    def request(self) -> dict[str, Any]:
        return {
            "InputName": self.name,
            "S3Input": {
                "S3Uri": self.s3_uri,
                "LocalPath": self.local_path,
                "S3DataType": self.data_type,
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
                "S3CompressionType": "None",
            },
        }


@dataclass(frozen=True)
class ProcessingOutput:
    name: str
    s3_uri: Value
    local_path: str

    def request(self) -> dict[str, Any]:
        return {
            "OutputName": self.name,
            "S3Output": {"S3Uri": self.s3_uri, "LocalPath": self.local_path, "S3UploadMode": "EndOfJob"},
        }


@dataclass(frozen=True)
class PropertyFile:
    """A JSON file a processing step writes into one of its outputs, readable with JsonGet."""

    name: str
    output_name: str
    path: str

    def request(self) -> dict[str, Any]:
        return {"PropertyFileName": self.name, "OutputName": self.output_name, "FilePath": self.path}


@dataclass(frozen=True)
class ProcessingStep(Step):
    image: Value
    entrypoint: tuple[str, ...]
    container_arguments: tuple[Value, ...]
    inputs: tuple[ProcessingInput, ...]
    outputs: tuple[ProcessingOutput, ...]
    compute: Compute
    security: JobSecurity
    property_files: tuple[PropertyFile, ...] = ()
    cache: Cache | None = None

    def arguments(self) -> dict[str, Any]:
        security = self.security
        network: dict[str, Any] = {
            "EnableInterContainerTrafficEncryption": True,
            "EnableNetworkIsolation": security.network_isolation,
        }
        if security.vpc_config() is not None:
            network["VpcConfig"] = security.vpc_config()
        return render(
            {
                "ProcessingResources": {
                    "ClusterConfig": {
                        "InstanceType": self.compute.instance_type,
                        "InstanceCount": self.compute.instance_count,
                        "VolumeSizeInGB": self.compute.volume_gb,
                        "VolumeKmsKeyId": security.kms_key,
                    }
                },
                "AppSpecification": {
                    "ImageUri": self.image,
                    "ContainerArguments": list(self.container_arguments),
                    "ContainerEntrypoint": list(self.entrypoint),
                },
                "RoleArn": security.role_arn,
                "ProcessingInputs": [i.request() for i in self.inputs],
                "ProcessingOutputConfig": {
                    "Outputs": [o.request() for o in self.outputs],
                    "KmsKeyId": security.kms_key,
                },
                "NetworkConfig": network,
                "StoppingCondition": {"MaxRuntimeInSeconds": self.compute.max_runtime_seconds},
            }
        )

    def to_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"Name": self.name, "Type": "Processing", "Arguments": self.arguments()}
        if self.cache is not None:
            request.update(self.cache.config())
        if self.property_files:
            request["PropertyFiles"] = [p.request() for p in self.property_files]
        return request

    def output_uri(self, output_name: str) -> StepProperty:
        if output_name not in {o.name for o in self.outputs}:
            raise KeyError(f"{self.name} has no output {output_name!r}")
        return StepProperty(self.name, f"ProcessingOutputConfig.Outputs['{output_name}'].S3Output.S3Uri")


@dataclass(frozen=True)
class Channel:
    name: str
    s3_uri: Value
    distribution: str = "FullyReplicated"  # ShardedByS3Key: each instance gets its share of the objects

    def request(self) -> dict[str, Any]:
        return {
            "ChannelName": self.name,
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": self.s3_uri,
                    "S3DataDistributionType": self.distribution,
                }
            },
        }


@dataclass(frozen=True)
class TrainingStep(Step):
    """A training job run by the image's SageMaker training toolkit: `hyperparameters` name the program
    (sagemaker_program) and the code archive (sagemaker_submit_directory); the rest reach it as
    `--name value` arguments."""

    image: Value
    hyperparameters: dict[str, Value]
    channels: tuple[Channel, ...]
    output_path: Value
    compute: Compute
    security: JobSecurity
    compression: str = "GZIP"  # NONE: /opt/ml/model is uploaded as it is (no model.tar.gz around it)
    spot_max_wait_seconds: int | None = None
    checkpoint_uri: Value | None = None
    cache: Cache | None = None

    def arguments(self) -> dict[str, Any]:
        security = self.security
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": self.compute.max_runtime_seconds}
        spot = self.spot_max_wait_seconds is not None
        if spot:
            stopping["MaxWaitTimeInSeconds"] = self.spot_max_wait_seconds
        return render(
            {
                "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": self.image},
                "HyperParameters": dict(self.hyperparameters),
                "InputDataConfig": [c.request() for c in self.channels],
                "ResourceConfig": {
                    "InstanceType": self.compute.instance_type,
                    "InstanceCount": self.compute.instance_count,
                    "VolumeSizeInGB": self.compute.volume_gb,
                    "VolumeKmsKeyId": security.kms_key,
                },
                "VpcConfig": security.vpc_config(),
                "RoleArn": security.role_arn,
                "StoppingCondition": stopping,
                "OutputDataConfig": {
                    "S3OutputPath": self.output_path,
                    "KmsKeyId": security.kms_key,
                    "CompressionType": self.compression,
                },
                "CheckpointConfig": None if self.checkpoint_uri is None else {
                    "S3Uri": self.checkpoint_uri,
                    "LocalPath": "/opt/ml/checkpoints",
                },
                "EnableManagedSpotTraining": spot,
                "EnableInterContainerTrafficEncryption": True,
                "EnableNetworkIsolation": security.network_isolation,
            }
        )

    def to_request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"Name": self.name, "Type": "Training", "Arguments": self.arguments()}
        if self.cache is not None:
            request.update(self.cache.config())
        return request

    @property
    def model_artifacts(self) -> StepProperty:
        return StepProperty(self.name, "ModelArtifacts.S3ModelArtifacts")


@dataclass(frozen=True)
class LambdaStep(Step):
    function_arn: str
    inputs: dict[str, Value]
    outputs: tuple[str, ...]  # String output parameters the function returns

    def arguments(self) -> dict[str, Any]:
        return render(dict(self.inputs))

    def to_request(self) -> dict[str, Any]:
        return {
            "Name": self.name,
            "Type": "Lambda",
            "Arguments": self.arguments(),
            "FunctionArn": self.function_arn,
            "OutputParameters": [{"OutputName": o, "OutputType": "String"} for o in self.outputs],
        }

    def output(self, name: str) -> StepProperty:
        if name not in self.outputs:
            raise KeyError(f"{self.name} has no output {name!r}")
        return StepProperty(self.name, f"OutputParameters['{name}']")


@dataclass(frozen=True)
class Condition:
    kind: str  # GreaterThanOrEqualTo, Equals, ...
    left: Value
    right: Value

    def request(self) -> dict[str, Any]:
        return render({"Type": self.kind, "LeftValue": self.left, "RightValue": self.right})


@dataclass(frozen=True)
class ConditionStep(Step):
    """All `conditions` hold: `if_steps` run, otherwise `else_steps` (steps that live only in a branch)."""

    conditions: tuple[Condition, ...]
    if_steps: tuple[Step, ...] = ()
    else_steps: tuple[Step, ...] = ()

    def arguments(self) -> dict[str, Any]:
        return {
            "Conditions": [c.request() for c in self.conditions],
            "IfSteps": [s.to_request() for s in self.if_steps],
            "ElseSteps": [s.to_request() for s in self.else_steps],
        }

    def to_request(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "Condition", "Arguments": self.arguments()}

    def nested(self) -> list[Step]:
        return [*self.if_steps, *self.else_steps]


@dataclass(frozen=True)
class FailStep(Step):
    message: Value

    def arguments(self) -> dict[str, Any]:
        return {"ErrorMessage": render(self.message)}

    def to_request(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "Fail", "Arguments": self.arguments()}


@dataclass(frozen=True)
class MetricsFile:
    s3_uri: Value
    content_type: str = "application/json"

    def request(self) -> dict[str, Any]:
        return {"ContentType": self.content_type, "S3Uri": self.s3_uri}


@dataclass(frozen=True)
class RegisterModelStep(Step):
    """A versioned model package in `group` (CreateModelPackage)."""

    group: str
    description: str
    image: str
    model_data_url: Value
    environment: dict[str, str]
    content_types: tuple[str, ...]
    response_types: tuple[str, ...]
    instance_types: tuple[str, ...]
    approval: str
    model_quality: MetricsFile
    data_statistics: MetricsFile
    data_constraints: MetricsFile
    metadata: dict[str, Value] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        return render(
            {
                "ModelPackageGroupName": self.group,
                "ModelPackageDescription": self.description,
                "ModelMetrics": {
                    "ModelQuality": {"Statistics": self.model_quality.request()},
                    # The SDK writes the optional report groups as empty structures.
                    "Bias": {},
                    "Explainability": {},
                },
                "DriftCheckBaselines": {
                    "ModelDataQuality": {
                        "Statistics": self.data_statistics.request(),
                        "Constraints": self.data_constraints.request(),
                    }
                },
                "CustomerMetadataProperties": dict(self.metadata),
                "InferenceSpecification": {
                    "Containers": [
                        {
                            "Image": self.image,
                            "Environment": dict(self.environment),
                            "ModelDataUrl": self.model_data_url,
                        }
                    ],
                    "SupportedContentTypes": list(self.content_types),
                    "SupportedResponseMIMETypes": list(self.response_types),
                    "SupportedRealtimeInferenceInstanceTypes": list(self.instance_types),
                    "SupportedTransformInstanceTypes": list(self.instance_types),
                },
                "ModelApprovalStatus": self.approval,
                "SkipModelValidation": "None",
            }
        )

    def to_request(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "RegisterModel", "Arguments": self.arguments()}


def walk(steps: tuple[Step, ...] | list[Step]) -> list[Step]:
    """Every step, condition branches included, in definition order."""
    out: list[Step] = []
    for step in steps:
        out.append(step)
        out += walk(step.nested())
    return out


@dataclass(frozen=True)
class CreateModelStep(Step):
    """A SageMaker model from a registered model package (CreateModel with the package as its container),
    as the SDK's ModelStep writes it; its ModelName is what a TransformStep runs."""

    model_package: Value
    security: JobSecurity

    def arguments(self) -> dict[str, Any]:
        security = self.security
        return render(
            {
                "ExecutionRoleArn": security.role_arn,
                "Containers": [{"ModelPackageName": self.model_package}],
                "VpcConfig": security.vpc_config(),
                "EnableNetworkIsolation": security.network_isolation,
            }
        )

    def to_request(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "Model", "Arguments": self.arguments()}

    @property
    def model_name(self) -> StepProperty:
        return StepProperty(self.name, "ModelName")


@dataclass(frozen=True)
class TransformStep(Step):
    """A Batch Transform job (CreateTransformJob without the job name): `input_uri`'s objects split into
    lines, lines sent in mini-batches of at most `max_payload_mb`, answers assembled line by line into
    `<output_uri>/<input object>.out`; with several instances SageMaker spreads the objects over them.
    Network isolation and VPC come from the model."""

    model_name: Value
    input_uri: Value
    output_uri: Value
    content_type: str
    accept: str
    instance_type: Value
    instance_count: int
    max_payload_mb: int
    kms_key: str
    environment: dict[str, str] = field(default_factory=dict)

    def arguments(self) -> dict[str, Any]:
        return render(
            {
                "ModelName": self.model_name,
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self.input_uri}},
                    "ContentType": self.content_type,
                    "CompressionType": "None",
                    "SplitType": "Line",
                },
                "TransformOutput": {
                    "S3OutputPath": self.output_uri,
                    "Accept": self.accept,
                    "AssembleWith": "Line",
                    "KmsKeyId": self.kms_key,
                },
                "TransformResources": {
                    "InstanceType": self.instance_type,
                    "InstanceCount": self.instance_count,
                    "VolumeKmsKeyId": self.kms_key,
                },
                "BatchStrategy": "MultiRecord",
                "MaxPayloadInMB": self.max_payload_mb,
                "Environment": dict(self.environment) or None,
            }
        )

    def to_request(self) -> dict[str, Any]:
        return {"Name": self.name, "Type": "Transform", "Arguments": self.arguments()}

    @property
    def output_path(self) -> StepProperty:
        return StepProperty(self.name, "TransformOutput.S3OutputPath")
