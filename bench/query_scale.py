"""How Basin's read queries scale: time `best` and `basin_grid` at 1k, 10k, 100k trials.

Fills SQLite and PostgreSQL with synthetic sweeps shaped like real ones — every trial carries all
of Basin's user attrs, including the per-epoch lists (T entries each for T ∈ {5, 10, 20, 40}) and
one Optuna intermediate value per epoch — then times the reads a dashboard and `basin best` make.

Filling goes straight into Optuna's tables with SQLAlchemy executemany in one transaction per
table (Optuna's own add_trial costs ~20–40 ms a trial: 100k would take an hour). The studies
themselves are created through :func:`storage.ensure_study`, so the schema is Optuna's own; then
:func:`storage.record.sync_trial_rows` copies the trials into ``basin_trials``, as Basin's recorder
does after each trial.

    .venv/bin/python bench/query_scale.py                   # SQLite + PostgreSQL, 1k/10k/100k
    .venv/bin/python bench/query_scale.py --sizes 1000 --backends sqlite
    .venv/bin/python bench/query_scale.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

PostgreSQL runs inside a throw-away schema (dropped at the end); SQLite in a temporary directory.
Target: ≤ 2 s for each query at 100k trials.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import optuna
import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from optuna.storages._rdb import models  # noqa: E402  (the real column types, enums included)

from storage import basin_grid, best, ensure_study, grid_distributions, open_storage, trials_frame  # noqa: E402
from storage.record import sync_trial_rows  # noqa: E402
from storage.testing import PG_TEST_URL, pg_unreachable_reason, scratch_schema  # noqa: E402

OPTIMIZERS = ("sgd", "sgdw", "adam", "adamw")
SCHEDULES = ("cosine", "fixed")
LRS = [2.0**k for k in range(-12, -4)]  # 8 values of α
WD_NORMS = [0.025 * 2.0**k for k in range(-4, 4)]  # 8 values of λ_norm
BUDGETS = [5, 10, 20, 40]
BATCH, N_TRAIN, NUM_CLASSES = 128, 4000, 10


def _study_attrs(n_seeds: int) -> dict:
    return {
        "dataset": "mnist1d",
        "model": "cnn",
        "batch_size": BATCH,
        "n_train": N_TRAIN,
        "n_test": 1000,
        "n_val": 0,
        "num_classes": NUM_CLASSES,
        "chance": 1 - 1 / NUM_CLASSES,
        "schedule_params": {},
        "grid_size": len(LRS) * len(WD_NORMS) * len(BUDGETS) * n_seeds,
        "spec": {"lrs": LRS, "wd_norms": WD_NORMS, "budgets": BUDGETS, "seeds": n_seeds},
        "basin_version": "bench",
    }


def fill(rdb: optuna.storages.RDBStorage, sweep: str, n_trials: int) -> float:
    """Write ``n_trials`` synthetic trials of ``sweep``; returns seconds taken."""
    t0 = time.perf_counter()
    studies = [(o, s) for o in OPTIMIZERS for s in SCHEDULES]
    per_seed = len(studies) * len(LRS) * len(WD_NORMS) * len(BUDGETS)
    n_seeds = max(1, math.ceil(n_trials / per_seed))
    dists = grid_distributions(LRS, WD_NORMS, BUDGETS, range(n_seeds))
    dist_json = {k: optuna.distributions.distribution_to_json(d) for k, d in dists.items()}
    study_ids = {}
    for o, s in studies:
        st = ensure_study(rdb, sweep=sweep, optimizer=o, schedule=s, attrs=_study_attrs(n_seeds))
        study_ids[(o, s)] = st._study_id
    rng = np.random.default_rng(0)
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    with rdb.engine.begin() as conn:
        first_id = (conn.execute(sa.select(sa.func.max(models.TrialModel.trial_id))).scalar() or 0) + 1
    trials, params, values, attrs, inter = [], [], [], [], []
    numbers = dict.fromkeys(study_ids.values(), 0)
    # Seed-major, studies innermost: even 1k trials touch every study and budget.
    grid = itertools.product(range(n_seeds), LRS, WD_NORMS, BUDGETS, studies)
    for i, (seed, lr, wd_norm, budget, (o, s)) in enumerate(itertools.islice(grid, n_trials)):
        tid, sid = first_id + i, study_ids[(o, s)]
        fail = rng.random() < 0.01
        diverged = not fail and lr >= 2.0**-6 and wd_norm >= 0.2
        # A planted basin: error lowest at α·λ_norm ≈ const for the L2 variants, λ_norm ≈ 0.05 otherwise.
        d = math.log2(lr * wd_norm / 2.0**-13) if o in ("sgd", "adam") else math.log2(wd_norm / 0.05)
        err = 1 - 1 / NUM_CLASSES if diverged else min(0.9, 0.1 + 0.01 * d * d + 0.02 * math.log2(40 / budget) + rng.normal(0, 0.005))
        trials.append(dict(trial_id=tid, number=numbers[sid], study_id=sid,
                           state=optuna.trial.TrialState.FAIL if fail else optuna.trial.TrialState.COMPLETE,
                           datetime_start=now, datetime_complete=now))
        numbers[sid] += 1
        for name, v in (("lr", lr), ("wd_norm", wd_norm), ("budget", budget), ("seed", seed)):
            params.append(dict(trial_id=tid, param_name=name, param_value=float(v), distribution_json=dist_json[name]))
        if fail:
            attrs.append(dict(trial_id=tid, key="error", value_json=json.dumps("CUDA error: out of memory")))
            continue
        values.append(dict(trial_id=tid, objective=0, value=err,
                           value_type=models.TrialValueModel.TrialValueType.FINITE))
        curve = [round(err + 0.5 / (e + 1), 6) for e in range(budget)]
        wd = wd_norm * math.sqrt(BATCH / (N_TRAIN * budget))
        ua = {
            "train_loss": [round(2 * c, 6) for c in curve], "train_error": curve, "test_error": curve,
            "test_loss": [round(2 * c, 6) for c in curve],
            "eta": [round(0.5 * (1 + math.cos(math.pi * (e + 1) / budget)), 6) for e in range(budget)],
            "wd_per_epoch": [wd] * budget, "diverged": diverged, "wd": wd, "seconds": 12.5,
            "node": "10.0.0.7", "device": "cuda:0", "code_version": "bench", "restart_epochs": [budget],
            "optimizer": o, "schedule": s,
        }
        attrs.extend(dict(trial_id=tid, key=k, value_json=json.dumps(v)) for k, v in ua.items())
        inter.extend(dict(trial_id=tid, step=e + 1, intermediate_value=c,
                          intermediate_value_type=models.TrialIntermediateValueModel.TrialIntermediateValueType.FINITE)
                     for e, c in enumerate(curve))
    with rdb.engine.begin() as conn:
        for model, rows in ((models.TrialModel, trials), (models.TrialParamModel, params),
                            (models.TrialValueModel, values), (models.TrialUserAttributeModel, attrs),
                            (models.TrialIntermediateValueModel, inter)):
            table = model.__table__
            for start in range(0, len(rows), 50_000):
                conn.execute(table.insert(), rows[start:start + 50_000])
        if conn.dialect.name == "postgresql":  # explicit trial ids: move the sequence past them
            conn.execute(sa.text("SELECT setval(pg_get_serial_sequence('trials', 'trial_id'), "
                                 "(SELECT max(trial_id) FROM trials))"))
    sync_trial_rows(rdb, list(study_ids.values()))  # what Basin's recorder keeps beside each trial (storage.sql)
    # Statistics of every table, basin_trials' copies included, as autovacuum (PostgreSQL's default) keeps
    # them on a database that grew trial by trial; without them PostgreSQL plans the copies' join for an
    # empty table (hashing the wrong side: 0.13 against 0.10 s at 10⁵ trials, measured here).
    with rdb.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - t0


def databases(backends, sizes, pg_url: str, prefix: str):
    """Yield (backend, url, n) for each backend and size: a fresh SQLite file per size in a temporary
    folder, a throw-away PostgreSQL schema per size (dropped after); PostgreSQL is skipped, saying why,
    when it cannot be reached. Shared by the bench scripts that fill a database per size."""
    if "sqlite" in backends:
        with tempfile.TemporaryDirectory(prefix=f"{prefix}-") as tmp:
            for n in sizes:  # one file per size: times do not include the other sizes' rows
                yield "sqlite", f"sqlite:///{os.path.join(tmp, f'{prefix}{n}.db')}", n
    if "postgresql" in backends:
        reason = pg_unreachable_reason(pg_url)
        if reason:
            print(f"postgresql skipped: {reason}")
            return
        for n in sizes:
            with scratch_schema(pg_url, prefix=prefix.replace("-", "_")) as url:
                yield "postgresql", url, n


def _time(fn, repeat: int = 3) -> float:
    best_s = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best_s = min(best_s, time.perf_counter() - t)
    return best_s


def bench_backend(label: str, url: str, sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        sweep = f"bench-{n}"
        writer = open_storage(url)
        fill_s = fill(writer, sweep, n)
        reader = open_storage(url, read_only=True)
        panel = f"{sweep}/adamw/cosine"
        n_rows = len(trials_frame(reader, sweep=sweep))
        t_frame = _time(lambda: trials_frame(reader, sweep=sweep))
        t_best = _time(lambda: best(reader, sweep=sweep))
        t_grid = _time(lambda: basin_grid(reader, panel, 40))
        rows.append(dict(backend=label, trials=n_rows, fill_s=fill_s, frame_s=t_frame, best_s=t_best, grid_s=t_grid))
        print(f"{label:10s} {n_rows:>8d} trials  fill {fill_s:7.1f} s   trials_frame {t_frame:6.3f} s   "
              f"best {t_best:6.3f} s   basin_grid {t_grid:6.3f} s", flush=True)
        writer.engine.dispose()
        reader.engine.dispose()
    return rows


def _growth(rows: list[dict], key: str) -> str:
    parts = []
    for a, b in zip(rows, rows[1:]):
        parts.append(f"×{b[key] / a[key]:.1f}" if a[key] > 0 else "-")
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_TEST_URL)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    results = [bench_backend(label, url, [n])
               for label, url, n in databases(args.backends, args.sizes, args.pg_url, "basin-bench")]
    print()
    print(f"{'backend':10s} {'trials':>8s} {'fill s':>8s} {'frame s':>8s} {'best s':>8s} {'grid s':>8s}")
    flat = [r for group in results for r in group]
    for r in flat:
        print(f"{r['backend']:10s} {r['trials']:>8d} {r['fill_s']:8.1f} {r['frame_s']:8.3f} {r['best_s']:8.3f} {r['grid_s']:8.3f}")
    for label in ("sqlite", "postgresql"):
        rows = [r for r in flat if r["backend"] == label]
        if len(rows) > 1:
            print(f"{label}: growth per step of sizes — best {_growth(rows, 'best_s')}, basin_grid {_growth(rows, 'grid_s')}")
    worst = max((max(r["best_s"], r["grid_s"]) for r in flat if r["trials"] >= 100_000), default=None)
    if worst is not None:
        print(f"slowest query at ≥100k trials: {worst:.3f} s (target ≤ 2 s): {'OK' if worst <= 2 else 'TOO SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
