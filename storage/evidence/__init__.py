"""Evidence for Basin's answers: intervals that say how sure each number is (pure numpy + stdlib).

Symbols as in the paper (Loshchilov & Hutter, ICLR 2019): α the initial learning rate, λ_norm the
normalised weight decay, λ = λ_norm·√(b/(B·T)) the raw decay, T the budget in epochs, b the batch
size, B the number of training points.

Inputs
------
A *panel* (one heatmap: the grid α_i, i < nα, × λ_norm_j, j < nλ, at one budget T) is a
:class:`Panel`: ``E`` (n_cells, n_seeds) final test errors, NaN where a cell lacks a seed; ``fixed``
(same shape) True where a value is not a test-set measurement (a diverged run recorded at chance
error 1 − 1/C); ``n_test`` the test-set size (None: unknown, no test noise modelled); ``seeds`` the
label of each column. Cells are row-major (α major, λ_norm minor): ``reshape(nα, nλ)`` is the grid.
Every answer takes one :class:`SeedDraws` (:func:`seed_draws` over the union of the labels of all
panels to be compared) and a numpy Generator (or an int seed).

Noise model (two sources)
-------------------------
*Test set.* A value e measured on n_test examples is a proportion: n_test·e ~ Binomial(n_test, p).
(For a loss metric — a mean loss, not a proportion — the Panel carries each value's standard error
``se`` and the test stage adds Normal(0, se²) instead.)
The bootstrap redraws it as Binomial(n_test, p̃)/n_test. ``fixed`` values carry no test noise (with
one seed, a diverged cell's interval is the point 1 − 1/C: it is not a measurement).
Floor: p̃ is clipped to [½/(n_test+1), 1 − ½/(n_test+1)] (Jeffreys' ½-count), which changes only
e = 0 and e = 1 — so a measured value's interval is never zero-width: e = 0 on 1000 examples gives
[0, 0.002], not [0, 0].

*Seeds.* Runs with a common seed label share initialisation and data order, so seeds are resampled
*paired*: :func:`seed_draws` draws, once, K labels with replacement per bootstrap draw, and every
cell of every panel compared with it uses that draw (:meth:`SeedDraws.columns`). A cell that lacks
some chosen labels averages those it has; one that has none of them resamples its own seeds.

Two stages, for a cell with k ≥ 2 finite values e_s (mean ē, sample variance s², ddof 1):

1. seed stage — the chosen seed's value becomes x = ē + g·(e_s − ē);
2. test stage — x is redrawn as Binomial(n_test, x)/n_test (measured values only).

s² already contains the test noise v̂ = mean_s e_s(1 − e_s)/(n_test − 1) (0 for fixed values) that
stage 2 adds again, so g is set for a target: the draws' variance of the cell mean is τ²/k with
τ² = max(f²·s², v̂) — the seeds' spread, never less than the test noise alone — i.e.
g = √(k/(k − 1))·√((τ² − v̂)/s²) (the √(k/(k − 1)) undoes resampling's (k − 1)/k shrinkage). f:

* ``expand="t"``: f = t_{k−1}/z at the draws' ``level`` (Hesterberg's expanded percentile interval,
  2015): a mean of k seeds has its variance estimated on k − 1 degrees of freedom, and a normal
  quantile under-covers (3 seeds: t₂ = 4.30 vs z = 1.96). Used for statistics of one or two cells:
  cell intervals, P(best), plausible optima, bracketing and edge-location tests.
* ``expand="variance"``: f = 1, the bootstrap variance is unbiased. Used for statistics that pool
  many cells (λ_norm*(α), the coupling slope, λ_norm*(T) and its exponent), where the t factor on
  every cell over-covers (measured: 0.98–1.00 for the slope with 3 seeds), and for statistics that
  select a cell in every draw (best errors, hence comparisons), where it shifts the interval.

With one seed only the test stage acts: the parametric bootstrap of the binomial.

Measured coverage of nominal 95% intervals (n_test = 1000; reproduced by tests/storage/test_evidence.py):

=============================================  =========  ================================
target                                         seeds      coverage
=============================================  =========  ================================
cell error p, p = 0.02 / 0.05 / 0.1            1          0.954 / 0.957 / 0.952 (1000 reps)
cell seed-mean, p 0.02–0.1, σ 0.003–0.01       3, "t"     0.953–0.986 (1000–8000 reps, 5 cases)
  the same with ``expand="variance"``          3          0.827–0.940 (why "t")
  the same with 2 / 5 seeds, "t"               2 / 5      0.974–0.992 / 0.949–0.979
budget exponent k, k = 0 / −½ (4 budgets)      1 and 3    0.98–1.00 (200 reps, joint fit; bench/calibration.py)
=============================================  =========  ================================

Planted panels: 8 × 8 grids in powers of 2, e = 0.04 + 0.002·(i − 3.5)² + b·(j − j*(i))², seed
noise σ = 0.005 per run; b = 0.01 makes neighbouring cells near the minimum differ by 1–3 points.
The coupling slopes' calibration is :mod:`storage.evidence.landscape`'s (docs/evidence.md).

Answers
-------
* Cells (:func:`cell_evidence`): mean, percentile interval, P(best) (fraction of draws in which the
  cell is the minimum, ties split), and the plausible optima: c is *distinguishably worse* than the
  observed best cell b when the one-sided paired bootstrap test rejects at level 1 − ``level`` (5%):
  the fraction of draws with e*_c − e*_b ≤ 0 is below 5%; the plausible set is every cell not
  distinguishably worse. One test per cell, not corrected for multiplicity, against a best that was
  itself selected: with 8 tied optima (1 seed) each is retained in 78% of data sets.
* λ_norm*(α) (:func:`lambda_star`): per α row, the argmin of the mean error over x = log λ_norm,
  refined by the vertex of the least-squares parabola through the LAMBDA_WINDOW = 5 cells centred
  on the minimum (shifted inward at the border), clipped to LAMBDA_CLIP = 1 grid step around the
  minimum and to the grid; cells whose every seed diverged stay out of the parabola. It recovers a
  parabola's vertex exactly. Ties: the tied cell nearest the mean tied position (first of equals).
  ``censored``: the minimum is on the row's first/last finite λ_norm column. Why 5 cells and not the
  3-point parabola (``window=3``): with noise comparable to the curvature, the 3-point vertex jumps
  with the argmin; the 5-cell vertex has half the sampling spread and its slope interval covers
  0.94–0.99 over b = 0.005–0.02 where the 3-point one covers 0.92–1.00. The price: on a basin that
  is asymmetric over ±2 octaves the vertex is pulled toward the shallow side (by < 1 step).
* Coupling: :mod:`storage.evidence.landscape` (the valley of a quadratic surface and the
  over-regularisation edge, from every non-diverged cell; its docstring and docs/evidence.md carry
  its calibration).
* Winner's curse (:func:`best_error`): ``cross_fit`` (≥ 2 seeds: for each held-out seed s choose the
  cell on the mean of the other seeds, report its error on s; mean over s), ``validation`` (choose on
  a validation-error panel of the same runs, report the test error), ``naive`` (argmin of the mean:
  biased low). The interval repeats the selection inside every draw; in a draw, slots with the same
  label are held out together, and draws that chose a single label cannot cross-fit and are left out
  (1/9 of them with 3 seeds). Measured on 64 equal cells (p = 0.05, 3 seeds, σ = 0.005, 400 reps):
  cross-fit 0.0497 ± 0.0003, validation 0.0501 ± 0.0002 (runs without seed noise), naive 0.0388.
  What each targets: cross-fitting reports held-out seeds, so it estimates the chosen cell's error
  for a fresh seed; validation reports the selected runs themselves — with seed noise it picks
  lucky runs, whose test error is truly lower (0.0463 with σ = 0.005): right for "these runs", low
  for "this setting". All seeds share one test set: a cell × test-set effect common to its seeds
  is not removed by cross-fitting; a validation split removes it.
* Comparisons (:func:`compare`): r = (e_coupled − e_decoupled)/e_coupled of the two selected
  settings, per draw: paired when both sides used the same :class:`SeedDraws` (same resampled labels
  on both sides), with each value's own test noise.
* Budgets (:func:`budget_scaling`, Appendix B.1; :mod:`storage.evidence.budgets`): one joint fit over
  the budgets' profiles min_α e(α, λ_norm) — the coupling's valley and edge estimators with log T as
  the row axis — gives the exponent k of λ_norm* ∝ T^k; raw λ* ∝ T^(k − ½) exactly. Predictions for k:
  the paper's √ rule 0 (raw λ* ∝ T^−½), τ = 1/(η_t·λ) a fixed fraction of the run −½ (raw λ* ∝
  T^−1), τ fixed in epochs +½ (raw λ* flat; Wang & Aitchison, arXiv 2405.13698). Favoured: the only
  prediction the interval contains; none when it contains none; "cannot tell apart" when several.

Cost (64 cells × 1000 draws, one core, 1 / 3 / 10 seeds): one set of draws ≈ 7 / 25 / 80 ms;
:func:`cell_evidence` ≈ 10 / 30 / 80 ms; ``landscape.coupling`` (two sets) ≈ 25 / 60 / 150 ms;
:func:`best_error` ≈ 7 / 32 / 80 ms. Memory: a few arrays of n_boot·n_cells·K float64.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property, lru_cache
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

from storage.constants import DEFAULT_BOOT
from storage.json_ready import jsonable

DEFAULT_LEVEL = 0.95
MIN_POINTS = 3  # α rows needed for a coupling slope
MIN_BUDGETS = 2  # budgets needed for an exponent
LAMBDA_WINDOW = 5  # λ_norm cells in the parabola around a row minimum
LAMBDA_CLIP = 1.0  # the vertex stays within this many grid steps of the minimum
TIE_ATOL = 1e-12
TEST_SET, SEEDS = "test set", "seeds"
EXPANSIONS = ("variance", "t")
EXPAND_LAND = "variance"
METHODS = ("cross_fit", "validation", "naive")
#: Predicted exponent k of λ_norm* ∝ T^k (raw λ* ∝ T^(k − ½)).
PREDICTIONS = {
    "sqrt_rule": 0.0,  # the paper's λ = λ_norm·√(b/(B·T)): λ_norm* flat, raw λ* ∝ T^−½
    "tau_fraction": -0.5,  # τ = 1/(η_t·λ) a fixed fraction of the run: raw λ* ∝ T^−1
    "tau_epochs": 0.5,  # τ fixed in epochs (Wang & Aitchison): raw λ* flat
}

Rng = np.random.Generator | int | None


def _rng(rng: Rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


class _Result:
    """to_dict for the frozen result dataclasses; fields named in ``_skip`` (draws) are left out."""

    _skip: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        return {f.name: jsonable(getattr(self, f.name)) for f in fields(self) if f.name not in self._skip}


def _nanmean(a, axis):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


# ─── Panels ──────────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class Panel:
    """One heatmap's data: ``E`` (nα·nλ, n_seeds), row-major over (α, λ_norm); see the module doc."""

    E: np.ndarray
    fixed: np.ndarray
    n_test: int | None
    alphas: np.ndarray
    wd_norms: np.ndarray
    seeds: tuple[int, ...]
    budget: int | None = None
    #: for a loss metric (not a proportion): each value's test-set standard error, same shape as E;
    #: the test stage then adds Normal(0, se²) instead of the binomial redraw
    se: np.ndarray | None = None
    #: the chance level (what a diverged run records); None: unknown. Cells whose mean is nearer the
    #: chance level than the panel's best stay out of the valley fit (:mod:`storage.evidence.landscape`)
    chance: float | None = None

    def __post_init__(self):
        E = np.atleast_2d(np.asarray(self.E, float))
        fixed = np.broadcast_to(np.asarray(self.fixed, bool), E.shape) & np.isfinite(E)
        alphas, wds = np.asarray(self.alphas, float), np.asarray(self.wd_norms, float)
        seeds = tuple(int(s) for s in self.seeds)
        if E.shape != (alphas.size * wds.size, len(seeds)):
            raise ValueError(f"E has shape {E.shape}; the grid and seeds need {(alphas.size * wds.size, len(seeds))}")
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"seed labels repeat: {seeds}")
        if self.n_test is not None and self.n_test < 1:
            raise ValueError(f"n_test must be a positive count or None, not {self.n_test}")
        for name, value in (("E", E), ("fixed", fixed), ("alphas", alphas), ("wd_norms", wds), ("seeds", seeds)):
            object.__setattr__(self, name, value)
        if self.se is not None:
            se = np.broadcast_to(np.asarray(self.se, float), E.shape)
            object.__setattr__(self, "se", np.where(np.isfinite(se), se, 0.0))

    @property
    def shape(self) -> tuple[int, int]:
        return self.alphas.size, self.wd_norms.size

    @property
    def means(self) -> np.ndarray:
        """Cell means over finite seeds (n_cells,), NaN for an empty cell."""
        return _nanmean(self.E, 1)

    @property
    def n_seeds(self) -> np.ndarray:
        return np.isfinite(self.E).sum(1)

    def grid(self, x: np.ndarray) -> np.ndarray:
        """(..., n_cells) → (..., nα, nλ)."""
        return np.asarray(x).reshape(*np.shape(x)[:-1], *self.shape)


def noise_sources(panel: Panel) -> tuple[str, ...]:
    """Which noise sources the intervals of ``panel`` include: "test set", "seeds"."""
    measured = np.isfinite(panel.E) & ~panel.fixed
    out = []
    if (panel.n_test is not None or panel.se is not None) and measured.any():
        out.append(TEST_SET)
    if (panel.n_seeds >= 2).any():
        out.append(SEEDS)
    return tuple(out)


# ─── Seeds: one shared, paired draw ──────────────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class SeedDraws:
    """``index`` (n_boot, K): positions into ``labels`` drawn with replacement; ``chosen`` the labels."""

    labels: np.ndarray
    index: np.ndarray

    @property
    def n_boot(self) -> int:
        return self.index.shape[0]

    @property
    def chosen(self) -> np.ndarray:
        return self.labels[self.index]

    @cached_property
    def counts(self) -> np.ndarray:
        """(n_boot, K) float: how many times draw b chose each label (rows sum to K)."""
        K = self.labels.size
        out = np.zeros((self.n_boot, K))
        np.add.at(out, (np.repeat(np.arange(self.n_boot), self.index.shape[1]), self.index.ravel()), 1.0)
        return out

    @property
    def key(self) -> int:
        """Identifies this draw within one process: results with equal keys were resampled with the same seeds."""
        return hash((self.labels.tobytes(), self.index.tobytes()))

    def columns(self, panel_labels: Sequence[int]) -> np.ndarray:
        """(n_boot, K) column of each chosen label in a panel with these column labels; −1 if absent."""
        lookup = {int(s): j for j, s in enumerate(panel_labels)}
        missing = set(lookup) - set(self.labels.tolist())
        if missing:
            raise ValueError(f"seed labels {sorted(missing)} are not in this draw's labels {self.labels.tolist()}")
        table = np.array([lookup.get(int(s), -1) for s in self.labels], dtype=np.int64)
        return table[self.index]


def seed_draws(labels: Sequence[int], n_boot: int = DEFAULT_BOOT, rng: Rng = None) -> SeedDraws:
    """Draw K = len(labels) seed labels with replacement, n_boot times; share it across panels."""
    lab = np.unique(np.asarray(labels, dtype=np.int64))
    if lab.size == 0:
        raise ValueError("no seed labels")
    return SeedDraws(lab, _rng(rng).integers(0, lab.size, size=(n_boot, lab.size)))


# ─── Noise model ─────────────────────────────────────────────────────────────────────────────────


@lru_cache(maxsize=256)
def _t_abs_cdf(t: float, df: int) -> float:
    """P(|T| ≤ t) for Student's t with integer df (Abramowitz & Stegun 26.7.3–4, exact)."""
    theta = math.atan(t / math.sqrt(df))
    c2, s = math.cos(theta) ** 2, math.sin(theta)
    m = 1 if df % 2 else 0
    term = math.cos(theta) if m else 1.0
    total = 0.0
    while m <= df - 2:
        total += term
        term *= c2 * (m + 1) / (m + 2)
        m += 2
    if df % 2:
        return 2 / math.pi * (theta + s * total)
    return s * total


@lru_cache(maxsize=64)
def t_quantile(level: float, df: int) -> float:
    """t with P(|T_df| ≤ t) = level (two-sided), by bisection on the exact CDF."""
    lo, hi = 0.0, 1e7
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _t_abs_cdf(mid, df) < level else (lo, mid)
    return 0.5 * (lo + hi)


def expansion(k: np.ndarray, level: float = DEFAULT_LEVEL, expand: str = "t") -> np.ndarray:
    """Factor f on the seeds' spread of a cell with k seeds: 1 ("variance"), t_{k−1}/z ("t"); 1 where k < 2."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    k = np.asarray(k, dtype=np.int64)
    out = np.ones(k.shape)
    if expand == "t":
        z = NormalDist().inv_cdf(0.5 + level / 2)
        for kk in np.unique(k[k >= 2]):
            out[k == kk] = t_quantile(level, int(kk) - 1) / z
    return out


def seed_gain(E: np.ndarray, fixed: np.ndarray, n_test: int | None, *, level: float = DEFAULT_LEVEL,
              expand: str = "t", se: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(ē, g) per cell: the seed stage maps a chosen value e_s to ē + g·(e_s − ē).

    g makes the draws' variance of the cell mean max(f²·s², v̂)/k: with τ² = max(f²·s², v̂),
    g = √(k/(k − 1))·√((τ² − v̂)/s²), and the test stage adds v̂ back.
    """
    finite = np.isfinite(E)
    k = finite.sum(1)
    centre = _nanmean(E, 1)
    dev = np.where(finite, E - centre[:, None], 0.0)
    s2 = np.where(k >= 2, (dev**2).sum(1) / np.maximum(k - 1, 1), 0.0)
    binom = np.zeros(len(E))
    if se is not None:  # a loss: the test stage's variance is each value's se²
        binom = np.where(finite & ~fixed, se**2, 0.0).sum(1) / np.maximum(k, 1)
    elif n_test is not None and n_test > 1:
        binom = np.where(finite & ~fixed, E * (1 - E), 0.0).sum(1) / np.maximum(k, 1) / (n_test - 1)
    excess = np.maximum(expansion(k, level, expand) ** 2 * s2 - binom, 0.0)
    ratio = np.divide(excess, s2, out=np.zeros_like(s2), where=s2 > 0)
    return centre, np.sqrt(ratio * k / np.maximum(k - 1, 1))


def _own_columns(E: np.ndarray, cells: np.ndarray, K: int, rng: np.random.Generator) -> np.ndarray:
    """For each listed cell, K slots: its own finite columns resampled in the first k_c slots, −1 after."""
    finite = np.isfinite(E[cells])
    order = np.argsort(~finite, axis=1, kind="stable")  # finite columns first
    k = finite.sum(1)
    pick = np.minimum((rng.random((len(cells), K)) * k[:, None]).astype(np.int64), np.maximum(k - 1, 0)[:, None])
    cols = np.take_along_axis(order, pick, axis=1)
    return np.where(np.arange(K)[None, :] < k[:, None], cols, -1)


def value_draws(E: np.ndarray, fixed: np.ndarray, n_test: int | None, columns: np.ndarray, rng: Rng = None, *,
                level: float = DEFAULT_LEVEL, expand: str = "t", se: np.ndarray | None = None) -> np.ndarray:
    """Per-seed bootstrap values (n_boot, n_cells, K): slot j of draw b is the chosen label columns[b, j].

    NaN where the cell lacks that label (or, after the own-seed fallback, for unused slots).
    """
    gen = _rng(rng)
    E = np.asarray(E, float)
    fixed = np.asarray(fixed, bool) & np.isfinite(E)
    cols = np.broadcast_to(np.asarray(columns, np.int64)[:, None, :], (len(columns), len(E), columns.shape[1])).copy()
    safe = np.where(cols >= 0, cols, 0)
    cell = np.arange(len(E))[None, :, None]
    vals = np.where(cols >= 0, E[cell, safe], np.nan)
    empty = ~np.isfinite(vals).any(-1) & np.isfinite(E).any(1)[None, :]
    if empty.any():
        b, c = np.nonzero(empty)
        cols[b, c] = _own_columns(E, c, cols.shape[2], gen)
        safe = np.where(cols >= 0, cols, 0)
        vals = np.where(cols >= 0, E[cell, safe], np.nan)
    fix = (cols >= 0) & fixed[cell, safe]
    centre, gain = seed_gain(E, fixed, n_test, level=level, expand=expand, se=se)
    x = centre[None, :, None] + gain[None, :, None] * (vals - centre[None, :, None])
    measured = np.isfinite(x) & ~fix
    if se is not None:  # a loss metric: Normal test noise of the chosen value's own standard error
        sd = np.where(cols >= 0, np.asarray(se, float)[cell, safe], 0.0)
        x[measured] += gen.normal(0.0, 1.0, int(measured.sum())) * sd[measured]
        return x
    if n_test is not None:
        floor = 0.5 / (n_test + 1)
        x[measured] = gen.binomial(n_test, np.clip(x[measured], floor, 1 - floor)) / n_test
    return np.clip(x, 0.0, 1.0)


def cell_mean_draws(E: np.ndarray, fixed: np.ndarray, n_test: int | None, columns: np.ndarray, rng: Rng = None, *,
                    level: float = DEFAULT_LEVEL, expand: str = "t", se: np.ndarray | None = None) -> np.ndarray:
    """Bootstrap cell means (n_boot, n_cells): the mean of each cell's chosen seeds after both stages,
    drawn on counts (:mod:`storage.evidence.noise`); ``columns`` as in :func:`value_draws`."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    E = np.asarray(E, float)
    K = E.shape[1]
    return noise.draw_arrays(E, fixed, n_test, noise.counts_of(columns, K), np.zeros(K, np.int64), rng, level=level,
                             se=se).means(expand)


def panel_draws(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL,
                expand: str = "t") -> np.ndarray:
    """Bootstrap cell means (n_boot, n_cells) of a panel with the shared seed draw; every answer on the
    same Panel object reads the same draws (:func:`storage.evidence.noise.draws_for`)."""
    if expand not in EXPANSIONS:
        raise ValueError(f"expand must be one of {EXPANSIONS}, not {expand!r}")
    return noise.draws_for(panel, seeds, rng, level=level).means(expand)


# ─── Cells: intervals, P(best), plausible optima ─────────────────────────────────────────────────


def percentile_interval(draws: np.ndarray, level: float = DEFAULT_LEVEL, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(lo, hi): the (1 − level)/2 and (1 + level)/2 quantiles of the finite draws along ``axis``
    (numpy's default linear interpolation, as ``np.nanquantile``; NaN where no draw is finite).

    Hand-written on one sort because ``np.nanquantile`` loops over columns in Python when NaNs are
    present (≈ 8 ms against ≈ 1 ms for 1000 draws × 64 cells)."""
    d = np.moveaxis(np.asarray(draws, float), axis, 0)
    d = np.where(np.isfinite(d), d, np.nan)
    if d.shape[0] == 0:
        empty = np.full(d.shape[1:], np.nan)
        return empty[()], empty[()]
    s = np.sort(d, axis=0)  # NaNs last
    n = np.isfinite(s).sum(0)
    out = []
    for q in ((1 - level) / 2, (1 + level) / 2):
        pos = q * np.maximum(n - 1, 0)
        lo_i = np.floor(pos).astype(np.int64)
        hi_i = np.minimum(lo_i + 1, np.maximum(n - 1, 0))
        a = np.take_along_axis(s, lo_i[None], 0)[0]
        b = np.take_along_axis(s, hi_i[None], 0)[0]
        out.append(np.where(n > 0, a + (pos - lo_i) * (b - a), np.nan))
    lo, hi = out
    return (lo[()], hi[()]) if np.ndim(lo) == 0 else (lo, hi)


def best_cell(means: np.ndarray, n_seeds: np.ndarray | None = None) -> int:
    """Index of the lowest mean (compared at 12 decimals), then more seeds, then the lowest index
    (smaller α, then smaller λ_norm) — storage.analysis.rank_cells' order. −1 if every mean is NaN."""
    m = np.asarray(means, float)
    if not np.isfinite(m).any():
        return -1
    n = np.zeros(m.shape) if n_seeds is None else np.asarray(n_seeds, float)
    key = np.where(np.isfinite(m), np.round(m, 12), np.inf)
    return int(np.lexsort((np.arange(m.size), -n, key))[0])


def prob_best(draws: np.ndarray) -> np.ndarray:
    """P(best) per cell (n_cells,): the fraction of draws in which it is the minimum, ties split."""
    d = np.where(np.isfinite(draws), draws, np.inf)
    low = d.min(axis=-1, keepdims=True)
    win = (d <= low + TIE_ATOL) & np.isfinite(low)
    share = win / np.maximum(win.sum(axis=-1, keepdims=True), 1)
    return share.mean(axis=0)


def _frac_not_worse(diff: np.ndarray) -> np.ndarray:
    """Fraction of the finite draws (axis 0) with diff ≤ 0; NaN where none is finite."""
    ok = np.isfinite(diff)
    n = ok.sum(0)
    return np.where(n > 0, (ok & (diff <= TIE_ATOL)).sum(0) / np.maximum(n, 1), np.nan)


def p_not_worse(draws: np.ndarray, ref: int) -> np.ndarray:
    """Per cell (n_cells,): the fraction of draws with e*_c − e*_ref ≤ 0 — the one-sided bootstrap
    p-value of "c is worse than ref" (NaN for a cell without draws)."""
    return _frac_not_worse(draws - draws[:, [int(ref)]])


def plausible_optima(draws: np.ndarray, best: int, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Cells not distinguishably worse than ``best``: P(e*_c − e*_best ≤ 0) ≥ 1 − level (one-sided test)."""
    p = p_not_worse(draws, best)
    return np.isfinite(p) & (p >= 1 - level - 1e-12)


@dataclass(frozen=True, eq=False)
class CellEvidence(_Result):
    """Per cell (row-major over the grid): mean, interval, P(best), plausible; ``best`` its index."""

    means: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    p_best: np.ndarray
    plausible: np.ndarray
    best: int
    level: float
    n_boot: int
    sources: tuple[str, ...]


def cell_evidence(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, level: float = DEFAULT_LEVEL) -> CellEvidence:
    """Cell intervals, P(best) and the plausible optima of a panel (draws: ``expand="t"``)."""
    draws = panel_draws(panel, seeds, rng, level=level, expand="t")
    lo, hi = percentile_interval(draws, level)
    best = best_cell(panel.means, panel.n_seeds)
    plausible = plausible_optima(draws, best, level) if best >= 0 else np.zeros(len(panel.E), bool)
    return CellEvidence(panel.means, lo, hi, prob_best(draws), plausible, best, level, seeds.n_boot,
                        noise_sources(panel))


# ─── λ_norm*(α): sub-grid argmin in log λ_norm ───────────────────────────────────────────────────


class Argmin(NamedTuple):
    """``log_star`` refined log λ_norm* (NaN: skipped); ``censored`` minimum on the border; ``index`` its column."""

    log_star: np.ndarray
    censored: np.ndarray
    index: np.ndarray


def _quadratic_vertex(u: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Vertex of the least-squares parabola y ≈ a·u² + b·u + c over the points with w (..., m);
    NaN unless ≥ 3 points and it opens upwards (a > 0). Through 3 points it is the exact parabola."""
    uw = np.where(w, u, 0.0)
    yw = np.where(w, y, 0.0)
    S = [(w * uw**k).sum(-1) for k in range(5)]
    T = [(uw**k * yw).sum(-1) for k in range(3)]
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
    tied = finite & (filled <= low + TIE_ATOL)
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
    v = _quadratic_vertex(x[idx] - x[j][..., None], y, use) + x[j]
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


def bracketed(draws: np.ndarray, point: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Rows (...,) whose first and last finite cells are both distinguishably worse than the row's best.

    ``draws`` (n_boot, ..., nλ), ``point`` (..., nλ); the row's best is :func:`lambda_star`'s cell.
    """
    point = np.asarray(point, float)
    n = point.shape[-1]
    pos = np.arange(n)
    finite = np.isfinite(point)
    first = np.where(finite, pos, n).min(-1).clip(0, n - 1)
    last = np.where(finite, pos, -1).max(-1).clip(0, n - 1)
    best = lambda_star(point, np.arange(n, dtype=float)).index
    ok = best >= 0
    p_first = _p_rows(draws, first, np.maximum(best, 0))
    p_last = _p_rows(draws, last, np.maximum(best, 0))
    return ok & (first != best) & (last != best) & (p_first < 1 - level) & (p_last < 1 - level)


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


# ─── Winner's curse: report the best cell's error on noise it was not selected on ────────────────


class Selection(NamedTuple):
    """``error`` (...,) the reported best error; ``per_seed`` (..., K) and ``cells`` (..., K) for
    cross-fitting (one entry per held-out seed; NaN / −1 where none), else ``cells`` (...,)."""

    error: np.ndarray
    per_seed: np.ndarray | None
    cells: np.ndarray


def _argmin_cells(score: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(argmin over ``axis`` of the finite scores, whether any was finite)."""
    finite = np.isfinite(score)
    return np.where(finite, score, np.inf).argmin(axis), finite.any(axis)


def naive(E: np.ndarray) -> Selection:
    """Argmin of the mean of E (..., n_cells, K) and that mean — biased low (selected on its own noise)."""
    means = _nanmean(np.asarray(E, float), -1)
    cell, ok = _argmin_cells(means, -1)
    err = np.take_along_axis(means, cell[..., None], -1)[..., 0]
    return Selection(np.where(ok, err, np.nan), None, np.where(ok, cell, -1))


def validation(V: np.ndarray, E: np.ndarray) -> Selection:
    """Select the cell on the mean validation error V, report its mean test error E (both (..., n_cells, K))."""
    v, e = _nanmean(np.asarray(V, float), -1), _nanmean(np.asarray(E, float), -1)
    cell, ok = _argmin_cells(np.where(np.isfinite(e), v, np.nan), -1)
    err = np.take_along_axis(e, cell[..., None], -1)[..., 0]
    return Selection(np.where(ok, err, np.nan), None, np.where(ok, cell, -1))


def cross_fit(E: np.ndarray, labels: np.ndarray | None = None) -> Selection:
    """Cross-fit over seeds: for each slot s of E (..., n_cells, K) choose the cell on the mean of the
    slots whose label differs from s's, report its value at s; the error is the mean over s.

    ``labels`` (..., K) the seed label of each slot (default: all distinct — the data themselves; in a
    bootstrap draw repeated labels are held out together). A slot with no other label, or no cell
    with values on both sides, reports NaN.
    """
    v = np.asarray(E, float)
    K = v.shape[-1]
    lab = np.arange(K) if labels is None else np.asarray(labels)
    if lab.ndim > 1:  # per-row labels: one row at a time (the bootstrap uses fold sums instead)
        rows = [cross_fit(v[i], lab[i]) for i in range(len(v))]
        return Selection(*(np.stack(x) for x in zip(*rows)))
    _, fold = np.unique(lab, return_inverse=True)
    onehot = (fold[:, None] == np.arange(fold.max() + 1)[None, :]).astype(float)  # (K slots, folds)
    finite = np.isfinite(v)
    _, _, cells = noise.fold_selection(np.where(finite, v, 0.0) @ onehot, finite.astype(float) @ onehot)
    cell = cells[..., fold]  # each slot: its fold's choice
    per_seed = np.where(cell >= 0, np.take_along_axis(v, np.maximum(cell, 0)[..., None, :], -2)[..., 0, :], np.nan)
    return Selection(_nanmean(per_seed, -1), per_seed, cell)


@dataclass(frozen=True, eq=False)
class BestError(_Result):
    """The best setting's reported error with a selection-aware interval; ``draws`` kept for :func:`compare`."""

    _skip = ("draws",)
    method: str
    error: float | None
    ci: tuple[float, float] | None
    cell: int
    lr: float | None
    wd_norm: float | None
    per_seed: tuple[float, ...]
    seed_cells: tuple[int, ...]
    level: float
    n_boot: int
    n_valid_draws: int
    seed_key: int
    sources: tuple[str, ...]
    draws: np.ndarray
    notes: tuple[str, ...] = field(default_factory=tuple)


def default_method(panel: Panel, validation_panel: Panel | None = None) -> str:
    """The honest default: ``validation`` when validation errors exist, ``cross_fit`` with ≥ 2 seeds, else ``naive``."""
    if validation_panel is not None:
        return "validation"
    return "cross_fit" if (panel.n_seeds >= 2).any() else "naive"


def _select(method: str, E: np.ndarray, labels: np.ndarray | None, V: np.ndarray | None) -> Selection:
    if method == "cross_fit":
        return cross_fit(E, labels)
    if method == "validation":
        return validation(V, E)
    return naive(E)


def best_error(panel: Panel, seeds: SeedDraws, rng: Rng = None, *, method: str | None = None,
               validation_panel: Panel | None = None, level: float = DEFAULT_LEVEL) -> BestError:
    """Reported error of the panel's best setting by ``method`` (default :func:`default_method`), its
    interval repeating the selection in every draw (``expand="t"``; validation and test values of a
    draw share its seeds)."""
    method = method or default_method(panel, validation_panel)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if method == "validation" and validation_panel is None:
        raise ValueError("method='validation' needs validation_panel (validation errors of the same runs)")
    if method == "validation" and (validation_panel.E.shape != panel.E.shape or validation_panel.seeds != panel.seeds):
        raise ValueError("validation_panel must have the panel's cells and seed columns")
    gen = _rng(rng)
    # expand="variance", not "t": a selection inside every draw turns the t factor's extra spread into a
    # shift (the draw's selection picks its own luckiest cell, reported on its unluckiest seed): measured
    # coverage of the cross-fitted error with "t" 0.75 (3 seeds) and 0.00 (2 seeds); with "variance"
    # 0.99–1.00 (conservative: the reselection adds spread), see tests/storage/test_evidence.py.
    drawn = noise.draws_for(panel, seeds, gen, level=level)
    folds = noise.fold_of(seeds.labels)[np.searchsorted(seeds.labels, np.asarray(panel.seeds, np.int64))]
    point = _select(method, panel.E, folds, None if validation_panel is None else validation_panel.E)
    if method == "cross_fit":  # cross-fitting over folds of labels (one label a fold up to MAX_FOLDS seeds)
        boot = noise.fold_selection(drawn.sums(EXPAND_LAND), drawn.N)[0]
    elif method == "validation":
        boot = validation(noise.draws_for(validation_panel, seeds, gen, level=level).means(EXPAND_LAND)[..., None],
                          drawn.means(EXPAND_LAND)[..., None]).error
    else:
        boot = naive(drawn.means(EXPAND_LAND)[..., None]).error
    valid = np.isfinite(boot)
    notes = []
    if method == "naive":
        notes.append("naive: the minimum of the cell means is selected on its own noise and biased low")
    if method == "cross_fit":
        notes.append("cross-fitted over seeds; seeds share one test set, so a cell × test-set effect is not removed")
    err = float(point.error) if np.isfinite(point.error) else None
    if err is None:
        notes.append("no error to report: " + ("cross-fitting needs a cell with ≥ 2 seeds" if method == "cross_fit"
                                              else "no cell has data"))
    chosen = np.atleast_1d(point.cells)
    cell = int(np.bincount(chosen[chosen >= 0]).argmax()) if (chosen >= 0).any() else -1  # cross-fit: the mode
    ci = tuple(float(x) for x in percentile_interval(boot[valid], level)) if valid.any() and err is not None else None
    a, l = divmod(cell, panel.shape[1]) if cell >= 0 else (None, None)
    return BestError(
        method, err, ci, cell, None if a is None else float(panel.alphas[a]),
        None if l is None else float(panel.wd_norms[l]),
        tuple(float(x) for x in point.per_seed) if point.per_seed is not None else (),
        tuple(int(c) for c in np.atleast_1d(point.cells)) if point.per_seed is not None else (),
        level, seeds.n_boot, int(valid.sum()), seeds.key, noise_sources(panel), boot, tuple(notes),
    )


# ─── Comparisons: AdamW vs Adam, SGDW vs SGD ─────────────────────────────────────────────────────


@dataclass(frozen=True, eq=False)
class Comparison(_Result):
    """r = (e_coupled − e_decoupled)/e_coupled of the two selected settings, with its interval."""

    improvement: float | None
    ci: tuple[float, float] | None
    coupled_error: float | None
    decoupled_error: float | None
    method: str
    paired: bool
    level: float
    n_valid_draws: int
    notes: tuple[str, ...] = field(default_factory=tuple)


def relative_improvement(coupled: np.ndarray, decoupled: np.ndarray) -> np.ndarray:
    """(e_c − e_d)/e_c, NaN where e_c = 0."""
    c, d = np.asarray(coupled, float), np.asarray(decoupled, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, (c - d) / c, np.nan)


def compare(coupled: BestError, decoupled: BestError, *, level: float = DEFAULT_LEVEL) -> Comparison:
    """Relative improvement of the decoupled optimizer's best over the coupled one's, draw by draw.

    Paired when both :class:`BestError` came from the same :class:`SeedDraws` (same ``seed_key``):
    the same resampled seed labels on both sides; the test noise of each value is independent.
    """
    if coupled.draws.shape != decoupled.draws.shape:
        raise ValueError("the two sides have different numbers of draws")
    paired = coupled.seed_key == decoupled.seed_key
    r_boot = relative_improvement(coupled.draws, decoupled.draws)
    valid = np.isfinite(r_boot)
    r = relative_improvement(np.nan if coupled.error is None else coupled.error,
                             np.nan if decoupled.error is None else decoupled.error)
    ci = tuple(float(x) for x in percentile_interval(r_boot[valid], level)) if valid.any() and np.isfinite(r) else None
    notes = [] if paired else ["the two sides were resampled with different seed draws: the interval is not paired"]
    if coupled.method != decoupled.method:
        notes.append(f"selected by different methods: {coupled.method} vs {decoupled.method}")
    return Comparison(float(r) if np.isfinite(r) else None, ci, coupled.error, decoupled.error,
                      coupled.method if coupled.method == decoupled.method else f"{coupled.method}/{decoupled.method}",
                      paired, level, int(valid.sum()), tuple(notes))


# ─── Budgets (Appendix B.1): the profile over α; the answer is storage/evidence/budgets.py ─────────


def profile(grid: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """min over α of the grid (..., nα, nλ) → (..., nλ), over ``rows`` only; NaN where a column is empty."""
    g = np.asarray(grid, float)
    if rows is not None:
        g = np.where(np.asarray(rows, bool)[:, None], g, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmin(g, axis=-2)


# the counts form of the noise model (shared draws) and the budget answer live in their own modules; imported
# last, once every name they take from this package is defined
from storage.evidence import noise  # noqa: E402

# the budget answer lives in its own module (it reuses the coupling's landscape estimators); imported
# last, once every name it takes from this package is defined
from storage.evidence.budgets import (BudgetScaling, budget_scaling, consistent_predictions,  # noqa: E402
                                      favoured_prediction)
