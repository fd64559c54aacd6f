"""The quality gate: the candidate select-model chose to ship, against ml.quality_gate and the champion floor.

The thresholds come from the typed environment config (infra.config: `ml.quality_gate` of
--config), the same object the pipeline's condition step is built from.
"""

from __future__ import annotations

from typing import Any

from infra.config import QualityGateConfig
from twin.job_steps import Evaluation, TrainedModel

TEST_METRICS = ("roc_auc", "pr_auc", "f1", "brier_score", "top_decile_lift", "top_decile_capture_rate")


def summarise_models(models: dict[str, TrainedModel], evaluations: dict[str, Evaluation]) -> dict[str, Any]:
    """Per model: the validation ROC-AUC the champion is chosen by, threshold and test metrics."""
    out: dict[str, Any] = {}
    for name, model in models.items():
        report = evaluations[name].report
        t = report["telecom_churn_metrics"]
        out[name] = {
            "validation_roc_auc": model.metadata["metrics"]["validation_roc_auc"],
            "decision_threshold": model.metadata["decision_threshold"],
            "test": {k: t[k]["value"] for k in TEST_METRICS},
            "confusion_matrix": report["binary_classification_metrics"]["confusion_matrix"],
        }
    return out


def judge(selection: dict[str, Any], gate: QualityGateConfig, source: str) -> dict[str, Any]:
    """The pipeline's Gate condition on select-model's selection.json: the shipped candidate's test ROC-AUC and
    top-decile lift reach the thresholds, and its ROC-AUC reaches the champion floor (0 with no champion)."""
    ship, floor = selection["ship"], selection["champion"]["floor"]
    checks = {"roc_auc": (ship["roc_auc"], gate.min_roc_auc),
              "top_decile_lift": (ship["top_decile_lift"], gate.min_top_decile_lift),
              "champion floor": (ship["roc_auc"], floor)}
    failed = [f"{k} {v:.4f} < {lo}" for k, (v, lo) in checks.items() if not v >= lo]
    passed = not failed
    msg = (f"ships {ship['model']}: test ROC-AUC {ship['roc_auc']:.3f} (min {gate.min_roc_auc}"
           + (f", champion floor {floor:.4f}" if selection["champion"]["present"] else "")
           + f"), top-decile lift {ship['top_decile_lift']:.2f}× (min {gate.min_top_decile_lift}×)"
           + ("" if passed else f" -> FAILED: {'; '.join(failed)}"))
    return {"passed": passed, "message": msg, "thresholds": gate.model_dump(), "source": source,
            "champion": ship["model"], "selection": selection["reason"], "champion_floor": floor}
