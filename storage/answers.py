"""The answers users ask of a sweep, read from the database: best settings, λ* against the budget,
the coupling of each basin, AdamW vs Adam, one heatmap's grid, learning curves.

"Which (α, λ_norm) is best per (sweep, optimizer, schedule, budget T)?" (:func:`best`),
"how do λ_norm* and raw λ* move with T?" (:func:`best_by_budget`), "is the basin coupled?"
(:func:`coupling`), "how much does AdamW gain over Adam?" (:func:`headline`), plus the data of
one heatmap (:func:`basin_grid`) and learning curves (:func:`curves`).

Each answer is one read (:mod:`storage.frames`, :mod:`storage.sql`) followed by the rules of
:mod:`storage.analysis` and :mod:`storage.basin_shape`; bench/query_scale.py times them at
10³–10⁵ trials. Every function takes an opened storage (see :func:`storage.open_storage`) or a
URL, which is then opened read-only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from storage import analysis, evidence
from storage.evidence import verdicts
from storage.basin_shape import DEFAULT_TOL, Coupling
from storage.connect import StorageLike, reader, storage_label
from storage.constants import FIT_TRAIN_ERROR
from storage.errors import EmptyStorageError, UnknownNameError, read_errors
from storage.evidence import DEFAULT_BOOT
from storage.frames import select_studies, studies_frame, study_chance, trials_for
from storage import panel as panel_step
from storage.answer_cache import remembered
from storage.panel import EVIDENCE_COLUMNS, RNG_SEED, PanelAnswer, answer, evidence_attrs, seed_draws_for
from storage.schema import LIST_ATTRS, GridPoint, normalise_float, study_name
from storage.sql import fetch_attrs, fetch_intermediate, study_param_values
from storage.threads import map_ordered


def _best_rows(ranked: pd.DataFrame, answers: dict[tuple[str, int], PanelAnswer]) -> pd.DataFrame:
    """``analysis.best_cells`` of the ranked cells with each panel's evidence; with a validation split
    the best cell is the one selected on validation error."""
    table = analysis.best_cells(ranked, ranked=True)
    extra = []
    for i, row in table.iterrows():
        ans = answers[(row["study"], int(row["budget"]))]
        b = ans.best
        if b.method == "validation" and b.lr is not None:
            pick = ranked[(ranked["study"] == row["study"]) & (ranked["budget"] == row["budget"])
                          & (analysis.grid_key(ranked["lr"]) == normalise_float(b.lr))
                          & (analysis.grid_key(ranked["wd_norm"]) == normalise_float(b.wd_norm))]
            for col in ("lr", "wd_norm", "wd", "test_error", "test_error_std", "n_seeds"):
                table.at[i, col] = pick.iloc[0][col]
        cells, p = ans.cells, ans.panel  # the panel's cells, row-major over (α, λ_norm) keys
        at = (np.flatnonzero(p.alphas == normalise_float(table.at[i, "lr"]))[0] * len(p.wd_norms)
              + np.flatnonzero(p.wd_norms == normalise_float(table.at[i, "wd_norm"]))[0])
        extra.append({
            "test_error_lo": cells.lo[at], "test_error_hi": cells.hi[at], "p_best": cells.p_best[at],
            "n_plausible": int(cells.plausible.sum()),
            "error": b.error, "error_lo": b.ci[0] if b.ci else np.nan, "error_hi": b.ci[1] if b.ci else np.nan,
            "selection": b.method, "sources": " + ".join(ans.sources) or "none",
            "evidence_notes": "; ".join(b.notes),
        })
    cols = ["test_error_lo", "test_error_hi", "p_best", "n_plausible", "error", "error_lo", "error_hi", "selection",
            "sources", "evidence_notes"]
    ev = pd.DataFrame(extra, columns=cols, index=table.index)
    pos = table.columns.get_loc("test_error_std") + 1
    for j, col in enumerate(cols):
        table.insert(pos + j, col, ev[col])
    return table


@read_errors
@remembered
def best(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
) -> pd.DataFrame:
    """Per (sweep, optimizer, schedule, budget): the best (α, λ_norm), with its evidence.

    Columns: sweep, optimizer, schedule, budget, lr, wd_norm, wd (raw λ), test_error (the cell's
    mean over seeds), test_error_std, test_error_lo/hi (its 95% interval), p_best (probability it is
    the best cell), n_plausible (cells not distinguishably worse), error/error_lo/error_hi (the best
    setting's error reported on noise it was not selected on, ``storage.evidence.best_error``),
    selection (validation | cross_fit | naive), sources (noise in the intervals), evidence_notes,
    n_seeds, n_tied, n_cells, n_complete, n_failed, n_diverged, border, study. Ties: more seeds,
    then smaller α, then smaller λ_norm.
    """
    return _best_read(reader(storage), sweep, optimizer, schedule, n_boot)[1]


@read_errors
@remembered
def best_and_headline(storage: StorageLike, sweep: str | None = None,
                      optimizer: str | Sequence[str] | None = None, schedule: str | Sequence[str] | None = None, *,
                      n_boot: int = DEFAULT_BOOT) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """(:func:`best`, :func:`headline`) from one read and one bootstrap — what ``basin best`` prints;
    the headline is None when ``optimizer`` narrows the selection (a comparison needs both members)."""
    rdb = reader(storage)
    meta, table, answers, eff = _best_read(rdb, sweep, optimizer, schedule, n_boot, keep_draws=optimizer is None)
    return table, (_with_headline(rdb, meta, table, answers, eff) if optimizer is None else None)


def _best_read(rdb, sweep, optimizer, schedule, n_boot: int, *, keep_draws: bool = False):
    """(studies, :func:`best`'s table, the panels' answers, the effective trials) of one read;
    ``keep_draws``: the panels keep their bootstrap for the headline (:func:`_with_headline`)."""
    meta, eff, axes = panel_step.read(rdb, sweep, optimizer, schedule)
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    answers = panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=False, ranked=ranked, axes=axes,
                                 keep_draws=keep_draws, grid=False)
    return meta, _best_rows(ranked, answers), answers, eff


def _with_headline(rdb, meta, table, answers, eff) -> pd.DataFrame:
    """:func:`_headline` on the panels' own draws (the comparison reuses each side's bootstrap rather
    than drawing it again), which are freed afterwards."""
    try:
        return _headline(meta, table, answers, eff, rdb)
    finally:
        for ans in answers.values():
            evidence.noise.forget_draws(ans.panel)


@read_errors
@remembered
def best_by_budget(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
    budgets: Sequence[int] | None = None,
) -> pd.DataFrame:
    """λ_norm* and raw λ* against the budget T, per (sweep, optimizer, schedule), with intervals.

    ``budgets`` restricts the answer (and the fitted exponents) to those budgets T.

    The rows of :func:`best`, sorted by T, plus: train_error (the best cell's final train error, mean
    over seeds), fits (train_error ≤ :data:`FIT_TRAIN_ERROR`: under-fitting runs answer a different
    question), wd_sqrt_budget (λ*·√T), n_budgets,
    lambda_norm_star/_lo/_hi (the refined λ_norm* of the panel's profile over α,
    ``storage.evidence.budget_scaling``: the joint (T, λ_norm) valley at each T, else the budget's refined
    argmin), raw_star/_lo/_hi (raw λ*), located (the budgets k rests on), and per group k, k_lo, k_hi
    (λ_norm* ∝ T^k, one joint fit over every budget's profile), k_source ("valley" or "edge"),
    raw_exponent, raw_exponent_lo/_hi (= k − ½), consistent, favoured, verdict.
    """
    rdb = reader(storage)
    meta, eff, axes = panel_step.read(rdb, sweep, optimizer, schedule)
    if budgets is not None:
        eff = eff[eff["budget"].isin([int(b) for b in budgets])]
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    answers = panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=False, ranked=ranked, axes=axes,
                                 keep_draws=True)
    return _by_budget(rdb, meta, eff, ranked, answers, n_boot)


@read_errors
@remembered
def budget_view(storage: StorageLike, sweep: str, schedule: str, optimizers: Sequence[str], *,
                chance: dict[str, float | None] | None = None, n_boot: int = DEFAULT_BOOT,
                tol: float = DEFAULT_TOL) -> tuple[dict[int, dict[str, panel_step.PanelData]], pd.DataFrame]:
    """The Budgets page from one read and one bootstrap: ({T: {optimizer: PanelData}}, :func:`best_by_budget`'s
    table) for the given optimizers of ``sweep``/``schedule`` at every budget. Every panel has its
    study's α × λ_norm axes (holes where a budget has not reached a cell), so the budgets' heatmaps
    line up; the λ_norm*(T) table reuses the panels' draws."""
    rdb = reader(storage)
    optimizers = list(dict.fromkeys(optimizers))
    if not optimizers:
        raise ValueError("budget_view needs at least one optimizer")
    meta, eff, axes = panel_step.read(rdb, sweep, optimizers, schedule)
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    found = panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=True, tol=tol, ranked=ranked, axes=axes,
                               keep_draws=True)
    table = _by_budget(rdb, meta, eff, ranked, found, n_boot)
    cells = dict(tuple(ranked.groupby(["study", "budget"], sort=False)))
    panels: dict[int, dict[str, panel_step.PanelData]] = {}
    for budget in sorted({int(b) for b in eff["budget"]}):
        panels[budget] = {}
        for opt in optimizers:
            name = study_name(sweep, opt, schedule)
            at = cells.get((name, budget), ranked.iloc[:0])
            panels[budget][opt] = panel_step.panel_data(sweep, opt, schedule, budget, name, found.get((name, budget)),
                                                        at, axes.get(name) if not at.empty else None,
                                                        (chance or {}).get(opt))
    return panels, table


def _by_budget(rdb, meta: pd.DataFrame, eff: pd.DataFrame, ranked: pd.DataFrame, answers, n_boot: int) -> pd.DataFrame:
    """:func:`best_by_budget`'s table from a read and its answers (their panels keep their draws)."""
    table = _best_rows(ranked, answers)
    table["train_error"] = _final_train_error(rdb, eff, table)
    table["fits"] = table["train_error"] <= FIT_TRAIN_ERROR
    by_study = meta.set_index("study")
    draws = {s: seed_draws_for(g, n_boot) for s, g in eff.groupby("sweep")}
    out = []
    for study, group in table.groupby("study", sort=True):
        group = group.sort_values("budget").copy()
        m = by_study.loc[study]
        panels = [answers[(study, int(b))].panel for b in group["budget"]]  # the panels and draws of the answers above
        scaling = evidence.budget_scaling(panels, draws[m["sweep"]], np.random.default_rng(RNG_SEED),
                                          raw_scale=_raw_scale(m, eff[eff["study"] == study], group["budget"]))
        group["n_budgets"] = group["budget"].nunique()
        group["wd_sqrt_budget"] = group["wd"] * np.sqrt(group["budget"])
        group["lambda_norm_star"], group["lambda_norm_lo"], group["lambda_norm_hi"] = (
            scaling.lambda_norm_star, scaling.lambda_norm_lo, scaling.lambda_norm_hi)
        raw = (scaling.raw_star, scaling.raw_lo, scaling.raw_hi) if scaling.raw_star is not None else (np.nan,) * 3
        group["raw_star"], group["raw_lo"], group["raw_hi"] = raw
        group["located"] = scaling.located
        k_lo, k_hi = scaling.k_ci or (np.nan, np.nan)
        r_lo, r_hi = scaling.raw_exponent_ci or (np.nan, np.nan)
        group = group.assign(k=np.nan if scaling.k is None else scaling.k, k_lo=k_lo, k_hi=k_hi,
                             raw_exponent=np.nan if scaling.raw_exponent is None else scaling.raw_exponent,
                             raw_exponent_lo=r_lo, raw_exponent_hi=r_hi, consistent=", ".join(scaling.consistent),
                             favoured=scaling.favoured or "", verdict=scaling.verdict,
                             k_source=scaling.k_source or "", budget_notes="; ".join(scaling.notes))
        out.append(group)
    cols = [*analysis.PANEL_COLS, "lr", "wd_norm", "wd", "wd_sqrt_budget", "test_error", "test_error_lo",
            "test_error_hi", "error", "error_lo", "error_hi", "selection", "train_error", "fits", "n_seeds", "n_budgets",
            "lambda_norm_star", "lambda_norm_lo", "lambda_norm_hi", "raw_star", "raw_lo", "raw_hi", "located", "k",
            "k_lo", "k_hi", "raw_exponent", "raw_exponent_lo", "raw_exponent_hi", "consistent", "favoured", "verdict",
            "k_source", "sources", "border", "budget_notes"]
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.concat(out, ignore_index=True)[cols]


def _raw_scale(meta_row: pd.Series, eff: pd.DataFrame, budgets) -> list[float]:
    """λ/λ_norm = √(b/(B·T)) at each budget T, the whole budget's: the study's ``lambda_scale`` attr,
    which the driver computed with trainers.schedules' formula (storage does not compute it). A study
    recorded before that attr: the runs' recorded ``wd``/``wd_norm`` at T (their median; NaN where no
    run recorded λ) — the same for fixed, step and cosine schedules, the first restart period's λ with
    warm restarts."""
    scale = meta_row.get("lambda_scale")
    if isinstance(scale, dict) and all(str(int(b)) in scale for b in budgets):
        return [float(scale[str(int(b))]) for b in budgets]
    done = eff[eff["state"].eq("COMPLETE") & (eff["wd_norm"] > 0)]
    ratio = (done["wd"] / done["wd_norm"]).groupby(done["budget"]).median() if "wd" in done else pd.Series(dtype=float)
    return [float(ratio.get(int(b), np.nan)) for b in budgets]


def _final_train_error(rdb, eff: pd.DataFrame, table: pd.DataFrame) -> list[float]:
    """Mean over seeds of the best cells' last train error (one read of the winners' lists)."""
    keys = ["study", "budget", "_lr", "_wd"]
    winners = table.assign(_lr=analysis.grid_key(table["lr"]), _wd=analysis.grid_key(table["wd_norm"]))[keys]
    trials = eff[eff["state"].eq("COMPLETE")].merge(winners, on=keys, how="inner")
    lists = fetch_attrs(rdb.engine, trials["trial_id"].tolist(), ["train_error"])
    last = [_as_float((lists[t].get("train_error") or [None])[-1]) for t in trials["trial_id"]]
    means = trials.assign(_tr=last).groupby(keys)["_tr"].mean()
    return [means.get(tuple(r), np.nan) for r in winners.itertuples(index=False)]


@read_errors
@remembered
def headline(storage: StorageLike, sweep: str | None = None, schedule: str | Sequence[str] | None = None, *,
             n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """Decoupled vs coupled: AdamW vs Adam, SGDW vs SGD, per (sweep, schedule, budget), with intervals.

    ``improvement`` = (e_coupled − e_decoupled)/e_coupled of the two best settings' honestly reported
    errors, ``improvement_lo``/``_hi`` its 95% interval; rows only where both members exist. The paper
    reports ≈ 15% for AdamW over Adam. Paired over common seeds, and over the one shared test set
    where the runs recorded which examples they got wrong (``paired_test_set``,
    ``storage.evidence.paired.compare_paired``); else each value's own test noise, with a note.
    """
    rdb = reader(storage)
    meta, table, answers, eff = _best_read(rdb, sweep, None, schedule, n_boot, keep_draws=True)
    return _with_headline(rdb, meta, table, answers, eff)


def _headline(meta: pd.DataFrame, table: pd.DataFrame, answers, eff: pd.DataFrame | None = None,
              rdb=None) -> pd.DataFrame:
    """:func:`headline`'s rows from a read's answers; ``eff`` (its effective trials) and ``rdb`` let the
    comparison read the selectable runs' ``test_wrong`` by trial id and pair the test set."""
    from storage.evidence import paired  # the paired comparison (not re-exported by storage.evidence)

    complete = {} if eff is None else dict(tuple(eff[eff["state"].eq("COMPLETE")].groupby(["study", "budget"])))

    def side(study: str, budget: int) -> paired.Side:
        ans = answers[(study, budget)]
        if eff is None or rdb is None:
            return paired.Side(ans.panel, ans.best)
        runs = complete.get((study, budget), eff.iloc[:0])
        cells, cols = paired.locate(ans.panel, analysis.grid_key(runs["lr"]), analysis.grid_key(runs["wd_norm"]),
                                    runs["seed"])
        ids = {(c, j): t for c, j, t in zip(cells.tolist(), cols.tolist(), runs["trial_id"].tolist()) if c >= 0}

        def read(wanted):  # a small read by trial id: only the runs the selection can pick
            got = fetch_attrs(rdb.engine, [ids[w] for w in wanted if w in ids], ["test_wrong"])
            return {w: got[ids[w]].get("test_wrong") for w in wanted if w in ids}

        val = None
        if ans.best.method == "validation":  # the selection's validation errors, as storage.panel.answer builds them
            p = ans.panel
            val = panel_step.to_panel(runs, p.alphas, p.wd_norms, n_test=p.n_test, chance=p.chance,
                                      labels=list(p.seeds), budget=budget, value="val_value")
        return paired.Side(ans.panel, ans.best, read, val)

    keyed = {(r.sweep, r.optimizer, r.schedule, int(r.budget)): r for r in table.itertuples()}
    pairs = analysis.comparison_pairs(meta)  # each study's recorded pair (its optimizer_info)
    found = [(keyed[(sw, decoupled, sched, budget)], keyed[(sw, coupled, sched, budget)], decoupled, coupled)
             for (sw, opt, sched, budget) in sorted(keyed) for decoupled, coupled in pairs
             if opt == decoupled and (sw, coupled, sched, budget) in keyed]
    draws = {}  # each sweep's seed draw, as storage.panel.answers made it
    if eff is not None:
        for d, c, _, _ in found:
            if d.sweep not in draws:
                draws[d.sweep] = seed_draws_for(eff[eff["sweep"].eq(d.sweep)], answers[(c.study, int(c.budget))].best.n_boot)

    def compare(pair) -> evidence.Comparison:
        d, c = pair[:2]
        budget = int(d.budget)
        if d.sweep not in draws:
            return evidence.compare(answers[(c.study, budget)].best, answers[(d.study, budget)].best)
        return paired.compare_paired(side(c.study, budget), side(d.study, budget), draws[d.sweep],
                                     np.random.default_rng(RNG_SEED))

    rows = []
    # each comparison draws from a generator of its own: on threads (storage.threads), the same numbers
    for (d, c, decoupled, coupled), cmp in zip(found, map_ordered(compare, found)):
        lo, hi = cmp.ci or (np.nan, np.nan)
        rows.append({
            "sweep": d.sweep, "schedule": d.schedule, "budget": int(d.budget), "decoupled": decoupled,
            "coupled": coupled, "decoupled_error": d.error, "coupled_error": c.error,
            "improvement": np.nan if cmp.improvement is None else cmp.improvement,
            "improvement_lo": lo, "improvement_hi": hi, "verdict": comparison_verdict(lo, hi),
            "selection": cmp.method, "paired": cmp.paired, "paired_test_set": cmp.paired_test_set,
            "sources": " + ".join(cmp.sources) or d.sources, "decoupled_lr": d.lr, "decoupled_wd_norm": d.wd_norm,
            "coupled_lr": c.lr, "coupled_wd_norm": c.wd_norm, "notes": "; ".join(cmp.notes),
        })
    cols = ["sweep", "schedule", "budget", "decoupled", "coupled", "decoupled_error", "coupled_error",
            "improvement", "improvement_lo", "improvement_hi", "verdict", "selection", "paired", "paired_test_set",
            "sources", "decoupled_lr", "decoupled_wd_norm", "coupled_lr", "coupled_wd_norm", "notes"]
    return pd.DataFrame(rows, columns=cols)


def comparison_verdict(lo: float, hi: float) -> str:
    """From the improvement's interval (``storage.evidence.verdicts.side`` at 0): ``better`` (above 0:
    decoupled decay wins), ``worse`` (below 0), else ``not distinguishable``."""
    return {"above": "better", "below": "worse"}.get(verdicts.side((lo, hi), 0.0), "not distinguishable")


def _panel_budget(budgets: Iterable[int], name: str, budget: int | None) -> int:
    budgets = sorted({int(b) for b in budgets})
    if not budgets:
        raise EmptyStorageError(f"study {name!r} has no trial yet")
    if budget is None:
        if len(budgets) > 1:
            raise UnknownNameError(f"study {name!r} has several budgets ({', '.join(map(str, budgets))}); choose one")
        return budgets[0]
    if int(budget) not in budgets:
        raise UnknownNameError(f"study {name!r} has no trial with budget {budget}; budgets there: "
                               f"{', '.join(map(str, budgets))}")
    return int(budget)


@read_errors
def basin_grid(storage: StorageLike, study_name: str, budget: int | None = None, *,
               n_boot: int = DEFAULT_BOOT) -> pd.DataFrame:
    """Heatmap data of one panel: every (α, λ_norm) of the study's grid at budget T, with evidence.

    One row per cell of the full product of the study's α and λ_norm values (over all its
    trials), sorted by α then λ_norm; cells without any trial at T have ``missing=True``,
    n_seeds 0 and NaN error. Columns: :data:`storage.analysis.GRID_COLUMNS` (lr, wd_norm, wd,
    test_error — mean over seeds, diverged runs at chance — test_error_std, n_seeds, n_failed,
    n_diverged, diverged_any, diverged_all, missing, rank, top10, best) and
    :data:`storage.panel.EVIDENCE_COLUMNS` (error_lo, error_hi, p_best, plausible).
    ``frame.attrs`` holds study, sweep, optimizer, schedule, budget, chance (the study's recorded
    chance level), border (a note when the best cell is on the grid's edge, else ""), the best
    setting's honest error (best_error, best_error_ci, selection) and the noise ``sources``.
    ``budget`` may be omitted when the study has a single one.
    """
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    m = meta.iloc[0]
    axes = study_param_values(rdb.engine, int(m["study_id"]))
    budget = _panel_budget(axes["budget"], study_name, budget)
    eff = analysis.effective_trials(trials_for(rdb, meta, attrs=evidence_attrs(meta), budget=budget))
    ans = answer(eff, axes["lr"], axes["wd_norm"], m, seed_draws_for(eff, n_boot), coupling=False)
    cells = analysis.rank_cells(analysis.cell_stats(eff))
    winner = cells[cells["best"]]
    out = ans.grid[[*analysis.GRID_COLUMNS, *EVIDENCE_COLUMNS]].sort_values(["lr", "wd_norm"], kind="stable")
    out = out.reset_index(drop=True)
    out.attrs.update(
        study=study_name, sweep=m["sweep"], optimizer=m["optimizer"], schedule=m["schedule"], budget=budget,
        chance=study_chance(m), border=analysis.border_note(cells, winner.iloc[0]) if not winner.empty else "",
        best_error=ans.best.error, best_error_ci=ans.best.ci, selection=ans.best.method, sources=ans.sources,
    )
    return out


@read_errors
@remembered
def coupling(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    *,
    budget: int | None = None,
    tol: float = DEFAULT_TOL,
    n_boot: int = DEFAULT_BOOT,
) -> list[Coupling]:
    """Coupling of every panel (optimizer × schedule × budget) selected: the verdict from the edge and
    valley slopes' intervals (``storage.evidence.landscape``), their lines with bands, the top-10 axis and the
    tolerance-edge slope (``tol`` absolute error, default 0.02); see :mod:`storage.basin_shape`."""
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number ≥ 0, got {tol!r}")
    if not (isinstance(n_boot, int) and n_boot >= 1):
        raise ValueError(f"n_boot must be an integer ≥ 1, got {n_boot!r}")
    rdb = reader(storage)
    meta, eff, axes = panel_step.read(rdb, sweep, optimizer, schedule, budget=budget, raw_lambda=False)
    answers = panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=True, tol=tol, axes=axes, coupling_only=True)
    order = sorted(answers, key=lambda k: (answers[k].coupling.sweep, answers[k].coupling.optimizer,
                                           answers[k].coupling.schedule, k[1]))
    return [answers[k].coupling for k in order]


def coupling_frame(results: Sequence[Coupling]) -> pd.DataFrame:
    """Coupling results as a frame (each ``*_ci`` split into ``*_lo``/``*_hi``, notes, sources and rests_on
    joined, the per-row lines as a JSON list)."""
    import json

    rows = []
    for c in results:
        d = c.to_dict()
        for name in ("argmin_slope", "slope", "edge_slope", "curvature"):
            ci = d.pop(f"{name}_ci")
            d[f"{name}_lo"], d[f"{name}_hi"] = (ci if ci is not None else (None, None))
        d["notes"] = "; ".join(d["notes"])
        d["sources"] = " + ".join(d["sources"])
        d["rests_on"] = " + ".join(d["rests_on"])
        d["rows"] = json.dumps(d["rows"])
        rows.append(d)
    return pd.DataFrame(rows)


# --- anytime (Figure 4) ---------------------------------------------------------------------------


@read_errors
@remembered
def anytime(
    storage: StorageLike,
    sweep: str,
    *,
    restart_schedule: str = "warm-restarts",
    plain_schedule: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    budget: int | None = None,
    n_boot: int = DEFAULT_BOOT,
) -> pd.DataFrame:
    """Figure 4's claim in numbers: the anytime advantage of warm restarts, with intervals.

    Per optimizer (and budget T) that has a ``restart_schedule`` study and a plain one in ``sweep``
    (``plain_schedule``, else the plain schedule whose best error is lowest):
    each schedule's best setting (:func:`best`'s cell), its seed-mean test error per epoch and its
    best-so-far curve; ``error`` the restart curve's best-so-far error at its first restart
    ``first_restart``; ``plain_epoch`` the first epoch at which the plain curve's best-so-far gets as
    low (NaN when it never does within T: ``censored``, the speed-up is then at least T/first_restart);
    ``speedup`` = plain_epoch / first_restart, with a 95% interval (``speedup_lo``/``_hi``) from draws
    that resample the seed labels (paired across the two schedules) and redraw every epoch's error
    from Binomial(n_test, e)/n_test.
    """
    rdb = reader(storage)
    meta, eff, axes = panel_step.read(rdb, sweep, optimizer, None)
    eff = eff if budget is None else eff[eff["budget"] == int(budget)]
    ranked = analysis.rank_cells(analysis.cell_stats(eff))
    table = _best_rows(ranked, panel_step.answers(rdb, meta, eff, n_boot=n_boot, coupling=False, ranked=ranked,
                                                  axes=axes))
    by_study = meta.set_index("study")
    rows = []
    for (opt, b), group in table.groupby(["optimizer", "budget"], sort=True):
        wr = group[group["schedule"] == restart_schedule]
        plain = group[group["schedule"] != restart_schedule]
        if plain_schedule is not None:
            plain = plain[plain["schedule"] == plain_schedule]
        if wr.empty or plain.empty:
            continue
        w, p = wr.iloc[0], plain.sort_values("error").iloc[0]
        curves = {}
        for r in (w, p):
            trials = eff[(eff["study"] == r["study"]) & (eff["budget"] == b) & eff["state"].eq("COMPLETE")
                         & (analysis.grid_key(eff["lr"]) == normalise_float(r["lr"]))
                         & (analysis.grid_key(eff["wd_norm"]) == normalise_float(r["wd_norm"]))]
            lists = fetch_attrs(rdb.engine, trials["trial_id"].tolist(), ["test_error", "restart_epochs"])
            curves[r["schedule"]] = (trials["seed"].astype(int).tolist(), [lists[t] for t in trials["trial_id"]])
        restarts = [e for a in curves[restart_schedule][1] for e in (a.get("restart_epochs") or [])]
        if not restarts:
            continue
        first = int(min(restarts))
        # the curves' noise: epochs before the last may score only the first curve_test test examples
        n_test = _curve_n(by_study.loc[w["study"]])
        draws = seed_draws_for(eff[eff["sweep"] == sweep], n_boot)
        result = _speedup(curves[restart_schedule], curves[p["schedule"]], first, int(b), n_test, draws)
        rows.append({"sweep": sweep, "optimizer": opt, "budget": int(b), "restart_schedule": restart_schedule,
                     "plain_schedule": p["schedule"], "first_restart": first, **result,
                     "restart_lr": w["lr"], "restart_wd_norm": w["wd_norm"], "plain_lr": p["lr"],
                     "plain_wd_norm": p["wd_norm"], "n_seeds": int(min(w["n_seeds"], p["n_seeds"])),
                     "sources": w["sources"]})
    cols = ["sweep", "optimizer", "budget", "restart_schedule", "plain_schedule", "first_restart", "error",
            "error_lo", "error_hi", "plain_epoch", "censored", "speedup", "speedup_lo", "speedup_hi", "restart_lr",
            "restart_wd_norm", "plain_lr", "plain_wd_norm", "n_seeds", "sources"]
    return pd.DataFrame(rows, columns=cols)


def _curve_n(study: pd.Series) -> float | None:
    """The test examples behind a study's curve points: min(n_test, curve_test) (the conservative
    n: the epochs a speed-up reads are scored on curve_test examples when the study records one)."""
    n, c = study.get("n_test"), study.get("curve_test")
    if n is None or pd.isna(n):
        return None
    return float(min(n, c)) if c is not None and pd.notna(c) else float(n)


def _curve_matrix(seeds: list[int], attrs: list[dict], labels: list[int], epochs: int) -> np.ndarray:
    """(len(labels), epochs) test-error curves by seed label; NaN where a seed or epoch is missing."""
    m = np.full((len(labels), epochs), np.nan)
    for s, a in zip(seeds, attrs):
        curve = [np.nan if v is None else float(v) for v in (a.get("test_error") or [])][:epochs]
        m[labels.index(s), :len(curve)] = curve
    return m


def _first_reach(best_so_far: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1-based first epoch where each row's best-so-far curve is ≤ its target; NaN if never."""
    hit = evidence.not_above(best_so_far, target[..., None])
    first = np.argmax(hit, axis=-1) + 1.0
    return np.where(hit.any(axis=-1), first, np.nan)


def _speedup(restart, plain, first: int, epochs: int, n_test, draws: evidence.SeedDraws) -> dict:
    """The speed-up at the first restart and its interval (see :func:`anytime`): the seed-mean curves
    of both schedules drawn by the evidence's noise model (``storage.evidence.cell_mean_draws``, an epoch
    a cell: paired seed labels, the binomial test stage with its Jeffreys floor, ``variance`` gains)."""
    labels = [int(x) for x in draws.labels]
    R = _curve_matrix(*restart, labels, epochs)
    P = _curve_matrix(*plain, labels, epochs)
    gen = np.random.default_rng(RNG_SEED)

    def measure(r_mean, p_mean):  # seed-mean curves (..., epochs) → (error at first restart, plain epoch)
        with np.errstate(all="ignore"):
            rb = np.fmin.accumulate(r_mean, axis=-1)
            pb = np.fmin.accumulate(p_mean, axis=-1)
        target = rb[..., first - 1]
        return target, _first_reach(pb, target)

    with warnings.catch_warnings():  # an epoch without any seed's value has no mean
        warnings.simplefilter("ignore", RuntimeWarning)
        target, reached = measure(np.nanmean(R, axis=0), np.nanmean(P, axis=0))
    n = int(n_test) if n_test is not None and pd.notna(n_test) else None
    cols = draws.columns(labels)
    curve_draws = lambda m: evidence.cell_mean_draws(m.T, np.zeros(m.T.shape, bool), n, cols, gen,  # noqa: E731
                                                     expand=evidence.EXPAND_LAND)
    t_boot, r_boot = measure(curve_draws(R), curve_draws(P))
    censored = bool(np.isnan(reached))
    speed = (epochs + 1) / first if censored else float(reached) / first  # censored: beyond the budget
    s_boot = np.where(np.isnan(r_boot), (epochs + 1) / first, r_boot / first)
    lo, hi = evidence.percentile_interval(s_boot)
    elo, ehi = evidence.percentile_interval(t_boot)
    return {"error": float(target), "error_lo": float(elo), "error_hi": float(ehi),
            "plain_epoch": np.nan if censored else float(reached), "censored": censored, "speedup": speed,
            "speedup_lo": float(lo), "speedup_hi": float(hi)}


# --- curves -------------------------------------------------------------------------------------

CURVE_COLUMNS = ["study", "trial_id", "lr", "wd_norm", "budget", "seed", "rank", "value", "diverged", "epoch",
                 *LIST_ATTRS, "restart", "intermediate"]


def _as_float(x) -> float:
    return float("nan") if x is None else float(x)


@read_errors
def curves(
    storage: StorageLike,
    study_name: str,
    points: Iterable[GridPoint | tuple] | None = None,
    *,
    top_k: int | None = None,
    budget: int | None = None,
) -> pd.DataFrame:
    """Per-epoch learning curves of chosen settings of one study, long format (one row per trial × epoch).

    Choose trials by ``points`` (GridPoints, or (lr, wd_norm, budget, seed) tuples) or by
    ``top_k``: every seed of the k best cells of each budget (or of ``budget``); with neither,
    the top 10. Columns: study, trial_id, lr, wd_norm, budget, seed, rank (cell rank in its
    panel, <NA> for trials chosen by point), value, diverged, epoch (1-based), train_loss,
    train_error, test_loss, test_error, eta, wd_per_epoch (raw λ of that epoch), restart (the
    epoch ends a restart period: ``restart_epochs``), intermediate (Optuna's value at that step).
    Lists shorter than the longest (e.g. a run stopped at divergence) are padded with NaN.
    """
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    frame = trials_for(rdb, meta, attrs=("diverged", "wd"), budget=None)
    eff = analysis.effective_trials(frame)
    eff = eff[eff["state"].eq("COMPLETE")]
    if budget is not None:
        budget = _panel_budget(eff["budget"], study_name, budget)
        eff = eff[eff["budget"] == budget]
    if points is not None:
        m = meta.iloc[0]
        wanted = set()
        for p in points:
            if not isinstance(p, GridPoint):
                lr, wd_norm, b, s = p
                p = GridPoint(m["optimizer"], m["schedule"], lr, wd_norm, b, s)
            wanted.add(p)
        keys = [GridPoint(r.optimizer, r.schedule, r.lr, r.wd_norm, r.budget, r.seed) in wanted for r in eff.itertuples()]
        chosen = eff[np.asarray(keys, bool)].assign(rank=pd.NA)
    else:
        k = 10 if top_k is None else int(top_k)
        if k < 1:
            raise ValueError(f"top_k must be ≥ 1, got {top_k!r}")
        ranked = analysis.rank_cells(analysis.cell_stats(eff))
        top = ranked[ranked["rank"].le(k)][["budget", "_lr", "_wd", "rank"]]
        chosen = eff.merge(top, on=["budget", "_lr", "_wd"], how="inner")
    chosen = chosen.sort_values(["budget", "rank", "lr", "wd_norm", "seed"], kind="stable", na_position="last")
    ids = [int(i) for i in chosen["trial_id"]]
    lists = fetch_attrs(rdb.engine, ids, [*LIST_ATTRS, "restart_epochs"])
    inter = fetch_intermediate(rdb.engine, ids)
    rows = []
    for r in chosen.itertuples():
        attrs = lists[r.trial_id]
        n = max([len(attrs.get(k) or []) for k in LIST_ATTRS] + [max(inter[r.trial_id], default=0)])
        restarts = set(attrs.get("restart_epochs") or [])
        for epoch in range(1, n + 1):
            row = {"study": r.study, "trial_id": r.trial_id, "lr": r.lr, "wd_norm": r.wd_norm, "budget": r.budget,
                   "seed": r.seed, "rank": r.rank, "value": r.value, "diverged": bool(r.diverged), "epoch": epoch}
            for key in LIST_ATTRS:
                seq = attrs.get(key) or []
                row[key] = _as_float(seq[epoch - 1]) if epoch <= len(seq) else np.nan
            row["restart"] = epoch in restarts
            row["intermediate"] = inter[r.trial_id].get(epoch, np.nan)
            rows.append(row)
    out = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out
