"""Data capture files in SageMaker's own layout, written by the local endpoint server.

    <root>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<MM-SS-mmm>-<8 hex>.jsonl

one JSON object per captured invocation (docs/serving.md "Data capture layout"):

    {"captureData": {"endpointInput": {"observedContentType": ..., "mode": "INPUT", "data": ..., "encoding": ...},
                     "endpointOutput": {"observedContentType": ..., "mode": "OUTPUT", "data": ..., "encoding": ...}},
     "eventMetadata": {"eventId": "<uuid>", "inferenceId": "<when the client sent one>",
                       "inferenceTime": "2026-11-27T10:00:00Z"},
     "eventVersion": "0"}

Encodings: an application/json body as text ("JSON"), a text/csv body as text ("CSV"), anything else
(application/jsonlines included) or a body that is not UTF-8 as base64 ("BASE64"). The hour folder and
inferenceTime are UTC. A writer starts one file per hour and appends to it, one flushed line per
invocation, so a reader sees every captured invocation as soon as the response has been sent.
Sampling: each invocation is captured with probability sampling_percent / 100.
"""

from __future__ import annotations

import base64
import json
import random
import re
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# SageMaker's EndpointName / VariantName pattern: also keeps both safe as folder names.
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
DEFAULT_VARIANT = "primary"


class CaptureConfigError(ValueError):
    """A capture setting is unusable; the message names it."""


def _media(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def encode_body(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(data, encoding) of a request or response body as SageMaker captures it."""
    media = _media(content_type)
    if media in ("application/json", "text/csv"):
        try:
            return body.decode("utf-8"), "JSON" if media == "application/json" else "CSV"
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), "BASE64"


def capture_record(
    request: bytes,
    request_type: str | None,
    response: bytes,
    response_type: str | None,
    inference_id: str | None,
    when: datetime,
) -> dict[str, Any]:
    """One capture line (as a dict) for an invocation answered at `when` (UTC)."""
    data_in, enc_in = encode_body(request, request_type)
    data_out, enc_out = encode_body(response, response_type)
    metadata: dict[str, str] = {"eventId": str(uuid.uuid4())}
    if inference_id:
        metadata["inferenceId"] = inference_id
    metadata["inferenceTime"] = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": request_type or "",
                "mode": "INPUT",
                "data": data_in,
                "encoding": enc_in,
            },
            "endpointOutput": {
                "observedContentType": response_type or "",
                "mode": "OUTPUT",
                "data": data_out,
                "encoding": enc_out,
            },
        },
        "eventMetadata": metadata,
        "eventVersion": "0",
    }


def check_name(value: str, what: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.match(value):
        raise CaptureConfigError(f"{what} {value!r}: must match {NAME_PATTERN.pattern} (SageMaker's name rule)")
    return value


class CaptureWriter:
    """Appends capture lines under `root` for one endpoint variant; safe to call from many threads."""

    def __init__(
        self,
        root: Path,
        endpoint: str,
        variant: str = DEFAULT_VARIANT,
        sampling_percent: float = 100.0,
        clock: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ):
        if (
            isinstance(sampling_percent, bool)
            or not isinstance(sampling_percent, int | float)
            or not (0 <= sampling_percent <= 100)
        ):
            raise CaptureConfigError(f"sampling percent {sampling_percent!r}: must be a number from 0 to 100")
        self.root = Path(root)
        self.endpoint = check_name(endpoint, "endpoint name")
        self.variant = check_name(variant, "variant name")
        self.sampling_percent = float(sampling_percent)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self._files: dict[str, Path] = {}  # hour folder -> this writer's file in it
        self.captured = 0
        self.skipped = 0

    def _sampled(self) -> bool:
        return self.sampling_percent >= 100 or self._rng.random() * 100 < self.sampling_percent

    def _file_for(self, when: datetime) -> Path:
        hour = when.strftime("%Y/%m/%d/%H")
        path = self._files.get(hour)
        if path is None:
            name = f"{when:%M-%S}-{when.microsecond // 1000:03d}-{uuid.uuid4().hex[:8]}.jsonl"
            path = self.root / self.endpoint / self.variant / hour / name
            path.parent.mkdir(parents=True, exist_ok=True)
            self._files = {hour: path}  # an hour closes when the next one starts
        return path

    def capture(
        self,
        request: bytes,
        request_type: str | None,
        response: bytes,
        response_type: str | None,
        inference_id: str | None = None,
    ) -> Path | None:
        """Write one invocation (or skip it by sampling); the file written, or None when skipped."""
        with self._lock:
            if not self._sampled():
                self.skipped += 1
                return None
            when = self._clock().astimezone(UTC)
            line = json.dumps(capture_record(request, request_type, response, response_type, inference_id, when))
            path = self._file_for(when)
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            self.captured += 1
            return path
