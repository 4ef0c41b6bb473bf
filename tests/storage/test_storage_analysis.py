"""Pure arithmetic of storage.analysis / storage.basin_shape on hand-made frames (no database), and the
Core table definitions against Optuna's own models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from storage import analysis, tables
from storage.basin_shape import _principal_axis, panel_coupling


def frame(rows):
    """Trial rows: (study, lr, wd_norm, seed, state, value, diverged, trial_id)."""
    df = pd.DataFrame(rows, columns=["study", "lr", "wd_norm", "seed", "state", "value", "diverged", "trial_id"])
    df["sweep"], df["optimizer"], df["schedule"], df["budget"], df["wd"] = "s", "sgd", "cosine", 10, 0.01
    return df


def test_effective_trials_latest_complete_else_latest_fail():
    df = frame([
        ("s/sgd/cosine", 0.1, 0.05, 0, "COMPLETE", 0.5, False, 1),
        ("s/sgd/cosine", 0.1, 0.05, 0, "COMPLETE", 0.3, False, 5),  # rerun: latest COMPLETE wins
        ("s/sgd/cosine", 0.1, 0.05, 0, "FAIL", np.nan, False, 9),  # a later FAIL does not erase it
        ("s/sgd/cosine", 0.1, 0.05, 1, "FAIL", np.nan, False, 2),
        ("s/sgd/cosine", 0.1, 0.05, 1, "FAIL", np.nan, False, 3),  # two FAILs: one point
        ("s/sgd/cosine", 0.1 * (1 + 1e-15), 0.05, 2, "RUNNING", np.nan, False, 4),  # ignored
    ])
    eff = analysis.effective_trials(df)
    assert list(eff["trial_id"]) == [3, 5]


def test_ranking_tie_break_is_documented_order():
    df = frame([
        ("a", 0.2, 0.05, 0, "COMPLETE", 0.1, False, 1),
        ("a", 0.1, 0.10, 0, "COMPLETE", 0.1, False, 2),
        ("a", 0.1, 0.05, 0, "COMPLETE", 0.1 + 1e-15, False, 3),  # equal at 12 decimals
        ("a", 0.4, 0.05, 0, "COMPLETE", 0.1, False, 4),
        ("a", 0.4, 0.05, 1, "COMPLETE", 0.1, False, 5),  # more seeds: wins the tie
    ])
    ranked = analysis.rank_cells(analysis.cell_stats(analysis.effective_trials(df)))
    order = ranked.sort_values("rank")[["lr", "wd_norm"]].values.tolist()
    assert order == [[0.4, 0.05], [0.1, 0.05], [0.1, 0.10], [0.2, 0.05]]
    top = analysis.best_cells(analysis.cell_stats(analysis.effective_trials(df)))
    assert top["n_tied"].iloc[0] == 4 and top["n_seeds"].iloc[0] == 2


def test_grid_key_matches_normalise_float():
    from storage.schema import normalise_float

    x = pd.Series([10**-2.5, 10**-2.5 * (1 + 1e-14), 0.1 + 0.2, 0.3])
    keys = analysis.grid_key(x)
    assert keys[0] == keys[1] == normalise_float(10**-2.5) and keys[2] == keys[3] == 0.3


def _panel(error, alphas, lambdas, seeds, noise=0.0, rng=None):
    rows, tid = [], 0
    for a in alphas:
        for w in lambdas:
            for s in seeds:
                tid += 1
                e = error(a, w) + (rng.normal(0, noise) if rng is not None else 0.0)
                rows.append(("p", a, w, s, "COMPLETE", e, False, tid))
    eff = analysis.effective_trials(frame(rows))
    return eff, analysis.cell_stats(eff)


ALPHAS = [2.0**k for k in range(-8, -2)]
LAMBDAS = [2.0**k for k in range(-8, -2)]


def test_bootstrap_interval_reflects_seed_noise():
    rng = np.random.default_rng(1)
    diag = lambda a, w: 0.1 + 0.01 * math.log2(a * w / 2.0**-11) ** 2  # noqa: E731
    eff, cells = _panel(diag, ALPHAS, LAMBDAS, seeds=range(4), noise=0.012, rng=rng)
    c = panel_coupling(eff, cells, n_boot=400)
    assert c.verdict == "coupled"
    lo, hi = c.slope_ci
    assert lo < hi  # seed noise moves some argmins
    assert lo <= -0.8 and hi >= -1.2 and -1.3 < c.slope < -0.7
    again = panel_coupling(eff, cells, n_boot=400)
    assert again.slope_ci == c.slope_ci  # fixed RNG seed: reproducible


def test_axis_aligned_basin_and_flat_argmin_ties():
    flat = lambda a, w: 0.1 + 0.01 * math.log2(w / 2.0**-5) ** 2  # noqa: E731
    eff, cells = _panel(flat, ALPHAS, LAMBDAS, seeds=[0])
    c = panel_coupling(eff, cells, n_boot=50)
    assert c.verdict == "decoupled" and c.slope == pytest.approx(0.0)
    assert c.axis_angle == pytest.approx(0.0, abs=1e-6)
    # Ties along a row: the argmin is the geometric mean of the tied λ_norm (no bias toward an end).
    tie = lambda a, w: 0.1 if w in (2.0**-6, 2.0**-4) else 0.2  # noqa: E731
    eff, cells = _panel(tie, ALPHAS, LAMBDAS, seeds=[0])
    c = panel_coupling(eff, cells, n_boot=0)
    assert c.slope == pytest.approx(0.0) and c.slope_ci is None


def test_rows_where_everything_diverged_carry_no_lambda_star():
    diag = lambda a, w: 0.1 + 0.01 * math.log2(a * w / 2.0**-11) ** 2  # noqa: E731
    eff, cells = _panel(diag, ALPHAS, LAMBDAS, seeds=[0])
    big = eff["lr"] == ALPHAS[-1]
    eff.loc[big, ["value", "diverged"]] = [0.9, True]
    cells = analysis.cell_stats(eff)
    c = panel_coupling(eff, cells, n_boot=0)
    assert c.n_alpha == len(ALPHAS) - 1 and any("every cell diverged" in n for n in c.notes)
    assert c.slope == pytest.approx(-1.0, abs=0.15)


def test_principal_axis_angles():
    diag = np.array([[i, -i] for i in range(5)], float)
    assert _principal_axis(diag)[0] == pytest.approx(-45.0)
    vertical = np.array([[0, i] for i in range(5)], float) + np.array([[0.01 * (i % 2), 0] for i in range(5)])
    assert abs(_principal_axis(vertical)[0]) == pytest.approx(90.0, abs=1.0)


def test_core_tables_match_optunas_models():
    from optuna.storages._rdb import models

    theirs = models.BaseModel.metadata.tables
    for name, table in tables.metadata.tables.items():
        assert name in theirs, name
        assert set(table.columns.keys()) <= set(theirs[name].columns.keys()), name
    # Every trial child table Optuna has is deleted by delete_sweep.
    children = {t.name for t in theirs.values() if "trial_id" in t.columns and t.name != "trials"}
    assert children == {t.name for t in tables.TRIAL_CHILDREN}
    study_children = {t.name for t in theirs.values() if "study_id" in t.columns and t.name not in ("studies", "trials")}
    assert study_children == {t.name for t in tables.STUDY_CHILDREN}
