"""Sweeps — every sweep in the database, its studies and their progress, refreshed while it runs.

Per sweep: grid points done (latest trial per point, as ``storage.list_sweeps`` counts them) of
the grid's size, failed and diverged counts, and each study's budgets and progress. A
``dcc.Interval`` re-reads every few seconds while any sweep is unfinished (slower once all are
done, to notice new ones).
"""

from __future__ import annotations

import datetime

from dash import Input, Output, dcc, html

import storage
from dashboards import components as ui
from dashboards.selection import encode
from dashboards.text import optimizer_label, schedule_label

NAME = "sweeps"
PATH = "/"
TITLE = "Sweeps"
INTRO = "Every sweep recorded in the database, with the progress of each study; refreshes on its own while a sweep runs."
FAST_MS, SLOW_MS = 5_000, 30_000


def _status(sp: storage.SweepProgress) -> tuple[str, str]:
    if sp.studies and all(s.adaptive for s in sp.studies):  # seeds only where the doubt is: no grid to fill
        return ("adaptive, with failures", "failed") if sp.n_failed else ("adaptive: seeds where the doubt is", "done")
    if sp.n_done < sp.grid_size:
        return "running or unfinished", "running"
    if sp.n_failed:
        return "finished, with failures", "failed"
    return "finished", "done"


def _sweep_card(sp: storage.SweepProgress) -> html.Section:
    status, kind = _status(sp)
    first = sp.studies[0] if sp.studies else None
    what = " / ".join(x for x in (first.dataset, first.model) if x) if first else ""
    if first is not None:  # what was swept: a user can compare decay = all against matrices, error against loss
        what += f" · metric {first.metric} · decay {first.decay}"
    links = html.Span([dcc.Link(label, href=path + encode({"sweep": sp.sweep}), className="chip")
                       for label, path in (("basins", "/basins"), ("schedules", "/schedules"), ("curves", "/curves"),
                                           ("budgets", "/budgets"), ("anytime", "/anytime"))], className="chips")
    header = html.Div([
        html.H2(dcc.Link(sp.sweep, href="/basins" + encode({"sweep": sp.sweep}))),
        html.Span(what, className="muted"),
        html.Span(status, className=f"pill pill-{kind}"),
        links,
    ], className="card-head")
    summary = html.Div([
        ui.progress(sp.n_done, sp.grid_size),
        html.Span(f"{sp.n_complete} complete · {sp.n_failed} failed · {sp.n_diverged} diverged", className="muted"),
    ], className="card-summary")
    rows = []
    for s in sp.studies:
        rows.append([
            s.study, optimizer_label(s.optimizer), schedule_label(s.schedule),
            ", ".join(str(b) for b in s.budgets) or "–",
            ui.progress(s.n_done, s.grid_size), str(s.n_failed), str(s.n_diverged), str(s.n_trials),
        ])
    studies = ui.table(["study", "optimizer", "schedule", "budgets", "grid points done / total", "failed",
                       "diverged", "trials recorded"], rows, numeric=(5, 6, 7))
    return html.Section([header, summary, studies], className="card")


def render(source) -> tuple[list, bool]:
    """The sweep cards (or a message), and whether a sweep is still unfinished."""
    try:
        sweeps = source.sweeps()
    except storage.StorageError as exc:
        return [ui.message(str(exc), "error")], True
    if not sweeps:
        return [ui.message(f"No sweep recorded in {source.label} yet: run `basin sweep SPEC.toml --storage URL`; "
                          "this page refreshes on its own.")], True
    running = any(sp.n_done < sp.grid_size for sp in sweeps)
    return [_sweep_card(sp) for sp in sweeps], running


def layout(source, query: dict) -> html.Div:
    cards, running = render(source)
    return html.Div([
        html.H1(TITLE),
        html.P(INTRO, className="intro"),
        html.Div(id="sweeps-updated", className="muted", children=_stamp()),
        html.Div(cards, id="sweeps-list"),
        dcc.Interval(id="sweeps-interval", interval=FAST_MS if running else SLOW_MS),
    ], className="page page-sweeps")


def _stamp() -> str:
    return "updated " + datetime.datetime.now().strftime("%H:%M:%S")


def register(app, source) -> None:
    @app.callback(Output("sweeps-list", "children"), Output("sweeps-updated", "children"),
                  Output("sweeps-interval", "interval"), Input("sweeps-interval", "n_intervals"),
                  prevent_initial_call=True)
    def refresh(_n):
        cards, running = render(source)
        return cards, _stamp(), FAST_MS if running else SLOW_MS
