"""SageMaker training job: seed ensemble of wide-and-deep tabular networks (PyTorch), Inferentia2-friendly.

    python -m training_jobs.train_pytorch --epochs 200 --batch-size 256 --learning-rate 0.003 --members 8

The --members networks are stacked into one module (training_jobs.nets.ChurnEnsemble): trained
together, each on its own minibatch order, and traced and served as one static-shape module.

Uses CUDA when available (CPU otherwise; deterministic on CPU for a given --seed). Early
stopping on validation log-loss with --patience; the best epoch's weights are kept, or, with
--refit-on-validation (default), the net is retrained on train+validation for that many epochs. Writes to
SM_MODEL_DIR: model_state.pt (state dict), transformer.json, schema.yaml, metadata.json
(architecture, threshold, metrics).

Managed spot: with a checkpoint directory (training_jobs.checkpoints) the job saves its whole state at the
end of an epoch at most every --checkpoint-seconds: the phase (early-stopping search or refit), the
stacked ensemble's weights (every member at once: they train together), the optimiser's moments, both
random generators (minibatch order, dropout), the best weights so far and the validation history. A
restarted job resumes from the last one and continues exactly as if it had never stopped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from training_jobs.checkpoints import CheckpointStore, resolve_dir, run_key, torch_bytes, torch_object
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
    hp(ap, "epochs", type=int, default=200)
    hp(ap, "batch-size", type=int, default=256)
    hp(ap, "learning-rate", type=float, default=3e-3)
    hp(ap, "weight-decay", type=float, default=1e-2)
    hp(ap, "hidden", type=int, default=16)
    hp(ap, "dropout", type=float, default=0.5)
    hp(ap, "patience", type=int, default=20)
    hp(
        ap,
        "members",
        type=int,
        default=8,
        help="networks in the seed ensemble (stacked, trained and traced as one module; logits averaged)",
    )
    hp(ap, "device", choices=["auto", "cpu", "cuda"], default="auto")
    hp(
        ap,
        "threads",
        type=int,
        default=1,
        help="CPU intra-op threads (0 = torch default); a small tabular net trains fastest on 1",
    )
    hp(
        ap,
        "checkpoint-seconds",
        type=float,
        default=60.0,
        help="least time between two checkpoints (0 = after every epoch); the result does not depend on it",
    )
    hp(
        ap,
        "checkpoint-dir",
        default=None,
        help="where checkpoints go (default /opt/ml/checkpoints when SageMaker provides it, else none)",
    )
    args = ap.parse_args(argv)
    positive(ap, args, ["epochs", "batch_size", "learning_rate", "hidden", "patience", "members"])
    if not 0 <= args.dropout < 1:
        ap.error(f"--dropout must be in [0, 1), got {args.dropout}")
    if args.threads < 0:
        ap.error(f"--threads must be >= 0, got {args.threads}")
    if args.weight_decay < 0:
        ap.error(f"--weight-decay must be >= 0, got {args.weight_decay}")
    if args.checkpoint_seconds < 0:
        ap.error(f"--checkpoint-seconds must be >= 0, got {args.checkpoint_seconds}")
    return args


JOB = "train_pytorch"
HYPERPARAMETERS = (
    "epochs",
    "batch_size",
    "learning_rate",
    "weight_decay",
    "hidden",
    "dropout",
    "patience",
    "members",
    "refit_on_validation",
)


def pick_device(choice: str) -> str:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise JobError("--device cuda requested but torch.cuda.is_available() is False")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


EpochHook = Callable[[dict[str, Any], bool], None]


def fit_network(
    x_tr: np.ndarray,
    y_tr: np.ndarray,
    x_va: np.ndarray | None,
    y_va: np.ndarray | None,
    args: Any,
    device: str,
    fixed_epochs: int | None = None,
    resume: dict[str, Any] | None = None,
    on_epoch: EpochHook | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train a `ChurnEnsemble` of args.members stacked networks, each on its own minibatch order.

    Early stopping on the ensemble's validation log-loss (the averaged logit is what is served);
    with `fixed_epochs` (a refit) no validation is used: exactly that many epochs, final weights kept.
    `resume` is a state `on_epoch(state, last)` was given after an earlier epoch: training continues from it."""
    import torch
    from torch import nn

    from training_jobs.nets import ChurnEnsemble

    torch.manual_seed(args.seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True)
        if args.threads > 0:
            torch.set_num_threads(args.threads)
    k = args.members
    net = ChurnEnsemble(x_tr.shape[1], args.hidden, args.dropout, k, seed=args.seed).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    xt = torch.from_numpy(x_tr).to(device)
    yt = torch.from_numpy(y_tr.astype(np.float32)).to(device)
    xv = None if x_va is None else torch.from_numpy(x_va).to(device)
    yv = None if y_va is None else torch.from_numpy(y_va.astype(np.float32)).to(device)
    gen = torch.Generator().manual_seed(args.seed)
    loss_fn = nn.functional.binary_cross_entropy_with_logits
    best_loss, best_state, best_epoch, bad = float("inf"), None, 0, 0
    history: list[float] = []
    epoch = 0
    if resume is not None:
        net.load_state_dict(resume["net"])
        opt.load_state_dict(resume["optimizer"])
        gen.set_state(resume["generator"])
        torch.set_rng_state(resume["rng"])
        if device == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"])
        epoch, best_loss, best_epoch, bad = resume["epoch"], resume["best_loss"], resume["best_epoch"], resume["bad"]
        best_state, history = resume["best_state"], list(resume["history"])

    def state() -> dict[str, Any]:
        snapshot = {
            "net": net.state_dict(),
            "optimizer": opt.state_dict(),
            "generator": gen.get_state(),
            "rng": torch.get_rng_state(),
            "epoch": epoch,
            "best_loss": best_loss,
            "best_epoch": best_epoch,
            "bad": bad,
            "best_state": best_state,
            "history": history,
        }
        if device == "cuda":
            snapshot["cuda_rng"] = torch.cuda.get_rng_state()
        return snapshot

    n = len(xt)
    # Drop the last partial batch: every step sees the same (static) batch shape.
    batch = min(args.batch_size, n)
    steps = n // batch
    total = fixed_epochs or args.epochs
    while epoch < total and (fixed_epochs is not None or bad < args.patience):
        net.train()
        perms = torch.stack([torch.randperm(n, generator=gen) for _ in range(k)]).to(device)
        for s in range(steps):
            idx = perms[:, s * batch : (s + 1) * batch]  # (members, batch)
            opt.zero_grad(set_to_none=True)
            # Mean over members: Adam is per-parameter, so each member trains as it would alone.
            loss = loss_fn(net.forward_members(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        epoch += 1
        if fixed_epochs is None:
            assert xv is not None and yv is not None
            net.eval()
            with torch.no_grad():
                vloss = float(loss_fn(net(xv), yv).item())
            history.append(vloss)
            if vloss < best_loss - 1e-5:
                best_loss, best_epoch, bad = vloss, epoch, 0
                best_state = {key: v.detach().cpu().clone() for key, v in net.state_dict().items()}
            else:
                bad += 1
        if on_epoch is not None:
            on_epoch(state(), epoch >= total or (fixed_epochs is None and bad >= args.patience))
    if fixed_epochs is not None:
        net = net.cpu()
        net.eval()
        return net, {"epochs_run": fixed_epochs}
    assert best_state is not None
    net = net.cpu()
    net.load_state_dict(best_state)
    net.eval()
    return net, {
        "best_epoch": best_epoch,
        "epochs_run": len(history),
        "best_validation_logloss": best_loss,
        "validation_logloss_history": history,
    }


class Checkpointer:
    """Saves the training state at most every --checkpoint-seconds (and at the end of each phase)."""

    def __init__(self, store: CheckpointStore, every_seconds: float):
        self.store = store
        self.every = every_seconds
        self.last = time.monotonic()

    def hook(self, phase: str, carry: dict[str, Any]) -> EpochHook | None:
        if not self.store.enabled:
            return None

        def save(state: dict[str, Any], last: bool) -> None:
            if last or time.monotonic() - self.last >= self.every:
                payload = {"phase": phase, "state": state, **carry}
                self.store.save({"phase": phase, "epoch": state["epoch"]}, {"payload": torch_bytes(payload)})
                self.last = time.monotonic()

        return save

    def latest(self) -> dict[str, Any] | None:
        found = self.store.latest()
        if found is None:
            return None
        payload: dict[str, Any] = torch_object(found.blobs["payload"])
        print(
            f"{JOB}: resuming from checkpoint ({payload['phase']}, epoch {payload['state']['epoch']})", file=sys.stderr
        )
        return payload


def predict(net: Any, x: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return torch.sigmoid(net(torch.from_numpy(x))).numpy().astype(np.float64)


def train(args: Any) -> dict[str, Any]:
    import torch

    data = load_training_data(args)
    device = pick_device(args.device)
    run = run_key(
        JOB,
        {**{k: getattr(args, k) for k in (*HYPERPARAMETERS, "seed")}, "device": device},
        (data.x_train, data.y_train, data.x_val, data.y_val),
    )
    checkpoints = Checkpointer(CheckpointStore(resolve_dir(args.checkpoint_dir), JOB, run), args.checkpoint_seconds)
    saved = checkpoints.latest()
    if saved is None or saved["phase"] == "search":
        net, info = fit_network(
            data.x_train,
            data.y_train,
            data.x_val,
            data.y_val,
            args,
            device,
            resume=None if saved is None else saved["state"],
            on_epoch=checkpoints.hook("search", {}),
        )
        search_state = {name: v.detach().clone() for name, v in net.state_dict().items()}
    else:  # the search finished before the interruption: its outcome is in the checkpoint
        from training_jobs.nets import ChurnEnsemble

        info, search_state = saved["info"], saved["search_state"]
        net = ChurnEnsemble(data.transformer.n_features, args.hidden, args.dropout, args.members)
        net.load_state_dict(search_state)
        net.eval()
    # Out-of-sample validation predictions: threshold, validation metrics, champion choice.
    p_val = predict(net, data.x_val)
    info["refit"] = {"enabled": bool(args.refit_on_validation)}
    if args.refit_on_validation:
        x_all, y_all = train_plus_validation(data)
        resume = saved["state"] if saved is not None and saved["phase"] == "refit" else None
        net, _ = fit_network(
            x_all,
            y_all,
            None,
            None,
            args,
            device,
            fixed_epochs=info["best_epoch"],
            resume=resume,
            on_epoch=checkpoints.hook("refit", {"info": info, "search_state": search_state}),
        )
        info["refit"].update(epochs=info["best_epoch"], rows=len(y_all))
    model_dir = Path(args.model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), model_dir / "model_state.pt")
    hyper = {k: getattr(args, k) for k in HYPERPARAMETERS}
    arch = {
        "n_features": data.transformer.n_features,
        "hidden": args.hidden,
        "dropout": args.dropout,
        "members": args.members,
    }
    return finish_artifact(
        args,
        data,
        "pytorch",
        predict(net, data.x_train),
        p_val,
        {
            "hyperparameters": hyper,
            "architecture": arch,
            "training": info,
            "device": device,
            "framework": {"torch": torch.__version__},
            "model_file": "model_state.pt",
        },
    )


def describe(args: argparse.Namespace) -> str:
    meta = train(args)
    return (
        f"best epoch {meta['training']['best_epoch']} on {meta['device']}, validation ROC-AUC "
        f"{meta['metrics']['validation_roc_auc']:.4f}, threshold {meta['decision_threshold']:.4f}"
    )


def main(argv: list[str] | None = None) -> int:
    return run_job("train_pytorch", parse_args, describe, argv)


if __name__ == "__main__":
    sys.exit(main())
