"""monitoring: the engine per environment, schedule and window checks, thresholds, and one-line errors."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.config import (
    BASELINE_COMPARISON_THRESHOLD,
    ConfigError,
    MonitoringConfig,
    QualityGateConfig,
    load_all,
    load_environment,
)
from tests.conftest import ROOT

CONFIGS = {c.name: c for c in load_all(ROOT / "config")}


def _load(tmp_path: Path, monitoring: object, env: str = "dev", **network: Any) -> MonitoringConfig:
    data = yaml.safe_load((ROOT / "config" / f"{env}.yaml").read_text())
    data["monitoring"] = monitoring
    data["network"].update(network)
    path = tmp_path / f"{env}.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_environment(path).monitoring


def test_dev_and_prod_run_different_engines_from_config() -> None:
    assert CONFIGS["dev"].monitoring.engine == "model_monitor"
    assert CONFIGS["prod"].monitoring.engine == "drift_job"
    assert {c.monitoring.engine for c in CONFIGS.values()} == {"drift_job", "model_monitor"}


def test_defaults_are_the_drift_job_hourly_over_the_last_hour(tmp_path: Path) -> None:
    loaded = _load(tmp_path, {})
    assert loaded == MonitoringConfig()
    assert (loaded.engine, loaded.schedule, loaded.window_hours) == ("drift_job", "cron(0 * ? * * *)", 1)
    assert loaded.thresholds.drift_distance == BASELINE_COMPARISON_THRESHOLD
    assert loaded.model_quality is False


def test_the_default_drift_threshold_is_the_baselines_comparison_threshold() -> None:
    """Read from the job's source (importing it would load pandas for one constant)."""
    tree = ast.parse((ROOT / "training_jobs" / "baseline.py").read_text())
    (value,) = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["MONITORING_CONFIG"]
    ]
    config = ast.literal_eval(value)
    assert config["distribution_constraints"]["comparison_threshold"] == BASELINE_COMPARISON_THRESHOLD


def test_the_auc_floor_is_configured_or_the_pipelines_quality_gate(tmp_path: Path) -> None:
    gate = QualityGateConfig(min_roc_auc=0.82, min_top_decile_lift=2.0)
    assert _load(tmp_path, {}).min_auc(gate) == 0.82
    assert _load(tmp_path, {"thresholds": {"min_auc": 0.7}}).min_auc(gate) == 0.7


@pytest.mark.parametrize("schedule", ["cron(0 * ? * * *)", "cron(0 6 ? * * *)", "cron(0 0/6 ? * * *)"])
def test_model_monitor_takes_its_own_cron_shapes(tmp_path: Path, schedule: str) -> None:
    assert _load(tmp_path, {"engine": "model_monitor", "schedule": schedule}).schedule == schedule


def test_the_drift_job_takes_any_scheduler_expression(tmp_path: Path) -> None:
    loaded = _load(tmp_path, {"schedule": "rate(30 minutes)", "window_hours": 2})
    assert loaded.schedule == "rate(30 minutes)"


@pytest.mark.parametrize(
    ("monitoring", "message"),
    [
        (
            {"engine": "clarify"},
            "dev.yaml: monitoring.engine: 'clarify' is not allowed; input should be 'model_monitor' or 'drift_job'",
        ),
        (
            {"schedule": "every hour"},
            "dev.yaml: monitoring.schedule: 'every hour' is not a schedule expression "
            "(cron(<6 fields>) or rate(<n> <unit>)) (got 'every hour')",
        ),
        ({"schedule": "rate(1 hours)"}, "monitoring.schedule: 'rate(1 hours)' is not a schedule expression"),
        (
            {"engine": "model_monitor", "schedule": "rate(1 hour)"},
            "dev.yaml: monitoring: schedule 'rate(1 hour)' is not one Model Monitor accepts (engine model_monitor)",
        ),
        ({"engine": "model_monitor", "schedule": "cron(30 * ? * * *)"}, "is not one Model Monitor accepts"),
        (
            {"engine": "model_monitor", "max_runtime_minutes": 45},
            "monitoring: max_runtime_minutes 45 exceeds the 30 minutes Model Monitor allows a model-quality job",
        ),
        (
            {"window_hours": 24, "thresholds": {"evaluation_periods": 8}},
            "monitoring: window_hours x thresholds.evaluation_periods = 192 hours; a CloudWatch alarm evaluates at "
            "most 168 hours",
        ),
        ({"window_hours": 0}, "dev.yaml: monitoring.window_hours: Input should be greater than or equal to 1"),
        (
            {"instance_type": "ml.inf2.xlarge"},
            "monitoring.instance_type: 'ml.inf2.xlarge' is not a supported monitoring instance type",
        ),
        (
            {"instance_type": "ml.m5.48xlarge"},
            "monitoring.instance_type: 'ml.m5.48xlarge' is not a monitoring instance type SageMaker accepts",
        ),
        ({"thresholds": {"drift_distance": 0}}, "monitoring.thresholds.drift_distance: Input should be greater than 0"),
        (
            {"thresholds": {"min_auc": 0.4}},
            "monitoring.thresholds.min_auc: Input should be greater than or equal to 0.5",
        ),
        ({"reports_retention_days": 0}, "monitoring.reports_retention_days: Input should be greater than or equal"),
        ({"engines": "drift_job"}, "dev.yaml: monitoring.engines: unknown setting"),
    ],
)
def test_bad_settings_fail_with_one_line_naming_the_field(
    tmp_path: Path, monitoring: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, monitoring)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_vpc_mode_needs_the_monitoring_interface_endpoint(tmp_path: Path) -> None:
    endpoints = [e for e in CONFIGS["staging"].network.interface_endpoints if e != "cloudwatch_monitoring"]
    with pytest.raises(
        ConfigError,
        match=r"staging.yaml: \(top level\): monitoring needs network.interface_endpoints "
        r"\['cloudwatch_monitoring'\] in mode 'vpc'",
    ):
        _load(tmp_path, {}, env="staging", interface_endpoints=endpoints)
