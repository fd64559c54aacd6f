"""ml.retraining: defaults that hold in every shipped environment, and one-line errors naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.config import ConfigError, RetrainingConfig, load_all, load_environment
from tests.conftest import ROOT

GOOD = yaml.safe_load((ROOT / "config" / "dev.yaml").read_text())


def _load(tmp_path: Path, retraining: object) -> RetrainingConfig:
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    data["ml"]["retraining"] = retraining
    path = tmp_path / "dev.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_environment(path).ml.retraining


def test_every_environment_has_retraining_settings() -> None:
    for config in load_all(ROOT / "config"):
        retraining = config.ml.retraining
        assert retraining.max_run_hours >= 1 and retraining.daily_cap >= 1


def test_settings_load_from_yaml(tmp_path: Path) -> None:
    loaded = _load(tmp_path, {"cooldown_hours": 0, "daily_cap": 5, "max_run_hours": 4, "retry_attempts": 0})
    assert loaded == RetrainingConfig(cooldown_hours=0, daily_cap=5, max_run_hours=4, retry_attempts=0)


@pytest.mark.parametrize(
    ("retraining", "message"),
    [
        ({"cooldown_hours": -1}, "dev.yaml: ml.retraining.cooldown_hours: Input should be greater than or equal to 0"),
        ({"daily_cap": 0}, "dev.yaml: ml.retraining.daily_cap: Input should be greater than or equal to 1 (got 0)"),
        ({"max_run_hours": 100}, "dev.yaml: ml.retraining.max_run_hours: Input should be less than or equal to 72"),
        ({"retry_attempts": 3}, "dev.yaml: ml.retraining.retry_attempts: Input should be less than or equal to 2"),
        ({"reserved_concurrency": 0}, "dev.yaml: ml.retraining.reserved_concurrency: Input should be greater than"),
        ({"duplicate_window_hours": 1}, "dev.yaml: ml.retraining.duplicate_window_hours: Input should be greater"),
        ({"cooldown": 6}, "dev.yaml: ml.retraining.cooldown: unknown setting"),
        ({"daily_cap": "two"}, "dev.yaml: ml.retraining.daily_cap: Input should be a valid integer"),
        (
            {"cooldown_hours": 12, "daily_cap": 3},
            "dev.yaml: ml.retraining: daily_cap 3 can never be reached with cooldown_hours 12 (at most 2 starts fit",
        ),
    ],
)
def test_a_bad_setting_is_one_line_naming_the_field(tmp_path: Path, retraining: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, retraining)
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / message)), text
