"""SageMaker training job: regularised gradient-boosted trees (XGBoost, CPU `hist`).

    python -m training_jobs.train_xgboost --max-depth 2 --eta 0.03 --num-round 3000

Early stopping on the validation channel's ROC-AUC; with --refit-on-validation (default) the booster is
then retrained on train+validation for the early-stopped number of rounds.
Channels: train, validation (split CSVs from preprocess, one file or several shards) and transformer.
Writes to SM_MODEL_DIR: model.json (XGBoost native format), transformer.json, schema.yaml,
metadata.json (model type, schema identity, decision threshold, metrics) and
feature_importance.json (total gain per model feature).

Boosting runs in segments of --checkpoint-rounds rounds; each segment starts from the booster the last
one saved, seeded with the seed plus its first round. With managed spot (a checkpoint directory, see
training_jobs.checkpoints) the state is saved after every segment, and a restarted job resumes from the
last one with the same result as a run that was never interrupted (the booster, the validation history
that early stopping reads, and which phase it was in).

Distributed: with more than one host in SM_HOSTS every instance trains on its own shard of the train
channel (ShardedByS3Key) through xgboost's collective (training_jobs.xgb_cluster); the validation channel
is replicated, and the refit adds validation rows rank::world to each worker so each row counts once.
Rank 0 writes the model and the checkpoints.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training_jobs import xgb_cluster
from training_jobs.artifacts import write_json
from training_jobs.checkpoints import CheckpointStore, resolve_dir, run_key
from training_jobs.runner import run_job
from training_jobs.train_common import (
    TrainingData,
    base_parser,
    finish_artifact,
    hp,
    load_training_data,
    positive,
)

JOB = "train_xgboost"
_METRIC = re.compile(r"validation-auc:(\S+)")


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
    hp(
        ap,
        "nthread",
        type=int,
        default=1,
        help="CPU threads (0 = all cores); subscriber tables train fastest on 1, raise for large data",
    )
    hp(
        ap,
        "checkpoint-rounds",
        type=int,
        default=100,
        help="rounds per boosting segment: a checkpoint after each (the model depends on it through the "
        "per-segment seed)",
    )
    hp(
        ap,
        "checkpoint-dir",
        default=None,
        help="where checkpoints go (default /opt/ml/checkpoints when SageMaker provides it, else none)",
    )
    hp(ap, "hosts", default=os.environ.get("SM_HOSTS"), help="JSON list of the job's hosts (SM_HOSTS)")
    hp(ap, "current-host", default=os.environ.get("SM_CURRENT_HOST"), help="this host (SM_CURRENT_HOST)")
    hp(
        ap,
        "tracker-port",
        type=int,
        default=xgb_cluster.TRACKER_PORT,
        help="port of the collective's tracker on the first host (distributed training only)",
    )
    args = ap.parse_args(argv)
    positive(
        ap,
        args,
        [
            "max_depth",
            "eta",
            "num_round",
            "early_stopping_rounds",
            "subsample",
            "colsample_bytree",
            "checkpoint_rounds",
        ],
    )
    if args.subsample > 1 or args.colsample_bytree > 1:
        ap.error("--subsample and --colsample-bytree must be in (0, 1]")
    if args.min_child_weight < 0 or args.reg_lambda < 0 or args.reg_alpha < 0:
        ap.error("--min-child-weight, --reg-lambda and --reg-alpha must be >= 0")
    if args.nthread < 0:
        ap.error(f"--nthread must be >= 0, got {args.nthread}")
    return args


HYPERPARAMETERS = (
    "max_depth",
    "eta",
    "num_round",
    "early_stopping_rounds",
    "subsample",
    "colsample_bytree",
    "min_child_weight",
    "reg_lambda",
    "reg_alpha",
    "refit_on_validation",
    "checkpoint_rounds",
)


def booster_params(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "tree_method": "hist",
        "max_depth": args.max_depth,
        "eta": args.eta,
        "subsample": args.subsample,
        "colsample_bytree": args.colsample_bytree,
        "min_child_weight": args.min_child_weight,
        "lambda": args.reg_lambda,
        "alpha": args.reg_alpha,
        "seed": args.seed,
        "nthread": args.nthread if args.nthread > 0 else (os.cpu_count() or 1),
    }


def best_round(history: list[float]) -> int:
    """Index of the best validation ROC-AUC: its first occurrence (a later tie is no improvement)."""
    return int(np.argmax(history))


def early_stopped(history: list[float], patience: int) -> bool:
    """xgboost's EarlyStopping rule: `patience` rounds without a strictly better score."""
    return bool(history) and len(history) - 1 - best_round(history) >= patience


@dataclass
class Progress:
    """Everything a resumed run needs: the phase, the boosters so far and the validation history."""

    phase: str = "search"  # search (early stopping) -> refit (train+validation, fixed rounds)
    history: list[float] | None = None  # validation ROC-AUC per search round
    search: bytes | None = None  # search booster (UBJSON)
    refit: bytes | None = None  # refit booster so far
    refit_rounds: int = 0

    def meta(self) -> dict[str, Any]:
        return {"phase": self.phase, "history": self.history or [], "refit_rounds": self.refit_rounds}

    def blobs(self) -> dict[str, bytes]:
        return {k: v for k, v in (("search", self.search), ("refit", self.refit)) if v is not None}

    @classmethod
    def restore(cls, meta: dict[str, Any], blobs: dict[str, bytes]) -> Progress:
        return cls(
            meta["phase"], list(meta["history"]), blobs.get("search"), blobs.get("refit"), int(meta["refit_rounds"])
        )


class Trainer:
    """Segmented boosting with checkpoints; the same on one process and on every worker of a cluster."""

    def __init__(self, args: argparse.Namespace, store: CheckpointStore):
        self.args = args
        self.params = booster_params(args)
        self.store = store

    def _segment(
        self,
        dtrain: Any,
        raw: bytes | None,
        start: int,
        stop: int,
        dval: Any = None,
        history: list[float] | None = None,
    ) -> bytes:
        """Rounds start..stop-1 from the booster `raw`; appends each round's validation ROC-AUC to
        `history` and stops early when the rule says so."""
        import xgboost as xgb

        booster = xgb.Booster(
            {**self.params, "seed": self.args.seed + start},
            [dtrain],
            model_file=None if raw is None else bytearray(raw),
        )
        for i in range(start, stop):
            booster.update(dtrain, iteration=i)
            if history is not None:
                found = _METRIC.search(booster.eval_set([(dval, "validation")], iteration=i))
                assert found is not None
                history.append(float(found.group(1)))
                if early_stopped(history, self.args.early_stopping_rounds):
                    break
        return bytes(booster.save_raw("ubj"))

    def _checkpoint(self, progress: Progress) -> None:
        if xgb_cluster.rank() == 0:
            self.store.save(progress.meta(), progress.blobs())

    def search(self, progress: Progress, dtrain: Any, dval: Any) -> Progress:
        history = progress.history if progress.history is not None else []
        step = self.args.checkpoint_rounds
        while len(history) < self.args.num_round and not early_stopped(history, self.args.early_stopping_rounds):
            start = len(history)
            progress.search = self._segment(
                dtrain, progress.search, start, min(start + step, self.args.num_round), dval, history
            )
            progress.history = history
            self._checkpoint(progress)
        return progress

    def refit(self, progress: Progress, dtrain: Any, rounds: int) -> Progress:
        progress.phase = "refit"
        step = self.args.checkpoint_rounds
        while progress.refit_rounds < rounds:
            start = progress.refit_rounds
            progress.refit = self._segment(dtrain, progress.refit, start, min(start + step, rounds))
            progress.refit_rounds = min(start + step, rounds)
            self._checkpoint(progress)
        return progress


def refit_rows(data: TrainingData) -> tuple[np.ndarray, np.ndarray]:
    """This worker's train rows plus its share of the (replicated) validation rows."""
    rank, world = xgb_cluster.rank(), xgb_cluster.world_size()
    return (
        np.concatenate([data.x_train, data.x_val[rank::world]]),
        np.concatenate([data.y_train, data.y_val[rank::world]]),
    )


def _resume(store: CheckpointStore) -> Progress:
    """Rank 0's newest checkpoint of this run, on every worker."""
    found = store.latest() if xgb_cluster.rank() == 0 else None
    payload: tuple[dict[str, Any], dict[str, bytes]] | None = None if found is None else (found.meta, found.blobs)
    shared = xgb_cluster.broadcast_from_rank0(payload)
    if shared is None:
        return Progress()
    meta, blobs = shared
    print(
        f"{JOB}: resuming from checkpoint ({meta['phase']}, {len(meta['history'])} search rounds, "
        f"{meta['refit_rounds']} refit rounds)",
        file=sys.stderr,
    )
    return Progress.restore(meta, blobs)


def _run_key(args: argparse.Namespace, data: TrainingData) -> str:
    local = run_key(JOB, {}, (data.x_train, data.y_train, data.x_val, data.y_val))
    settings = {k: getattr(args, k) for k in (*HYPERPARAMETERS, "seed", "nthread")}
    return run_key(JOB, {**settings, "workers": xgb_cluster.gather(local)})


def train(args: argparse.Namespace) -> dict[str, Any]:
    cluster = xgb_cluster.cluster_from(args.hosts, args.current_host, args.tracker_port)
    data = load_training_data(args)
    with xgb_cluster.communicator(cluster):
        return _train(args, data)


def _train(args: argparse.Namespace, data: TrainingData) -> dict[str, Any]:
    import xgboost as xgb

    store = CheckpointStore(resolve_dir(args.checkpoint_dir), JOB, _run_key(args, data))
    names = [f"f{i}" for i in range(data.transformer.n_features)]
    dval = xgb.DMatrix(data.x_val, label=data.y_val, feature_names=names)
    trainer = Trainer(args, store)
    progress = _resume(store)
    if progress.phase == "search":
        progress = trainer.search(progress, xgb.DMatrix(data.x_train, label=data.y_train, feature_names=names), dval)
    history = progress.history or []
    best = best_round(history) + 1
    assert progress.search is not None
    early = xgb.Booster(model_file=bytearray(progress.search))[:best]  # the trees early stopping chose
    # Out-of-sample validation predictions: threshold, validation metrics, champion choice.
    p_val = early.inplace_predict(data.x_val)
    booster = early
    refit: dict[str, Any] = {"enabled": bool(args.refit_on_validation)}
    if args.refit_on_validation:
        x_all, y_all = refit_rows(data)
        progress = trainer.refit(progress, xgb.DMatrix(x_all, label=y_all, feature_names=names), best)
        assert progress.refit is not None
        booster = xgb.Booster(model_file=bytearray(progress.refit))
        total = xgb_cluster.gather(len(y_all))
        refit.update(rounds=best, rows=int(sum(total)))
    p_train = booster.inplace_predict(data.x_train)
    gain = booster.get_score(importance_type="total_gain")
    importance = {
        data.transformer.feature_names[int(k[1:])]: float(sum(v) if isinstance(v, list) else v) for k, v in gain.items()
    }
    hyper = {k: getattr(args, k) for k in HYPERPARAMETERS}
    train_rows = int(sum(xgb_cluster.gather(len(data.y_train))))
    extra = {
        "hyperparameters": hyper,
        "best_iteration": best,
        "refit": refit,
        "validation_auc_history_length": len(history),
        # Across all workers; train_* metrics are rank 0's shard's (distributed.rank0_train_rows).
        "rows": {"train": train_rows, "validation": len(data.y_val)},
        "distributed": {"workers": xgb_cluster.world_size(), "rank0_train_rows": len(data.y_train)},
        "framework": {"xgboost": xgb.__version__},
        "model_file": "model.json",
    }
    if xgb_cluster.rank() != 0:
        return {
            "best_iteration": best,
            "metrics": {"validation_roc_auc": float("nan")},
            "decision_threshold": float("nan"),
            "rank": xgb_cluster.rank(),
        }
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "model.json"))
    write_json(model_dir / "feature_importance.json", dict(sorted(importance.items(), key=lambda kv: -kv[1])))
    return finish_artifact(args, data, "xgboost", np.asarray(p_train), np.asarray(p_val), extra)


def describe(args: argparse.Namespace) -> str:
    meta = train(args)
    if meta.get("rank"):
        return f"worker rank {meta['rank']} done ({meta['best_iteration']} trees); rank 0 wrote the model"
    return (
        f"{meta['best_iteration']} trees, validation ROC-AUC {meta['metrics']['validation_roc_auc']:.4f}, "
        f"threshold {meta['decision_threshold']:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_job(JOB, parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
