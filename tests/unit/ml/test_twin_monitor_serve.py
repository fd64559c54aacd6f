"""A week of traffic through the local endpoint: one request per subscriber, captured in SageMaker's layout with
the simulated week's clock and InferenceIds that fit SageMaker's 64 characters."""

from __future__ import annotations

import json
import tarfile
from datetime import date
from pathlib import Path

import pytest

from dataset.inference_ids import MAX_LENGTH as MAX_INFERENCE_ID
from training_jobs.capture_records import read_captures
from training_jobs.errors import JobError
from training_jobs.splits import read_split
from twin.monitor_serve import WeeklyTraffic, day_window, inference_id, records_of

DAY = date(2026, 1, 8)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, pt_package) -> Path:
    root = tmp_path_factory.mktemp("served-week")
    with tarfile.open(pt_package) as tar:
        tar.extractall(root, filter="data")
    return root


def test_a_week_is_captured_one_request_per_subscriber_on_its_day(tmp_path, model_dir, prep, schema) -> None:
    frame, _ = read_split(prep / "test", schema)
    frame = frame.head(20)
    records = records_of(frame, schema.id_column, schema.raw_feature_columns)
    with WeeklyTraffic(model_dir, tmp_path / "work", "telecom-ml-dev-churn", tmp_path / "capture") as endpoint:
        week = endpoint.send_week(records, DAY)
    assert week["sent"] == week["answered"] == week["captured"] == 20 and week["failed"] == 0
    files = sorted((tmp_path / "capture" / "telecom-ml-dev-churn" / "primary" / "2026" / "01" / "08").rglob("*.jsonl"))
    assert [f.parent.name for f in files] == ["08"]  # 08:00 UTC, one request every 10 s: all in one hour
    lines = [json.loads(line) for f in files for line in f.read_text().splitlines()]
    assert [line["eventMetadata"]["inferenceTime"][:19] for line in lines[:2]] == [
        "2026-01-08T08:00:00",
        "2026-01-08T08:00:10",
    ]
    ids = [line["eventMetadata"]["inferenceId"] for line in lines]
    assert ids == [inference_id(s, DAY) for s in frame[schema.id_column]]
    start, end = day_window(DAY)
    captured, report = read_captures(tmp_path / "capture", start, end)
    assert len(captured) == 20 and report.malformed == 0


def test_inference_ids_fit_sagemakers_limit() -> None:
    pseudonym = "a" * 64  # the lake's HMAC-SHA256 hex ids
    assert inference_id(pseudonym, DAY) == "a" * 53 + ":2026-01-08"
    assert len(inference_id(pseudonym, DAY)) == MAX_INFERENCE_ID
    assert inference_id("7590-VHVEG", DAY) == "7590-VHVEG:2026-01-08"  # short ids are sent whole


def test_an_endpoint_that_cannot_be_called_is_a_one_line_error(tmp_path, model_dir) -> None:
    traffic = WeeklyTraffic(model_dir, tmp_path / "work", "telecom-ml-dev-churn", tmp_path / "capture")
    with traffic:
        pass  # started and stopped: nothing listens on its port any more
    with pytest.raises(JobError, match=r"local endpoint http://127\.0\.0\.1:\d+: "):
        traffic.send_week([("s1", {})], DAY)
