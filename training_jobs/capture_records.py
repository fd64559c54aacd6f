"""SageMaker data capture files of a time window -> one row per scored record.

Layout (SageMaker's own; the local twin writes the same):
    <capture dir>/[<endpoint>/<variant>/]<yyyy>/<mm>/<dd>/<hh>/<anything>.jsonl
one JSON object per line: captureData.endpointInput / endpointOutput, each with observedContentType,
mode, data and encoding (JSON, BASE64 or CSV), and eventMetadata (eventId, optional inferenceId,
inferenceTime). Files under an hour folder that cannot hold the window's events (before the start's
hour, after the end's) are not opened; every event is then kept only when its inferenceTime lies in
[start, end). A line whose inferenceTime is plainly outside the window is counted without being parsed,
so it is not validated either. Files with no hour folders in their path are read and filtered by
inferenceTime alone.

Request bodies are the handler's formats (serving/inference.py): JSON {"instances": [...]}, a list
or one object; text/csv with a header row. Responses: JSON {"predictions": [{"probability": p, ...}]}
or CSV "probability,label" lines, one per record, in request order.

A malformed line (not JSON, missing fields, unknown encoding, undecodable body, predictions that do
not match the records, a bad inferenceTime) never stops the read: it becomes a `Problem` with
file:line, and its records are left out. A request that carries an InferenceId but more than one
record is a problem too (the InferenceId contract is one request, one record); its records are kept
without an InferenceId.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import re
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

INFERENCE_ID = "_inference_id"
INFERENCE_TIME = "_inference_time"
PROBABILITY = "_probability"
RESERVED_COLUMNS = (INFERENCE_ID, INFERENCE_TIME, PROBABILITY)
ENCODINGS = ("JSON", "BASE64", "CSV")
_HOUR_PARTS = re.compile(r"^\d+$")
# eventMetadata's time as it appears unescaped in a line (a body's text has its quotes escaped)
_INFERENCE_TIME = re.compile(r'"inferenceTime"\s*:\s*"([^"]*)"')


@dataclass(frozen=True)
class Problem:
    """One capture line that could not be used, and why."""

    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


@dataclass
class CaptureReadReport:
    """What a read saw: files and lines opened, events in and out of the window, records, problems."""

    files: int = 0
    lines: int = 0
    events: int = 0
    outside_window: int = 0
    records: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def malformed(self) -> int:
        return len(self.problems)

    @property
    def malformed_share(self) -> float:
        return self.malformed / self.lines if self.lines else 0.0

    def as_dict(self, max_problems: int = 100) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "events_in_window": self.events,
            "events_outside_window": self.outside_window,
            "records": self.records,
            "malformed": self.malformed,
            "malformed_share": self.malformed_share,
            "problems": [str(p) for p in self.problems[:max_problems]],
            "problems_not_listed": max(0, self.malformed - max_problems),
        }


class _BadEvent(ValueError):
    """A capture event that cannot be used; the message says why."""


def as_utc(moment: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or an ISO 8601 string."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def capture_files(capture_dir: str | Path, start: datetime, end: datetime) -> list[Path]:
    """The .jsonl files whose hour folder can hold events of [start, end), sorted by path."""
    root = Path(capture_dir)
    # The folder is the capture hour, at or just after inferenceTime: an earlier folder cannot hold the
    # window's events, the folder of the end's hour can (captured after the end, inferred before it).
    first = start.replace(minute=0, second=0, microsecond=0)
    chosen = []
    for path in sorted(root.rglob("*.jsonl")):
        hour = _hour_folder(path.relative_to(root))
        if hour is None or first <= hour <= end:
            chosen.append(path)
    return chosen


def _hour_folder(relative: Path) -> datetime | None:
    parts = relative.parts[:-1]
    if len(parts) < 4 or not all(_HOUR_PARTS.match(p) for p in parts[-4:]):
        return None
    try:
        y, m, d, h = (int(p) for p in parts[-4:])
        return datetime(y, m, d, h, tzinfo=UTC)
    except ValueError:
        return None


def read_captures(
    capture_dir: str | Path, start: datetime | str, end: datetime | str, workers: int = 1
) -> tuple[pd.DataFrame, CaptureReadReport]:
    """Records captured in [start, end): request fields as sent, plus `_inference_id`,
    `_inference_time` (UTC) and `_probability` (the served probability), and a report of the read.
    `workers` > 1 reads files in that many processes (same result, in file order).

    Raises FileNotFoundError when `capture_dir` does not exist (an empty directory is no data).
    """
    start_utc, end_utc = as_utc(start), as_utc(end)
    root = Path(capture_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: capture directory not found")
    files = capture_files(root, start_utc, end_utc)
    jobs = [(path, start_utc, end_utc) for path in files]
    if workers > 1 and len(files) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(_read_one, jobs))
    else:
        outcomes = [_read_one(job) for job in jobs]
    report = CaptureReadReport(files=len(files))
    for _, part in outcomes:
        report.lines += part.lines
        report.events += part.events
        report.outside_window += part.outside_window
        report.problems.extend(part.problems)
    parts = [frame for frame, _ in outcomes if len(frame)]
    frame = pd.concat(parts, ignore_index=True) if parts else _empty_frame()
    report.records = len(frame)
    report.problems.sort(key=lambda p: (p.file, p.line))
    return frame, report


def _read_one(job: tuple[Path, datetime, datetime]) -> tuple[pd.DataFrame, CaptureReadReport]:
    report = CaptureReadReport()
    return _read_file(*job, report), report


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            INFERENCE_ID: pd.Series(dtype=object),
            INFERENCE_TIME: pd.Series(dtype="datetime64[ns, UTC]"),
            PROBABILITY: pd.Series(dtype=np.float64),
        }
    )


def _parse_lines(
    path: Path, report: CaptureReadReport, start: datetime, end: datetime
) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        report.problems.append(Problem(str(path), 0, f"cannot read file ({exc})"))
        return []
    numbered = [(i, line) for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    report.lines += len(numbered)
    # A line whose inferenceTime is plainly outside the window is counted without being parsed (the
    # edge hours' files hold many); a line without a readable time is parsed and judged in full.
    found = [m.group(1) if (m := _INFERENCE_TIME.search(line)) else None for _, line in numbered]
    stamps = pd.to_datetime(pd.Series(found, dtype=object), utc=True, errors="coerce", format="ISO8601")
    outside = ((stamps < pd.Timestamp(start)) | (stamps >= pd.Timestamp(end))).to_numpy()
    if outside.any():
        report.outside_window += int(outside.sum())
        numbered = [line for line, out in zip(numbered, outside, strict=True) if not out]
    try:  # one C-level parse for the whole file; line by line only to locate a bad line
        parsed = json.loads("[" + ",".join(line for _, line in numbered) + "]")
        if len(parsed) == len(numbered) and all(isinstance(o, dict) for o in parsed):
            return [(i, o) for (i, _), o in zip(numbered, parsed, strict=True)]
    except json.JSONDecodeError:
        pass
    events = []
    for i, line in numbered:
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            report.problems.append(Problem(str(path), i, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(obj, dict):
            report.problems.append(Problem(str(path), i, f"expected a JSON object, got {type(obj).__name__}"))
            continue
        events.append((i, obj))
    return events


def _read_file(path: Path, start: datetime, end: datetime, report: CaptureReadReport) -> pd.DataFrame:
    events = _parse_lines(path, report, start, end)
    if not events:
        return _empty_frame()
    times = pd.to_datetime(
        pd.Series([_meta(o).get("inferenceTime") for _, o in events], dtype=object),
        utc=True,
        errors="coerce",
        format="ISO8601",
    )
    bad_time = times.isna().to_numpy()
    in_window = ((times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))).to_numpy()
    for k in np.flatnonzero(bad_time):
        line, obj = events[k]
        report.problems.append(
            Problem(
                str(path),
                line,
                f"eventMetadata.inferenceTime {_meta(obj).get('inferenceTime')!r} is not an ISO 8601 time",
            )
        )
    report.outside_window += int((~in_window & ~bad_time).sum())
    chosen = np.flatnonzero(in_window)
    decoded = _decode_events([events[k][1] for k in chosen])
    records: list[dict[str, Any]] = []
    ids: list[Any] = []
    probs: list[float] = []
    counts = np.zeros(len(chosen), dtype=np.int64)
    for j, (k, outcome) in enumerate(zip(chosen, decoded, strict=True)):
        line = events[k][0]
        if isinstance(outcome, _BadEvent):
            report.problems.append(Problem(str(path), line, str(outcome)))
            continue
        rows, probabilities, inference_id = outcome
        report.events += 1
        if inference_id is not None and len(rows) != 1:
            report.problems.append(
                Problem(
                    str(path),
                    line,
                    f"InferenceId {inference_id!r} on a request of "
                    f"{len(rows)} records (one request = one record); kept without it",
                )
            )
            inference_id = None
        records.extend(rows)
        probs.extend(probabilities)
        ids.append(inference_id)
        counts[j] = len(rows)
    if not records:
        return _empty_frame()
    frame = pd.DataFrame.from_records(records)
    used = counts > 0
    frame[INFERENCE_ID] = np.repeat(np.asarray(ids, dtype=object), counts[used])
    frame[INFERENCE_TIME] = pd.DatetimeIndex(times.array[chosen[used]]).repeat(counts[used])
    frame[PROBABILITY] = np.asarray(probs, dtype=np.float64)
    return frame


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("eventMetadata")
    return meta if isinstance(meta, dict) else {}


Decoded = tuple[list[dict[str, Any]], list[float], str | None]


def decode_event(obj: dict[str, Any]) -> Decoded:
    """(request records, served probabilities, InferenceId) of one capture event; _BadEvent if unusable."""
    outcome = _decode_events([obj])[0]
    if isinstance(outcome, _BadEvent):
        raise outcome
    return outcome


def _decode_events(objs: list[dict[str, Any]]) -> list[Decoded | _BadEvent]:
    """Decode many events; the JSON bodies of all of them are parsed in two C-level calls."""
    sides: list[tuple[tuple[str, str], tuple[str, str], str | None] | _BadEvent] = []
    for obj in objs:
        try:
            capture = obj.get("captureData")
            if not isinstance(capture, dict):
                raise _BadEvent("captureData missing or not an object")
            inference_id = _meta(obj).get("inferenceId")
            if inference_id is not None and (not isinstance(inference_id, str) or not inference_id.strip()):
                raise _BadEvent(f"eventMetadata.inferenceId {inference_id!r} is not a non-empty string")
            sides.append((_body(capture, "endpointInput"), _body(capture, "endpointOutput"), inference_id))
        except _BadEvent as exc:
            sides.append(exc)
    good = [s for s in sides if not isinstance(s, _BadEvent)]
    requests = _loads_many([s[0][1] for s in good if s[0][0] == "json"], "request")
    responses = _loads_many([s[1][1] for s in good if s[1][0] == "json"], "response")
    out: list[Decoded | _BadEvent] = []
    for side in sides:
        if isinstance(side, _BadEvent):
            out.append(side)
            continue
        (in_kind, in_text), (out_kind, out_text), inference_id = side
        try:
            rows = _csv_records(in_text) if in_kind == "csv" else _json_records(next(requests))
            probabilities = _csv_probabilities(out_text) if out_kind == "csv" else _json_probabilities(next(responses))
            if len(probabilities) != len(rows):
                raise _BadEvent(f"{len(rows)} request records but {len(probabilities)} predictions")
            out.append((rows, probabilities, inference_id))
        except _BadEvent as exc:
            out.append(exc)
    return out


def _loads_many(texts: list[str], what: str) -> Iterator[Any]:
    """Parsed bodies in order (a _BadEvent in place of a body that is not JSON)."""
    try:
        parsed = json.loads("[" + ",".join(texts) + "]")
        if len(parsed) == len(texts):
            return iter(parsed)
    except json.JSONDecodeError:
        pass
    # a body that is not one JSON value: parse one by one to know which
    values: list[Any] = []
    for text in texts:
        try:
            values.append(json.loads(text))
        except json.JSONDecodeError as exc:
            values.append(_BadEvent(f"{what} body is not valid JSON ({exc.msg})"))
    return iter(values)


def _body(capture: dict[str, Any], part: str) -> tuple[str, str]:
    """(content kind 'json' | 'csv', body text) of captureData.<part>."""
    side = capture.get(part)
    if not isinstance(side, dict):
        raise _BadEvent(f"captureData.{part} missing or not an object")
    data, encoding = side.get("data"), side.get("encoding")
    content_type = str(side.get("observedContentType") or "")
    if not isinstance(data, str):
        raise _BadEvent(f"captureData.{part}.data missing or not a string")
    if encoding not in ENCODINGS:
        raise _BadEvent(f"captureData.{part}.encoding {encoding!r} is not one of {list(ENCODINGS)}")
    if encoding == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _BadEvent(f"captureData.{part}.data is not base64 of UTF-8 text ({exc})") from None
    if encoding == "CSV" or content_type.startswith("text/csv"):
        return "csv", data
    if content_type and not content_type.startswith("application/json"):
        raise _BadEvent(f"captureData.{part}.observedContentType {content_type!r} is not application/json or text/csv")
    return "json", data


def _raise_if_bad(payload: Any) -> Any:
    if isinstance(payload, _BadEvent):
        raise payload
    return payload


def _csv_records(text: str) -> list[dict[str, Any]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        raise _BadEvent("CSV request body has no records")
    if any(None in r or None in r.values() for r in rows):
        raise _BadEvent("CSV request body: a row's field count differs from the header's")
    return rows


def _json_records(payload: Any) -> list[dict[str, Any]]:
    payload = _raise_if_bad(payload)
    if isinstance(payload, dict) and "instances" in payload:
        payload = payload["instances"]
    records = payload if isinstance(payload, list) else [payload]
    if not records or not all(isinstance(r, dict) for r in records):
        raise _BadEvent('JSON request body is not an object, a list of objects or {"instances": [objects]}')
    return records


def _csv_probabilities(text: str) -> list[float]:
    try:
        return [float(row[0]) for row in csv.reader(io.StringIO(text)) if row]
    except (ValueError, IndexError):
        raise _BadEvent("CSV response body: first field of a line is not a probability") from None


def _json_probabilities(payload: Any) -> list[float]:
    payload = _raise_if_bad(payload)
    predictions = payload.get("predictions") if isinstance(payload, dict) else None
    if not isinstance(predictions, list):
        raise _BadEvent('JSON response body has no "predictions" list')
    try:
        return [float(p["probability"]) for p in predictions]
    except (TypeError, KeyError, ValueError):
        raise _BadEvent('JSON response body: a prediction has no numeric "probability"') from None
