"""The winner's curse: the best setting's error reported on noise it was not selected on —
cross-fitting over seeds, a validation split, or the naive minimum, named so; the interval repeats
the selection in every draw (:mod:`storage.evidence`'s package doc)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from storage.evidence import noise
from storage.evidence.base import (DEFAULT_LEVEL, EXPAND_LAND, METHODS, Panel, Rng, SeedDraws, _nanmean, _Result,
                                   _rng, argmin, noise_sources)
from storage.evidence.cells import percentile_interval

# ─── Winner's curse: report the best cell's error on noise it was not selected on ────────────────


class Selection(NamedTuple):
    """``error`` (...,) the reported best error; ``per_seed`` (..., K) and ``cells`` (..., K) for
    cross-fitting (one entry per seed column: its value at the cell chosen when its fold — the seed
    itself up to MAX_FOLDS seeds — was held out; NaN / −1 where none), else ``cells`` (...,)."""

    error: np.ndarray
    per_seed: np.ndarray | None
    cells: np.ndarray


def naive(E: np.ndarray) -> Selection:
    """Argmin of the mean of E (..., n_cells, K) and that mean — biased low (selected on its own noise)."""
    means = _nanmean(np.asarray(E, float), -1)
    cell, ok = argmin(means, -1)
    err = np.take_along_axis(means, cell[..., None], -1)[..., 0]
    return Selection(np.where(ok, err, np.nan), None, np.where(ok, cell, -1))


def validation(V: np.ndarray, E: np.ndarray) -> Selection:
    """Select the cell on the mean validation error V, report its mean test error E (both (..., n_cells, K))."""
    v, e = _nanmean(np.asarray(V, float), -1), _nanmean(np.asarray(E, float), -1)
    cell, ok = argmin(np.where(np.isfinite(e), v, np.nan), -1)
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
    interval repeating the selection in every draw (``expand="variance"``, why below; validation and
    test values of a draw share its seeds; cross-fitting over :func:`storage.evidence.noise.panel_folds`'s
    folds of seed labels, leave-one-seed-out up to MAX_FOLDS seeds)."""
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
    folds = noise.panel_folds(panel.E)
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
