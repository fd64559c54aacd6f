"""Test helpers: SageMaker data capture files (the data capture layout) written from feature records."""

from __future__ import annotations

import base64
import io
import json
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd


def _side(mode: str, body: str, content_type: str, encoding: str) -> dict[str, Any]:
    data = base64.b64encode(body.encode()).decode() if encoding == "BASE64" else body
    return {"observedContentType": content_type, "mode": mode, "data": data, "encoding": encoding}


def capture_event(
    records: list[dict[str, Any]],
    probabilities: Sequence[float],
    when: datetime,
    encoding: str = "JSON",
    inference_id: str | None = None,
) -> dict[str, Any]:
    """One capture line: a request of `records` and its response, as SageMaker writes it."""
    if encoding == "CSV":
        buffer = io.StringIO()
        pd.DataFrame(records).to_csv(buffer, index=False)
        request = _side("INPUT", buffer.getvalue(), "text/csv", "CSV")
        response = _side(
            "OUTPUT", "".join(f"{p},{'Yes' if p >= 0.5 else 'No'}\n" for p in probabilities), "text/csv", "CSV"
        )
    else:
        request = _side("INPUT", json.dumps({"instances": records}), "application/json", encoding)
        body = {"predictions": [{"probability": p, "label": "Yes" if p >= 0.5 else "No"} for p in probabilities]}
        response = _side("OUTPUT", json.dumps(body), "application/json", encoding)
    meta: dict[str, Any] = {
        "eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{when.isoformat()}|{inference_id}")),
        "inferenceTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    if inference_id is not None:
        meta["inferenceId"] = inference_id
    return {
        "captureData": {"endpointInput": request, "endpointOutput": response},
        "eventMetadata": meta,
        "eventVersion": "0",
    }


def hour_file(
    root: Path,
    when: datetime,
    name: str = "capture.jsonl",
    endpoint: str = "telecom-ml-dev-churn",
    variant: str = "primary",
) -> Path:
    path = root / endpoint / variant / when.strftime("%Y/%m/%d/%H") / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def write_capture(
    root: Path,
    frame: pd.DataFrame,
    probabilities: Sequence[float],
    start: datetime,
    step: timedelta = timedelta(seconds=1),
    encoding: str = "JSON",
    inference_ids: Sequence[str] | None = None,
    batch: int = 1,
    name: str = "capture.jsonl",
) -> list[Path]:
    """Write `frame` as requests of `batch` records, one every `step` from `start`, into hour folders."""
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    lines: dict[Path, list[str]] = {}
    for k, i in enumerate(range(0, len(rows), batch)):
        when = start + k * step
        ident = inference_ids[i] if inference_ids is not None else None
        event = capture_event(rows[i : i + batch], list(probabilities[i : i + batch]), when, encoding, ident)
        lines.setdefault(hour_file(root, when, name), []).append(json.dumps(event))
    for path, content in lines.items():
        with path.open("a") as f:
            f.write("\n".join(content) + "\n")
    return sorted(lines)
