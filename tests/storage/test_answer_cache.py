"""storage.answer_cache on real SQLite and PostgreSQL: a repeated question is served from the cache,
any new or finished trial (or a study attr) makes a new key, and a bad cache costs speed, never the answer."""

from __future__ import annotations

import os
import pickle

import optuna
import pandas as pd
import pytest

import storage
from storage import answer_cache, panel
from tests.storage.planted import ALPHAS, LAMBDAS, coupled_error, plant_sweep, raw_wd, trial_attrs


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The cache on, in a folder of this test's own; counts the computations of the panels' answers."""
    folder = tmp_path / "answers"
    monkeypatch.setenv("BASIN_CACHE", "on")
    monkeypatch.setenv("BASIN_CACHE_DIR", str(folder))
    computed = []
    real = panel.answers

    def counting(*args, **kwargs):
        computed.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(panel, "answers", counting)
    return folder, computed


def _add_trial(rdb, sweep, seed):
    """One more COMPLETE sgd/cosine trial (a new seed of the grid's first cell); the study's attrs unchanged."""
    study = optuna.load_study(study_name=storage.study_name(sweep, "sgd", "cosine"), storage=rdb)
    point = storage.GridPoint("sgd", "cosine", ALPHAS[0], LAMBDAS[0], 1, seed)
    dists = storage.grid_distributions(ALPHAS, LAMBDAS, [1], [0, seed])
    value = coupled_error(ALPHAS[0], LAMBDAS[0], 1, seed)
    storage.record_trial(study, point, dists, state="COMPLETE", value=value, intermediate={1: value},
                         user_attrs=trial_attrs(value, 1, raw_wd(LAMBDAS[0], 1)))


def test_a_repeated_question_is_answered_from_the_cache_until_a_trial_lands(rdb, sweep_name, cache):
    folder, computed = cache
    plant_sweep(rdb, sweep_name)
    first = storage.best(rdb, sweep=sweep_name)
    assert len(computed) == 1 and len(list(folder.glob("*.pkl"))) == 1
    again = storage.best(rdb, sweep=sweep_name)
    assert len(computed) == 1  # served, not computed
    pd.testing.assert_frame_equal(first, again)
    storage.best(rdb, sweep=sweep_name, n_boot=200)  # other arguments: another answer
    assert len(computed) == 2

    before = int(first.loc[(first["optimizer"] == "sgd") & (first["schedule"] == "cosine"), "n_complete"].iloc[0])
    _add_trial(rdb, sweep_name, seed=7)
    after = storage.best(rdb, sweep=sweep_name)
    assert len(computed) == 3  # the new trial changed the key
    row = after[(after["optimizer"] == "sgd") & (after["schedule"] == "cosine")]
    assert int(row["n_complete"].iloc[0]) == before + 1

    # a study attr changed (the adaptive flag a sweep records) also makes a new key
    study = next(s for s in rdb.get_all_studies() if s.study_name.startswith(sweep_name))
    rdb.set_study_user_attr(study._study_id, "adaptive", True)
    storage.best(rdb, sweep=sweep_name)
    assert len(computed) == 4


def test_a_bad_cache_costs_speed_never_the_answer(rdb, sweep_name, cache, monkeypatch):
    folder, computed = cache
    plant_sweep(rdb, sweep_name)
    want = storage.coupling(rdb, sweep=sweep_name)
    (path,) = folder.glob("*.pkl")
    path.write_bytes(b"not a pickle")  # a truncated or foreign file: computed again, and replaced
    got = storage.coupling(rdb, sweep=sweep_name)
    assert len(computed) == 2 and [c.to_dict() for c in got] == [c.to_dict() for c in want]
    assert pickle.loads(path.read_bytes()).__class__ is list

    monkeypatch.setenv("BASIN_CACHE", "off")  # off: nothing read, nothing kept
    for p in folder.glob("*.pkl"):
        p.unlink()
    storage.coupling(rdb, sweep=sweep_name)
    assert len(computed) == 3 and not list(folder.glob("*.pkl"))

    monkeypatch.setenv("BASIN_CACHE", "on")
    folder.parent.joinpath("blocked").write_text("a file where the folder should be")
    monkeypatch.setenv("BASIN_CACHE_DIR", str(folder.parent / "blocked" / "answers"))
    assert [c.to_dict() for c in storage.coupling(rdb, sweep=sweep_name)] == [c.to_dict() for c in want]


def test_the_cache_keeps_the_most_recently_used_answers(tmp_path, monkeypatch):
    monkeypatch.setattr(answer_cache, "MAX_FILES", 3)
    for i in range(5):
        path = tmp_path / f"{i}.pkl"
        path.write_bytes(b"x")
        os.utime(path, (1000 + i, 1000 + i))
    os.utime(tmp_path / "0.pkl", (2000, 2000))  # used last
    answer_cache._prune(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.pkl")) == ["0.pkl", "3.pkl", "4.pkl"]


def test_the_key_covers_the_code(monkeypatch, tmp_path):
    """Another source of the storage package or another library version: another key."""
    monkeypatch.setenv("BASIN_CACHE_DIR", str(tmp_path))
    version = answer_cache.code_version()
    assert len(version) == 64 and answer_cache.code_version() == version
    answer_cache.code_version.cache_clear()
    import importlib.metadata

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: real(name) + ("+other" if name == "pandas" else ""))
    try:
        assert answer_cache.code_version() != version
    finally:
        answer_cache.code_version.cache_clear()


def test_every_remembered_answer_is_served_the_second_time(rdb, sweep_name, cache):
    """The answers `basin reproduce` and the Budgets page read are kept too, each under its own key."""
    _, computed = cache
    plant_sweep(rdb, sweep_name)
    for ask in (lambda: storage.best_by_budget(rdb, sweep_name),
                lambda: storage.headline(rdb, sweep_name),
                lambda: storage.best_and_headline(rdb, sweep_name)):
        before = len(computed)
        first = ask()
        assert len(computed) > before
        between = len(computed)
        again = ask()
        assert len(computed) == between  # served
        pd.testing.assert_frame_equal(*(x if isinstance(x, pd.DataFrame) else x[0] for x in (first, again)))
