"""Is the basin coupled? The shape of one panel's landscape in (log α, log λ_norm).

The paper's Figure 2: with L2 regularisation (SGD, Adam) the good settings lie on a diagonal —
the best λ shrinks as α grows, λ*·α ≈ const — because the effective decay is α·λ. With
decoupled decay (SGDW, AdamW) the basin is axis-aligned: λ_norm* does not move with α.

The verdict and its evidence come from :func:`storage.evidence.coupling`: λ_norm*(α) per α row
(sub-grid argmin in log λ_norm, rows that bracket it), the least-squares slope of log λ_norm*
against log α with a bootstrap interval over both noise sources (test set, seeds), and a verdict
*from the interval*: ``coupled`` (excludes 0, contains −1), ``decoupled`` (contains 0, excludes −1),
``inconclusive`` otherwise. Two descriptive measurements are added here, in natural-log
coordinates, without intervals (they describe the point estimate, they decide nothing):

``axis_angle``  Orientation of the principal axis of the top-10 cells, in degrees in (−90, 90]:
                −45 = the coupled diagonal, 0 or 90 = axis-aligned. ``axis_elongation`` = √(λ₁/λ₂)
                of their covariance; near 1 the cloud is round and the angle means little.
``edge_slope``  For each α, the largest λ_norm whose mean error ≤ panel best + tol; slope of its
                log against log α. Robust where the argmin is flat.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from storage import evidence
from storage.analysis import border_note, grid_key

MIN_POINTS = evidence.MIN_POINTS
DEFAULT_TOL = 0.02  # absolute error tolerance of the edge slope


@dataclass(frozen=True)
class Coupling:
    """The coupling of one panel: the evidence's verdict and slope, λ_norm*(α) with its band, and the
    shape descriptors; see the module docstring."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int
    verdict: str  # "coupled" | "decoupled" | "inconclusive"
    slope: float | None
    slope_ci: tuple[float, float] | None
    n_alpha: int  # α rows whose λ_norm* the slope is fitted to (they bracket it)
    axis_angle: float | None
    axis_elongation: float | None
    edge_slope: float | None
    edge_n: int
    tol: float
    n_boot: int
    best_lr: float | None
    best_wd_norm: float | None
    best_error: float | None
    level: float = evidence.DEFAULT_LEVEL
    sources: tuple[str, ...] = ()  # noise sources in the interval: "test set", "seeds"
    #: λ_norm*(α) of every α row that can locate it: (α, λ_norm*, lo, hi, used in the fit)
    lambda_star: tuple[tuple[float, float, float, float, bool], ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["slope_ci"] = list(self.slope_ci) if self.slope_ci is not None else None
        d["notes"], d["sources"] = list(self.notes), list(self.sources)
        d["lambda_star"] = [dict(zip(("lr", "wd_norm", "lo", "hi", "fitted"), (*(_finite(v) for v in r[:4]), r[4])))
                            for r in self.lambda_star]
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


def panel_coupling(ranked: pd.DataFrame, ev: evidence.Coupling, panel: evidence.Panel, *,
                   tol: float = DEFAULT_TOL) -> Coupling:
    """Coupling of one panel from its ranked cells (``storage.analysis.rank_cells``) and the evidence."""
    sweep, optimizer, schedule = (ranked[c].iloc[0] for c in ("sweep", "optimizer", "schedule"))
    budget = int(ranked["budget"].iloc[0])
    have = ranked[ranked["n_seeds"] > 0]
    if have.empty:
        return Coupling(sweep, optimizer, schedule, budget, "inconclusive", None, None, 0, None, None, None, 0,
                        tol, ev.n_boot, None, None, None, ev.level, ev.sources, (), ("no COMPLETE trial in this panel",))
    notes = list(ev.notes)
    best = have.loc[have["rank"].idxmin()]
    if note := border_note(ranked, best):
        notes.append(note)
    alphas = np.unique(grid_key(have["lr"]))
    few = len(alphas) < MIN_POINTS
    if few:
        notes.append(f"only {len(alphas)} α value(s) with results in this panel: slopes need ≥ {MIN_POINTS}")
    if not ev.sources or ev.sources == ("seeds",):
        notes.append("test-set noise not modelled: the study records no n_test")

    top = have[have["top10"]]
    axis_angle = axis_elong = None
    if len(top) >= 3 and grid_key(top["lr"]).size and np.unique(grid_key(top["lr"])).size + np.unique(
            grid_key(top["wd_norm"])).size > 2:
        pts = np.column_stack([np.log(top["lr"].to_numpy(float)), np.log(top["wd_norm"].to_numpy(float))])
        axis_angle, axis_elong = _principal_axis(pts)
        if axis_elong < 1.5:
            notes.append(f"top-{len(top)} cloud nearly round (elongation {axis_elong:.2f}): its axis angle means little")

    edge_slope, edge_n = _edge_slope(have, float(best["test_error"]) + tol)
    if edge_slope is None and not few:
        notes.append(f"too few α values within tol={tol:g} of the best for an edge slope: {edge_n} < {MIN_POINTS}")

    rows = np.flatnonzero(np.isfinite(ev.lambda_star_lo))
    star = tuple((float(panel.alphas[i]), float(ev.lambda_star[i]), float(ev.lambda_star_lo[i]),
                  float(ev.lambda_star_hi[i]), bool(ev.rows[i])) for i in rows)
    return Coupling(
        sweep, optimizer, schedule, budget, ev.verdict, ev.slope, ev.slope_ci, ev.n_rows, axis_angle, axis_elong,
        edge_slope, edge_n, tol, ev.n_boot, float(best["lr"]), float(best["wd_norm"]), float(best["test_error"]),
        ev.level, ev.sources, star, tuple(notes),
    )


def _edge_slope(have: pd.DataFrame, threshold: float) -> tuple[float | None, int]:
    """Slope of log(largest λ_norm with mean error ≤ threshold) against log α, and the α count."""
    xs, ys = [], []
    for a, row in have.assign(_a=grid_key(have["lr"])).groupby("_a", sort=True):
        ok = row[row["test_error"] <= threshold + 1e-12]
        if len(ok):
            xs.append(math.log(float(row["lr"].iloc[0])))
            ys.append(math.log(float(ok["wd_norm"].max())))
    if len(xs) < MIN_POINTS:
        return None, len(xs)
    return float(evidence.slope(np.array(xs), np.array(ys))), len(xs)


__all__ = ["DEFAULT_TOL", "MIN_POINTS", "Coupling", "panel_coupling"]
