"""The answers users ask of a sweep, read from the database: best settings, λ* against the budget,
the coupling of each basin, AdamW vs Adam, one heatmap's grid, learning curves.

"Which (α, λ_norm) is best per (sweep, optimizer, schedule, budget T)?" (:func:`best`),
"how do λ_norm* and raw λ* move with T?" (:func:`best_by_budget`), "is the basin coupled?"
(:func:`coupling`), "how much does AdamW gain over Adam?" (:func:`headline`), plus the data of
one heatmap (:func:`basin_grid`) and learning curves (:func:`curves`).

Each answer is one read (:mod:`storage.frames`, :mod:`storage.sql`) followed by the rules of
:mod:`storage.analysis` and :mod:`storage.basin_shape`; bench/query_scale.py times them at
10³–10⁵ trials. Every function takes an opened storage (see :func:`storage.open_storage`) or a
URL, which is then opened read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from storage import analysis
from storage.basin_shape import DEFAULT_BOOT, DEFAULT_TOL, Coupling, panel_coupling
from storage.connect import StorageLike, reader, storage_label
from storage.errors import EmptyStorageError, UnknownNameError, read_errors
from storage.frames import select_studies, studies_frame, trials_for
from storage.schema import LIST_ATTRS, GridPoint
from storage.sql import fetch_attrs, fetch_intermediate, study_param_values


def _cells(rdb, sweep, optimizer, schedule, study=None, budget=None, attrs=("diverged", "wd")):
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizer,
                          schedule=schedule, study=study)
    frame = trials_for(rdb, meta, attrs=attrs, budget=budget)
    eff = analysis.effective_trials(frame)
    return eff, analysis.cell_stats(eff)


@read_errors
def best(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per (sweep, optimizer, schedule, budget): the (α, λ_norm) with the lowest mean final test error.

    Columns: sweep, optimizer, schedule, budget, lr, wd_norm, wd (raw λ), test_error (mean over
    seeds), test_error_std, n_seeds, n_tied (cells sharing the best mean), n_cells, n_complete,
    n_failed, n_diverged (panel totals over grid points), border (note when the best cell is on
    the grid's edge, else ""), study. Ties: more seeds, then smaller α, then smaller λ_norm.
    """
    rdb = reader(storage)
    # Raw λ is needed for the winning cells only: read it for their trials afterwards.
    eff, cells = _cells(rdb, sweep, optimizer, schedule, attrs=("diverged",))
    table = analysis.best_cells(cells)
    if table.empty:
        return table
    keys = ["study", "budget", "_lr", "_wd"]
    winners = table.assign(_lr=analysis.grid_key(table["lr"]), _wd=analysis.grid_key(table["wd_norm"]))[keys]
    trials = eff[eff["state"].eq("COMPLETE")].merge(winners, on=keys, how="inner")
    wd = fetch_attrs(rdb.engine, trials["trial_id"].tolist(), ["wd"])
    trials = trials.assign(wd=[_as_float(wd[t].get("wd")) for t in trials["trial_id"]])
    mean_wd = trials.groupby(keys, sort=False)["wd"].mean().rename("_wd_mean").reset_index()
    table = table.assign(_lr=winners["_lr"].to_numpy(), _wd=winners["_wd"].to_numpy())
    table = table.merge(mean_wd, on=keys, how="left")
    table["wd"] = table["_wd_mean"]
    return table.drop(columns=["_lr", "_wd", "_wd_mean"])


@read_errors
def best_by_budget(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """λ_norm* and raw λ* against the budget T, per (sweep, optimizer, schedule).

    The rows of :func:`best`, sorted by T, plus wd_sqrt_budget (λ*·√T), n_budgets, wd_slope
    (d log λ*/d log T; Appendix B.1 predicts −0.5) and wd_norm_slope (predicted 0).
    """
    return analysis.budget_scaling(best(storage, sweep, optimizer, schedule))


@read_errors
def headline(storage: StorageLike, sweep: str | None = None, schedule: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Best AdamW vs best Adam and best SGDW vs best SGD error, with the relative improvement.

    See :func:`storage.analysis.headline` for the columns; empty when no pair is complete.
    """
    return analysis.headline(best(storage, sweep, None, schedule))


def study_chance(meta_row: pd.Series) -> float | None:
    """The chance level a study recorded (what its diverged runs hold), None if it recorded none."""
    value = meta_row.get("chance")
    return float(value) if value is not None and pd.notna(value) else None


def _panel_budget(budgets: Iterable[int], name: str, budget: int | None) -> int:
    budgets = sorted({int(b) for b in budgets})
    if not budgets:
        raise EmptyStorageError(f"study {name!r} has no trial yet")
    if budget is None:
        if len(budgets) > 1:
            raise UnknownNameError(f"study {name!r} has several budgets ({', '.join(map(str, budgets))}); choose one")
        return budgets[0]
    if int(budget) not in budgets:
        raise UnknownNameError(f"study {name!r} has no trial with budget {budget}; budgets there: "
                               f"{', '.join(map(str, budgets))}")
    return int(budget)


@read_errors
def basin_grid(storage: StorageLike, study_name: str, budget: int | None = None) -> pd.DataFrame:
    """Heatmap data of one panel: every (α, λ_norm) of the study's grid at budget T.

    One row per cell of the full product of the study's α and λ_norm values (over all its
    trials), sorted by α then λ_norm; cells without any trial at T have ``missing=True``,
    n_seeds 0 and NaN error. Columns: lr, wd_norm, wd (raw λ), test_error (mean over seeds,
    diverged runs at chance), test_error_std, n_seeds, n_failed, n_diverged, diverged_any,
    diverged_all, missing, rank (1 = best; <NA> without a COMPLETE seed), top10, best.
    ``frame.attrs`` holds study, sweep, optimizer, schedule, budget, chance (the study's recorded chance level) and
    border (a note when the best cell is on the grid's edge, else ""). ``budget`` may be
    omitted when the study has a single one.
    """
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    axes = study_param_values(rdb.engine, int(meta["study_id"].iloc[0]))
    budget = _panel_budget(axes["budget"], study_name, budget)
    frame = trials_for(rdb, meta, attrs=("diverged", "wd"), budget=budget)
    eff = analysis.effective_trials(frame)
    cells = analysis.rank_cells(analysis.cell_stats(eff))
    out = analysis.full_grid(axes["lr"], axes["wd_norm"], cells)
    m = meta.iloc[0]
    winner = cells[cells["best"]]
    out.attrs.update(
        study=study_name, sweep=m["sweep"], optimizer=m["optimizer"], schedule=m["schedule"], budget=budget,
        chance=study_chance(m),
        border=analysis.border_note(cells, winner.iloc[0]) if not winner.empty else "",
    )
    return out[analysis.GRID_COLUMNS].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)


@read_errors
def coupling(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    *,
    budget: int | None = None,
    tol: float = DEFAULT_TOL,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> list[Coupling]:
    """Coupling measurements of every panel (optimizer × schedule × budget) selected.

    See :mod:`storage.basin_shape`: argmin slope of log λ_norm* vs log α with a seed-bootstrap
    interval, the top-10 principal-axis angle, the tolerance-edge slope (``tol`` absolute error,
    default 0.02) and a verdict, with notes for too few points and grid-border basins.
    """
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number ≥ 0, got {tol!r}")
    eff, cells = _cells(reader(storage), sweep, optimizer, schedule, budget=budget)
    out = []
    for key, panel in cells.groupby(analysis.PANEL_COLS, sort=True):
        study = panel["study"].iloc[0]
        panel_eff = eff[(eff["study"] == study) & (eff["budget"] == key[3])]
        out.append(panel_coupling(panel_eff, panel, tol=tol, n_boot=n_boot, seed=seed))
    return out


def coupling_frame(results: Sequence[Coupling]) -> pd.DataFrame:
    """Coupling results as a frame (slope_ci split into slope_lo/slope_hi, notes joined by '; ')."""
    rows = []
    for c in results:
        d = c.to_dict()
        ci = d.pop("slope_ci")
        d["slope_lo"], d["slope_hi"] = (ci if ci is not None else (None, None))
        d["notes"] = "; ".join(d["notes"])
        rows.append(d)
    return pd.DataFrame(rows)


# --- curves -------------------------------------------------------------------------------------

CURVE_COLUMNS = ["study", "trial_id", "lr", "wd_norm", "budget", "seed", "rank", "value", "diverged", "epoch",
                 *LIST_ATTRS, "restart", "intermediate"]


def _as_float(x) -> float:
    return float("nan") if x is None else float(x)


@read_errors
def curves(
    storage: StorageLike,
    study_name: str,
    points: Iterable[GridPoint | tuple] | None = None,
    *,
    top_k: int | None = None,
    budget: int | None = None,
) -> pd.DataFrame:
    """Per-epoch learning curves of chosen settings of one study, long format (one row per trial × epoch).

    Choose trials by ``points`` (GridPoints, or (lr, wd_norm, budget, seed) tuples) or by
    ``top_k``: every seed of the k best cells of each budget (or of ``budget``); with neither,
    the top 10. Columns: study, trial_id, lr, wd_norm, budget, seed, rank (cell rank in its
    panel, <NA> for trials chosen by point), value, diverged, epoch (1-based), train_loss,
    train_error, test_loss, test_error, eta, wd_per_epoch (raw λ of that epoch), restart (the
    epoch ends a restart period: ``restart_epochs``), intermediate (Optuna's value at that step).
    Lists shorter than the longest (e.g. a run stopped at divergence) are padded with NaN.
    """
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    frame = trials_for(rdb, meta, attrs=("diverged", "wd"), budget=None)
    eff = analysis.effective_trials(frame)
    eff = eff[eff["state"].eq("COMPLETE")]
    if budget is not None:
        budget = _panel_budget(eff["budget"], study_name, budget)
        eff = eff[eff["budget"] == budget]
    if points is not None:
        m = meta.iloc[0]
        wanted = set()
        for p in points:
            if not isinstance(p, GridPoint):
                lr, wd_norm, b, s = p
                p = GridPoint(m["optimizer"], m["schedule"], lr, wd_norm, b, s)
            wanted.add(p)
        keys = [GridPoint(r.optimizer, r.schedule, r.lr, r.wd_norm, r.budget, r.seed) in wanted for r in eff.itertuples()]
        chosen = eff[np.asarray(keys, bool)].assign(rank=pd.NA)
    else:
        k = 10 if top_k is None else int(top_k)
        if k < 1:
            raise ValueError(f"top_k must be ≥ 1, got {top_k!r}")
        ranked = analysis.rank_cells(analysis.cell_stats(eff))
        top = ranked[ranked["rank"].le(k)][["budget", "_lr", "_wd", "rank"]]
        chosen = eff.merge(top, on=["budget", "_lr", "_wd"], how="inner")
    chosen = chosen.sort_values(["budget", "rank", "lr", "wd_norm", "seed"], kind="stable", na_position="last")
    ids = [int(i) for i in chosen["trial_id"]]
    lists = fetch_attrs(rdb.engine, ids, [*LIST_ATTRS, "restart_epochs"])
    inter = fetch_intermediate(rdb.engine, ids)
    rows = []
    for r in chosen.itertuples():
        attrs = lists[r.trial_id]
        n = max([len(attrs.get(k) or []) for k in LIST_ATTRS] + [max(inter[r.trial_id], default=0)])
        restarts = set(attrs.get("restart_epochs") or [])
        for epoch in range(1, n + 1):
            row = {"study": r.study, "trial_id": r.trial_id, "lr": r.lr, "wd_norm": r.wd_norm, "budget": r.budget,
                   "seed": r.seed, "rank": r.rank, "value": r.value, "diverged": bool(r.diverged), "epoch": epoch}
            for key in LIST_ATTRS:
                seq = attrs.get(key) or []
                row[key] = _as_float(seq[epoch - 1]) if epoch <= len(seq) else np.nan
            row["restart"] = epoch in restarts
            row["intermediate"] = inter[r.trial_id].get(epoch, np.nan)
            rows.append(row)
    out = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out
