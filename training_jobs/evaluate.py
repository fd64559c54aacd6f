"""SageMaker Processing step: score the held-out test split and write evaluation.json.

    python -m training_jobs.evaluate --model-dir /opt/ml/processing/model \
        --test-data /opt/ml/processing/test --output-dir /opt/ml/processing/evaluation

--model-dir: a model artefact directory or the model.tar.gz SageMaker hands over.
Writes evaluation.json in the SageMaker model-quality format (the `binary_classification_metrics`
block Model Monitor and the model registry use: `{value, standard_deviation}` entries, a nested
actual->predicted confusion matrix, ROC and precision-recall curves), and, separately, a
`telecom_churn_metrics` block (PR-AUC, Brier score, lift and capture in the top decile, lift and
calibration curves, permutation importance per raw field). Standard deviations follow Model
Monitor: 5 random 80% samples when there are at least 200 rows, otherwise "NaN".
Also writes predictions.csv (id, target, probability) for reports, and baseline_predictions.csv
(probability only, no subscriber id): the registered package names it (`baseline_predictions_uri`) and the
deployer copies it to the endpoint's current baseline, where the drift job reads it for prediction drift.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serving.transform import TransformError
from training_jobs.artifacts import load_model, resolve_model_dir, write_json
from training_jobs.errors import JobError
from training_jobs.metrics import best_f1_threshold, roc_auc, top_decile
from training_jobs.runner import run_job
from training_jobs.splits import read_split

PROCESSING = "/opt/ml/processing"
BASELINE_PREDICTIONS = "baseline_predictions.csv"
MIN_ROWS_FOR_STD = 200


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=f"{PROCESSING}/model")
    ap.add_argument("--test-data", default=f"{PROCESSING}/test")
    ap.add_argument("--output-dir", default=f"{PROCESSING}/evaluation")
    ap.add_argument("--threshold", type=float, default=None,
                    help="override the decision threshold recorded in metadata.json")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-importance", action="store_true", help="skip permutation importance")
    args = ap.parse_args(argv)
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        ap.error(f"--threshold must be in [0, 1], got {args.threshold}")
    return args


# --------------------------------------------------------------------------- metric functions
def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    total = ys.sum()
    if total == 0:
        return float("nan")
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    last = np.r_[ps[1:] != ps[:-1], True]  # evaluate only at distinct thresholds
    precision, recall = tp[last] / k[last], tp[last] / total
    prev_recall = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - prev_recall) * precision))


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    pred = p >= threshold
    yb = y.astype(bool)
    return {"tp": int((pred & yb).sum()), "fp": int((pred & ~yb).sum()),
            "fn": int((~pred & yb).sum()), "tn": int((~pred & ~yb).sum())}


def _safe(a: float, b: float) -> float:
    return a / b if b else 0.0


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    c = confusion(y, p, threshold)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    n = tp + fp + fn + tn
    prec, rec = _safe(tp, tp + fp), _safe(tp, tp + fn)

    def fbeta(b: float, pr: float, rc: float) -> float:
        return _safe((1 + b * b) * pr * rc, b * b * pr + rc)

    # Best constant classifier: always predict the majority class (Model Monitor's definition).
    pos_rate = _safe(tp + fn, n)
    const_positive = pos_rate >= 0.5
    const_prec = pos_rate if const_positive else 0.0
    const_rec = 1.0 if const_positive else 0.0
    out = {
        "recall": rec, "precision": prec, "accuracy": _safe(tp + tn, n),
        "recall_best_constant_classifier": const_rec,
        "precision_best_constant_classifier": const_prec,
        "accuracy_best_constant_classifier": max(pos_rate, 1 - pos_rate),
        "true_positive_rate": rec, "true_negative_rate": _safe(tn, tn + fp),
        "false_positive_rate": _safe(fp, fp + tn), "false_negative_rate": _safe(fn, fn + tp),
        "auc": roc_auc(y, p),
        "f0_5": fbeta(0.5, prec, rec), "f1": fbeta(1.0, prec, rec), "f2": fbeta(2.0, prec, rec),
        "f0_5_best_constant_classifier": fbeta(0.5, const_prec, const_rec),
        "f1_best_constant_classifier": fbeta(1.0, const_prec, const_rec),
        "f2_best_constant_classifier": fbeta(2.0, const_prec, const_rec),
    }
    return out


def telecom_point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    td = top_decile(y, p)
    return {"roc_auc": roc_auc(y, p), "pr_auc": average_precision(y, p),
            "brier_score": float(np.mean((p - y) ** 2)), "f1": point_metrics(y, p, threshold)["f1"],
            "top_decile_lift": td["top_decile_lift"],
            "top_decile_capture_rate": td["top_decile_capture_rate"]}


def with_std(fn: Any, y: np.ndarray, p: np.ndarray, threshold: float, seed: int) -> dict[str, dict[str, Any]]:
    base = fn(y, p, threshold)
    stds: dict[str, Any] = {k: "NaN" for k in base}
    if len(y) >= MIN_ROWS_FOR_STD:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(5):
            idx = rng.choice(len(y), size=int(0.8 * len(y)), replace=False)
            samples.append(fn(y[idx], p[idx], threshold))
        stds = {k: float(np.std([s[k] for s in samples])) for k in base}
    return {k: {"value": _num(v), "standard_deviation": _num(stds[k])} for k, v in base.items()}


def _num(v: Any) -> Any:
    if isinstance(v, float) and not np.isfinite(v):
        return "NaN"
    return v


def roc_curve(y: np.ndarray, p: np.ndarray, points: int = 101) -> tuple[list[float], list[float]]:
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    last = np.r_[ps[1:] != ps[:-1], True]
    tps, fps = np.cumsum(ys)[last], np.cumsum(1 - ys)[last]
    tpr = np.r_[0.0, tps / max(ys.sum(), 1)]
    fpr = np.r_[0.0, fps / max((1 - ys).sum(), 1)]
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    return fpr[keep].tolist(), tpr[keep].tolist()


def pr_curve(y: np.ndarray, p: np.ndarray, points: int = 101) -> tuple[list[float], list[float]]:
    order = np.argsort(-p, kind="mergesort")
    ys, ps = y[order], p[order]
    last = np.r_[ps[1:] != ps[:-1], True]
    tp = np.cumsum(ys)[last]
    k = np.arange(1, len(ys) + 1)[last]
    precision, recall = tp / k, tp / max(ys.sum(), 1)
    keep = np.unique(np.linspace(0, len(precision) - 1, min(points, len(precision))).round().astype(int))
    return precision[keep].tolist(), recall[keep].tolist()


def lift_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    order = np.argsort(-p, kind="mergesort")
    base = max(float(y.mean()), 1e-12)
    out = []
    seen = 0
    for i, chunk in enumerate(np.array_split(order, bins), start=1):
        if len(chunk) == 0:
            continue
        seen += len(chunk)
        rate = float(y[chunk].mean())
        out.append({"decile": i, "rows": len(chunk), "churn_rate": rate, "lift": rate / base,
                    "cumulative_capture": float(y[order[:seen]].sum() / max(y.sum(), 1))})
    return out


def calibration_curve(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        m = idx == b
        if m.any():
            out.append({"bin_low": float(edges[b]), "bin_high": float(edges[b + 1]), "rows": int(m.sum()),
                        "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean())})
    return out


def permutation_importance(model: Any, frame: pd.DataFrame, y: np.ndarray, base_auc: float,
                           seed: int) -> dict[str, float]:
    """Drop in ROC-AUC when one raw field is shuffled (model-agnostic, per raw field)."""
    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    for field in model.transformer.input_fields:
        shuffled = frame.copy()
        shuffled[field] = frame[field].to_numpy()[rng.permutation(len(frame))]
        out[field] = float(base_auc - roc_auc(y, model.predict_proba(shuffled)))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = resolve_model_dir(args.model_dir, Path(tmp) / "model")
        model = load_model(model_dir)
        frame, y = read_split(args.test_data, model.schema)
        if len(y) == 0:
            raise JobError(f"{args.test_data}: test data has no rows")
        try:
            p = model.predict_proba(frame)
        except TransformError as exc:
            raise JobError(f"{args.test_data}: {exc}") from None
        meta = model.metadata
        threshold = float(args.threshold if args.threshold is not None else meta["decision_threshold"])
        c = confusion(y, p, threshold)
        fpr, tpr = roc_curve(y, p)
        precisions, recalls = pr_curve(y, p)
        bcm: dict[str, Any] = {
            "confusion_matrix": {"0": {"0": c["tn"], "1": c["fp"]}, "1": {"0": c["fn"], "1": c["tp"]}},
            **with_std(point_metrics, y, p, threshold, args.seed),
            "receiver_operating_characteristic_curve": {"false_positive_rates": fpr,
                                                        "true_positive_rates": tpr},
            "precision_recall_curve": {"precisions": precisions, "recalls": recalls},
        }
        telecom = with_std(telecom_point_metrics, y, p, threshold, args.seed)
        auc = roc_auc(y, p)
        importance = {} if args.no_importance else permutation_importance(model, frame, y, auc, args.seed)
        report: dict[str, Any] = {
            "binary_classification_metrics": bcm,
            "telecom_churn_metrics": {
                **telecom,
                "decision_threshold": threshold,
                "threshold_source": "--threshold" if args.threshold is not None else "metadata.json",
                "f1_optimal_threshold_on_test": best_f1_threshold(y, p),
                "top_decile": top_decile(y, p),
                "lift_curve": lift_curve(y, p),
                "calibration_curve": calibration_curve(y, p),
                "permutation_importance_roc_auc_drop": importance,
            },
            "model": {"model_type": meta["model_type"], "schema": meta["schema"],
                      "labels": meta.get("labels"), "test_rows": len(y),
                      "test_positive_rate": float(y.mean())},
        }
        out = Path(args.output_dir)
        write_json(out / "evaluation.json", report)
        schema = model.schema
        pd.DataFrame({schema.id_column: frame[schema.id_column].to_numpy(), "target": y,
                      "probability": p}).to_csv(out / "predictions.csv", index=False)
        pd.DataFrame({"probability": p}).to_csv(out / BASELINE_PREDICTIONS, index=False)
        return report


def describe(args: argparse.Namespace) -> str:
    report = evaluate(args)
    t = report["telecom_churn_metrics"]
    return (f"{report['model']['model_type']}: ROC-AUC {t['roc_auc']['value']:.4f}, "
            f"PR-AUC {t['pr_auc']['value']:.4f}, F1 {t['f1']['value']:.4f}, "
            f"top-decile lift {t['top_decile_lift']['value']:.2f}")


def main(argv: list[str] | None = None) -> int:
    return run_job("evaluate", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
