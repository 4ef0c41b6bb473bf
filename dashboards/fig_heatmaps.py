"""Figures 1 and 2 and SuppFigure 3's grids: one heatmap per panel over (α, λ_norm), on one colour axis.

:func:`heatmaps` draws a grid of panels (:class:`~dashboards.panels.Panel`) on log₂ axes with 2^k
labels, every panel on one shared colour axis (:mod:`dashboards.colorscale`), top-10 cells
circled in black, the best starred, the plausible optima (storage's ``plausible``: not
distinguishably worse than the best) outlined in squares, diverged cells crossed, and storage's
fitted valley (dashed) and over-regularisation edge (dotted) inside their bands, with each α row's
λ_norm* point; a panel without data shows its notes instead. Every number in a hover
carries its interval and the noise it includes. :func:`panel_title` is the default panel label.
Every recorded name is escaped with :func:`dashboards.text.esc` before it reaches the figure.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from dashboards.colorscale import ColorRange, ColorSpec, color_range
from dashboards.figkit import axis_names, finish, finite_list, layout_key, subplots
from dashboards.panels import Panel, fitted_lines, stars
from dashboards.text import (axis_labels, count, esc, level_label, num, num_interval, optimizer_label, pct,
                             pct_interval, slope_interval, sources_label, value_label)

#: Trace ``meta`` tags of the overlay markers (tests and the browser check find them by these).
TOP10, BEST, DIVERGED, DIVERGED_SOME, COUPLING = "top-10", "best", "diverged", "diverged-some", "coupling"
PLAUSIBLE, COUPLING_BAND, LAMBDA_STAR = "plausible", "coupling-band", "lambda-star"
PLAUSIBLE_COLOR = "#d6007a"


def coupling_text(c, *, sources: bool = True) -> str:
    """"λ* −1.01 [−1.2, −0.8] · edge −0.98 [−1.10, −0.85] · valley −1.02 [−1.2, −0.9] 95% (test set + seeds)
    · coupled" (escaped): storage's estimates (``Coupling.estimates``) and verdict."""
    if c is None:
        return ""
    parts = [f"{esc(name)} {slope_interval(value, ci)}" for name, value, ci, _ in c.estimates()]
    if not parts:  # no estimate has a slope: say how many rows each had
        return (f"slope: {esc(c.verdict)} ({c.n_argmin_rows} basin rows where λ_norm matters, "
                f"{c.n_alpha} of {len(c.rows)} α rows locate the edge)")
    noise = f" ({esc(sources_label(c.sources))})" if sources else ""
    ci = f" {level_label(c.level)}" if any(e[2] for e in c.estimates()) else ""
    return f"{' · '.join(parts)}{ci}{noise} · {esc(c.verdict)}"


def panel_title(p: Panel, *, sweep: bool = False, schedule: bool = False, budget: bool = False) -> str:
    """``<b>AdamW</b>`` plus the parts asked for, and the coupling fit (slope, interval, noise, verdict) below."""
    head = [f"<b>{esc(optimizer_label(p.optimizer))}</b>"]
    if sweep:
        head.append(esc(p.sweep))
    if schedule:
        head.append(esc(p.schedule))
    if budget and p.budget is not None:
        head.append(f"T={p.budget}")
    sub = coupling_text(p.coupling)
    return " · ".join(head) + (f"<br><sub>{sub}</sub>" if sub else "")


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
    over seeds; plausible optima outlined, top-10 circled, best starred, diverged crossed, the
    coupling fit dashed in its band, each α row's λ_norm* marked (λ_norm axes only).
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
                xaxis, yaxis = fig["layout"][layout_key(xref)], fig["layout"][layout_key(yref)]
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
    return finish(fig, title=title, height=nrows * row_height + 170, top=110 if title else 70, bottom=110,
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
        text[iy[r.wd_norm]][ix[r.lr]] = _hover(head, r, p)
    zc = crange.transform(z)
    traces = fig["data"]
    traces.append(dict(type="heatmap", x=finite_list(xs), y=finite_list(ys), z=[finite_list(r) for r in zc],
                       text=text, coloraxis="coloraxis", hovertemplate="%{text}<extra></extra>", xgap=1, ygap=1,
                       hoverongaps=True, name=esc(f"{p.sweep}/{p.optimizer}/{p.schedule}"), xaxis=xref, yaxis=yref))

    def coords(frame):
        return (finite_list(np.log2(frame["lr"].to_numpy(float))),
                finite_list(np.log2([ymap[w] for w in frame["wd_norm"]])))

    marks = [
        (PLAUSIBLE, f"plausible optima (not distinguishably worse than the best, {level_label(p.level)})",
         g[g["plausible"].astype(bool)],
         dict(symbol="square-open", size=25, color=PLAUSIBLE_COLOR, line=dict(width=2, color=PLAUSIBLE_COLOR))),
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
        _add_coupling(traces, p, xref, yref, first)
    layout = fig["layout"]
    layout[layout_key(xref)].update(
        tickvals=finite_list(xs), ticktext=axis_labels(lrs), range=_edges(xs), showgrid=False, ticks="",
        mirror=True, zeroline=False, title=dict(text="α (initial learning rate)" if bottom else ""))
    layout[layout_key(yref)].update(
        tickvals=finite_list(ys), ticktext=axis_labels([ymap[w] for w in wds]), range=_edges(ys), showgrid=False,
        ticks="", mirror=True, zeroline=False,
        title=dict(text=("raw λ" if y == "wd" else "λ_norm (normalised decay)") if left else ""))


LINE_STYLE = {"argmin": ("solid", "fitted λ_norm*(α) of the basin rows (storage.coupling)"),
              "valley": ("dash", "fitted valley v*(α) (storage.coupling)"),
              "edge": ("dot", "fitted over-regularisation edge (storage.coupling)")}


def _add_coupling(traces: list, p: Panel, xref: str, yref: str, first) -> None:
    """storage's fitted valley and edge lines inside their bands, and each α row's λ_norm* and edge."""
    c = p.coupling
    noise = esc(sources_label(c.sources))
    level = level_label(c.level)
    for line in fitted_lines(c):
        dash, label = LINE_STYLE[line.name]
        bx, by = line.band()
        traces.append(dict(type="scatter", x=finite_list(bx), y=finite_list(by), mode="lines",
                           fill="toself", fillcolor="rgba(0,0,0,0.13)", line=dict(width=0, color="rgba(0,0,0,0)"),
                           name=f"{level} band of the fitted lines ({noise})",
                           legendgroup=COUPLING_BAND, showlegend=first(COUPLING_BAND), hoverinfo="skip",
                           meta=COUPLING_BAND, customdata=[line.name], xaxis=xref, yaxis=yref))
        traces.append(dict(type="scatter", x=finite_list(line.x), y=finite_list(line.y), mode="lines",
                           line=dict(color="black", width=2, dash=dash), name=label,
                           legendgroup=f"{COUPLING}-{line.name}", showlegend=first(f"{COUPLING}-{line.name}"),
                           hoverinfo="skip", meta=COUPLING, customdata=[line.name], xaxis=xref, yaxis=yref))
    points = stars(c)
    if not points:
        return
    text = [f"<b>{esc(optimizer_label(p.optimizer))}</b> · α = {value_label(s.lr)}<br>"
            f"λ_norm* = {num(s.wd_norm)} {num_interval(s.lo, s.hi)} {level} (noise: {noise})<br>"
            f"edge = {num(s.edge)} {num_interval(s.edge_lo, s.edge_hi)} {level}: "
            + ("located, in the edge fit" if s.edge_located else "not located inside the grid: not in the edge fit")
            for s in points]
    traces.append(dict(type="scatter", x=[s.x for s in points], y=finite_list([s.y[0] for s in points]),
                       mode="markers", text=text, hovertemplate="%{text}<extra></extra>",
                       marker=dict(symbol=["diamond" if s.edge_located else "diamond-open" for s in points], size=8,
                                   color="black", line=dict(width=1, color="white")),
                       name="λ_norm*(α) of each α row (◇: its edge is not located)", legendgroup=LAMBDA_STAR,
                       showlegend=first(LAMBDA_STAR), meta=LAMBDA_STAR, xaxis=xref, yaxis=yref))


def _hover(head: str, r, p: Panel) -> str:
    lines = [head, _labelled("α", r.lr), _labelled("λ_norm", r.wd_norm)]
    if r.n_seeds == 0:
        if pd.notna(r.wd):
            lines.append(f"raw λ = {num(r.wd)}")
        lines.append(f"{r.n_failed} failed" if r.n_failed else "no finished trial yet")
        return "<br>".join(lines)
    lines.append(f"raw λ = {num(r.wd)}")
    if r.diverged_all:  # storage fixes these at chance: not a test-set measurement, so no interval to give
        lines.append(f"test error <b>{pct(r.test_error)}</b> (mean of {count(r.n_seeds, 'seed')}): every seed "
                     "diverged, recorded at chance level — not a measurement, no interval")
    else:
        ci = pct_interval(r.error_lo, r.error_hi)
        lines.append(f"test error <b>{pct(r.test_error)}</b>" + (f" {ci} {level_label(p.level)}" if ci else "")
                     + f" (mean of {count(r.n_seeds, 'seed')})")
        spread = [f"± {pct(r.test_error_std)} sd over seeds"] if pd.notna(r.test_error_std) else []
        lines.append(" · ".join(spread + [f"interval noise: {esc(sources_label(p.sources))}"]))
    if pd.notna(r.p_best):
        lines.append(f"P(best) {r.p_best:.2f}" + (" · plausible optimum" if r.plausible else
                                                  " · distinguishably worse than the best"))
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


def _labelled(name: str, value: float) -> str:
    label = value_label(value)
    return f"{name} = {label}" + ("" if label == num(value) else f" = {num(value)}")


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
