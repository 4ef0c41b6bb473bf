"""Comparisons: AdamW vs Adam, SGDW vs SGD — the relative improvement of the decoupled optimizer's
best over the coupled one's, draw by draw. :func:`compare` pairs the seeds and draws each side's test
noise independently; :func:`storage.evidence.paired.compare_paired` resamples the one shared test set
for both sides as well (where the runs recorded which examples they got wrong) and falls back to it."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from storage.evidence.base import DEFAULT_LEVEL, _Result
from storage.evidence.cells import percentile_interval
from storage.evidence.selection import BestError

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
    #: whether both sides' test noise came from one resampling of the shared test set (storage.evidence.paired)
    paired_test_set: bool = False
    #: the noise the interval includes: "test set" or "test set (paired)", "seeds"
    sources: tuple[str, ...] = ()


def relative_improvement(coupled: np.ndarray, decoupled: np.ndarray) -> np.ndarray:
    """(e_c − e_d)/e_c, NaN where e_c = 0."""
    c, d = np.asarray(coupled, float), np.asarray(decoupled, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, (c - d) / c, np.nan)


def compare(coupled: BestError, decoupled: BestError, *, level: float = DEFAULT_LEVEL) -> Comparison:
    """Relative improvement of the decoupled optimizer's best over the coupled one's, draw by draw.

    Paired when both :class:`BestError` came from the same :class:`SeedDraws` (same ``seed_key``):
    the same resampled seed labels on both sides; the test noise of each value is independent
    (:func:`storage.evidence.paired.compare_paired` pairs it too).
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
                      paired, level, int(valid.sum()), tuple(notes),
                      sources=tuple(dict.fromkeys((*coupled.sources, *decoupled.sources))))
