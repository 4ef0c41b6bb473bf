"""Synthetic but realistic sweeps for the dashboard's tests, written through storage's real write API.

A *planted basin*: the final test error of (optimizer, α, λ_norm, T, seed) is a bowl whose valley
lies on the diagonal α·λ_norm = const for the L2 variants (SGD, Adam) and along λ_norm = 0.05 for
the decoupled ones (SGDW, AdamW), so the expected coupling verdicts and best cells are known.
Curves are shaped like real runs (loss falling with the epochs, restarts visible under warm
restarts); runs at the largest α and λ_norm diverge (chance error, short lists) and a few fail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import storage

CHANCE = 0.9  # 10 classes
BATCH, N_TRAIN = 128, 4000


def planted_error(optimizer: str, lr: float, wd_norm: float, budget: int, seed: int) -> float:
    la, lw = math.log2(lr), math.log2(wd_norm)
    if optimizer in ("sgd", "adam"):
        d = (la + lw) - (-7.0 + math.log2(0.05))  # coupled: the valley is α·λ_norm = 2⁻⁷·0.05
    else:
        d = lw - math.log2(0.05)  # decoupled: the valley is λ_norm = 0.05 whatever α
    e = la + 7.0
    base = {"sgd": 0.07, "sgdw": 0.055, "adam": 0.085, "adamw": 0.06}.get(optimizer, 0.065)
    err = base + 0.012 * d * d + 0.004 * e * e + 0.01 * math.log2(8 / budget) + 0.002 * seed
    return min(max(err, 0.01), 0.85)


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


def run_record(optimizer: str, schedule: str, lr: float, wd_norm: float, budget: int, seed: int, *,
               diverged: bool) -> tuple[float, dict, dict]:
    """(value, user attrs, intermediate values) of one run as the sweep driver records it."""
    wd = wd_norm * math.sqrt(BATCH / (N_TRAIN * budget))
    if diverged:
        attrs = {"train_loss": [2.3, 1e6], "train_error": [0.9, 0.9], "test_error": [0.9, CHANCE],
                 "test_loss": [2.3, 1e6], "eta": [1.0, 0.9], "wd_per_epoch": [wd, wd]}
        value = CHANCE
    else:
        final = planted_error(optimizer, lr, wd_norm, budget, seed)
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
    intermediate = {e: v for e, v in enumerate(attrs["test_error"], 1)}
    return value, attrs, intermediate


Pred = Callable[[str, float, float, int, int], bool]


def record_sweep(
    rdb,
    sweep: str,
    *,
    optimizers: Iterable[str],
    schedules: Iterable[str],
    lrs: Iterable[float],
    wd_norms: Iterable[float],
    budgets: Iterable[int],
    seeds: Iterable[int] = (0,),
    diverge: Pred | None = None,
    fail: Pred | None = None,
    skip: Pred | None = None,
    value: Callable[..., float] | None = None,
) -> int:
    """Record the grid of every (optimizer, schedule) study (``skip``ped points are left out, as in a
    sweep still running); returns the number of trials recorded."""
    lrs, wd_norms, budgets, seeds = (list(v) for v in (lrs, wd_norms, budgets, seeds))
    dists = storage.grid_distributions(lrs, wd_norms, budgets, seeds)
    grid_size = len(lrs) * len(wd_norms) * len(budgets) * len(seeds)
    n = 0
    for optimizer in optimizers:
        for schedule in schedules:
            attrs = {"dataset": "mnist1d", "model": "cnn", "batch_size": BATCH, "n_train": N_TRAIN, "num_classes": 10,
                     "schedule_params": {"t0": 1, "t_mult": 2} if schedule == "warm-restarts" else {},
                     "grid_size": grid_size, "spec": {"synthetic": True}, "basin_version": "test"}
            study = storage.ensure_study(rdb, sweep=sweep, optimizer=optimizer, schedule=schedule, attrs=attrs)
            for lr in lrs:
                for wd_norm in wd_norms:
                    for budget in budgets:
                        for seed in seeds:
                            point = storage.GridPoint(optimizer, schedule, lr, wd_norm, budget, seed)
                            args = (optimizer, lr, wd_norm, budget, seed)
                            if skip is not None and skip(*args):
                                continue
                            n += 1
                            if fail is not None and fail(*args):
                                storage.record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                                                     user_attrs={"error": "RuntimeError: synthetic worker failure"})
                                continue
                            div = diverge is not None and diverge(*args)
                            v, user_attrs, inter = run_record(optimizer, schedule, lr, wd_norm, budget, seed,
                                                              diverged=div)
                            if value is not None and not div:
                                v = value(*args)
                                user_attrs["test_error"][-1] = v
                                inter[len(user_attrs["test_error"])] = v
                            storage.record_trial(study, point, dists, state="COMPLETE", value=v,
                                                 intermediate=inter, user_attrs=user_attrs)
    return n


LRS = [2.0**k for k in (-9, -8, -7, -6)]
WDS = [0.05 * 2.0**k for k in (-2, -1, 0, 1)]


def paper_sweep(rdb, name: str) -> None:
    """Figure 2's four optimizers at cosine T=4 (4×4 grid, 2 seeds), plus Figure 1's schedules for Adam and
    AdamW, warm restarts and a second budget for SGDW and AdamW (3×3 grid, 1 seed); diverged corner, one FAIL."""

    def diverge(o, lr, wd, t, s):
        return lr == LRS[-1] and wd == WDS[-1]

    def fail(o, lr, wd, t, s):
        return o == "sgd" and lr == LRS[0] and wd == WDS[0] and s == 1

    def second_budget_unfinished(o, lr, wd, t, s):
        return t == 8 and (s == 1 or lr == LRS[0] or wd == WDS[0])

    record_sweep(rdb, name, optimizers=("sgd", "adam"), schedules=("cosine",), lrs=LRS,
                 wd_norms=WDS, budgets=[4], seeds=[0, 1], diverge=diverge, fail=fail)
    record_sweep(rdb, name, optimizers=("sgdw", "adamw"), schedules=("cosine",), lrs=LRS, wd_norms=WDS,
                 budgets=[4, 8], seeds=[0, 1], diverge=diverge, skip=second_budget_unfinished)
    small_l, small_w = LRS[1:], WDS[1:]
    record_sweep(rdb, name, optimizers=("adam", "adamw"), schedules=("fixed", "step-drop"), lrs=small_l,
                 wd_norms=small_w, budgets=[4])
    record_sweep(rdb, name, optimizers=("sgdw", "adamw"), schedules=("warm-restarts",), lrs=small_l,
                 wd_norms=small_w, budgets=[4])
