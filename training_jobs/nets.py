"""Tabular churn networks, shaped for AWS Inferentia2 (Neuron) compilation.

Static shapes, only matrix products, LayerNorm, ReLU, Dropout and a mean; no data-dependent
control flow, so `torch.jit.trace` / `torch_neuronx.trace` see one fixed graph.

`ChurnEnsemble` (what train_pytorch trains): `members` wide-and-deep networks with their
weights stacked along a leading member axis and run as one batched pass (`torch.bmm`), their
logits averaged. A seed ensemble is the cheapest large win for a small tabular network: each
member alone is noisy (initialisation, minibatch order, dropout), the average is not, and
because the members are stacked the ensemble trains and serves as fast as a few members would
one after the other — it is traced as one module, with one static input shape.

Each member: a wide (linear) path plus a small deep path (Linear -> LayerNorm -> ReLU ->
Dropout -> Linear -> ReLU -> Dropout -> Linear). On subscriber tables most of the signal is
additive, the deep path adds interactions (e.g. contract x tenure). Categorical inputs arrive
one-hot from the feature transformer, so the first layer's rows for a categorical's block are
exactly that category's learned embedding (a Linear layer on a one-hot vector is an embedding
lookup); numeric inputs arrive median-imputed and standardised.

`ChurnNet` is the single-network architecture of earlier artefacts, kept so they still load.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class ChurnNet(nn.Module):
    """One wide-and-deep network (artefacts without `architecture.members`)."""

    def __init__(self, n_features: int, hidden: int = 32, dropout: float = 0.3):
        super().__init__()
        self.wide = nn.Linear(n_features, 1)
        self.deep = nn.Sequential(
            nn.Linear(n_features, hidden),
            nn.LayerNorm(hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (batch,)."""
        return (self.wide(x) + self.deep(x)).squeeze(1)


def _uniform(shape: tuple[int, ...], fan_in: int, gen: torch.Generator) -> nn.Parameter:
    """nn.Linear's default initialisation, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), for a stacked weight."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.Parameter((torch.rand(shape, generator=gen) * 2 - 1) * bound)


class ChurnEnsemble(nn.Module):
    """`members` wide-and-deep networks stacked along a member axis; logits averaged.

    `forward_members(x)` takes one minibatch per member, shape (members, batch, features), and
    returns member logits (members, batch): training gives every member its own minibatch order.
    `forward(x)` takes (batch, features) and returns the averaged logit, shape (batch,).
    """

    def __init__(self, n_features: int, hidden: int = 32, dropout: float = 0.3, members: int = 1,
                 seed: int = 0):
        super().__init__()
        if members < 1:
            raise ValueError(f"members must be >= 1, got {members}")
        k, f, h = members, n_features, hidden
        self.members = members
        self.hidden = hidden
        gen = torch.Generator().manual_seed(seed)
        self.wide_w = _uniform((k, f, 1), f, gen)
        self.wide_b = _uniform((k, 1, 1), f, gen)
        self.w1 = _uniform((k, f, h), f, gen)
        self.b1 = _uniform((k, 1, h), f, gen)
        self.ln_weight = nn.Parameter(torch.ones(k, 1, h))
        self.ln_bias = nn.Parameter(torch.zeros(k, 1, h))
        self.w2 = _uniform((k, h, h), h, gen)
        self.b2 = _uniform((k, 1, h), h, gen)
        self.w3 = _uniform((k, h, 1), h, gen)
        self.b3 = _uniform((k, 1, 1), h, gen)
        self.dropout = nn.Dropout(dropout)

    def forward_members(self, x: torch.Tensor) -> torch.Tensor:
        """(members, batch, features) -> member logits (members, batch)."""
        wide = torch.bmm(x, self.wide_w) + self.wide_b
        h = torch.bmm(x, self.w1) + self.b1
        h = nn.functional.layer_norm(h, [self.hidden]) * self.ln_weight + self.ln_bias
        h = self.dropout(torch.relu(h))
        h = self.dropout(torch.relu(torch.bmm(h, self.w2) + self.b2))
        deep = torch.bmm(h, self.w3) + self.b3
        return (wide + deep).squeeze(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, features) -> ensemble logit (batch,): the mean of the member logits."""
        xs = x.unsqueeze(0).expand(self.members, x.shape[0], x.shape[1])
        return self.forward_members(xs).mean(0)


class ChurnProbability(nn.Module):
    """What gets traced and served: features -> churn probability, shape (batch,)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def build_net(config: dict[str, Any]) -> nn.Module:
    """The network an artefact's metadata `architecture` describes (weights not loaded)."""
    if "members" not in config:
        return ChurnNet(int(config["n_features"]), int(config["hidden"]), float(config["dropout"]))
    return ChurnEnsemble(int(config["n_features"]), int(config["hidden"]), float(config["dropout"]),
                         int(config["members"]))
