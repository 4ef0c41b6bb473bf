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

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pandas as pd

from storage import analysis, evidence
from storage.answer_cache import remembered
from storage.basin_shape import Coupling, panel_coupling
from storage.connect import StorageLike, reader, storage_label
from storage.constants import DEFAULT_BOOT, DEFAULT_TOL
from storage.errors import read_errors
from storage.evidence import landscape
from storage.frames import select_studies, studies_frame, study_chance, trials_for
from storage.schema import is_error_metric, study_name
from storage.sql import study_axes
from storage.threads import map_ordered

log = logging.getLogger(__name__)

#: Columns ``answer`` adds to a heatmap grid.
EVIDENCE_COLUMNS = ["error_lo", "error_hi", "p_best", "plausible"]
#: A panel's grid: ``analysis.GRID_COLUMNS`` and the evidence.
PANEL_GRID_COLUMNS = [*analysis.GRID_COLUMNS, *EVIDENCE_COLUMNS]
RNG_SEED = 0  # the bootstrap's seed: answers are reproducible
#: Attrs an evidence read may decode: divergence (fixed values), raw λ, the validation value, a loss's se
#: (:func:`evidence_attrs` leaves out the last two where the studies cannot have them).
EVIDENCE_ATTRS = ("diverged", "wd", "val_value", "value_se")


def has_validation(meta_row) -> bool:
    """Whether a study (its row of ``storage.frames.studies_frame``) may have a validation split: unless
    it recorded ``n_val`` = 0. Only such a study's ``val_value`` is read and selected on."""
    return bool(pd.to_numeric(meta_row.get("n_val"), errors="coerce") != 0)  # NaN (not recorded) != 0


def is_loss(meta_row) -> bool:
    """Whether a study's values are losses (with a recorded standard error each), not errors."""
    metric = meta_row.get("metric")
    return not is_error_metric(metric if isinstance(metric, str) else None)


def evidence_attrs(meta: pd.DataFrame) -> tuple[str, ...]:
    """:data:`EVIDENCE_ATTRS` that the selected studies (rows of ``storage.frames.studies_frame``) use:
    ``val_value`` where one :func:`has_validation`, ``value_se`` where one :func:`is_loss`. Each attr
    left out is one join fewer per trial (≈ 0.1 s of `best`'s read at 100k trials on SQLite)."""
    rows = [row for _, row in meta.iterrows()]
    use = {"val_value": any(map(has_validation, rows)), "value_se": any(map(is_loss, rows))}
    return tuple(a for a in EVIDENCE_ATTRS if use.get(a, True))


@dataclass(frozen=True)
class PanelAnswer:
    """A panel's grid with evidence, its honest best error and its coupling (``grid``, ``best`` and
    ``cells`` are None for an answer asked for its coupling alone: ``answer(coupling_only=True)``;
    ``grid`` for one asked without it: ``answer(grid=False)``)."""

    grid: pd.DataFrame | None
    best: evidence.BestError | None
    coupling: Coupling | None
    cells: evidence.CellEvidence | None
    sources: tuple[str, ...]
    #: the evidence Panel (its shared draws dropped unless ``answers(keep_draws=True)``)
    panel: evidence.Panel | None = None
    #: why this panel has no coupling when one was asked for ("" otherwise)
    note: str = ""


def seed_draws_for(effective: pd.DataFrame, n_boot: int = evidence.DEFAULT_BOOT) -> evidence.SeedDraws:
    """The shared seed resampling for every panel of ``effective`` (its union of seed labels)."""
    labels = np.unique(effective["seed"].to_numpy(np.int64)).tolist() or [0]
    return evidence.seed_draws(labels, n_boot, np.random.default_rng(RNG_SEED))


def to_panel(effective: pd.DataFrame, lrs, wd_norms, *, n_test: int | None, chance: float | None,
             labels: list[int], budget: int, value: str = "value", loss: bool = False) -> evidence.Panel:
    """The evidence Panel of one (study, budget): E (nα·nλ, seeds) of ``value`` over the grid axes."""
    a_keys = np.unique(analysis.grid_key(pd.Series(lrs, dtype=float)))
    w_keys = np.unique(analysis.grid_key(pd.Series(wd_norms, dtype=float)))
    E = np.full((a_keys.size * w_keys.size, len(labels)), np.nan)
    fixed = np.zeros(E.shape, bool)
    se = np.full(E.shape, np.nan) if loss else None
    done = np.asarray(effective["state"].to_numpy() == "COMPLETE", bool)
    if done.any():
        # column by column as arrays: filtering the frame would copy its every (text) column, per panel
        def key(name: str, made: str) -> np.ndarray:  # effective_trials' grid keys, when it made them
            return np.asarray(effective[made] if made in effective else analysis.grid_key(effective[name]), float)

        ia = np.searchsorted(a_keys, key("lr", "_lr")[done])
        iw = np.searchsorted(w_keys, key("wd_norm", "_wd")[done])
        js = pd.Index(labels).get_indexer(effective["seed"].to_numpy()[done])
        if (js < 0).any():
            raise ValueError(f"to_panel: seeds {sorted(set(effective['seed'].to_numpy()[done][js < 0]))} are not in labels")
        rows = ia * w_keys.size + iw
        E[rows, js] = effective[value].to_numpy(float)[done]
        if "diverged" in effective:
            fixed[rows, js] = effective["diverged"].fillna(False).to_numpy(bool)[done]
        if loss and "value_se" in effective:
            se[rows, js] = effective["value_se"].to_numpy(float)[done]
    n = int(n_test) if n_test is not None and pd.notna(n_test) and int(n_test) > 0 else None
    level = chance
    if loss:  # a loss is no proportion: its test noise is each value's recorded standard error
        return evidence.Panel(E, fixed, None, a_keys, w_keys, tuple(labels), budget=int(budget), se=se, chance=level)
    return evidence.Panel(E, fixed, n, a_keys, w_keys, tuple(labels), budget=int(budget), chance=level)


def answer(effective: pd.DataFrame, lrs, wd_norms, meta: pd.Series, seeds: evidence.SeedDraws, *,
           coupling: bool = True, tol: float = DEFAULT_TOL, rng: int = RNG_SEED,
           ranked: pd.DataFrame | None = None, coupling_only: bool = False, grid: bool = True) -> PanelAnswer:
    """The answers of one panel: ``effective`` its effective trials (one study, one budget); ``lrs``
    and ``wd_norms`` its grid axes; ``meta`` the study's row of ``storage.frames.studies_frame``;
    ``ranked`` this panel's rows of ``analysis.rank_cells`` when the caller ranked every panel at once.
    ``coupling_only``: the coupling alone (no grid, cells or best error) — the same coupling, since
    the panel's draws are the first thing its generator makes either way and the coupling draws
    nothing after them. ``grid=False``: no grid frame (its cells' evidence is in ``cells``, row-major
    as the Panel: what ``storage.answers.best`` reads)."""
    gen = np.random.default_rng(rng)
    budget = int(effective["budget"].iloc[0])
    labels = [int(s) for s in seeds.labels]
    kw = dict(n_test=meta.get("n_test"), chance=study_chance(meta), labels=labels, budget=budget, loss=is_loss(meta))
    panel = to_panel(effective, lrs, wd_norms, **kw)
    if ranked is None:
        ranked = analysis.rank_cells(analysis.cell_stats(effective))
    if coupling_only:
        fit, note = _coupling(ranked, panel, seeds, gen, tol, meta, budget)
        return PanelAnswer(None, None, fit, None, evidence.noise_sources(panel), panel, note)
    val_panel = None
    if has_validation(meta) and "val_value" in effective and effective["val_value"].notna().any():
        val_panel = to_panel(effective, lrs, wd_norms, value="val_value", **kw)
    cells = evidence.cell_evidence(panel, seeds, gen)
    best = evidence.best_error(panel, seeds, gen, validation_panel=val_panel)
    table = None
    if grid:
        table = analysis.full_grid(lrs, wd_norms, ranked)
        table = table.sort_values(["_lr", "_wd"], kind="stable").reset_index(drop=True)  # row-major, as the Panel
        table["error_lo"], table["error_hi"] = cells.lo, cells.hi
        table["p_best"], table["plausible"] = cells.p_best, cells.plausible
    fit, note = _coupling(ranked, panel, seeds, gen, tol, meta, budget) if coupling else (None, "")
    return PanelAnswer(table, best, fit, cells, cells.sources, panel, note)


def _coupling(ranked, panel, seeds, gen, tol, meta, budget) -> tuple[Coupling | None, str]:
    """(the panel's coupling, "") — or (None, why) when the fit fails: a failing fit must not take the
    panel's other answers with it."""
    try:
        return panel_coupling(ranked, landscape.coupling(panel, seeds, gen, tol=tol), panel, tol=tol), ""
    except Exception as exc:  # noqa: BLE001
        log.warning("coupling fit failed for %s T=%s", meta.get("study"), budget, exc_info=True)
        return None, f"coupling fit unavailable ({type(exc).__name__}: {exc})"




# ─── The panel-data step: every panel of a read, through :func:`answer` ─────────────────────────


class Read(NamedTuple):
    """What every answer starts from: the selected studies, their effective trials and, for a read of
    every budget, each study's grid axes {study: (α values, λ_norm values)} over all its trials
    (None when ``budget`` narrowed the read: :func:`answers` then asks :func:`study_grid_axes`)."""

    meta: pd.DataFrame
    eff: pd.DataFrame
    axes: dict[str, tuple[list[float], list[float]]] | None


def read(rdb, sweep=None, optimizer=None, schedule=None, study=None, budget=None, *, raw_lambda: bool = True) -> Read:
    """(studies, effective trials, grid axes) of a selection: the one read every answer starts from.
    ``raw_lambda=False``: without the runs' raw λ (``wd``), for an answer that reports none (the coupling)."""
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizer,
                          schedule=schedule, study=study)
    attrs = tuple(a for a in evidence_attrs(meta) if raw_lambda or a != "wd")
    frame = trials_for(rdb, meta, attrs=attrs, budget=budget)
    return Read(meta, analysis.effective_trials(frame), frame_axes(frame) if budget is None else None)


def frame_axes(frame: pd.DataFrame) -> dict[str, tuple[list[float], list[float]]]:
    """{study: (sorted distinct α, sorted distinct λ_norm)} over the trials of ``frame`` — every state, so
    a point still running or waiting is a hole in its heatmap; the same axes as :func:`study_grid_axes`
    when ``frame`` holds every trial of its studies, without a second query."""
    out = {}
    for name, group in frame.groupby("study", sort=False):
        out[name] = (np.unique(group["lr"].to_numpy(float)).tolist(), np.unique(group["wd_norm"].to_numpy(float)).tolist())
    return out


def answers(rdb, meta: pd.DataFrame, eff: pd.DataFrame, *, n_boot: int = DEFAULT_BOOT, coupling: bool = True,
            tol: float = DEFAULT_TOL, ranked: pd.DataFrame | None = None,
            axes: dict[str, tuple] | None = None, keep_draws: bool = False,
            coupling_only: bool = False, grid: bool = True) -> dict[tuple[str, int], PanelAnswer]:
    """{(study, T): PanelAnswer} of every panel of ``eff`` with a COMPLETE trial: one seed draw per sweep
    (panels compared across optimizers and budgets are paired), the per-cell pandas once for all panels
    (``ranked`` = ``analysis.rank_cells(analysis.cell_stats(eff))``, computed here when not given), the
    grid axes of every study in one query (``axes`` {study: (α values, λ_norm values)} overrides them).
    ``keep_draws``: each answer's Panel keeps its bootstrap draws, for a later answer on the same
    panels (the budget exponent); else they are freed panel by panel (≈ 15 MB a panel at 49 seeds).
    ``coupling_only``: each panel's coupling alone; ``grid=False``: no grid frames (:func:`answer`)."""
    by_study = meta.set_index("study")
    draws = {name: seed_draws_for(group, n_boot) for name, group in eff.groupby("sweep")}
    if ranked is None:
        ranked = analysis.rank_cells(analysis.cell_stats(eff))
    ranked_by = dict(tuple(ranked.groupby(["study", "budget"], sort=False)))
    grid_axes = study_grid_axes(rdb, by_study, [s for s in eff["study"].unique() if axes is None or s not in axes])
    grid_axes.update(axes or {})
    groups = dict(tuple(eff.groupby(["study", "budget"], sort=True)))
    keys = [key for key, group in groups.items() if group["state"].eq("COMPLETE").any()]
    study_rows = {name: by_study.loc[name] for name in dict.fromkeys(name for name, _ in keys)}  # read-only on the threads

    def one(key: tuple[str, int]) -> PanelAnswer:
        m = study_rows[key[0]]
        ans = answer(groups[key], *grid_axes[key[0]], m, draws[m["sweep"]], coupling=coupling, tol=tol,
                     ranked=ranked_by[key], coupling_only=coupling_only, grid=grid)
        if not keep_draws:
            evidence.noise.forget_draws(ans.panel)
        return ans

    # each panel is a pure function of its inputs (its own generator): on threads, the same answers
    return {(name, int(budget)): ans for (name, budget), ans in zip(keys, map_ordered(one, keys))}


@dataclass(frozen=True)
class PanelData:
    """Everything one heatmap of Figure 2 shows: its cells (:data:`PANEL_GRID_COLUMNS`, evidence
    included), its honest best error (``storage.evidence.BestError``), its coupling, the noise its
    intervals include, the border note, or a note saying why it is empty."""

    sweep: str
    optimizer: str
    schedule: str
    budget: int | None
    study: str | None
    grid: pd.DataFrame | None = None
    coupling: Coupling | None = None
    best: evidence.BestError | None = None
    sources: tuple[str, ...] = ()
    chance: float | None = None
    border: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def has_data(self) -> bool:
        return self.grid is not None and bool(self.grid["test_error"].notna().any())

    def best_row(self) -> pd.Series | None:
        """The cell with the lowest mean error (rank 1), with its interval and P(best)."""
        if self.grid is None:
            return None
        rows = self.grid[self.grid["best"]]
        return rows.iloc[0] if not rows.empty else None

    @property
    def level(self) -> float:
        return self.best.level if self.best is not None else evidence.DEFAULT_LEVEL


def empty_panel(sweep: str, optimizer: str, schedule: str, budget: int | None, note: str,
                study: str | None = None) -> PanelData:
    """A panel without data, and why."""
    return PanelData(sweep, optimizer, schedule, budget, study, notes=(note,))


def study_grid_axes(rdb, by_study: pd.DataFrame, studies) -> dict[str, tuple[list[float], list[float]]]:
    """{study: (α values, λ_norm values)} over every trial of each study: one query for all."""
    studies = list(studies)
    by_id = study_axes(rdb.engine, [by_study.loc[s, "study_id"] for s in studies])
    return {s: (by_id[int(by_study.loc[s, "study_id"])]["lr"], by_id[int(by_study.loc[s, "study_id"])]["wd_norm"])
            for s in studies}


def panel_data(sweep: str, optimizer: str, schedule: str, budget: int, name: str, ans: PanelAnswer | None,
               cells: pd.DataFrame, axes: tuple | None, chance: float | None) -> PanelData:
    """One heatmap's :class:`PanelData` from its answer (None: no COMPLETE trial at T yet — its grid of
    holes and failures), its ranked cells and grid axes (None: no trial at all)."""
    if axes is None or (ans is None and cells.empty):
        return empty_panel(sweep, optimizer, schedule, budget, f"no trial at T={budget} yet", name)
    if ans is None:
        grid = analysis.full_grid(*axes, cells)
        grid = grid.assign(error_lo=np.nan, error_hi=np.nan, p_best=np.nan, plausible=False)
        grid = grid[PANEL_GRID_COLUMNS].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)
        return PanelData(sweep, optimizer, schedule, budget, name, grid=grid, chance=chance,
                         notes=(f"no COMPLETE trial at T={budget} yet",))
    winner = ans.grid[ans.grid["best"]]
    border = analysis.border_note(ans.grid, winner.iloc[0]) if not winner.empty else ""
    grid = ans.grid[PANEL_GRID_COLUMNS].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)
    return PanelData(sweep, optimizer, schedule, budget, name, grid=grid, coupling=ans.coupling, best=ans.best,
                     sources=tuple(ans.sources), chance=chance, border=border, notes=(ans.note,) if ans.note else ())


@read_errors
@remembered
def figure2_panels(storage: StorageLike, sweep: str, schedule: str, budget: int, optimizers: Sequence[str], *,
                   chance: dict[str, float | None] | None = None, n_boot: int = DEFAULT_BOOT,
                   tol: float = DEFAULT_TOL) -> dict[str, PanelData]:
    """{optimizer: PanelData} for the given optimizers of ``sweep``/``schedule`` at budget T: one read,
    every panel through :func:`answers` (with its coupling), paired seed draws across the panels.

    The α and λ_norm axes are those of the study's trials at T (a budget whose grid is still
    filling shows the rows and columns it has reached). Every optimizer must have a study in the
    sweep for this schedule. ``chance`` maps optimizer → 1 − 1/C (the colour cap).
    """
    rdb = reader(storage)
    optimizers = list(dict.fromkeys(optimizers))
    chance = chance or {}
    if not optimizers:
        return {}
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizers,
                          schedule=schedule)
    frame = trials_for(rdb, meta, attrs=EVIDENCE_ATTRS, budget=int(budget))
    eff = analysis.effective_trials(frame)
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    axes = {name: (group["lr"], group["wd_norm"]) for name, group in frame.groupby("study")}
    found = answers(rdb, meta, eff, n_boot=n_boot, coupling=True, tol=tol, ranked=ranked, axes=axes)
    out = {}
    for opt in optimizers:
        name = study_name(sweep, opt, schedule)
        out[opt] = panel_data(sweep, opt, schedule, int(budget), name, found.get((name, int(budget))),
                              ranked[ranked["study"] == name], axes.get(name), chance.get(opt))
    return out


__all__ = ["EVIDENCE_ATTRS", "EVIDENCE_COLUMNS", "PANEL_GRID_COLUMNS", "PanelAnswer", "PanelData", "Read", "answer", "answers",
           "empty_panel", "figure2_panels", "frame_axes", "panel_data", "read", "seed_draws_for",
           "study_grid_axes", "to_panel"]
