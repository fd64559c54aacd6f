"""scripts/preflight_needs.py: the instances a config runs at once, per Service Quotas usage."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from infra.config import EnvironmentConfig, load_environment
from scripts.preflight_needs import instance_needs

CONFIG = Path(__file__).resolve().parents[3] / "config"


def needs(config: EnvironmentConfig) -> dict[str, int]:
    return {need.quota_name: need.count for need in instance_needs(config)}


def dev_with(**ml: Any) -> EnvironmentConfig:
    """config/dev.yaml with `ml` settings merged in (one level below each key)."""
    raw = yaml.safe_load((CONFIG / "dev.yaml").read_text())
    raw["name"] = "dev"
    for key, value in ml.items():
        target = raw["ml"] if key != "monitoring" else raw
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target[key] = {**target[key], **value}
        else:
            target[key] = value
    return EnvironmentConfig.model_validate(raw)


def test_dev_needs() -> None:
    assert needs(load_environment(CONFIG / "dev.yaml")) == {
        "ml.inf2.xlarge for endpoint usage": 2,  # max_instances 1, two fleets during a blue/green update
        "ml.m5.large for endpoint usage": 2,  # an XGBoost package serves on xgboost_serving_instance_type
        "ml.inf2.xlarge for transform job usage": 1,
        "ml.m5.large for transform job usage": 1,
        "ml.m5.xlarge for spot training job usage": 2,  # both trainings at once, managed spot in dev
        "ml.trn1.2xlarge for training job usage": 1,
        "ml.m5.xlarge for processing job usage": 3,  # three evaluations at once
        "ml.m5.large for processing job usage": 2,  # the data-quality and model-quality monitoring jobs
    }


def test_on_demand_training_counts_against_the_training_quota() -> None:
    staging = needs(load_environment(CONFIG / "staging.yaml"))
    assert staging["ml.m5.xlarge for training job usage"] == 2
    assert not any("spot" in name for name in staging)


def test_counts_follow_the_config() -> None:
    config = dev_with(
        endpoint={"max_instances": 3},
        pipeline={
            "train_xgboost": {"managed_spot": False, "instance_type": "ml.m5.2xlarge", "instance_count": 2},
            "train_pytorch": {"managed_spot": True},
            "preprocess_shards": 2,
            "evaluate": {"instance_count": 2},
            "baseline": {"instance_type": "ml.m5.xlarge", "instance_count": 5},
        },
        batch_scoring={"instance_count": 4, "xgboost_instance_type": "ml.c5.xlarge"},
        monitoring={"model_quality": True},
    )
    got = needs(config)
    assert got["ml.inf2.xlarge for endpoint usage"] == 6
    assert got["ml.m5.2xlarge for training job usage"] == 2  # XGBoost on its own type, on demand
    assert got["ml.m5.xlarge for spot training job usage"] == 1  # PyTorch alone on spot
    # Baseline (5) runs beside PackageXGBoost (evaluate: 2) on the same type: 7 beats the evaluations' 3 x 2.
    assert got["ml.m5.xlarge for processing job usage"] == 7
    assert got["ml.inf2.xlarge for transform job usage"] == 4
    assert got["ml.c5.xlarge for transform job usage"] == 4
    assert "ml.m5.large for transform job usage" not in got
    assert got["ml.m5.large for processing job usage"] == 2  # Model Monitor: data and model quality jobs


def test_each_need_says_where_its_count_comes_from() -> None:
    by_name = {n.quota_name: n for n in instance_needs(load_environment(CONFIG / "dev.yaml"))}
    assert by_name["ml.m5.xlarge for spot training job usage"].why == (
        "ml.pipeline.train_xgboost + ml.pipeline.train_pytorch"
    )
    assert "blue/green" in by_name["ml.inf2.xlarge for endpoint usage"].why


def test_docs_deploy_lists_what_dev_needs() -> None:
    """docs/deploy.md's quota table is dev's needs, row for row."""
    text = (CONFIG.parent / "docs" / "deploy.md").read_text()
    rows = re.findall(r"^\| `(ml\.\S+ for [a-z ]+ usage)` \| (\d+) \|", text, flags=re.MULTILINE)
    assert {name: int(count) for name, count in rows} == needs(load_environment(CONFIG / "dev.yaml"))
