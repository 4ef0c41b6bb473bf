"""Figure 3: train loss and test error per epoch of chosen settings, and final test error against final
train loss.

:func:`learning_curves` draws one line per :class:`~dashboards.curves.Curve` (seed means; the
colour is the optimizer's, the dash tells its settings apart), ◆ at the epochs that end a
warm-restart period, and — given the top-10 cells' finals — Figure 3's bottom-right panel.
Losses and errors are on log axes, as in the paper: the final differences between optimizers
(tenths of a point of error) would be invisible on a linear axis that also spans the first epoch.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboards.curves import Curve
from dashboards.figkit import (axis_names, empty_figure, epoch_axis, finish, finite_list, layout_key,
                               restart_markers, restart_marks, subplots)
from dashboards.style import DASHES, optimizer_color
from dashboards.text import count, esc, num, optimizer_label, pct, value_label


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
        seeds = f"mean of {count(c.n_seeds, 'seed')}"
        for col, series, fmt in ((1, c.train_loss, ".4g"), (2, c.test_error, ".2%")):
            xref, yref = axis_names(1, col, cols)
            fig["data"].append(dict(type="scatter", x=[int(e) for e in series.index], y=finite_list(series),
                                    mode="lines", name=name, legendgroup=name, showlegend=col == 1,
                                    line=dict(color=color, dash=dash, width=2), xaxis=xref, yaxis=yref,
                                    hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:{fmt}}} ({seeds})<extra></extra>"))
            marks = restart_marks(series, c.restarts, include_last=False)
            if marks:
                fig["data"].append(restart_markers(
                    series, marks, color=color, size=9, first=not restart_shown, xref=xref, yref=yref,
                    hovertemplate=f"{name}<br>restart after epoch %{{x}}<extra></extra>"))
                restart_shown = True
    if cols == 3:
        xref, yref = axis_names(1, 3, cols)
        for opt, g in finals.groupby("optimizer", sort=False):
            name = esc(optimizer_label(opt))
            hover = [f"<b>{name}</b> rank {int(r.rank)}<br>α = {value_label(r.lr)}, λ_norm = {value_label(r.wd_norm)}"
                     f"<br>train loss {num(r.train_loss, 4)}, test error {pct(r.test_error)}" for r in g.itertuples()]
            fig["data"].append(dict(type="scatter", x=finite_list(g["train_loss"]), y=finite_list(g["test_error"]),
                                    mode="markers", name=name + " top-10", legendgroup=f"final-{opt}", text=hover,
                                    marker=dict(color=optimizer_color(opt), size=9, line=dict(color="white", width=1)),
                                    hovertemplate="%{text}<extra></extra>", xaxis=xref, yaxis=yref))
        fig["layout"][layout_key(xref)].update(type="log", title=dict(text="final train loss"), mirror=True)
        fig["layout"][layout_key(yref)].update(type="log", tickformat=".1%", title=dict(text="final test error"),
                                               mirror=True)
    errors = [c.test_error for c in curves]
    for col, ytitle, extra in ((1, "train loss", {}), (2, "test error", dict(tickformat=".1%"))):
        xref, yref = axis_names(1, col, cols)
        fig["layout"][layout_key(xref)].update(epoch_axis(errors))
        fig["layout"][layout_key(yref)].update(type="log", title=dict(text=ytitle), mirror=True, **extra)
    return finish(fig, title=title, height=500, uirevision=uirevision)
