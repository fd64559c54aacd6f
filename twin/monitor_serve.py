"""A week of traffic through the local endpoint: captured in SageMaker's layout, as the cloud endpoint captures it.

The shipped package (extracted by the serve step) is loaded once by twin.endpoint_server and served on an
ephemeral loopback port; scripts/smoke_endpoint.py's client sends each subscriber as one application/json
request through boto3's sagemaker-runtime, with the InferenceId of dataset.inference_ids (`<subscriber
part>:<scoring date>`, at most 64 characters); the labels feed carries that exact `inference_id`, which the
drift job joins. Data capture (twin.capture, SageMaker's layout) writes every invocation under
<capture root>/<endpoint>/primary/yyyy/mm/dd/hh/.
The capture clock is simulated: a week's requests are stamped from 08:00 UTC of its scoring date, one
every REQUEST_SPACING, so each week falls in its own day and the drift job reads it by its window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from dataset import inference_ids
from scripts.smoke_endpoint import SmokeError, runtime_client, smoke
from training_jobs.errors import JobError
from twin.capture import CaptureWriter
from twin.endpoint_server import LocalEndpoint, LocalEndpointServer, local_endpoint

REQUEST_SPACING = timedelta(seconds=10)
FIRST_REQUEST = timedelta(hours=8)
CLIENT_TIMEOUT_S = 30.0


@dataclass
class SteppingClock:
    """The capture writer's clock: `start`, then one `step` later at each call."""

    start: datetime
    step: timedelta
    calls: int = 0

    def __call__(self) -> datetime:
        now = self.start + self.calls * self.step
        self.calls += 1
        return now


def inference_subscriber(subscriber_id: str) -> str:
    """The subscriber part of the InferenceId (dataset.inference_ids)."""
    return inference_ids.subscriber_part(subscriber_id)


def inference_id(subscriber_id: str, day: date) -> str:
    return inference_ids.make(subscriber_id, day)


def records_of(frame: pd.DataFrame, id_column: str, fields: list[str]) -> list[tuple[str, dict[str, Any]]]:
    """(InferenceId's subscriber part, raw feature fields) per row, missing values as JSON null (as the smoke
    client sends them; it adds `:<scoring date>`)."""
    out = []
    for rec in frame[[id_column, *fields]].to_dict(orient="records"):
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in rec.items()}
        out.append((inference_subscriber(str(clean.pop(id_column))), clean))
    return out


def day_window(day: date) -> tuple[str, str]:
    """[day 00:00Z, next day 00:00Z): the drift job's --window-start/--window-end for one scoring date."""
    start = datetime.combine(day, datetime.min.time(), UTC)
    return _iso(start), _iso(start + timedelta(days=1))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class WeeklyTraffic:
    """One local endpoint serving the package for every week (the model loads once)."""

    def __init__(self, model_dir: Path, work: Path, endpoint_name: str, capture_root: Path) -> None:
        self.endpoint: LocalEndpoint = local_endpoint(model_dir, work, endpoint_name)
        self.capture_root = capture_root
        self.server = LocalEndpointServer([self.endpoint])

    def __enter__(self) -> WeeklyTraffic:
        self.server.start()
        self.client = runtime_client(self.server.url, None, CLIENT_TIMEOUT_S)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def send_week(self, records: list[tuple[str, dict[str, Any]]], scoring_date: date) -> dict[str, Any]:
        """Every record as one request for `scoring_date`; the client's summary and what capture wrote."""
        start = datetime.combine(scoring_date, datetime.min.time(), UTC) + FIRST_REQUEST
        writer = CaptureWriter(
            self.capture_root, self.endpoint.name, self.endpoint.variant, clock=SteppingClock(start, REQUEST_SPACING)
        )
        self.endpoint.capture = writer
        try:
            summary = smoke(self.client, self.endpoint.name, self.server.url, records, scoring_date.isoformat())
        except SmokeError as exc:  # the endpoint could not be called at all
            raise JobError(f"local endpoint {self.server.url}: {exc}") from None
        finally:
            self.endpoint.capture = None
        window_start, window_end = day_window(scoring_date)
        return {
            "scoring_date": scoring_date.isoformat(),
            "sent": summary.sent,
            "answered": summary.answered,
            "failed": summary.failed,
            "errors": summary.errors,
            "captured": writer.captured,
            "probability_mean": summary.probability_mean,
            "latency_ms": summary.latency_ms,
            "window_start": window_start,
            "window_end": window_end,
            "capture_dir": str(self.capture_root / self.endpoint.name),
        }
