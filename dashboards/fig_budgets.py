"""SuppFigure 3's message: the optimal λ_norm* and raw λ* against the budget T, from ``storage.best_by_budget``.

Appendix B.1: with normalised weight decay λ = λ_norm·√(b/(B·T)), λ_norm* stays put as T grows
(slope 0 on log–log axes) while raw λ* ∝ 1/√T (slope −½). :func:`budget_lines` draws storage's
λ_norm*(T) and raw λ*(T) with their 95% intervals as error bars (open markers: budgets the
exponent does not rest on), the fitted power law T^k through the budgets it rests on (dashed;
storage's exponent k from one joint fit over the (T, λ_norm) profile, drawn through their centroid)
and the √ rule's prediction through each optimizer's first budget (dotted).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dashboards.figkit import axis_names, empty_figure, finish, finite_list, layout_key, subplots
from dashboards.style import optimizer_color
from dashboards.text import (axis_labels, esc, num, num_interval, optimizer_label, pct, pct_interval,
                             signed_interval, sources_label, value_label)

#: Trace ``meta`` tags: the estimates with error bars, the fitted power law, the √ rule's prediction.
STAR, FIT, SQRT_RULE = "budget-star", "budget-fit", "sqrt-rule"
#: (subplot column, estimate column, interval columns, exponent column, √ rule's exponent, axis title)
SERIES = ((1, "lambda_norm_star", "lambda_norm_lo", "lambda_norm_hi", "k", 0.0, "λ_norm*"),
          (2, "raw_star", "raw_lo", "raw_hi", "raw_exponent", -0.5, "raw λ*"))


def _error_bars(g: pd.DataFrame, key: str, lo: str, hi: str) -> dict:
    """Plotly's asymmetric error bars from storage's interval columns (none where missing)."""
    up = (g[hi] - g[key]).clip(lower=0)
    down = (g[key] - g[lo]).clip(lower=0)
    return dict(type="data", symmetric=False, array=finite_list(up), arrayminus=finite_list(down), thickness=1.5,
                width=5, visible=True)


def _hover(name: str, sched: str, r) -> str:
    return (f"<b>{name}</b> · {esc(sched)} · T={r.budget}"
            f"<br>λ_norm* = {num(r.lambda_norm_star)} {num_interval(r.lambda_norm_lo, r.lambda_norm_hi)} 95%"
            + ("" if r.located else " (not located inside the grid: the exponent does not rest on it)")
            + f"<br>raw λ* = {num(r.raw_star)} {num_interval(r.raw_lo, r.raw_hi)} 95%"
            f"<br>best cell α = {value_label(r.lr)}, λ_norm = {value_label(r.wd_norm)}"
            f"<br>reported error {pct(r.error)} {pct_interval(r.error_lo, r.error_hi)} ({esc(r.selection)})"
            f"<br>final train error {pct(r.train_error)} · {r.n_seeds} seed(s)"
            f"<br>noise: {esc(sources_label(r.sources))}")


def budget_lines(table: pd.DataFrame, *, title: str = "", uirevision: str | None = None) -> dict:
    """λ_norm* and raw λ* against T per (sweep, optimizer, schedule) from ``storage.best_by_budget``,
    with error bars, the fitted exponent's line and the √ rule's prediction."""
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
        fitted = "" if pd.isna(head["k"]) else (
            f" (λ_norm* ∝ T<sup>{signed_interval(head['k'], head['k_lo'], head['k_hi'])}</sup>)")
        hover = [_hover(name, sched, r) for r in g.itertuples()]
        located = g["located"].astype(bool).to_numpy()
        t = g["budget"].to_numpy(float)
        for col, key, lo, hi, exponent, rule, _ in SERIES:
            xref, yref = axis_names(1, col, 2)
            fig["data"].append(dict(
                type="scatter", x=finite_list(t), y=finite_list(g[key]), error_y=_error_bars(g, key, lo, hi),
                mode="lines+markers", name=name + fitted, legendgroup=opt, showlegend=col == 1, meta=STAR,
                marker=dict(color=color, size=9, symbol=["circle" if ok else "circle-open" for ok in located]),
                line=dict(color=color, width=2), text=hover, hovertemplate="%{text}<extra></extra>",
                xaxis=xref, yaxis=yref))
            ok = located & np.isfinite(g[key].to_numpy(float)) & (g[key].to_numpy(float) > 0)
            k = head[exponent]
            if pd.notna(k) and ok.sum() >= 2:  # the fitted power law through the centroid of the budgets it used
                lx, ly = np.log(t[ok]), np.log(g[key].to_numpy(float)[ok])
                span = np.array([min(budgets), max(budgets)], float)
                fig["data"].append(dict(
                    type="scatter", x=finite_list(span), y=finite_list(np.exp(ly.mean() + k * (np.log(span) - lx.mean()))),
                    mode="lines", line=dict(color=color, width=1.5, dash="dash"), legendgroup=opt, showlegend=False,
                    hoverinfo="skip", meta=FIT, name="fitted T^k", xaxis=xref, yaxis=yref))
            first = g[key].iloc[0]
            if len(g) >= 2 and pd.notna(first) and first > 0:
                span = np.array(budgets, float)
                fig["data"].append(dict(
                    type="scatter", x=finite_list(span), y=finite_list(first * (span / t[0]) ** rule), mode="lines",
                    line=dict(color=color, width=1, dash="dot"), legendgroup=opt, showlegend=False, hoverinfo="skip",
                    meta=SQRT_RULE, name="Appendix B.1", xaxis=xref, yaxis=yref))
    fig["data"].append(dict(type="scatter", x=[None], y=[None], mode="lines",
                            line=dict(color="#777", width=1, dash="dot"),
                            name="Appendix B.1 (√ rule): λ_norm* constant, λ* ∝ T<sup>−½</sup>"))
    fig["data"].append(dict(type="scatter", x=[None], y=[None], mode="lines",
                            line=dict(color="#777", width=1.5, dash="dash"), name="fitted T<sup>k</sup>"))
    for col, key, lo, hi, _, _, ytitle in SERIES:
        xref, yref = axis_names(1, col, 2)
        fig["layout"][layout_key(xref)].update(type="log", tickvals=budgets, ticktext=[str(b) for b in budgets],
                                                title=dict(text="budget T (epochs)"), mirror=True)
        values = sorted({float(v) for v in table[key] if pd.notna(v) and v > 0})
        ticks = dict(tickvals=values, ticktext=axis_labels(values)) if 0 < len(values) <= 8 else {}
        fig["layout"][layout_key(yref)].update(type="log", mirror=True,
                                                title=dict(text=f"{ytitle} (bars: 95% interval)"), **ticks)
    return finish(fig, title=title, height=480, uirevision=uirevision)
