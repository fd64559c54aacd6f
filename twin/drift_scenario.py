"""Drifted batches built from real records: each scenario is data, and names the features it moves.

A scenario is a list of shifts applied to a copy of real feature records (the held-out split):
  scale     multiply a numeric column (e.g. a price rise: monthly and total charges together, so that
            total ≈ tenure × monthly stays true of every record)
  reassign  move a share of the rows holding one of `from_values` to the value `to` (e.g. one- and
            two-year contracts renewed as month-to-month), keeping every other column as it was
`expected` is the set of features the drift detector (training_jobs.drift) must flag for the scenario,
and no other: tests/unit/ml/test_twin_drift_scenario.py checks that on the real data of each schema.
Scenarios are declared per dataset schema (their columns are the schema's); the twin's week-2 batch
applies every scenario of the run's schema, and the detector must flag the union of their features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from dataset.schema import DatasetSchema
from training_jobs.errors import JobError


@dataclass(frozen=True)
class Shift:
    column: str
    kind: Literal["scale", "reassign"]
    factor: float = 1.0  # scale
    share: float = 0.0  # reassign: share of the eligible rows that move
    from_values: tuple[str, ...] = ()
    to: str = ""


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    shifts: tuple[Shift, ...]
    expected: frozenset[str]

    @property
    def columns(self) -> set[str]:
        return {s.column for s in self.shifts}


SCENARIOS: dict[str, tuple[Scenario, ...]] = {
    "ibm_telco_churn": (
        Scenario(
            "price-rise",
            "monthly charges +25% (total charges follow: total ≈ tenure × monthly)",
            (Shift("monthly_charges", "scale", factor=1.25), Shift("total_charges", "scale", factor=1.25)),
            # Total charges move too, but their long right tail keeps the CDF distance under Model
            # Monitor's threshold (0.03 on 1,056 held-out records, against 0.1): only monthly charges flag.
            frozenset({"monthly_charges"}),
        ),
        Scenario(
            "month-to-month",
            "half of the one- and two-year contracts renewed as month-to-month",
            (Shift("contract", "reassign", share=0.5, from_values=("One year", "Two year"), to="Month-to-month"),),
            frozenset({"contract"}),
        ),
        Scenario(
            "more-fiber",
            "60% of the DSL subscribers moved to fiber optic",
            (Shift("internet_service", "reassign", share=0.6, from_values=("DSL",), to="Fiber optic"),),
            frozenset({"internet_service"}),
        ),
    ),
    "synthetic_mobile_churn": (
        Scenario(
            "fee-rise", "monthly fee +50%", (Shift("monthly_fee", "scale", factor=1.5),), frozenset({"monthly_fee"})
        ),
        Scenario(
            "prepaid-shift",
            "60% of the postpaid and family-plan subscribers moved to prepaid",
            (Shift("plan", "reassign", share=0.6, from_values=("postpaid", "family"), to="prepaid"),),
            frozenset({"plan"}),
        ),
    ),
}


def scenarios_for(schema: DatasetSchema) -> tuple[Scenario, ...]:
    """The schema's scenarios, checked against its columns; JobError when it has none or one is wrong."""
    declared = SCENARIOS.get(schema.name)
    if not declared:
        raise JobError(
            f"schema '{schema.name}' ({schema.path}) has no drift scenario in twin/drift_scenario.py "
            f"(declared for {sorted(SCENARIOS)})"
        )
    seen: set[str] = set()
    for scenario in declared:
        _check(scenario, schema)
        if scenario.columns & seen:
            raise JobError(
                f"drift scenario '{scenario.name}': columns {sorted(scenario.columns & seen)} are "
                f"already moved by another scenario of '{schema.name}'"
            )
        seen |= scenario.columns
    return declared


def _check(scenario: Scenario, schema: DatasetSchema) -> None:
    where = f"drift scenario '{scenario.name}' of '{schema.name}'"
    for shift in scenario.shifts:
        if shift.column not in schema.raw_feature_columns:
            raise JobError(f"{where}: '{shift.column}' is not a raw feature of the schema")
        numeric = shift.column in schema.numeric_columns
        if shift.kind == "scale" and not (numeric and shift.factor > 0):
            raise JobError(f"{where}: scale needs a numeric column and a factor > 0 ({shift.column}, {shift.factor})")
        if shift.kind == "reassign":
            allowed = schema.column(shift.column).allowed
            unknown = [v for v in (*shift.from_values, shift.to) if allowed and v not in allowed]
            if numeric or not 0 < shift.share <= 1 or not shift.from_values or unknown:
                raise JobError(
                    f"{where}: reassign needs a categorical column, a share in (0, 1] and values "
                    f"the schema allows ({shift.column}: unknown {unknown})"
                )
    if not scenario.expected <= scenario.columns:
        raise JobError(
            f"{where}: expects {sorted(scenario.expected - scenario.columns)} to move, but no shift touches them"
        )


def apply(frame: pd.DataFrame, scenarios: tuple[Scenario, ...], seed: int) -> pd.DataFrame:
    """A drifted copy of `frame` (typed feature records, as read_split returns them); same rows, same ids."""
    out = frame.copy()
    rng = np.random.default_rng(seed)
    for scenario in scenarios:
        for shift in scenario.shifts:
            if shift.column not in out:
                raise JobError(f"drift scenario '{scenario.name}': the batch has no column '{shift.column}'")
            if shift.kind == "scale":
                out[shift.column] = (out[shift.column].astype(float) * shift.factor).round(2)
            else:
                eligible = np.flatnonzero(out[shift.column].isin(shift.from_values).to_numpy())
                chosen = rng.choice(eligible, size=round(shift.share * eligible.size), replace=False)
                column = out[shift.column].to_numpy(dtype=object, copy=True)
                column[chosen] = shift.to
                out[shift.column] = column
    return out


def expected_features(scenarios: tuple[Scenario, ...]) -> list[str]:
    return sorted(set().union(*(s.expected for s in scenarios)))
