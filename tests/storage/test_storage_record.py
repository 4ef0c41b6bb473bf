"""Write side: studies, grid points, trials, resume, and concurrent writers losing nothing."""

from __future__ import annotations

import math
import subprocess
import sys

import optuna
import pytest

from storage import (
    GridPoint,
    delete_sweep,
    ensure_study,
    grid_distributions,
    open_storage,
    record_trial,
    study_name,
    trials_frame,
)
from storage.errors import UnknownNameError
from storage.sql import completed_points
from tests.planted import raw_wd, study_attrs, trial_attrs

DISTS = grid_distributions([1e-3, 1e-2], [0.025, 0.1], [2, 4], [0, 1])


def _complete(study, point, value=0.3, **kw):
    attrs = trial_attrs(value, point.budget, raw_wd(point.wd_norm, point.budget), **kw)
    record_trial(study, point, DISTS, state="COMPLETE", value=value,
                 intermediate={e: v for e, v in enumerate(attrs["test_error"], 1)}, user_attrs=attrs)


def test_study_name_and_its_checks():
    assert study_name("fig2", "adamw", "cosine") == "fig2/adamw/cosine"
    assert study_name("runs/2024", "sgd", "step") == "runs/2024/sgd/step"
    for bad in (("", "sgd", "cosine"), ("s", "sg/d", "cosine"), ("s", "sgd", "")):
        with pytest.raises(ValueError):
            study_name(*bad)


def test_grid_point_keys_absorb_float_noise():
    a = GridPoint("adamw", "cosine", 10**-2.5, 0.025, 10, 0)
    b = GridPoint("adamw", "cosine", 10**-2.5 * (1 + 1e-15), 0.025000000000000001, 10, 0)
    c = GridPoint("adamw", "cosine", 10**-2.5 * 1.001, 0.025, 10, 0)
    assert a == b and hash(a) == hash(b) and a.key() == b.key()
    assert a != c
    assert {a, b, c} == {a, c}
    assert b.lr != a.lr  # the exact floats are kept


def test_grid_distributions_span_the_grid():
    d = grid_distributions([2.0**-7, 2.0**-3, 2.0**-5], [0.05, 0.0125], [100, 25], [2, 0, 1])
    assert (d["lr"].low, d["lr"].high, d["lr"].log) == (2.0**-7, 2.0**-3, True)
    assert (d["wd_norm"].low, d["wd_norm"].high, d["wd_norm"].log) == (0.0125, 0.05, True)
    assert (d["budget"].low, d["budget"].high) == (25, 100)
    assert (d["seed"].low, d["seed"].high) == (0, 2)
    with pytest.raises(ValueError, match="empty"):
        grid_distributions([], [1], [1], [1])


def test_ensure_study_sets_attrs_and_is_idempotent(rdb, sweep_name):
    study = ensure_study(rdb, sweep=sweep_name, optimizer="adamw", schedule="cosine",
                         attrs=study_attrs(grid_size=16, spec={"a": [1, 2]}))
    again = ensure_study(rdb, sweep=sweep_name, optimizer="adamw", schedule="cosine",
                         attrs=study_attrs(grid_size=32, spec={"a": [1, 2]}))
    assert study.study_name == again.study_name == f"{sweep_name}/adamw/cosine"
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    attrs = optuna.load_study(study_name=study.study_name, storage=rdb).user_attrs
    assert attrs["sweep"] == sweep_name and attrs["optimizer"] == "adamw" and attrs["schedule"] == "cosine"
    assert attrs["grid_size"] == 32 and attrs["spec"] == {"a": [1, 2]} and attrs["num_classes"] == 10


def test_ensure_study_checks_the_schema(rdb, sweep_name):
    attrs = study_attrs()
    del attrs["grid_size"]
    with pytest.raises(ValueError, match="grid_size"):
        ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=attrs)
    with pytest.raises(ValueError, match="batch_size"):
        ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs(batch_size="128"))
    with pytest.raises(ValueError, match="JSON"):
        ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs(spec={"x": object()}))


def test_record_trial_writes_the_schema(rdb, sweep_name):
    study = ensure_study(rdb, sweep=sweep_name, optimizer="sgdw", schedule="cosine", attrs=study_attrs())
    point = GridPoint("sgdw", "cosine", 1e-2, 0.1, 4, 1)
    _complete(study, point, value=0.25)
    record_trial(study, GridPoint("sgdw", "cosine", 1e-3, 0.1, 4, 1), DISTS, state="FAIL", value=None,
                 intermediate={}, user_attrs={"error": "CUDA out of memory"})
    trials = optuna.load_study(study_name=study.study_name, storage=rdb).trials
    done, failed = trials
    assert done.state == optuna.trial.TrialState.COMPLETE and done.value == 0.25
    assert done.params == {"lr": 1e-2, "wd_norm": 0.1, "budget": 4, "seed": 1}
    assert done.distributions == DISTS
    assert done.intermediate_values[4] == 0.25 and len(done.intermediate_values) == 4
    ua = done.user_attrs
    assert ua["optimizer"] == "sgdw" and ua["schedule"] == "cosine" and ua["diverged"] is False
    assert math.isclose(ua["wd"], raw_wd(0.1, 4)) and ua["restart_epochs"] == [4] and len(ua["eta"]) == 4
    assert (done.datetime_complete - done.datetime_start).total_seconds() == pytest.approx(ua["seconds"], abs=1e-3)
    assert failed.state == optuna.trial.TrialState.FAIL and failed.value is None
    assert failed.user_attrs["error"] == "CUDA out of memory"


def test_record_trial_rejects_bad_input(rdb, sweep_name):
    study = ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs())
    point = GridPoint("sgd", "cosine", 1e-2, 0.1, 4, 0)
    good = trial_attrs(0.3, 4, 0.01)
    cases = [
        (dict(state="COMPLETE", value=1.5, user_attrs=good), "in \\[0, 1\\]"),
        (dict(state="COMPLETE", value=None, user_attrs=good), "in \\[0, 1\\]"),
        (dict(state="COMPLETE", value=0.3, user_attrs={**good, "diverged": "no"}), "diverged"),
        (dict(state="COMPLETE", value=0.3, user_attrs={k: v for k, v in good.items() if k != "eta"}), "eta"),
        (dict(state="FAIL", value=0.3, user_attrs={"error": "x"}), "no value"),
        (dict(state="FAIL", value=None, user_attrs={}), "error"),
        (dict(state="PRUNED", value=None, user_attrs={}), "state"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            record_trial(study, point, DISTS, intermediate={}, **kwargs)
    with pytest.raises(ValueError, match="is sgdw/cosine but study"):
        record_trial(study, GridPoint("sgdw", "cosine", 1e-2, 0.1, 4, 0), DISTS, state="COMPLETE", value=0.3,
                     intermediate={}, user_attrs=good)
    with pytest.raises(ValueError, match="isn't contained"):  # Optuna's own check of the distributions
        record_trial(study, GridPoint("sgd", "cosine", 1.0, 0.1, 4, 0), DISTS, state="COMPLETE", value=0.3,
                     intermediate={}, user_attrs=good)
    with pytest.raises(ValueError, match="1-based"):
        record_trial(study, point, DISTS, state="COMPLETE", value=0.3, intermediate={0: 0.3}, user_attrs=good)
    assert optuna.load_study(study_name=study.study_name, storage=rdb).trials == []


def test_completed_points_is_the_resume_set(rdb, sweep_name):
    a = ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs())
    b = ensure_study(rdb, sweep=sweep_name, optimizer="adamw", schedule="step", attrs=study_attrs())
    other = ensure_study(rdb, sweep=sweep_name + "-other", optimizer="sgd", schedule="cosine", attrs=study_attrs())
    written = {
        GridPoint("sgd", "cosine", 1e-3, 0.025, 2, 0),
        GridPoint("sgd", "cosine", 1e-2, 0.1, 4, 1),
        GridPoint("adamw", "step", 1e-3, 0.1, 2, 1),
    }
    for p in written:
        _complete(a if p.optimizer == "sgd" else b, p)
    _complete(a, GridPoint("sgd", "cosine", 1e-3, 0.025, 2, 0), diverged=True, value=0.9)  # rerun: same point
    record_trial(a, GridPoint("sgd", "cosine", 1e-2, 0.025, 2, 0), DISTS, state="FAIL", value=None,
                 intermediate={}, user_attrs={"error": "x"})
    _complete(other, GridPoint("sgd", "cosine", 1e-2, 0.025, 2, 0))
    try:
        done = completed_points(rdb.engine, sweep_name)
        assert done == written
        # Points rebuilt from a spec with float noise still match.
        spec_point = GridPoint("sgd", "cosine", 10 ** math.log10(1e-2), 0.1 * (1 + 2e-16), 4, 1)
        assert spec_point in done
        assert completed_points(rdb.engine, "no-such-sweep") == set()
    finally:
        delete_sweep(rdb, sweep_name + "-other")


def test_delete_sweep(rdb, sweep_name):
    study = ensure_study(rdb, sweep=sweep_name, optimizer="sgd", schedule="cosine", attrs=study_attrs())
    _complete(study, GridPoint("sgd", "cosine", 1e-3, 0.025, 2, 0))
    assert delete_sweep(rdb, sweep_name) == 1
    assert study.study_name not in optuna.get_all_study_names(rdb)
    with pytest.raises(UnknownNameError):
        delete_sweep(rdb, sweep_name)


WRITER = r"""
import sys, optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
from storage import GridPoint, ensure_study, grid_distributions, open_storage, record_trial
from tests.planted import study_attrs, trial_attrs
url, sweep, worker, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rdb = open_storage(url)
shared = ensure_study(rdb, sweep=sweep, optimizer="sgd", schedule="cosine", attrs=study_attrs(grid_size=2 * n))
own = ensure_study(rdb, sweep=sweep, optimizer="sgdw", schedule=f"w{worker}", attrs=study_attrs(grid_size=n))
dists = grid_distributions([1e-3], [0.05], [2], range(2 * n))
for i in range(n):
    seed = worker * n + i
    for study, opt, sched in ((shared, "sgd", "cosine"), (own, "sgdw", f"w{worker}")):
        attrs = trial_attrs(0.3, 2, 0.01)
        record_trial(study, GridPoint(opt, sched, 1e-3, 0.05, 2, seed), dists, state="COMPLETE", value=0.3,
                     intermediate={1: 0.4, 2: 0.3}, user_attrs=attrs)
"""


def test_concurrent_writers_lose_nothing(fresh_url, sweep_name):
    """Two driver processes start on an empty database (both create Optuna's tables) and write
    into one shared study, and one study each, at the same time."""
    n = 5
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, fresh_url, sweep_name, str(w), str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for w in range(2)
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err[-3000:]
    rdb = open_storage(fresh_url, read_only=True)
    expected = {GridPoint("sgd", "cosine", 1e-3, 0.05, 2, s) for s in range(2 * n)}
    expected |= {GridPoint("sgdw", f"w{w}", 1e-3, 0.05, 2, w * n + i) for w in range(2) for i in range(n)}
    assert completed_points(rdb.engine, sweep_name) == expected
    frame = trials_frame(rdb, sweep=sweep_name)
    assert len(frame) == 4 * n  # nothing lost, nothing doubled
    shared = frame[frame["optimizer"] == "sgd"]
    assert sorted(shared["number"]) == list(range(2 * n))  # Optuna's numbering stayed consistent
    assert (frame["state"] == "COMPLETE").all() and frame["value"].eq(0.3).all()
    with rdb.engine.connect() as conn:  # table creation did not race: one stamp, one version row
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
        assert conn.exec_driver_sql("SELECT count(*) FROM version_info").scalar() == 1
