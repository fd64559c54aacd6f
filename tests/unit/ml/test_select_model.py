"""Which candidate ships, and the champion floor the gate compares with (docs/pipeline.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training_jobs import evaluate, select_model


def write_evaluation(directory: Path, roc_auc: float, lift: float = 3.0) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    metrics = {"roc_auc": {"value": roc_auc}, "top_decile_lift": {"value": lift}}
    (directory / "evaluation.json").write_text(json.dumps({"telecom_churn_metrics": metrics}))
    return str(directory)


def choose(tmp_path: Path, xgboost: float, pytorch: float, champion: float | None = None,
           champion_type: str = "xgboost") -> dict:
    argv = [
        "--xgboost", write_evaluation(tmp_path / "x", xgboost, 3.1),
        "--pytorch", write_evaluation(tmp_path / "p", pytorch, 2.9),
        "--champion", write_evaluation(tmp_path / "c", champion or 0.5),
        "--has-champion", "false" if champion is None else "true",
        "--champion-model-type", champion_type,
        "--pytorch-tolerance", "0.005", "--champion-tolerance", "0.01",
        "--output-dir", str(tmp_path / "out"),
    ]
    assert select_model.main(argv) == 0
    return json.loads((tmp_path / "out" / "selection.json").read_text())


@pytest.mark.parametrize(
    ("xgboost", "pytorch", "ships", "serving"),
    [
        (0.840, 0.845, "pytorch", "inferentia2"),  # best
        (0.840, 0.836, "pytorch", "inferentia2"),  # within the tolerance of the best
        (0.840, 0.834, "xgboost", "cpu"),  # further behind: the best ships with its CPU image
        (0.840, 0.840, "pytorch", "inferentia2"),  # a tie goes to Inferentia2
    ],
)
def test_pytorch_ships_when_within_tolerance_of_the_best(tmp_path, xgboost, pytorch, ships, serving) -> None:
    selection = choose(tmp_path, xgboost, pytorch)
    assert selection["ship"]["model"] == ships and selection["ship"]["serving"] == serving
    assert selection["ship"]["roc_auc"] == {"xgboost": xgboost, "pytorch": pytorch}[ships]
    assert selection["ship"]["top_decile_lift"] == {"xgboost": 3.1, "pytorch": 2.9}[ships]
    assert selection["reason"].startswith(f"{ships} ships")


def test_without_a_champion_the_floor_is_zero(tmp_path) -> None:
    selection = choose(tmp_path, 0.84, 0.845)
    assert selection["champion"] == {"present": False, "model_type": None, "roc_auc": None, "floor": 0.0}
    assert "no champion yet" in selection["reason"]


def test_the_champion_rescored_on_this_split_sets_the_floor(tmp_path) -> None:
    selection = choose(tmp_path, 0.84, 0.845, champion=0.86, champion_type="pytorch")
    assert selection["champion"]["present"] is True
    assert selection["champion"]["floor"] == pytest.approx(0.85)
    assert selection["ship"]["roc_auc"] < selection["champion"]["floor"]  # the gate will stop this one
    assert "needs at least 0.8500" in selection["reason"]


def test_a_missing_or_broken_evaluation_is_bad_input(tmp_path, capsys) -> None:
    argv = ["--xgboost", str(tmp_path / "none"), "--pytorch", write_evaluation(tmp_path / "p", float("nan")),
            "--has-champion", "false", "--champion-model-type", "pytorch", "--output-dir", str(tmp_path / "o")]
    assert select_model.main(argv) == 2
    assert "evaluation.json: evaluation not found" in capsys.readouterr().err
    argv[1] = write_evaluation(tmp_path / "x", 0.8)
    assert select_model.main(argv) == 2
    assert "telecom_churn_metrics.roc_auc is nan" in capsys.readouterr().err


def test_reads_what_evaluate_writes(prep, xgb_model, pt_model, tmp_path) -> None:
    for name, model in (("xgboost", xgb_model), ("pytorch", pt_model)):
        argv = ["--model-dir", str(model), "--test-data", str(prep / "test"), "--output-dir", str(tmp_path / name),
                "--no-importance"]
        assert evaluate.main(argv) == 0
    argv = ["--xgboost", str(tmp_path / "xgboost"), "--pytorch", str(tmp_path / "pytorch"),
            "--champion", str(tmp_path / "xgboost"), "--has-champion", "true", "--champion-model-type", "xgboost",
            "--output-dir", str(tmp_path / "out")]
    assert select_model.main(argv) == 0
    selection = json.loads((tmp_path / "out" / "selection.json").read_text())
    assert selection["ship"]["model"] in ("xgboost", "pytorch")
    assert 0.8 < selection["ship"]["roc_auc"] < 0.9  # IBM Telco, quick hyperparameters
