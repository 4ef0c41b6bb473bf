"""The Dash app: a header with the pages, a router on the URL, and the JSON API on the same server.

``create_app(url)`` builds the app for one storage URL (opened read-only, lazily). Pages:
``/`` Sweeps, ``/basins`` (Figure 2), ``/schedules`` (Figure 1), ``/curves`` (Figure 3),
``/budgets`` (SuppFigure 3), ``/anytime`` (Figure 4).

The selection of a page lives in the URL's query string. Routing uses one ``dcc.Location``:
the router renders a page from (pathname, search); a page that changes its selection writes
it to a ``{"type": "qs"}`` store, and one callback pushes that into the address bar (a new
history entry, so Back works) and remembers it in ``qs-echo`` so the router does not render the
page again for a URL the page itself wrote. Back/forward and shared links re-render.
"""

from __future__ import annotations

import logging

import dash
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboards import api, pagekit
from dashboards import page_anytime, page_basins, page_budgets, page_curves, page_schedules, page_sweeps
from dashboards.data import Source
from dashboards.selection import carry, encode, parse
from dashboards.style import INDEX

log = logging.getLogger(__name__)

#: The pages in the navigation's order.
PAGES = (page_sweeps, page_basins, page_schedules, page_curves, page_budgets, page_anytime)
_BY_PATH = {p.PATH: p for p in PAGES}


def render(page, source: Source, query: dict):
    return page.layout(source, query) if hasattr(page, "layout") else pagekit.layout(page, source, query)


def not_found(pathname: str):
    return html.Div([html.H1("Not found"), html.P(f"There is no page {pathname}."),
                     dcc.Link("Back to the sweeps", href="/")], className="page")


def nav_links(pathname: str, search: str) -> list:
    keep = encode(carry(parse(search)))
    return [dcc.Link(p.TITLE, href=p.PATH + keep, className="active" if p.PATH == pathname else "")
            for p in PAGES]


def shell(source: Source) -> html.Div:
    return html.Div([
        dcc.Location(id="url", refresh=False),
        dcc.Store(id="qs-echo"),
        html.Header([
            dcc.Link("Basin", href="/", className="brand"),
            html.Nav(nav_links("/", ""), id="nav"),
            html.Span(f"{source.label} · read-only", className="storage",
                      title=f"storage {source.label}, opened read-only (a password is never shown)"),
            html.Div([html.Span("download figures as"),
                      dcc.RadioItems(id="img-format", options=[{"label": "PNG", "value": "png"},
                                                               {"label": "SVG", "value": "svg"}],
                                     value="png", inline=True, persistence=True, persistence_type="local",
                                     className="radio")], className="format"),
        ], className="top"),
        html.Main(id="page"),
    ])


def create_app(url: str | None = None, *, source: Source | None = None) -> dash.Dash:
    """The dashboard for the storage at ``url`` (default ``$BASIN_STORAGE``, else sqlite:///basin.db)."""
    source = source or Source(url)
    app = dash.Dash(
        __name__,
        title="Basin",
        update_title=None,
        index_string=INDEX,
        suppress_callback_exceptions=True,  # the pages' components come and go with the route
        serve_locally=True,  # every script from this server: works without internet
        enable_mcp=False,
        include_assets_files=False,
        on_error=lambda exc: log.exception("callback failed", exc_info=exc),
    )
    app.layout = shell(source)
    app.basin_source = source

    @app.callback(Output("page", "children"), Output("qs-echo", "data"),
                  Input("url", "pathname"), Input("url", "search"), State("qs-echo", "data"))
    def route(pathname, search, echo):
        search = search or ""
        if ctx.triggered_prop_ids and "url.pathname" not in ctx.triggered_prop_ids and search == (echo or ""):
            raise PreventUpdate  # the page itself wrote this query: it already shows it
        page = _BY_PATH.get(pathname or "/")
        if page is None:
            return not_found(pathname), search
        return render(page, source, parse(search)), search

    @app.callback(Output("url", "search"), Output("qs-echo", "data", allow_duplicate=True),
                  Input({"type": "qs", "page": ALL}, "data"), State("url", "search"), prevent_initial_call=True)
    def push_selection(states, current):
        state = next((s for s in states if s is not None), None)
        if state is None or state == (current or ""):
            raise PreventUpdate
        return state, state

    @app.callback(Output("nav", "children"), Input("url", "pathname"), Input("url", "search"))
    def navigation(pathname, search):
        return nav_links(pathname or "/", search or "")

    for page in PAGES:
        if hasattr(page, "register"):
            page.register(app, source)
        else:
            pagekit.register(app, source, page)
    api.register(app.server, source)
    return app
