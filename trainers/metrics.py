"""What a run minimises and reports as its value: classification error, test loss, or the user's loss.

``metric`` (RunConfig, the spec, ``basin train --metric``):

``"error"``      (default) train on mean cross-entropy; the value is the test error, a fraction in
                 [0, 1]. Chance = 1 − 1/C (what a diverged run records); diverged = a training batch
                 loss that is non-finite or above ``DIVERGENCE_FACTOR``·ln C (chance cross-entropy is
                 ln C). The paper's measure.
``"test_loss"``  train on mean cross-entropy; the value is the mean test cross-entropy.
``"package.module:function"``  a loss function ``fn(model, batch) -> losses`` for models without
                 classes (regression, autoencoders, …): ``batch = (x, y)`` is a batch of the data set
                 on the run's device, ``model`` the network (call it, ``model(x)``); it returns the
                 per-example losses, a float tensor of shape (N,). Basin trains on their mean and
                 reports their mean on the test set. Errors are not computed (recorded as None).

For both loss metrics: **chance** = the mean test loss of the untrained network (the run's
initial weights, in eval mode) — what a diverged run records as its value; **diverged** = a
training batch loss that is non-finite or above ``DIVERGENCE_FACTOR``·|chance|. Losses are meant
to be ≥ 0 (a mean of per-example losses, as MSE or cross-entropy are). Every epoch also reports
``test_se``, the standard error of the test-set mean: sd of the per-example losses / √n.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from trainers import registry

ERROR, TEST_LOSS = "error", "test_loss"
BUILTIN = (ERROR, TEST_LOSS)
DIVERGENCE_FACTOR = 100.0  # a batch loss above 100 × chance (ln C, or the untrained loss) counts as diverged

LossFn = Callable[[torch.nn.Module, tuple[torch.Tensor, torch.Tensor]], torch.Tensor]


def check(metric, field: str = "metric") -> str:
    """``metric`` if it is ``"error"``, ``"test_loss"`` or a well-formed reference (nothing imported)."""
    if isinstance(metric, str) and (metric in BUILTIN or registry.is_reference(metric)):
        if registry.is_reference(metric):
            registry.check_reference(metric, field)
        return metric
    raise registry.RegistryError(f"{field}: must be {' or '.join(BUILTIN)} or a loss function 'package.module:function'"
                                 f"(model, batch) -> per-example losses; got {metric!r}")


def is_error(metric: str) -> bool:
    """Whether the value of a run is a classification error in [0, 1] (else a loss)."""
    return metric == ERROR


def has_classes(metric: str) -> bool:
    """Whether runs of ``metric`` train on cross-entropy over logits (so errors exist)."""
    return metric in BUILTIN


def loss_function(metric: str) -> LossFn | None:
    """The user's loss function of a reference metric, imported; None for the built-in metrics."""
    return None if has_classes(metric) else registry.resolve("metric", metric)


def example_losses(fn: LossFn, model, x: torch.Tensor, y: torch.Tensor, metric: str) -> torch.Tensor:
    """``fn(model, (x, y))`` checked to be per-example losses of shape (N,) (float32 under autocast)."""
    out = fn(model, (x, y))
    if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0],) or not out.is_floating_point():
        what = f"a tensor of shape {tuple(out.shape)} ({out.dtype})" if isinstance(out, torch.Tensor) else \
            f"a {type(out).__name__}"
        raise registry.RegistryError(f"metric: {metric!r} returned {what} for a batch of {x.shape[0]}; it must return "
                                     f"the per-example losses, a float tensor of shape ({x.shape[0]},) "
                                     "(e.g. reduction='none', then a mean over the other axes)")
    return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out


def cross_entropy_losses(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy of the built-in metrics."""
    return F.cross_entropy(logits, y, reduction="none")


def loss_bound(chance_loss: float) -> float:
    """The divergence bound of a loss metric: DIVERGENCE_FACTOR·|chance| (no bound when chance is 0
    or not finite: then only a non-finite loss diverges)."""
    return DIVERGENCE_FACTOR * abs(chance_loss) if math.isfinite(chance_loss) and chance_loss else math.inf


def standard_error(loss_sum: float, square_sum: float, n: int) -> float:
    """sd/√n of n per-example losses from their sum and sum of squares (sample sd; 0 for n < 2)."""
    if n < 2:
        return 0.0
    var = max(0.0, (square_sum - loss_sum * loss_sum / n) / (n - 1))
    return math.sqrt(var / n)


__all__ = ["BUILTIN", "DIVERGENCE_FACTOR", "ERROR", "TEST_LOSS", "check", "cross_entropy_losses", "example_losses",
           "has_classes", "is_error", "loss_bound", "loss_function", "standard_error"]
