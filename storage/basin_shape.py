"""Is the basin coupled? The shape of one panel's landscape in (log α, log λ_norm).

The paper's Figure 2: with L2 regularisation (SGD, Adam) the good settings lie on a diagonal —
the best λ shrinks as α grows, λ*·α ≈ const — because the effective decay is α·λ. With
decoupled decay (SGDW, AdamW) the basin is axis-aligned: λ_norm* does not move with α.

Three measurements per panel (optimizer × schedule × budget T), all in natural-log coordinates:

``slope``       For each α, λ*(α) = argmin over λ_norm of the mean test error (ties: geometric mean
                of the tied λ_norm values); least-squares slope of log λ* against log α.
                Coupled ≈ −1, decoupled ≈ 0. ``slope_ci``: 95% percentile bootstrap, resampling
                the seeds of every cell with replacement (n_boot draws, fixed RNG seed).
``axis_angle``  Orientation of the principal axis of the top-10 cells in (log α, log λ_norm),
                in degrees in (−90, 90]: −45 = the coupled diagonal, 0 or 90 = axis-aligned.
                ``axis_elongation`` = √(λ₁/λ₂) of their covariance; near 1 the cloud is round and
                the angle means little.
``edge_slope``  For each α, the largest λ_norm whose mean error ≤ panel best + tol; slope of its
                log against log α. Robust where the argmin is flat.

A slope needs at least :data:`MIN_POINTS` α values; fewer, and the result says so instead.
Rows (α values) where every cell diverged carry no information about λ* and are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from storage.analysis import border_note, grid_key, rank_cells, slope

MIN_POINTS = 3
DEFAULT_TOL = 0.02  # absolute error tolerance of the edge slope
DEFAULT_BOOT = 1000  # bootstrap draws of every interval Basin reports
COUPLED_BELOW = -0.5  # slope ≤ this: coupled; |slope| < 0.5: decoupled


@dataclass(frozen=True)
class Coupling:
    """The coupling measurements of one panel; see the module docstring for their meaning."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int
    verdict: str  # "coupled" | "decoupled" | "unclear" | "too few points"
    slope: float | None
    slope_ci: tuple[float, float] | None
    n_alpha: int  # α values that located a λ_norm*
    axis_angle: float | None
    axis_elongation: float | None
    edge_slope: float | None
    edge_n: int
    tol: float
    n_boot: int
    best_lr: float | None
    best_wd_norm: float | None
    best_error: float | None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["slope_ci"] = list(self.slope_ci) if self.slope_ci is not None else None
        d["notes"] = list(self.notes)
        return d


def argmin_log_lambda(means: np.ndarray, log_wd: np.ndarray) -> np.ndarray:
    """log λ_norm*(α) per row of ``means`` (..., nα, nλ), NaN = missing cell; ties → mean of logs."""
    row_min = np.nanmin(means, axis=-1, keepdims=True)
    tied = np.isclose(means, row_min, rtol=0.0, atol=1e-12) & ~np.isnan(means)
    return (tied * log_wd).sum(axis=-1) / tied.sum(axis=-1)


@dataclass(frozen=True)
class GridMatrix:
    """A panel's cells as an nα × nλ matrix of mean errors (NaN: no COMPLETE seed)."""

    alphas: np.ndarray  # grid keys of α, ascending
    lambdas: np.ndarray  # grid keys of λ_norm, ascending
    means: np.ndarray
    all_diverged: np.ndarray

    @property
    def informative(self) -> np.ndarray:
        """Row indices that can locate λ_norm*: ≥ 2 λ_norm cells with data, not all of them diverged."""
        n_cells = (~np.isnan(self.means)).sum(axis=1)
        return np.flatnonzero((n_cells >= 2) & ~(self.all_diverged | np.isnan(self.means)).all(axis=1))


def grid_matrix(cells: pd.DataFrame) -> GridMatrix:
    """The matrix of the cells with a COMPLETE seed (columns lr, wd_norm, test_error, diverged_all, n_seeds)."""
    have = cells[cells["n_seeds"] > 0]
    a_key, w_key = grid_key(have["lr"]), grid_key(have["wd_norm"])
    alphas, lambdas = np.unique(a_key), np.unique(w_key)
    ia = np.searchsorted(alphas, a_key)
    il = np.searchsorted(lambdas, w_key)
    means = np.full((len(alphas), len(lambdas)), np.nan)
    all_diverged = np.zeros(means.shape, bool)
    means[ia, il] = have["test_error"].to_numpy(float)
    all_diverged[ia, il] = have["diverged_all"].to_numpy(bool)
    return GridMatrix(alphas, lambdas, means, all_diverged)


def argmin_points(cells: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(log α, log λ_norm*(α)) in natural logs for the α rows that locate λ_norm*: the points the
    coupling slope is fitted to (and the dashboard draws its line through)."""
    m = grid_matrix(cells)
    rows = m.informative
    return np.log(m.alphas[rows]), argmin_log_lambda(m.means[rows], np.log(m.lambdas))


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


def panel_coupling(
    effective: pd.DataFrame, cells: pd.DataFrame, *, tol: float = DEFAULT_TOL, n_boot: int = DEFAULT_BOOT, seed: int = 0
) -> Coupling:
    """Coupling of one panel from its effective trials and its cells (one budget of one study)."""
    sweep, optimizer, schedule = (cells[c].iloc[0] for c in ("sweep", "optimizer", "schedule"))
    budget = int(cells["budget"].iloc[0])
    notes: list[str] = []
    ranked = rank_cells(cells)
    have = ranked[ranked["n_seeds"] > 0]
    if have.empty:
        return Coupling(sweep, optimizer, schedule, budget, "too few points", None, None, 0, None, None, None, 0,
                        tol, n_boot, None, None, None, ("no COMPLETE trial in this panel",))
    best = have.loc[have["rank"].idxmin()]
    if note := border_note(ranked, best):
        notes.append(note)

    m = grid_matrix(have)
    alphas, lambdas, means = m.alphas, m.lambdas, m.means
    ia = {a: i for i, a in enumerate(alphas)}
    il = {w: j for j, w in enumerate(lambdas)}
    shape = means.shape
    log_a, log_l = np.log(alphas), np.log(lambdas)
    rows = m.informative
    n_alpha = len(rows)
    few = len(alphas) < MIN_POINTS  # the grid itself is too small: say so once
    if few:
        notes.append(f"only {len(alphas)} α value(s) with results in this panel: slopes need ≥ {MIN_POINTS}")
    elif n_alpha < len(alphas):
        notes.append(f"{len(alphas) - n_alpha} α value(s) skipped: fewer than 2 λ_norm cells, or every cell diverged")

    fit = slope_ci = None
    if n_alpha >= MIN_POINTS:
        log_star = argmin_log_lambda(means[rows], log_l)
        fit = slope(log_a[rows], log_star)
        at_edge = np.isclose(log_star, log_l[0]) | np.isclose(log_star, log_l[-1])
        if at_edge.any():
            notes.append(f"λ_norm* sits on the λ_norm border for {int(at_edge.sum())} of {n_alpha} α values: "
                         "the slope is censored there")
        slope_ci = _bootstrap_ci(effective, ia, il, shape, rows, log_a, log_l, n_boot, seed, notes)
    elif not few:
        notes.append(f"too few α values locate a λ_norm*: {n_alpha} < {MIN_POINTS}, no slope")

    # Principal axis of the top-10 cells.
    top = have[have["top10"]]
    axis_angle = axis_elong = None
    if len(top) >= 3 and top["_lr"].nunique() + top["_wd"].nunique() > 2:
        pts = np.column_stack([np.log(top["_lr"].to_numpy(float)), np.log(top["_wd"].to_numpy(float))])
        axis_angle, axis_elong = _principal_axis(pts)
        if axis_elong < 1.5:
            notes.append(f"top-{len(top)} cloud nearly round (elongation {axis_elong:.2f}): its axis angle means little")
    elif not few:
        notes.append(f"too few top cells for a principal axis: {len(top)} < 3")

    # Edge slope: the largest λ_norm within tol of the panel best, per α.
    threshold = best["test_error"] + tol
    edge_rows, edge_vals = [], []
    for i in range(len(alphas)):
        ok = np.flatnonzero(means[i] <= threshold + 1e-12)
        if ok.size:
            edge_rows.append(i)
            edge_vals.append(log_l[ok.max()])
    edge_slope = None
    edge_n = len(edge_rows)
    if edge_n >= MIN_POINTS:
        edge_slope = slope(log_a[edge_rows], np.array(edge_vals))
        if np.isclose(edge_vals, log_l[-1]).any():
            notes.append("the tolerance edge reaches the largest λ_norm for some α: edge slope censored")
    elif not few:
        notes.append(f"too few α values within tol={tol:g} of the best for an edge slope: {edge_n} < {MIN_POINTS}")

    verdict = _verdict(fit, slope_ci, edge_slope, notes)
    return Coupling(
        sweep, optimizer, schedule, budget, verdict, fit, slope_ci, n_alpha, axis_angle, axis_elong,
        edge_slope, edge_n, tol, n_boot, float(best["lr"]), float(best["wd_norm"]), float(best["test_error"]),
        tuple(notes),
    )


def _verdict(slope, ci, edge_slope, notes: list[str]) -> str:
    s = slope if slope is not None else edge_slope
    if s is None:
        return "too few points"
    if slope is None:
        notes.append("verdict from the edge slope (no argmin slope)")
    if ci is not None and ci[0] <= COUPLED_BELOW < ci[1] and ci[1] - ci[0] > 0:
        notes.append(f"the slope interval spans {COUPLED_BELOW}: coupled and decoupled both plausible")
    if s <= COUPLED_BELOW:
        return "coupled"
    if abs(s) < -COUPLED_BELOW:
        return "decoupled"
    return "unclear"


def _bootstrap_ci(effective, ia, il, shape, rows, log_a, log_l, n_boot, seed, notes) -> tuple[float, float] | None:
    """95% percentile interval of the argmin slope, resampling seeds within every cell."""
    if n_boot <= 0:
        return None
    eff = effective[effective["state"].eq("COMPLETE")]
    groups: dict[tuple[int, int], np.ndarray] = {}
    for (a, w), vals in eff.groupby(["_lr", "_wd"])["value"]:
        if a in ia and w in il:
            groups[(ia[a], il[w])] = vals.to_numpy(float)
    max_n = max(len(v) for v in groups.values())
    if max_n == 1:
        notes.append("one seed per cell: the bootstrap interval has no seed noise to show")
    rng = np.random.default_rng(seed)
    boot = np.full((n_boot, *shape), np.nan)
    for (i, j), vals in groups.items():
        draws = vals[rng.integers(0, len(vals), size=(n_boot, len(vals)))]
        boot[:, i, j] = draws.mean(axis=1)
    log_star = argmin_log_lambda(boot[:, rows, :], log_l)
    slopes = slope(log_a[rows], log_star)
    lo, hi = np.percentile(slopes, [2.5, 97.5])
    return float(lo), float(hi)
