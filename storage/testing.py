"""Helpers for tests and benchmarks of code that reads Basin storage (no mocks: real databases).

* :func:`scratch_schema` gives a PostgreSQL URL whose ``search_path`` is a fresh schema, dropped
  afterwards, so tests sharing one database never see each other's tables.
* :func:`write_panel` records a synthetic study through the real write API, with the test error
  given by a function of (α, λ_norm, T, seed) — a planted basin with a known answer.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import optuna
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from storage.errors import one_line
from storage.record import GridPoint, ensure_study, grid_distributions, record_trial

PG_TEST_URL = os.environ.get("BASIN_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def pg_unreachable_reason(url: str = PG_TEST_URL, timeout_s: int = 3) -> str | None:
    """None if PostgreSQL at ``url`` answers, else one line saying why not."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, connect_args={"connect_timeout": timeout_s})
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means "unreachable" here
        return f"PostgreSQL unreachable at {make_url(url).render_as_string(hide_password=True)}: {one_line(getattr(exc, 'orig', exc))[:200]}"
    finally:
        engine.dispose()
    return None


def with_search_path(url: str, schema: str) -> str:
    """``url`` with ``-c search_path=schema`` added to its connection options."""
    parsed = make_url(url)
    options = " ".join(filter(None, [parsed.query.get("options", ""), f"-c search_path={schema}"]))
    return parsed.update_query_dict({"options": options}).render_as_string(hide_password=False)


@contextmanager
def scratch_schema(url: str = PG_TEST_URL, prefix: str = "basin_test") -> Iterator[str]:
    """Create a uniquely named schema, yield ``url`` pointed at it, drop it (CASCADE) on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        yield with_search_path(url, schema)
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def study_attrs(*, num_classes: int = 10, grid_size: int = 0, **overrides) -> dict:
    """A complete set of study user attrs (see :data:`storage.record.STUDY_ATTRS`) for tests."""
    attrs = {
        "dataset": "synthetic",
        "model": "none",
        "batch_size": 128,
        "n_train": 50_000,
        "num_classes": num_classes,
        "schedule_params": {},
        "grid_size": grid_size,
        "spec": {"synthetic": True},
        "basin_version": "test",
    }
    attrs.update(overrides)
    return attrs


def raw_wd(wd_norm: float, budget: int, batch_size: int = 128, n_train: int = 50_000) -> float:
    """λ = λ_norm·√(b/(B·T)) (Appendix B.1)."""
    return wd_norm * math.sqrt(batch_size / (n_train * budget))


def trial_attrs(error: float, budget: int, wd: float, *, diverged: bool = False, seconds: float = 1.0) -> dict:
    """A complete set of trial user attrs for a run whose test error ends at ``error``."""
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


ErrorFn = Callable[[float, float, int, int], float]


def write_panel(
    storage: optuna.storages.BaseStorage,
    *,
    sweep: str,
    optimizer: str,
    schedule: str,
    lrs: Iterable[float],
    wd_norms: Iterable[float],
    budgets: Iterable[int],
    seeds: Iterable[int],
    error: ErrorFn,
    diverged: Callable[[float, float, int, int], bool] | None = None,
    fail: Callable[[float, float, int, int], bool] | None = None,
    skip: Callable[[float, float, int, int], bool] | None = None,
    num_classes: int = 10,
) -> optuna.Study:
    """Record the grid lrs × wd_norms × budgets × seeds of one study through the write API.

    ``error(α, λ_norm, T, seed)`` is the final test error; a point where ``diverged(...)`` is
    true records chance error 1 − 1/C with ``diverged=True``; ``fail(...)`` records a FAIL
    trial; ``skip(...)`` leaves the point out (a missing cell).
    """
    lrs, wd_norms, budgets, seeds = (list(v) for v in (lrs, wd_norms, budgets, seeds))
    grid_size = len(lrs) * len(wd_norms) * len(budgets) * len(seeds)
    study = ensure_study(
        storage, sweep=sweep, optimizer=optimizer, schedule=schedule,
        attrs=study_attrs(num_classes=num_classes, grid_size=grid_size),
    )
    dists = grid_distributions(lrs, wd_norms, budgets, seeds)
    chance = 1.0 - 1.0 / num_classes
    for lr in lrs:
        for wd_norm in wd_norms:
            for budget in budgets:
                for seed in seeds:
                    args = (lr, wd_norm, budget, seed)
                    if skip is not None and skip(*args):
                        continue
                    point = GridPoint(optimizer, schedule, lr, wd_norm, budget, seed)
                    if fail is not None and fail(*args):
                        record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                                     user_attrs={"error": "synthetic failure"})
                        continue
                    div = diverged is not None and diverged(*args)
                    value = chance if div else min(max(float(error(*args)), 0.0), 1.0)
                    attrs = trial_attrs(value, budget, raw_wd(wd_norm, budget), diverged=div)
                    record_trial(study, point, dists, state="COMPLETE", value=value,
                                 intermediate={e: v for e, v in enumerate(attrs["test_error"], 1)},
                                 user_attrs=attrs)
    return study


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
CHANCE = 0.9  # 10 classes


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


def plant_sweep(storage, sweep: str) -> None:
    """Write the planted sweep (five studies, 89 trials) through the real write API; see above."""
    write_panel(storage, sweep=sweep, optimizer="sgd", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS,
                budgets=[1], seeds=[0], error=coupled_error)
    write_panel(storage, sweep=sweep, optimizer="sgdw", schedule="cosine", lrs=ALPHAS, wd_norms=LAMBDAS,
                budgets=[1], seeds=[0], error=decoupled_error)
    write_panel(storage, sweep=sweep, optimizer="adamw", schedule="cosine", lrs=ALPHAS[2:4],
                wd_norms=LAMBDAS[1:4], budgets=BUDGET_T, seeds=[0], error=adamw_error)
    write_panel(storage, sweep=sweep, optimizer="adam", schedule="cosine", lrs=[ALPHAS[2]], wd_norms=[0.05],
                budgets=BUDGET_T, seeds=[0], error=adam_error)
    _plant_misc(storage, sweep)


def _plant_misc(storage, sweep: str) -> None:
    """sgd/step at T = 2: ties, FAIL, diverged, a missing cell, a duplicate and a retry."""
    lrs, wds = ALPHAS[:3], LAMBDAS[:3]
    study = ensure_study(storage, sweep=sweep, optimizer="sgd", schedule="step",
                         attrs=study_attrs(grid_size=3 * 3 * 2))
    dists = grid_distributions(lrs, wds, [2], [0, 1])

    def put(i, j, seed, outcome):
        point = GridPoint("sgd", "step", lrs[i], wds[j], 2, seed)
        if outcome == "FAIL":
            record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                         user_attrs={"error": "RuntimeError: boom"})
            return
        diverged = outcome == "DIVERGED"
        value = CHANCE if diverged else outcome
        attrs = trial_attrs(value, 2, raw_wd(wds[j], 2), diverged=diverged)
        record_trial(study, point, dists, state="COMPLETE", value=value, intermediate={1: value + 0.1, 2: value},
                     user_attrs=attrs)

    put(0, 2, 0, 0.6)  # superseded by the later 0.4
    put(1, 1, 1, "FAIL")  # superseded by the later COMPLETE 0.35
    for (i, j, seed), outcome in MISC.items():
        put(i, j, seed, outcome)
