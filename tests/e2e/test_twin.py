"""The local twin end to end on a second, differently-shaped synthetic churn schema."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from tests.fixtures import synthetic_churn
from twin import cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def synthetic_inputs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    raw = synthetic_churn.write_csv(root / "subscribers.csv", n=2000, seed=7)
    cdr = root / "cdr"
    from etl.cdr_generator import generate

    ids = pd.read_csv(raw, dtype=str)["msisdn_ref"].tolist()
    generate(ids, 12000, 30, date(2025, 12, 31), 7, str(cdr), 0)
    return raw, cdr


def run_twin(raw: Path, cdr: Path, out: Path, config: Path, *extra: str) -> int:
    return cli.main(
        [
            "run",
            "--schema",
            str(synthetic_churn.SCHEMA_PATH),
            "--data",
            str(raw),
            "--cdr",
            str(cdr),
            "--config",
            str(config),
            "--out",
            str(out),
            "--profile",
            "quick",
            "--quiet",
            *extra,
        ]
    )


@pytest.fixture(scope="module")
def passing_run(synthetic_inputs, tmp_path_factory) -> Path:
    raw, cdr = synthetic_inputs
    out = tmp_path_factory.mktemp("twin")
    assert run_twin(raw, cdr, out, synthetic_churn.GATE_CONFIG) == 0
    return out


def test_summary_covers_every_step(passing_run):
    summary = json.loads((passing_run / "summary.json").read_text())
    assert summary["schema"]["name"] == "synthetic_mobile_churn"
    assert summary["rows"]["raw"] == 2000
    assert summary["rows"]["curated"] + summary["rows"]["quarantined"] == 2000
    assert summary["rows"]["usage_subscribers"] > 1000  # the usage section was joined from CDRs
    assert (
        summary["rows"]["train"] + summary["rows"]["validation"] + summary["rows"]["test"] == summary["rows"]["curated"]
    )
    assert set(summary["models"]) == {"xgboost", "pytorch"}
    for m in summary["models"].values():
        assert m["test"]["roc_auc"] > 0.7
    assert summary["champion"] in summary["models"]
    assert summary["gate"]["passed"] is True
    assert summary["traced_vs_eager_max_abs_diff"] <= 1e-5
    assert summary["serving"]["rows"] == summary["rows"]["test"]
    assert summary["serving"]["max_abs_diff_vs_evaluate"] <= 1e-5
    assert set(summary["serving"]["label_counts"]) <= {"churned", "active"}  # labels from the schema
    for step in (
        "conform",
        "preprocess",
        "train-xgboost",
        "train-pytorch",
        "evaluate-xgboost",
        "evaluate-pytorch",
        "gate",
        "compile-pytorch",
        "register",
        "serve",
        "report",
        "total",
    ):
        assert step in summary["timings_s"]


def test_sagemaker_style_layout(passing_run):
    for path in (
        "processing/preprocess/output/train/data.csv",
        "processing/preprocess/output/transformer/transformer.json",
        "training/pytorch/input/data/train/data.csv",
        "training/pytorch/model/metadata.json",
        "training/xgboost/model/model.json",
        "processing/evaluate-xgboost/evaluation/evaluation.json",
        "compile/pytorch/output/model.tar.gz",
        "serving/model/code/inference.py",
    ):
        assert (passing_run / path).exists(), path
    features = set(pd.read_csv(passing_run / "processing/preprocess/output/train/data.csv", nrows=1).columns)
    assert {"usage_calls", "usage_minutes", "plan", "roaming_enabled", "status"} <= features
    assert "customerID" not in features and "tenure" not in features  # nothing from IBM Telco


def test_report_embeds_plots(passing_run):
    html = (passing_run / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 4
    assert "synthetic_mobile_churn" in html and "PASSED" in html


def test_mlflow_registry_has_approved_champion(passing_run):
    import mlflow

    summary = json.loads((passing_run / "summary.json").read_text())
    uri = summary["registry"]["tracking_uri"]
    client = mlflow.MlflowClient(uri, uri)
    name = summary["registry"]["registered_model"]
    version = client.get_model_version_by_alias(name, "champion")
    assert int(version.version) == summary["registry"]["version"]
    assert version.tags["approval_status"] == "Approved"
    assert version.tags["model_type"] == summary["champion"]
    experiment = client.get_experiment_by_name("churn-synthetic_mobile_churn")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_name for r in runs} >= {"xgboost", "pytorch"}
    child = next(r for r in runs if r.info.run_name == summary["champion"])
    assert child.data.metrics["test_roc_auc"] == pytest.approx(
        summary["models"][summary["champion"]]["test"]["roc_auc"]
    )


def test_failed_gate_exits_non_zero_and_rejects(synthetic_inputs, tmp_path, capsys):
    import mlflow

    raw, cdr = synthetic_inputs
    strict = tmp_path / "strict.yaml"
    strict.write_text("ml:\n  quality_gate: {min_roc_auc: 0.99, min_top_decile_lift: 2.0}\n")
    assert run_twin(raw, cdr, tmp_path / "out", strict) == 1
    assert "quality gate failed" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["gate"]["passed"] is False and "roc_auc" in summary["gate"]["message"]
    uri = summary["registry"]["tracking_uri"]
    client = mlflow.MlflowClient(uri, uri)
    version = client.get_model_version(summary["registry"]["registered_model"], str(summary["registry"]["version"]))
    assert version.tags["approval_status"] == "Rejected"
    assert summary["registry"]["champion_alias"] is False


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert cli.main(["run", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    assert cli.main(["run", "--schema", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "schema file not found" in capsys.readouterr().err
