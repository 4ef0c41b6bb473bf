"""Building blocks shared by the pages: controls, a downloadable graph, tables, messages.

Every string shown here is passed to Dash as component text, which React renders as text: a
sweep called ``<img src=x onerror=alert(1)>`` is displayed, never interpreted. Nothing here uses
``dangerously_allow_html`` or Markdown.
"""

from __future__ import annotations

from collections.abc import Sequence

from dash import dcc, html

from dashboards.colorscale import COLOR_MODES
from dashboards.figkit import empty_figure, graph_config


def page(title: str, intro: str, controls: Sequence, body: Sequence, *, name: str) -> html.Div:
    """A page: heading, one line on what it shows, the controls, then the figures and tables."""
    return html.Div(
        [
            html.H1(title),
            html.P(intro, className="intro"),
            html.Div([c for c in controls if c is not None], className="controls"),
            *body,
            dcc.Store(id={"type": "qs", "page": name}),
        ],
        className=f"page page-{name}",
    )


def field(label: str, control, *, wide: bool = False) -> html.Div:
    return html.Div([html.Label(label, className="field-label"), control],
                    className="field field-wide" if wide else "field")


def colour_controls(name: str, sel: dict) -> list[html.Div]:
    """The colour-scale radio (``{name}-color``) and the log checkbox (``{name}-log``) of a heatmap page."""
    return [
        field("colour scale", dcc.RadioItems(
            id=f"{name}-color", options=[{"label": v, "value": k} for k, v in COLOR_MODES.items()],
            value=sel["color"], inline=True, className="radio")),
        field("", dcc.Checklist(id=f"{name}-log", options=[{"label": "log colour scale", "value": "1"}],
                                value=sel["log"], className="radio")),
    ]


def options(values: Sequence, labels=None) -> list[dict]:
    labels = labels or {}
    return [{"label": str(labels.get(v, v)), "value": v} for v in values]


def dropdown(id_: str, opts: list[dict], value, *, multi: bool = False, clearable: bool = False,
             placeholder: str | None = None) -> dcc.Dropdown:
    return dcc.Dropdown(id=id_, options=opts, value=value, multi=multi, clearable=clearable,
                        placeholder=placeholder, searchable=True)


def graph(name: str, filename: str = "", height: int = 420) -> dcc.Loading:
    """A dcc.Graph whose toolbar camera downloads PNG or SVG (see the header's switch)."""
    return dcc.Loading(
        dcc.Graph(id={"type": "figure", "name": name}, figure=empty_figure("loading…", height=height),
                  config=graph_config(filename or f"basin-{name}"), className="figure"),
        type="circle", delay_show=250,
    )


def notes(items: Sequence[str]) -> list:
    items = [i for i in items if i]
    return [html.Ul([html.Li(i) for i in items], className="notes")] if items else []


def message(text: str, kind: str = "info") -> html.Div:
    return html.Div(text, className=f"message message-{kind}", role="status")


def table(header: Sequence[str], rows: Sequence[Sequence], *, caption: str | None = None,
          numeric: Sequence[int] = ()) -> html.Table:
    """An HTML table of text cells (components allowed); ``numeric`` columns are right-aligned."""
    head = html.Thead(html.Tr([html.Th(h, className="num" if i in numeric else None) for i, h in enumerate(header)]))
    body = html.Tbody([
        html.Tr([html.Td(c, className="num" if i in numeric else None) for i, c in enumerate(row)]) for row in rows
    ])
    parts = ([html.Caption(caption)] if caption else []) + [head, body]
    return html.Table(parts, className="data")


def progress(done: int, total: int) -> html.Div:
    frac = done / total if total else 0.0
    return html.Div([html.Progress(value=str(done), max=str(max(total, 1))),
                     html.Span(f"{done} / {total} ({100 * frac:.0f}%)", className="progress-text")],
                    className="progress")
