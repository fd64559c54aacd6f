"""The local twin end to end: a differently-shaped synthetic schema (passing_run) and IBM Telco
(rejected_run); both run once per session (tests/e2e/conftest.py)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.e2e.conftest import TwinRun
from twin import cli


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
        "select-model",
        "gate",
        "baseline",
        "compile-xgboost",
        "compile-pytorch",
        "register",
        "serve",
        "report",
        "total",
    ):
        assert step in summary["timings_s"]


PIPELINE_ORDER = [
    ("conform", "glue-jobs", "etl.local_run.run_lake_locally"),
    ("preprocess", "processing-job", "training_jobs.preprocess"),
    ("train-xgboost", "training-job", "training_jobs.train_xgboost"),
    ("train-pytorch", "training-job", "training_jobs.train_pytorch"),
    ("evaluate-xgboost", "processing-job", "training_jobs.evaluate"),
    ("evaluate-pytorch", "processing-job", "training_jobs.evaluate"),
    ("select-model", "processing-job", "training_jobs.select_model"),
    ("gate", "condition", "twin.gate.judge"),
    ("baseline", "processing-job", "training_jobs.baseline"),
    ("compile-xgboost", "processing-job", "training_jobs.compile_model"),
    ("compile-pytorch", "processing-job", "training_jobs.compile_model"),
    ("register", "model-registry", "twin.register.register"),
    ("serve", "endpoint", "code/inference.py (model_fn, input_fn, predict_fn, output_fn)"),
    ("report", "local", "twin.report"),
]
BATCH_SCORE = ("batch-score", "batch-transform", "twin.batch_score.batch_score")
# The loop, between serve and report when the gate passed (twin.monitor_loop).
LOOP_ORDER = [
    ("traffic-week-1", "endpoint", "twin.endpoint_server + scripts/smoke_endpoint.py (boto3 sagemaker-runtime)"),
    ("traffic-week-2", "endpoint", "twin.endpoint_server + scripts/smoke_endpoint.py (boto3 sagemaker-runtime)"),
    ("drift-week-1", "processing-job", "training_jobs.drift"),
    ("drift-week-2", "processing-job", "training_jobs.drift"),
    ("retrain-decision", "lambda", "lambdas.start_training.service.TrainingTriggerService"),
]
RETRAIN_ORDER = [
    ("retrain-train-xgboost", "training-job", "training_jobs.train_xgboost"),
    ("retrain-evaluate-xgboost", "processing-job", "training_jobs.evaluate"),
    ("retrain-evaluate-champion", "processing-job", "training_jobs.evaluate"),
    ("retrain-evaluate-pytorch", "processing-job", "training_jobs.evaluate"),  # only when the champion is XGBoost
    ("retrain-select-model", "processing-job", "training_jobs.select_model"),
    ("retrain-gate", "condition", "twin.gate.judge"),
    ("retrain-register", "model-registry", "twin.register.register_challenger"),  # only when it may register
]
# Arguments a job requires that are not paths (values as the first run passes them).
REQUIRED = {"select_model": ["--has-champion", "false", "--champion-model-type", "pytorch"]}


def expected_order(summary: dict) -> list[tuple[str, str, str]]:
    """PIPELINE_ORDER with batch scoring and the loop's steps before report, as far as this run went."""
    loop = summary.get("loop", {})
    scored = [BATCH_SCORE] if summary["gate"]["passed"] else []
    if "skipped" in loop:
        return PIPELINE_ORDER[:-1] + scored + PIPELINE_ORDER[-1:]
    champion = loop["retrain"].get("champion", {}).get("model")
    registers = loop["retrain"].get("decision", {}).get("registers", False)
    retrain = [] if "skipped" in loop["retrain"] else [
        s for s in RETRAIN_ORDER
        if (s[0] != "retrain-evaluate-pytorch" or champion != "pytorch") and (s[0] != "retrain-register" or registers)
    ]
    return PIPELINE_ORDER[:-1] + scored + LOOP_ORDER + retrain + PIPELINE_ORDER[-1:]


def test_steps_json_records_what_ran_in_pipeline_order(passing_run):
    steps = json.loads((passing_run / "steps.json").read_text())["steps"]
    summary = json.loads((passing_run / "summary.json").read_text())
    assert "skipped" not in summary["loop"] and "skipped" not in summary["loop"]["retrain"]
    assert [(s["name"], s["kind"], s["entry_point"]) for s in steps] == expected_order(summary)
    assert summary["steps"] == steps
    jobs = [s for s in steps if s["kind"] in ("processing-job", "training-job")]
    assert all(s["exit_code"] == 0 and s["argv"] for s in jobs)
    assert all(s["argv"] == [] and s["exit_code"] is None for s in steps if s not in jobs)
    by_name = {s["name"]: s for s in steps}
    root = passing_run.resolve()
    assert by_name["preprocess"]["argv"][:2] == ["--input-data", str(root / "processing/preprocess/input/features")]
    assert by_name["preprocess"]["container_argv"][:2] == ["--input-data", "/opt/ml/processing/input/features"]
    assert by_name["train-pytorch"]["argv"] == ["--seed", "42", "--epochs", "15", "--patience", "5"]
    assert by_name["train-pytorch"]["container_environment"]["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert by_name["serve"]["container_paths"] == {"/opt/ml/model": str(root / "serving/model")}


@pytest.mark.parametrize("step", [name for name, kind, _ in PIPELINE_ORDER + RETRAIN_ORDER if kind.endswith("-job")])
def test_recorded_argv_reparses_with_the_jobs_own_parser(passing_run, step, monkeypatch):
    root = str(passing_run.resolve())
    record = next((s for s in json.loads((passing_run / "steps.json").read_text())["steps"] if s["name"] == step), None)
    if record is None and step == "retrain-evaluate-pytorch":
        pytest.skip("the champion is the PyTorch network: the retrain re-scores it as retrain-evaluate-champion")
    assert record is not None, step
    job = importlib.import_module(record["entry_point"])
    for var, value in record["environment"].items():
        monkeypatch.setenv(var, value)
    args = job.parse_args(record["argv"])  # exits 2 on anything the job would reject
    local = [Path(v) for v in vars(args).values() if isinstance(v, str) and v.startswith(root)]
    assert local and all(p.exists() for p in local)
    stand_ins = [Path(p) for p in record["container_paths"].values()]
    assert all(any(p == d or d in p.parents for d in stand_ins) for p in local)
    # As the container sees it: every path the twin passed is the job's own SageMaker default.
    for var, value in record["container_environment"].items():
        monkeypatch.setenv(var, value)
    in_container = job.parse_args(record["container_argv"])
    for var in record["environment"]:
        monkeypatch.delenv(var)
    defaults = job.parse_args(REQUIRED.get(record["entry_point"].rsplit(".", 1)[-1], []))
    for key, value in vars(in_container).items():
        if isinstance(value, str) and value.startswith("/opt/ml/"):
            assert value == getattr(defaults, key), key
    assert not any(root in a for a in record["container_argv"])
    assert not any(root in v for v in record["container_environment"].values())


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
    assert "synthetic_mobile_churn" in html and "Quality gate passed." in html


def test_mlflow_registry_has_approved_champion(passing_run):
    import mlflow

    summary = json.loads((passing_run / "summary.json").read_text())
    uri = summary["registry"]["tracking_uri"]
    client = mlflow.MlflowClient(uri, uri)
    name = summary["registry"]["registered_model"]
    shipped = client.get_model_version(name, str(summary["registry"]["version"]))
    assert shipped.tags["approval_status"] == "Approved"
    assert shipped.tags["model_type"] == summary["champion"]
    # The alias stays on it unless the loop's challenger registered (tests/e2e/test_twin_loop.py).
    retrained = summary["loop"]["retrain"]["decision"].get("registry")
    version = client.get_model_version_by_alias(name, "champion")
    assert int(version.version) == (retrained["version"] if retrained else summary["registry"]["version"])
    experiment = client.get_experiment_by_name("churn-synthetic_mobile_churn")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert {r.info.run_name for r in runs} >= {"xgboost", "pytorch"}
    child = next(r for r in runs if r.info.run_name == summary["champion"])
    assert child.data.metrics["test_roc_auc"] == pytest.approx(
        summary["models"][summary["champion"]]["test"]["roc_auc"]
    )


def test_failed_gate_exits_non_zero_and_rejects(rejected_run: TwinRun):
    import mlflow

    assert rejected_run.exit_code == 1
    assert "quality gate failed" in rejected_run.errors
    summary = json.loads((rejected_run.out / "summary.json").read_text())
    assert summary["gate"]["passed"] is False and "roc_auc" in summary["gate"]["message"]
    uri = summary["registry"]["tracking_uri"]
    client = mlflow.MlflowClient(uri, uri)
    version = client.get_model_version(summary["registry"]["registered_model"], str(summary["registry"]["version"]))
    assert version.tags["approval_status"] == "Rejected"
    assert summary["registry"]["champion_alias"] is False


def test_ibm_telco_runs_end_to_end_from_the_schemas_own_source(rejected_run: TwinRun):
    summary = json.loads((rejected_run.out / "summary.json").read_text())
    assert summary["schema"]["name"] == "ibm_telco_churn"
    assert summary["rows"]["raw"] == 7043 == summary["rows"]["curated"] + summary["rows"]["quarantined"]
    assert summary["data_quality"]["null_fills"] == {"total_charges": 11}  # blank while tenure is 0
    assert (rejected_run.out / "raw" / "snapshot.csv").is_file()  # exported, no --data given
    assert summary["serving"]["rows"] == summary["rows"]["test"]
    assert summary["serving"]["max_abs_diff_vs_evaluate"] <= 1e-5
    for m in summary["models"].values():
        assert m["test"]["roc_auc"] > 0.8
    assert [s["name"] for s in summary["steps"]] == [name for name, _, _ in PIPELINE_ORDER]


def test_bad_inputs_are_clear_errors(tmp_path, capsys):
    assert cli.main(["run", "--data", str(tmp_path / "missing.csv"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "missing.csv: file not found" in capsys.readouterr().err
    assert cli.main(["run", "--schema", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "schema file not found" in capsys.readouterr().err
