"""Schedule multipliers η_t and normalised weight decay (Appendix B of the paper).

Every schedule is a pure function of the fractional epoch e = t / (batches per epoch), so η_t is
updated every batch (T_cur is fractional, as in the paper). :func:`torch_scheduler` drives any
optimizer with it through ``torch.optim.lr_scheduler.LambdaLR`` (which sets ``lr = α·η_t`` and
keeps α in ``initial_lr``). We deliberately use LambdaLR over torch's CosineAnnealingWarmRestarts
/ MultiStepLR / CosineAnnealingLR: one driver for every schedule, closed forms rather than
recursive updates, fractional T_mult support, and the restart periods the trainer needs for λ;
the tests check that the numbers equal those torch schedulers' numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("fixed", "step-drop", "cosine", "warm-restarts")


def normalized_weight_decay(wd_norm: float, batch_size: int, n_train: int, epochs: float) -> float:
    """λ = λ_norm·√(b / (B·T)) (Appendix B.1).

    b the batch size, B the number of training points, T the epochs of the run — with warm
    restarts, the length T_i of the current restart period, so λ changes at every restart.
    """
    if batch_size <= 0 or n_train <= 0 or epochs <= 0:
        raise ValueError(
            f"batch_size, n_train and epochs must be > 0, got {batch_size}, {n_train}, {epochs}"
        )
    return wd_norm * math.sqrt(batch_size / (n_train * epochs))


def cosine_multiplier(t_cur: float, t_i: float, eta_min: float = 0.0, eta_max: float = 1.0) -> float:
    """Eq. (14): η = η_min + ½(η_max − η_min)(1 + cos(π·T_cur/T_i)); Eq. (15) with η_min=0, η_max=1."""
    return eta_min + 0.5 * (eta_max - eta_min) * (1.0 + math.cos(math.pi * t_cur / t_i))


@dataclass(frozen=True)
class Period:
    """The restart period holding an epoch: its index i, start epoch and length T_i."""

    index: int
    start: float
    length: float

    @property
    def end(self) -> float:
        return self.start + self.length


@dataclass(frozen=True)
class Schedule:
    """Base: one period covering the whole budget of ``budget`` epochs."""

    budget: float

    def multiplier(self, epoch: float) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def period(self, epoch: float) -> Period:
        """The period holding ``epoch``; its length is the T of the normalised weight decay."""
        return Period(0, 0.0, float(self.budget))

    def period_ends(self) -> list[float]:
        """Epochs (≤ budget) at which a period ends: the recommended solutions (SuppFigure 1)."""
        return [float(self.budget)]


@dataclass(frozen=True)
class Fixed(Schedule):
    """η_t = 1."""

    def multiplier(self, epoch: float) -> float:
        return 1.0


@dataclass(frozen=True)
class StepDrop(Schedule):
    """η_t = factor^k, k the number of milestones ≤ e (Figure 1: drops at 30, 60, 80 of 100).

    Equals torch's MultiStepLR(milestones·steps_per_epoch, gamma=factor) stepped per batch; for
    integer milestones, also MultiStepLR(milestones, gamma=factor) stepped once per epoch. A
    milestone inside an epoch (the default 0.3·budget is 4.5 for a budget of 15) drops η at that
    batch, but the per-epoch MultiStepLR never drops at it.
    """

    milestones: tuple[float, ...] = ()
    factor: float = 0.1

    def multiplier(self, epoch: float) -> float:
        return self.factor ** sum(1 for m in self.milestones if epoch >= m)


@dataclass(frozen=True)
class Cosine(Schedule):
    """Cosine annealing over the whole budget, Eq. (14) with T_i = budget (Eq. 15 by default)."""

    eta_min: float = 0.0
    eta_max: float = 1.0

    def multiplier(self, epoch: float) -> float:
        return cosine_multiplier(min(epoch, self.budget), self.budget, self.eta_min, self.eta_max)


@dataclass(frozen=True)
class WarmRestarts(Schedule):
    """Cosine annealing with warm restarts (SGDR; Appendix B.2, Eq. 14).

    Period i has length T_i = T_0·T_mult^i; when T_cur reaches T_i, T_cur ← 0 and η jumps back to
    η_max. With T_0 = 100, T_mult = 2, the periods end at epochs 100, 300, 700, 1500 (SuppFigure 1):
    η falls towards η_min as each period runs out and is back at η_max at those epochs.
    """

    t0: float = 10.0
    t_mult: float = 2.0
    eta_min: float = 0.0
    eta_max: float = 1.0

    def period(self, epoch: float) -> Period:
        index, start, length = 0, 0.0, float(self.t0)
        while epoch >= start + length:
            start += length
            length *= self.t_mult
            index += 1
        return Period(index, start, length)

    def multiplier(self, epoch: float) -> float:
        p = self.period(epoch)
        return cosine_multiplier(epoch - p.start, p.length, self.eta_min, self.eta_max)

    def period_ends(self) -> list[float]:
        ends, end, length = [], float(self.t0), float(self.t0)
        while end <= self.budget + 1e-9:
            ends.append(end)
            length *= self.t_mult
            end += length
        return ends


def _positive(name: str, value) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def make(name: str, budget: float, **params) -> Schedule:
    """Build a schedule by name for a run of ``budget`` epochs.

    ``"fixed"``; ``"step-drop"`` (``milestones``: epochs, default 30%/60%/80% of the budget as in
    Figure 1; ``factor``, default 0.1); ``"cosine"`` (``eta_min``, ``eta_max``);
    ``"warm-restarts"`` (``t0`` epochs, default 10% of the budget; ``t_mult`` ≥ 1, default 2;
    ``eta_min``, ``eta_max``). Raises ValueError naming the bad argument.
    """
    budget = _positive("budget", budget)
    allowed = {
        "fixed": set(),
        "step-drop": {"milestones", "factor"},
        "cosine": {"eta_min", "eta_max"},
        "warm-restarts": {"t0", "t_mult", "eta_min", "eta_max"},
    }
    if name not in allowed:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}; got {name!r}")
    unknown = set(params) - allowed[name]
    if unknown:
        raise ValueError(
            f"schedule {name!r} takes {sorted(allowed[name]) or 'no parameters'}; unknown: {sorted(unknown)}"
        )
    eta = {}
    for key in ("eta_min", "eta_max"):
        if key in params:
            value = params[key]
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{key} must be a finite number >= 0, got {value!r}")
            eta[key] = float(value)
    if eta.get("eta_min", 0.0) > eta.get("eta_max", 1.0):
        raise ValueError(f"eta_min must be <= eta_max, got {eta.get('eta_min')} > {eta.get('eta_max', 1.0)}")
    if name == "fixed":
        return Fixed(budget)
    if name == "cosine":
        return Cosine(budget, **eta)
    if name == "step-drop":
        milestones = params.get("milestones", [0.3 * budget, 0.6 * budget, 0.8 * budget])
        milestones = tuple(_positive("milestones[]", m) for m in milestones)
        if list(milestones) != sorted(milestones):
            raise ValueError(f"milestones must be increasing, got {list(milestones)}")
        factor = _positive("factor", params.get("factor", 0.1))
        return StepDrop(budget, milestones=milestones, factor=factor)
    t0 = _positive("t0", params.get("t0", max(budget / 10.0, 1.0)))
    t_mult = params.get("t_mult", 2.0)
    if not isinstance(t_mult, (int, float)) or not math.isfinite(t_mult) or t_mult < 1:
        raise ValueError(f"t_mult must be a finite number >= 1, got {t_mult!r}")
    return WarmRestarts(budget, t0=t0, t_mult=float(t_mult), **eta)


def torch_scheduler(optimizer: torch.optim.Optimizer, schedule: Schedule, steps_per_epoch: int):
    """A per-batch LambdaLR: after step t, ``lr = α·η(t / steps_per_epoch)``."""
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be > 0, got {steps_per_epoch}")
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_lambda=lambda step: schedule.multiplier(step / steps_per_epoch)
    )
