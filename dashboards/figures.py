"""The paper's figures as Plotly figure dicts, from panels and curves (pure: no Dash, no database).

* :func:`heatmaps` — Figures 1 and 2 and SuppFigure 3's grids: one heatmap per panel on log₂
  axes with 2^k labels, every panel on one shared colour axis, top-10 cells circled in black,
  the best starred, diverged cells crossed, the fitted coupling line dashed.
* :func:`budget_lines` — SuppFigure 3's message: λ_norm* and raw λ* against the budget T.
* :func:`learning_curves` — Figure 3: train loss and test error per epoch, restarts marked, and
  final test error against final train loss.
* :func:`anytime` — Figure 4: best-so-far test error per epoch, warm restarts against plain.

Figures are plain dicts in Plotly's JSON schema (what ``go.Figure.to_plotly_json()`` gives and
what dcc.Graph and ``plotly.io.to_html`` take): building them through graph_objects validates
every property and costs ~0.3 s for four heatmaps, more than the database read. The subplot
grid itself comes from Plotly's ``make_subplots`` (cached per shape); the tests check every
figure against Plotly's schema with ``go.Figure(fig)``.

The colour scale must not be washed out by diverged runs (recorded at chance error 1 − 1/C):
by default it is clipped at the 90th percentile of the non-diverged cells, or capped at chance,
and the colour bar says which (:class:`ColorSpec`). Every recorded name is escaped with
:func:`dashboards.text.esc` before it reaches a figure.
"""

from __future__ import annotations

import functools
import json
import math
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.colors
import plotly.io as pio
from plotly.subplots import make_subplots

from dashboards.panels import Panel, coupling_line
from dashboards.text import axis_labels, esc, num, optimizer_label, pct, signed, value_label

#: Low error light, high error dark: black circles stay visible on the basin.
COLORSCALE = plotly.colors.get_colorscale("Viridis_r")
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=12)
OPTIMIZER_COLORS = {
    "sgd": "#1f77b4",
    "sgdw": "#17becf",
    "adam": "#d62728",
    "adamw": "#ff7f0e",
    "adamw-torch": "#9467bd",
}
_EXTRA_COLORS = ("#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
COLOR_MODES = {
    "quantile": "clip at the 90th percentile of non-diverged cells",
    "chance": "cap at chance level (1 − 1/C)",
    "full": "full range",
}
#: Trace ``meta`` tags of the overlay markers (tests and the browser check find them by these).
TOP10, BEST, DIVERGED, DIVERGED_SOME, COUPLING, RESTART = (
    "top-10", "best", "diverged", "diverged-some", "coupling", "restart")


@functools.lru_cache(maxsize=1)
def _template() -> str:
    return json.dumps(pio.templates["simple_white"].to_plotly_json())


def optimizer_color(name: str) -> str:
    if name in OPTIMIZER_COLORS:
        return OPTIMIZER_COLORS[name]
    return _EXTRA_COLORS[sum(map(ord, name)) % len(_EXTRA_COLORS)]


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


# --- figure scaffolding -------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def _skeleton(rows: int, cols: int, hspace: float, vspace: float) -> str:
    """Plotly's own subplot grid (axes domains, title slots) for this shape, as JSON."""
    titles = [f"#{k}" for k in range(rows * cols)]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=hspace,
                        vertical_spacing=vspace)
    layout = fig.layout.to_plotly_json()
    layout.pop("template", None)
    return json.dumps(layout)


def axis_names(row: int, col: int, cols: int) -> tuple[str, str]:
    """Trace references ("x3", "y3") of subplot (row, col) in a make_subplots grid."""
    n = (row - 1) * cols + col
    return ("x", "y") if n == 1 else (f"x{n}", f"y{n}")


def _layout_key(ref: str) -> str:
    return ref[0] + "axis" + ref[1:]


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


def _finish(fig: dict, *, title: str = "", height: int, top: int | None = None, bottom: int = 110,
            legend: dict | None = None, uirevision: str | None = None, **extra) -> dict:
    layout = fig["layout"]
    layout.update(
        template=json.loads(_template()),
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
    return _finish(fig, height=height, top=30, bottom=20)


def _list(values) -> list:
    """JSON-ready list: NaN/inf → None, numpy scalars → float."""
    out = []
    for v in np.asarray(values, float).tolist():
        out.append(v if math.isfinite(v) else None)
    return out


# --- colour -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ColorSpec:
    """How errors map to colour: ``mode`` (see :data:`COLOR_MODES`) and a log option."""

    mode: str = "quantile"
    quantile: float = 0.9
    log: bool = False


@dataclass(frozen=True)
class ColorRange:
    lo: float
    hi: float
    log: bool
    clipped: bool  # some cell lies above ``hi`` and shows the top colour
    note: str

    def transform(self, values) -> np.ndarray:
        values = np.asarray(values, float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.log10(np.clip(values, 1e-4, None)) if self.log else values

    def coloraxis(self) -> dict:
        lo, hi = (math.log10(v) for v in (self.lo, self.hi)) if self.log else (self.lo, self.hi)
        ticks = _ticks(self.lo, self.hi, self.log)
        step = min((b - a for a, b in zip(ticks, ticks[1:])), default=self.hi - self.lo) or 1.0
        digits = int(min(3, max(0, -math.floor(math.log10(100 * step)))))
        text = [pct(t, digits) for t in ticks]
        if self.clipped:
            ticks.append(self.hi)
            text.append("≥" + pct(self.hi, max(digits, 1)))
        vals = [math.log10(t) for t in ticks] if self.log else ticks
        title = "mean test error" + (" (log scale)" if self.log else "") + f"<br><sub>{esc(self.note)}</sub>"
        return dict(
            colorscale=COLORSCALE, cmin=lo, cmax=hi,
            colorbar=dict(title=dict(text=title, side="right"), tickvals=vals, ticktext=text, len=0.9,
                          thickness=14, outlinewidth=0),
        )


def _nice_step(span: float, n: int = 5) -> float:
    raw = span / max(n, 1)
    if raw <= 0:
        return 1.0
    mag = 10 ** math.floor(math.log10(raw))
    return next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Colour-bar ticks inside [lo, hi): 1-2-5 decades on a log scale, a nice step otherwise."""
    ticks: list[float] = []
    if log:
        ticks = [m * 10.0**e for e in range(-4, 1) for m in (1, 2, 5) if lo <= m * 10.0**e < hi]
    if len(ticks) < 3:
        step = _nice_step(hi - lo)
        start = math.ceil(lo / step - 1e-9) * step
        ticks = [float(t) for t in np.arange(start, hi - 1e-12, step) if t > 0 or not log]
    # keep the top label (≥ hi) readable
    return [t for t in ticks if hi - t > 0.06 * (hi - lo)] or ticks[:1]


def color_range(panels: Sequence[Panel], spec: ColorSpec) -> ColorRange | None:
    """The shared colour range of ``panels``; None when no cell has data."""
    grids = [p.grid for p in panels if p.has_data]
    if not grids:
        return None
    values = np.concatenate([g["test_error"].to_numpy(float) for g in grids])
    diverged = np.concatenate([g["diverged_all"].to_numpy(bool) for g in grids])
    finite = np.isfinite(values)
    values, diverged = values[finite], diverged[finite]
    lo, top = float(values.min()), float(values.max())
    ok = values[~diverged]
    chance = [p.chance for p in panels if p.chance is not None]
    if spec.mode == "chance" and chance:
        hi = max(chance)
        note = f"capped at chance level {pct(hi, 1)}"
    elif spec.mode == "full":
        hi = top
        note = "full range of the cells"
    else:
        q = float(spec.quantile)
        hi = float(np.quantile(ok, q)) if ok.size else top
        note = f"clipped at the {q * 100:.0f}th percentile of non-diverged cells ({pct(hi, 1)})"
    if spec.log:
        lo = max(lo, 1e-4)
    if not hi > lo:
        hi = lo + max(1e-3, 0.05 * lo)
    if spec.log and not hi / lo > 1.05:
        hi = lo * 1.05
    note += "; × = every seed diverged"
    return ColorRange(lo=lo, hi=hi, log=spec.log, clipped=bool(top > hi + 1e-12), note=note)


# --- heatmaps -----------------------------------------------------------------------------------


def panel_title(p: Panel, *, sweep: bool = False, schedule: bool = False, budget: bool = False) -> str:
    """``<b>AdamW</b>`` plus the parts asked for, and the coupling fit on a second line (escaped)."""
    head = [f"<b>{esc(optimizer_label(p.optimizer))}</b>"]
    if sweep:
        head.append(esc(p.sweep))
    if schedule:
        head.append(esc(p.schedule))
    if budget and p.budget is not None:
        head.append(f"T={p.budget}")
    c = p.coupling
    if c is None:
        sub = ""
    elif c.slope is not None:
        ci = f" [{signed(c.slope_ci[0])}, {signed(c.slope_ci[1])}]" if c.slope_ci else ""
        sub = f"slope {signed(c.slope)}{ci} · {esc(c.verdict)}"
    else:
        sub = f"slope: {esc(c.verdict)}"
    return " · ".join(head) + (f"<br><sub>{sub}</sub>" if sub else "")


def _labelled(name: str, value: float) -> str:
    label = value_label(value)
    return f"{name} = {label}" + ("" if label == num(value) else f" = {num(value)}")


def _hover(head: str, r) -> str:
    lines = [head, _labelled("α", r.lr), _labelled("λ_norm", r.wd_norm)]
    if r.n_seeds == 0:
        if pd.notna(r.wd):
            lines.append(f"raw λ = {num(r.wd)}")
        lines.append(f"{r.n_failed} failed" if r.n_failed else "no finished trial yet")
        return "<br>".join(lines)
    lines.append(f"raw λ = {num(r.wd)}")
    std = f" ± {pct(r.test_error_std)}" if pd.notna(r.test_error_std) else ""
    lines.append(f"test error <b>{pct(r.test_error)}</b>{std} (mean of {r.n_seeds} seed{'s' if r.n_seeds != 1 else ''})")
    extra = []
    if pd.notna(r.rank):
        extra.append(f"rank {int(r.rank)}" + (" · best" if r.best else " · top-10" if r.top10 else ""))
    if r.n_diverged:
        extra.append(f"{r.n_diverged} of {r.n_seeds} diverged")
    if r.n_failed:
        extra.append(f"{r.n_failed} failed")
    if extra:
        lines.append(" · ".join(extra))
    return "<br>".join(lines)


def _y_values(grid: pd.DataFrame, y: str) -> dict[float, float]:
    """wd_norm → y coordinate value: λ_norm itself, or the raw λ of that row."""
    wds = sorted(grid["wd_norm"].unique())
    if y != "wd":
        return {w: w for w in wds}
    ratio = (grid["wd"] / grid["wd_norm"]).replace([np.inf, -np.inf], np.nan)
    default = float(ratio.median()) if ratio.notna().any() else 1.0
    by_row = grid.assign(_r=ratio).groupby("wd_norm")["_r"].median()
    return {w: w * (float(by_row.get(w)) if pd.notna(by_row.get(w)) else default) for w in wds}


def _edges(values: np.ndarray) -> list[float]:
    if len(values) == 1:
        return [float(values[0]) - 0.5, float(values[0]) + 0.5]
    return [float(values[0] - (values[1] - values[0]) / 2), float(values[-1] + (values[-1] - values[-2]) / 2)]


def heatmaps(
    rows: Sequence[Sequence[Panel | None]],
    *,
    color: ColorSpec = ColorSpec(),
    title: str = "",
    y: str = "wd_norm",
    label: Callable[[Panel], str] = panel_title,
    show_coupling: bool = True,
    row_height: int = 340,
    uirevision: str | None = None,
) -> dict:
    """A grid of heatmaps, one per panel (None leaves a hole), on one shared colour axis.

    x = α and y = λ_norm (or raw λ with ``y="wd"``) on log₂ axes; colour = mean final test error
    over seeds; top-10 circled, best starred, diverged crossed, the coupling fit dashed.
    ``title`` and ``label`` must give escaped text (see :func:`panel_title`).
    """
    nrows = max(len(rows), 1)
    ncols = max((len(r) for r in rows), default=1) or 1
    grid_rows = [list(r) + [None] * (ncols - len(r)) for r in rows] or [[None]]
    flat = [p for r in grid_rows for p in r]
    fig = subplots(nrows, ncols, [label(p) if p is not None else "" for p in flat],
                   hspace=min(0.1, 0.5 / ncols), vspace=min(0.16, 0.6 / nrows))
    crange = color_range([p for p in flat if p is not None], color)
    shown: set[str] = set()

    def first(kind: str) -> bool:
        new = kind not in shown
        shown.add(kind)
        return new

    for i, row in enumerate(grid_rows, 1):
        for j, p in enumerate(row, 1):
            xref, yref = axis_names(i, j, ncols)
            if p is None or not p.has_data or crange is None:
                xaxis, yaxis = fig["layout"][_layout_key(xref)], fig["layout"][_layout_key(yref)]
                xaxis.update(visible=False)
                yaxis.update(visible=False)
                if p is not None:  # paper coordinates: Plotly does not draw notes on a hidden axis
                    fig["layout"]["annotations"].append(dict(
                        text="<br>".join(esc(line) for n in p.notes for line in textwrap.wrap(n, 32)) or "no data",
                        showarrow=False,
                        xref="paper", yref="paper",
                        x=sum(xaxis["domain"]) / 2, y=sum(yaxis["domain"]) / 2, font=dict(color="#777")))
                continue
            _add_panel(fig, p, xref, yref, crange, y, show_coupling, first, bottom=i == nrows, left=j == 1)
    if crange is not None:
        fig["layout"]["coloraxis"] = crange.coloraxis()
    return _finish(fig, title=title, height=nrows * row_height + 170, top=110 if title else 70, bottom=110,
                   legend=dict(orientation="h", x=0, y=0.01, yanchor="bottom", yref="container",
                               bgcolor="rgba(0,0,0,0)"),
                   uirevision=uirevision, plot_bgcolor="#f3f3f3")


def _add_panel(fig: dict, p: Panel, xref: str, yref: str, crange: ColorRange, y: str, show_coupling: bool,
               first, *, bottom: bool, left: bool) -> None:
    g = p.grid
    lrs = np.array(sorted(g["lr"].unique()), float)
    ymap = _y_values(g, y)
    wds = np.array(sorted(ymap), float)
    xs, ys = np.log2(lrs), np.log2([ymap[w] for w in wds])
    ix = {v: k for k, v in enumerate(lrs)}
    iy = {v: k for k, v in enumerate(wds)}
    z = np.full((len(wds), len(lrs)), np.nan)
    text = [[""] * len(lrs) for _ in wds]
    head = f"<b>{esc(optimizer_label(p.optimizer))}</b> · {esc(p.schedule)} · T={p.budget}"
    for r in g.itertuples(index=False):
        z[iy[r.wd_norm], ix[r.lr]] = r.test_error
        text[iy[r.wd_norm]][ix[r.lr]] = _hover(head, r)
    zc = crange.transform(z)
    traces = fig["data"]
    traces.append(dict(type="heatmap", x=_list(xs), y=_list(ys), z=[_list(r) for r in zc], text=text,
                       coloraxis="coloraxis", hovertemplate="%{text}<extra></extra>", xgap=1, ygap=1,
                       hoverongaps=True, name=esc(f"{p.sweep}/{p.optimizer}/{p.schedule}"), xaxis=xref, yaxis=yref))

    def coords(frame):
        return _list(np.log2(frame["lr"].to_numpy(float))), _list(np.log2([ymap[w] for w in frame["wd_norm"]]))

    marks = [
        (TOP10, "top-10", g[g["top10"]], dict(symbol="circle-open", size=19, color="black", line=dict(width=2.2))),
        (BEST, "best", g[g["best"]], dict(symbol="star", size=13, color="black", line=dict(width=1, color="white"))),
        (DIVERGED, "diverged (every seed)", g[g["diverged_all"]],
         dict(symbol="x", size=12, color="white", line=dict(width=1, color="#333"))),
        (DIVERGED_SOME, "diverged (some seeds)", g[g["diverged_any"] & ~g["diverged_all"]],
         dict(symbol="x", size=7, color="white", line=dict(width=1, color="#333"))),
    ]
    for tag, name, frame, marker in marks:
        if frame.empty:
            continue
        mx, my = coords(frame)
        traces.append(dict(type="scatter", x=mx, y=my, mode="markers", marker=marker, name=name, legendgroup=tag,
                           showlegend=first(tag), hoverinfo="skip", meta=tag, xaxis=xref, yaxis=yref))
    if show_coupling and p.coupling is not None and y != "wd":
        line = coupling_line(g, p.coupling.slope)
        if line is not None:
            traces.append(dict(type="scatter", x=_list(line[0]), y=_list(line[1]), mode="lines",
                               line=dict(color="black", width=2, dash="dash"),
                               name="fitted λ_norm*(α) (storage.coupling)", legendgroup=COUPLING,
                               showlegend=first(COUPLING), hoverinfo="skip", meta=COUPLING, xaxis=xref, yaxis=yref))
    layout = fig["layout"]
    layout[_layout_key(xref)].update(
        tickvals=_list(xs), ticktext=axis_labels(lrs), range=_edges(xs), showgrid=False, ticks="", mirror=True,
        zeroline=False, title=dict(text="α (initial learning rate)" if bottom else ""))
    layout[_layout_key(yref)].update(
        tickvals=_list(ys), ticktext=axis_labels([ymap[w] for w in wds]), range=_edges(ys), showgrid=False,
        ticks="", mirror=True, zeroline=False,
        title=dict(text=("raw λ" if y == "wd" else "λ_norm (normalised decay)") if left else ""))


# --- SuppFigure 3: λ* against T -----------------------------------------------------------------


def budget_lines(table: pd.DataFrame, *, title: str = "", uirevision: str | None = None) -> dict:
    """λ_norm* and raw λ* against T per (sweep, optimizer, schedule) from ``best_by_budget``.

    Appendix B.1: with normalised decay, λ_norm* stays put (slope 0) while raw λ* ∝ 1/√T
    (slope −½): dotted reference lines through each optimizer's first budget show both.
    """
    if table.empty:
        return empty_figure("no finished trial yet")
    fig = subplots(1, 2, ["optimal λ_norm* against the budget T", "optimal raw λ* against the budget T"],
                   hspace=0.12, vspace=0.1)
    budgets = sorted(int(b) for b in table["budget"].unique())
    for (_, opt, sched), g in table.groupby(["sweep", "optimizer", "schedule"], sort=False):
        g = g.sort_values("budget")
        color = optimizer_color(opt)
        name = esc(optimizer_label(opt))
        head = g.iloc[0]
        slope = "" if pd.isna(head["wd_slope"]) else (
            f" (λ* ∝ T<sup>{signed(head['wd_slope'])}</sup>, λ_norm* ∝ T<sup>{signed(head['wd_norm_slope'])}</sup>)")
        hover = [f"<b>{name}</b> · {esc(sched)} · T={r.budget}<br>λ_norm* = {value_label(r.wd_norm)}"
                 f"<br>raw λ* = {num(r.wd)}<br>α* = {value_label(r.lr)}<br>test error {pct(r.test_error)}"
                 f" ({r.n_seeds} seeds)" for r in g.itertuples()]
        for col, key in ((1, "wd_norm"), (2, "wd")):
            xref, yref = axis_names(1, col, 2)
            fig["data"].append(dict(type="scatter", x=_list(g["budget"]), y=_list(g[key]), mode="lines+markers",
                                    name=name + slope, legendgroup=opt, showlegend=col == 1,
                                    marker=dict(color=color, size=9), line=dict(color=color, width=2), text=hover,
                                    hovertemplate="%{text}<extra></extra>", xaxis=xref, yaxis=yref))
        if len(g) >= 2 and head["wd"] > 0:
            t = np.array(budgets, float)
            for col, ref, exponent in ((1, head["wd_norm"], 0.0), (2, head["wd"], -0.5)):
                xref, yref = axis_names(1, col, 2)
                fig["data"].append(dict(type="scatter", x=_list(t), y=_list(ref * (t / head["budget"]) ** exponent),
                                        mode="lines", line=dict(color=color, width=1, dash="dot"), legendgroup=opt,
                                        showlegend=False, hoverinfo="skip", name="Appendix B.1", xaxis=xref,
                                        yaxis=yref))
    fig["data"].append(dict(type="scatter", x=[None], y=[None], mode="lines", line=dict(color="#777", width=1, dash="dot"),
                            name="Appendix B.1: λ_norm* constant, λ* ∝ T<sup>−½</sup>"))
    for col, key, ytitle in ((1, "wd_norm", "λ_norm*"), (2, "wd", "raw λ*")):
        xref, yref = axis_names(1, col, 2)
        fig["layout"][_layout_key(xref)].update(type="log", tickvals=budgets, ticktext=[str(b) for b in budgets],
                                                title=dict(text="budget T (epochs)"), mirror=True)
        values = sorted({float(v) for v in table[key] if pd.notna(v) and v > 0})
        ticks = dict(tickvals=values, ticktext=axis_labels(values)) if 0 < len(values) <= 8 else {}
        fig["layout"][_layout_key(yref)].update(type="log", mirror=True, title=dict(text=ytitle), **ticks)
    return _finish(fig, title=title, height=480, uirevision=uirevision)


# --- Figure 3: learning curves ------------------------------------------------------------------


def _epoch_axis(curves: Sequence["Curve"]) -> dict:
    """An epoch axis with whole-number ticks."""
    last = max((int(c.test_error.index.max()) for c in curves if len(c.test_error)), default=1)
    return dict(title=dict(text="epoch"), mirror=True, tick0=0, dtick=max(1, int(_nice_step(last, 8))),
                range=[0.8, last + 0.2])


@dataclass(frozen=True)
class Curve:
    """One setting's curves, averaged over its seeds (epoch-indexed Series)."""

    optimizer: str
    lr: float
    wd_norm: float
    rank: int | None
    label: str  # plain text; escaped when drawn
    train_loss: pd.Series
    test_error: pd.Series
    restarts: tuple[int, ...]
    n_seeds: int
    schedule: str = ""
    value: float | None = None  # the recorded final test error (seed mean): under warm restarts, at the last restart


def _restart_marks(series: pd.Series, restarts: Sequence[int], *, include_last: bool) -> list[int]:
    if series.empty:
        return []
    last = int(series.index.max())
    return [e for e in sorted(restarts) if (e < last or (include_last and e == last)) and e in series.index]


def learning_curves(curves: Sequence[Curve], finals: pd.DataFrame | None = None, *, title: str = "",
                    uirevision: str | None = None) -> dict:
    """Figure 3: train loss and test error against epochs, and test error against train loss.

    ``finals`` (optional): one row per cell with optimizer, lr, wd_norm, rank, train_loss and
    test_error at the last epoch (the top-10 cells of each optimizer), drawn as Figure 3's
    bottom-right panel: at equal train loss, which generalises better?
    """
    if not curves:
        return empty_figure("no setting chosen, or no finished trial yet")
    cols = 3 if finals is not None and not finals.empty else 2
    names = ["train loss", "test error"] + (["final test error against final train loss (top-10)"] if cols == 3 else [])
    fig = subplots(1, cols, names, hspace=0.08, vspace=0.1)
    per_opt: dict[str, int] = {}
    restart_shown = False
    for c in curves:
        k = per_opt.get(c.optimizer, 0)
        per_opt[c.optimizer] = k + 1
        color, dash = optimizer_color(c.optimizer), DASHES[k % len(DASHES)]
        name = esc(c.label)
        seeds = f"mean of {c.n_seeds} seed{'s' if c.n_seeds != 1 else ''}"
        for col, series, fmt in ((1, c.train_loss, ".4g"), (2, c.test_error, ".2%")):
            xref, yref = axis_names(1, col, cols)
            fig["data"].append(dict(type="scatter", x=[int(e) for e in series.index], y=_list(series), mode="lines",
                                    name=name, legendgroup=name, showlegend=col == 1,
                                    line=dict(color=color, dash=dash, width=2), xaxis=xref, yaxis=yref,
                                    hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:{fmt}}} ({seeds})<extra></extra>"))
            marks = _restart_marks(series, c.restarts, include_last=False)
            if marks:
                fig["data"].append(dict(type="scatter", x=marks, y=_list(series.loc[marks]), mode="markers",
                                        marker=dict(symbol="diamond", size=9, color=color, line=dict(color="black", width=1)),
                                        name="end of a restart period", legendgroup=RESTART, meta=RESTART,
                                        showlegend=not restart_shown, xaxis=xref, yaxis=yref,
                                        hovertemplate=f"{name}<br>restart after epoch %{{x}}<extra></extra>"))
                restart_shown = True
    if cols == 3:
        xref, yref = axis_names(1, 3, cols)
        for opt, g in finals.groupby("optimizer", sort=False):
            name = esc(optimizer_label(opt))
            hover = [f"<b>{name}</b> rank {int(r.rank)}<br>α = {value_label(r.lr)}, λ_norm = {value_label(r.wd_norm)}"
                     f"<br>train loss {num(r.train_loss, 4)}, test error {pct(r.test_error)}" for r in g.itertuples()]
            fig["data"].append(dict(type="scatter", x=_list(g["train_loss"]), y=_list(g["test_error"]), mode="markers",
                                    name=name + " top-10", legendgroup=f"final-{opt}", text=hover,
                                    marker=dict(color=optimizer_color(opt), size=9, line=dict(color="white", width=1)),
                                    hovertemplate="%{text}<extra></extra>", xaxis=xref, yaxis=yref))
        fig["layout"][_layout_key(xref)].update(type="log", title=dict(text="final train loss"), mirror=True)
        fig["layout"][_layout_key(yref)].update(tickformat=".1%", title=dict(text="final test error"), mirror=True)
    for col, ytitle, extra in ((1, "train loss", dict(type="log")), (2, "test error", dict(tickformat=".1%"))):
        xref, yref = axis_names(1, col, cols)
        fig["layout"][_layout_key(xref)].update(_epoch_axis(curves))
        fig["layout"][_layout_key(yref)].update(title=dict(text=ytitle), mirror=True, **extra)
    return _finish(fig, title=title, height=500, uirevision=uirevision)


# --- Figure 4: anytime performance -------------------------------------------------------------


def anytime(curves: Sequence[Curve], *, restart_schedule: str, title: str = "", uirevision: str | None = None) -> dict:
    """Figure 4: best-so-far test error (running minimum of the seed mean) and train loss per epoch.

    Curves of ``restart_schedule`` are dashed with their restarts marked; plain ones solid.
    """
    if not curves:
        return empty_figure("no finished trial yet for these schedules")
    fig = subplots(1, 2, ["best-so-far test error", "train loss"], hspace=0.1, vspace=0.1)
    restart_shown = False
    (x1, y1), (x2, y2) = axis_names(1, 1, 2), axis_names(1, 2, 2)
    for c in curves:
        restarts = c.schedule == restart_schedule
        color, dash = optimizer_color(c.optimizer), "dash" if restarts else "solid"
        name = esc(c.label)
        best = c.test_error.cummin()
        fig["data"].append(dict(type="scatter", x=[int(e) for e in best.index], y=_list(best), mode="lines", name=name,
                                legendgroup=name, line=dict(color=color, width=2.2, dash=dash), xaxis=x1, yaxis=y1,
                                hovertemplate=f"{name}<br>best after epoch %{{x}}: %{{y:.2%}}<extra></extra>"))
        fig["data"].append(dict(type="scatter", x=[int(e) for e in c.train_loss.index], y=_list(c.train_loss),
                                mode="lines", name=name, legendgroup=name, showlegend=False, xaxis=x2, yaxis=y2,
                                line=dict(color=color, width=1.6, dash=dash),
                                hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>"))
        marks = _restart_marks(best, c.restarts, include_last=True) if restarts else []
        if marks:
            fig["data"].append(dict(type="scatter", x=marks, y=_list(best.loc[marks]), mode="markers",
                                    marker=dict(symbol="diamond", size=10, color=color, line=dict(color="black", width=1)),
                                    name="end of a restart period", legendgroup=RESTART, meta=RESTART,
                                    showlegend=not restart_shown, xaxis=x1, yaxis=y1,
                                    hovertemplate=f"{name}<br>restart after epoch %{{x}}: %{{y:.2%}}<extra></extra>"))
            restart_shown = True
    fig["layout"]["xaxis"].update(_epoch_axis(curves))
    fig["layout"]["xaxis2"].update(_epoch_axis(curves))
    fig["layout"]["yaxis"].update(type="log", title=dict(text="best test error so far"), tickformat=".1%", mirror=True)
    fig["layout"]["yaxis2"].update(type="log", title=dict(text="train loss"), mirror=True)
    return _finish(fig, title=title, height=500, uirevision=uirevision)


def speedups(curves: Sequence[Curve], restart_schedule: str) -> list[dict]:
    """Figure 4's claim in numbers: at the first restart of each warm-restart curve, its best-so-far
    error, and the epoch at which the plain curve of the same optimizer first gets as low."""
    plain = {c.optimizer: c for c in curves if c.schedule != restart_schedule}
    out = []
    for c in curves:
        if c.schedule != restart_schedule or not c.restarts:
            continue
        first = min(c.restarts)
        best = c.test_error.cummin()
        if first not in best.index:
            continue
        target = float(best.loc[first])
        row = {"optimizer": c.optimizer, "first_restart": int(first), "error": target, "plain_schedule": None,
               "plain_epoch": None, "speedup": None}
        p = plain.get(c.optimizer)
        if p is not None:
            pb = p.test_error.cummin()
            reached = pb[pb <= target + 1e-12]
            row["plain_schedule"] = p.schedule
            if not reached.empty:
                row["plain_epoch"] = int(reached.index[0])
                row["speedup"] = row["plain_epoch"] / first
        out.append(row)
    return out

