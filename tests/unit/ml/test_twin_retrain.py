"""The retrain's window split and its decision, on plain numbers and a small frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from infra.config import QualityGateConfig
from training_jobs.select_model import select
from twin.gate import judge
from twin.retrain import decide, window_splits

GATE = QualityGateConfig(min_roc_auc=0.8, min_top_decile_lift=2.0)


def decision(challenger: float, champion: float, champion_type: str, pytorch: float | None = None) -> dict:
    candidates = {
        "xgboost": {"roc_auc": challenger, "top_decile_lift": 3.0},
        "pytorch": {"roc_auc": champion if pytorch is None else pytorch, "top_decile_lift": 3.0},
    }
    selection = select(candidates, {"roc_auc": champion, "top_decile_lift": 3.0}, champion_type, 0.005, 0.005)
    return decide(selection, judge(selection, GATE, "test"), champion_type)


def test_challenger_registers_only_when_the_rule_ships_it_and_it_clears_the_floor() -> None:
    won = decision(0.87, 0.86, "pytorch")
    assert won["outcome"] == "register_challenger" and won["registers"] is True
    assert "reaches the champion floor 0.8550" in won["reason"]
    close = decision(0.864, 0.86, "pytorch")  # within the PyTorch tolerance: the network (the champion) ships
    assert close["outcome"] == "keep_champion" and "the rule ships pytorch, the champion itself" in close["reason"]


def test_a_worse_challenger_against_an_xgboost_champion_fails_the_floor() -> None:
    lost = decision(0.84, 0.86, "xgboost", pytorch=0.83)
    assert lost["outcome"] == "keep_champion" and lost["registers"] is False
    assert "fails the gate" in lost["reason"] and "champion floor 0.8400 < 0.855" in lost["reason"]


def test_pytorch_candidate_shipping_against_an_xgboost_champion_keeps_the_champion() -> None:
    kept = decision(0.85, 0.85, "xgboost", pytorch=0.851)
    assert kept["outcome"] == "keep_champion"
    assert "this run's pytorch candidate, not retrained" in kept["reason"]


def test_window_splits_halve_each_outcome_and_keep_every_row_once(schema) -> None:
    rng = np.random.default_rng(0)
    n = 101
    frame = pd.DataFrame({c: ["x"] * n for c in [schema.id_column, *schema.raw_feature_columns]})
    frame[schema.id_column] = [f"s{i}" for i in range(n)]
    outcome = (rng.random(n) < 0.3).astype(int)
    train, test = window_splits(schema, frame, outcome, seed=1)
    assert sorted([*train[schema.id_column], *test[schema.id_column]]) == sorted(frame[schema.id_column])
    assert test[schema.target_column].sum() == round(0.5 * outcome.sum())
    assert len(test) == round(0.5 * outcome.sum()) + round(0.5 * (n - outcome.sum()))
    same, _ = window_splits(schema, frame, outcome, seed=1)
    assert same[schema.id_column].tolist() == train[schema.id_column].tolist()


@pytest.mark.parametrize("n", [0, 1])
def test_a_tiny_window_still_splits(schema, n) -> None:
    frame = pd.DataFrame({c: ["x"] * n for c in [schema.id_column, *schema.raw_feature_columns]})
    train, test = window_splits(schema, frame, np.ones(n, dtype=int), seed=1)
    assert len(train) + len(test) == n
