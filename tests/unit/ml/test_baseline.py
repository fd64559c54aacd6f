"""The drift baseline job on the real IBM Telco training split: Model Monitor's statistics/constraints format."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.unit.ml.conftest import SCHEMA
from training_jobs import baseline


def run(prep: Path, out: Path) -> tuple[dict, dict]:
    rc = baseline.main(["--input-data", str(prep / "train"), "--schema", str(SCHEMA), "--output-dir", str(out)])
    assert rc == 0
    return json.loads((out / "statistics.json").read_text()), json.loads((out / "constraints.json").read_text())


def test_statistics_describe_every_raw_feature(prep, schema, tmp_path) -> None:
    statistics, _ = run(prep, tmp_path)
    train = pd.read_csv(prep / "train" / "data.csv")
    assert statistics["dataset"]["item_count"] == len(train)
    features = {f["name"]: f for f in statistics["features"]}
    assert list(features) == schema.numeric_columns + [
        c for c in schema.raw_feature_columns if c not in schema.numeric_columns
    ]
    tenure = features["tenure"]
    assert tenure["inferred_type"] == "Integral"
    stats = tenure["numerical_statistics"]
    assert stats["common"] == {"num_present": len(train), "num_missing": 0}
    assert stats["mean"] == train["tenure"].mean() and stats["max"] == train["tenure"].max()
    kll = stats["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == len(train)
    assert kll["sketch"]["parameters"] == {"c": 0.64, "k": 2048.0}
    assert len(kll["sketch"]["data"][0]) == min(len(train), 2048)
    # total_charges is blank for brand-new subscribers: counted as missing, not as zero.
    charges = features["total_charges"]["numerical_statistics"]["common"]
    assert charges["num_missing"] == int(train["total_charges"].isna().sum()) > 0
    assert features["monthly_charges"]["inferred_type"] == "Fractional"
    contract = features["contract"]["string_statistics"]
    buckets = {b["value"]: b["count"] for b in contract["distribution"]["categorical"]["buckets"]}
    assert buckets == train["contract"].value_counts().astype(float).to_dict()
    assert contract["distinct_count"] == 3.0


def test_constraints_hold_types_completeness_and_domains(prep, tmp_path) -> None:
    _, constraints = run(prep, tmp_path)
    by_name = {c["name"]: c for c in constraints["features"]}
    assert by_name["tenure"]["num_constraints"] == {"is_non_negative": True}
    assert by_name["tenure"]["completeness"] == 1.0
    assert 0.99 < by_name["total_charges"]["completeness"] < 1.0
    assert by_name["contract"]["string_constraints"]["domains"] == ["Month-to-month", "One year", "Two year"]
    assert constraints["monitoring_config"]["distribution_constraints"]["comparison_method"] == "Robust"


def test_baseline_is_deterministic(prep, tmp_path) -> None:
    run(prep, tmp_path / "a")
    run(prep, tmp_path / "b")
    for name in ("statistics.json", "constraints.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_a_split_without_a_feature_is_bad_input(prep, tmp_path, capsys) -> None:
    pd.read_csv(prep / "train" / "data.csv").drop(columns=["contract"]).to_csv(tmp_path / "train.csv", index=False)
    rc = baseline.main(["--input-data", str(tmp_path / "train.csv"), "--schema", str(SCHEMA),
                        "--output-dir", str(tmp_path / "out")])
    assert rc == 2
    assert "contract" in capsys.readouterr().err
