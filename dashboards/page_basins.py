"""Basins — the paper's Figure 2: one heatmap per optimizer over (α, λ_norm), shared colour scale.

Default: SGD, SGDW, Adam, AdamW of the first sweep, cosine annealing, the longest budget, in a
2×2 grid (L2 on the left, decoupled on the right). Another sweep can be shown beside the first
(one column per sweep), and any optimizer of the sweep can be chosen — AdamW next to the
lr-coupled ``adamw-torch``, say. Each panel carries storage's coupling fit (``storage.panel.answer``):
the slope of λ_norm*(α) with its 95% interval — ≈ −1 on a diagonal (coupled) basin, ≈ 0 on an
axis-aligned (decoupled) one — drawn dashed inside the band of the fitted rows' λ_norm* intervals,
and the plausible optima (cells not distinguishably worse than the best) outlined.
"""

from __future__ import annotations

from dash import dcc, html

from dashboards import components as ui
from dashboards import pagekit
from dashboards.colorscale import COLOR_MODES, ColorSpec
from dashboards.fig_heatmaps import heatmaps, panel_title
from dashboards.selection import encode, flag, integer, many, one, pick, pick_budget, pick_many
from dashboards.summaries import evidence_notes, panel_notes, panel_rows
from dashboards.text import esc, optimizer_label, schedule_label

NAME = "basins"
PATH = "/basins"
TITLE = "Basins"
INTRO = ("Figure 2: mean final test error over seeds for every (α, λ_norm) of each optimizer. Top-10 settings "
         "circled, the best starred, the plausible optima (not distinguishably worse than the best) in squares, "
         "diverged cells crossed; the solid line is the fitted λ_norm*(α) of the basin's rows (◆ each row's "
         "λ_norm*), dashed the quadratic surface's valley, dotted the over-regularisation edge, each in the band "
         "of its 95% intervals — a diagonal (slope ≈ −1) means α and λ are coupled, a flat line (≈ 0) that they "
         "are decoupled. Hover a cell for its error with its 95% interval and P(best).")
FIGURES = ("heatmaps",)
HEIGHTS = {"heatmaps": 820}
DYNAMIC = ("sweep", "vs", "schedule", "budget", "opt")
STATIC = ("color", "log")

PRESETS = (
    ("Figure 2: SGD, SGDW, Adam, AdamW", ("sgd", "sgdw", "adam", "adamw")),
    ("AdamW vs adamw-torch (lr-coupled)", ("adamw", "adamw-torch")),
    ("Adam vs AdamW", ("adam", "adamw")),
)


def resolve(index: dict, q: dict) -> dict:
    sweep = pick(list(index), one(q, "sweep"))
    info = index[sweep]
    schedule = pick(list(info.schedules), one(q, "schedule"), "cosine")
    available = info.optimizers_for(schedule)
    opts = pick_many(available, many(q, "opt"))
    vs = one(q, "vs")
    vs = vs if vs in index and vs != sweep else None
    budgets = info.budgets_for([schedule], opts)
    if vs is not None:
        budgets = sorted(set(budgets) | set(index[vs].budgets_for([schedule], opts)))
    return {
        "sweep": sweep, "vs": vs, "schedule": schedule, "budget": pick_budget(budgets, integer(q, "budget"), info.default_budget([schedule], opts)),
        "opt": opts, "color": pick(list(COLOR_MODES), one(q, "color")), "log": ["1"] if flag(q, "log") else [],
    }


def options(index: dict, sel: dict) -> dict:
    info = index[sel["sweep"]]
    budgets = info.budgets_for([sel["schedule"]], sel["opt"])
    if sel["vs"] is not None:
        budgets = sorted(set(budgets) | set(index[sel["vs"]].budgets_for([sel["schedule"]], sel["opt"])))
    return {
        "sweep": ui.options(list(index)),
        "vs": ui.options([s for s in index if s != sel["sweep"]]),
        "schedule": [{"label": schedule_label(s), "value": s} for s in info.schedules],
        "budget": [{"label": f"T = {b} epochs", "value": b} for b in budgets],
        "opt": [{"label": optimizer_label(o), "value": o} for o in info.optimizers_for(sel["schedule"])],
    }


def params(sel: dict) -> dict:
    return {k: sel[k] for k in ("sweep", "vs", "schedule", "budget", "opt", "color", "log")}


def controls(index: dict, sel: dict, opts: dict) -> list:
    presets = [dcc.Link(label, href=PATH + encode({**params(sel), "opt": list(names)}), className="preset")
               for label, names in PRESETS if all(n in index[sel["sweep"]].optimizers for n in names)]
    return [
        ui.field("sweep", ui.dropdown(f"{NAME}-sweep", opts["sweep"], sel["sweep"])),
        ui.field("beside it (optional)", ui.dropdown(f"{NAME}-vs", opts["vs"], sel["vs"], clearable=True,
                                                   placeholder="another sweep")),
        ui.field("schedule", ui.dropdown(f"{NAME}-schedule", opts["schedule"], sel["schedule"])),
        ui.field("budget", ui.dropdown(f"{NAME}-budget", opts["budget"], sel["budget"])),
        ui.field("optimizers", ui.dropdown(f"{NAME}-opt", opts["opt"], sel["opt"], multi=True), wide=True),
        *ui.colour_controls(NAME, sel),
        ui.field("presets", html.Div(presets, className="presets")) if presets else None,
    ]


def arrange(panels: list, n_sweeps: int) -> list[list]:
    """Rows of panels: one column per sweep when comparing; else 2×2 for four (Figure 2), one row for ≤ 3."""
    if n_sweeps > 1:
        per = len(panels) // n_sweeps
        return [[panels[s * per + i] for s in range(n_sweeps)] for i in range(per)]
    n = len(panels)
    cols = n if n <= 3 else 2 if n == 4 else 3
    return [panels[i:i + cols] for i in range(0, n, cols)]


def build(source, sel: dict) -> pagekit.View:
    sweeps = [sel["sweep"]] + ([sel["vs"]] if sel["vs"] else [])
    panels = []
    for s in sweeps:
        panels.extend(source.panels(s, sel["schedule"], sel["budget"], sel["opt"]).values())
    spec = ColorSpec(mode=sel["color"], log=bool(sel["log"]))
    compare = len(sweeps) > 1
    title = (" vs ".join(f"<b>{esc(s)}</b>" for s in sweeps)
             + f" · {esc(schedule_label(sel['schedule']))} · T = {sel['budget']} epochs")
    info = source.index().get(sel["sweep"])
    if info is not None and info.dataset:
        title += f" · {esc(info.dataset)} / {esc(info.model)}"
    fig = heatmaps(arrange(panels, len(sweeps)), color=spec, title=title,
                   label=lambda p: panel_title(p, sweep=compare),
                   uirevision=f"{'|'.join(sweeps)}|{sel['schedule']}|{sel['budget']}")
    header, rows = panel_rows(panels, with_sweep=compare)
    return pagekit.View(
        figures={"heatmaps": fig},
        filenames={"heatmaps": pagekit.slug("basins", *sweeps, sel["schedule"], f"T{sel['budget']}")},
        notes=evidence_notes(panels) + panel_notes(panels, with_sweep=compare),
        tables=[("Best cell and coupling of each panel", header, rows)],
    )

