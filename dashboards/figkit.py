"""What every figure shares: the subplot grid, the common layout, an empty figure, JSON-ready values,
the epoch axis and restart marks of Figures 3 and 4, and dcc.Graph's config.

Figures are plain dicts in Plotly's JSON schema (what ``go.Figure.to_plotly_json()`` gives and
what dcc.Graph and ``plotly.io.to_html`` take): building them through graph_objects validates
every property and costs ~0.3 s for four heatmaps, more than the database read. The subplot
grid itself comes from Plotly's ``make_subplots`` (cached per shape); the tests check every
figure against Plotly's schema with ``go.Figure(fig)``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
from plotly.subplots import make_subplots

from dashboards.style import FONT, plotly_template
from dashboards.text import esc

#: Trace ``meta`` tag of the restart markers of Figures 3 and 4 (tests find them by it).
RESTART = "restart"


def graph_config(filename: str, fmt: str = "png") -> dict:
    """dcc.Graph / Plotly config: the toolbar's camera downloads ``filename``.png or .svg."""
    fmt = fmt if fmt in ("png", "svg") else "png"
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", filename).strip("_") or "basin"
    return {
        "displaylogo": False,
        "responsive": True,
        "toImageButtonOptions": {"format": fmt, "filename": safe[:120], "scale": 2 if fmt == "png" else 1},
        "modeBarButtonsToRemove": ["select2d", "lasso2d"],
    }


# --- the subplot grid and the layout --------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _skeleton(rows: int, cols: int, hspace: float, vspace: float) -> str:
    """Plotly's own subplot grid (axes domains, title slots) for this shape, as JSON."""
    titles = [f"#{k}" for k in range(rows * cols)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=hspace,
                        vertical_spacing=vspace)
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def subplots(rows: int, cols: int, titles: Sequence[str], *, hspace: float, vspace: float) -> dict:
    """A figure dict with the subplot grid and ``titles`` (row-major, escaped; "" for none)."""
    layout = json.loads(_skeleton(rows, cols, round(hspace, 4), round(vspace, 4)))
    notes = []
    for a in layout.get("annotations", []):
        k = int(a["text"][1:])
        if k < len(titles) and titles[k]:
            notes.append({**a, "text": titles[k], "font": {"size": 13}})
    layout["annotations"] = notes
    return {"data": [], "layout": layout}


def axis_names(row: int, col: int, cols: int) -> tuple[str, str]:
    """Trace references ("x3", "y3") of subplot (row, col) in a make_subplots grid."""
    n = (row - 1) * cols + col
    return ("x", "y") if n == 1 else (f"x{n}", f"y{n}")


def layout_key(ref: str) -> str:
    """The layout key of a trace's axis reference: "x3" → "xaxis3"."""
    return ref[0] + "axis" + ref[1:]


def finish(fig: dict, *, title: str = "", height: int, top: int | None = None, bottom: int = 110,
           legend: dict | None = None, uirevision: str | None = None, **extra) -> dict:
    """The common layout: template, font, height, margins, legend under the plot, title, uirevision."""
    layout = fig["layout"]
    layout.update(
        template=plotly_template(),
        font=FONT,
        height=height,
        margin=dict(l=70, r=40, t=top if top is not None else (100 if title else 60), b=bottom),
        legend=legend or dict(orientation="h", x=0, y=0.01, yanchor="bottom", yref="container",
                              bgcolor="rgba(0,0,0,0)"),
        **extra,
    )
    if title:
        layout["title"] = dict(text=title, x=0.01, xanchor="left")
    if uirevision is not None:
        layout["uirevision"] = uirevision
    return fig


def empty_figure(message: str, height: int = 360) -> dict:
    """A blank figure carrying one line of text (no data, a missing selection, an error)."""
    fig = {"data": [], "layout": {
        "annotations": [dict(text=esc(message), showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                             font=dict(size=14, color="#555"))],
        "xaxis": {"visible": False}, "yaxis": {"visible": False}}}
    return finish(fig, height=height, top=30, bottom=20)


def finite_list(values) -> list:
    """JSON-ready list: NaN/inf → None, numpy scalars → float."""
    out = []
    for v in np.asarray(values, float).tolist():
        out.append(v if math.isfinite(v) else None)
    return out


def nice_step(span: float, n: int = 5) -> float:
    """A 1-2-2.5-5 step that cuts ``span`` into about ``n`` parts."""
    raw = span / max(n, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


# --- per-epoch figures (Figures 3 and 4) ----------------------------------------------------------


def epoch_axis(series: Sequence[pd.Series]) -> dict:
    """An epoch axis with whole-number ticks, up to the last epoch of any of the epoch-indexed ``series``."""
    last = max((int(s.index.max()) for s in series if len(s)), default=1)
    return dict(title=dict(text="epoch"), mirror=True, tick0=0, dtick=max(1, int(nice_step(last, 8))),
                range=[0.8, last + 0.2])


def restart_marks(series: pd.Series, restarts: Sequence[int], *, include_last: bool) -> list[int]:
    """The epochs of ``restarts`` that ``series`` has, without its last epoch unless ``include_last``."""
    if series.empty:
        return []
    last = int(series.index.max())
    return [e for e in sorted(restarts) if (e < last or (include_last and e == last)) and e in series.index]


def restart_markers(series: pd.Series, marks: list[int], *, color: str, size: int, first: bool, xref: str,
                    yref: str, hovertemplate: str) -> dict:
    """The ◆ trace of the epochs that end a restart period (in the legend once: ``first``)."""
    return dict(type="scatter", x=marks, y=finite_list(series.loc[marks]), mode="markers",
                marker=dict(symbol="diamond", size=size, color=color, line=dict(color="black", width=1)),
                name="end of a restart period", legendgroup=RESTART, meta=RESTART, showlegend=first,
                xaxis=xref, yaxis=yref, hovertemplate=hovertemplate)
