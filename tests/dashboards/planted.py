"""Synthetic but realistic sweeps for the dashboard's tests, written by :mod:`tests.planted`.

A *planted basin*: the final test error of (optimizer, α, λ_norm, T, seed) is a bowl whose valley
lies on the diagonal α·λ_norm = const for the L2 variants (SGD, Adam) and along λ_norm = 0.05 for
the decoupled ones (SGDW, AdamW), so the expected coupling verdicts and best cells are known. The
bowl is steep enough (3 points per octave² of λ_norm) and the λ_norm axis wide enough (six
columns) that storage's verdicts, which come from intervals over the test set (n_test = 1000) and
seeds, find it: in ``paper_sweep`` every coupled row's λ_norm* lies inside the grid, and each
row's edges are distinguishably worse than its best even with one seed.
Curves are shaped like real runs (loss falling with the epochs, restarts visible under warm
restarts); runs at the largest α and λ_norm diverge (chance error, short lists) and a few fail.
"""

from __future__ import annotations

import math

from tests import planted

N_TRAIN = 4000  # MNIST-1D's training set


def planted_error(optimizer: str, lr: float, wd_norm: float, budget: int, seed: int) -> float:
    la, lw = math.log2(lr), math.log2(wd_norm)
    if optimizer in ("sgd", "adam"):
        d = (la + lw) - (-7.0 + math.log2(0.05))  # coupled: the valley is α·λ_norm = 2⁻⁷·0.05
    else:
        d = lw - math.log2(0.05)  # decoupled: the valley is λ_norm = 0.05 whatever α
    e = la + 7.0
    base = {"sgd": 0.07, "sgdw": 0.055, "adam": 0.085, "adamw": 0.06}.get(optimizer, 0.065)
    err = base + 0.03 * d * d + 0.004 * e * e + 0.01 * math.log2(8 / budget) + 0.002 * seed
    return min(max(err, 0.01), 0.85)


LRS = [2.0**k for k in (-9, -8, -7, -6)]
WDS = [0.05 * 2.0**k for k in (-2, -1, 0, 1, 2, 3)]


def record_sweep(rdb, sweep: str, *, value=None, **kw) -> int:
    """:func:`tests.planted.record_sweep` on MNIST-1D-like studies, realistic curves, the planted basin
    (``value(optimizer, α, λ_norm, T, seed)`` overrides the final error)."""
    return planted.record_sweep(rdb, sweep, error=value or planted_error, curves="realistic", dataset="mnist1d",
                                model="cnn", n_train=N_TRAIN, **kw)


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
