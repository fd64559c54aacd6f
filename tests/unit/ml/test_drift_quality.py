"""Ground truth joined on InferenceId, model-quality metrics against scikit-learn, CloudWatch metrics under moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from sklearn.metrics import roc_auc_score

from tests.unit.ml.conftest import SCHEMA
from tests.unit.ml.drift_capture import write_capture
from training_jobs import baseline, drift, drift_metrics, model_quality
from training_jobs.capture_records import read_captures
from training_jobs.errors import JobError
from training_jobs.splits import read_split

START = datetime(2026, 11, 27, 10, tzinfo=UTC)
WINDOW = ["--window-start", "2026-11-27T10:00:00Z", "--window-end", "2026-11-27T12:00:00Z"]
ENDPOINT, DATA_SCHEDULE = "telecom-ml-dev-churn", "telecom-ml-dev-churn-data-quality"


@pytest.fixture(scope="module")
def scored(prep, schema, tmp_path_factory) -> tuple[Path, Path, pd.DataFrame]:
    """(baseline dir, capture dir, labels) for the test split: known scores, real churn outcomes."""
    root = tmp_path_factory.mktemp("quality")
    assert (
        baseline.main(
            ["--input-data", str(prep / "train"), "--schema", str(SCHEMA), "--output-dir", str(root / "baseline")]
        )
        == 0
    )
    frame, y = read_split(prep / "test", schema)
    # a simple, honest score: short tenure and month-to-month contracts churn
    logit = 0.5 - 0.04 * frame["tenure"].to_numpy() + 1.2 * (frame["contract"] == "Month-to-month").to_numpy()
    p = 1 / (1 + np.exp(-logit))
    ids = [f"{s}:2026-11-27" for s in frame[schema.id_column]]
    write_capture(root / "capture", frame[schema.raw_feature_columns], p, START, inference_ids=ids)
    labels = pd.DataFrame(
        {
            "subscriber_id": frame[schema.id_column],
            "churned": np.where(y == 1, "true", "false"),
            "observed_at": "2026-12-27",
            "probability": p,
            "y": y,
        }
    )
    return root / "baseline", root / "capture", labels


def write_labels(labels: pd.DataFrame, root: Path, with_ids: bool) -> Path:
    """Half the labels per day partition; with_ids adds inference_id to the first partition only."""
    half = len(labels) // 2
    for k, part in enumerate((labels.iloc[:half], labels.iloc[half:])):
        out = root / f"label_date=2026-12-2{k}"
        out.mkdir(parents=True)
        cols = part[["subscriber_id", "churned", "observed_at"]].copy()
        if with_ids and k == 0:
            cols["inference_id"] = part["subscriber_id"] + ":2026-11-27"
        cols.to_csv(out / "labels.csv", index=False)
    return root


def test_labels_join_and_metrics_match_scikit_learn(scored, tmp_path) -> None:
    baseline_dir, capture, labels = scored
    labels_dir = write_labels(labels, tmp_path / "labels", with_ids=True)
    argv = ["--baseline-dir", str(baseline_dir), "--capture-dir", str(capture), "--output-dir", str(tmp_path / "o")]
    assert drift.main([*argv, *WINDOW, "--schema", str(SCHEMA), "--labels-dir", str(labels_dir)]) == 0
    quality = json.loads((tmp_path / "o" / "drift_report.json").read_text())["model_quality"]
    y, p = labels["y"].to_numpy(), labels["probability"].to_numpy()
    assert quality["joined"] == len(labels) and quality["unjoined_labels"] == 0
    assert quality["auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    top = np.argsort(-p, kind="mergesort")[: int(np.ceil(0.1 * len(p)))]
    assert quality["top_decile_lift"] == pytest.approx(y[top].mean() / y.mean())
    bins = np.minimum((p * 10).astype(int), 9)
    ece = sum(abs(p[bins == b].mean() - y[bins == b].mean()) * (bins == b).sum() for b in set(bins)) / len(p)
    assert quality["calibration_error"] == pytest.approx(ece)
    assert 0.7 < quality["auc"] < 0.9


def test_label_without_inference_id_joins_latest_scoring_before_observation(tmp_path) -> None:
    captures = pd.DataFrame(
        {
            "_inference_id": [
                "s1:2026-11-01",
                "s1:2026-11-20",
                "s1:2026-12-05",
                "s2:2026-11-02",
                "s3:2026-11-03",
                "s3:2026-11-03",
                None,
            ],
            "_inference_time": pd.to_datetime(
                [
                    "2026-11-01",
                    "2026-11-20",
                    "2026-12-05",
                    "2026-11-02",
                    "2026-11-03T01:00",
                    "2026-11-03T02:00",
                    "2026-11-04",
                ],
                format="ISO8601",
                utc=True,
            ),
            "_probability": [0.1, 0.2, 0.3, 0.4, 0.5, 0.55, 0.9],
        }
    )
    labels = pd.DataFrame(
        {
            "subscriber_id": ["s1", "s2", "s3", "s4"],
            "churned": [True, False, True, True],
            "observed_at": pd.to_datetime(["2026-11-30"] * 4),
            "inference_id": [None, None, "s3:2026-11-03", None],
            "label_date": "2026-11-30",
        }
    )
    joined, counts = model_quality.join_labels(captures, labels)
    by_id = dict(zip(joined["_inference_id"], joined["probability"], strict=True))
    # s1: the 11-20 scoring (12-05 is after the observation); s3: the retried scoring counts once, the latest
    assert by_id == {"s1:2026-11-20": 0.2, "s2:2026-11-02": 0.4, "s3:2026-11-03": 0.55}
    assert counts == {
        "labels": 4,
        "joined": 3,
        "unjoined_labels": 1,
        "captured_with_inference_id": 5,
        "captured_without_label": 2,
    }


def test_no_label_joined_is_a_note_not_a_metric(scored, tmp_path) -> None:
    baseline_dir, capture, labels = scored
    other = labels.assign(subscriber_id="someone-else")
    labels_dir = write_labels(other, tmp_path / "labels", with_ids=False)
    argv = ["--baseline-dir", str(baseline_dir), "--capture-dir", str(capture), "--output-dir", str(tmp_path / "o")]
    assert drift.main([*argv, *WINDOW, "--schema", str(SCHEMA), "--labels-dir", str(labels_dir)]) == 0
    quality = json.loads((tmp_path / "o" / "drift_report.json").read_text())["model_quality"]
    assert quality["skipped"] == "no label joined a captured InferenceId" and "auc" not in quality
    assert quality["unjoined_labels"] == len(labels)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("subscriber_id,churned\ns1,true\n", r"labels lack column\(s\) \['observed_at'\]"),
        ("subscriber_id,churned,observed_at\ns1,maybe,2026-11-30\n", "row 0: churned 'maybe' is not a boolean"),
        (
            "subscriber_id,churned,observed_at\ns1,true,2026-11-30\ns2,no,soon\n",
            "row 1: observed_at 'soon' is not a date",
        ),
        ("subscriber_id,churned,observed_at\n,true,2026-11-30\n", "row 0: subscriber_id is empty"),
    ],
)
def test_bad_labels_name_file_and_row(tmp_path, content, message) -> None:
    (tmp_path / "labels.csv").write_text(content)
    with pytest.raises(JobError, match=message) as err:
        model_quality.read_labels(tmp_path)
    assert str(tmp_path / "labels.csv") in str(err.value)


def test_labels_read_parquet_and_partition_date(tmp_path) -> None:
    out = tmp_path / "label_date=2026-11-30"
    out.mkdir()
    pd.DataFrame({"subscriber_id": ["a"], "churned": [True], "observed_at": ["2026-11-30"]}).to_parquet(
        out / "x.parquet"
    )
    labels = model_quality.read_labels(tmp_path)
    assert labels.to_dict("records")[0]["label_date"] == "2026-11-30" and bool(labels["churned"].iloc[0])


def test_metrics_published_under_model_monitor_names_read_back_from_cloudwatch(scored, tmp_path,
                                                                              fake_aws_credentials) -> None:
    baseline_dir, capture, labels = scored
    labels_dir = write_labels(labels, tmp_path / "labels", with_ids=True)
    argv = [
        "--baseline-dir",
        str(baseline_dir),
        "--capture-dir",
        str(capture),
        "--output-dir",
        str(tmp_path / "o"),
        *WINDOW,
        "--schema",
        str(SCHEMA),
        "--labels-dir",
        str(labels_dir),
        "--publish-metrics",
        "--endpoint-name",
        ENDPOINT,
        "--monitoring-schedule-name",
        DATA_SCHEDULE,
    ]
    with mock_aws():
        assert drift.main(argv) == 0
        cw = boto3.client("cloudwatch")
        data = cw.list_metrics(Namespace="aws/sagemaker/Endpoints/data-metrics")["Metrics"]
        model = cw.list_metrics(Namespace="aws/sagemaker/Endpoints/model-metrics")["Metrics"]
        report = json.loads((tmp_path / "o" / "drift_report.json").read_text())
        dims = [{"Name": "Endpoint", "Value": ENDPOINT}, {"Name": "MonitoringSchedule", "Value": DATA_SCHEDULE}]
        value = cw.get_metric_statistics(
            Namespace="aws/sagemaker/Endpoints/data-metrics",
            MetricName="feature_baseline_drift_monthly_charges",
            Dimensions=dims,
            StartTime=START,
            EndTime=START + timedelta(hours=3),
            Period=3600,
            Statistics=["Maximum"],
        )["Datapoints"]
    features = report["features"]
    assert {m["MetricName"] for m in data} == (
        {f"feature_baseline_drift_{f}" for f in features} | {f"feature_psi_{f}" for f in features}
    )
    assert all(sorted(m["Dimensions"], key=lambda d: d["Name"]) == dims for m in data)
    assert [d["Maximum"] for d in value] == [pytest.approx(features["monthly_charges"]["distance"])]
    assert {m["MetricName"] for m in model} == {"auc", "top_decile_lift", "calibration_error"}
    assert {d["Value"] for m in model for d in m["Dimensions"]} == {ENDPOINT, "telecom-ml-dev-churn-model-quality"}
    assert report["published"] == {"data_quality_datums": 2 * len(features), "model_quality_datums": 3}


def test_publish_batches_at_the_api_limit() -> None:
    class Recorder:
        def __init__(self) -> None:
            self.sizes: list[int] = []

        def put_metric_data(self, Namespace: str, MetricData: list) -> None:
            self.sizes.append(len(MetricData))

    client = Recorder()
    datums = [drift_metrics.datum(f"m{i}", 1.0, {"Endpoint": "e"}, START) for i in range(2500)]
    assert drift_metrics.publish(client, "ns", datums) == 3
    assert client.sizes == [1000, 1000, 500]


def test_read_captures_api_gives_the_twin_a_frame(scored) -> None:
    _, capture, labels = scored
    frame, report = read_captures(capture, START, START + timedelta(hours=2))
    assert len(frame) == len(labels) and report.malformed == 0


def test_metrics_undefined_on_one_class_labels_are_none_and_not_published() -> None:
    metrics = model_quality.quality_metrics(np.zeros(50), np.linspace(0, 1, 50))
    assert metrics["auc"] is None and metrics["top_decile_lift"] is None and metrics["rows"] == 50
    assert metrics["calibration_error"] == pytest.approx(0.5)
    names = [d["MetricName"] for d in drift_metrics.model_quality_datums(metrics, {"Endpoint": "e"}, START)]
    assert names == ["calibration_error"]
