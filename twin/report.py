"""Plots (PNG) and a self-contained HTML report for a twin run."""

from __future__ import annotations

import base64
import html
import json
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


def write_html(summary: dict[str, Any], plots: dict[str, Path], path: Path) -> Path:
    rows = []
    for name, m in summary["models"].items():
        t = m["test"]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
            name + (" (champion)" if name == summary["champion"] else ""),
            f"{m['validation_roc_auc']:.4f}", f"{t['roc_auc']:.4f}", f"{t['pr_auc']:.4f}", f"{t['f1']:.4f}",
            f"{t['brier_score']:.4f}", f"{t['top_decile_lift']:.2f}", f"{t['top_decile_capture_rate']:.3f}",
            f"{m['decision_threshold']:.4f}")) + "</tr>")
    gate = summary["gate"]
    imgs = "".join(
        f"<figure><img alt='{html.escape(k)}' src='data:image/png;base64,"
        f"{base64.b64encode(p.read_bytes()).decode()}'/><figcaption>{html.escape(k)}</figcaption></figure>"
        for k, p in plots.items())
    timings = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.2f}</td></tr>"
                      for k, v in summary["timings_s"].items())
    name, version = html.escape(summary["schema"]["name"]), html.escape(summary["schema"]["version"])
    fingerprint = html.escape(summary["schema"]["fingerprint"])
    row_counts = html.escape(json.dumps(summary["rows"]))
    verdict = '<span class="pass">PASSED</span>' if gate["passed"] else '<span class="fail">FAILED</span>'
    doc = f"""<!doctype html><html><head><meta charset="utf-8"><title>Churn twin report</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}figure{{display:inline-block;margin:8px}}
.pass{{color:#070}}.fail{{color:#a00}}</style></head><body>
<h1>Churn model twin run: {name} v{version}</h1>
<p>Schema fingerprint {fingerprint}; rows: {row_counts}</p>
<h2>Quality gate: {verdict}</h2>
<p>{html.escape(gate['message'])}</p>
<h2>Models (test split unless stated)</h2>
<table><tr><th>model</th><th>validation ROC-AUC</th><th>ROC-AUC</th><th>PR-AUC</th><th>F1</th><th>Brier</th>
<th>top-decile lift</th><th>top-decile capture</th><th>threshold</th></tr>{''.join(rows)}</table>
<p>Served: {html.escape(json.dumps(summary.get('serving', {})))}</p>
<p>Compile: {html.escape(json.dumps(summary.get('compile', {})))}</p>
<h2>Plots</h2>{imgs}
<h2>Timings (s)</h2><table>{timings}</table>
<p>How to read: ROC closer to the top-left is better; lift in decile 1 is how many times more churners the
top 10% of scores hold than a random 10%; calibration points on the diagonal mean the probabilities can be
read as churn rates; importance is the drop in test ROC-AUC when one raw field is shuffled.</p>
</body></html>"""
    path.write_text(doc)
    return path
