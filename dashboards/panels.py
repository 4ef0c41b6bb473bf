"""Heatmap panels: the cells of every optimizer of one (sweep, schedule, budget T), read at once, with evidence.

A *panel* is one heatmap of Figure 2: (sweep, optimizer, schedule, T). The Basins page shows
four or more side by side. ``storage.basin_grid`` answers one panel per read and
``storage.coupling`` reads the same trials again, so four panels would cost five reads (~0.2–0.5 s
each at 10⁵ trials); here one trial read (``storage.trials_frame``'s, split into its study
selection and ``storage.frames.trials_for`` so the studies' rows — n_test, chance — come with it)
feeds every panel through storage's one per-panel rule, :func:`storage.panel.answer`: the grid in
``basin_grid``'s columns plus the evidence (each cell's 95% interval, P(best), the plausible
optima), the best setting's honestly reported error and the coupling verdict with its λ_norm*(α)
band. One :func:`storage.panel.seed_draws_for` over the read resamples every panel with the same
seed labels, so panels compared side by side are paired. No rule of the answers is computed here:
:func:`coupling_line` and :func:`lambda_star_band` only draw storage's λ_norm*(α) points.

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
import storage.answers
import storage.evidence
import storage.frames
import storage.panel

log = logging.getLogger(__name__)

#: The heatmap grid's columns: ``basin_grid``'s.
GRID = [*storage.analysis.GRID_COLUMNS, *storage.panel.EVIDENCE_COLUMNS]
LEVEL = storage.evidence.DEFAULT_LEVEL


@dataclass(frozen=True)
class Panel:
    """One heatmap: its cells (``basin_grid`` columns, evidence included), its honest best error
    (``storage.evidence.BestError``), its coupling, the noise its intervals include, or a note saying
    why it is empty."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int | None
    study: str | None
    grid: pd.DataFrame | None = None
    coupling: storage.Coupling | None = None
    best: storage.evidence.BestError | None = None
    sources: tuple[str, ...] = ()
    chance: float | None = None
    border: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_data(self) -> bool:
        return self.grid is not None and bool(self.grid["test_error"].notna().any())

    def best_row(self) -> pd.Series | None:
        """The cell with the lowest mean error (rank 1), with its interval and P(best)."""
        if self.grid is None:
            return None
        rows = self.grid[self.grid["best"]]
        return rows.iloc[0] if not rows.empty else None

    @property
    def level(self) -> float:
        return self.best.level if self.best is not None else LEVEL


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
    n_boot: int = storage.evidence.DEFAULT_BOOT,
) -> dict[str, Panel]:
    """{optimizer: Panel} for the given optimizers of ``sweep``/``schedule`` at budget T (one read).

    Every optimizer must have a study in the sweep for this schedule (callers check with the
    sweep index). ``chance`` maps optimizer → 1 − 1/C for the colour cap.
    """
    optimizers = list(dict.fromkeys(optimizers))
    chance = chance or {}
    if not optimizers:
        return {}
    meta = storage.frames.select_studies(storage.studies_frame(rdb), where=storage.storage_label(rdb), sweep=sweep,
                                         optimizer=optimizers, schedule=schedule)
    frame = storage.frames.trials_for(rdb, meta, attrs=storage.answers.EVIDENCE_ATTRS, budget=int(budget))
    eff = storage.analysis.effective_trials(frame)
    draws = storage.panel.seed_draws_for(eff, n_boot)
    by_study = meta.set_index("study")
    out = {}
    for opt in optimizers:
        study = storage.study_name(sweep, opt, schedule)
        trials = frame[frame["optimizer"] == opt]
        mine = eff[eff["optimizer"] == opt]
        if trials.empty:
            out[opt] = empty_panel(sweep, opt, schedule, budget, f"no trial at T={budget} yet", study)
        elif not mine["state"].eq("COMPLETE").any():
            out[opt] = _unfinished(sweep, opt, schedule, int(budget), study, trials, mine, chance.get(opt))
        else:
            out[opt] = _answered(sweep, opt, schedule, int(budget), study, trials, mine, by_study.loc[study], draws,
                                 chance.get(opt))
    return out


def _answered(sweep, opt, schedule, budget, study, trials, eff, meta_row, draws, chance) -> Panel:
    """A panel with a COMPLETE trial: ``storage.panel.answer`` on its effective trials and axes."""
    notes: list[str] = []
    axes = (trials["lr"], trials["wd_norm"])
    try:
        ans = storage.panel.answer(eff, *axes, meta_row, draws)
    except storage.StorageError:
        raise
    except Exception as exc:  # noqa: BLE001 - a failing fit must not take the heatmaps down with it
        log.warning("coupling fit failed for %s/%s/%s T=%s", sweep, opt, schedule, budget, exc_info=True)
        notes.append(f"coupling fit unavailable ({type(exc).__name__}: {exc})")
        ans = storage.panel.answer(eff, *axes, meta_row, draws, coupling=False)
    winner = ans.grid[ans.grid["best"]]
    border = storage.analysis.border_note(ans.grid, winner.iloc[0]) if not winner.empty else ""
    grid = ans.grid[GRID].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)
    return Panel(sweep, opt, schedule, budget, study, grid=grid, coupling=ans.coupling, best=ans.best,
                 sources=tuple(ans.sources), chance=chance, border=border, notes=tuple(notes))


def _unfinished(sweep, opt, schedule, budget, study, trials, eff, chance) -> Panel:
    """A panel whose trials at T have not completed (FAIL, or still running): its grid of holes and failures."""
    analysis = storage.analysis
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    grid = analysis.full_grid(trials["lr"], trials["wd_norm"], ranked)
    grid = grid.assign(error_lo=np.nan, error_hi=np.nan, p_best=np.nan, plausible=False)
    grid = grid[GRID].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)
    return Panel(sweep, opt, schedule, budget, study, grid=grid, chance=chance,
                 notes=(f"no COMPLETE trial at T={budget} yet",))


# --- the coupling's lines and points: storage's, drawn ----------------------------------------------


def _log2(v) -> float:
    return math.log2(v) if v is not None and v > 0 and math.isfinite(v) else math.nan


@dataclass(frozen=True)
class Star:
    """storage's λ_norm*(α) of one α row (descriptive: the row's refined argmin) in log₂ units, with the
    row's over-regularisation edge and whether the edge is located inside the grid."""

    lr: float
    wd_norm: float
    lo: float
    hi: float
    edge: float
    edge_lo: float
    edge_hi: float
    edge_located: bool

    @property
    def x(self) -> float:
        return math.log2(self.lr)

    @property
    def y(self) -> tuple[float, float, float]:
        """(log₂ λ_norm*, log₂ lo, log₂ hi)."""
        return _log2(self.wd_norm), _log2(self.lo), _log2(self.hi)

    @property
    def edge_y(self) -> tuple[float, float, float]:
        """(log₂ edge, log₂ lo, log₂ hi)."""
        return _log2(self.edge), _log2(self.edge_lo), _log2(self.edge_hi)


def stars(coupling: storage.Coupling | None) -> list[Star]:
    """Every α row's λ_norm* and edge with their intervals, as storage located them (rows sorted by α)."""
    if coupling is None:
        return []
    nan = lambda v: math.nan if v is None else float(v)
    return sorted((Star(r["lr"], nan(r["lambda_star"]), nan(r["lambda_star_lo"]), nan(r["lambda_star_hi"]),
                        nan(r["edge"]), nan(r["edge_lo"]), nan(r["edge_hi"]), bool(r["edge_located"]))
                   for r in coupling.rows), key=lambda s: s.lr)


@dataclass(frozen=True)
class Line:
    """One of storage's fitted lines (``argmin``, ``valley`` or ``edge``) at each α row, log₂ units, with its band."""

    name: str
    slope: float
    x: list[float]
    y: list[float]
    lo: list[float]
    hi: list[float]

    def band(self) -> tuple[list[float], list[float]]:
        """A closed polygon (x, y): upper ends left to right, then lower ends back."""
        return self.x + self.x[::-1] + self.x[:1], self.hi + self.lo[::-1] + self.hi[:1]


def fitted_lines(coupling: storage.Coupling | None) -> list[Line]:
    """storage's fitted λ_norm*(α), valley and edge lines over the panel's α rows (those it has a slope for)."""
    if coupling is None:
        return []
    out = []
    for name, slope in (("argmin", coupling.argmin_slope), ("valley", coupling.slope), ("edge", coupling.edge_slope)):
        if slope is None or not math.isfinite(slope):
            continue
        pts = sorted((r["lr"], *(_log2(r[f"{name}_line{k}"]) for k in ("", "_lo", "_hi"))) for r in coupling.rows)
        pts = [p for p in pts if all(math.isfinite(v) for v in p[1:])]
        if len(pts) >= 2:
            out.append(Line(name, float(slope), [math.log2(p[0]) for p in pts], [p[1] for p in pts],
                            [p[2] for p in pts], [p[3] for p in pts]))
    return out
