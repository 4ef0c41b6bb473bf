"""Heatmap panels: the cells of every optimizer of one (sweep, schedule, budget T), read at once.

A *panel* is one heatmap of Figure 2: (sweep, optimizer, schedule, T). The Basins page shows
four or more side by side, each with its coupling fit. ``storage.basin_grid`` answers one panel
per read and ``storage.coupling`` reads the same trials again, so four panels would cost five
reads (~0.2–0.5 s each at 10⁵ trials); here one ``storage.trials_frame`` read (filtered to T)
feeds every panel through storage's own rules — :func:`storage.analysis.effective_trials`,
:func:`~storage.analysis.cell_stats`, :func:`~storage.analysis.rank_cells` — each grid comes out
in ``basin_grid``'s columns, and the coupling fits come from storage's per-panel fit
(``storage.basin_shape.panel_coupling``, what ``storage.coupling`` runs after its read) on the
same frames. The fitted line goes through storage's own λ_norm*(α) points
(``storage.basin_shape.argmin_points``): no rule of the answers is computed here.

One difference from ``basin_grid``: the α and λ_norm axes are those of the study's trials at T
(``basin_grid`` takes them over every budget), so a budget whose grid is still filling shows
only the rows and columns it has reached.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import storage

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class Panel:
    """One heatmap: its cells (``basin_grid`` columns) and coupling, or a note saying why it is empty."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int | None
    study: str | None
    grid: pd.DataFrame | None = None
    coupling: storage.Coupling | None = None
    chance: float | None = None
    border: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_data(self) -> bool:
        return self.grid is not None and bool(self.grid["test_error"].notna().any())

    def best_row(self) -> pd.Series | None:
        if self.grid is None:
            return None
        rows = self.grid[self.grid["best"]]
        return rows.iloc[0] if not rows.empty else None


def empty_panel(sweep: str, optimizer: str, schedule: str, budget: int | None, note: str,
                study: str | None = None) -> Panel:
    return Panel(sweep, optimizer, schedule, budget, study, notes=(note,))


def read_panels(
    rdb,
    sweep: str,
    schedule: str,
    budget: int,
    optimizers: Sequence[str],
    *,
    chance: dict[str, float | None] | None = None,
    n_boot: int = 1000,
) -> dict[str, Panel]:
    """{optimizer: Panel} for the given optimizers of ``sweep``/``schedule`` at budget T (one read).

    Every optimizer must have a study in the sweep for this schedule (callers check with the
    sweep index). ``chance`` maps optimizer → 1 − 1/C for the colour cap.
    """
    optimizers = list(dict.fromkeys(optimizers))
    chance = chance or {}
    if not optimizers:
        return {}
    analysis = storage.analysis
    frame = storage.trials_frame(rdb, sweep, optimizer=optimizers, schedule=schedule, budget=int(budget),
                                 attrs=("diverged", "wd"))
    eff = analysis.effective_trials(frame)
    cells = analysis.cell_stats(eff)
    ranked = analysis.rank_cells(cells)
    with_data = [o for o in optimizers if ranked.loc[ranked["optimizer"] == o, "best"].any()]
    fits, fit_note = _couplings(rdb, sweep, schedule, int(budget), with_data, n_boot, eff, cells)
    out = {}
    for opt in optimizers:
        study = storage.study_name(sweep, opt, schedule)
        trials = frame[frame["optimizer"] == opt]
        if trials.empty:
            out[opt] = empty_panel(sweep, opt, schedule, budget, f"no trial at T={budget} yet", study)
            continue
        panel_ranked = ranked[ranked["optimizer"] == opt]
        grid = _grid(trials, panel_ranked)
        notes: list[str] = []
        winner = panel_ranked[panel_ranked["best"]]
        border = analysis.border_note(panel_ranked, winner.iloc[0]) if not winner.empty else ""
        coupling = fits.get(opt)
        if winner.empty:
            notes.append(f"no COMPLETE trial at T={budget} yet")
        elif coupling is None and fit_note:
            notes.append(fit_note)
        out[opt] = Panel(sweep, opt, schedule, int(budget), study, grid=grid, coupling=coupling,
                         chance=chance.get(opt), border=border, notes=tuple(notes))
    return out


def _grid(trials: pd.DataFrame, ranked: pd.DataFrame) -> pd.DataFrame:
    """``basin_grid``'s frame: the full α × λ_norm product of the panel, cells merged in."""
    analysis = storage.analysis
    out = analysis.full_grid(trials["lr"], trials["wd_norm"], ranked)
    return out[analysis.GRID_COLUMNS].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)


def _couplings(rdb, sweep: str, schedule: str, budget: int, optimizers: list[str], n_boot: int,
               eff: pd.DataFrame, cells: pd.DataFrame):
    """({optimizer: Coupling}, note): storage's coupling fits of these panels, or why there are none."""
    if not optimizers:
        return {}, ""
    fit = storage.basin_shape.panel_coupling
    try:
        fits = [fit(eff[eff["optimizer"] == o], cells[cells["optimizer"] == o], n_boot=n_boot) for o in optimizers]
    except storage.StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing fit must not take the heatmaps down with it
        log.warning("coupling fit failed for %s/%s T=%s", sweep, schedule, budget, exc_info=True)
        return {}, f"coupling fit unavailable ({type(exc).__name__}: {exc})"
    return {c.optimizer: c for c in fits if c.budget == budget}, ""


def coupling_line(grid: pd.DataFrame, slope: float | None) -> tuple[np.ndarray, np.ndarray] | None:
    """The fitted line log λ_norm* = slope·log α + b over the panel's α range, in log₂ units.

    storage.coupling fits by least squares, so the line passes through the centroid of
    storage's λ_norm*(α) points (``storage.basin_shape.argmin_points``); the slope is storage's.
    None without a slope.
    """
    if slope is None or not math.isfinite(slope):
        return None
    xs, ys = (v / math.log(2.0) for v in storage.basin_shape.argmin_points(grid))
    if len(xs) < 2:
        return None
    x = np.log2(np.unique(grid["lr"].to_numpy(float)))
    lo, hi = float(x.min()), float(x.max())
    line_x = np.array([lo - 0.5, hi + 0.5])
    return line_x, ys.mean() + slope * (line_x - xs.mean())
