"""Promotion, not retraining: the package approved in the source environment (staging) becomes a package of
this environment's group (prod), byte for byte, and its approval starts this environment's deployer.

Why a copy and not the shared package itself: the source and target environments live in different accounts
*and regions* (staging eu-west-1, prod eu-central-1 as shipped), and SageMaker serves a model only from an S3
bucket and an ECR image in the endpoint's own region. So the promotion reads the source package through the
source group's resource policy, copies every file the package names (model data, metrics, drift baselines, the
baseline predictions its `baseline_predictions_uri` metadata names) into
this environment's artefact bucket under `promoted/<source account>/<source group>/<version>/<source key>`, maps
each image to the image this environment is configured to serve with the same repository and tag (the same
container, from this region's registry), and registers the copy in this environment's group with
`promoted_from` metadata, recorded in `promotion.json` beside the copied files. It is then approved, which
starts the deployer (canary, rollback) as any approval.

Refused, before anything is copied, with a message naming the field: an ARN from another account, region or
group than configured; a source package that is not Approved (or not Completed); a file outside the source's
pipeline prefix or in two buckets; an image this environment is not configured to serve. Promoting the same
package again finds the earlier copy (the record; CreateModelPackage's ClientToken also derives from the source
ARN) and only re-approves it if needed.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .baseline import PREDICTIONS_PROPERTY
from .errors import InvalidEventError, PackageNotDeployableError
from .package import APPROVED
from .promotion_settings import PromotionSettings

PROMOTED_FROM = "promoted_from"
_PACKAGE_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9-]+)/(?P<version>[1-9][0-9]*)$"
)
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9.-]{3,63})/(?P<key>.+)$")
_IMAGE = re.compile(r"^(?P<registry>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<name>[^@]+)$")
# The parts of a package description that carry over to the copy (CreateModelPackage request fields).
CARRIED = ("InferenceSpecification", "AdditionalInferenceSpecifications", "ModelMetrics", "DriftCheckBaselines")


@dataclass(frozen=True)
class Promotion:
    source_arn: str
    target_arn: str
    status: str  # "created" or "existing"
    copied: dict[str, str] = field(default_factory=dict)  # source URI -> target URI

    def output(self) -> dict[str, Any]:
        return {
            "source_model_package_arn": self.source_arn,
            "model_package_arn": self.target_arn,
            "status": self.status,
            "copied": self.copied,
        }


def parse_request(event: object, settings: PromotionSettings) -> str:
    """The source package ARN of a promotion request, checked against the configured source."""
    if not isinstance(event, dict):
        raise InvalidEventError("(request)", f"expected a JSON object, got {type(event).__name__}")
    arn = event.get("source_model_package_arn")
    if not isinstance(arn, str) or not arn:
        raise InvalidEventError("source_model_package_arn", "required: the ARN of the approved source package")
    match = _PACKAGE_ARN.fullmatch(arn)
    if match is None:
        raise InvalidEventError("source_model_package_arn", f"'{arn}' is not a versioned model package ARN")
    expected = {
        "account": settings.source_account,
        "region": settings.source_region,
        "group": settings.source_group.lower(),
    }
    for part, value in expected.items():
        if match.group(part).lower() != value:
            raise InvalidEventError(
                "source_model_package_arn",
                f"names {part} '{match.group(part)}'; promotion accepts only {part} '{value}'",
            )
    return arn


def check_source(description: dict[str, Any], arn: str, settings: PromotionSettings) -> None:
    if description.get("ModelPackageGroupName", "").lower() != settings.source_group.lower():
        raise PackageNotDeployableError(arn, f"is not in the source group {settings.source_group}")
    if description.get("ModelApprovalStatus") != APPROVED:
        raise PackageNotDeployableError(
            arn,
            f"is {description.get('ModelApprovalStatus')} in {settings.source_group}: only an Approved package "
            "is promoted",
        )
    if description.get("ModelPackageStatus") not in (None, "Completed"):
        raise PackageNotDeployableError(arn, f"is {description.get('ModelPackageStatus')}, not Completed")


def _walk(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, s3 URI) of every file a package names: containers' ModelDataUrl and metrics' S3Uri."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("ModelDataUrl", "S3Uri") and isinstance(item, str):
                yield f"{path}.{key}", item
            else:
                yield from _walk(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]")


# Facts of the source's copies (its region's image digest, its objects' ETags): SageMaker records them anew.
_SOURCE_ONLY = frozenset({"ImageDigest", "ModelDataETag"})


def _rewrite(value: Any, change: Callable[[str, str], str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _rewrite(v, change, k) for k, v in value.items() if k not in _SOURCE_ONLY}
    if isinstance(value, list):
        return [_rewrite(v, change, key) for v in value]
    return change(key, value) if isinstance(value, str) else value


@dataclass(frozen=True)
class _Plan:
    files: dict[str, tuple[str, str, str]]  # source URI -> (source bucket, source key, target key)
    images: dict[str, str]  # source image -> target image


def plan(description: dict[str, Any], arn: str, settings: PromotionSettings) -> _Plan:
    """What the copy needs, validated before anything is written."""
    carried = {name: description[name] for name in CARRIED if description.get(name)}
    if not carried.get("InferenceSpecification"):
        raise PackageNotDeployableError(arn, "has no InferenceSpecification")
    if "ModelDataSource" in str(carried):
        raise PackageNotDeployableError(arn, "names its model data with ModelDataSource, which promotion does not copy")
    match = _PACKAGE_ARN.fullmatch(arn)
    assert match is not None  # parse_request checked it
    base = _base(settings, match)
    files: dict[str, tuple[str, str, str]] = {}
    buckets = set()
    for path, uri in (*_walk(carried), *_metadata_files(description)):
        located = _S3_URI.fullmatch(uri)
        if located is None:
            raise PackageNotDeployableError(arn, f"{path.lstrip('.')} '{uri}' is not an s3:// object URI")
        key = located.group("key")
        if not key.startswith(settings.source_prefix):
            raise PackageNotDeployableError(
                arn, f"{path.lstrip('.')} '{uri}' is outside the source pipeline's prefix '{settings.source_prefix}'"
            )
        buckets.add(located.group("bucket"))
        files[uri] = (located.group("bucket"), key, base + key)
    if len(buckets) > 1:
        raise PackageNotDeployableError(arn, f"names files in several buckets {sorted(buckets)}; expected one")
    images = {}
    for path, container in _containers(carried):
        images[container["Image"]] = _target_image(arn, path, container["Image"], settings)
    return _Plan(files=files, images=images)


def _metadata_files(description: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """The file a package names in its metadata: the baseline predictions (lambdas/deployer/baseline.py)."""
    uri = (description.get("CustomerMetadataProperties") or {}).get(PREDICTIONS_PROPERTY)
    if isinstance(uri, str) and uri:
        yield f".CustomerMetadataProperties.{PREDICTIONS_PROPERTY}", uri


def _containers(carried: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    specs = [("InferenceSpecification", carried["InferenceSpecification"])]
    specs += [
        (f"AdditionalInferenceSpecifications[{i}]", s)
        for i, s in enumerate(carried.get("AdditionalInferenceSpecifications") or [])
    ]
    for name, spec in specs:
        for index, container in enumerate(spec.get("Containers") or []):
            yield f"{name}.Containers[{index}]", container


def _target_image(arn: str, path: str, image: str, settings: PromotionSettings) -> str:
    match = _IMAGE.fullmatch(image or "")
    if match is None:
        raise PackageNotDeployableError(arn, f"{path}.Image '{image}' is not an ECR image URI")
    for candidate in settings.serving_images:
        target = _IMAGE.fullmatch(candidate)
        if target is not None and target.group("name") == match.group("name"):
            return candidate
    raise PackageNotDeployableError(
        arn,
        f"{path}.Image '{match.group('name')}' is not an image this environment serves "
        f"({sorted(settings.serving_images)}): align ml.pipeline.images of both environments",
    )


def target_request(
    description: dict[str, Any], arn: str, settings: PromotionSettings, plan_: _Plan, bucket: str
) -> dict[str, Any]:
    """CreateModelPackage for the copy: same specification, this environment's files, images and region."""

    def change(key: str, value: str) -> str:
        if key in ("ModelDataUrl", "S3Uri") and value in plan_.files:
            return f"s3://{bucket}/{plan_.files[value][2]}"
        if key == "Image" and value in plan_.images:
            return plan_.images[value]
        if key == "SAGEMAKER_REGION" and value == settings.source_region:
            return settings.region
        return value

    carried = {name: _rewrite(description[name], change) for name in CARRIED if description.get(name)}
    metadata = {**(description.get("CustomerMetadataProperties") or {}), PROMOTED_FROM: arn}
    if metadata.get(PREDICTIONS_PROPERTY) in plan_.files:
        metadata[PREDICTIONS_PROPERTY] = change("S3Uri", metadata[PREDICTIONS_PROPERTY])
    text = description.get("ModelPackageDescription") or ""
    return {
        "ModelPackageGroupName": settings.target_group,
        "ModelPackageDescription": f"Promoted from {arn}. {text}"[:1024],
        **carried,
        "CustomerMetadataProperties": metadata,
        "ModelApprovalStatus": "PendingManualApproval",
        "ClientToken": str(uuid.uuid5(uuid.NAMESPACE_URL, arn)),
    }


def record_key(settings: PromotionSettings, source_arn: str) -> str:
    """Where the promotion of `source_arn` is recorded, beside the files it copied."""
    match = _PACKAGE_ARN.fullmatch(source_arn)
    assert match is not None  # parse_request checked it
    return f"{_base(settings, match)}promotion.json"


def _base(settings: PromotionSettings, match: re.Match[str]) -> str:
    return f"{settings.prefix}{settings.source_account}/{match.group('group').lower()}/{match.group('version')}/"


def find_existing(s3: Any, settings: PromotionSettings, source_arn: str) -> str | None:
    """The copy of `source_arn` an earlier promotion registered (its record), or None."""
    try:
        body = s3.get_object(Bucket=settings.bucket, Key=record_key(settings, source_arn))["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    return str(json.loads(body)["model_package_arn"])


def promote(
    source: Any, sagemaker: Any, s3: Any, source_s3: Any, settings: PromotionSettings, event: object
) -> Promotion:
    """source: SageMaker client of the source region; sagemaker/s3: this environment's; source_s3: the source
    region's S3 client (reads). Returns the promoted package, approved."""
    arn = parse_request(event, settings)
    description = source.describe_model_package(ModelPackageName=arn)
    check_source(description, arn, settings)
    existing = find_existing(s3, settings, arn)
    if existing is not None:
        _approve(sagemaker, existing, arn)
        return Promotion(source_arn=arn, target_arn=existing, status="existing")
    plan_ = plan(description, arn, settings)
    copied = {}
    for uri, (bucket, key, target_key) in sorted(plan_.files.items()):
        head = source_s3.head_object(Bucket=bucket, Key=key)
        extra = {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": settings.kms_key_arn,
            "MetadataDirective": "REPLACE",
            "ContentType": head.get("ContentType", "binary/octet-stream"),
            "Metadata": {"source": uri, "source-etag": head["ETag"].strip('"'), "promoted-from": arn},
        }
        # Managed copy: multipart above the threshold, so a multi-GB artefact copies too.
        s3.copy(
            CopySource={"Bucket": bucket, "Key": key},
            Bucket=settings.bucket,
            Key=target_key,
            SourceClient=source_s3,
            ExtraArgs=extra,
        )
        copied[uri] = f"s3://{settings.bucket}/{target_key}"
    request = target_request(description, arn, settings, plan_, settings.bucket)
    created = str(sagemaker.create_model_package(**request)["ModelPackageArn"])
    record = {"source_model_package_arn": arn, "model_package_arn": created, "copied": copied}
    s3.put_object(
        Bucket=settings.bucket,
        Key=record_key(settings, arn),
        Body=json.dumps(record, indent=2).encode(),
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
        SSEKMSKeyId=settings.kms_key_arn,
    )
    _approve(sagemaker, created, arn)
    return Promotion(source_arn=arn, target_arn=created, status="created", copied=copied)


def _approve(sagemaker: Any, target: str, source: str) -> None:
    if sagemaker.describe_model_package(ModelPackageName=target).get("ModelApprovalStatus") == APPROVED:
        return
    sagemaker.update_model_package(
        ModelPackageArn=target,
        ModelApprovalStatus=APPROVED,
        ApprovalDescription=f"Promoted: {source} is Approved in its environment",
    )
