"""Tabular churn network, shaped for AWS Inferentia2 (Neuron) compilation.

Static shapes, only Linear / LayerNorm / ReLU / Dropout, no data-dependent control flow.
A wide (linear) path plus a small deep path: on subscriber tables most of the signal is
additive, the deep path adds interactions (e.g. contract x tenure).
"""

from __future__ import annotations

import torch
from torch import nn


class ChurnNet(nn.Module):
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


class ChurnProbability(nn.Module):
    """What gets traced and served: features -> churn probability, shape (batch,)."""

    def __init__(self, net: ChurnNet):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


def build_net(config: dict[str, int | float]) -> ChurnNet:
    return ChurnNet(int(config["n_features"]), int(config["hidden"]), float(config["dropout"]))
