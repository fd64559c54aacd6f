"""The twin reads its quality gate through the typed environment config (infra.config)."""

from __future__ import annotations

import pytest
import yaml

from infra.config import QualityGateConfig, load_environment
from tests.fixtures.environments import write_environment
from training_jobs.select_model import select
from twin import cli
from twin.gate import judge

FIELD_ERRORS = [
    ({"min_roc_auc": "high"}, "ml.quality_gate.min_roc_auc: "),
    ({"min_roc_auc": 1.5}, "ml.quality_gate.min_roc_auc: "),
    ({"min_top_decile_lift": 0.5}, "ml.quality_gate.min_top_decile_lift: "),
    ({"min_top_decile_lift": None}, "ml.quality_gate.min_top_decile_lift: "),
]


def run_with(config, tmp_path):
    return cli.main(["run", "--config", str(config), "--out", str(tmp_path / "out"), "--quiet"])


def test_gate_comes_from_the_environment_file(tmp_path):
    cfg = write_environment(tmp_path / "dev.yaml", min_roc_auc=0.83, min_top_decile_lift=2.5)
    gate = load_environment(cfg).ml.quality_gate
    assert gate == QualityGateConfig(min_roc_auc=0.83, min_top_decile_lift=2.5)
    candidates = {
        "xgboost": {"roc_auc": 0.842, "top_decile_lift": 2.6},
        "pytorch": {"roc_auc": 0.84, "top_decile_lift": 2.4},
    }
    selection = select(candidates, None, "pytorch", 0.005, 0.005)  # pytorch within 0.005 of the best: it ships
    verdict = judge(selection, gate, f"{cfg}: ml.quality_gate")
    assert verdict["champion"] == "pytorch" and verdict["passed"] is False
    assert verdict["thresholds"] == {"min_roc_auc": 0.83, "min_top_decile_lift": 2.5}
    assert "top_decile_lift 2.4000 < 2.5" in verdict["message"] and str(cfg) in verdict["source"]


def test_gate_holds_the_shipped_model_to_the_champion_floor(tmp_path):
    gate = QualityGateConfig(min_roc_auc=0.8, min_top_decile_lift=2.0)
    candidates = {
        "xgboost": {"roc_auc": 0.85, "top_decile_lift": 3.0},
        "pytorch": {"roc_auc": 0.82, "top_decile_lift": 3.0},
    }
    selection = select(candidates, {"roc_auc": 0.86, "top_decile_lift": 3.1}, "pytorch", 0.005, 0.005)
    verdict = judge(selection, gate, "test")
    assert verdict["champion"] == "xgboost" and verdict["champion_floor"] == 0.855
    assert verdict["passed"] is False and "champion floor 0.8500 < 0.855" in verdict["message"]
    assert (
        judge(select(candidates, {"roc_auc": 0.85, "top_decile_lift": 3.0}, "xgboost", 0.005, 0.005), gate, "test")[
            "passed"
        ]
        is True
    )


def test_the_repository_environments_have_a_gate():
    assert load_environment("config/dev.yaml").ml.quality_gate.min_roc_auc == 0.80


@pytest.mark.parametrize("change, message", FIELD_ERRORS)
def test_invalid_gate_is_a_one_line_error_naming_file_and_field(tmp_path, capsys, change, message):
    cfg = write_environment(tmp_path / "dev.yaml", **change)
    assert run_with(cfg, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"twin: error: {cfg}: {message}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # rejected before any step ran


@pytest.mark.parametrize(
    "text, message",
    [
        ("ml: [unclosed\n", "not valid YAML"),
        ("other: 1\n", "required setting is missing"),
        (None, "file not found"),
    ],
)
def test_unreadable_config_is_a_one_line_error(tmp_path, capsys, text, message):
    cfg = tmp_path / "dev.yaml"
    if text is not None:
        cfg.write_text(text)
    assert run_with(cfg, tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"twin: error: {cfg}: ") and message in err and err.count("\n") == 1


def test_missing_gate_section_names_the_field(tmp_path, capsys):
    cfg = write_environment(tmp_path / "dev.yaml")
    doc = yaml.safe_load(cfg.read_text())
    del doc["ml"]["quality_gate"]
    cfg.write_text(yaml.safe_dump(doc))
    assert run_with(cfg, tmp_path) == 2
    err = capsys.readouterr().err
    assert err == f"twin: error: {cfg}: ml.quality_gate: required setting is missing\n"


def test_cli_defaults():
    args = cli.parse_args(["run"])
    assert str(args.config) == "config/dev.yaml"
    assert str(args.out) == "build/twin"
    assert args.data is None and args.profile == "full" and args.no_gate_exit is False


@pytest.mark.parametrize("value", ["0", "49", "-5"])
def test_too_few_requests_per_week_is_refused_before_anything_runs(tmp_path, capsys, value):
    assert cli.main(["run", "--requests-per-week", value, "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err == f"twin: error: --requests-per-week {value}: must be 50 or more\n"
    assert not (tmp_path / "out").exists()
