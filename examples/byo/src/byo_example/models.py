"""A residual MLP with LayerNorm for table rows: the kind of network Basin has no built-in for.

Basin calls ``resmlp(input_shape, num_classes)`` with the shape of one example, ``(20,)`` here, and
the number of classes, and trains what it returns. LayerNorm weights and all biases are 1-D, so
``decay = "matrices"`` leaves them undecayed and ``decay = "all"`` (the paper) decays them too.
"""

from __future__ import annotations

import math

from torch import nn


class Block(nn.Module):
    """x + W₂·ReLU(W₁·LayerNorm(x)) (pre-norm residual block)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc1 = nn.Linear(width, 2 * width)
        self.fc2 = nn.Linear(2 * width, width)

    def forward(self, x):
        return x + self.fc2(self.fc1(self.norm(x)).relu())


class ResMLP(nn.Module):
    def __init__(self, d_in: int, num_classes: int, width: int = 64, depth: int = 2) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, width)
        self.blocks = nn.Sequential(*(Block(width) for _ in range(depth)))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        return self.head(self.norm(self.blocks(self.inp(x.flatten(1)))))


def resmlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The model builder Basin calls: ``(input_shape, num_classes) -> nn.Module``."""
    return ResMLP(math.prod(input_shape), num_classes)
