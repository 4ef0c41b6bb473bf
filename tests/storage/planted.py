"""The storage tests' planted sweep: five studies with exact answers, written by tests.planted."""

from __future__ import annotations

import math

import storage
from tests.planted import CHANCE, raw_wd, study_attrs, trial_attrs, write_panel

# --- the planted sweep: a landscape with known answers ------------------------------------------
#
# Five studies of one sweep (89 trials), each built so that best, best_by_budget, coupling and headline have
# exact answers (tests/storage/test_storage_queries.py checks them):
#
# sgd/cosine   T=1, 5×5 grid, seed 0: error grows with the distance from the diagonal
#              α·λ_norm = α₂·λ₂ — a coupled basin, λ* ∝ 1/α (slope −1), best cell (α₂, λ₂) = 0.05.
# sgdw/cosine  T=1, 5×5, seed 0: λ_norm* = λ₂ for every α — axis-aligned (slope 0), best 0.04.
# adamw/cosine T ∈ {1, 4, 16}, α ∈ {α₂, α₃}, λ_norm ∈ {λ₁, λ₂, λ₃}: λ_norm* = 0.05 at every T, so
#              raw λ* ∝ 1/√T; best α is the grid's smallest (a border note).
# adam/cosine  one cell per T, error = AdamW's best / 0.85: headline improvement exactly 15%.
# sgd/step     T=2, 3×3, seeds 0 and 1 (:data:`MISC`): a tie, FAIL trials, diverged runs, a missing
#              cell, a rerun (latest counts) and a FAIL retried to COMPLETE.


ALPHAS = [1e-3 * 2.0**k for k in range(5)]  # α_0..α_4
LAMBDAS = [0.0125 * 2.0**k for k in range(5)]  # λ_norm 0.0125 … 0.2
BUDGET_T = [1, 4, 16]

def _l2(x: float) -> float:
    return math.log2(x)


def coupled_error(lr, wd_norm, budget, seed):
    """SGD+L2: error grows with the distance from the diagonal α·λ_norm = α_2·λ_2 (λ* ∝ 1/α)."""
    d = _l2(lr * wd_norm / (ALPHAS[2] * LAMBDAS[2]))
    return 0.05 + 0.02 * d * d + 0.005 * (_l2(lr / ALPHAS[2])) ** 2


def decoupled_error(lr, wd_norm, budget, seed):
    """SGDW: λ_norm* = λ_2 for every α (axis-aligned basin)."""
    return 0.04 + 0.02 * _l2(wd_norm / LAMBDAS[2]) ** 2 + 0.005 * _l2(lr / ALPHAS[2]) ** 2


def adamw_error(lr, wd_norm, budget, seed):
    """AdamW over budgets: λ_norm* = 0.05 at every T, so raw λ* ∝ 1/√T."""
    return 0.06 + 0.02 * _l2(wd_norm / 0.05) ** 2 + 0.004 * _l2(lr / ALPHAS[2]) ** 2 + 0.01 * _l2(16 / budget)


def adam_error(lr, wd_norm, budget, seed):
    """Adam: the same shape, higher floor: best error = AdamW's best / 0.85 at every T."""
    return (0.06 + 0.01 * _l2(16 / budget)) / 0.85


MISC = {
    # (α index, λ index, seed) -> value | "FAIL" | "DIVERGED"; absent = not recorded (missing)
    (0, 0, 0): "FAIL", (0, 0, 1): "FAIL",  # FAIL only: cell present, no COMPLETE seed
    (0, 1, 0): 0.2, (0, 1, 1): 0.2,  # tie for best with (1, 0): smaller α wins
    (0, 2, 0): 0.4, (0, 2, 1): 0.5,  # (0, 2, 0) is also recorded earlier as 0.6: latest wins
    (1, 0, 0): 0.2, (1, 0, 1): 0.2,
    (1, 1, 0): 0.3, (1, 1, 1): 0.35,  # (1, 1, 1) failed once before completing
    (1, 2, 0): "FAIL", (1, 2, 1): 0.45,
    (2, 1, 0): 0.5, (2, 1, 1): "DIVERGED",  # diverged counts at chance: mean 0.7
    (2, 2, 0): "DIVERGED", (2, 2, 1): "DIVERGED",
}  # (2, 0, *) never recorded: a missing cell


def plant_sweep(rdb, sweep: str) -> None:
    """Write the planted sweep (five studies, 89 trials) through the real write API; see above."""
    write_panel(rdb, sweep=sweep, optimizer="sgd", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS,
                budgets=[1], seeds=[0], error=coupled_error)
    write_panel(rdb, sweep=sweep, optimizer="sgdw", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS,
                budgets=[1], seeds=[0], error=decoupled_error)
    write_panel(rdb, sweep=sweep, optimizer="adamw", schedule="cosine", lrs=ALPHAS[2:4],
                wd_norms=LAMBDAS[1:4], budgets=BUDGET_T, seeds=[0], error=adamw_error)
    write_panel(rdb, sweep=sweep, optimizer="adam", schedule="cosine", lrs=[ALPHAS[2]], wd_norms=[0.05],
                budgets=BUDGET_T, seeds=[0], error=adam_error)
    _plant_misc(rdb, sweep)


def _plant_misc(rdb, sweep: str) -> None:
    """sgd/step at T = 2: ties, FAIL, diverged, a missing cell, a duplicate and a retry."""
    lrs, wds = ALPHAS[:3], LAMBDAS[:3]
    study = storage.ensure_study(rdb, sweep=sweep, optimizer="sgd", schedule="step",
                                 attrs=study_attrs(grid_size=3 * 3 * 2))
    dists = storage.grid_distributions(lrs, wds, [2], [0, 1])

    def put(i, j, seed, outcome):
        point = storage.GridPoint("sgd", "step", lrs[i], wds[j], 2, seed)
        if outcome == "FAIL":
            storage.record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                                 user_attrs={"error": "RuntimeError: boom"})
            return
        diverged = outcome == "DIVERGED"
        value = CHANCE if diverged else outcome
        attrs = trial_attrs(value, 2, raw_wd(wds[j], 2), diverged=diverged)
        storage.record_trial(study, point, dists, state="COMPLETE", value=value,
                             intermediate={1: value + 0.1, 2: value}, user_attrs=attrs)

    put(0, 2, 0, 0.6)  # superseded by the later 0.4
    put(1, 1, 1, "FAIL")  # superseded by the later COMPLETE 0.35
    for (i, j, seed), outcome in MISC.items():
        put(i, j, seed, outcome)
