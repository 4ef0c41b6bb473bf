"""One panel's answers with their evidence: the one rule behind every heatmap number Basin gives.

A *panel* is one heatmap: (sweep, optimizer, schedule, budget T). From its effective trials
(``storage.analysis.effective_trials``, one per grid point) and its grid axes, :func:`answer`
builds the :class:`storage.evidence.Panel` (errors per cell × seed, diverged runs fixed at the
chance level, n_test from the study) and returns:

* ``grid``     the full α × λ_norm product (``storage.analysis.GRID_COLUMNS``) with each cell's
               95% interval (``error_lo``, ``error_hi``), its probability of being the best
               (``p_best``) and whether it is a plausible optimum (``plausible``: not
               distinguishably worse than the best cell);
* ``best``     the best setting's error reported on noise it was not selected on
               (``storage.evidence.best_error``: validation split if the sweep has one, else
               cross-fitting over seeds, else the naive minimum, named so), with its interval;
* ``coupling`` the coupling verdict from the valley and edge slopes, with their lines and bands
               (``storage.evidence.landscape`` via ``storage.basin_shape``).

The CLI (``basin best``), the JSON API, the dashboard and the report all read panels through
here. Every interval says which noise it includes (``sources``). Randomness: one
:class:`storage.evidence.SeedDraws` per sweep (:func:`seed_draws_for`), drawn from a fixed seed,
so answers are reproducible and every panel of a sweep is resampled with the same seed labels
(comparisons across optimizers and budgets are paired).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from storage import analysis, evidence
from storage.evidence import landscape
from storage.basin_shape import DEFAULT_TOL, Coupling, panel_coupling
from storage.schema import is_error_metric

#: Columns ``answer`` adds to a heatmap grid.
EVIDENCE_COLUMNS = ["error_lo", "error_hi", "p_best", "plausible"]
RNG_SEED = 0  # the bootstrap's seed: answers are reproducible


@dataclass(frozen=True)
class PanelAnswer:
    """A panel's grid with evidence, its honest best error and its coupling."""

    grid: pd.DataFrame
    best: evidence.BestError
    coupling: Coupling | None
    cells: evidence.CellEvidence
    sources: tuple[str, ...]


def seed_draws_for(effective: pd.DataFrame, n_boot: int = evidence.DEFAULT_BOOT) -> evidence.SeedDraws:
    """The shared seed resampling for every panel of ``effective`` (its union of seed labels)."""
    labels = sorted({int(s) for s in effective["seed"]}) or [0]
    return evidence.seed_draws(labels, n_boot, np.random.default_rng(RNG_SEED))


def to_panel(effective: pd.DataFrame, lrs, wd_norms, *, n_test: int | None, chance: float | None,
             labels: list[int], budget: int, value: str = "value", loss: bool = False) -> evidence.Panel:
    """The evidence Panel of one (study, budget): E (nα·nλ, seeds) of ``value`` over the grid axes."""
    a_keys = np.unique(analysis.grid_key(pd.Series(lrs, dtype=float)))
    w_keys = np.unique(analysis.grid_key(pd.Series(wd_norms, dtype=float)))
    E = np.full((a_keys.size * w_keys.size, len(labels)), np.nan)
    fixed = np.zeros(E.shape, bool)
    se = np.full(E.shape, np.nan) if loss else None
    done = effective[effective["state"].eq("COMPLETE")]
    if len(done):
        ia = np.searchsorted(a_keys, analysis.grid_key(done["lr"]))
        iw = np.searchsorted(w_keys, analysis.grid_key(done["wd_norm"]))
        col = {s: j for j, s in enumerate(labels)}
        js = done["seed"].map(col).to_numpy()
        rows = ia * w_keys.size + iw
        E[rows, js] = done[value].to_numpy(float)
        if "diverged" in done:
            fixed[rows, js] = done["diverged"].fillna(False).to_numpy(bool)
        if loss and "value_se" in done:
            se[rows, js] = done["value_se"].to_numpy(float)
    n = int(n_test) if n_test is not None and pd.notna(n_test) and int(n_test) > 0 else None
    level = float(chance) if chance is not None and pd.notna(chance) else None
    if loss:  # a loss is no proportion: its test noise is each value's recorded standard error
        return evidence.Panel(E, fixed, None, a_keys, w_keys, tuple(labels), budget=int(budget), se=se, chance=level)
    return evidence.Panel(E, fixed, n, a_keys, w_keys, tuple(labels), budget=int(budget), chance=level)


def answer(effective: pd.DataFrame, lrs, wd_norms, meta: pd.Series, seeds: evidence.SeedDraws, *,
           coupling: bool = True, tol: float = DEFAULT_TOL, rng: int = RNG_SEED,
           ranked: pd.DataFrame | None = None) -> PanelAnswer:
    """The answers of one panel: ``effective`` its effective trials (one study, one budget); ``lrs``
    and ``wd_norms`` its grid axes; ``meta`` the study's row of ``storage.frames.studies_frame``;
    ``ranked`` this panel's rows of ``analysis.rank_cells`` when the caller ranked every panel at once."""
    gen = np.random.default_rng(rng)
    budget = int(effective["budget"].iloc[0])
    labels = [int(s) for s in seeds.labels]
    kw = dict(n_test=meta.get("n_test"), chance=meta.get("chance"), labels=labels, budget=budget,
              loss=not is_error_metric(meta.get("metric") if isinstance(meta.get("metric"), str) else None))
    panel = to_panel(effective, lrs, wd_norms, **kw)
    val_panel = None
    if "val_value" in effective and effective["val_value"].notna().any():
        val_panel = to_panel(effective, lrs, wd_norms, value="val_value", **kw)
    cells = evidence.cell_evidence(panel, seeds, gen)
    best = evidence.best_error(panel, seeds, gen, validation_panel=val_panel)
    if ranked is None:
        ranked = analysis.rank_cells(analysis.cell_stats(effective))
    grid = analysis.full_grid(lrs, wd_norms, ranked)
    grid = grid.sort_values(["_lr", "_wd"], kind="stable").reset_index(drop=True)  # row-major, as the Panel
    grid["error_lo"], grid["error_hi"] = cells.lo, cells.hi
    grid["p_best"], grid["plausible"] = cells.p_best, cells.plausible
    fit = None
    if coupling:
        fit = panel_coupling(ranked, landscape.coupling(panel, seeds, gen, tol=tol), panel, tol=tol)
    return PanelAnswer(grid, best, fit, cells, cells.sources)


__all__ = ["EVIDENCE_COLUMNS", "PanelAnswer", "answer", "seed_draws_for", "to_panel"]
