"""Preprocess, training and evaluation scripts on the real IBM Telco data (quick hyperparameters)."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pandas as pd
import pytest

from tests.unit.ml.conftest import QUICK_PT, QUICK_XGB, SCHEMA, channels
from training_jobs import evaluate, preprocess, train_pytorch, train_xgboost
from training_jobs.splits import read_split


# ----------------------------------------------------------------------------- preprocess
def test_preprocess_layout_and_stratification(prep, schema):
    for part in ("train", "validation", "test"):
        assert (prep / part / "data.csv").exists()
    assert {p.name for p in (prep / "transformer").iterdir()} == {"transformer.json", "schema.yaml"}
    stats = json.loads((prep / "baseline" / "statistics.json").read_text())
    assert set(stats["features"]) == set(schema.raw_feature_columns)
    summary = json.loads((prep / "preprocess_summary.json").read_text())
    assert summary["train"] + summary["validation"] + summary["test"] == summary["rows"] == 7043
    rates = [read_split(prep / p, schema)[1].mean() for p in ("train", "validation", "test")]
    assert max(rates) - min(rates) < 0.005  # stratified: 1,869 / 7,043 = 26.5% everywhere
    ids = [
        set(pd.read_csv(prep / p / "data.csv", dtype=str)[schema.id_column]) for p in ("train", "validation", "test")
    ]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])


def test_preprocess_is_seeded(raw_csv, tmp_path):
    for name in ("a", "b"):
        argv = ["--input-data", str(raw_csv), "--schema", str(SCHEMA), "--output-dir", str(tmp_path / name)]
        assert preprocess.main(argv) == 0
    assert (tmp_path / "a/test/data.csv").read_bytes() == (tmp_path / "b/test/data.csv").read_bytes()
    assert (tmp_path / "a/transformer/transformer.json").read_text() == (
        tmp_path / "b/transformer/transformer.json"
    ).read_text()


def test_preprocess_defaults_follow_processing_conventions():
    args = preprocess.parse_args([])
    assert args.input_data == "/opt/ml/processing/input/features"
    assert args.schema == "/opt/ml/processing/input/schema/schema.yaml"
    assert args.output_dir == "/opt/ml/processing/output"


def test_preprocess_reads_parquet_feature_table(raw_csv, schema, tmp_path):
    frame = pd.read_csv(raw_csv)
    frame[schema.target_column] = (frame[schema.target_column] == schema.positive_label).astype(int)
    frame["total_charges"] = frame["total_charges"].fillna(0.0)
    (tmp_path / "features").mkdir()
    frame.to_parquet(tmp_path / "features" / "part-0.parquet")
    rc = preprocess.main(
        [
            "--input-data",
            str(tmp_path / "features"),
            "--schema",
            str(SCHEMA),
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert rc == 0


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda f: f.drop(columns=["tenure"]), "missing columns ['tenure']"),
        (lambda f: f.assign(churn="Maybe"), "row 0: target 'churn' value 'Maybe' is not one of"),
        (lambda f: f.assign(tenure="ten"), "row 0: column 'tenure' value 'ten' is not a number"),
        (lambda f: f.assign(partner="perhaps"), "column 'partner', row 0: 'perhaps' is not a boolean"),
        (lambda f: f.iloc[:0], "input has no rows"),
    ],
)
def test_preprocess_bad_input_is_a_clear_error(raw_csv, tmp_path, capsys, mutate, message):
    bad = tmp_path / "bad.csv"
    mutate(pd.read_csv(raw_csv, dtype=str)).to_csv(bad, index=False)
    rc = preprocess.main(["--input-data", str(bad), "--schema", str(SCHEMA), "--output-dir", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and str(bad) in err


def test_preprocess_rejects_bad_arguments(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        preprocess.parse_args(["--test-fraction", "0.7"])
    assert exc.value.code == 2
    assert "--test-fraction" in capsys.readouterr().err
    rc = preprocess.main(["--input-data", str(tmp_path / "nope.csv"), "--schema", str(SCHEMA)])
    assert rc == 2 and "input data not found" in capsys.readouterr().err


# ----------------------------------------------------------------------------- training
@pytest.mark.parametrize("kind", ["xgboost", "pytorch"])
def test_artefact_is_self_contained(kind, xgb_model, pt_model, schema):
    model_dir = xgb_model if kind == "xgboost" else pt_model
    names = {p.name for p in model_dir.iterdir()}
    assert {"transformer.json", "schema.yaml", "metadata.json"} <= names
    assert ("model.json" if kind == "xgboost" else "model_state.pt") in names
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["model_type"] == kind
    assert meta["schema"] == {
        "name": schema.name,
        "version": schema.version,
        "fingerprint": schema.fingerprint,
    }
    assert 0 < meta["decision_threshold"] < 1
    assert meta["metrics"]["validation_roc_auc"] > 0.8
    assert meta["labels"] == {"positive": "Yes", "negative": "No"}


def test_training_reads_sagemaker_environment(prep, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(prep / "train"))
    monkeypatch.setenv("SM_CHANNEL_VALIDATION", str(prep / "validation"))
    monkeypatch.setenv("SM_CHANNEL_TRANSFORMER", str(prep / "transformer"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_OUTPUT_DATA_DIR", str(tmp_path / "output"))
    # hyperparameters as SageMaker passes them (snake_case also accepted)
    assert train_xgboost.main(["--num_round", "20", "--max_depth", "3", "--eta", "0.3"]) == 0
    assert (tmp_path / "model" / "model.json").exists()
    assert json.loads((tmp_path / "output" / "metrics.json").read_text())["validation_roc_auc"] > 0.75
    assert "validation:roc_auc=" in capsys.readouterr().out  # metric-definition friendly line


def test_training_defaults_are_sagemaker_paths(monkeypatch):
    for var in (
        "SM_MODEL_DIR",
        "SM_CHANNEL_TRAIN",
        "SM_CHANNEL_VALIDATION",
        "SM_CHANNEL_TRANSFORMER",
        "SM_OUTPUT_DATA_DIR",
    ):
        monkeypatch.delenv(var, raising=False)
    args = train_pytorch.parse_args([])
    assert (args.model_dir, args.train, args.validation, args.transformer, args.output_data_dir) == (
        "/opt/ml/model",
        "/opt/ml/input/data/train",
        "/opt/ml/input/data/validation",
        "/opt/ml/input/data/transformer",
        "/opt/ml/output/data",
    )


@pytest.mark.parametrize(
    "module, argv, message",
    [
        (train_xgboost, ["--eta", "0"], "--eta must be a positive number"),
        (train_xgboost, ["--subsample", "1.5"], "--subsample"),
        (train_pytorch, ["--dropout", "1.2"], "--dropout must be in [0, 1)"),
        (train_pytorch, ["--epochs", "-1"], "--epochs must be a positive number"),
        (train_pytorch, ["--learning-rate", "abc"], "invalid float value"),
    ],
)
def test_bad_hyperparameters_are_usage_errors(module, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        module.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_missing_channel_is_a_clear_error(prep, tmp_path, capsys):
    rc = train_pytorch.main(
        [
            "--train",
            str(tmp_path / "nope"),
            "--validation",
            str(prep / "validation"),
            "--transformer",
            str(prep / "transformer"),
            "--model-dir",
            str(tmp_path / "m"),
        ]
    )
    assert rc == 2
    assert f"channel 'train': {tmp_path / 'nope'} does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("module, quick", [(train_xgboost, QUICK_XGB), (train_pytorch, QUICK_PT)])
def test_same_seed_same_metrics(module, quick, prep, tmp_path):
    metrics = []
    for run in ("a", "b"):
        argv = [
            *channels(prep),
            "--model-dir",
            str(tmp_path / run),
            "--output-data-dir",
            str(tmp_path / f"{run}o"),
            "--seed",
            "7",
            *quick,
        ]
        assert module.main(argv) == 0
        metrics.append(json.loads((tmp_path / run / "metadata.json").read_text())["metrics"])
    assert metrics[0] == metrics[1]


# ----------------------------------------------------------------------------- evaluation
@pytest.fixture(scope="module")
def evaluation(pt_model, prep, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    rc = evaluate.main(["--model-dir", str(pt_model), "--test-data", str(prep / "test"), "--output-dir", str(out)])
    assert rc == 0
    return json.loads((out / "evaluation.json").read_text()), out


def test_evaluation_json_follows_sagemaker_model_quality_format(evaluation):
    report, _ = evaluation
    bcm = report["binary_classification_metrics"]
    for key in (
        "recall",
        "precision",
        "accuracy",
        "recall_best_constant_classifier",
        "precision_best_constant_classifier",
        "accuracy_best_constant_classifier",
        "true_positive_rate",
        "true_negative_rate",
        "false_positive_rate",
        "false_negative_rate",
        "auc",
        "f0_5",
        "f1",
        "f2",
        "f0_5_best_constant_classifier",
        "f1_best_constant_classifier",
        "f2_best_constant_classifier",
    ):
        assert set(bcm[key]) == {"value", "standard_deviation"}, key
        assert isinstance(bcm[key]["value"], float | int)
        assert isinstance(bcm[key]["standard_deviation"], float)  # >= 200 rows: 5 x 80% samples
    cm = bcm["confusion_matrix"]
    assert set(cm) == {"0", "1"} and set(cm["0"]) == {"0", "1"}
    assert sum(cm[a][b] for a in cm for b in cm[a]) == report["model"]["test_rows"] == 1056
    assert cm["1"]["0"] + cm["1"]["1"] == 280  # actual positives in the stratified test split
    roc = bcm["receiver_operating_characteristic_curve"]
    assert len(roc["false_positive_rates"]) == len(roc["true_positive_rates"]) > 10
    assert set(bcm["precision_recall_curve"]) == {"precisions", "recalls"}
    assert bcm["auc"]["value"] > 0.8


def test_evaluation_telecom_section(evaluation):
    report, out = evaluation
    t = report["telecom_churn_metrics"]
    for key in ("roc_auc", "pr_auc", "brier_score", "f1", "top_decile_lift", "top_decile_capture_rate"):
        assert set(t[key]) == {"value", "standard_deviation"}
    assert t["top_decile_lift"]["value"] > 2
    assert abs(t["roc_auc"]["value"] - report["binary_classification_metrics"]["auc"]["value"]) < 1e-12
    assert t["threshold_source"] == "metadata.json"
    assert len(t["lift_curve"]) == 10 and t["lift_curve"][-1]["cumulative_capture"] == pytest.approx(1.0)
    assert t["permutation_importance_roc_auc_drop"]["tenure"] > 0.01
    preds = pd.read_csv(out / "predictions.csv")
    assert len(preds) == 1056 and preds["probability"].between(0, 1).all()
    # What the package names for prediction drift: the same probabilities, no subscriber id.
    baseline = pd.read_csv(out / "baseline_predictions.csv")
    assert list(baseline.columns) == ["probability"]
    assert baseline["probability"].to_numpy() == pytest.approx(preds["probability"].to_numpy())


def test_roc_auc_matches_scikit_learn(evaluation):
    from sklearn.metrics import average_precision_score, roc_auc_score

    report, out = evaluation
    preds = pd.read_csv(out / "predictions.csv")
    assert report["telecom_churn_metrics"]["roc_auc"]["value"] == pytest.approx(
        roc_auc_score(preds["target"], preds["probability"]), abs=1e-9
    )
    assert report["telecom_churn_metrics"]["pr_auc"]["value"] == pytest.approx(
        average_precision_score(preds["target"], preds["probability"]), abs=1e-9
    )


def test_small_test_sets_report_nan_standard_deviation(pt_model, prep, tmp_path):
    small = pd.read_csv(prep / "test" / "data.csv", dtype=str).iloc[:150]
    (tmp_path / "small").mkdir()
    small.to_csv(tmp_path / "small" / "data.csv", index=False)
    assert (
        evaluate.main(
            [
                "--model-dir",
                str(pt_model),
                "--test-data",
                str(tmp_path / "small"),
                "--output-dir",
                str(tmp_path / "e"),
                "--no-importance",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert report["binary_classification_metrics"]["auc"]["standard_deviation"] == "NaN"


def test_evaluate_accepts_model_tarball(xgb_model, prep, tmp_path):
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for p in xgb_model.iterdir():
            tar.add(p, arcname=p.name)
    assert (
        evaluate.main(
            [
                "--model-dir",
                str(tarball),
                "--test-data",
                str(prep / "test"),
                "--output-dir",
                str(tmp_path / "e"),
                "--no-importance",
                "--threshold",
                "0.5",
            ]
        )
        == 0
    )
    report = json.loads((tmp_path / "e" / "evaluation.json").read_text())
    assert report["model"]["model_type"] == "xgboost"
    assert report["telecom_churn_metrics"]["decision_threshold"] == 0.5


def test_evaluate_missing_model_is_a_clear_error(prep, tmp_path, capsys):
    assert (
        evaluate.main(
            [
                "--model-dir",
                str(tmp_path),
                "--test-data",
                str(prep / "test"),
                "--output-dir",
                str(tmp_path / "e"),
            ]
        )
        == 2
    )
    assert "metadata.json: model metadata not found" in capsys.readouterr().err


@pytest.mark.parametrize("module, quick", [(train_xgboost, QUICK_XGB), (train_pytorch, QUICK_PT)])
def test_refit_on_validation_keeps_out_of_sample_validation_metrics(module, quick, prep, tmp_path):
    """The refit (train+validation, early-stopped length) changes the saved model, never the
    validation metrics, threshold or champion evidence, which stay the early-stopped model's."""
    meta, files = {}, {}
    for refit in ("true", "false"):
        argv = [
            *channels(prep),
            "--model-dir",
            str(tmp_path / refit),
            "--output-data-dir",
            str(tmp_path / f"{refit}o"),
            "--refit-on-validation",
            refit,
            *quick,
        ]
        assert module.main(argv) == 0
        meta[refit] = json.loads((tmp_path / refit / "metadata.json").read_text())
        files[refit] = (tmp_path / refit / meta[refit]["model_file"]).read_bytes()
    val = {r: {k: v for k, v in m["metrics"].items() if k.startswith("validation_")} for r, m in meta.items()}
    assert val["true"] == val["false"]
    assert meta["true"]["decision_threshold"] == meta["false"]["decision_threshold"]
    assert files["true"] != files["false"]
    refit_info = meta["true"].get("refit") or meta["true"]["training"]["refit"]
    rows = meta["true"]["rows"]
    assert refit_info["enabled"] and refit_info["rows"] == rows["train"] + rows["validation"]
    assert meta["true"]["hyperparameters"]["refit_on_validation"] is True


def test_refit_flag_parses_sagemaker_strings():
    assert train_xgboost.parse_args(["--refit_on_validation", "False"]).refit_on_validation is False
    assert train_pytorch.parse_args(["--refit-on-validation", "1"]).refit_on_validation is True
    assert train_pytorch.parse_args([]).refit_on_validation is True
    with pytest.raises(SystemExit):
        train_xgboost.parse_args(["--refit-on-validation", "maybe"])


def test_threshold_is_f1_optimal_on_validation(prep, schema, tmp_path):
    from training_jobs.artifacts import load_model
    from training_jobs.metrics import basic_metrics

    # Without the refit the saved net is the one whose validation scores chose the threshold.
    argv = [
        *channels(prep),
        "--model-dir",
        str(tmp_path / "m"),
        "--output-data-dir",
        str(tmp_path / "o"),
        "--refit-on-validation",
        "false",
        *QUICK_PT,
    ]
    assert train_pytorch.main(argv) == 0
    model = load_model(tmp_path / "m")
    frame, y = read_split(prep / "validation", schema)
    p = model.predict_proba(frame)
    t = model.metadata["decision_threshold"]
    best = basic_metrics(y, p, t)["f1"]
    for other in np.linspace(0.05, 0.95, 19):
        assert basic_metrics(y, p, other)["f1"] <= best + 1e-12
