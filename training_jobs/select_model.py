"""SageMaker Processing step: choose the candidate to ship and the numbers the quality gate compares.

    python -m training_jobs.select_model --xgboost DIR --pytorch DIR --champion DIR --has-champion true \
        --champion-model-type xgboost --pytorch-tolerance 0.005 --champion-tolerance 0.005 --output-dir DIR

Each DIR holds the evaluation.json `training_jobs.evaluate` wrote for that model on the same test split.
The rule (docs/pipeline.md): the PyTorch network ships, compiled for Inferentia2, when its test ROC-AUC is
within --pytorch-tolerance of the best candidate's; otherwise the best candidate ships with its CPU image.
The gate then needs the shipped candidate's ROC-AUC to reach the champion's ROC-AUC on this split minus
--champion-tolerance (the champion "floor"; 0 when there is no champion yet). A pipeline condition cannot
subtract, so this job writes the floor. Writes selection.json: ship {model, roc_auc, top_decile_lift,
serving}, best, candidates, champion {present, model_type, roc_auc, floor}, rule and a one-line reason.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job

PROCESSING = "/opt/ml/processing"
CANDIDATES = ("xgboost", "pytorch")
SERVING = {"pytorch": "inferentia2", "xgboost": "cpu"}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in (*CANDIDATES, "champion"):
        ap.add_argument(f"--{name}", default=f"{PROCESSING}/input/{name}", help=f"{name}'s evaluation.json dir")
    ap.add_argument("--has-champion", choices=["true", "false"], required=True)
    ap.add_argument("--champion-model-type", choices=list(CANDIDATES), required=True)
    ap.add_argument("--pytorch-tolerance", type=float, default=0.005)
    ap.add_argument("--champion-tolerance", type=float, default=0.005)
    ap.add_argument("--output-dir", default=f"{PROCESSING}/selection")
    args = ap.parse_args(argv)
    for name in ("pytorch_tolerance", "champion_tolerance"):
        if not 0.0 <= getattr(args, name) <= 0.1:
            ap.error(f"--{name.replace('_', '-')} must be in [0, 0.1], got {getattr(args, name)}")
    return args


def evaluation_metrics(directory: str) -> dict[str, float]:
    """ROC-AUC and top-decile lift on the test split, from an evaluation.json."""
    path = Path(directory) / "evaluation.json"
    try:
        report = json.loads(path.read_text())
        metrics = report["telecom_churn_metrics"]
        values = {name: metrics[name]["value"] for name in ("roc_auc", "top_decile_lift")}
    except FileNotFoundError:
        raise JobError(f"{path}: evaluation not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise JobError(f"{path}: not an evaluation report ({exc!r})") from None
    for name, value in values.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise JobError(f"{path}: telecom_churn_metrics.{name} is {value!r}, not a number")
    return {name: float(value) for name, value in values.items()}


def select(candidates: dict[str, dict[str, float]], champion: dict[str, float] | None, champion_type: str,
           pytorch_tolerance: float, champion_tolerance: float) -> dict[str, Any]:
    """The rule itself, on plain numbers (the twin can call it with the same evaluations)."""
    best = max(candidates, key=lambda n: (candidates[n]["roc_auc"], n == "pytorch"))
    gap = candidates[best]["roc_auc"] - candidates["pytorch"]["roc_auc"]
    ship = "pytorch" if gap <= pytorch_tolerance else best
    if ship == "pytorch" and best == "pytorch":
        reason = f"pytorch ships on Inferentia2: it has the best test ROC-AUC ({candidates['pytorch']['roc_auc']:.4f})"
    elif ship == "pytorch":
        reason = (f"pytorch ships on Inferentia2: its test ROC-AUC {candidates['pytorch']['roc_auc']:.4f} is within "
                  f"{pytorch_tolerance} of the best ({best} {candidates[best]['roc_auc']:.4f})")
    else:
        reason = (f"{best} ships on CPU: pytorch's test ROC-AUC {candidates['pytorch']['roc_auc']:.4f} is "
                  f"{gap:.4f} below the best ({best} {candidates[best]['roc_auc']:.4f}), more than {pytorch_tolerance}")
    floor = 0.0 if champion is None else round(champion["roc_auc"] - champion_tolerance, 6)
    if champion is not None:
        reason += (f"; champion ({champion_type}) scores {champion['roc_auc']:.4f} on this split, so the shipped "
                   f"model needs at least {floor:.4f}")
    else:
        reason += "; no champion yet"
    return {
        "ship": {"model": ship, **candidates[ship], "serving": SERVING[ship]},
        "best": {"model": best, "roc_auc": candidates[best]["roc_auc"]},
        "candidates": candidates,
        "champion": {"present": champion is not None, "model_type": champion_type if champion else None,
                     "roc_auc": champion["roc_auc"] if champion else None, "floor": floor},
        "rule": {"pytorch_tolerance": pytorch_tolerance, "champion_tolerance": champion_tolerance},
        "reason": reason,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    candidates = {name: evaluation_metrics(getattr(args, name)) for name in CANDIDATES}
    champion = evaluation_metrics(args.champion) if args.has_champion == "true" else None
    selection = select(candidates, champion, args.champion_model_type, args.pytorch_tolerance,
                       args.champion_tolerance)
    write_json(Path(args.output_dir) / "selection.json", selection)
    return selection


def describe(args: argparse.Namespace) -> str:
    return str(run(args)["reason"])


def main(argv: list[str] | None = None) -> int:
    return run_job("select_model", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
