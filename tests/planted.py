"""The one planted-sweep writer of the test suite: synthetic trials with known answers, recorded
through storage's real write API (nothing mocked), with curves of either of two shapes.

``write_panel`` records one study's grid (α × λ_norm × T × seed) with the final test error given by a
function of (α, λ_norm, T, seed); points can be made to diverge (chance error, short lists), fail
(FAIL trials) or be left out (missing cells). ``curves="simple"`` gives short monotone curves that
end at the value; ``curves="realistic"`` curves shaped like real runs (loss falling with the
epochs, warm restarts visible). ``record_sweep`` writes several (optimizer, schedule) studies at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import storage
from trainers.schedules import normalized_weight_decay

Pred = Callable[[float, float, int, int], bool]  # (α, λ_norm, T, seed) -> bool
BATCH, N_TRAIN, N_TEST, CLASSES = 128, 50_000, 1000, 10
CHANCE = 1.0 - 1.0 / CLASSES


def study_attrs(*, num_classes: int = CLASSES, grid_size: int = 0, **overrides) -> dict:
    """A complete set of study user attrs (:data:`storage.schema.STUDY_ATTRS`) for tests."""
    attrs = {
        "dataset": "synthetic",
        "model": "none",
        "batch_size": BATCH,
        "n_train": N_TRAIN,
        "n_test": N_TEST,
        "n_val": 0,
        "num_classes": num_classes,
        "chance": 1.0 - 1.0 / num_classes,
        "schedule_params": {},
        "grid_size": grid_size,
        "spec": {"synthetic": True},
        "basin_version": "test",
    }
    attrs.update(overrides)
    return attrs


def raw_wd(wd_norm: float, budget: int, batch_size: int = BATCH, n_train: int = N_TRAIN) -> float:
    """λ = λ_norm·√(b/(B·T)), by the trainers' own definition."""
    return normalized_weight_decay(wd_norm, batch_size, n_train, budget)


def trial_attrs(error: float, budget: int, wd: float, *, diverged: bool = False, seconds: float = 1.0) -> dict:
    """Simple curves: a complete set of trial user attrs for a run whose test error ends at ``error``."""
    curve = [error + 0.3 / epoch for epoch in range(1, budget)] + [error]
    return {
        "train_loss": [2.0 * c for c in curve],
        "train_error": [0.9 * c for c in curve],
        "test_error": curve,
        "test_loss": [2.2 * c for c in curve],
        "eta": [0.5 * (1 + math.cos(math.pi * e / budget)) for e in range(1, budget + 1)],
        "wd_per_epoch": [wd] * budget,
        "diverged": diverged,
        "wd": wd,
        "seconds": seconds,
        "node": "127.0.0.1",
        "device": "cpu",
        "code_version": "test",
        "restart_epochs": [budget],
    }


def restart_epochs(schedule: str, budget: int) -> list[int]:
    """Epochs ending a restart period: T₀ = 1, T_mult = 2 under warm restarts (1, 3, 7, …)."""
    if schedule != "warm-restarts":
        return [budget]
    out, end, period = [], 1, 1
    while end <= budget:
        out.append(end)
        period *= 2
        end += period
    return out


def realistic_attrs(final: float, schedule: str, budget: int, wd: float, *, diverged: bool) -> tuple[float, dict]:
    """Realistic curves: (value, user attrs) of a run as the sweep driver records it; with warm
    restarts the value is the error at the end of the last complete period, near ``final``."""
    if diverged:
        attrs = {"train_loss": [2.3, 1e6], "train_error": [0.9, 0.9], "test_error": [0.9, final],
                 "test_loss": [2.3, 1e6], "eta": [1.0, 0.9], "wd_per_epoch": [wd, wd]}
        value = final
    else:
        restarts = restart_epochs(schedule, budget)
        test, train, eta = [], [], []
        for epoch in range(1, budget + 1):
            trend = math.exp(-3.0 * epoch / budget)
            if schedule == "warm-restarts":  # each period ends lower; the schedule restarts high
                start = max([0] + [r for r in restarts if r < epoch])
                period = next((r for r in restarts if r >= epoch), budget) - start
                phase = (epoch - start) / max(period, 1)
                err = final + (0.5 - final) * (trend - math.exp(-3.0 * max(restarts) / budget)) + 0.04 * (1 - phase)
            else:
                phase = epoch / budget
                err = final + (0.6 - final) * trend * (1 - phase)
            test.append(round(min(err, 0.9), 6))
            bump = 0.08 * (1 - phase) if schedule == "warm-restarts" else 0.0
            train.append(round(2.0 * final + 2.2 * trend + bump, 6))
            eta.append(round(0.5 * (1 + math.cos(math.pi * phase)), 6))
        if schedule == "warm-restarts":
            final = test[max(restarts) - 1]  # the error at the end of the last complete period
        else:
            test[-1] = final
        attrs = {"train_loss": train, "train_error": [round(0.8 * t / 2.3, 6) for t in train], "test_error": test,
                 "test_loss": [round(2.0 * t, 6) for t in test], "eta": eta, "wd_per_epoch": [wd] * budget}
        value = final
    attrs.update(diverged=diverged, wd=wd, seconds=3.5, node="127.0.0.1", device="cpu", code_version="test",
                 restart_epochs=restart_epochs(schedule, budget) if not diverged else [])
    return value, attrs


def write_panel(
    rdb,
    *,
    sweep: str,
    optimizer: str,
    schedule: str,
    lrs: Iterable[float],
    wd_norms: Iterable[float],
    budgets: Iterable[int],
    seeds: Iterable[int] = (0,),
    error: Callable[[float, float, int, int], float],
    diverged: Pred | None = None,
    fail: Pred | None = None,
    skip: Pred | None = None,
    curves: str = "simple",
    num_classes: int = CLASSES,
    train_final: float | None = None,
    **study_overrides,
) -> int:
    """Record the grid lrs × wd_norms × budgets × seeds of one study; returns the trials recorded.

    ``error(α, λ_norm, T, seed)`` is the final test error; where ``diverged(...)`` the run records
    chance error 1 − 1/C with ``diverged=True``; ``fail(...)`` records a FAIL trial; ``skip(...)``
    leaves the point out (a missing cell, as in a sweep still running). ``train_final``: the final
    train error of every run (default: shaped like the test curve).
    """
    lrs, wd_norms, budgets, seeds = (list(v) for v in (lrs, wd_norms, budgets, seeds))
    grid_size = len(lrs) * len(wd_norms) * len(budgets) * len(seeds)
    attrs = study_attrs(num_classes=num_classes, grid_size=grid_size, **study_overrides)
    study = storage.ensure_study(rdb, sweep=sweep, optimizer=optimizer, schedule=schedule, attrs=attrs)
    dists = storage.grid_distributions(lrs, wd_norms, budgets, seeds)
    chance = attrs["chance"]
    n = 0
    for lr in lrs:
        for wd_norm in wd_norms:
            for budget in budgets:
                for seed in seeds:
                    args = (lr, wd_norm, budget, seed)
                    if skip is not None and skip(*args):
                        continue
                    n += 1
                    point = storage.GridPoint(optimizer, schedule, lr, wd_norm, budget, seed)
                    if fail is not None and fail(*args):
                        storage.record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                                             user_attrs={"error": "RuntimeError: synthetic failure"})
                        continue
                    div = diverged is not None and diverged(*args)
                    wd = raw_wd(wd_norm, budget, attrs["batch_size"], attrs["n_train"])
                    final = chance if div else min(max(float(error(*args)), 0.0), 1.0)
                    if curves == "simple":
                        value, user_attrs = final, trial_attrs(final, budget, wd, diverged=div)
                    else:
                        value, user_attrs = realistic_attrs(final, schedule, budget, wd, diverged=div)
                    if train_final is not None and not div:
                        user_attrs["train_error"][-1] = train_final
                    storage.record_trial(study, point, dists, state="COMPLETE", value=value,
                                         intermediate={e: v for e, v in enumerate(user_attrs["test_error"], 1)},
                                         user_attrs=user_attrs)
    return n


def record_sweep(rdb, sweep: str, *, optimizers: Iterable[str], schedules: Iterable[str],
                 error: Callable[[str, float, float, int, int], float], diverge=None, fail=None, skip=None,
                 **grid) -> int:
    """:func:`write_panel` for every (optimizer, schedule); the callables take the optimizer first."""

    def bind(fn, optimizer):
        return None if fn is None else (lambda *args: fn(optimizer, *args))

    n = 0
    for optimizer in optimizers:
        for schedule in schedules:
            params = {"t0": 1, "t_mult": 2} if schedule == "warm-restarts" else {}
            n += write_panel(rdb, sweep=sweep, optimizer=optimizer, schedule=schedule, error=bind(error, optimizer),
                             diverged=bind(diverge, optimizer), fail=bind(fail, optimizer), skip=bind(skip, optimizer),
                             schedule_params=params, **grid)
    return n
