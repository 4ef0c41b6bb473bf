"""Schedules — the paper's Figure 1: Adam (top row) against AdamW (bottom row) for each schedule.

Columns are the sweep's schedules in Figure 1's order (fixed, step-drop, cosine annealing, then
warm restarts and any other); rows the chosen optimizers (default Adam and AdamW); one colour
scale over every panel, so schedules compare at a glance.
"""

from __future__ import annotations

from dashboards import components as ui
from dashboards import pagekit
from dashboards.colorscale import COLOR_MODES, ColorSpec
from dashboards.fig_heatmaps import heatmaps, panel_title
from dashboards.selection import flag, integer, many, one, pick, pick_budget, pick_many
from dashboards.summaries import evidence_notes, panel_notes, panel_rows
from dashboards.text import esc, optimizer_label

NAME = "schedules"
PATH = "/schedules"
TITLE = "Schedules"
INTRO = ("Figure 1: the basin of each optimizer under each learning-rate schedule (fixed, step-drop, cosine "
         "annealing), on one colour scale. The paper: AdamW beats Adam with L2 under every schedule, and "
         "cosine annealing is best.")
FIGURES = ("heatmaps",)
HEIGHTS = {"heatmaps": 820}
DYNAMIC = ("sweep", "budget", "opt")
STATIC = ("color", "log")


def resolve(index: dict, q: dict) -> dict:
    sweep = pick(list(index), one(q, "sweep"))
    info = index[sweep]
    opts = pick_many(list(info.optimizers), many(q, "opt"), default=("adam", "adamw"))
    return {
        "sweep": sweep, "budget": pick_budget(info.budgets_for(None, opts), integer(q, "budget"), info.default_budget(None, opts)), "opt": opts,
        "color": pick(list(COLOR_MODES), one(q, "color")), "log": ["1"] if flag(q, "log") else [],
    }


def options(index: dict, sel: dict) -> dict:
    info = index[sel["sweep"]]
    return {
        "sweep": ui.options(list(index)),
        "budget": [{"label": f"T = {b} epochs", "value": b} for b in info.budgets_for(None, sel["opt"])],
        "opt": [{"label": optimizer_label(o), "value": o} for o in info.optimizers],
    }


def params(sel: dict) -> dict:
    return {k: sel[k] for k in ("sweep", "budget", "opt", "color", "log")}


def controls(index: dict, sel: dict, opts: dict) -> list:
    return [
        ui.field("sweep", ui.dropdown(f"{NAME}-sweep", opts["sweep"], sel["sweep"])),
        ui.field("budget", ui.dropdown(f"{NAME}-budget", opts["budget"], sel["budget"])),
        ui.field("optimizers (rows)", ui.dropdown(f"{NAME}-opt", opts["opt"], sel["opt"], multi=True), wide=True),
        *ui.colour_controls(NAME, sel),
    ]


def build(source, sel: dict) -> pagekit.View:
    info = source.sweep(sel["sweep"])
    schedules = list(info.schedules)
    by_schedule = {s: source.panels(sel["sweep"], s, sel["budget"], sel["opt"]) for s in schedules}
    rows = [[by_schedule[s][o] for s in schedules] for o in sel["opt"]]
    panels = [p for r in rows for p in r]
    title = f"<b>{esc(sel['sweep'])}</b> · T = {sel['budget']} epochs · rows: optimizers, columns: schedules"
    fig = heatmaps(rows, color=ColorSpec(mode=sel["color"], log=bool(sel["log"])), title=title,
                   label=lambda p: panel_title(p, schedule=True), row_height=320,
                   uirevision=f"{sel['sweep']}|{sel['budget']}")
    header, table = panel_rows(panels, with_schedule=True)
    return pagekit.View(
        figures={"heatmaps": fig},
        filenames={"heatmaps": pagekit.slug("schedules", sel["sweep"], f"T{sel['budget']}")},
        notes=evidence_notes(panels) + panel_notes(panels) + ([] if len(schedules) > 1 else
                                     ["this sweep has one schedule: add [[schedules]] entries (fixed, step-drop, "
                                      "cosine) to its spec to compare them"]),
        tables=[("Best cell of each panel", header, table)],
    )
