"""Is the basin coupled? The shape of one panel's landscape in (log α, log λ_norm).

The paper's Figure 2: with L2 regularisation (SGD, Adam) the good settings lie on a diagonal —
the best λ shrinks as α grows, λ*·α ≈ const — because the effective decay is α·λ. With
decoupled decay (SGDW, AdamW) the basin is axis-aligned: λ_norm* does not move with α.

The verdict and its evidence come from :func:`storage.evidence.landscape.coupling`: three estimates
from the basin's rows — the slope of λ_norm*(α) (``argmin_slope``, ``argmin_slope_ci``), the valley
of a quadratic surface (``slope``, ``slope_ci``) and the over-regularisation edge (``edge_slope``,
``edge_slope_ci``) — each with a bootstrap interval over both noise sources (test set, seeds), and
one verdict (``verdict``, resting on ``rests_on``; the rule is in docs/rules.md). One descriptive measurement is added here, without an interval (it
describes the point estimate, it decides nothing):

``axis_angle``  Orientation of the principal axis of the top-10 cells, in degrees in (−90, 90]:
                −45 = the coupled diagonal, 0 or 90 = axis-aligned. ``axis_elongation`` = √(λ₁/λ₂)
                of their covariance; near 1 the cloud is round and the angle means little.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from storage import evidence
from storage.constants import DEFAULT_TOL
from storage.analysis import border_note, grid_key
from storage.evidence import landscape

MIN_POINTS = evidence.MIN_POINTS


@dataclass(frozen=True)
class Coupling:
    """The coupling of one panel: the evidence's verdict and slope, λ_norm*(α) with its band, and the
    shape descriptors; see the module docstring."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int
    verdict: str  # "coupled" | "decoupled" | "inconclusive"
    rests_on: tuple[str, ...]  # the estimates the verdict rests on: "argmin", "edge", "valley"
    argmin_slope: float | None  # the slope of the basin rows' λ_norm*(α)
    argmin_slope_ci: tuple[float, float] | None
    argmin_verdict: str
    n_argmin_rows: int  # basin rows in which λ_norm matters (the χ² test): the λ_norm*(α) fit's rows
    slope: float | None  # the valley's slope −H_uv/H_vv
    slope_ci: tuple[float, float] | None
    valley_verdict: str
    curvature: float | None  # H_vv: how the surface curves in log λ_norm
    curvature_ci: tuple[float, float] | None
    n_fit_cells: int  # cells in the surface fit
    edge_slope: float | None  # the over-regularisation edge's slope
    edge_slope_ci: tuple[float, float] | None
    edge_verdict: str
    n_alpha: int  # α rows that locate the edge inside the grid
    axis_angle: float | None
    axis_elongation: float | None
    tol: float
    n_boot: int
    best_lr: float | None
    best_wd_norm: float | None
    best_error: float | None
    level: float = evidence.DEFAULT_LEVEL
    sources: tuple[str, ...] = ()  # noise sources in the interval: "test set", "seeds"
    #: per α row with a measured cell: λ_norm*(α) (the row's refined argmin, descriptive) with its band,
    #: the row's edge with its band and whether it is located, and the fitted valley and edge lines
    #: at that α with their pointwise bands (all λ_norm values; None where there is none)
    rows: tuple[dict, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def estimates(self) -> list[tuple[str, float, tuple[float, float] | None, str]]:
        """(name, slope, interval, verdict) of each estimate that has a slope, in the order every view
        shows them: "λ*" (λ_norm*(α)), "edge", "valley"."""
        return [(name, value, ci, verdict) for name, value, ci, verdict in (
            ("λ*", self.argmin_slope, self.argmin_slope_ci, self.argmin_verdict),
            ("edge", self.edge_slope, self.edge_slope_ci, self.edge_verdict),
            ("valley", self.slope, self.slope_ci, self.valley_verdict)) if value is not None]

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("argmin_slope_ci", "slope_ci", "edge_slope_ci", "curvature_ci"):
            d[k] = list(d[k]) if d[k] is not None else None
        d["notes"], d["sources"], d["rests_on"] = list(self.notes), list(self.sources), list(self.rests_on)
        d["rows"] = [dict(r) for r in self.rows]
        return d


def _finite(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _principal_axis(points: np.ndarray) -> tuple[float, float]:
    """(angle in degrees in (−90, 90], elongation √(λ₁/λ₂)) of 2-D points."""
    cov = np.cov(points.T)
    evals, evecs = np.linalg.eigh(cov)
    dx, dy = evecs[:, -1]
    angle = math.degrees(math.atan2(dy, dx))
    if angle <= -90:
        angle += 180
    elif angle > 90:
        angle -= 180
    if abs(angle + 90) < 1e-9:
        angle = 90.0
    elongation = math.inf if evals[0] <= 1e-15 * max(evals[1], 1e-300) else math.sqrt(evals[1] / evals[0])
    return angle, elongation


ROW_FIELDS = ("lambda_star", "lambda_star_lo", "lambda_star_hi", "argmin_line", "argmin_line_lo", "argmin_line_hi",
              "edge", "edge_lo", "edge_hi", "edge_line", "edge_line_lo", "edge_line_hi", "valley_line",
              "valley_line_lo", "valley_line_hi")


def _rows(ev: landscape.LandscapeCoupling, panel: evidence.Panel) -> tuple[dict, ...]:
    out = []
    for i in np.flatnonzero(ev.usable):
        row = {"lr": float(panel.alphas[i]), **{k: _finite(getattr(ev, k)[i]) for k in ROW_FIELDS}}
        row["in_basin"], row["lambda_matters"] = bool(ev.basin[i]), bool(ev.argmin_rows[i])
        row["edge_located"] = bool(ev.edge_rows[i])
        out.append(row)
    return tuple(out)


def panel_coupling(ranked: pd.DataFrame, ev: landscape.LandscapeCoupling, panel: evidence.Panel, *,
                   tol: float = DEFAULT_TOL) -> Coupling:
    """Coupling of one panel from its ranked cells (``storage.analysis.rank_cells``) and the evidence."""
    # column arrays rather than frame filters: this runs once a panel, on the answer threads (pandas holds the GIL)
    sweep, optimizer, schedule = (ranked[c].iloc[0] for c in ("sweep", "optimizer", "schedule"))
    budget = int(ranked["budget"].iloc[0])
    have = np.flatnonzero(ranked["n_seeds"].to_numpy() > 0)  # cells with a COMPLETE seed
    if not have.size:
        return Coupling(sweep, optimizer, schedule, budget, "inconclusive", (), None, None, "inconclusive", 0,
                        None, None, "inconclusive", None, None,
                        0, None, None, "inconclusive", 0, None, None, tol, ev.n_boot, None, None, None, ev.level,
                        ev.sources, (), ("no COMPLETE trial in this panel",))
    notes = list(ev.notes)
    best = ranked.iloc[np.flatnonzero(ranked["best"].to_numpy(bool))[0]]  # rank_cells' best cell (rank 1)
    if note := border_note(ranked, best):
        notes.append(note)
    lr, wd_norm = ranked["lr"].to_numpy(float), ranked["wd_norm"].to_numpy(float)
    alphas = np.unique(grid_key(pd.Series(lr[have])))
    few = len(alphas) < MIN_POINTS
    if few:
        notes.append(f"only {len(alphas)} α value(s) with results in this panel: slopes need ≥ {MIN_POINTS}")
    if not ev.sources or ev.sources == ("seeds",):
        notes.append("test-set noise not modelled: the study records no n_test")

    top = have[ranked["top10"].to_numpy(bool)[have]]
    axis_angle = axis_elong = None
    if len(top) >= 3 and np.unique(grid_key(pd.Series(lr[top]))).size + np.unique(
            grid_key(pd.Series(wd_norm[top]))).size > 2:
        pts = np.column_stack([np.log(lr[top]), np.log(wd_norm[top])])
        axis_angle, axis_elong = _principal_axis(pts)
        if axis_elong < 1.5:
            notes.append(f"top-{len(top)} cloud nearly round (elongation {axis_elong:.2f}): its axis angle means little")

    return Coupling(
        sweep, optimizer, schedule, budget, ev.verdict, ev.rests_on, ev.argmin_slope, ev.argmin_slope_ci,
        ev.argmin_verdict, ev.n_argmin_rows, ev.slope, ev.slope_ci, ev.valley_verdict,
        ev.curvature, ev.curvature_ci, ev.n_fit_cells, ev.edge_slope, ev.edge_slope_ci, ev.edge_verdict,
        ev.n_edge_rows, axis_angle, axis_elong, tol, ev.n_boot, float(best["lr"]), float(best["wd_norm"]),
        float(best["test_error"]), ev.level, ev.sources, _rows(ev, panel), tuple(notes),
    )


__all__ = ["DEFAULT_TOL", "MIN_POINTS", "Coupling", "panel_coupling"]
