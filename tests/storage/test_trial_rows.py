"""basin_trials, Basin's narrow copy of finished trials (storage.sql, storage.record.sync_trial_rows):
a read through it returns exactly what the read of Optuna's own tables returns, whatever the database
holds beside the copies — claims in flight, trials another tool wrote, ids reused after another tool
deleted a study, a database an older Basin wrote."""

from __future__ import annotations

import optuna
import pandas as pd
import sqlalchemy as sa

import storage
from storage import sql, tables
from storage.record import claim_points, sync_trial_rows
from tests.planted import raw_wd, study_attrs, trial_attrs

ALPHAS, LAMBDAS, BUDGETS, SEEDS = [1e-3, 2e-3], [0.025, 0.05], [1, 2], [0, 1]
READS = [  # (attrs, budget, some trial ids only)
    (("diverged", "wd"), None, False),
    (tables.ROW_ATTRS, 2, False),
    (("diverged", "seconds", "node"), None, True),
    (("diverged", "test_error"), None, False),  # an attr basin_trials lacks: Optuna's tables for every trial
]


def _point(optimizer, i):
    lr, wd_norm, budget, seed = [(a, w, b, s) for a in ALPHAS for w in LAMBDAS for b in BUDGETS for s in SEEDS][i]
    return storage.GridPoint(optimizer, "cosine", lr, wd_norm, budget, seed)


def _record(study, optimizer, i, *, fail=False, claim=None, val=False):
    point = _point(optimizer, i)
    dists = storage.grid_distributions(ALPHAS, LAMBDAS, BUDGETS, SEEDS)
    if fail:
        storage.record_trial(study, point, dists, state="FAIL", value=None, intermediate={},
                             user_attrs={"error": "CUDA error: out of memory"}, claim=claim)
        return
    err = 0.1 + 0.01 * i
    attrs = trial_attrs(err, point.budget, raw_wd(point.wd_norm, point.budget), diverged=i % 5 == 4, seconds=1.5 + i)
    if val:
        attrs["val_value"] = err + 0.003
    storage.record_trial(study, point, dists, state="COMPLETE", value=err, intermediate={1: err},
                         user_attrs=attrs, claim=claim)


def _fill(rdb, sweep, optimizer="sgd"):
    """A study holding every kind of trial: COMPLETE (some diverged, some with a validation value), FAIL,
    a claim finished, a claim still RUNNING and a trial Optuna recorded itself after Basin's last copy."""
    study = storage.ensure_study(rdb, sweep=sweep, optimizer=optimizer, schedule="cosine",
                                 attrs=study_attrs(grid_size=16))
    for i in range(8):
        _record(study, optimizer, i, val=i % 2 == 0)
    _record(study, optimizer, 8, fail=True)
    dists = {optimizer: storage.grid_distributions(ALPHAS, LAMBDAS, BUDGETS, SEEDS)}
    claimed, _ = claim_points(rdb, {(optimizer, "cosine"): study}, dists, [_point(optimizer, 9), _point(optimizer, 10)],
                              sweep)
    _record(study, optimizer, 9, claim=claimed[_point(optimizer, 9)])
    outside = optuna.trial.create_trial(  # written by Optuna alone: no copy in basin_trials
        state=optuna.trial.TrialState.COMPLETE, value=0.5, params=_point(optimizer, 11).params(),
        distributions=dists[optimizer], user_attrs={"diverged": False, "wd": 1e-4, "node": "elsewhere"})
    study.add_trial(outside)
    return study


def _row_count(engine, study_id=None) -> int:
    where = "" if study_id is None else f" WHERE study_id = {int(study_id)}"
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT COUNT(*) FROM basin_trials{where}").scalar()


def _copies(engine, study_id) -> int:
    """Rows of basin_trials that are copies of a trial the study holds now."""
    with engine.connect() as conn:
        return conn.exec_driver_sql(f"SELECT COUNT(*) FROM basin_trials b JOIN trials t ON {sql.row_of('b', 't')} "
                                    f"WHERE t.study_id = {int(study_id)}").scalar()


def _reads(engine, study_ids, monkeypatch):
    """Each read of READS through basin_trials and through Optuna's tables alone, as pairs of frames."""
    all_ids = sql.fetch_trial_rows(engine, study_ids)["trial_id"].tolist()
    pairs = []
    for attrs, budget, some in READS:
        kw = dict(budget=budget, trial_ids=all_ids[::2] if some else None)
        with monkeypatch.context() as m:
            m.setattr(sql, "has_trial_rows", lambda engine: False)
            pivot = sql.fetch_trial_rows(engine, study_ids, attrs, **kw)
        pairs.append((sql.fetch_trial_rows(engine, study_ids, attrs, **kw), pivot))
    return pairs


def test_a_read_through_the_copies_equals_the_read_of_optunas_tables(fresh_url, monkeypatch):
    rdb = storage.open_storage(fresh_url)
    study = _fill(rdb, "rows")
    engine = rdb.engine
    states = sql.fetch_trial_rows(engine, [study._study_id])["state"].value_counts().to_dict()
    assert states == {"COMPLETE": 10, "FAIL": 1, "RUNNING": 1}
    # every finished trial Basin recorded has its row; the RUNNING claim and Optuna's own trial have none
    assert _row_count(engine) == 10
    reader = storage.open_storage(fresh_url, read_only=True)
    for through_rows, pivot in _reads(reader.engine, [study._study_id], monkeypatch):
        pd.testing.assert_frame_equal(through_rows, pivot, check_exact=True)
    # ...and the rows are really what the read returns (not the pivot under another name)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE basin_trials SET value = 0.987654 WHERE trial_id = "
                             "(SELECT MIN(trial_id) FROM basin_trials)")
    first = sql.fetch_trial_rows(reader.engine, [study._study_id])
    assert first.loc[0, "value"] == 0.987654
    # the next recording copies Optuna's own trial too (and an answer reads the same either way)
    _record(study, "sgd", 12)
    assert _row_count(engine) == 12


def test_a_trial_id_used_again_never_meets_the_old_trials_row(fresh_url, monkeypatch):
    """Optuna's delete_study leaves basin_trials alone; SQLite then hands the deleted trials' ids to the
    next trials. Their rows are not the new trials' until the next copy replaces them."""
    rdb = storage.open_storage(fresh_url)
    first = _fill(rdb, "again")
    old = sql.fetch_trial_rows(rdb.engine, [first._study_id])
    optuna.delete_study(study_name=first.study_name, storage=rdb)
    assert _row_count(rdb.engine) == 10  # orphans of the deleted study
    study = storage.ensure_study(rdb, sweep="again", optimizer="sgd", schedule="cosine", attrs=study_attrs(grid_size=16))
    dists = storage.grid_distributions(ALPHAS, LAMBDAS, BUDGETS, SEEDS)
    for i in (3, 2, 1, 0):  # other points, other values, same ids on SQLite
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.COMPLETE, value=0.3 + 0.01 * i, params=_point("sgd", i).params(),
            distributions=dists, user_attrs={"diverged": True, "wd": 2e-4}))
    new = sql.fetch_trial_rows(rdb.engine, [study._study_id], ["diverged", "wd"])
    if rdb.engine.dialect.name == "sqlite":
        assert set(new["trial_id"]) <= set(old["trial_id"])  # the case under test really happened
    for through_rows, pivot in _reads(rdb.engine, [study._study_id], monkeypatch):
        pd.testing.assert_frame_equal(through_rows, pivot, check_exact=True)
    assert (new["value"] >= 0.3).all() and new[sql.attr_column(0)].eq("true").all()
    assert _copies(rdb.engine, study._study_id) == 0
    sync_trial_rows(rdb, [study._study_id])  # the copies now replace the orphans of the same ids
    assert _copies(rdb.engine, study._study_id) == 4
    for through_rows, pivot in _reads(rdb.engine, [study._study_id], monkeypatch):
        pd.testing.assert_frame_equal(through_rows, pivot, check_exact=True)


def test_an_older_database_is_read_and_then_copied(fresh_url, monkeypatch):
    """A database without basin_trials (an older Basin's) reads from Optuna's tables; the next recording
    into a study copies that study's trials; delete_sweep takes the copies with the trials."""
    rdb = storage.open_storage(fresh_url)
    sgd, sgdw = _fill(rdb, "older", "sgd"), _fill(rdb, "older", "sgdw")
    answer = storage.best(rdb, sweep="older")
    with rdb.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE basin_trials")
    assert not sql.has_trial_rows(rdb.engine)
    pd.testing.assert_frame_equal(storage.best(rdb, sweep="older"), answer, check_exact=True)
    storage.ensure_study(rdb, sweep="older", optimizer="sgd", schedule="cosine", attrs=study_attrs(grid_size=16))
    assert _row_count(rdb.engine, sgd._study_id) == 11 and _row_count(rdb.engine, sgdw._study_id) == 0
    pd.testing.assert_frame_equal(storage.best(rdb, sweep="older"), answer, check_exact=True)
    storage.delete_sweep(rdb, "older")
    assert _row_count(rdb.engine) == 0


def test_a_failed_copy_leaves_the_trial_recorded(fresh_url, monkeypatch, caplog):
    """The copy runs after Optuna's commit: when it cannot (here: the table cannot be created), the trial
    is recorded all the same, a warning says so, and reads take it from Optuna's tables."""
    rdb = storage.open_storage(fresh_url)
    study = storage.ensure_study(rdb, sweep="nocopy", optimizer="sgd", schedule="cosine", attrs=study_attrs(grid_size=16))

    def refuse(*args, **kwargs):
        raise sa.exc.OperationalError("CREATE TABLE basin_trials", {}, Exception("database is locked"))

    with rdb.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE basin_trials")
    monkeypatch.setattr(tables.basin_metadata, "create_all", refuse)
    _record(study, "sgd", 0)
    assert "basin_trials not updated" in caplog.text
    frame = storage.trials_frame(rdb, sweep="nocopy")
    assert frame["state"].tolist() == ["COMPLETE"] and frame["value"].tolist() == [0.1]


def test_postgresqls_csv_read_equals_sqlites(tmp_path, monkeypatch):
    """The same trials recorded into a SQLite file and a PostgreSQL schema read as the same frames (COPY's
    CSV through Arrow's reader: PostgreSQL's NULL, an unquoted empty field, is None or NaN as SQLite's)."""
    from storage.testing import scratch_schema
    from tests.conftest import require_pg

    frames = []
    with scratch_schema(require_pg()) as pg_url:
        for url in (f"sqlite:///{tmp_path / 'same.db'}", pg_url):
            study = _fill(storage.open_storage(url), "same")
            reader = storage.open_storage(url, read_only=True)
            frames.append([frame for pair in _reads(reader.engine, [study._study_id], monkeypatch) for frame in pair])
    sqlite, postgresql = frames
    assert postgresql[0]["value"].isna().sum() == 2 and postgresql[0][sql.attr_column(1)].isna().sum() == 2
    for a, b in zip(sqlite, postgresql):
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_an_infinite_value_reads_back_infinite(fresh_url):
    """Optuna keeps ±inf as a NULL value with value_type INF_POS / INF_NEG; the frame has ±inf, through
    Optuna's tables and through the copies."""
    rdb = storage.open_storage(fresh_url)
    study = storage.ensure_study(rdb, sweep="inf", optimizer="sgd", schedule="cosine", attrs=study_attrs(grid_size=16))
    dists = storage.grid_distributions(ALPHAS, LAMBDAS, BUDGETS, SEEDS)
    for i, value in enumerate((float("inf"), float("-inf"), 0.25)):
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=value,
                                                  params=_point("sgd", i).params(), distributions=dists,
                                                  user_attrs={"diverged": False, "wd": 1e-4}))
    expected = [float("inf"), float("-inf"), 0.25]
    assert storage.trials_frame(rdb, sweep="inf")["value"].tolist() == expected  # Optuna's tables
    sync_trial_rows(rdb, [study._study_id])
    assert _copies(rdb.engine, study._study_id) == 3
    assert storage.trials_frame(rdb, sweep="inf")["value"].tolist() == expected  # the copies
