"""SageMaker training job: regularised gradient-boosted trees (XGBoost, CPU `hist`).

    python -m training_jobs.train_xgboost --max-depth 2 --eta 0.03 --num-round 3000

Early stopping on the validation channel; with --refit-on-validation (default) the booster is
then retrained on train+validation for the early-stopped number of rounds.
Channels: train, validation (split CSVs from preprocess) and transformer. Writes to
SM_MODEL_DIR: model.json (XGBoost native format), transformer.json, schema.yaml,
metadata.json (model type, schema identity, decision threshold, metrics) and
feature_importance.json (total gain per model feature).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from training_jobs.artifacts import write_json
from training_jobs.errors import JobError
from training_jobs.runner import run_job
from training_jobs.train_common import (
    base_parser,
    finish_artifact,
    hp,
    load_training_data,
    positive,
    train_plus_validation,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = base_parser(__doc__ or "")
    hp(ap, "max-depth", type=int, default=2)
    hp(ap, "eta", type=float, default=0.03)
    hp(ap, "num-round", type=int, default=3000)
    hp(ap, "early-stopping-rounds", type=int, default=200)
    hp(ap, "subsample", type=float, default=0.8)
    hp(ap, "colsample-bytree", type=float, default=0.8)
    hp(ap, "min-child-weight", type=float, default=5.0)
    hp(ap, "reg-lambda", type=float, default=5.0)
    hp(ap, "reg-alpha", type=float, default=0.0)
    hp(ap, "nthread", type=int, default=1,
       help="CPU threads (0 = all cores); subscriber tables train fastest on 1, raise for large data")
    args = ap.parse_args(argv)
    positive(ap, args, ["max_depth", "eta", "num_round", "early_stopping_rounds", "subsample",
                        "colsample_bytree"])
    if args.subsample > 1 or args.colsample_bytree > 1:
        ap.error("--subsample and --colsample-bytree must be in (0, 1]")
    if args.min_child_weight < 0 or args.reg_lambda < 0 or args.reg_alpha < 0:
        ap.error("--min-child-weight, --reg-lambda and --reg-alpha must be >= 0")
    return args


def train(args: argparse.Namespace) -> dict[str, Any]:
    import xgboost as xgb

    data = load_training_data(args)
    params = {
        "objective": "binary:logistic", "eval_metric": ["logloss", "auc"], "tree_method": "hist",
        "max_depth": args.max_depth, "eta": args.eta, "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree, "min_child_weight": args.min_child_weight,
        "lambda": args.reg_lambda, "alpha": args.reg_alpha, "seed": args.seed,
    }
    if args.nthread < 0:
        raise JobError(f"--nthread must be >= 0, got {args.nthread}")
    params["nthread"] = args.nthread if args.nthread > 0 else (os.cpu_count() or 1)
    names = [f"f{i}" for i in range(data.transformer.n_features)]
    dtrain = xgb.DMatrix(data.x_train, label=data.y_train, feature_names=names)
    dval = xgb.DMatrix(data.x_val, label=data.y_val, feature_names=names)
    booster = xgb.train(params, dtrain, num_boost_round=args.num_round, evals=[(dval, "validation")],
                        early_stopping_rounds=args.early_stopping_rounds, verbose_eval=False)
    best = int(booster.best_iteration) + 1
    booster = booster[:best]  # keep only the trees early stopping chose
    # Out-of-sample validation predictions: threshold, validation metrics, champion choice.
    p_val = booster.inplace_predict(data.x_val)
    refit: dict[str, Any] = {"enabled": bool(args.refit_on_validation)}
    if args.refit_on_validation:
        x_all, y_all = train_plus_validation(data)
        booster = xgb.train(params, xgb.DMatrix(x_all, label=y_all, feature_names=names),
                            num_boost_round=best, verbose_eval=False)
        refit.update(rounds=best, rows=len(y_all))
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "model.json"))
    p_train = booster.inplace_predict(data.x_train)
    gain = booster.get_score(importance_type="total_gain")
    importance = {data.transformer.feature_names[int(k[1:])]: float(sum(v) if isinstance(v, list) else v)
                  for k, v in gain.items()}
    write_json(model_dir / "feature_importance.json", dict(sorted(importance.items(), key=lambda kv: -kv[1])))
    hyper = {k: getattr(args, k) for k in ("max_depth", "eta", "num_round", "early_stopping_rounds",
                                           "subsample", "colsample_bytree", "min_child_weight",
                                           "reg_lambda", "reg_alpha", "refit_on_validation")}
    return finish_artifact(args, data, "xgboost", np.asarray(p_train), np.asarray(p_val),
                           {"hyperparameters": hyper, "best_iteration": best, "refit": refit,
                            "framework": {"xgboost": xgb.__version__}, "model_file": "model.json"})


def describe(args: argparse.Namespace) -> str:
    meta = train(args)
    return (f"{meta['best_iteration']} trees, validation ROC-AUC {meta['metrics']['validation_roc_auc']:.4f}, "
            f"threshold {meta['decision_threshold']:.4f}")


def main(argv: list[str] | None = None) -> int:
    return run_job("train_xgboost", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
