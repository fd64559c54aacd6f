"""The quality gate: pick the champion, compare its test metrics with ml.quality_gate.

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


def choose_champion(models_summary: dict[str, Any]) -> str:
    """Highest validation ROC-AUC (out of sample for both models); a tie goes to PyTorch (Inferentia)."""
    return max(models_summary, key=lambda n: (models_summary[n]["validation_roc_auc"], n == "pytorch"))


def judge(champion: str, models_summary: dict[str, Any], gate: QualityGateConfig, source: str) -> dict[str, Any]:
    test = models_summary[champion]["test"]
    checks = {"roc_auc": (test["roc_auc"], gate.min_roc_auc),
              "top_decile_lift": (test["top_decile_lift"], gate.min_top_decile_lift)}
    failed = [f"{k} {v:.4f} < {lo}" for k, (v, lo) in checks.items() if not v >= lo]
    passed = not failed
    msg = (f"champion {champion}: test ROC-AUC {test['roc_auc']:.3f} (min {gate.min_roc_auc}), "
           f"top-decile lift {test['top_decile_lift']:.2f}× (min {gate.min_top_decile_lift}×)"
           + ("" if passed else f" -> FAILED: {'; '.join(failed)}"))
    return {"passed": passed, "message": msg, "thresholds": gate.model_dump(), "source": source,
            "champion": champion, "selection": "highest validation ROC-AUC"}
