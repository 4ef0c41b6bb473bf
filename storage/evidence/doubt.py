"""Where more seeds can change an answer: the cells an adaptive sweep gives every seed.

An adaptive sweep (``study.adaptive``) runs the first seed on every cell, then, in rounds, every seed
on the cells *in doubt* — the cells whose seeds can move an answer Basin gives of the panel:

* the **plausible optima** (:func:`storage.evidence.plausible_optima`): the best cell, P(best), the
  best error and the comparisons of optimizers select among them;
* per **basin row** (a row with a cell within ``tol`` of the panel's best: the rows every coupling
  estimate reads, :func:`storage.evidence.landscape.basin_rows`), or every measured row when the panel
  has no coupling —
  - its **λ_norm\\* window**: the row's best cell ± ``radius`` columns (λ_norm*(α) is the row's argmin,
    refined by a parabola through the cells around it);
  - its **edge**: the two cells the edge is interpolated between (the last within ``tol`` of the row's
    best and the next), over the whole of the edge's interval, widened by max(``radius`` − 1, 0) columns.


Why the answers stay honest (docs/evidence.md, "Adaptive seeds"). Every added run is an ordinary
trial of the grid: a cell with all its seeds holds exactly the runs the full grid would hold, and a
cell's added seeds are independent of the first seed's value that put it in doubt (another
initialisation and data order), so they are unbiased for the cell's true error. What the adaptive
panel lacks is the seeds of the cells outside the doubt set; a one-seed cell there borrows the
seed variance of the cells with seeds nearest to it in error (:func:`storage.evidence.noise.borrowed_seed_sd`),
so its interval still carries seed noise. Measured on planted landscapes (tests/storage/test_doubt.py,
bench/adaptive.py): the verdicts and the slopes' coverage match the full grid's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from storage.evidence.base import Panel
from storage.evidence.cells import CellEvidence
from storage.evidence.landscape import PREDICTIONS

#: Columns around each row's best cell that get every seed in the first adaptive round (0: the best
#: cell alone; measured on planted 8 × 8 landscapes, ±1 costs 10% more runs and changes no verdict).
DEFAULT_RADIUS = 0
#: Rounds after the first at most (each adds the cells that came into doubt or widens the window).
MAX_ROUNDS = 6
#: The coupling verdicts that decide a panel's claim (the predictions: coupled, decoupled).
DECIDED = tuple(PREDICTIONS)


def _column(x: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Fractional column index of λ_norm values ``x`` on the grid's log axis ``v`` (NaN stays NaN)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lx = np.log(np.asarray(x, float))
    return np.where(np.isfinite(lx), np.interp(lx, v, np.arange(v.size)), np.nan)


def doubt_cells(panel: Panel, cells: CellEvidence, *, basin: np.ndarray | None = None,
                edge_lo: np.ndarray | None = None, edge_hi: np.ndarray | None = None,
                radius: int = DEFAULT_RADIUS) -> np.ndarray:
    """Cells in doubt (n_cells,) row-major, by the rules of the module doc.

    ``basin`` (nα,) the coupling's basin rows (None: every row with a measured cell); ``edge_lo`` /
    ``edge_hi`` (nα,) each row's edge interval in λ_norm (NaN: none); ``radius`` ≥ 0 the λ* window's
    half-width in columns (an adaptive sweep widens it while a verdict stays undecided)."""
    if radius < 0:
        raise ValueError(f"radius must be >= 0 columns; got {radius}")
    n_a, n_w = panel.shape
    means = panel.grid(panel.means)
    measured = np.isfinite(means)
    rows = measured.any(1) if basin is None else np.asarray(basin, bool) & measured.any(1)
    out = panel.grid(np.asarray(cells.plausible, bool)).copy()
    cols = np.arange(n_w)
    v = np.log(panel.wd_norms)
    e_lo = _column(edge_lo, v) if edge_lo is not None else np.full(n_a, np.nan)
    e_hi = _column(edge_hi, v) if edge_hi is not None else np.full(n_a, np.nan)
    for i in np.flatnonzero(rows):
        row = np.where(measured[i], means[i], np.inf)
        b = int(np.argmin(row))
        out[i] |= np.abs(cols - b) <= radius
        if np.isfinite(e_lo[i]) and np.isfinite(e_hi[i]):
            wide = max(radius - 1, 0)
            first = int(np.floor(min(e_lo[i], e_hi[i]))) - wide
            last = int(np.ceil(max(e_lo[i], e_hi[i]))) + wide
            if last == first:  # the edge sits on a cell: it and the next
                last += 1
            out[i] |= (cols >= first) & (cols <= last)
    return out.ravel()


def next_step(missing: int, decided: bool, radius: int, max_radius: int) -> tuple[str, str]:
    """What an adaptive sweep does after reading its doubt (the one rule of its rounds):

    ("run", …) when ``missing`` > 0 runs of cells in doubt are not recorded; else ("stop", why) when
    every coupling verdict is ``decided``; else ("widen", …) while ``radius`` < ``max_radius``; else
    ("stop", why)."""
    if missing > 0:
        return "run", f"{missing} run(s) of cells in doubt are not recorded"
    if decided:
        return "stop", "every coupling verdict is decided and every cell in doubt has its seeds"
    if radius < max_radius:
        return "widen", f"a verdict is undecided: the window widens to ±{radius + 1} columns"
    return "stop", f"a verdict is undecided with the window at its widest (±{max_radius} columns)"


def row_arrays(rows: Sequence[dict], alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(basin, edge_lo, edge_hi) per α row from a coupling's rows (``storage.basin_shape.Coupling.rows``)."""
    n = len(alphas)
    basin = np.zeros(n, bool)
    e_lo, e_hi = np.full(n, np.nan), np.full(n, np.nan)
    keys = np.asarray(alphas, float)
    for r in rows:
        i = int(np.argmin(np.abs(np.log(keys) - np.log(float(r["lr"])))))
        basin[i] = bool(r.get("in_basin"))
        e_lo[i] = np.nan if r.get("edge_lo") is None else float(r["edge_lo"])
        e_hi[i] = np.nan if r.get("edge_hi") is None else float(r["edge_hi"])
    return basin, e_lo, e_hi


__all__ = ["DECIDED", "DEFAULT_RADIUS", "MAX_ROUNDS", "doubt_cells", "next_step", "row_arrays"]
