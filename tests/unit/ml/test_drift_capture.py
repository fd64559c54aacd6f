"""Reading SageMaker data capture files: encodings, window boundaries, malformed lines with their location."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from tests.unit.ml.drift_capture import capture_event, hour_file, write_capture
from training_jobs.capture_records import INFERENCE_ID, INFERENCE_TIME, PROBABILITY, read_captures

START = datetime(2026, 11, 27, 10, tzinfo=UTC)
END = START + timedelta(hours=1)
RECORDS = pd.DataFrame(
    {
        "contract": ["Month-to-month", "Two year", "One year", "Month-to-month", "Two year", "One year"],
        "tenure": [1.0, 60.0, 24.0, 3.0, 70.0, 12.0],
        "monthly_charges": [70.35, 20.05, 55.5, 99.95, 25.0, 60.1],
    }
)
PROBS = [0.81, 0.03, 0.22, 0.64, 0.02, 0.31]


@pytest.mark.parametrize("encoding", ["JSON", "BASE64", "CSV"])
@pytest.mark.parametrize("batch", [1, 3])
def test_every_encoding_gives_the_same_records(tmp_path, encoding, batch) -> None:
    write_capture(tmp_path, RECORDS, PROBS, START, step=timedelta(minutes=1), encoding=encoding, batch=batch)
    frame, report = read_captures(tmp_path, START, END)
    assert report.problems == [] and report.records == 6 and report.events == 6 // batch
    assert frame[PROBABILITY].tolist() == PROBS
    assert frame["contract"].tolist() == RECORDS["contract"].tolist()
    # CSV bodies are text: values stay as sent, the detector types them.
    assert pd.to_numeric(frame["monthly_charges"]).tolist() == RECORDS["monthly_charges"].tolist()
    assert frame[INFERENCE_TIME].iloc[0] == pd.Timestamp(START)


def test_window_is_start_inclusive_end_exclusive_and_far_hours_are_not_opened(tmp_path) -> None:
    write_capture(tmp_path, RECORDS.head(1), PROBS[:1], START - timedelta(microseconds=1), name="before.jsonl")
    write_capture(tmp_path, RECORDS.iloc[1:2], PROBS[1:2], START, name="at-start.jsonl")
    write_capture(tmp_path, RECORDS.iloc[2:3], PROBS[2:3], END - timedelta(microseconds=1), name="last.jsonl")
    write_capture(tmp_path, RECORDS.iloc[3:4], PROBS[3:4], END, name="at-end.jsonl")
    write_capture(tmp_path, RECORDS.iloc[4:5], PROBS[4:5], START - timedelta(days=2), name="old.jsonl")
    frame, report = read_captures(tmp_path, START, END)
    assert frame[PROBABILITY].tolist() == [PROBS[1], PROBS[2]]
    # folders before the start's hour cannot hold the window's events and are not opened (09h, the old
    # day); the end's hour folder is read (a late write) and its event filtered out by time
    assert report.files == 3 and report.outside_window == 1 and report.problems == []


def test_late_written_event_in_next_hour_folder_is_read(tmp_path) -> None:
    event = capture_event(RECORDS.head(1).to_dict("records"), PROBS[:1], END - timedelta(seconds=1))
    hour_file(tmp_path, END, "late.jsonl").write_text(json.dumps(event) + "\n")
    frame, _ = read_captures(tmp_path, START, END)
    assert len(frame) == 1


def test_malformed_lines_are_reported_with_file_and_line(tmp_path) -> None:
    (path,) = write_capture(tmp_path, RECORDS.head(2), PROBS[:2], START)
    good = capture_event(RECORDS.head(1).to_dict("records"), [0.5], START)
    bad_b64 = json.loads(json.dumps(good))
    bad_b64["captureData"]["endpointInput"].update(encoding="BASE64", data="%%%")
    too_few = capture_event(RECORDS.head(2).to_dict("records"), [0.5, 0.6], START)
    too_few["captureData"]["endpointOutput"]["data"] = json.dumps({"predictions": [{"probability": 0.5}]})
    bad_time = json.loads(json.dumps(good))
    bad_time["eventMetadata"]["inferenceTime"] = "27/11/2026"
    odd_encoding = json.loads(json.dumps(good))
    odd_encoding["captureData"]["endpointOutput"]["encoding"] = "XML"
    lines = [
        "{truncated",
        json.dumps(bad_b64),
        json.dumps(too_few),
        json.dumps(bad_time),
        "",
        json.dumps(odd_encoding),
        "[1, 2]",
        json.dumps(good),
    ]
    with path.open("a") as f:
        f.write("\n".join(lines) + "\n")
    frame, report = read_captures(tmp_path, START, END)
    assert len(frame) == 3  # two good lines written first, the last good line
    problems = [str(p) for p in report.problems]
    assert problems[0].startswith(f"{path}:3: not valid JSON")
    assert problems[1:] == [
        f"{path}:4: captureData.endpointInput.data is not base64 of UTF-8 text (Only base64 data is allowed)",
        f"{path}:5: 2 request records but 1 predictions",
        f"{path}:6: eventMetadata.inferenceTime '27/11/2026' is not an ISO 8601 time",
        f"{path}:8: captureData.endpointOutput.encoding 'XML' is not one of ['JSON', 'BASE64', 'CSV']",
        f"{path}:9: expected a JSON object, got list",
    ]
    assert report.lines == 9 and report.malformed == 6  # the blank line is not a line read
    assert report.malformed_share == pytest.approx(6 / 9)
    assert report.as_dict()["problems"] == problems


def test_inference_id_kept_per_record_and_refused_on_multi_record_requests(tmp_path) -> None:
    ids = [f"sub-{i}:2026-11-27" for i in range(6)]
    write_capture(tmp_path, RECORDS, PROBS, START, inference_ids=ids)
    write_capture(
        tmp_path, RECORDS.head(2), PROBS[:2], START, batch=2, inference_ids=["sub-x:2026-11-27"] * 2, name="batch.jsonl"
    )
    frame, report = read_captures(tmp_path, START, END)
    assert frame[INFERENCE_ID].dropna().tolist() == ids
    assert frame[INFERENCE_ID].isna().sum() == 2
    assert len(report.problems) == 1 and "one request = one record" in report.problems[0].reason


def test_json_body_shapes_single_object_and_list(tmp_path) -> None:
    one = capture_event([{"tenure": 5}], [0.4], START)
    one["captureData"]["endpointInput"]["data"] = json.dumps({"tenure": 5})
    many = capture_event([{"tenure": 6}, {"tenure": 7}], [0.1, 0.2], START)
    many["captureData"]["endpointInput"]["data"] = json.dumps([{"tenure": 6}, {"tenure": 7}])
    raw = base64.b64encode(json.dumps({"instances": [{"tenure": 8}]}).encode()).decode()
    b64 = capture_event([{"tenure": 8}], [0.3], START, encoding="BASE64")
    b64["captureData"]["endpointInput"]["data"] = raw
    hour_file(tmp_path, START).write_text("\n".join(json.dumps(e) for e in (one, many, b64)) + "\n")
    frame, report = read_captures(tmp_path, START, END)
    assert report.problems == []
    assert frame["tenure"].tolist() == [5, 6, 7, 8] and np.allclose(frame[PROBABILITY], [0.4, 0.1, 0.2, 0.3])


def test_missing_directory_is_an_error_and_an_empty_one_is_no_data(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="capture directory not found"):
        read_captures(tmp_path / "absent", START, END)
    frame, report = read_captures(tmp_path, START, END)
    assert frame.empty and report.files == 0 and report.malformed_share == 0.0


def test_reading_in_worker_processes_gives_the_same_frame_and_report(tmp_path) -> None:
    big = pd.concat([RECORDS] * 20, ignore_index=True)
    write_capture(tmp_path, big, PROBS * 20, START, step=timedelta(minutes=1))  # spread over 2 hour folders
    with hour_file(tmp_path, START, "broken.jsonl").open("w") as f:
        f.write("oops\n")
    serial, serial_report = read_captures(tmp_path, START, START + timedelta(hours=3))
    parallel, parallel_report = read_captures(tmp_path, START, START + timedelta(hours=3), workers=2)
    assert serial_report.files == 3 and len(serial) == 120
    pd.testing.assert_frame_equal(serial, parallel)
    assert serial_report == parallel_report
