"""WindowGuard under moto: which hour folders a window reads, the no-op answers, the manifest, bad requests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lambdas.drift_window import handler, window
from lambdas.drift_window.window import DriftWindowError, Request

BUCKET = "ml-artifacts"
CAPTURE = "data-capture/telecom-ml-dev-churn/primary/"
BASELINE = "monitoring/telecom-ml-dev-churn/current-baseline/"
MANIFEST = "monitoring/telecom-ml-dev-churn/reports/manifests/exec-1.json"
LABELS_BUCKET = "curated"
EVENT: dict[str, Any] = {
    "Bucket": BUCKET,
    "CapturePrefix": CAPTURE,
    "BaselinePrefix": BASELINE,
    "WindowEnd": "2026-11-27T10:00:00Z",
    "WindowHours": "1",
    "ManifestKey": MANIFEST,
}


@dataclass
class Context:
    function_name: str = "drift-window"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:111111111111:function:drift-window"
    aws_request_id: str = "req-1"


@pytest.fixture
def s3(fake_aws_credentials: None) -> Iterator[Any]:
    handler._s3.cache_clear()
    with mock_aws():
        client = boto3.client("s3")
        for bucket in (BUCKET, LABELS_BUCKET):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client
    handler._s3.cache_clear()


def put(s3: Any, key: str, bucket: str = BUCKET) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=b"{}\n")


def with_baseline(s3: Any) -> None:
    for name in window.BASELINE_FILES:
        put(s3, BASELINE + name)


def invoke(**changes: Any) -> dict[str, str]:
    return handler.handler({**EVENT, **changes}, Context())


def manifest_of(s3: Any) -> Any:
    return json.loads(s3.get_object(Bucket=BUCKET, Key=MANIFEST)["Body"].read())


# ------------------------------------------------------------------------------------ window hours
def test_reads_the_start_hour_up_to_the_end_hour_for_late_writes(s3: Any) -> None:
    with_baseline(s3)
    for hour in ("08", "09", "10", "11"):
        put(s3, f"{CAPTURE}2026/11/27/{hour}/part-{hour}.jsonl")
    result = invoke()
    assert manifest_of(s3) == [
        {"prefix": f"s3://{BUCKET}/{CAPTURE}"},
        "2026/11/27/09/part-09.jsonl",
        "2026/11/27/10/part-10.jsonl",
    ]
    assert (result["has_captures"], result["capture_objects"]) == ("true", "2")


def test_a_window_across_a_month_and_year_boundary_lists_each_hour_folder(s3: Any) -> None:
    with_baseline(s3)
    inside = ["2025/12/31/22/a.jsonl", "2025/12/31/23/b.jsonl", "2026/01/01/00/c.jsonl", "2026/01/01/01/d.jsonl"]
    outside = ["2025/12/31/21/early.jsonl", "2026/01/01/02/late.jsonl", "2025/12/30/23/day-before.jsonl"]
    for key in inside + outside:
        put(s3, CAPTURE + key)
    result = invoke(WindowEnd="2026-01-01T01:00:00Z", WindowHours="3")
    assert manifest_of(s3)[1:] == inside
    assert result["capture_objects"] == "4"


def test_a_window_end_between_hours_and_with_an_offset_is_read_in_utc(s3: Any) -> None:
    with_baseline(s3)
    for key in ("2026/02/28/23/a.jsonl", "2026/03/01/00/b.jsonl", "2026/03/01/01/c.jsonl"):
        put(s3, CAPTURE + key)
    invoke(WindowEnd="2026-03-01T01:30:00+01:00", WindowHours=1)  # 00:30Z: hours 23 (start) and 00 (end)
    assert manifest_of(s3)[1:] == ["2026/02/28/23/a.jsonl", "2026/03/01/00/b.jsonl"]


def test_the_window_hours_match_the_drift_jobs_folder_choice(tmp_path: Any) -> None:
    """Exactly the hour folders training_jobs.capture_records opens for the same window."""
    from datetime import timedelta

    from training_jobs.capture_records import capture_files

    request = Request.parse({**EVENT, "WindowEnd": "2026-01-31T23:15:00Z", "WindowHours": "26"})
    hour = request.window_start - timedelta(hours=3)
    while hour < request.window_end + timedelta(hours=3):
        folder = tmp_path / f"{hour:%Y/%m/%d/%H}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "a.jsonl").write_text("")
        hour += timedelta(hours=1)
    opened = [
        p.parent.relative_to(tmp_path).as_posix()
        for p in capture_files(tmp_path, request.window_start, request.window_end)
    ]
    assert opened == [f"{h:%Y/%m/%d/%H}" for h in request.hours]
    assert len(request.hours) == 27


def test_only_capture_files_count(s3: Any) -> None:
    with_baseline(s3)
    put(s3, f"{CAPTURE}2026/11/27/09/notes.txt")
    put(s3, f"{CAPTURE}2026/11/27/09/a.jsonl")
    assert manifest_of_after(s3) == ["2026/11/27/09/a.jsonl"]


def manifest_of_after(s3: Any) -> Any:
    invoke()
    return manifest_of(s3)[1:]


# ---------------------------------------------------------------------------------------- no-ops
def test_no_baseline_yet_is_a_clean_answer_without_a_manifest(s3: Any) -> None:
    put(s3, f"{CAPTURE}2026/11/27/09/a.jsonl")
    put(s3, BASELINE + "statistics.json")  # half a baseline is none
    result = invoke()
    assert result["has_baseline"] == "false" and result["has_captures"] == "true"
    assert result["reason"] == window.NO_BASELINE
    assert result["manifest_uri"] == "none"
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="monitoring/telecom-ml-dev-churn/reports/")


def test_no_captures_in_the_window_is_a_clean_answer(s3: Any) -> None:
    with_baseline(s3)
    put(s3, f"{CAPTURE}2026/11/27/07/old.jsonl")
    result = invoke()
    assert (result["has_baseline"], result["has_captures"], result["capture_objects"]) == ("true", "false", "0")
    assert result["reason"] == "no captured data in the window [2026-11-27T09:00:00Z, 2026-11-27T10:00:00Z)"
    assert result["manifest_uri"] == "none"


def test_the_default_window_end_of_a_manual_start_is_a_no_op(s3: Any) -> None:
    with_baseline(s3)
    put(s3, f"{CAPTURE}2026/11/27/09/a.jsonl")
    assert invoke(WindowEnd="1970-01-01T01:00:00Z")["has_captures"] == "false"


# ---------------------------------------------------------------------------------------- labels
def test_labels_are_optional_and_found_only_as_csv_or_parquet(s3: Any) -> None:
    with_baseline(s3)
    put(s3, f"{CAPTURE}2026/11/27/09/a.jsonl")
    assert invoke()["has_labels"] == "false"
    labels = f"s3://{LABELS_BUCKET}/churn_labels/"
    put(s3, "churn_labels/_SUCCESS", LABELS_BUCKET)
    without = invoke(LabelsUri=labels)
    assert without["has_labels"] == "false" and "no labels yet" in without["reason"]
    put(s3, "churn_labels/label_date=2026-11-20/part-0.parquet", LABELS_BUCKET)
    assert invoke(LabelsUri=labels)["has_labels"] == "true"


def test_the_manifest_is_the_sdk_manifest_format_and_its_uri_is_returned(s3: Any) -> None:
    with_baseline(s3)
    keys = [f"2026/11/27/09/{n:03d}.jsonl" for n in range(3)]
    for key in keys:
        put(s3, CAPTURE + key)
    result = invoke()
    assert result["manifest_uri"] == f"s3://{BUCKET}/{MANIFEST}"
    document = manifest_of(s3)
    # SageMaker's ManifestFile: a JSON array, a {"prefix": s3 URI} object first, then keys relative to it.
    assert isinstance(document, list) and set(document[0]) == {"prefix"}
    assert [document[0]["prefix"] + k for k in document[1:]] == [f"s3://{BUCKET}/{CAPTURE}{k}" for k in keys]
    assert s3.get_object(Bucket=BUCKET, Key=MANIFEST)["ContentType"] == "application/json"


def test_many_capture_files_are_all_listed(s3: Any) -> None:
    with_baseline(s3)
    for n in range(1001):  # more than one list page (1,000 keys each)
        put(s3, f"{CAPTURE}2026/11/27/10/{n:05d}.jsonl")
    assert invoke()["capture_objects"] == "1001"


# ----------------------------------------------------------------------------------- bad requests
MALFORMED: list[tuple[Any, str]] = [
    (None, "event must be an object"),
    ([EVENT], "event must be an object"),
    ("Bucket", "event must be an object"),
    ({**EVENT, "Extra": "x"}, "unknown field(s) ['Extra']"),
    *[({k: v for k, v in EVENT.items() if k != name}, f"field {name}: missing") for name in EVENT],
    ({**EVENT, "Bucket": ""}, "field Bucket"),
    ({**EVENT, "Bucket": 7}, "field Bucket"),
    ({**EVENT, "Bucket": "Upper_Case"}, "field Bucket"),
    ({**EVENT, "Bucket": "a..b"}, "field Bucket"),
    ({**EVENT, "Bucket": "s3://ml-artifacts"}, "field Bucket"),
    ({**EVENT, "CapturePrefix": "/data-capture/x/"}, "field CapturePrefix"),
    ({**EVENT, "CapturePrefix": "data-capture/x"}, "field CapturePrefix"),
    ({**EVENT, "CapturePrefix": "s3://b/data-capture/"}, "field CapturePrefix"),
    ({**EVENT, "CapturePrefix": "data-capture//x/"}, "field CapturePrefix"),
    ({**EVENT, "CapturePrefix": ["data-capture/"]}, "field CapturePrefix"),
    ({**EVENT, "BaselinePrefix": None}, "field BaselinePrefix"),
    ({**EVENT, "BaselinePrefix": "monitoring/x\n/"}, "field BaselinePrefix: control characters"),
    ({**EVENT, "WindowEnd": "yesterday"}, "field WindowEnd"),
    ({**EVENT, "WindowEnd": "2026-13-01T00:00:00Z"}, "field WindowEnd"),
    ({**EVENT, "WindowEnd": 1764237600}, "field WindowEnd"),
    ({**EVENT, "WindowEnd": ""}, "field WindowEnd"),
    ({**EVENT, "WindowHours": "0"}, "field WindowHours: 0 is outside"),
    ({**EVENT, "WindowHours": "169"}, "field WindowHours: 169 is outside"),
    ({**EVENT, "WindowHours": "-1"}, "field WindowHours"),
    ({**EVENT, "WindowHours": "1.5"}, "field WindowHours"),
    ({**EVENT, "WindowHours": 1.0}, "field WindowHours"),
    ({**EVENT, "WindowHours": True}, "field WindowHours"),
    ({**EVENT, "WindowHours": "one"}, "field WindowHours"),
    ({**EVENT, "WindowHours": 0}, "field WindowHours"),
    ({**EVENT, "ManifestKey": "manifests/x.txt"}, "field ManifestKey"),
    ({**EVENT, "ManifestKey": "/monitoring/x.json"}, "field ManifestKey"),
    ({**EVENT, "ManifestKey": f"{CAPTURE}m.json"}, "field ManifestKey"),
    ({**EVENT, "ManifestKey": {"Key": MANIFEST}}, "field ManifestKey"),
    ({**EVENT, "LabelsUri": ""}, "field LabelsUri"),
    ({**EVENT, "LabelsUri": "curated/churn_labels/"}, "field LabelsUri"),
    ({**EVENT, "LabelsUri": "s3://curated/churn_labels"}, "field LabelsUri"),
    ({**EVENT, "LabelsUri": "s3://Bad_Bucket/churn_labels/"}, "field LabelsUri"),
    ({**EVENT, "LabelsUri": "s3://curated"}, "field LabelsUri"),
]


def test_there_are_at_least_thirty_malformed_requests() -> None:
    assert len(MALFORMED) >= 30


class Untouchable:
    """An S3 client that fails the test if a refused request reaches S3 at all."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a malformed request called S3 ({name})")


@pytest.mark.parametrize(("event", "message"), MALFORMED)
def test_malformed_requests_fail_with_a_message_naming_the_field(
    monkeypatch: pytest.MonkeyPatch, event: Any, message: str
) -> None:
    monkeypatch.setattr(handler, "_s3", Untouchable)
    with pytest.raises(DriftWindowError) as raised:
        handler.handler(event, Context())
    assert message in str(raised.value)
