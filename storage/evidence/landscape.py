"""Is the basin coupled? Three estimates from the basin's rows, each with its interval, and one verdict.

Coordinates: u = log α, v = log λ_norm (natural logs; a log–log slope is the same in any base). The
paper's Figure 2 predicts where the good settings lie as α moves:

* L2 regularisation (SGD+L2, Adam+L2): the effective decay is α·λ, so the basin follows α·λ = const —
  d v/d u = **−1** ("coupled");
* decoupled decay (SGDW, AdamW): the basin does not move with α — d v/d u = **0** ("decoupled").

**Basin rows** (:func:`basin_rows`): the α rows with a measured cell within ``tol`` of the panel's
best. No row is dropped for having its optimum near the border; a row whose every cell is far
worse (an α too small to train in the budget, or too large) is outside the basin: it shows where a
cliff runs, not where the optimum is.

**λ_norm*(α)** (the paper's quantity). Each basin row's refined argmin
(:func:`storage.evidence.lambda_star`), over the rows where λ_norm matters (:func:`lambda_matters`,
a χ² / F test that the row's cells are equal); the least-squares slope against u over ≥
:data:`storage.evidence.MIN_POINTS` rows. The test guards the interval: in a flat row the bootstrap
keeps the observed argmin's luck, so its spread understates the argmin's noise.

**The valley** (a bowl's floor). The least-squares quadratic surface over the *fit cells*

    e(u, v) ≈ c + b_u·u + b_v·v + ½H_uu·u² + H_uv·u·v + ½H_vv·v²

has its valley (∂e/∂v = 0) at v*(u) = −(b_v + H_uv·u)/H_vv, a line of slope **−H_uv/H_vv** — the
same quantity as d log λ_norm*/d log α. Fit cells: every cell of a basin row with a measured value
whose mean is below the midpoint between the panel's best and the chance level (diverged cells, recorded at
chance, and cells at the chance level say nothing about the bowl's curvature). A verdict only where
the surface curves in λ (H_vv's interval lies above 0) and its valley crosses ≥ MIN_POINTS α rows
inside the grid's λ_norm range (else the valley is an extrapolation).

**The over-regularisation edge** (a plateau's cliff). Real landscapes are not bowls: MNIST-1D's is a
plateau ending in a cliff, with diverged corners. Per basin row i with best mean b_i, the edge is the
largest v at which the row is still within ``tol`` of b_i: the last crossing of θ_i = b_i + tol,
interpolated linearly in v between the last cell ≤ θ_i and the next cell (a diverged cell enters at
its chance value: it is the cliff's far side). Under L2 the edge sits at a fixed α·λ (slope −1),
decoupled at a fixed λ (slope 0). A row *locates* its edge when its last λ_norm cell is
distinguishably worse than its best (the one-sided paired bootstrap test of the plausible optima,
:func:`storage.evidence.p_not_worse`); the edge slope is the least-squares slope of the located
rows' edges against u (≥ :data:`storage.evidence.MIN_POINTS` rows).

Intervals: percentile intervals over the shared bootstrap draws (both noise sources; the cells and
rows are chosen once, on the data, and every draw re-fits them; a located row whose draw puts the
edge beyond the grid enters at the border). Draws for the slopes use ``expand="variance"`` (a
statistic pooling many cells), the location test ``expand="t"`` (one or two cells).

**The verdict** (:func:`combine`, docs/rules.md): each slope's verdict follows its interval with a
margin of :data:`MARGIN` around each prediction — ``coupled`` when the interval comes within MARGIN
of −1 and not within MARGIN of 0, ``decoupled`` the reverse, else ``inconclusive``
(:func:`slope_verdict`). The panel's verdict is the verdict of the decided estimates when they
agree (``rests_on`` names them: "argmin", "edge", "valley"); inconclusive when none is decided or two
decided ones contradict each other. A slope whose interval is near neither prediction decides
nothing; a note says so.

Calibration by simulation (bench/calibration.py, tests/storage/test_landscape.py; docs/evidence.md
has the table): verdicts right in 98–100% of 200 replicates on bowls, cliffs and MNIST-1D's tilted
decoupled shape at 1 and 3 seeds, never the opposite; a landscape without a λ effect inconclusive in
98–100%.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from storage.constants import DEFAULT_TOL
from storage.evidence import verdicts
from storage.evidence.base import (DEFAULT_LEVEL, EXPAND_LAND, MIN_POINTS, Panel, Rng, SeedDraws, _Result, _rng,
                                   noise_sources, not_above)
from storage.evidence.cells import percentile_interval
from storage.evidence.noise import panel_draws
from storage.evidence.rows import _p_rows, all_fixed, lambda_star, slope, usable_rows

MARGIN = 0.25  # a slope within this of a prediction (−1 or 0) is consistent with it
PREDICTIONS = {"coupled": -1.0, "decoupled": 0.0}
N_COEF = 6  # c, b_u, b_v, a_uu, a_uv, a_vv
INCONCLUSIVE = "inconclusive"


def near_predictions(ci: tuple[float, float], margin: float = MARGIN) -> tuple[str, ...]:
    """The :data:`PREDICTIONS` that the interval [lo, hi] comes within ``margin`` of (:func:`verdicts.near`)."""
    return verdicts.near(ci, PREDICTIONS, margin)


def slope_verdict(ci: tuple[float, float] | None, margin: float = MARGIN) -> str:
    """``coupled`` when [lo, hi] comes within ``margin`` of −1 and not of 0; ``decoupled`` the reverse."""
    hits = near_predictions(ci, margin)
    return hits[0] if len(hits) == 1 else INCONCLUSIVE


def combine(verdicts: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """(verdict, the estimates it rests on): the decided estimates' verdict when they agree."""
    decided = {name: v for name, v in verdicts.items() if v != INCONCLUSIVE}
    if len(set(decided.values())) == 1:
        return next(iter(decided.values())), tuple(decided)
    return INCONCLUSIVE, ()


# ─── The valley: a quadratic surface ────────────────────────────────────────────────────────────


def design(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Columns (1, u, v, u², u·v, v²) of the quadratic surface at points (u, v)."""
    u, v = np.asarray(u, float), np.asarray(v, float)
    return np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], -1)


class Valley(NamedTuple):
    slope: np.ndarray  # (...,) −H_uv/H_vv
    curvature: np.ndarray  # (...,) H_vv
    line: np.ndarray  # (..., nα) v*(u_i), centred coordinates undone


def valley(values: np.ndarray, fit: np.ndarray, u: np.ndarray, v: np.ndarray, *, min_rows: int = MIN_POINTS
           ) -> Valley | None:
    """The surface through the ``fit`` cells (nα, nλ) of ``values`` (..., nα, nλ); None if not identifiable.

    With fewer than 3 distinct rows (``min_rows`` = 2: two budgets) the u² term is dropped: the
    valley −(b_v + H_uv·u)/H_vv does not need it, and two rows cannot identify it."""
    ia, iw = np.nonzero(fit)
    n_rows = np.unique(ia).size
    cols = list(range(N_COEF)) if n_rows >= 3 else [0, 1, 2, 4, 5]  # without u² through two rows
    if n_rows < min_rows or ia.size < len(cols) + 1:
        return None
    uc, vc = u - u[np.unique(ia)].mean(), v - v[np.unique(iw)].mean()  # centred: a well-conditioned design
    X = design(uc[ia], vc[iw])[:, cols]
    if np.linalg.matrix_rank(X) < len(cols):
        return None
    coef = np.zeros(np.shape(values)[:-2] + (N_COEF,))
    coef[..., cols] = np.asarray(values, float)[..., ia, iw] @ np.linalg.pinv(X).T  # (..., 6)
    b_v, a_uv, a_vv = coef[..., 2], coef[..., 4], coef[..., 5]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(a_vv != 0, -a_uv / (2 * a_vv), np.nan)
        line = -(b_v[..., None] + a_uv[..., None] * uc) / (2 * a_vv[..., None]) + (v - vc)[0]
    return Valley(s, 2 * a_vv, line)


def fit_cells(means: np.ndarray, dead: np.ndarray, usable: np.ndarray, chance: float | None) -> np.ndarray:
    """Cells (nα, nλ) of the valley fit: measured, in a usable row, below the best–chance midpoint."""
    ok = np.isfinite(means) & ~dead & usable[:, None]
    if not ok.any():
        return ok
    if chance is not None and math.isfinite(chance):
        best = means[ok].min()
        ok &= means < best + 0.5 * (chance - best)
    return ok


# ─── The over-regularisation edge ───────────────────────────────────────────────────────────────


class Edge(NamedTuple):
    position: np.ndarray  # (..., nα) v of the edge; NaN where the row has no measured cell
    inside: np.ndarray  # (..., nα) the crossing lies inside the grid (not at or beyond its last cell)
    best: np.ndarray  # (..., nα) column of the row's best measured cell (−1 if none)
    last: np.ndarray  # (..., nα) the row's last finite column (−1 if none)


def edges(values: np.ndarray, v: np.ndarray, tol: float, dead: np.ndarray | None = None) -> Edge:
    """The last crossing of b_i + ``tol`` in each row of ``values`` (..., nα, nλ), interpolated in ``v`` (nλ,)."""
    m = np.asarray(values, float)
    v = np.asarray(v, float)
    n = v.size
    pos = np.arange(n)
    finite = np.isfinite(m)
    measured = finite if dead is None else finite & ~np.broadcast_to(np.asarray(dead, bool), m.shape)
    masked = np.where(measured, m, np.inf)
    best_col = np.where(measured.any(-1), masked.argmin(-1), -1)
    b = masked.min(-1)
    theta = b + tol
    below = finite & not_above(m, theta[..., None])
    j = np.where(below, pos, -1).max(-1)
    last = np.where(finite, pos, -1).max(-1)
    k = np.where(finite & (pos > j[..., None]), pos, n).min(-1)
    jj, kk = np.clip(j, 0, n - 1), np.clip(k, 0, n - 1)
    take = lambda idx: np.take_along_axis(m, idx[..., None], -1)[..., 0]
    mj, mk = take(jj), take(kk)
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.clip(np.where(mk > mj, (theta - mj) / (mk - mj), 0.0), 0.0, 1.0)
    inside = (j >= 0) & (j < last)
    at = np.where(inside, v[jj] + frac * (v[kk] - v[jj]), v[np.clip(last, 0, n - 1)])
    ok = np.isfinite(b) & (j >= 0)
    return Edge(np.where(ok, at, np.nan), inside & ok, best_col, last)


def located_rows(point: Edge, cells: np.ndarray, usable: np.ndarray, level: float) -> np.ndarray:
    """Rows (nα,) whose edge is inside the grid and whose last cell is distinguishably worse than its best."""
    ok = usable & point.inside & (point.best >= 0)
    p = _p_rows(cells, np.maximum(point.last, 0), np.maximum(point.best, 0))
    return ok & np.isfinite(p) & (p < 1 - level)


def basin_rows(means: np.ndarray, dead: np.ndarray, usable: np.ndarray, tol: float) -> np.ndarray:
    """Rows (nα,) inside the basin: usable, with a measured cell within ``tol`` of the panel's best.

    The claim is about the basin of good settings: a row whose every cell is far worse than the best
    (an α too small to train, or too large) says where the landscape's cliffs run, not where λ* is."""
    measured = np.where(np.isfinite(means) & ~dead, means, np.inf)
    row_best = measured.min(1)
    if not np.isfinite(row_best[usable]).any():
        return np.zeros(usable.shape, bool)
    return usable & not_above(row_best, row_best[usable].min() + tol)


def lambda_matters(panel: Panel, rows: np.ndarray, level: float) -> np.ndarray:
    """Rows (nα,) in which λ_norm matters: a χ² test that the row's measured cell means are equal,
    Σ_j (m_j − m̄)²/var_j on J − 1 degrees of freedom at 1 − ``level`` (an F test on (J − 1, Σ(k_j − 1))
    when the seeds' variance s² dominates, as it is estimated), var_j = max(s², b_j)/k_j with
    b_j the test-set variance of one run (binomial m(1 − m)/n_test, or se² for a loss), s² the
    row's pooled variance over seeds and k_j the cell's seeds; or a row with both diverged and
    measured cells (where it diverges depends on λ_norm). Without such evidence a row's argmin is
    the noise's: a test on cells chosen by the data (the row's best against its worst) would find
    an effect in a flat row most of the time. Measured: tests/storage/test_landscape.py."""
    # SciPy's survival functions from scipy.special (0.2 s to import) rather than scipy.stats (0.8 s,
    # measured here): a one-shot `basin best --coupling` pays the import
    from scipy.special import chdtrc, fdtrc

    E = np.asarray(panel.E, float)
    measured = np.isfinite(E) & ~panel.fixed
    k = measured.sum(1)
    m = np.where(k > 0, np.where(measured, E, 0).sum(1) / np.maximum(k, 1), np.nan)
    if panel.se is not None:
        b = np.where(measured, np.asarray(panel.se, float) ** 2, 0).sum(1) / np.maximum(k, 1)
    elif panel.n_test is not None:
        floor = 0.5 / (panel.n_test + 1)
        mc = np.clip(m, floor, 1 - floor)
        b = mc * (1 - mc) / panel.n_test
    else:
        b = np.zeros_like(m)
    dev = np.where(measured, E - m[:, None], 0.0)
    ss, dof = panel.grid((dev ** 2).sum(1)), panel.grid(np.maximum(k - 1, 0))
    s2 = np.divide(ss.sum(1), dof.sum(1), out=np.zeros(ss.shape[0]), where=dof.sum(1) > 0)  # per row
    var = np.maximum(s2[:, None], panel.grid(b)) / np.maximum(panel.grid(k), 1)
    ok = (panel.grid(k) > 0) & (var > 0)
    mg = panel.grid(m)
    w = np.where(ok, 1.0 / np.where(ok, var, 1.0), 0.0)
    centre = np.divide((w * np.where(ok, mg, 0)).sum(1), w.sum(1), out=np.zeros(w.shape[0]), where=w.sum(1) > 0)
    stat = (w * np.where(ok, mg - centre[:, None], 0) ** 2).sum(1)
    df = ok.sum(1) - 1
    # with the variance estimated from the seeds (ν = Σ(k_j − 1) degrees of freedom), F(J − 1, ν), not χ²
    nu = dof.sum(1)
    b_row = np.divide(np.where(ok, panel.grid(b), 0).sum(1), ok.sum(1), out=np.zeros(ok.shape[0]), where=ok.any(1))
    seeded = (nu > 0) & (s2 >= b_row)
    dfc = np.maximum(df, 1)
    p = np.where(seeded, fdtrc(dfc, np.maximum(nu, 1), stat / dfc), chdtrc(dfc, stat))
    p = np.where(df >= 1, p, 1.0)
    dead = panel.grid(np.isfinite(E).any(1) & ~measured.any(1))
    return rows & (((p < 1 - level) & (df >= 1)) | (dead.any(1) & ok.any(1)))


def _line(u: np.ndarray, y: np.ndarray, rows: np.ndarray, s: np.ndarray) -> np.ndarray:
    """The least-squares line of slope ``s`` (...,) through the ``rows`` of y (..., nα), at every u."""
    w = rows & np.isfinite(y)
    cnt = np.maximum(w.sum(-1), 1)
    um = (w * u).sum(-1) / cnt
    ym = np.where(w, y, 0.0).sum(-1) / cnt
    return ym[..., None] + np.asarray(s)[..., None] * (u - um[..., None])


# ─── One panel ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class LandscapeCoupling(_Result):
    """The two estimates of d log λ_norm*/d log α with intervals, their verdicts and the panel's.

    Per α row (nα,) in λ_norm units: ``lambda_star`` (lo, hi) the row's refined argmin (descriptive,
    :func:`storage.evidence.lambda_star`); ``edge`` (lo, hi) the row's edge, ``edge_rows`` whether it
    is located; ``valley_line`` / ``edge_line`` (lo, hi) the two fitted lines at each α with their
    pointwise bands. ``usable``: rows with ≥ 2 cells and a measured value.
    """

    verdict: str
    rests_on: tuple[str, ...]
    argmin_slope: float | None
    argmin_slope_ci: tuple[float, float] | None
    argmin_verdict: str
    n_argmin_rows: int
    slope: float | None
    slope_ci: tuple[float, float] | None
    curvature: float | None
    curvature_ci: tuple[float, float] | None
    valley_verdict: str
    n_fit_cells: int
    edge_slope: float | None
    edge_slope_ci: tuple[float, float] | None
    edge_verdict: str
    n_edge_rows: int
    tol: float
    level: float
    n_boot: int
    sources: tuple[str, ...]
    usable: np.ndarray
    basin: np.ndarray
    argmin_rows: np.ndarray
    argmin_line: np.ndarray
    argmin_line_lo: np.ndarray
    argmin_line_hi: np.ndarray
    lambda_star: np.ndarray
    lambda_star_lo: np.ndarray
    lambda_star_hi: np.ndarray
    edge: np.ndarray
    edge_lo: np.ndarray
    edge_hi: np.ndarray
    edge_rows: np.ndarray
    edge_line: np.ndarray
    edge_line_lo: np.ndarray
    edge_line_hi: np.ndarray
    valley_line: np.ndarray
    valley_line_lo: np.ndarray
    valley_line_hi: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)


def _ci(draws: np.ndarray, point, level: float) -> tuple[float, float] | None:
    d = np.asarray(draws, float)
    d = d[np.isfinite(d)]
    if not d.size or point is None or not np.isfinite(point):
        return None
    lo, hi = percentile_interval(d, level)
    return float(lo), float(hi)


def _num(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def coupling(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL,
             tol: float = DEFAULT_TOL) -> LandscapeCoupling:
    """Is ``panel``'s basin coupled? The valley and edge slopes with intervals, and the verdict (module doc)."""
    gen = _rng(rng)
    usable = usable_rows(panel)
    dead = all_fixed(panel)
    u, v = np.log(panel.alphas), np.log(panel.wd_norms)
    point = panel.grid(panel.means)
    land = panel.grid(panel_draws(panel, seeds, gen, level=level, expand=EXPAND_LAND))
    cells = panel.grid(panel_draws(panel, seeds, gen, level=level, expand="t"))
    nan_rows = np.full(u.size, np.nan)
    notes: list[str] = []
    basin = basin_rows(point, dead, usable, tol)
    if (usable & ~basin).any():
        notes.append(f"{int((usable & ~basin).sum())} α row(s) outside the basin (no cell within {tol:g} of the best): "
                     "not in the slopes")

    # λ_norm*(α): each basin row's refined argmin
    star = lambda_star(point, v, ~usable, exclude=dead)
    boot = lambda_star(land, v, ~usable, exclude=dead).log_star
    s_lo, s_hi = percentile_interval(boot, level)
    a_rows = lambda_matters(panel, basin, level)
    a_slope = _num(slope(u, star.log_star, a_rows))
    a_boot = slope(u, boot, a_rows)
    a_ci = _ci(a_boot, a_slope, level)
    argmin_verdict = slope_verdict(a_ci)
    if int(a_rows.sum()) < MIN_POINTS:
        notes.append(f"{int(a_rows.sum())} basin row(s) where λ_norm matters (the χ² test of equal cells): the "
                     f"λ_norm*(α) slope needs ≥ {MIN_POINTS}")
    if a_slope is None:
        a_line = a_line_lo = a_line_hi = nan_rows
    else:
        lo, hi = percentile_interval(_line(u, boot, a_rows, a_boot), level)
        a_line, a_line_lo, a_line_hi = (np.exp(x) for x in (_line(u, star.log_star, a_rows, a_slope), lo, hi))

    # the valley
    fit = fit_cells(point, dead, basin, panel.chance)
    vp, vb = valley(point, fit, u, v), valley(land, fit, u, v)
    if vp is None:
        s = curv = None
        s_ci = c_ci = None
        v_line = v_lo = v_hi = nan_rows
        valley_verdict = INCONCLUSIVE
        notes.append(f"{int(fit.sum())} cells fit the surface: a quadratic in (log α, log λ_norm) needs ≥ "
                     f"{N_COEF + 1} spanning 3 α and 3 λ_norm values")
    else:
        s, curv = _num(vp.slope), _num(vp.curvature)
        s_ci, c_ci = _ci(vb.slope, s, level), _ci(vb.curvature, curv, level)
        curves = c_ci is not None and c_ci[0] > 0
        inside = int((basin & (vp.line >= v.min()) & (vp.line <= v.max())).sum())
        valley_verdict = slope_verdict(s_ci) if curves and inside >= MIN_POINTS else INCONCLUSIVE
        if not curves:
            notes.append("the surface does not curve significantly in λ_norm (H_vv's interval reaches 0): "
                         "no valley verdict")
        elif inside < MIN_POINTS:
            notes.append(f"the fitted valley crosses {inside} α row(s) inside the λ_norm range: a valley verdict "
                         f"needs ≥ {MIN_POINTS}")
        lo, hi = percentile_interval(vb.line, level)
        with np.errstate(over="ignore"):  # a flat surface's valley runs off to ±∞: inf, reported as None
            v_line, v_lo, v_hi = (np.exp(x) for x in (vp.line, lo, hi))

    # the edge
    ep = edges(point, v, tol, dead)
    eb = edges(land, v, tol, dead).position
    rows = located_rows(ep, cells, basin, level)
    es = slope(u, ep.position, rows)
    es_boot = slope(u, eb, rows)
    e_slope = _num(es)
    e_ci = _ci(es_boot, e_slope, level)
    edge_verdict = slope_verdict(e_ci)
    n_rows = int(rows.sum())
    if n_rows < MIN_POINTS:
        notes.append(f"{n_rows} α row(s) locate the over-regularisation edge inside the grid: its slope needs "
                     f"≥ {MIN_POINTS}")
    e_lo, e_hi = percentile_interval(eb, level)
    if e_slope is None:
        e_line = e_line_lo = e_line_hi = nan_rows
    else:
        lines = _line(u, eb, rows, es_boot)
        lo, hi = percentile_interval(lines, level)
        e_line, e_line_lo, e_line_hi = (np.exp(x) for x in (_line(u, ep.position, rows, es), lo, hi))

    verdicts = {"argmin": argmin_verdict, "edge": edge_verdict, "valley": valley_verdict}
    for name, ci in (("argmin", a_ci), ("edge", e_ci), ("valley", s_ci)):
        if ci is not None and not near_predictions(ci):
            notes.append(f"the {name} slope's interval [{ci[0]:+.2f}, {ci[1]:+.2f}] is near neither −1 nor 0: "
                         "it decides nothing (a cliff or surface that this landscape's basin does not follow)")
    verdict, rests_on = combine(verdicts)
    decided = {k: x for k, x in verdicts.items() if x != INCONCLUSIVE}
    if verdict == INCONCLUSIVE and len(set(decided.values())) > 1:
        notes.append("the estimates disagree (" + ", ".join(f"{k} {x}" for k, x in decided.items()) + "): inconclusive")
    return LandscapeCoupling(
        verdict, rests_on, a_slope, a_ci, argmin_verdict, int(a_rows.sum()),
        s, s_ci, curv, c_ci, valley_verdict, int(fit.sum()), e_slope, e_ci, edge_verdict, n_rows,
        float(tol), level, seeds.n_boot, noise_sources(panel), usable, basin, a_rows, a_line, a_line_lo, a_line_hi,
        np.exp(star.log_star), np.where(usable, np.exp(s_lo), np.nan), np.where(usable, np.exp(s_hi), np.nan),
        np.exp(ep.position), np.where(usable, np.exp(e_lo), np.nan), np.where(usable, np.exp(e_hi), np.nan), rows,
        e_line, e_line_lo, e_line_hi, v_line, v_lo, v_hi, tuple(notes),
    )


__all__ = ["DEFAULT_TOL", "MARGIN", "LandscapeCoupling", "combine", "coupling", "edges", "slope_verdict", "valley"]
