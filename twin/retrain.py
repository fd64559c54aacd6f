"""Retrain on the new labelled window, then champion against challenger on that window's test split.

The latest labelled window is week 2: the drifted records the endpoint scored, with their subscribers'
real churn outcomes (they arrive later, as the labels feed does). It is split in two halves, stratified on
the outcome, by subscriber (WINDOW_TEST_SHARE): one half joins the original training split, the other is
the test split on which every model is scored. Splits live under <run>/retrain/splits in preprocess's
format; validation and the fitted transformer are the original run's.

What is retrained: XGBoost only. The PyTorch network is ~half of the twin's time (train-pytorch's share of
summary.json's timings_s), and the model-choice rule only needs its ROC-AUC on the new split, so this run's
PyTorch candidate is re-scored there instead (a shortcut of the twin; the cloud pipeline retrains both).
Then training_jobs.select_model decides with the champion (the package that shipped in this run, now
approved) re-scored on the same split, and the Gate's rule (twin.gate.judge) says whether the challenger
may register: its ROC-AUC must reach the champion's minus the champion tolerance, and the thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from dataset.schema import DatasetSchema
from infra.config import EnvironmentConfig
from training_jobs.splits import SPLIT_FILE, read_table, write_split
from twin import gate as quality_gate
from twin.job_steps import Evaluation, Preprocessed, TrainedModel, evaluate, select_model, train
from twin.run_context import RunContext, stage_channel
from twin.step_record import CONDITION, MODEL_REGISTRY

if TYPE_CHECKING:
    from twin.register import Registration

WINDOW_TEST_SHARE = 0.5
RETRAINED = ("xgboost",)


@dataclass(frozen=True)
class Champion:
    model: TrainedModel  # the approved model of this run
    evaluation: Evaluation  # on this run's test split


def window_splits(
    schema: DatasetSchema, window: pd.DataFrame, outcome: np.ndarray, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train half, test half) of the labelled window, each stratified on the outcome; rows in split format."""
    frame = window[[schema.id_column, *schema.raw_feature_columns]].copy()
    frame[schema.target_column] = outcome.astype(int)
    rng = np.random.default_rng(seed)
    test_rows: list[int] = []
    for label in (0, 1):
        rows = np.flatnonzero(outcome == label)
        test_rows += rng.choice(rows, size=round(WINDOW_TEST_SHARE * rows.size), replace=False).tolist()
    is_test = np.zeros(len(frame), dtype=bool)
    is_test[test_rows] = True
    return frame[~is_test], frame[is_test]


def stage_splits(
    schema: DatasetSchema, prep: Preprocessed, window_train: pd.DataFrame, window_test: pd.DataFrame, out: Path
) -> Preprocessed:
    """The retrain's splits in preprocess's layout: train = original train + window half, test = other half."""
    original = read_table(prep.output / "train")
    write_split(pd.concat([original, window_train.astype(object)], ignore_index=True), out / "train")
    write_split(window_test, out / "test")
    for channel in ("validation", "transformer"):
        stage_channel(prep.output / channel, out / channel)
    summary = {
        "train": len(original) + len(window_train),
        "window_train": len(window_train),
        "test": len(window_test),
        "positive_rate_test": float(window_test[schema.target_column].mean()),
    }
    return Preprocessed(out, summary)


def retrain(
    ctx: RunContext,
    environment: EnvironmentConfig,
    prep: Preprocessed,
    window: pd.DataFrame,
    outcome: np.ndarray,
    champion: Champion,
    candidates: dict[str, TrainedModel],
    registration: Registration | None = None,
) -> dict[str, Any]:
    """Train the challenger, score it, the champion and the PyTorch candidate on the window's test split,
    select and judge; a challenger that may register is registered (MLflow, alias champion).
    Returns summary.json's "retrain" block."""
    root = ctx.out / "retrain"
    window_train, window_test = window_splits(ctx.schema, window, outcome, ctx.args.seed)
    splits = stage_splits(ctx.schema, prep, window_train, window_test, root / "splits")
    challenger = train(ctx, "xgboost", splits, root=root, prefix="retrain-")
    scored = {"xgboost": evaluate(ctx, challenger, splits, root=root, prefix="retrain-")}
    champion_eval = evaluate(ctx, champion.model, splits, root=root, prefix="retrain-", label="champion")
    # The rule's PyTorch slot: the champion itself when it is the network, else this run's network re-scored.
    scored["pytorch"] = (
        champion_eval
        if champion.model.name == "pytorch"
        else evaluate(ctx, candidates["pytorch"], splits, root=root, prefix="retrain-")
    )
    choice = environment.ml.pipeline.model_choice
    selection = select_model(ctx, scored, champion_eval, champion.model.name, choice, root=root, prefix="retrain-")
    verdict = ctx.run_local(
        "retrain-gate",
        CONDITION,
        "twin.gate.judge",
        lambda: quality_gate.judge(selection, environment.ml.quality_gate, f"{ctx.args.config}: ml.quality_gate"),
        lambda v: str(v["message"]),
    )
    decision = decide(selection, verdict, champion.model.name)
    if decision["registers"] and registration is not None:
        from twin.register import register_challenger

        decision["registry"] = ctx.run_local(
            "retrain-register",
            MODEL_REGISTRY,
            "twin.register.register_challenger",
            lambda: register_challenger(
                registration,
                ctx.schema.fingerprint,
                challenger,
                scored["xgboost"],
                "original training split + week 2's labelled half",
            ),
            lambda r: f"{r['registered_model']} version {r['version']}: approved, alias champion moved to it",
        )
    return {
        "window": {"rows": len(window), **splits.summary, "test_share": WINDOW_TEST_SHARE},
        "retrained": list(RETRAINED),
        "challenger": _metrics(scored["xgboost"]),
        "champion": {
            "model": champion.model.name,
            **_metrics(champion_eval),
            "on_original_test": _metrics(champion.evaluation),
        },
        "pytorch_rescored": _metrics(scored["pytorch"]),
        "selection": selection,
        "gate": verdict,
        "decision": decision,
        "split_file": str(root / "splits" / "test" / SPLIT_FILE),
    }


def _metrics(evaluation: Evaluation) -> dict[str, float]:
    t = evaluation.report["telecom_churn_metrics"]
    return {k: t[k]["value"] for k in ("roc_auc", "pr_auc", "top_decile_lift", "brier_score")}


def decide(selection: dict[str, Any], verdict: dict[str, Any], champion_type: str) -> dict[str, Any]:
    """register_challenger / keep_champion, with the reason in the rule's own numbers."""
    ship = selection["ship"]["model"]
    if ship not in RETRAINED:
        what = "the champion itself" if ship == champion_type else f"this run's {ship} candidate, not retrained"
        return {
            "outcome": "keep_champion",
            "registers": False,
            "reason": f"the rule ships {ship}, {what} ({selection['reason']}); "
            f"the champion ({champion_type}) keeps serving",
        }
    if not verdict["passed"]:
        return {
            "outcome": "keep_champion",
            "registers": False,
            "reason": f"challenger {ship} fails the gate: {verdict['message']}; the champion keeps serving",
        }
    return {
        "outcome": "register_challenger",
        "registers": True,
        "reason": f"challenger {ship} ROC-AUC {selection['ship']['roc_auc']:.4f} reaches the champion floor "
        f"{selection['champion']['floor']:.4f} (champion {champion_type} "
        f"{selection['champion']['roc_auc']:.4f} − tolerance) and the thresholds: it registers",
    }
