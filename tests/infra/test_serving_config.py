"""ml.endpoint modes and the budget: good files load, bad ones name the field and the rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, load_environment
from tests.conftest import ROOT

DEV = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())


def _write(tmp_path: Path, endpoint: dict[str, object], budget: object = None) -> Path:
    doc = yaml.safe_load(yaml.safe_dump(DEV))
    doc["ml"]["endpoint"] = endpoint
    if budget is not None:
        doc["budget"] = budget
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_without_a_mode_zero_minimum_means_async_and_otherwise_realtime(tmp_path: Path) -> None:
    base = {"instance_type": "ml.inf2.xlarge", "max_instances": 2}
    assert load_environment(_write(tmp_path, {**base, "min_instances": 0})).ml.endpoint.mode == "async"
    assert load_environment(_write(tmp_path, {**base, "min_instances": 1})).ml.endpoint.mode == "realtime"


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ({"mode": "realtime", "min_instances": 0}, "min_instances 0 needs mode 'async'"),
        ({"mode": "batch"}, "ml.endpoint.mode: 'batch' is not allowed"),
        ({"container_startup_timeout_seconds": 30}, "ml.endpoint.container_startup_timeout_seconds"),
        ({"canary": {"size_percent": 80}}, "ml.endpoint.canary.size_percent"),
        ({"data_capture": {"sampling_percent": 0}}, "ml.endpoint.data_capture.sampling_percent"),
        ({"rollback_alarms": {"evaluation_minutes": 0}}, "ml.endpoint.rollback_alarms.evaluation_minutes"),
    ],
)
def test_bad_endpoint_settings_name_the_field(tmp_path: Path, endpoint: dict[str, object], expected: str) -> None:
    base = {"instance_type": "ml.inf2.xlarge", "min_instances": 1, "max_instances": 2}
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(")):
        load_environment(_write(tmp_path, {**base, **endpoint}))


def test_budget_needs_a_positive_limit(tmp_path: Path) -> None:
    endpoint = DEV["ml"]["endpoint"]
    with pytest.raises(ConfigError, match=r"budget\.monthly_limit_usd"):
        load_environment(_write(tmp_path, endpoint, budget={"monthly_limit_usd": 0}))
    config = load_environment(_write(tmp_path, endpoint, budget={"monthly_limit_usd": 42}))
    assert config.budget is not None and config.budget.alert_at_percent == (80, 100)


def test_initial_instances_is_at_least_one() -> None:
    from infra.config import EndpointConfig

    assert EndpointConfig(instance_type="ml.inf2.xlarge", min_instances=0, max_instances=1).initial_instances == 1
    assert EndpointConfig(instance_type="ml.inf2.xlarge", min_instances=3, max_instances=4).initial_instances == 3
