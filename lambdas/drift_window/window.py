"""What one drift run may read: the current baseline, the capture files of its window, the labels.

The window is [WindowEnd - WindowHours, WindowEnd), as the drift job computes it. Capture files live in
SageMaker's hour folders `<capture prefix><yyyy>/<mm>/<dd>/<hh>/*.jsonl`; the folder is the hour the file was
written, at or after the events it holds, so the hours read are those from the start's hour up to and
including the end's hour (late writes of events before the end), exactly as training_jobs.capture_records
chooses folders. Only those hour prefixes are listed, and their `.jsonl` objects go into a manifest in
SageMaker's ManifestFile format: `[{"prefix": "s3://<bucket>/<capture prefix>"}, "<relative key>", ...]`.
The job still keeps only the events whose inferenceTime lies in the window.

SageMaker refuses to start a Processing job whose S3 input matches no object, so the pipeline runs the job
only when a baseline and at least one capture file exist, and passes labels only when some exist.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_WINDOW_HOURS = 168  # = monitoring.window_hours' upper bound (infra/config.py)
BASELINE_FILES = ("statistics.json", "constraints.json")
CAPTURE_SUFFIX = ".jsonl"
LABEL_SUFFIXES = (".csv", ".parquet")  # what training_jobs.model_quality.read_labels reads
NO_BASELINE = "no current baseline yet: no deployment has refreshed it"
NO_CAPTURES = "no captured data in the window"
NO_MANIFEST = "none"
FIELDS = ("Bucket", "CapturePrefix", "BaselinePrefix", "WindowEnd", "WindowHours", "ManifestKey", "LabelsUri")
OPTIONAL = ("LabelsUri",)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_HOURS = re.compile(r"[0-9]{1,3}")


class DriftWindowError(ValueError):
    """The request cannot be used; the message names the field and what is wrong with it."""


@dataclass(frozen=True)
class Request:
    bucket: str
    capture_prefix: str
    baseline_prefix: str
    window_start: datetime
    window_end: datetime
    manifest_key: str
    labels_bucket: str | None = None
    labels_prefix: str | None = None

    @classmethod
    def parse(cls, event: Any) -> Request:
        if not isinstance(event, dict):
            raise DriftWindowError(f"event must be an object, got {type(event).__name__}")
        unknown = sorted(str(k) for k in event if k not in FIELDS)
        if unknown:
            raise DriftWindowError(f"unknown field(s) {unknown}; expected {list(FIELDS)}")
        for name in FIELDS:
            if name not in OPTIONAL and name not in event:
                raise DriftWindowError(f"field {name}: missing")
        bucket = _bucket("Bucket", event["Bucket"])
        capture = _prefix("CapturePrefix", event["CapturePrefix"])
        baseline = _prefix("BaselinePrefix", event["BaselinePrefix"])
        end = _moment("WindowEnd", event["WindowEnd"])
        hours = _hours("WindowHours", event["WindowHours"])
        manifest = _manifest_key("ManifestKey", event["ManifestKey"])
        if manifest.startswith(capture):
            raise DriftWindowError(f"field ManifestKey: {manifest!r} lies under CapturePrefix {capture!r}")
        labels_bucket = labels_prefix = None
        if "LabelsUri" in event:
            labels_bucket, labels_prefix = _s3_uri("LabelsUri", event["LabelsUri"])
        return cls(bucket, capture, baseline, end - timedelta(hours=hours), end, manifest, labels_bucket, labels_prefix)

    @property
    def hours(self) -> list[datetime]:
        """The hour folders that can hold the window's events: the start's hour up to the end's hour."""
        hour = self.window_start.replace(minute=0, second=0, microsecond=0)
        last = self.window_end.replace(minute=0, second=0, microsecond=0)
        out = []
        while hour <= last:
            out.append(hour)
            hour += timedelta(hours=1)
        return out

    @property
    def manifest_uri(self) -> str:
        return f"s3://{self.bucket}/{self.manifest_key}"


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise DriftWindowError(f"field {field}: expected a non-empty string, got {value!r}")
    if any(ord(c) < 32 for c in value):
        raise DriftWindowError(f"field {field}: control characters in {value!r}")
    return value


def _bucket(field: str, value: Any) -> str:
    text = _string(field, value)
    if not _BUCKET.fullmatch(text) or ".." in text:
        raise DriftWindowError(f"field {field}: {text!r} is not an S3 bucket name")
    return text


def _prefix(field: str, value: Any) -> str:
    text = _string(field, value)
    if text.startswith(("/", "s3://")) or not text.endswith("/") or "//" in text:
        raise DriftWindowError(
            f"field {field}: expected a key prefix like 'a/b/' (no leading '/', ending '/'), got {text!r}"
        )
    return text


def _manifest_key(field: str, value: Any) -> str:
    text = _string(field, value)
    if text.startswith(("/", "s3://")) or not text.endswith(".json") or "//" in text:
        raise DriftWindowError(f"field {field}: expected an object key ending '.json' (no leading '/'), got {text!r}")
    return text


def _s3_uri(field: str, value: Any) -> tuple[str, str]:
    text = _string(field, value)
    if not text.startswith("s3://"):
        raise DriftWindowError(f"field {field}: expected s3://<bucket>/<prefix>/, got {text!r}")
    bucket, _, prefix = text.removeprefix("s3://").partition("/")
    _bucket(field, bucket)
    return bucket, _prefix(field, prefix)


def _moment(field: str, value: Any) -> datetime:
    text = _string(field, value)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DriftWindowError(f"field {field}: {text!r} is not an ISO 8601 time (e.g. 2026-11-27T10:00:00Z)") from None
    if moment.tzinfo is None:  # the drift job reads a time without offset as UTC; so does this
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _hours(field: str, value: Any) -> int:
    # A pipeline parameter arrives as a string; a direct invocation may send a number.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise DriftWindowError(f"field {field}: expected whole hours (1-{MAX_WINDOW_HOURS}), got {value!r}")
    if isinstance(value, str) and not _HOURS.fullmatch(value):
        raise DriftWindowError(f"field {field}: expected whole hours (1-{MAX_WINDOW_HOURS}), got {value!r}")
    hours = int(value)
    if not 1 <= hours <= MAX_WINDOW_HOURS:
        raise DriftWindowError(f"field {field}: {hours} is outside 1-{MAX_WINDOW_HOURS}")
    return hours


# --------------------------------------------------------------------------------------- S3 reads
def _keys(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            yield str(item["Key"])


def has_baseline(s3: Any, request: Request) -> bool:
    """Both baseline files are there (the drift job needs both)."""
    names = {key.removeprefix(request.baseline_prefix) for key in _keys(s3, request.bucket, request.baseline_prefix)}
    return all(name in names for name in BASELINE_FILES)


def capture_keys(s3: Any, request: Request) -> list[str]:
    """The window's capture files, relative to the capture prefix, in hour order."""
    out = []
    for hour in request.hours:
        folder = f"{request.capture_prefix}{hour:%Y/%m/%d/%H}/"
        out += sorted(
            k.removeprefix(request.capture_prefix)
            for k in _keys(s3, request.bucket, folder)
            if k.endswith(CAPTURE_SUFFIX)
        )
    return out


def has_labels(s3: Any, request: Request) -> bool:
    if request.labels_bucket is None or request.labels_prefix is None:
        return False
    return any(k.endswith(LABEL_SUFFIXES) for k in _keys(s3, request.labels_bucket, request.labels_prefix))


def manifest(request: Request, relative_keys: list[str]) -> list[Any]:
    """SageMaker's ManifestFile document: the prefix, then each key relative to it."""
    return [{"prefix": f"s3://{request.bucket}/{request.capture_prefix}"}, *relative_keys]


def guard(s3: Any, request: Request) -> dict[str, str]:
    """The step's output parameters (strings: the pipeline's condition compares them with "true")."""
    baseline = has_baseline(s3, request)
    keys = capture_keys(s3, request)
    labels = has_labels(s3, request)
    window = f"[{request.window_start:%Y-%m-%dT%H:%M:%SZ}, {request.window_end:%Y-%m-%dT%H:%M:%SZ})"
    if not baseline:
        reason = NO_BASELINE
    elif not keys:
        reason = f"{NO_CAPTURES} {window}"
    else:
        reason = f"{len(keys)} capture file(s) in the window {window}; {_labels_note(request, labels)}"
    uri = NO_MANIFEST
    if baseline and keys:
        body = json.dumps(manifest(request, keys), separators=(",", ":")).encode()
        s3.put_object(Bucket=request.bucket, Key=request.manifest_key, Body=body, ContentType="application/json")
        uri = request.manifest_uri
    return {
        "has_baseline": _flag(baseline),
        "has_captures": _flag(bool(keys)),
        "capture_objects": str(len(keys)),
        "has_labels": _flag(labels),
        "manifest_uri": uri,
        "reason": reason,
    }


def _labels_note(request: Request, labels: bool) -> str:
    if request.labels_bucket is None:
        return "model quality off"
    return "labels found" if labels else "no labels yet: model quality skipped"


def _flag(value: bool) -> str:
    return "true" if value else "false"
