"""The "current baseline" of the endpoint: the deployed package's drift baselines, copied.

After a deployment succeeds (before it is reported done), the package's DriftCheckBaselines.ModelDataQuality
statistics and constraints (registered by the pipeline's RegisterModel step) are copied to
`s3://<ML artefact bucket>/monitoring/<endpoint>/current-baseline/{statistics.json,constraints.json}`, where
both monitoring engines read them. A package without baselines still deploys; the stale baseline of the
previous model is removed so monitoring never compares the new model with the old one ("no baseline yet"
is a clean no-op for the drift job), and the caller reports a notice.

The baseline predictions (the evaluate step's `baseline_predictions.csv`: the shipped model's probabilities
on the test split, no subscriber ids), named by the package's CustomerMetadataProperties
`baseline_predictions_uri`, are copied beside them as `current-baseline/baseline_predictions.csv`: the drift
job's prediction drift compares served probabilities with them. A package without that property (one
registered before it existed) deploys with a notice and the previous model's predictions removed; the drift
job then skips prediction drift with a note.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import PackageNotDeployableError
from .settings import BaselineSettings

FILES = {"Statistics": "statistics.json", "Constraints": "constraints.json"}
PREDICTIONS_PROPERTY = "baseline_predictions_uri"  # CustomerMetadataProperties key (infra/pipeline/churn.py)
PREDICTIONS_FILE = "baseline_predictions.csv"  # training_jobs/evaluate.py writes it; the drift job reads it
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


def predictions_source(description: dict[str, Any]) -> str | None:
    """s3:// URI of the package's baseline predictions, None when it names none."""
    uri = (description.get("CustomerMetadataProperties") or {}).get(PREDICTIONS_PROPERTY)
    return uri if isinstance(uri, str) and uri else None


def _readable(
    arn: str, uri: str, settings: BaselineSettings, prefixes: tuple[str, ...] | None = None
) -> tuple[str, str]:
    prefixes = settings.source_prefixes if prefixes is None else prefixes
    match = _S3_URI.fullmatch(uri)
    if match is None:
        raise PackageNotDeployableError(arn, f"baseline URI '{uri}' is not an s3:// object URI")
    bucket, key = match.group("bucket"), match.group("key")
    if bucket != settings.bucket or not key.startswith(prefixes):
        raise PackageNotDeployableError(
            arn,
            f"baseline '{uri}' is outside s3://{settings.bucket}/{{{','.join(prefixes)}}}, "
            "the only places the deployer may read baselines from",
        )
    return bucket, key


def _readable_predictions(arn: str, uri: str, settings: BaselineSettings) -> tuple[str, str]:
    bucket, key = _readable(arn, uri, settings, settings.predictions_prefixes or settings.source_prefixes)
    if key.rsplit("/", 1)[-1] != PREDICTIONS_FILE:
        raise PackageNotDeployableError(
            arn, f"{PREDICTIONS_PROPERTY} '{uri}' does not name a {PREDICTIONS_FILE} (the evaluate step's file)"
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
    predictions = predictions_source(description)
    try:
        located = {name: _readable(arn, uri, settings) for name, uri in sources.items()}
        if predictions is not None:
            located[PREDICTIONS_FILE] = _readable_predictions(arn, predictions, settings)
            sources = {**sources, PREDICTIONS_FILE: predictions}
    except PackageNotDeployableError:
        clear(s3, settings)  # never leave the previous model's baseline in place for the new one
        raise
    if predictions is None:
        _delete(s3, settings, (PREDICTIONS_FILE,))
    for name, (bucket, key) in located.items():
        s3.copy_object(
            CopySource={"Bucket": bucket, "Key": key},
            Bucket=settings.bucket,
            Key=settings.current_prefix + name,
            ServerSideEncryption="aws:kms",
            SSEKMSKeyId=settings.kms_key_arn,
            ContentType="text/csv" if name == PREDICTIONS_FILE else "application/json",
            MetadataDirective="REPLACE",
            Metadata={"model-package-arn": arn, "source": sources[name]},
        )
    if predictions is None:
        return BaselineRefresh(
            copied=sources,
            notice=(
                f"{arn} names no baseline predictions (CustomerMetadataProperties.{PREDICTIONS_PROPERTY}): "
                "the drift job skips prediction drift until a package with them is deployed"
            ),
        )
    return BaselineRefresh(copied=sources)


def clear(s3: Any, settings: BaselineSettings) -> None:
    _delete(s3, settings, (*FILES.values(), PREDICTIONS_FILE))


def _delete(s3: Any, settings: BaselineSettings, names: tuple[str, ...]) -> None:
    s3.delete_objects(
        Bucket=settings.bucket,
        Delete={"Objects": [{"Key": settings.current_prefix + name} for name in names], "Quiet": True},
    )
