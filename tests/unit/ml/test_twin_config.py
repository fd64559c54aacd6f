from __future__ import annotations

import pytest

from training_jobs.errors import JobError
from twin.cli import DEFAULT_GATE, load_gate, parse_args


def test_missing_config_falls_back_to_documented_default(tmp_path):
    gate, message = load_gate(tmp_path / "dev.yaml")
    assert gate == DEFAULT_GATE == {"min_roc_auc": 0.80, "min_top_decile_lift": 2.0}
    assert "not found" in message and "default" in message


def test_reads_only_ml_quality_gate(tmp_path):
    cfg = tmp_path / "dev.yaml"
    cfg.write_text(
        "account: '1'\nnetwork: {vpc_cidr: x}\nml:\n  quality_gate: {min_roc_auc: 0.83, min_top_decile_lift: 2.5}\n"
    )
    gate, message = load_gate(cfg)
    assert gate == {"min_roc_auc": 0.83, "min_top_decile_lift": 2.5}
    assert str(cfg) in message


@pytest.mark.parametrize(
    "text, message",
    [
        ("ml: {}\n", "ml.quality_gate is missing"),
        ("other: 1\n", "ml.quality_gate is missing"),
        (
            "ml:\n  quality_gate: {min_roc_auc: high, min_top_decile_lift: 2}\n",
            "ml.quality_gate.min_roc_auc must be a number",
        ),
        ("ml:\n  quality_gate: {min_roc_auc: 0.8}\n", "ml.quality_gate.min_top_decile_lift must be a number"),
        ("ml:\n  quality_gate: {min_roc_auc: 1.5, min_top_decile_lift: 2}\n", "in [0.5, 1.0]"),
        ("ml: [unclosed\n", "not valid YAML"),
    ],
)
def test_invalid_gate_config_is_a_clear_error(tmp_path, text, message):
    cfg = tmp_path / "dev.yaml"
    cfg.write_text(text)
    with pytest.raises(JobError, match=None) as exc:
        load_gate(cfg)
    assert message in str(exc.value) and str(cfg) in str(exc.value)


def test_cli_defaults():
    args = parse_args(["run"])
    assert str(args.config) == "config/dev.yaml"
    assert str(args.out) == "build/twin"
    assert args.data is None and args.profile == "full" and args.no_gate_exit is False
