"""What every figure page does: one callback from its controls to its figures, tables and URL.

A page module (``page_*.py``) declares its controls and implements four functions:

``resolve(index, query) -> sel``   a valid selection from a (possibly stale or hand-edited) query
``options(index, sel) -> {key: [...]}``  the choices of each dynamic dropdown
``params(sel) -> {key: value}``     the selection as URL parameters
``build(source, sel) -> View``      the figures, notes and tables

:func:`register` wires one callback per page: any control change re-resolves the selection
(changing the sweep may change which schedules and budgets exist), rebuilds the view from the
cached storage answers, and — when a person changed something — writes the selection into the
URL (``app.py`` pushes it to the address bar). The same ``build`` makes the offline report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType

from dash import Input, Output, ctx, html, no_update

import storage
from dashboards import components as ui
from dashboards.figkit import empty_figure, graph_config
from dashboards.selection import encode

log = logging.getLogger(__name__)


@dataclass
class View:
    """What a page shows for one selection."""

    figures: dict[str, dict]  # name → figure dict
    filenames: dict[str, str] = field(default_factory=dict)  # name → download file name (no suffix)
    notes: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[str]]]] = field(default_factory=list)  # (caption, header, rows)
    message: str = ""
    #: choices and values only known after reading (e.g. the settings of the learning-curves page)
    options: dict[str, list] = field(default_factory=dict)
    values: dict[str, object] = field(default_factory=dict)


def error_view(page: ModuleType, text: str) -> View:
    return View(figures={name: empty_figure(text) for name in page.FIGURES}, message=text)


def build_safely(page: ModuleType, source, sel: dict) -> View:
    """``page.build`` with storage errors shown as a message (and anything else logged)."""
    try:
        return page.build(source, sel)
    except storage.StorageError as exc:
        return error_view(page, str(exc))
    except Exception:  # noqa: BLE001 - a page must render, whatever happened
        log.exception("building %s failed for %r", page.NAME, sel)
        return error_view(page, "internal error while building this view (see the server log)")


def details(view: View) -> list:
    """Notes and tables under the figures."""
    out = []
    if view.message:
        out.append(ui.message(view.message, "error"))
    out += ui.notes(view.notes)
    for caption, header, rows in view.tables:
        if rows:
            out.append(ui.table(header, rows, caption=caption))
    return out


def index_or_error(source, query: dict | None = None) -> tuple[dict, str]:
    """The sweep index (fresh if it lacks the sweep the query names), or ({}, why not)."""
    wanted = (query or {}).get("sweep") or [None]
    try:
        index = source.index(require=wanted[0])
    except storage.StorageError as exc:
        return {}, str(exc)
    if not index:
        return {}, (f"No sweep recorded in {source.label} yet: run `basin sweep SPEC.toml --storage URL`, "
                    "and it appears here as trials finish.")
    return index, ""


def query_of(keys: Sequence[str], values: Sequence) -> dict[str, list[str]]:
    """Control values → the query dict that :func:`dashboards.selection.parse` would give."""
    q: dict[str, list[str]] = {}
    for key, value in zip(keys, values):
        if value is None:
            continue
        items = value if isinstance(value, (list, tuple)) else [value]
        q[key] = [str(v) for v in items if v is not None and v != ""]
    return q


def layout(page: ModuleType, source, query: dict) -> html.Div:
    """The page for ``query`` (controls set to the resolved selection; figures fill in by callback)."""
    index, why = index_or_error(source, query)
    if not index:
        return ui.page(page.TITLE, page.INTRO, [], [ui.message(why, "info")], name=page.NAME)
    sel = page.resolve(index, query)
    opts = page.options(index, sel)
    if hasattr(page, "layout_options"):  # choices that need a read (cached: the first callback reuses it)
        try:
            opts.update(page.layout_options(source, sel))
        except storage.StorageError:
            pass  # the callback shows the error
    body = [ui.graph(f"{page.NAME}-{name}", height=page.HEIGHTS.get(name, 420)) for name in page.FIGURES]
    body.append(html.Div(id=f"{page.NAME}-details", className="details"))
    return ui.page(page.TITLE, page.INTRO, page.controls(index, sel, opts), body, name=page.NAME)


def register(app, source, page: ModuleType) -> None:
    """The page's one callback (see the module docstring)."""
    name = page.NAME
    dynamic: list[str] = list(page.DYNAMIC)  # dropdowns whose options depend on the selection
    static: list[str] = list(page.STATIC)  # radio items / checklists with fixed options
    keys = dynamic + static
    outputs = (
        [Output(f"{name}-{k}", "options") for k in dynamic]
        + [Output(f"{name}-{k}", "value") for k in keys]
        + [Output({"type": "figure", "name": f"{name}-{f}"}, "figure") for f in page.FIGURES]
        + [Output({"type": "figure", "name": f"{name}-{f}"}, "config") for f in page.FIGURES]
        + [Output(f"{name}-details", "children"), Output({"type": "qs", "page": name}, "data")]
    )
    inputs = [Input(f"{name}-{k}", "value") for k in keys] + [Input("img-format", "value")]

    def update(*values):
        fmt = values[-1]
        query = query_of(keys, values[:-1])
        index, why = index_or_error(source, query)
        if not index:
            figs = [empty_figure(why) for _ in page.FIGURES]
            return ([[] for _ in dynamic] + [no_update for _ in keys] + figs
                    + [graph_config(f"basin-{name}", fmt) for _ in page.FIGURES] + [[ui.message(why)], no_update])
        sel = page.resolve(index, query)
        opts = page.options(index, sel)
        view = build_safely(page, source, sel)
        opts.update(view.options)
        sel.update(view.values)
        values_out = [sel.get(k) for k in keys]
        figs = [view.figures.get(f) or empty_figure("nothing to show") for f in page.FIGURES]
        configs = [graph_config(view.filenames.get(f, f"basin-{name}-{f}"), fmt) for f in page.FIGURES]
        person = ctx.triggered_id is not None and ctx.triggered_id != "img-format"
        qs = encode(page.params(sel)) if person else no_update
        return [opts.get(k, []) for k in dynamic] + values_out + figs + configs + [details(view), qs]

    app.callback(*outputs, *inputs)(update)


def slug(*parts) -> str:
    """A file name from selection parts: basin-basins-fig2-cosine-T100."""
    return "-".join(str(p) for p in parts if p not in (None, "", []))

