"""Read side against the planted sweep (tests/storage/conftest.py), whose answers are known exactly."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from storage import (
    EmptyStorageError,
    GridPoint,
    UnknownNameError,
    basin_grid,
    best,
    best_by_budget,
    coupling,
    coupling_frame,
    curves,
    export,
    export_frame,
    headline,
    list_sweeps,
    open_storage,
    trials_frame,
)
from storage import analysis as storage_analysis
from storage import answers as answers_module
from tests.planted import raw_wd
from tests.storage.planted import ALPHAS, LAMBDAS

N_TRIALS = 25 + 25 + 18 + 3 + 18  # sgd/cosine, sgdw/cosine, adamw, adam, sgd/step (incl. a rerun and a retry)


@pytest.fixture(scope="module")
def ro(planted):
    url, sweep = planted
    return open_storage(url, read_only=True), sweep


def _row(frame, **match):
    sel = frame
    for k, v in match.items():
        sel = sel[sel[k] == v]
    assert len(sel) == 1, (match, sel)
    return sel.iloc[0]


def test_trials_frame_is_one_row_per_trial(ro):
    rdb, sweep = ro
    frame = trials_frame(rdb, sweep=sweep)
    assert len(frame) == N_TRIALS
    for col in ("sweep", "optimizer", "schedule", "study", "trial_id", "number", "state", "lr", "wd_norm",
                "budget", "seed", "value", "diverged", "wd", "seconds", "node", "error"):
        assert col in frame.columns
    assert frame["budget"].dtype.kind == "i" and frame["seed"].dtype.kind == "i"
    fails = frame[frame["state"] == "FAIL"]
    assert len(fails) == 4 and fails["value"].isna().all() and (fails["error"] == "RuntimeError: boom").all()
    done = frame[frame["state"] == "COMPLETE"]
    assert done["value"].between(0, 1).all() and done["node"].eq("127.0.0.1").all()
    assert np.allclose(done["wd"], [raw_wd(w, b) for w, b in zip(done["wd_norm"], done["budget"])])
    one = trials_frame(rdb, study=f"{sweep}/sgd/step", attrs=("diverged", "device", "restart_epochs"))
    assert len(one) == 18 and set(one.columns) >= {"device", "restart_epochs"}
    assert one.loc[one["state"] == "COMPLETE", "restart_epochs"].map(lambda v: v == [2]).all()
    assert len(trials_frame(rdb, sweep=sweep, optimizer="adamw", budget=4)) == 6


def test_best_recovers_the_planted_optima(ro):
    rdb, sweep = ro
    table = best(rdb, sweep=sweep)
    assert list(table.columns[:9]) == ["sweep", "optimizer", "schedule", "budget", "lr", "wd_norm", "wd",
                                       "test_error", "test_error_std"]
    assert {"test_error_lo", "test_error_hi", "p_best", "n_plausible", "error", "error_lo", "error_hi", "selection",
            "sources", "n_seeds"} <= set(table.columns)
    assert len(table) == 1 + 1 + 3 + 3 + 1  # panels: sgd/cosine, sgdw, adamw ×3 T, adam ×3 T, sgd/step
    coupled = _row(table, optimizer="sgd", schedule="cosine")
    assert (coupled.lr, coupled.wd_norm) == (ALPHAS[2], LAMBDAS[2])
    assert coupled.test_error == pytest.approx(0.05) and coupled.n_seeds == 1
    assert coupled.wd == pytest.approx(raw_wd(LAMBDAS[2], 1))
    assert coupled.n_tied == 1 and coupled.border == "" and coupled.n_cells == 25 and coupled.n_complete == 25
    # one seed: the interval is the test set's binomial noise (n_test = 1000), never zero-width
    assert coupled.test_error_lo < 0.05 < coupled.test_error_hi and coupled.sources == "test set"
    assert coupled.selection == "naive" and coupled.error == coupled.test_error  # nothing else to select on
    assert 0 < coupled.p_best < 1 and coupled.n_plausible >= 1
    decoupled = _row(table, optimizer="sgdw")
    assert (decoupled.lr, decoupled.wd_norm, decoupled.test_error) == (ALPHAS[2], LAMBDAS[2], pytest.approx(0.04))
    assert math.isnan(decoupled.test_error_std)  # one seed: no spread to report
    for budget, err in ((1, 0.10), (4, 0.08), (16, 0.06)):
        w = _row(table, optimizer="adamw", budget=budget)
        assert (w.lr, w.wd_norm) == (ALPHAS[2], 0.05) and w.test_error == pytest.approx(err)
        assert "grid must grow toward smaller α" in w.border
    adam = _row(table, optimizer="adam", budget=16)
    assert "single α value" in adam.border and "single λ_norm value" in adam.border


def test_best_handles_ties_failures_divergence_and_holes(ro):
    rdb, sweep = ro
    misc = _row(best(rdb, sweep=sweep, schedule="step"), optimizer="sgd")
    # (α0, λ1) and (α1, λ0) tie at 0.2 with two seeds each: the smaller α wins.
    assert (misc.lr, misc.wd_norm, misc.test_error) == (ALPHAS[0], LAMBDAS[1], pytest.approx(0.2))
    assert misc.n_tied == 2
    assert misc.selection == "cross_fit" and misc.sources == "test set + seeds"  # two seeds: held-out reporting
    assert misc.error_lo <= misc.error <= misc.error_hi
    assert (misc.n_complete, misc.n_failed, misc.n_diverged, misc.n_cells) == (13, 3, 3, 7)
    assert misc.border == "best cell on the grid border: grid must grow toward smaller α"


def test_basin_grid_is_one_heatmap(ro):
    rdb, sweep = ro
    grid = basin_grid(rdb, f"{sweep}/sgd/step")  # one budget: no need to name it
    assert len(grid) == 9 and list(grid["lr"]) == sorted(grid["lr"])
    assert grid.attrs["budget"] == 2 and grid.attrs["chance"] == pytest.approx(0.9)
    assert grid.attrs["border"].startswith("best cell on the grid border")

    def cell(i, j):
        return _row(grid, lr=ALPHAS[i], wd_norm=LAMBDAS[j])

    assert cell(2, 0).missing and cell(2, 0).n_seeds == 0 and math.isnan(cell(2, 0).test_error)
    failed_only = cell(0, 0)
    assert not failed_only.missing and failed_only.n_seeds == 0 and failed_only.n_failed == 2
    assert pd.isna(failed_only["rank"])
    assert cell(0, 2).test_error == pytest.approx(0.45)  # the rerun (0.4) replaced the first run (0.6)
    assert cell(1, 1).test_error == pytest.approx(0.325) and cell(1, 1).n_failed == 0  # retry completed
    assert cell(1, 2).n_seeds == 1 and cell(1, 2).n_failed == 1 and cell(1, 2).test_error == pytest.approx(0.45)
    half = cell(2, 1)
    assert half.test_error == pytest.approx(0.7) and half.diverged_any and not half.diverged_all  # chance counted
    assert cell(2, 2).diverged_all and cell(2, 2).test_error == pytest.approx(0.9)
    assert cell(0, 1).best and cell(0, 1)["rank"] == 1 and cell(1, 0)["rank"] == 2
    assert grid["best"].sum() == 1 and grid["top10"].sum() == 7
    with pytest.raises(UnknownNameError, match="budgets there: 1, 4, 16"):
        basin_grid(rdb, f"{sweep}/adamw/cosine", 8)
    with pytest.raises(UnknownNameError, match="several budgets"):
        basin_grid(rdb, f"{sweep}/adamw/cosine")
    panel = basin_grid(rdb, f"{sweep}/adamw/cosine", 4)
    assert len(panel) == 6 and panel["wd"].dropna().round(12).nunique() == 3


def test_best_by_budget_recovers_inverse_sqrt_scaling(ro):
    rdb, sweep = ro
    table = best_by_budget(rdb, sweep=sweep, optimizer="adamw")
    assert list(table["budget"]) == [1, 4, 16]
    assert (table["wd_norm"] == 0.05).all()
    assert table["k"].iloc[0] == pytest.approx(0.0, abs=1e-9)  # λ_norm* stays put
    assert table["raw_exponent"].iloc[0] == pytest.approx(-0.5, abs=1e-9)  # λ* ∝ 1/√T
    assert table["k_lo"].iloc[0] < 0 < table["k_hi"].iloc[0] and table["favoured"].iloc[0] == "sqrt_rule"
    assert np.allclose(table["lambda_norm_star"], 0.05)
    assert (table["lambda_norm_lo"] <= 0.05).all() and (table["lambda_norm_hi"] >= 0.05).all()
    assert np.allclose(table["wd_sqrt_budget"], table["wd_sqrt_budget"].iloc[0])
    assert table["train_error"].notna().all()  # reported: under-fitting runs answer another question
    single = best_by_budget(rdb, sweep=sweep, optimizer="sgdw")
    assert single["n_budgets"].iloc[0] == 1 and math.isnan(single["k"].iloc[0])


def test_coupling_tells_diagonal_from_axis_aligned(ro):
    rdb, sweep = ro
    results = {(c.optimizer, c.schedule, c.budget): c for c in coupling(rdb, sweep=sweep, n_boot=200)}
    sgd = results[("sgd", "cosine", 1)]
    assert sgd.verdict == "coupled" and sgd.rests_on == ("argmin", "edge", "valley")  # each from its interval
    assert sgd.argmin_slope == pytest.approx(-1.0, abs=1e-9) and sgd.argmin_verdict == "coupled"
    assert sgd.argmin_slope_ci[0] < -1.0 < sgd.argmin_slope_ci[1] < 0 and sgd.n_argmin_rows == 5
    assert sgd.slope == pytest.approx(-1.0, abs=1e-9) and sgd.valley_verdict == "coupled"
    assert sgd.slope_ci[0] < -1.0 < sgd.slope_ci[1] < 0 and sgd.slope_ci[1] - sgd.slope_ci[0] > 0.05
    assert sgd.edge_slope == pytest.approx(-1.0, abs=1e-9) and sgd.edge_verdict == "coupled"
    assert sgd.edge_slope_ci[0] < -1.0 < sgd.edge_slope_ci[1] < 0
    assert sgd.curvature > 0 and sgd.curvature_ci[0] > 0 and sgd.n_fit_cells >= 7
    assert sgd.sources == ("test set",)
    assert -55 < sgd.axis_angle < -35  # the diagonal
    # every row enters, border rows included: λ_norm*(α) on the diagonal, the edge one grid step above it
    assert [round(r["lambda_star"], 9) for r in sgd.rows] == [round(LAMBDAS[k], 9) for k in (4, 3, 2, 1, 0)]
    assert [r["edge_located"] for r in sgd.rows] == [False, False, True, True, True] and sgd.n_alpha == 3
    assert [round(r["edge"], 9) for r in sgd.rows if r["edge_located"]] == [round(LAMBDAS[k], 9) for k in (3, 2, 1)]

    sgdw = results[("sgdw", "cosine", 1)]
    assert sgdw.verdict == "decoupled" and sgdw.rests_on == ("argmin", "edge", "valley")
    assert sgdw.argmin_slope == pytest.approx(0.0, abs=1e-9)
    assert sgdw.slope == pytest.approx(0.0, abs=1e-9) and abs(sgdw.axis_angle) < 20
    assert sgdw.slope_ci[0] < 0 < sgdw.slope_ci[1] and sgdw.slope_ci[0] > -0.25
    assert sgdw.edge_slope == pytest.approx(0.0, abs=1e-9) and sgdw.n_alpha == 5

    adam = results[("adam", "cosine", 4)]
    assert adam.verdict == "inconclusive" and adam.slope is None and adam.edge_slope is None
    assert any("only 1 α value(s)" in n for n in adam.notes)
    adamw = results[("adamw", "cosine", 4)]
    assert adamw.slope is None and any("only 2 α value(s)" in n for n in adamw.notes)
    assert any("grid must grow toward smaller α" in n for n in adamw.notes)

    frame = coupling_frame(list(results.values()))
    assert {"argmin_slope", "argmin_slope_lo", "argmin_slope_hi", "slope", "slope_lo", "slope_hi", "edge_slope",
            "edge_slope_lo", "edge_slope_hi", "verdict", "rests_on",
            "axis_angle", "notes"} <= set(frame.columns)
    json.dumps([c.to_dict() for c in results.values()])  # JSON-able


def test_the_coupling_alone_is_the_coupling_of_the_full_answer(ro):
    """``storage.coupling`` answers each panel's coupling alone (no cell intervals, best error or grid):
    the same couplings as the panels' full answers, and best's table without grid frames is the same."""
    from storage import panel as panel_step

    rdb, sweep = ro
    meta, eff, axes = panel_step.read(rdb, sweep)
    full = panel_step.answers(rdb, meta, eff, n_boot=200, coupling=True, axes=axes)
    alone = panel_step.answers(rdb, meta, eff, n_boot=200, coupling=True, axes=axes, coupling_only=True)
    assert list(full) == list(alone) and all(alone[k].grid is None and alone[k].best is None for k in alone)
    assert [full[k].coupling.to_dict() for k in full] == [alone[k].coupling.to_dict() for k in alone]
    assert [c.to_dict() for c in coupling(rdb, sweep=sweep, n_boot=200)] == sorted(
        (full[k].coupling.to_dict() for k in full), key=lambda d: (d["optimizer"], d["schedule"], d["budget"]))
    bare = panel_step.answers(rdb, meta, eff, n_boot=200, coupling=False, axes=axes, grid=False)
    ranked = storage_analysis.rank_cells(storage_analysis.cell_stats(eff))
    pd.testing.assert_frame_equal(answers_module._best_rows(ranked, bare), answers_module._best_rows(ranked, full),
                                  check_exact=True)


def test_coupling_edge_tolerance_is_configurable(ro):
    """``tol`` sets both the basin (rows with a cell within tol of the best) and the edge (within tol of each
    row's best): a tighter tol moves each row's edge toward its best and keeps fewer rows."""
    rdb, sweep = ro
    tight = coupling(rdb, sweep=sweep, optimizer="sgd", schedule="cosine", tol=0.01, n_boot=100)[0]
    loose = coupling(rdb, sweep=sweep, optimizer="sgd", schedule="cosine", tol=0.02, n_boot=100)[0]
    assert tight.tol == 0.01 and loose.tol == 0.02
    assert sum(r["in_basin"] for r in tight.rows) == 3 < sum(r["in_basin"] for r in loose.rows) == 5
    pairs = [(t["edge"], l["edge"]) for t, l in zip(tight.rows, loose.rows) if t["in_basin"]]
    assert all(t < l for t, l in pairs)  # a tighter tol: an earlier edge
    zero = coupling(rdb, sweep=sweep, optimizer="sgd", schedule="cosine", tol=0.0, n_boot=100)[0]
    assert zero.edge_slope is None and zero.argmin_slope is None and zero.verdict == "inconclusive"
    assert any("outside the basin" in n for n in zero.notes)  # only the best's own row is within 0 of it
    with pytest.raises(ValueError, match="tol"):
        coupling(rdb, sweep=sweep, tol=-1)


def test_headline_relative_improvement(ro):
    rdb, sweep = ro
    heads = headline(rdb, sweep=sweep)
    adamw = heads[heads["decoupled"] == "adamw"]
    assert list(adamw["budget"]) == [1, 4, 16]
    assert np.allclose(adamw["improvement"], 0.15)
    assert (adamw["improvement_lo"] < 0.15).all() and (adamw["improvement_hi"] > 0.15).all()
    assert adamw["paired"].all() and (adamw["selection"] == "naive").all()
    sgdw = _row(heads, decoupled="sgdw")
    assert (sgdw.coupled, sgdw.budget, sgdw.improvement) == ("sgd", 1, pytest.approx(0.2))
    assert len(heads) == 4  # sgd/step has no SGDW partner


def test_curves_for_top_cells_and_chosen_points(ro):
    rdb, sweep = ro
    name = f"{sweep}/sgd/cosine"
    top = curves(rdb, name, top_k=3)
    assert top["trial_id"].nunique() == 3 and len(top) == 3  # 3 cells × 1 seed × 1 epoch
    assert set(top["rank"]) == {1, 2, 3}
    first = top[top["rank"] == 1]
    assert set(first["lr"]) == {ALPHAS[2]} and first["restart"].all() and (first["epoch"] == 1).all()
    assert np.allclose(first["test_error"], first["intermediate"])
    adamw = curves(rdb, f"{sweep}/adamw/cosine", top_k=1, budget=16)
    assert list(adamw["epoch"]) == list(range(1, 17)) and adamw.loc[adamw["restart"], "epoch"].tolist() == [16]
    assert adamw["train_loss"].notna().all() and adamw["eta"].iloc[-1] == pytest.approx(0.0)
    chosen = curves(rdb, name, points=[GridPoint("sgd", "cosine", ALPHAS[0], LAMBDAS[4], 1, 0),
                                       (ALPHAS[1], LAMBDAS[0], 1, 0)])
    assert chosen["trial_id"].nunique() == 2 and chosen["rank"].isna().all()
    misc = curves(rdb, f"{sweep}/sgd/step", top_k=1)
    assert len(misc) == 4 and set(misc["lr"]) == {ALPHAS[0]}  # the tie-break winner, both seeds, 2 epochs


def test_list_sweeps_reports_progress(ro):
    rdb, sweep = ro
    mine = [s for s in list_sweeps(rdb) if s.sweep == sweep]
    assert len(mine) == 1
    s = mine[0]
    assert len(s.studies) == 5
    assert (s.grid_size, s.n_complete, s.n_failed, s.n_diverged) == (89, 84, 3, 3)
    assert {(st.metric, st.decay) for st in s.studies} == {("error", "all")}  # shown on the Sweeps page
    step = next(st for st in s.studies if st.schedule == "step")
    assert (step.n_complete, step.n_failed, step.n_diverged, step.n_trials, step.budgets) == (13, 3, 3, 18, (2,))
    assert step.fraction == pytest.approx(16 / 18)


def test_unknown_names_list_what_exists(ro):
    rdb, sweep = ro
    with pytest.raises(UnknownNameError, match=f"unknown sweep 'nope'; sweeps here: .*{sweep}"):
        best(rdb, sweep="nope")
    with pytest.raises(UnknownNameError, match="unknown optimizer 'rmsprop'.*optimizers here: adam, adamw, sgd, sgdw"):
        best(rdb, sweep=sweep, optimizer="rmsprop")
    with pytest.raises(UnknownNameError, match="unknown schedule 'linear'"):
        best(rdb, sweep=sweep, schedule=["cosine", "linear"])
    with pytest.raises(UnknownNameError, match="unknown study"):
        basin_grid(rdb, f"{sweep}/sgd/none", 10)


def test_empty_storage_says_so(fresh_url):
    open_storage(fresh_url).engine.dispose()  # Optuna's tables, no study
    rdb = open_storage(fresh_url, read_only=True)
    assert list_sweeps(rdb) == []
    with pytest.raises(EmptyStorageError, match="no Basin sweep recorded"):
        best(rdb)
    with pytest.raises(EmptyStorageError):
        trials_frame(rdb)


def test_export_csv_and_parquet(ro, tmp_path):
    rdb, sweep = ro
    frame = export_frame(rdb, sweep=sweep)
    assert len(frame) == N_TRIALS and frame["effective"].sum() == N_TRIALS - 2
    assert {"dataset", "num_classes", "train_loss", "test_error", "eta", "wd_per_epoch", "restart_epochs"} <= set(frame)
    csv_path = export(rdb, tmp_path / "all.csv", sweep=sweep)
    back = pd.read_csv(csv_path)
    assert len(back) == N_TRIALS
    lists = back.loc[back["state"] == "COMPLETE", "test_error"].map(json.loads)
    assert lists.map(len).isin([1, 2, 4, 16]).all()
    pq_path = export(rdb, tmp_path / "all.parquet", sweep=sweep)
    table = pd.read_parquet(pq_path)
    assert len(table) == N_TRIALS
    row = table[(table["state"] == "COMPLETE") & (table["budget"] == 16)].iloc[0]
    assert len(row["train_loss"]) == 16 and list(row["restart_epochs"]) == [16]
    with pytest.raises(ValueError, match="ends in .csv but the format is parquet"):
        export(rdb, tmp_path / "x.csv", fmt="parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.csv", "all.parquet"]  # no temp files left
