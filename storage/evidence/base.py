"""The evidence's inputs and shared vocabulary: :class:`Panel`, :class:`SeedDraws`, the tie rule, the constants.

Symbols and the noise model: :mod:`storage.evidence` (the package doc). One tie rule for every
argmin and every "not worse" test: two errors tie when they agree to ``TIE_DECIMALS`` = 12 decimals
(:func:`tie_key`); :func:`argmin` breaks ties by more seeds, then by the first cell (smaller α,
then smaller λ_norm) — ``storage.analysis.rank_cells``' order, which reads the same constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from storage.constants import DEFAULT_BOOT
from storage.json_ready import jsonable

DEFAULT_LEVEL = 0.95
MIN_POINTS = 3  # α rows needed for a coupling slope
MIN_BUDGETS = 2  # budgets needed for an exponent
LAMBDA_WINDOW = 5  # λ_norm cells in the parabola around a row minimum
LAMBDA_CLIP = 1.0  # the vertex stays within this many grid steps of the minimum
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
    """``np.nanmean`` (the same sums, so the same values) without its "mean of empty slice" warning, which
    ``warnings.catch_warnings`` could only silence by changing process-wide state: panels are answered
    on several threads (``storage.threads``); an empty slice is NaN."""
    a = np.asarray(a, float)
    have = ~np.isnan(a)
    with np.errstate(invalid="ignore", divide="ignore"):  # numpy's error state is per thread
        return np.where(have, a, 0.0).sum(axis) / have.sum(axis)

#: Errors equal to this many decimals tie (every argmin, every "not worse" test; storage.analysis too).
TIE_DECIMALS = 12


def tie_key(x) -> np.ndarray:
    """Errors as compared everywhere: rounded to ``TIE_DECIMALS`` (NaN stays NaN)."""
    return np.round(np.asarray(x, float), TIE_DECIMALS)


def not_above(a, b) -> np.ndarray:
    """a ≤ b up to the tie rule (False where either is NaN, or both are the same infinity)."""
    with np.errstate(invalid="ignore"):
        return tie_key(np.asarray(a, float) - np.asarray(b, float)) <= 0


def argmin(scores: np.ndarray, axis: int = -1, n_seeds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(index of the lowest finite score along ``axis``, whether any was finite): the one argmin.

    Ties (:func:`tie_key`) go to the cell with more seeds (``n_seeds``, broadcast to ``scores``), then
    to the first index — smaller α, then smaller λ_norm in a row-major panel."""
    s = np.asarray(scores, float)
    finite = np.isfinite(s)
    low = np.where(finite, s, np.inf)
    first = low.argmin(axis)
    # The rule below rounds every score; only slices where another finite score lies within 2e-12 of
    # the lowest (the only ones a rounding can tie) need it — a fast path giving the same indices.
    with np.errstate(invalid="ignore"):  # inf − inf where a slice has no finite score
        gap = low - np.take_along_axis(low, np.expand_dims(first, axis), axis)
        near = (gap <= 2 * 10.0**-TIE_DECIMALS).sum(axis) > 1
    if near.any():
        key = np.where(finite, tie_key(s), np.inf)
        tied = finite & (key == key.min(axis, keepdims=True))
        if n_seeds is not None:
            n = np.where(tied, np.broadcast_to(np.asarray(n_seeds, float), s.shape), -np.inf)
            tied &= n == n.max(axis, keepdims=True)
        first = np.where(near, tied.argmax(axis), first)
    return first, finite.any(axis)

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

    @cached_property
    def key(self) -> int:
        """Identifies this draw within one process: results with equal keys were resampled with the same seeds
        (kept: a request asks it four times a panel, ≈ 0.35 ms each at 1000 draws × 49 seeds)."""
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
