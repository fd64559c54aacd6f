"""What a registered model package says about serving it (DescribeModelPackage).

The contract with the pipeline is SageMaker's own: the package's InferenceSpecification (and any
AdditionalInferenceSpecifications, e.g. a CPU TorchScript beside the Neuron artefact) name each
container's Image and its model data (ModelDataUrl or ModelDataSource) and Environment. The
deployer serves the first specification whose SupportedRealtimeInferenceInstanceTypes includes the
configured instance type (a specification that lists none accepts any), primary first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import PackageNotDeployableError

APPROVED = "Approved"
CONTAINER_FIELDS = ("Image", "ModelDataUrl", "ModelDataSource", "Environment")


@dataclass(frozen=True)
class ServingSpec:
    """The containers of one inference specification of a package, ready for CreateModel."""

    package_arn: str
    group: str
    version: int
    approval: str
    specification: str  # "primary" or the additional specification's Name
    containers: tuple[dict[str, Any], ...]


def describe_package(sagemaker: Any, package_arn: str) -> dict[str, Any]:
    response: dict[str, Any] = sagemaker.describe_model_package(ModelPackageName=package_arn)
    return response


def serving_spec(description: dict[str, Any], instance_type: str) -> ServingSpec:
    """The specification to serve on `instance_type`; PackageNotDeployableError when none fits."""
    arn = description.get("ModelPackageArn", "(unknown package)")
    candidates: list[tuple[str, dict[str, Any]]] = []
    if description.get("InferenceSpecification"):
        candidates.append(("primary", description["InferenceSpecification"]))
    for extra in description.get("AdditionalInferenceSpecifications") or []:
        candidates.append((extra.get("Name", "(unnamed)"), extra))
    if not candidates:
        raise PackageNotDeployableError(arn, "has no InferenceSpecification")
    for name, spec in candidates:
        supported = spec.get("SupportedRealtimeInferenceInstanceTypes") or []
        if supported and instance_type not in supported:
            continue
        return ServingSpec(
            package_arn=arn,
            group=description.get("ModelPackageGroupName", ""),
            version=int(description.get("ModelPackageVersion", 0)),
            approval=description.get("ModelApprovalStatus", ""),
            specification=name,
            containers=tuple(_container(arn, c) for c in spec.get("Containers") or [_missing(arn)]),
        )
    offered = sorted({t for _, s in candidates for t in s.get("SupportedRealtimeInferenceInstanceTypes") or []})
    raise PackageNotDeployableError(arn, f"no inference specification supports {instance_type} (offered: {offered})")


def _missing(arn: str) -> dict[str, Any]:
    raise PackageNotDeployableError(arn, "inference specification has no containers")


def _container(arn: str, container: dict[str, Any]) -> dict[str, Any]:
    if not container.get("Image"):
        raise PackageNotDeployableError(arn, "a container has no Image")
    if not (container.get("ModelDataUrl") or container.get("ModelDataSource")):
        raise PackageNotDeployableError(arn, f"container {container['Image']} has no model data")
    return {field: container[field] for field in CONTAINER_FIELDS if container.get(field)}
