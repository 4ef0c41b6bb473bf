"""SuppFigure 3's message: the optimal λ_norm* and raw λ* against the budget T, from ``best_by_budget``.

Appendix B.1: with normalised weight decay λ = λ_norm·√(b/(B·T)), λ_norm* stays put as T grows
(slope 0 on log–log axes) while raw λ* ∝ 1/√T (slope −½): :func:`budget_lines` draws both, with
dotted reference lines through each optimizer's first budget.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboards.figkit import axis_names, empty_figure, finish, finite_list, layout_key, subplots
from dashboards.style import optimizer_color
from dashboards.text import axis_labels, esc, num, optimizer_label, pct, signed, value_label


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
            fig["data"].append(dict(type="scatter", x=finite_list(g["budget"]), y=finite_list(g[key]),
                                    mode="lines+markers", name=name + slope, legendgroup=opt, showlegend=col == 1,
                                    marker=dict(color=color, size=9), line=dict(color=color, width=2), text=hover,
                                    hovertemplate="%{text}<extra></extra>", xaxis=xref, yaxis=yref))
        if len(g) >= 2 and head["wd"] > 0:
            t = np.array(budgets, float)
            for col, ref, exponent in ((1, head["wd_norm"], 0.0), (2, head["wd"], -0.5)):
                xref, yref = axis_names(1, col, 2)
                fig["data"].append(dict(type="scatter", x=finite_list(t),
                                        y=finite_list(ref * (t / head["budget"]) ** exponent), mode="lines",
                                        line=dict(color=color, width=1, dash="dot"), legendgroup=opt,
                                        showlegend=False, hoverinfo="skip", name="Appendix B.1", xaxis=xref,
                                        yaxis=yref))
    fig["data"].append(dict(type="scatter", x=[None], y=[None], mode="lines",
                            line=dict(color="#777", width=1, dash="dot"),
                            name="Appendix B.1: λ_norm* constant, λ* ∝ T<sup>−½</sup>"))
    for col, key, ytitle in ((1, "wd_norm", "λ_norm*"), (2, "wd", "raw λ*")):
        xref, yref = axis_names(1, col, 2)
        fig["layout"][layout_key(xref)].update(type="log", tickvals=budgets, ticktext=[str(b) for b in budgets],
                                                title=dict(text="budget T (epochs)"), mirror=True)
        values = sorted({float(v) for v in table[key] if pd.notna(v) and v > 0})
        ticks = dict(tickvals=values, ticktext=axis_labels(values)) if 0 < len(values) <= 8 else {}
        fig["layout"][layout_key(yref)].update(type="log", mirror=True, title=dict(text=ytitle), **ticks)
    return finish(fig, title=title, height=480, uirevision=uirevision)


