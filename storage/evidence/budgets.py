"""Appendix B.1: λ_norm* against the budget T, from one joint fit over the (T, λ_norm) profile.

Each budget's panel is profiled over α (the best of its α rows at each λ_norm: :func:`profile`), and
the profiles of all budgets form one landscape whose rows are u = log T and whose columns are
v = log λ_norm. The same two estimates as the coupling's (:mod:`storage.evidence.landscape`) then
read the exponent k of λ_norm* ∝ T^k off the whole landscape, instead of per-budget bracketing:

* **the valley** of the quadratic surface over the profile's cells (below the best–chance midpoint):
  k = −H_uv/H_vv, the slope of λ_norm*(T) itself. Two budgets fit the surface without its u² term.
  It is used when the surface curves in λ_norm (H_vv's interval above 0) and its valley lies inside
  the λ_norm range at ≥ :data:`MIN_BUDGETS` budgets;
* else **the over-regularisation edge** (the largest λ_norm within ``tol`` of each budget's best),
  k = its least-squares slope over the budgets that locate it (≥ :data:`MIN_BUDGETS`).

``k_source`` says which. The interval of k comes from the shared bootstrap draws (both noise
sources, seeds paired across budgets); the predictions it contains are :data:`PREDICTIONS`: the
paper's √ rule (k = 0), a decay timescale that is a fixed fraction of the run (k = −½), one fixed in
epochs (k = +½); raw λ* ∝ T^(k − ½). λ_norm* per budget is the joint valley at that T when the
surface is fitted, else the budget's refined argmin (descriptive).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from storage.evidence import landscape as L
from storage.evidence import verdicts
from storage.evidence.base import (DEFAULT_LEVEL, EXPAND_LAND, MIN_BUDGETS, PREDICTIONS, Panel, Rng, SeedDraws, _Result,
                                   _rng)
from storage.evidence.cells import percentile_interval
from storage.evidence.noise import panel_draws
from storage.evidence.rows import all_fixed, lambda_star, profile, slope, usable_rows

__all__ = ["BudgetScaling", "budget_scaling", "consistent_predictions", "favoured_prediction"]


def consistent_predictions(ci: tuple[float, float] | None) -> tuple[str, ...]:
    """The :data:`PREDICTIONS` of k that the interval contains (:func:`verdicts.near`, margin 0)."""
    return verdicts.near(ci, PREDICTIONS)


def favoured_prediction(consistent: Sequence[str]) -> str | None:
    """The only consistent prediction; None when none or several are (see ``BudgetScaling.verdict``)."""
    return consistent[0] if len(consistent) == 1 else None


@dataclass(frozen=True, eq=False)
class BudgetScaling(_Result):
    """λ_norm*(T) (and raw λ*(T) when b, B are given) with intervals; the exponents and the verdict.

    ``k`` is the exponent of λ_norm* ∝ T^k from ``k_source`` ("valley" or "edge", module doc),
    ``raw_exponent`` = k − ½ that of raw λ*; ``valley_k``/``edge_k`` with their intervals are both
    estimates; ``located`` the budgets the chosen estimate rests on; ``verdict`` one line.
    """

    budgets: tuple[int, ...]
    lambda_norm_star: np.ndarray
    lambda_norm_lo: np.ndarray
    lambda_norm_hi: np.ndarray
    raw_star: np.ndarray | None
    raw_lo: np.ndarray | None
    raw_hi: np.ndarray | None
    censored: np.ndarray
    located: np.ndarray
    k: float | None
    k_ci: tuple[float, float] | None
    raw_exponent: float | None
    raw_exponent_ci: tuple[float, float] | None
    consistent: tuple[str, ...]
    favoured: str | None
    verdict: str
    level: float
    n_boot: int
    n_valid_draws: int
    k_source: str | None = None
    valley_k: float | None = None
    valley_k_ci: tuple[float, float] | None = None
    edge_k: float | None = None
    edge_k_ci: tuple[float, float] | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


def _verdict_line(consistent: Sequence[str], favoured: str | None) -> str:
    if favoured:
        return f"favours {favoured}"
    if consistent:
        return "cannot tell apart: " + ", ".join(consistent)
    return "consistent with none of the predictions"


def _profiles(panels: Sequence[Panel], seeds: SeedDraws, gen: np.random.Generator, level: float):
    """(point (nT, nλ), land draws (n_boot, nT, nλ), location-test draws, dead (nT, nλ), usable (nT,))."""
    point, land, cells, dead, usable = [], [], [], [], []
    for p in panels:
        rows = usable_rows(p)
        point.append(profile(p.grid(p.means), rows))
        land.append(profile(p.grid(panel_draws(p, seeds, gen, level=level, expand=EXPAND_LAND)), rows))
        cells.append(profile(p.grid(panel_draws(p, seeds, gen, level=level, expand="t")), rows))
        dead.append((all_fixed(p) | ~rows[:, None]).all(0))  # profile columns with only diverged cells
        usable.append(bool(rows.any()))
    point, dead = np.stack(point), np.stack(dead)
    usable = np.array(usable) & (np.isfinite(point).sum(1) >= 2)
    return point, np.stack(land, 1), np.stack(cells, 1), dead, usable


def _ci(draws: np.ndarray, point: float | None, level: float) -> tuple[tuple[float, float] | None, int]:
    """The coupling's percentile interval (:func:`storage.evidence.landscape._ci`) and the draws it used."""
    return L._ci(draws, point, level), int(np.isfinite(np.asarray(draws, float)).sum())


_num = L._num


def budget_scaling(panels: Sequence[Panel], seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL,
                   raw_scale: Sequence[float] | None = None,
                   tol: float = L.DEFAULT_TOL) -> BudgetScaling:
    """λ_norm* per budget T (each panel's ``budget``), the exponent k of λ_norm* ∝ T^k and raw λ* ∝ T^(k−½),
    from one joint fit over the budgets' profiles (module doc).

    One :class:`SeedDraws` for all budgets: seed labels common to several budgets are resampled
    together (paired); budgets with disjoint labels are independent. ``raw_scale`` (one per panel, in
    the panels' order): λ/λ_norm at that budget as the runs recorded it, which turns λ_norm* into
    raw λ* (none: no raw λ*; the formula itself is trainers.schedules').
    """
    gen = _rng(rng)
    if any(p.budget is None for p in panels):
        raise ValueError("every panel needs its budget T")
    if raw_scale is not None:
        raw_scale = np.asarray(raw_scale, float)[np.argsort([p.budget for p in panels], kind="stable")]
    panels = sorted(panels, key=lambda p: p.budget)
    budgets = tuple(int(p.budget) for p in panels)
    if len(set(budgets)) != len(budgets):
        raise ValueError(f"budgets repeat: {budgets}")
    if any(not np.allclose(p.wd_norms, panels[0].wd_norms) for p in panels):
        raise ValueError("every budget's panel needs the same λ_norm axis")
    point, land, cells, dead, usable = _profiles(panels, seeds, gen, level)
    u, v = np.log(np.asarray(budgets, float)), np.log(np.asarray(panels[0].wd_norms, float))
    notes: list[str] = []

    # the valley of the joint surface
    fit = L.fit_cells(point, dead, usable, panels[0].chance)
    vp, vb = (L.valley(x, fit, u, v, min_rows=MIN_BUDGETS) for x in (point, land))
    valley_k = valley_ci = None
    valley_ok = False
    if vp is not None:
        valley_k = _num(vp.slope)
        valley_ci, _ = _ci(vb.slope, valley_k, level)
        curv_ci, _ = _ci(vb.curvature, _num(vp.curvature), level)
        inside = usable & (vp.line >= v.min()) & (vp.line <= v.max())
        valley_ok = (valley_ci is not None and curv_ci is not None and curv_ci[0] > 0
                     and int(inside.sum()) >= MIN_BUDGETS)
        if not valley_ok:
            notes.append("the (T, λ_norm) surface does not curve significantly in λ_norm, or its valley leaves "
                         "the grid: k from the edge")

    # the edge
    ep = L.edges(point, v, tol, dead)
    eb = L.edges(land, v, tol, dead).position
    rows = L.located_rows(ep, cells, usable, level)
    edge_k = _num(slope(u, ep.position, rows, MIN_BUDGETS))
    edge_draws = slope(u, eb, rows, MIN_BUDGETS)
    edge_ci, _ = _ci(edge_draws, edge_k, level)

    # λ_norm* per budget: the joint valley at each T, else the budget's refined argmin
    argmin = lambda_star(point, v, ~usable, exclude=dead)
    censored = np.asarray(argmin.censored, bool)
    if vp is not None:
        star_pt, star_draws = vp.line, vb.line
    else:
        star_pt, star_draws = argmin.log_star, lambda_star(land, v, ~usable, exclude=dead).log_star
    lo, hi = percentile_interval(star_draws, level)

    if valley_ok:
        source, k, (k_ci, n_valid), located = "valley", valley_k, _ci(vb.slope, valley_k, level), inside
    elif edge_ci is not None:
        source, k, (k_ci, n_valid), located = "edge", edge_k, _ci(edge_draws, edge_k, level), rows
    else:
        source, k, k_ci, n_valid, located = None, None, None, 0, np.zeros(len(budgets), bool)
        notes.append(f"{int(rows.sum())} budget(s) locate the edge inside the grid and the surface gives no "
                     f"valley: an exponent needs ≥ {MIN_BUDGETS}")
    if source is not None and (~located).any():
        notes.append(f"budgets {[b for b, ok in zip(budgets, located) if not ok]} do not locate λ_norm* inside "
                     f"the grid ({source})")

    raw = None
    if raw_scale is not None and np.all(np.isfinite(np.asarray(raw_scale, float))):
        raw = (np.exp(star_pt) * raw_scale, np.exp(lo) * raw_scale, np.exp(hi) * raw_scale)
    consistent = consistent_predictions(k_ci)
    favoured = favoured_prediction(consistent)
    return BudgetScaling(
        budgets, np.exp(star_pt), np.exp(lo), np.exp(hi), *(raw or (None, None, None)), censored, np.asarray(located),
        k, k_ci, None if k is None else k - 0.5, None if k_ci is None else (k_ci[0] - 0.5, k_ci[1] - 0.5),
        consistent, favoured, _verdict_line(consistent, favoured) if k_ci else "no exponent", level, seeds.n_boot,
        n_valid, source, valley_k, valley_ci, edge_k, edge_ci, tuple(notes),
    )
