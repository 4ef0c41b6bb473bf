"""Grid-point arithmetic on trial frames: grid points, cells, ranking, the best cell, heatmap grids.

Pure pandas/numpy on the tidy frames of :func:`storage.frames.trials_frame`; no database here.

Vocabulary. A *grid point* is (study, α, λ_norm, T, seed); a *cell* is (study, α, λ_norm, T),
its seeds pooled; a *panel* is (sweep, optimizer, schedule, T) — one heatmap of Figure 2.

Rules, applied everywhere:

* One trial per grid point: the latest COMPLETE trial (highest trial_id), else its latest FAIL
  (:func:`effective_trials`). RUNNING/WAITING/PRUNED trials are ignored.
* A diverged run counts with its recorded value, chance error 1 − 1/C; it is never dropped.
* FAIL trials have no value: excluded from means, counted in ``n_failed``.
* Cell error = mean final test error over its COMPLETE seeds; ``test_error_std`` is the sample
  standard deviation (ddof = 1), NaN for a single seed.
* Ranking inside a panel (best, top-10): lowest mean error (compared at 12 decimals, so equal
  means computed in a different order tie), then more seeds, then smaller α, then smaller
  λ_norm. The tie-break is deterministic and documented, and ``n_tied`` says how many cells
  shared the best mean.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from storage.evidence.base import TIE_DECIMALS  # the one tie rule (storage.evidence.base.argmin)
from storage.schema import LEGACY_OPTIMIZER_INFO, normalise_float

STUDY_COLS = ["sweep", "optimizer", "schedule"]
PANEL_COLS = [*STUDY_COLS, "budget"]
TOP_K = 10  # the paper circles the top-10 settings of each panel


def comparison_pairs(meta: pd.DataFrame | None = None) -> tuple[tuple[str, str], ...]:
    """(decoupled, coupled) members of the comparisons, sorted: each study's optimizer with the ``pair``
    its ``optimizer_info`` attr names (the studies frame's ``pair`` column) — the paper's AdamW vs Adam
    and SGDW vs SGD, and the paper's AdamW (decay × η_t) against torch's lr-coupled AdamW (decay × α·η_t).
    Without ``meta``: the legacy rows' pairs (``storage.schema.LEGACY_OPTIMIZER_INFO``)."""
    rows = (LEGACY_OPTIMIZER_INFO.values() if meta is None else
            ({"name": o, "pair": p} for o, p in zip(meta["optimizer"], meta["pair"])))
    return tuple(sorted({(r["pair"], r["name"]) for r in rows if isinstance(r["pair"], str)}))


def grid_key(values: pd.Series) -> np.ndarray:
    """α or λ_norm rounded to 12 significant digits (:func:`storage.schema.normalise_float`).

    Rounds only the distinct values (a grid has few), then maps back.
    """
    x = values.to_numpy(dtype=float)
    if x.size == 0:
        return x
    uniq, inverse = np.unique(x, return_inverse=True)
    return np.array([normalise_float(u) for u in uniq])[inverse]


def effective_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per grid point: its latest COMPLETE trial, else its latest FAIL trial."""
    done = frame[frame["state"].isin(("COMPLETE", "FAIL"))]
    done = done.assign(
        _lr=grid_key(done["lr"]), _wd=grid_key(done["wd_norm"]), _complete=done["state"].eq("COMPLETE")
    )
    point = ["study", "_lr", "_wd", "budget", "seed"]
    if not done.duplicated(subset=point).any():  # one trial a point (the usual case): all of them, by id
        done = done.drop(columns="_complete")
        return (done if done["trial_id"].is_monotonic_increasing else done.sort_values("trial_id", kind="stable")
                ).reset_index(drop=True)
    done = done.sort_values(["_complete", "trial_id"], kind="stable")
    keep = ~done.duplicated(subset=point, keep="last")
    return done[keep].drop(columns="_complete").sort_values("trial_id", kind="stable").reset_index(drop=True)


def cell_stats(effective: pd.DataFrame) -> pd.DataFrame:
    """Per cell: mean/std error over COMPLETE seeds, seed/failure/divergence counts, raw λ.

    Columns: sweep, optimizer, schedule, study, budget, lr, wd_norm, wd, test_error,
    test_error_std, n_seeds, n_failed, n_diverged, diverged_any, diverged_all, _lr, _wd.
    ``wd`` is NaN when the frame has no ``wd`` column.
    """
    keys = ["study", "budget", "_lr", "_wd"]
    eff = effective
    if "_lr" not in eff:
        eff = eff.assign(_lr=grid_key(eff["lr"]), _wd=grid_key(eff["wd_norm"]))
    complete = eff["state"].eq("COMPLETE").to_numpy()
    diverged = eff["diverged"].fillna(False).astype(bool).to_numpy() if "diverged" in eff else np.zeros(len(eff), bool)
    wd = eff["wd"].to_numpy(float) if "wd" in eff else np.full(len(eff), np.nan)
    work = pd.DataFrame(
        {
            **{k: eff[k].to_numpy() for k in keys},
            "lr": eff["lr"].to_numpy(float),
            "wd_norm": eff["wd_norm"].to_numpy(float),
            "value": np.where(complete, eff["value"].to_numpy(float), np.nan),
            "wd": np.where(complete, wd, np.nan),
            "complete": complete.astype(np.int64),
            "failed": (~complete).astype(np.int64),
            "diverged": (diverged & complete).astype(np.int64),
        }
    )
    cells = work.groupby(keys, sort=False).agg(
        lr=("lr", "first"),
        wd_norm=("wd_norm", "first"),
        wd=("wd", "mean"),
        test_error=("value", "mean"),
        test_error_std=("value", "std"),
        n_seeds=("complete", "sum"),
        n_failed=("failed", "sum"),
        n_diverged=("diverged", "sum"),
    ).reset_index()
    names = eff.drop_duplicates("study")[["study", *STUDY_COLS]]
    cells = cells.merge(names, on="study", how="left")
    cells["diverged_any"] = cells["n_diverged"] > 0
    cells["diverged_all"] = (cells["n_diverged"] == cells["n_seeds"]) & (cells["n_seeds"] > 0)
    cols = [
        *STUDY_COLS, "study", "budget", "lr", "wd_norm", "wd", "test_error", "test_error_std",
        "n_seeds", "n_failed", "n_diverged", "diverged_any", "diverged_all", "_lr", "_wd",
    ]
    return cells[cols]


def rank_cells(cells: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank`` (1 = best, per panel; NaN for cells without a COMPLETE seed), ``best``, ``top10``."""
    cells = cells.assign(_err=cells["test_error"].round(TIE_DECIMALS), _neg_n=-cells["n_seeds"])
    ordered = cells.sort_values([*PANEL_COLS, "_err", "_neg_n", "_lr", "_wd"], kind="stable", na_position="last")
    rank = ordered.groupby(PANEL_COLS, sort=False).cumcount() + 1
    ordered = ordered.assign(rank=rank.where(ordered["_err"].notna()))
    ordered["best"] = ordered["rank"].eq(1)
    ordered["top10"] = ordered["rank"].le(TOP_K)
    return ordered.drop(columns=["_err", "_neg_n"]).sort_index()


def border_note(panel: pd.DataFrame, best_row: pd.Series) -> str:
    """Whether the best cell of a panel lies on the grid's border, and which way the grid must grow.

    ``panel`` holds the panel's cells; those with a COMPLETE seed define the grid's extent.
    """
    on_edge, single = [], []
    have = panel[panel["n_seeds"] > 0]
    for key, symbol in (("_lr", "α"), ("_wd", "λ_norm")):
        lo, hi = have[key].min(), have[key].max()
        if lo == hi:
            single.append(symbol)
        elif best_row[key] == lo:
            on_edge.append(f"smaller {symbol}")
        elif best_row[key] == hi:
            on_edge.append(f"larger {symbol}")
    notes = [f"a single {sym} value: the basin is not located along {sym}" for sym in single]
    if on_edge:
        notes.insert(0, "best cell on the grid border: " + "; ".join(f"grid must grow toward {e}" for e in on_edge))
    return "; ".join(notes)


def best_cells(cells: pd.DataFrame, *, ranked: bool = False) -> pd.DataFrame:
    """Per panel: the best cell, with panel counts, ties and the border note (``ranked``: ``cells``
    already went through :func:`rank_cells`).

    Columns: sweep, optimizer, schedule, budget, lr, wd_norm, wd, test_error, test_error_std,
    n_seeds, n_tied, n_cells, n_complete, n_failed, n_diverged, border, study.
    """
    cols = [
        *PANEL_COLS, "lr", "wd_norm", "wd", "test_error", "test_error_std", "n_seeds", "n_tied",
        "n_cells", "n_complete", "n_failed", "n_diverged", "border", "study",
    ]
    ranked = cells if ranked else rank_cells(cells)
    # each panel's rows by position, its numbers from column arrays (a frame filter per panel cost ≈ 2 ms)
    n_seeds = ranked["n_seeds"].to_numpy()
    is_best = ranked["best"].to_numpy(bool)
    err = ranked["test_error"].round(TIE_DECIMALS).to_numpy(float)
    n_failed, n_diverged = ranked["n_failed"].to_numpy(), ranked["n_diverged"].to_numpy()
    rows = []
    for key, where in sorted(ranked.groupby(PANEL_COLS, sort=True).indices.items()):
        have = where[n_seeds[where] > 0]
        if not have.size:
            continue
        best = ranked.iloc[where[is_best[where]][0]]  # rank_cells' best cell (rank 1)
        rows.append({
            **dict(zip(PANEL_COLS, key)), **{c: best[c] for c in ("lr", "wd_norm", "wd", "test_error",
                                                                 "test_error_std", "n_seeds", "study")},
            "n_tied": int((err[have] == np.fmin.reduce(err[have])).sum()), "n_cells": int(have.size),
            "n_complete": int(n_seeds[where].sum()), "n_failed": int(n_failed[where].sum()),
            "n_diverged": int(n_diverged[where].sum()), "border": border_note(ranked.iloc[where], best),
        })
    out = pd.DataFrame(rows, columns=cols)
    return out.astype({"budget": int, "n_seeds": int, "n_tied": int, "n_cells": int, "n_complete": int,
                       "n_failed": int, "n_diverged": int})


#: Columns of a heatmap grid (``basin_grid``), one row per (α, λ_norm) of the full product.
GRID_COLUMNS = ["lr", "wd_norm", "wd", "test_error", "test_error_std", "n_seeds", "n_failed", "n_diverged",
                "diverged_any", "diverged_all", "missing", "rank", "top10", "best"]


def full_grid(lr_values, wd_norm_values, ranked: pd.DataFrame) -> pd.DataFrame:
    """The full α × λ_norm product of a panel with its ranked cells merged in.

    Cells with no trial are kept, marked ``missing`` (0 seeds, no error): a heatmap shows the hole.
    Rows: the α values in order of first appearance (each grid key once), λ_norm fastest.
    """
    lr, wd = np.asarray(lr_values, float), np.asarray(wd_norm_values, float)
    lk, wk = grid_key(pd.Series(lr)), grid_key(pd.Series(wd))
    li, wi = np.sort(np.unique(lk, return_index=True)[1]), np.sort(np.unique(wk, return_index=True)[1])
    nl, nw = li.size, wi.size
    # each ranked cell's row of the product (a panel has one row per (α, λ_norm) key; cells off the axes drop out)
    row_l = pd.Index(lk[li]).get_indexer(ranked["_lr"].to_numpy(float))
    row_w = pd.Index(wk[wi]).get_indexer(ranked["_wd"].to_numpy(float))
    on = (row_l >= 0) & (row_w >= 0)
    rows = row_l[on] * nw + row_w[on]
    if np.unique(rows).size != rows.size:
        raise ValueError("full_grid needs one ranked row per (α, λ_norm) cell: pass one panel's cells")

    def column(name: str, fill, dtype):
        col = np.full(nl * nw, fill, dtype=dtype)
        col[rows] = ranked[name].to_numpy(dtype=dtype, na_value=fill)[on]
        return col

    missing = np.ones(nl * nw, bool)
    missing[rows] = False
    # one constructor call for every column (a column added at a time costs ≈ 0.3 ms each)
    return pd.DataFrame({
        "lr": np.repeat(lr[li], nw), "_lr": np.repeat(lk[li], nw), "wd_norm": np.tile(wd[wi], nl),
        "_wd": np.tile(wk[wi], nl),
        **{name: column(name, np.nan, float) for name in ("wd", "test_error", "test_error_std")},
        **{name: column(name, 0, int) for name in ("n_seeds", "n_failed", "n_diverged")},
        **{name: column(name, False, bool) for name in ("diverged_any", "diverged_all")},
        "rank": pd.array(column("rank", np.nan, float), dtype="Int64"),
        **{name: column(name, False, bool) for name in ("top10", "best")},
        "missing": missing,
    })
