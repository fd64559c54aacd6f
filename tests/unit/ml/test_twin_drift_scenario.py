"""Drift scenarios on the real IBM Telco data: each moves exactly the features it declares, as the drift
detector (training_jobs.drift) sees them against the training split's baseline; the week-2 batch built from
all of them flags their union; bad declarations fail with a message naming scenario and column."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.unit.ml.conftest import SCHEMA
from training_jobs import baseline, drift
from training_jobs.errors import JobError
from training_jobs.splits import read_split
from twin import drift_scenario
from twin.cli import REQUESTS_PER_WEEK
from twin.drift_scenario import Scenario, Shift
from twin.monitor_loop import week_sample


@pytest.fixture(scope="module")
def baseline_dir(prep, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("scenario-baseline")
    assert baseline.main(["--input-data", str(prep / "train"), "--schema", str(SCHEMA), "--output-dir", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def held_out(prep, schema) -> pd.DataFrame:
    frame, _ = read_split(prep / "test", schema)
    return frame[schema.raw_feature_columns]


def flagged(baseline_dir: Path, frame: pd.DataFrame, schema) -> set[str]:
    return set(drift.detect(baseline_dir, frame, schema).violating_features)


def test_the_held_out_split_itself_flags_nothing(baseline_dir, held_out, schema) -> None:
    assert flagged(baseline_dir, held_out, schema) == set()


@pytest.mark.parametrize("scenario", drift_scenario.SCENARIOS["ibm_telco_churn"], ids=lambda s: s.name)
def test_each_scenario_moves_exactly_its_declared_features(baseline_dir, held_out, schema, scenario) -> None:
    drifted = drift_scenario.apply(held_out, (scenario,), seed=42)
    assert flagged(baseline_dir, drifted, schema) == set(scenario.expected)
    changed = {c for c in held_out if not held_out[c].equals(drifted[c])}
    assert changed == scenario.columns  # nothing else was touched
    assert drifted.index.equals(held_out.index)


def test_the_week_two_batch_flags_the_union(baseline_dir, held_out, schema) -> None:
    """At the twin's default requests per week (a sample of the held-out split), as the loop sends it."""
    # The raw export's 11 blank total charges are filled by the lake's schema rule before the twin sees them.
    complete = held_out.dropna()
    sample, _ = week_sample(complete, np.zeros(len(complete)), REQUESTS_PER_WEEK, seed=42)
    assert flagged(baseline_dir, sample, schema) == set()
    scenarios = drift_scenario.scenarios_for(schema)
    drifted = drift_scenario.apply(sample, scenarios, seed=42)
    assert flagged(baseline_dir, drifted, schema) == set(drift_scenario.expected_features(scenarios))
    assert drift_scenario.expected_features(scenarios) == ["contract", "internet_service", "monthly_charges"]


def test_price_rise_keeps_total_charges_consistent(held_out) -> None:
    price = drift_scenario.SCENARIOS["ibm_telco_churn"][0]
    drifted = drift_scenario.apply(held_out, (price,), seed=1)
    ratio = (drifted["total_charges"] / drifted["monthly_charges"]) / (
        held_out["total_charges"] / held_out["monthly_charges"]
    )
    assert ratio.dropna().between(0.99, 1.01).all()


def test_reassign_is_deterministic_and_moves_the_declared_share(held_out) -> None:
    m2m = drift_scenario.SCENARIOS["ibm_telco_churn"][1]
    a = drift_scenario.apply(held_out, (m2m,), seed=3)
    assert a.equals(drift_scenario.apply(held_out, (m2m,), seed=3))
    eligible = held_out["contract"].isin(["One year", "Two year"]).sum()
    moved = (a["contract"] != held_out["contract"]).sum()
    assert moved == round(0.5 * eligible)


@pytest.mark.parametrize(
    ("shift", "message"),
    [
        (Shift("loyalty_tier", "scale", factor=1.1), "'loyalty_tier' is not a raw feature"),
        (Shift("contract", "scale", factor=1.1), "scale needs a numeric column"),
        (Shift("contract", "reassign", share=0.5, from_values=("One year",), to="Ten year"), "unknown ['Ten year']"),
        (Shift("tenure", "reassign", share=0.5, from_values=("1",), to="2"), "reassign needs a categorical column"),
    ],
)
def test_a_bad_declaration_names_scenario_and_column(schema, monkeypatch, shift, message) -> None:
    bad = Scenario("bad", "bad", (shift,), frozenset({shift.column}))
    monkeypatch.setitem(drift_scenario.SCENARIOS, "ibm_telco_churn", (bad,))
    with pytest.raises(JobError, match="drift scenario 'bad' of 'ibm_telco_churn'") as err:
        drift_scenario.scenarios_for(schema)
    assert message in str(err.value)


def test_overlapping_scenarios_and_unknown_schema_are_refused(schema, monkeypatch) -> None:
    price = drift_scenario.SCENARIOS["ibm_telco_churn"][0]
    monkeypatch.setitem(drift_scenario.SCENARIOS, "ibm_telco_churn", (price, replace(price, name="again")))
    with pytest.raises(JobError, match=r"'again': columns .* already moved"):
        drift_scenario.scenarios_for(schema)
    monkeypatch.delitem(drift_scenario.SCENARIOS, "ibm_telco_churn")
    with pytest.raises(JobError, match="has no drift scenario"):
        drift_scenario.scenarios_for(schema)
