"""The report's plots (PNG) from the evaluation outputs of both models: ROC, lift, calibration, importance."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from training_jobs.evaluate import calibration_curve, lift_curve, roc_curve


def _fig() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def make_plots(preds: dict[str, pd.DataFrame], importance: dict[str, dict[str, float]], out: Path
               ) -> dict[str, Path]:
    """preds: model name -> frame with target, probability. Returns plot name -> PNG path."""
    plt = _fig()
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, df in preds.items():
        y, p = df["target"].to_numpy(), df["probability"].to_numpy()
        fpr, tpr = roc_curve(y, p, points=400)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC (test split)")
    ax.legend()
    paths["roc"] = _save(fig, out / "roc.png", plt)

    fig, ax = plt.subplots(figsize=(5, 4.2))
    width = 0.8 / max(len(preds), 1)
    for k, (name, df) in enumerate(preds.items()):
        lc = lift_curve(df["target"].to_numpy(), df["probability"].to_numpy())
        ax.bar(np.array([d["decile"] for d in lc]) + k * width - 0.4 + width / 2, [d["lift"] for d in lc],
               width=width, label=name)
    ax.axhline(1.0, color="k", lw=0.8, ls="--")
    ax.set(xlabel="Decile (1 = highest predicted risk)", ylabel="Lift", title="Lift by decile (test split)")
    ax.legend()
    paths["lift"] = _save(fig, out / "lift.png", plt)

    fig, ax = plt.subplots(figsize=(5, 4.2))
    for name, df in preds.items():
        cc = calibration_curve(df["target"].to_numpy(), df["probability"].to_numpy())
        ax.plot([c["mean_predicted"] for c in cc], [c["observed_rate"] for c in cc], "o-", label=name)
    ax.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax.set(xlabel="Mean predicted probability", ylabel="Observed churn rate",
           title="Calibration (test split)")
    ax.legend()
    paths["calibration"] = _save(fig, out / "calibration.png", plt)

    for name, imp in importance.items():
        items = sorted(imp.items(), key=lambda kv: kv[1])[-15:]
        if not items:
            continue
        fig, ax = plt.subplots(figsize=(6, 0.3 * len(items) + 1.2))
        ax.barh([k for k, _ in items], [v for _, v in items])
        ax.set(xlabel="ROC-AUC drop when the field is shuffled", title=f"Feature importance: {name}")
        fig.tight_layout()
        paths[f"importance_{name}"] = _save(fig, out / f"importance_{name}.png", plt)
    return paths


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
