"""Binary-classification metrics on numpy arrays: ROC-AUC, F1 threshold and top-decile lift."""

from __future__ import annotations

import numpy as np


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """Mann-Whitney ROC-AUC with tie correction (numpy only)."""
    y = np.asarray(y).astype(bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(p), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    """Probability threshold that maximises F1 on (validation) data."""
    order = np.argsort(-p, kind="mergesort")
    ys, ps = np.asarray(y)[order], np.asarray(p)[order]
    tp = np.cumsum(ys)
    k = np.arange(1, len(ys) + 1)
    total = ys.sum()
    if total == 0:
        return 0.5
    f1 = 2 * tp / (k + total)
    # Only cut between distinct scores.
    distinct = np.r_[ps[1:] != ps[:-1], True]
    f1 = np.where(distinct, f1, -1)
    best = int(np.argmax(f1))
    nxt = ps[best + 1] if best + 1 < len(ps) else ps[best] - 1e-6
    return float((ps[best] + nxt) / 2.0)


def top_decile(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    n = len(y)
    k = max(1, int(np.ceil(n * 0.1)))
    top = np.argsort(-p, kind="mergesort")[:k]
    base = float(np.mean(y)) if n else 0.0
    rate = float(np.mean(y[top]))
    total = float(np.sum(y))
    return {"top_decile_lift": rate / base if base > 0 else float("nan"),
            "top_decile_capture_rate": float(np.sum(y[top])) / total if total > 0 else float("nan"),
            "top_decile_churn_rate": rate, "base_churn_rate": base}


def basic_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    pred = p >= threshold
    yb = np.asarray(y).astype(bool)
    tp = int((pred & yb).sum())
    fp = int((pred & ~yb).sum())
    fn = int((~pred & yb).sum())
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
    return {"roc_auc": roc_auc(y, p), "f1": f1, "precision": prec, "recall": rec,
            "brier": float(np.mean((p - y) ** 2)), **top_decile(y, p)}
