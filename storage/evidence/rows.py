"""α rows of a panel: λ_norm*(α) as each row's refined argmin, which rows can locate it, and
least-squares slopes over rows (the coupling's and the budget answer's building blocks)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from storage.evidence.base import LAMBDA_CLIP, LAMBDA_WINDOW, MIN_POINTS, Panel, not_above
from storage.evidence.cells import _frac_not_worse

# ─── λ_norm*(α): sub-grid argmin in log λ_norm ───────────────────────────────────────────────────


class Argmin(NamedTuple):
    """``log_star`` refined log λ_norm* (NaN: skipped); ``censored`` minimum on the border; ``index`` its column."""

    log_star: np.ndarray
    censored: np.ndarray
    index: np.ndarray


def _window_sum(p: np.ndarray) -> np.ndarray:
    """``[q.sum(-1) for q in p]`` for stacked (k, ..., m) terms, the same values: numpy adds fewer
    than 8 terms left to right, as the slices do here (its reduction over a 5-long axis costs ≈ 30 ns
    a row; the slices ≈ 2)."""
    m = p.shape[-1]
    if m >= 8 or m == 0:  # numpy's pairwise blocks: each power's own reduction, as it always was
        return np.stack([q.sum(-1) for q in p])
    total = p[..., 0].copy()
    for i in range(1, m):
        total += p[..., i]
    return total


def _quadratic_vertex(powers: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Vertex of the least-squares parabola y ≈ a·u² + b·u + c over the points with w (..., m), given
    ``powers`` = u⁰ … u⁴ stacked (5, ..., m) (:func:`lambda_star` takes them from the grid's few
    offsets: ``u ** k`` per element was most of the coupling's λ* time); NaN unless ≥ 3 points and it
    opens upwards (a > 0). Through 3 points it is the exact parabola."""
    wp = np.where(w, powers, 0.0)  # w · where(w, u, 0)^k, term by term
    yw = np.where(w, y, 0.0)
    S = _window_sum(wp)  # Σ w·u^k, k = 0…4
    T = _window_sum(wp[:3] * yw)  # Σ w·u^k·y, k = 0…2
    det = lambda m: (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                     + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    A = [[S[4], S[3], S[2]], [S[3], S[2], S[1]], [S[2], S[1], S[0]]]
    d = det(A)
    a = det([[T[2], S[3], S[2]], [T[1], S[2], S[1]], [T[0], S[1], S[0]]])
    b = det([[S[4], T[2], S[2]], [S[3], T[1], S[1]], [S[2], T[0], S[0]]])
    with np.errstate(divide="ignore", invalid="ignore"):
        ok = (S[0] >= 3) & (np.abs(d) > 1e-300) & (a / d > 0)
        return np.where(ok, -b / (2 * a), np.nan)


def lambda_star(means: np.ndarray, log_wd: np.ndarray, skip: np.ndarray | None = None, *,
                exclude: np.ndarray | None = None, window: int = LAMBDA_WINDOW) -> Argmin:
    """Refined argmin over the last axis of ``means`` (..., nλ) in x = ``log_wd`` (nλ,); see the module doc.

    The vertex of the least-squares parabola through the ``window`` cells centred on the minimum
    (shifted inward at the border), clipped to LAMBDA_CLIP grid steps around it and to the grid.
    ``exclude`` (broadcast to ``means``): cells left out of the parabola — cells whose every value is
    fixed (diverged): a chance-level value says nothing about the basin's curvature.
    Rows with < 2 finite cells, or where ``skip`` (broadcast to the leading shape) is True, give NaN.
    """
    m = np.asarray(means, float)
    x = np.asarray(log_wd, float)
    n = x.size
    pos = np.arange(n)
    finite = np.isfinite(m)
    filled = np.where(finite, m, np.inf)
    low = filled.min(-1, keepdims=True)
    tied = finite & not_above(filled, low)
    centre = (tied * pos).sum(-1, keepdims=True) / np.maximum(tied.sum(-1, keepdims=True), 1)
    j = np.where(tied, np.abs(pos - centre), np.inf).argmin(-1)
    first = np.where(finite, pos, n).min(-1)
    last = np.where(finite, pos, -1).max(-1)
    at_lo, at_hi = j == first, j == last
    size = min(window, n)
    start = np.clip(j - size // 2, 0, n - size)
    idx = start[..., None] + np.arange(size)
    y = np.take_along_axis(m, idx, -1)
    use = np.isfinite(y)
    if exclude is not None:
        use &= ~np.take_along_axis(np.broadcast_to(np.asarray(exclude, bool), m.shape), idx, -1)
    offsets = x[:, None] - x[None, :]  # u = x[idx] − x[j] takes only these n² values: each power once
    table = np.stack([offsets**k for k in range(5)])  # (5, n, n)
    powers = table[:, idx, j[..., None]]  # (5, ..., size): u**k of each window cell
    v = _quadratic_vertex(powers, y, use) + x[j]
    lo = np.where(at_lo, x[j], x[j] - LAMBDA_CLIP * (x[j] - x[np.maximum(j - 1, 0)]))
    hi = np.where(at_hi, x[j], x[j] + LAMBDA_CLIP * (x[np.minimum(j + 1, n - 1)] - x[j]))
    star = np.where(np.isfinite(v), np.clip(v, lo, hi), x[j])
    valid = finite.sum(-1) >= 2
    if skip is not None:
        valid &= ~np.broadcast_to(np.asarray(skip, bool), valid.shape)
    return Argmin(np.where(valid, star, np.nan), valid & (at_lo | at_hi), np.where(valid, j, -1))


def all_fixed(panel: Panel) -> np.ndarray:
    """Cells (nα, nλ) with data whose every value is fixed (every seed diverged)."""
    finite = np.isfinite(panel.E)
    return panel.grid(finite.any(1) & ~(finite & ~panel.fixed).any(1))


def usable_rows(panel: Panel) -> np.ndarray:
    """α rows that can locate λ_norm* (nα,): ≥ 2 λ_norm cells with data, not every value fixed."""
    finite = panel.grid(np.isfinite(panel.E).any(1))
    measured = panel.grid((np.isfinite(panel.E) & ~panel.fixed).any(1))
    return (finite.sum(1) >= 2) & measured.any(1)


def _p_rows(draws: np.ndarray, c: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per row (...,): fraction of draws (n_boot, ..., nλ) with e*[c] − e*[ref] ≤ 0, c and ref columns (...,)."""
    take = lambda idx: np.take_along_axis(draws, np.broadcast_to(idx[None, ..., None], draws.shape[:-1] + (1,)), -1)
    return _frac_not_worse((take(np.asarray(c)) - take(np.asarray(ref)))[..., 0])


# ─── Slopes ──────────────────────────────────────────────────────────────────────────────────────


def slope(x: np.ndarray, y: np.ndarray, mask: np.ndarray | None = None, min_points: int = MIN_POINTS) -> np.ndarray:
    """Least-squares slope of y (..., n) against x (n,) over the masked points; NaN with < min_points."""
    y = np.asarray(y, float)
    w = np.isfinite(y) if mask is None else (np.asarray(mask, bool) & np.isfinite(y))
    x = np.broadcast_to(np.asarray(x, float), y.shape)
    cnt = w.sum(-1)
    xm = (w * x).sum(-1, keepdims=True) / np.maximum(cnt, 1)[..., None]
    ym = np.where(w, y, 0).sum(-1, keepdims=True) / np.maximum(cnt, 1)[..., None]
    sxy = (w * (x - xm) * np.where(w, y - ym, 0)).sum(-1)
    sxx = (w * (x - xm) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((cnt >= min_points) & (sxx > 0), sxy / sxx, np.nan)


# ─── The profile over α (the budget answer's rows: storage/evidence/budgets.py) ─────────────────


def profile(grid: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """min over α of the grid (..., nα, nλ) → (..., nλ), over ``rows`` only; NaN where a column is empty."""
    g = np.asarray(grid, float)
    if rows is not None:
        g = np.where(np.asarray(rows, bool)[:, None], g, np.nan)
    return np.fmin.reduce(g, axis=-2)  # nanmin's values; no warning (process-wide state) for an empty column
