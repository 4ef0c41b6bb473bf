"""Pure arithmetic of storage.analysis / storage.basin_shape on hand-made frames (no database), and the
Core table definitions against Optuna's own models."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from storage import analysis
from storage import panel
from storage.basin_shape import _principal_axis


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
    return analysis.effective_trials(frame(rows))


def couple(eff, n_boot=400, n_test=10_000):
    """storage.panel's answer for one synthetic panel (what storage.coupling runs after its read)."""
    meta = pd.Series({"sweep": "s", "n_test": n_test, "chance": 0.9})
    return panel.answer(eff, ALPHAS, LAMBDAS, meta, panel.seed_draws_for(eff, n_boot)).coupling


ALPHAS = [2.0**k for k in range(-8, -2)]
LAMBDAS = [2.0**k for k in range(-8, -2)]


def test_coupling_interval_reflects_seed_noise_and_is_reproducible():
    rng = np.random.default_rng(1)
    diag = lambda a, w: 0.1 + 0.02 * math.log2(a * w / 2.0**-11) ** 2  # noqa: E731
    eff = _panel(diag, ALPHAS, LAMBDAS, seeds=range(4), noise=0.006, rng=rng)
    c = couple(eff)
    assert c.verdict == "coupled" and c.sources == ("test set", "seeds")
    lo, hi = c.slope_ci
    assert lo < -1.0 < hi < 0 and -1.3 < c.slope < -0.7
    assert couple(eff).slope_ci == c.slope_ci  # fixed RNG seed: reproducible


def test_axis_aligned_basin_is_decoupled_and_a_flat_one_inconclusive():
    axis = lambda a, w: 0.1 + 0.02 * math.log2(w / 2.0**-5) ** 2  # noqa: E731
    c = couple(_panel(axis, ALPHAS, LAMBDAS, seeds=[0]))
    assert c.verdict == "decoupled" and c.slope == pytest.approx(0.0, abs=1e-9)
    assert c.axis_angle == pytest.approx(0.0, abs=1e-6)
    flat = lambda a, w: 0.1 + 0.01 * math.log2(a / 2.0**-5) ** 2  # noqa: E731  (no λ_norm dependence)
    f = couple(_panel(flat, ALPHAS, LAMBDAS, seeds=[0]))
    # no λ_norm effect: the surface does not curve in λ_norm and no row's edge lies inside the grid
    assert f.verdict == "inconclusive" and f.valley_verdict == f.edge_verdict == "inconclusive"
    assert f.curvature_ci[0] <= 0 <= f.curvature_ci[1] and f.edge_slope is None and f.n_alpha == 0


def test_rows_where_everything_diverged_carry_no_lambda_star():
    diag = lambda a, w: 0.1 + 0.02 * math.log2(a * w / 2.0**-11) ** 2  # noqa: E731
    eff = _panel(diag, ALPHAS, LAMBDAS, seeds=[0])
    big = eff["lr"] == ALPHAS[-1]
    eff.loc[big, ["value", "diverged"]] = [0.9, True]
    c = couple(eff)
    assert ALPHAS[-1] not in [r["lr"] for r in c.rows]  # no λ_norm* for the α whose every cell diverged
    assert c.rows and all(r["lambda_star"] is not None for r in c.rows)
    assert c.verdict == "coupled" and c.slope == pytest.approx(-1.0, abs=0.15)
    assert c.edge_slope == pytest.approx(-1.0, abs=0.15)


def test_principal_axis_angles():
    diag = np.array([[i, -i] for i in range(5)], float)
    assert _principal_axis(diag)[0] == pytest.approx(-45.0)
    vertical = np.array([[0, i] for i in range(5)], float) + np.array([[0.01 * (i % 2), 0] for i in range(5)])
    assert abs(_principal_axis(vertical)[0]) == pytest.approx(90.0, abs=1.0)


def _full_grid_by_merge(lr_values, wd_norm_values, ranked):
    """full_grid's rule as pandas merges (its earlier form): the cross product, ranked cells left-joined."""
    lrs = pd.DataFrame({"lr": np.asarray(lr_values, float)}).assign(_lr=lambda d: analysis.grid_key(d["lr"]))
    wds = pd.DataFrame({"wd_norm": np.asarray(wd_norm_values, float)}).assign(_wd=lambda d: analysis.grid_key(d["wd_norm"]))
    grid = lrs.drop_duplicates("_lr").merge(wds.drop_duplicates("_wd"), how="cross")
    keep = ["_lr", "_wd", "wd", "test_error", "test_error_std", "n_seeds", "n_failed", "n_diverged",
            "diverged_any", "diverged_all", "rank", "top10", "best"]
    out = grid.merge(ranked[keep], on=["_lr", "_wd"], how="left")
    out["missing"] = out["n_seeds"].isna()
    for col in ("n_seeds", "n_failed", "n_diverged"):
        out[col] = out[col].fillna(0).astype(int)
    for col in ("diverged_any", "diverged_all", "top10", "best"):
        out[col] = out[col].astype("boolean").fillna(False).astype(bool)
    out["rank"] = out["rank"].astype("Int64")
    return out


def test_full_grid_is_the_left_join_of_the_ranked_cells_on_the_product():
    rng = np.random.default_rng(3)
    rows, tid = [], 0
    for lr in (0.4, 0.1, 0.2, 0.1 * (1 + 1e-15)):  # unsorted, one value twice up to the grid key
        for wd in (0.05, 0.1, 0.025):
            for seed in range(2):
                tid += 1
                state = rng.choice(["COMPLETE", "COMPLETE", "FAIL"])
                rows.append(("a", lr, wd, seed, state, rng.uniform(0.1, 0.9) if state == "COMPLETE" else np.nan,
                             bool(rng.random() < 0.2), tid))
    eff = analysis.effective_trials(frame([r for r in rows if (r[1], r[2]) != (0.2, 0.025)]))  # a hole
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    axes = ([0.4, 0.1, 0.2, 0.1 * (1 + 1e-15), 0.8], [0.05, 0.1, 0.025])  # 0.8: a row without trials
    got, want = analysis.full_grid(*axes, ranked), _full_grid_by_merge(*axes, ranked)
    pd.testing.assert_frame_equal(got[list(want.columns)], want)
    assert got["missing"].sum() == 3 + 1 and not got.loc[got["missing"], "best"].any()
    with pytest.raises(ValueError, match="one ranked row per"):
        analysis.full_grid(*axes, pd.concat([ranked, ranked]))
