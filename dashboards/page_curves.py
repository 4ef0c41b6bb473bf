"""Learning curves — the paper's Figure 3: train loss and test error per epoch of chosen settings.

Default: the best setting of each optimizer (mean over its seeds). Any of the top-10 settings
of every optimizer can be added. Epochs that end a warm-restart period are marked. The third
panel is Figure 3's bottom right: final test error against final train loss of the top-10
settings — at equal train loss, decoupled decay generalises better.
"""

from __future__ import annotations

import pandas as pd

from dashboards import components as ui
from dashboards import pagekit
from dashboards.curves import Setting, curve, finals, top_settings
from dashboards.fig_curves import learning_curves
from dashboards.selection import integer, many, one, pick, pick_budget
from dashboards.text import esc, pct, schedule_label

NAME = "curves"
PATH = "/curves"
TITLE = "Learning curves"
INTRO = ("Figure 3: train loss and test error per epoch of the chosen settings (default: the best of each "
         "optimizer), averaged over seeds; ◆ marks the end of a warm-restart period. Right: final test error "
         "against final train loss of each optimizer's top-10 settings.")
FIGURES = ("curves",)
HEIGHTS = {"curves": 500}
DYNAMIC = ("sweep", "schedule", "budget", "set")
STATIC = ()
TOP_K = 10


def resolve(index: dict, q: dict) -> dict:
    sweep = pick(list(index), one(q, "sweep"))
    info = index[sweep]
    schedule = pick(list(info.schedules), one(q, "schedule"), "cosine")
    budget = pick_budget(info.budgets_for([schedule]), integer(q, "budget"), info.default_budget([schedule]))
    return {"sweep": sweep, "schedule": schedule, "budget": budget, "set": many(q, "set")}


def options(index: dict, sel: dict) -> dict:
    info = index[sel["sweep"]]
    return {
        "sweep": ui.options(list(index)),
        "schedule": [{"label": schedule_label(s), "value": s} for s in info.schedules],
        "budget": [{"label": f"T = {b} epochs", "value": b} for b in info.budgets_for([sel["schedule"]])],
        "set": [],  # filled by build: the top-10 of each optimizer
    }


def params(sel: dict) -> dict:
    return {k: sel[k] for k in ("sweep", "schedule", "budget", "set")}


def controls(index: dict, sel: dict, opts: dict) -> list:
    return [
        ui.field("sweep", ui.dropdown(f"{NAME}-sweep", opts["sweep"], sel["sweep"])),
        ui.field("schedule", ui.dropdown(f"{NAME}-schedule", opts["schedule"], sel["schedule"])),
        ui.field("budget", ui.dropdown(f"{NAME}-budget", opts["budget"], sel["budget"])),
        ui.field("settings (top-10 of each optimizer)",
                ui.dropdown(f"{NAME}-set", opts["set"], sel["set"], multi=True,
                           placeholder="the best of each optimizer"), wide=True),
    ]


def choices(source, sel: dict) -> tuple[dict[str, Setting], dict]:
    """The settings one can choose (the top-10 of each optimizer, by key) and the panels they come from."""
    info = source.sweep(sel["sweep"])
    panels = source.panels(sel["sweep"], sel["schedule"], sel["budget"], info.optimizers_for(sel["schedule"]))
    out: dict[str, Setting] = {}
    for panel in panels.values():
        for s in top_settings(panel, TOP_K):
            out[s.key] = s
    return out, panels


def setting_options(settings: dict[str, Setting]) -> list[dict]:
    return [{"label": s.label(with_error=True), "value": s.key} for s in settings.values()]


def layout_options(source, sel: dict) -> dict:
    """The settings dropdown's choices before the first callback (a value not among them would be dropped)."""
    return {"set": setting_options(choices(source, sel)[0])}


def build(source, sel: dict) -> pagekit.View:
    info = source.sweep(sel["sweep"])
    schedule, budget = sel["schedule"], sel["budget"]
    optimizers = info.optimizers_for(schedule)
    settings, panels = choices(source, sel)
    chosen = [settings[k] for k in sel["set"] if k in settings]
    if not chosen:  # default: the best of each optimizer
        chosen = [s for s in settings.values() if s.rank == 1]
    curves, final_frames, notes = [], [], []
    for opt in optimizers:
        mine = [s for s in chosen if s.optimizer == opt]
        if not panels[opt].has_data:
            continue
        frame = source.curves(info.studies[(opt, schedule)], budget, TOP_K)
        final_frames.append(finals(frame, opt))
        for s in mine:
            c = curve(frame, s)
            if c is None:
                notes.append(f"{s.label()}: no per-epoch record")
            else:
                curves.append(c)
    ignored = [k for k in sel["set"] if k not in settings]
    if ignored:
        notes.append(f"{len(ignored)} setting(s) in the address are not among the top-{TOP_K} here and were left out")
    all_finals = pd.concat([f for f in final_frames if not f.empty], ignore_index=True) if final_frames else None
    title = f"<b>{esc(sel['sweep'])}</b> · {esc(schedule_label(schedule))} · T = {budget} epochs"
    fig = learning_curves(curves, all_finals, title=title, uirevision=f"{sel['sweep']}|{schedule}|{budget}")
    header = ["setting", "recorded test error", "test error, last epoch", "train loss, last epoch", "seeds",
              "restarts after epochs"]
    rows = []
    for c in curves:
        rows.append([c.label, pct(c.value), pct(c.test_error.iloc[-1]) if len(c.test_error) else "–",
                     f"{c.train_loss.dropna().iloc[-1]:.4g}" if c.train_loss.notna().any() else "–",
                     str(c.n_seeds), ", ".join(str(e) for e in c.restarts if e < c.test_error.index.max()) or "–"])
    return pagekit.View(
        figures={"curves": fig},
        filenames={"curves": pagekit.slug("curves", sel["sweep"], schedule, f"T{budget}")},
        notes=notes,
        tables=[("Chosen settings (seed means)", header, rows)],
        options={"set": setting_options(settings)},
        values={"set": [s.key for s in chosen]},
    )
