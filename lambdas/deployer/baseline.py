"""The "current baseline" of the endpoint: the deployed package's drift baselines, copied.

After a deployment succeeds (before it is reported done), the package's DriftCheckBaselines.ModelDataQuality
statistics and constraints (registered by the pipeline's RegisterModel step) are copied to
`s3://<ML artefact bucket>/monitoring/<endpoint>/current-baseline/{statistics.json,constraints.json}`, where
both monitoring engines read them. A package without baselines still deploys; the stale baseline of the
previous model is removed so monitoring never compares the new model with the old one ("no baseline yet"
is a clean no-op for the drift job), and the caller reports a notice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import PackageNotDeployableError
from .settings import BaselineSettings

FILES = {"Statistics": "statistics.json", "Constraints": "constraints.json"}
_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9.-]{3,63})/(?P<key>.+)$")


@dataclass(frozen=True)
class BaselineRefresh:
    copied: dict[str, str]  # file name -> source s3:// URI; empty when the package has no baseline
    notice: str | None = None


def baseline_sources(description: dict[str, Any]) -> dict[str, str] | None:
    """{file name: s3:// URI} of the package's data-quality baseline, None when it registered none (or half)."""
    quality = (description.get("DriftCheckBaselines") or {}).get("ModelDataQuality") or {}
    uris = {name: (quality.get(field) or {}).get("S3Uri") for field, name in FILES.items()}
    if not all(isinstance(uri, str) and uri for uri in uris.values()):
        return None
    return {name: str(uri) for name, uri in uris.items()}


def _readable(arn: str, uri: str, settings: BaselineSettings) -> tuple[str, str]:
    match = _S3_URI.fullmatch(uri)
    if match is None:
        raise PackageNotDeployableError(arn, f"baseline URI '{uri}' is not an s3:// object URI")
    bucket, key = match.group("bucket"), match.group("key")
    if bucket != settings.bucket or not key.startswith(settings.source_prefixes):
        raise PackageNotDeployableError(
            arn,
            f"baseline '{uri}' is outside s3://{settings.bucket}/{{{','.join(settings.source_prefixes)}}}, "
            "the only places the deployer may read baselines from",
        )
    return bucket, key


def refresh(s3: Any, description: dict[str, Any], settings: BaselineSettings) -> BaselineRefresh:
    """Replace the current baseline with the package's; remove it when the package has none."""
    arn = str(description.get("ModelPackageArn", "(unknown package)"))
    sources = baseline_sources(description)
    if sources is None:
        clear(s3, settings)
        return BaselineRefresh(
            copied={},
            notice=(
                f"{arn} has no data-quality baseline (DriftCheckBaselines.ModelDataQuality): monitoring has "
                f"no baseline until a package with one is deployed; "
                f"s3://{settings.bucket}/{settings.current_prefix} was emptied"
            ),
        )
    try:
        located = {name: _readable(arn, uri, settings) for name, uri in sources.items()}
    except PackageNotDeployableError:
        clear(s3, settings)  # never leave the previous model's baseline in place for the new one
        raise
    for name, (bucket, key) in located.items():
        s3.copy_object(
            CopySource={"Bucket": bucket, "Key": key},
            Bucket=settings.bucket,
            Key=settings.current_prefix + name,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=settings.kms_key_arn,
            ContentType="application/json",
            MetadataDirective="REPLACE",
            Metadata={"model-package-arn": arn, "source": sources[name]},
        )
    return BaselineRefresh(copied=sources)


def clear(s3: Any, settings: BaselineSettings) -> None:
    s3.delete_objects(
        Bucket=settings.bucket,
        Delete={"Objects": [{"Key": settings.current_prefix + name} for name in FILES.values()], "Quiet": True},
    )
