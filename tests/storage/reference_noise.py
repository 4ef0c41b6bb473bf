"""The noise model stated per resampled slot: the reference that storage.evidence.noise's counts form is
tested against (tests/storage/test_evidence.py). Not used by Basin itself — one noise model in the
product; this is its plain, slow statement: each slot of each draw gets its own seed-stage value and
its own test-stage redraw."""

from __future__ import annotations

import numpy as np

from storage.evidence import Rng, seed_gain
from storage.evidence.base import DEFAULT_LEVEL, _rng


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
