"""The seed-ensemble network: stacked members are exactly independent wide-and-deep nets, the
ensemble traces (and scripts) to the eager result, and training is deterministic per seed."""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import pytest
import torch

from training_jobs import train_pytorch
from training_jobs.nets import ChurnEnsemble, ChurnNet, ChurnProbability, build_net


def _member_as_churn_net(ens: ChurnEnsemble, k: int) -> ChurnNet:
    """Member k's weights copied into the single-network architecture."""
    n_features, hidden = ens.w1.shape[1], ens.hidden
    net = ChurnNet(n_features, hidden, 0.0).eval()
    with torch.no_grad():
        net.wide.weight.copy_(ens.wide_w[k, :, 0][None, :])
        net.wide.bias.copy_(ens.wide_b[k, 0])
        net.deep[0].weight.copy_(ens.w1[k].T)
        net.deep[0].bias.copy_(ens.b1[k, 0])
        net.deep[1].weight.copy_(ens.ln_weight[k, 0])
        net.deep[1].bias.copy_(ens.ln_bias[k, 0])
        net.deep[4].weight.copy_(ens.w2[k].T)
        net.deep[4].bias.copy_(ens.b2[k, 0])
        net.deep[7].weight.copy_(ens.w3[k].T)
        net.deep[7].bias.copy_(ens.b3[k, 0])
    return net


def _trained_like(ens: ChurnEnsemble) -> ChurnEnsemble:
    """Move the LayerNorm affine off its (1, 0) initialisation so the comparison covers it."""
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        ens.ln_weight.add_(0.3 * torch.randn(ens.ln_weight.shape, generator=gen))
        ens.ln_bias.add_(0.3 * torch.randn(ens.ln_bias.shape, generator=gen))
    return ens.eval()


def test_each_member_is_a_wide_and_deep_net_and_the_ensemble_averages_their_logits():
    ens = _trained_like(ChurnEnsemble(11, hidden=6, dropout=0.5, members=3, seed=1))
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((20, 11)).astype(np.float32))
    with torch.no_grad():
        singles = torch.stack([_member_as_churn_net(ens, k)(x) for k in range(3)])
        assert torch.allclose(ens.forward_members(x.expand(3, 20, 11)), singles, atol=1e-5)
        assert torch.allclose(ens(x), singles.mean(0), atol=1e-5)
    assert len({tuple(ens.w1[k].flatten()[:5].tolist()) for k in range(3)}) == 3  # members start apart


def test_traced_and_scripted_ensemble_match_eager():
    model = ChurnProbability(_trained_like(ChurnEnsemble(30, hidden=16, dropout=0.5, members=8, seed=2))).eval()
    example = torch.zeros(64, 30)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
        scripted = torch.jit.script(model)  # what the twin's register step logs
    rng = np.random.default_rng(5)
    worst = 0.0
    with torch.no_grad():
        for scale in (1.0, 3.0, 10.0):
            x = torch.from_numpy((rng.standard_normal((64, 30)) * scale).astype(np.float32))
            eager = model(x)
            assert eager.shape == (64,)
            worst = max(worst, float((traced(x) - eager).abs().max()), float((scripted(x) - eager).abs().max()))
    assert worst <= 1e-6


def test_build_net_reads_old_and_new_architectures():
    assert isinstance(build_net({"n_features": 5, "hidden": 4, "dropout": 0.1}), ChurnNet)
    ens = build_net({"n_features": 5, "hidden": 4, "dropout": 0.1, "members": 3})
    assert isinstance(ens, ChurnEnsemble) and ens.members == 3 and ens.w1.shape == (3, 5, 4)
    with pytest.raises(ValueError, match="members must be >= 1"):
        ChurnEnsemble(5, members=0)


def _args(*argv: str) -> argparse.Namespace:
    return train_pytorch.parse_args(["--model-dir", "/unused", "--epochs", "6", "--patience", "3", *argv])


def _toy(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 2] * x[:, 3])))).astype(np.int64)
    return x, y


def test_training_is_deterministic_per_seed_and_members_differ():
    x, y = _toy(600, 0)
    xv, yv = _toy(200, 1)
    args = _args("--members", "4", "--batch-size", "64")
    a, info = train_pytorch.fit_network(x, y, xv, yv, args, "cpu")
    b, _ = train_pytorch.fit_network(x, y, xv, yv, args, "cpu")
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
    with torch.no_grad():
        members = a.forward_members(torch.from_numpy(xv).expand(4, 200, 6))
    assert members.shape == (4, 200)
    assert float(members.std(0).mean()) > 1e-3  # independent inits and minibatch orders
    assert 1 <= info["best_epoch"] <= 6
    p = train_pytorch.predict(a, xv)
    from training_jobs.metrics import roc_auc

    assert roc_auc(yv, p) > 0.75


def test_members_hyperparameter_is_validated_and_recorded():
    assert train_pytorch.parse_args([]).members == 8
    with pytest.raises(SystemExit):
        train_pytorch.parse_args(["--members", "0"])
