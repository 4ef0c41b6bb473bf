"""Planted landscapes of the shapes Basin meets, to calibrate the coupling estimates by simulation.

Grids are 8 × 8 in powers of 2 (α_i = 2^(i − 10), λ_norm_j = 2^(j − 7), i, j = 0..7: one grid step
is one octave on both axes, so a row's optimum moving one column per row is a slope of −1). True
seed-mean errors p(i, j); a run adds seed noise σ (Normal, only when there are ≥ 2 seeds, as a
single seed carries no seed spread of its own) and the test set's binomial noise on n_test
examples. Cells marked diverged record the chance level, fixed (no noise), as Basin records them.

Shapes (``SHAPES``; ``truth`` the planted slope d log λ_norm*/d log α, None: no λ effect):

``coupled-bowl``     a bowl whose valley runs corner to corner: j*(i) = 7 − i (slope −1)
``decoupled-bowl``   the bowl's valley at a fixed λ_norm: j* = 3.5 (slope 0)
``coupled-cliff``    MNIST-1D's shape: a plateau that improves slowly toward a cliff at α·λ = const
                     (j_c(i) = 9.5 − i: inside the grid for the five largest α), ~30 points high;
                     the two largest α diverge from the second cell past the cliff on
``decoupled-cliff``  the same plateau and cliff at a fixed λ_norm (j_c = 5.5); the two largest α
                     diverge from the second cell past the cliff on
``decoupled-tilted`` MNIST-1D's decoupled shape (SGDW, AdamW): the optimum stays at j* = 4.5 on a shallow
                     bowl, but at small α the cliff follows λ/α = const (decay outpacing learning,
                     j_c = i + 3.5) before it flattens at j_c = 6.5: the edge tilts, λ* barely does
``flat``             no λ effect at all: p depends on α only
``diagonal``         the issue's noise-free diagonal: six α rows, log₂ λ* = −2, −3, …, −7 (slope −1)
"""

from __future__ import annotations

import numpy as np

from storage.evidence.base import Panel

CHANCE = 0.9
ALPHAS = 2.0 ** np.arange(-10, -2)
WDS = 2.0 ** np.arange(-7, 1)
N = 8
SHAPES = {"coupled-bowl": -1.0, "decoupled-bowl": 0.0, "coupled-cliff": -1.0, "decoupled-cliff": 0.0,
          "decoupled-tilted": 0.0, "flat": None, "diagonal": -1.0}


def truth(shape: str) -> np.ndarray:
    """(p (nα, nλ) true seed-mean errors, diverged (nα, nλ)) of a planted shape."""
    I, J = np.meshgrid(np.arange(N), np.arange(N), indexing="ij")
    alpha_bowl = 0.002 * (I - 3.5) ** 2
    dead = np.zeros((N, N), bool)
    if shape in ("coupled-bowl", "decoupled-bowl"):
        star = 7.0 - I if shape == "coupled-bowl" else 3.5 + 0 * I
        p = 0.04 + alpha_bowl + 0.01 * (J - star) ** 2
    elif shape in ("coupled-cliff", "decoupled-cliff"):
        cliff = 9.5 - I if shape == "coupled-cliff" else 5.5 + 0 * I
        below = 0.03 + alpha_bowl + 0.002 * np.maximum(cliff - J, 0)  # slow improvement toward the cliff
        p = np.where(J < cliff, below, np.minimum(below + 0.3 * (J - cliff + 0.5), CHANCE))
        if shape == "coupled-cliff":
            dead = (I >= 6) & (J >= 11 - I)
        else:
            dead = (I >= 6) & (J >= 7)
    elif shape == "decoupled-tilted":
        cliff = np.minimum(I + 3.5, 6.5)
        below = 0.03 + alpha_bowl + 0.003 * (J - 4.5) ** 2
        p = np.where(J < cliff, below, np.minimum(below + 0.3 * (J - cliff + 0.5), CHANCE))
    elif shape == "flat":
        p = 0.04 + alpha_bowl + 0 * J
    elif shape == "diagonal":
        I6, J6 = np.meshgrid(np.arange(6), np.arange(N), indexing="ij")
        p = 0.03 + 0.01 * (J6 - (5.0 - I6)) ** 2  # λ* = 2^(−2 − i) over six α rows
        return p, np.zeros(p.shape, bool)
    else:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    return np.where(dead, CHANCE, p), dead


def panels(shape: str, k: int, reps: int, rng: np.random.Generator, *, n_test: int = 1000, sigma: float = 0.005,
           noise: bool = True) -> list[Panel]:
    """``reps`` measured panels of ``shape`` with ``k`` seeds (``noise=False``: the true values themselves)."""
    p, dead = truth(shape)
    alphas = ALPHAS[: p.shape[0]] if shape != "diagonal" else ALPHAS[1:7]
    cells = p.size
    out = []
    for _ in range(reps):
        runs = np.broadcast_to(p.reshape(cells, 1), (cells, k)).astype(float)
        if noise:
            if k > 1:
                runs = runs + sigma * rng.standard_normal(runs.shape)
            runs = rng.binomial(n_test, np.clip(runs, 0, 1)) / n_test
        fixed = np.broadcast_to(dead.reshape(cells, 1), runs.shape)
        runs = np.where(fixed, CHANCE, runs)
        out.append(Panel(runs, fixed, n_test, alphas, WDS, tuple(range(k)), chance=CHANCE))
    return out


def adaptive(panel: Panel, n_boot: int, rng: np.random.Generator, *, radius: int = 0, max_radius: int = 2,
             tol: float | None = None) -> tuple[Panel, int]:
    """What an adaptive sweep (``study.adaptive``) would have recorded of a full panel: its first seed
    on every cell, then every seed on the cells in doubt, round by round by the same rules
    (:func:`storage.evidence.doubt.doubt_cells`, :func:`storage.evidence.doubt.next_step`) on the
    answers of what is recorded so far. Returns (the recorded panel, its number of runs)."""
    from storage.constants import DEFAULT_TOL
    from storage.evidence import doubt
    from storage.evidence.base import seed_draws
    from storage.evidence.cells import cell_evidence
    from storage.evidence.landscape import coupling

    tol = DEFAULT_TOL if tol is None else tol
    finite = np.isfinite(panel.E)
    first = finite & (np.arange(panel.E.shape[1]) == 0)[None, :]
    keep = np.zeros(len(panel.E), bool)

    def recorded(keep):
        mask = first | (keep[:, None] & finite)
        E = np.where(mask, panel.E, np.nan)
        return Panel(E, panel.fixed & mask, panel.n_test, panel.alphas, panel.wd_norms, panel.seeds,
                     budget=panel.budget, se=None if panel.se is None else np.where(mask, panel.se, 0.0),
                     chance=panel.chance)

    for _ in range(1 + doubt.MAX_ROUNDS):  # the first read, then at most MAX_ROUNDS rounds, as study.adaptive
        P = recorded(keep)
        draws = seed_draws(P.seeds, n_boot, rng)
        c = coupling(P, draws, rng, tol=tol)
        cells = doubt.doubt_cells(P, cell_evidence(P, draws, rng), basin=c.basin, edge_lo=c.edge_lo,
                                  edge_hi=c.edge_hi, radius=radius)
        missing = int((cells[:, None] & finite & ~np.isfinite(P.E)).sum())
        step, _ = doubt.next_step(missing, c.verdict in doubt.DECIDED, radius, max_radius)
        if step == "stop":
            break
        if step == "widen":
            radius += 1
        keep |= cells
    P = recorded(keep)
    return P, int(np.isfinite(P.E).sum())


__all__ = ["ALPHAS", "CHANCE", "SHAPES", "WDS", "adaptive", "panels", "truth"]
