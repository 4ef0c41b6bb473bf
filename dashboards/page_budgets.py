"""Budgets — the paper's SuppFigure 3: how the optimal weight decay moves with the budget T.

Top: λ_norm* and raw λ* against T with their 95% intervals as error bars, from
``storage.best_by_budget`` (Appendix B.1 predicts λ_norm* constant and λ* ∝ 1/√T); the notes give
the fitted exponents with their intervals and which prediction the data favour. Below: the
heatmaps of each optimizer (rows) at each budget (columns), with λ_norm or raw λ on the y axis —
in raw λ the basin slides down as T grows, in λ_norm it stays put.
"""

from __future__ import annotations

import pandas as pd
from dash import dcc

import storage
from dashboards import components as ui
from dashboards import pagekit
from dashboards.colorscale import COLOR_MODES, ColorSpec
from dashboards.fig_budgets import budget_lines
from dashboards.fig_heatmaps import heatmaps, panel_title
from dashboards.selection import flag, many, one, pick, pick_many
from dashboards.summaries import budget_rows, evidence_notes, panel_notes
from dashboards.text import esc, optimizer_label, pct, schedule_label, signed, signed_interval, sources_label

NAME = "budgets"
PATH = "/budgets"
TITLE = "Budgets"
INTRO = ("SuppFigure 3: the optimal normalised decay λ_norm* and raw decay λ* against the budget T (bars: 95% "
         "intervals), and the basin at each budget. With λ = λ_norm·√(b/(B·T)) the best λ_norm should not move "
         "with T while the best raw λ shrinks like 1/√T.")
FIGURES = ("lines", "heatmaps")
HEIGHTS = {"lines": 480, "heatmaps": 700}
DYNAMIC = ("sweep", "schedule", "opt")
STATIC = ("y", "color", "log")
MAX_BUDGETS = 8
#: What the names in storage's budget verdicts predict (their k: ``storage.PREDICTIONS``).
PREDICTION_NAMES = {"sqrt_rule": "the paper's √ rule", "tau_fraction": "τ = 1/(η_t·λ) a fixed fraction of the run",
                    "tau_epochs": "τ fixed in epochs (Wang & Aitchison 2024)"}
PREDICTIONS = "Predictions for k: " + "; ".join(
    f"{name} k = {signed(k, 1)} ({PREDICTION_NAMES.get(name, name)})" for name, k in storage.PREDICTIONS.items())
Y_AXES = {"wd_norm": "λ_norm on the y axis", "wd": "raw λ on the y axis"}


def resolve(index: dict, q: dict) -> dict:
    sweep = pick(list(index), one(q, "sweep"))
    info = index[sweep]
    schedule = pick(list(info.schedules), one(q, "schedule"), "cosine")
    opts = pick_many(info.optimizers_for(schedule), many(q, "opt"))
    return {"sweep": sweep, "schedule": schedule, "opt": opts, "y": pick(list(Y_AXES), one(q, "y")),
            "color": pick(list(COLOR_MODES), one(q, "color")), "log": ["1"] if flag(q, "log") else []}


def options(index: dict, sel: dict) -> dict:
    info = index[sel["sweep"]]
    return {
        "sweep": ui.options(list(index)),
        "schedule": [{"label": schedule_label(s), "value": s} for s in info.schedules],
        "opt": [{"label": optimizer_label(o), "value": o} for o in info.optimizers_for(sel["schedule"])],
    }


def params(sel: dict) -> dict:
    return {k: sel[k] for k in ("sweep", "schedule", "opt", "y", "color", "log")}


def controls(index: dict, sel: dict, opts: dict) -> list:
    return [
        ui.field("sweep", ui.dropdown(f"{NAME}-sweep", opts["sweep"], sel["sweep"])),
        ui.field("schedule", ui.dropdown(f"{NAME}-schedule", opts["schedule"], sel["schedule"])),
        ui.field("optimizers", ui.dropdown(f"{NAME}-opt", opts["opt"], sel["opt"], multi=True), wide=True),
        ui.field("heatmaps", dcc.RadioItems(id=f"{NAME}-y", options=[{"label": v, "value": k} for k, v in Y_AXES.items()],
                                           value=sel["y"], inline=True, className="radio")),
        *ui.colour_controls(NAME, sel),
    ]


def build(source, sel: dict) -> pagekit.View:
    info = source.sweep(sel["sweep"])
    schedule, opts = sel["schedule"], sel["opt"]
    budgets = info.budgets_for([schedule], opts)
    notes = []
    if len(budgets) > MAX_BUDGETS:
        notes.append(f"{len(budgets)} budgets: the heatmaps show the {MAX_BUDGETS} longest; the lines show all")
    # one read and one bootstrap for the heatmaps and the λ_norm*(T) lines (storage.budget_view)
    read, table = source.budget_view(sel["sweep"], schedule, opts)
    by_budget = {b: read.get(b) or {o: storage.empty_panel(sel["sweep"], o, schedule, b, "no finished trial yet") for o in opts}
                 for b in budgets}
    shown = budgets[-MAX_BUDGETS:]
    rows = [[by_budget[b][o] for b in shown] for o in opts]
    panels = [by_budget[b][o] for b in budgets for o in opts]
    head = f"<b>{esc(sel['sweep'])}</b> · {esc(schedule_label(schedule))}"
    lines = budget_lines(table, title=head, uirevision=f"{sel['sweep']}|{schedule}")
    maps = heatmaps(rows, color=ColorSpec(mode=sel["color"], log=bool(sel["log"])), y=sel["y"],
                    title=head + " · rows: optimizers, columns: budgets",
                    label=lambda p: panel_title(p, budget=True), row_height=300,
                    uirevision=f"{sel['sweep']}|{schedule}|{sel['y']}")
    for opt, g in table.groupby("optimizer", sort=False):
        notes.extend(exponent_notes(g))
    notes += evidence_notes(panels)
    notes += panel_notes(panels)
    header, trows = budget_rows(table)
    return pagekit.View(
        figures={"lines": lines, "heatmaps": maps},
        filenames={"lines": pagekit.slug("budgets-lambda", sel["sweep"], schedule),
                   "heatmaps": pagekit.slug("budgets-heatmaps", sel["sweep"], schedule, sel["y"])},
        notes=notes,
        tables=[("Optimal setting per budget", header, trows)],
    )


def exponent_notes(g: pd.DataFrame) -> list[str]:
    """One optimizer's fitted exponents with their intervals and storage's verdict against the predictions."""
    first = g.iloc[0]
    name = optimizer_label(first["optimizer"])
    n = int(first["n_budgets"])
    if n < 2:
        return [f"{name}: one budget only — add budgets to the spec to see a trend"]
    out = []
    if pd.isna(first["k"]):
        out.append(f"{name}: no exponent over {n} budgets ({first['verdict']})")
    else:
        out.append(
            f"{name}: λ_norm* ∝ T^{signed_interval(first['k'], first['k_lo'], first['k_hi'])}, raw λ* ∝ "
            f"T^{signed_interval(first['raw_exponent'], first['raw_exponent_lo'], first['raw_exponent_hi'])} "
            f"(95%, fitted on the {int(g['located'].sum())} of {n} budgets that locate λ_norm*; noise: "
            f"{sources_label(first['sources'])}): {first['verdict']}. {PREDICTIONS}")
    if first["budget_notes"]:
        out.append(f"{name}: {first['budget_notes']}")
    train = ", ".join(f"T={int(r.budget)}: {pct(r.train_error)}" for r in g.itertuples() if pd.notna(r.train_error))
    if train:
        out.append(f"{name}: final train error of the best cell {train} (runs that do not fit their training data "
                   "answer a different question than Appendix B.1's)")
    return out
