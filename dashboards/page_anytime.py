"""Anytime — the paper's Figure 4: best-so-far test error per epoch, warm restarts against plain.

For each chosen optimizer, the best setting (at budget T) of the warm-restart schedule
(SGDWR, AdamWR — dashed, restarts marked) and of a plain schedule (default cosine annealing —
solid), each averaged over seeds. The table puts the paper's claim in numbers: the error at the
first restart, and how many epochs the plain schedule needs to get as low.
"""

from __future__ import annotations

from dashboards import components as ui
from dashboards import pagekit
from dashboards.curves import curve, top_settings
from dashboards.fig_anytime import anytime
from dashboards.selection import integer, many, one, pick, pick_budget, pick_many
from dashboards.text import PAPER_FOUR, esc, optimizer_label, pct, schedule_label

NAME = "anytime"
PATH = "/anytime"
TITLE = "Anytime"
INTRO = ("Figure 4: the best test error reached so far at each epoch, for warm restarts (dashed, ◆ = end of a "
         "restart period) against a plain schedule (solid), each at its best setting. The paper: AdamWR reaches "
         "at its first restart what AdamW needs up to 10× more epochs for.")
FIGURES = ("anytime",)
HEIGHTS = {"anytime": 500}
DYNAMIC = ("sweep", "budget", "opt", "restart", "plain")
STATIC = ()
RESTART_DEFAULT = "warm-restarts"


def resolve(index: dict, q: dict) -> dict:
    sweep = pick(list(index), one(q, "sweep"))
    info = index[sweep]
    schedules = list(info.schedules)
    restart = pick(schedules, one(q, "restart"), RESTART_DEFAULT)
    plain = pick([s for s in schedules if s != restart], one(q, "plain"), "cosine")
    pair = [s for s in (plain, restart) if s is not None]
    available = [o for o in info.optimizers if any((o, s) in info.studies for s in pair)]
    opts = pick_many(available, many(q, "opt"), default=PAPER_FOUR)
    budget = pick_budget(info.budgets_for(pair, opts), integer(q, "budget"), info.default_budget(pair, opts))
    return {"sweep": sweep, "budget": budget, "opt": opts, "restart": restart, "plain": plain}


def options(index: dict, sel: dict) -> dict:
    info = index[sel["sweep"]]
    pair = [s for s in (sel["plain"], sel["restart"]) if s is not None]
    return {
        "sweep": ui.options(list(index)),
        "budget": [{"label": f"T = {b} epochs", "value": b} for b in info.budgets_for(pair, sel["opt"])],
        "opt": [{"label": optimizer_label(o), "value": o} for o in info.optimizers
                if any((o, s) in info.studies for s in pair)],
        "restart": [{"label": schedule_label(s), "value": s} for s in info.schedules],
        "plain": [{"label": schedule_label(s), "value": s} for s in info.schedules if s != sel["restart"]],
    }


def params(sel: dict) -> dict:
    return {k: sel[k] for k in ("sweep", "budget", "opt", "restart", "plain")}


def controls(index: dict, sel: dict, opts: dict) -> list:
    return [
        ui.field("sweep", ui.dropdown(f"{NAME}-sweep", opts["sweep"], sel["sweep"])),
        ui.field("restart schedule", ui.dropdown(f"{NAME}-restart", opts["restart"], sel["restart"])),
        ui.field("against", ui.dropdown(f"{NAME}-plain", opts["plain"], sel["plain"], clearable=True,
                                      placeholder="no plain schedule")),
        ui.field("budget", ui.dropdown(f"{NAME}-budget", opts["budget"], sel["budget"])),
        ui.field("optimizers", ui.dropdown(f"{NAME}-opt", opts["opt"], sel["opt"], multi=True), wide=True),
    ]


def build(source, sel: dict) -> pagekit.View:
    info = source.sweep(sel["sweep"])
    restart, plain, budget = sel["restart"], sel["plain"], sel["budget"]
    notes = []
    if restart != RESTART_DEFAULT and RESTART_DEFAULT not in info.schedules:
        notes.append('this sweep has no warm-restarts schedule: add [[schedules]] name = "warm-restarts" to its spec '
                     "to compare restarts against a plain schedule")
    curves = []
    for schedule in [s for s in (plain, restart) if s is not None]:
        opts = [o for o in sel["opt"] if (o, schedule) in info.studies]
        panels = source.panels(sel["sweep"], schedule, budget, opts)
        for opt in opts:
            best = top_settings(panels[opt], 1)
            if not best:
                notes.append(f"{optimizer_label(opt)} / {schedule}: no finished trial at T={budget}")
                continue
            frame = source.curves(info.studies[(opt, schedule)], budget, 1)
            is_restart = schedule == restart and schedule != plain
            label = (f"{optimizer_label(opt, restarts=True)} ({schedule_label(schedule)})" if is_restart
                     else f"{optimizer_label(opt)} ({schedule_label(schedule)})")
            c = curve(frame, best[0], label=label, schedule=schedule)
            if c is not None:
                curves.append(c)
    title = f"<b>{esc(sel['sweep'])}</b> · T = {budget} epochs · best setting of each optimizer and schedule"
    fig = anytime(curves, restart_schedule=restart or "", title=title, uirevision=f"{sel['sweep']}|{budget}")
    rows = []
    if restart is not None and plain is not None and restart != plain:
        table = source.anytime(sel["sweep"], restart, plain, budget, sel["opt"])
        for r in table.itertuples():  # storage.anytime: the rule, and its interval over the test set and seeds
            rows.append([optimizer_label(r.optimizer, restarts=True), str(r.first_restart),
                         f"{pct(r.error)} [{pct(r.error_lo)}, {pct(r.error_hi)}]", r.plain_schedule,
                         "not reached" if r.censored else str(int(r.plain_epoch)),
                         f"{'≥ ' if r.censored else ''}{r.speedup:.1f}× [{r.speedup_lo:.1f}, {r.speedup_hi:.1f}]",
                         r.sources])
    header = ["warm restarts", "first restart after epoch", "best error then (95%)", "plain schedule",
              "plain reaches it at epoch", "speed-up (95%)", "noise"]
    return pagekit.View(
        figures={"anytime": fig},
        filenames={"anytime": pagekit.slug("anytime", sel["sweep"], f"T{budget}")},
        notes=notes,
        tables=[("Anytime performance at the first restart", header, rows)],
    )
