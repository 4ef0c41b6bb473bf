"""Figure 4: anytime performance — best-so-far test error per epoch, warm restarts against a plain schedule.

:func:`anytime` draws the running minimum of each :class:`~dashboards.curves.Curve`'s seed-mean
test error (left) and its train loss (right), both on log axes: curves of the restart schedule
dashed with ◆ at the end of each restart period, plain ones solid. The numbers beside it are
``storage.anytime``'s (the speed-up at the first restart, with its interval).
"""

from __future__ import annotations

from collections.abc import Sequence

from dashboards.curves import Curve
from dashboards.figkit import (axis_names, empty_figure, epoch_axis, finish, finite_list, restart_markers,
                               restart_marks, subplots)
from dashboards.style import optimizer_color
from dashboards.text import esc


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
        warm = c.schedule == restart_schedule  # a curve of the warm-restart schedule
        color, dash = optimizer_color(c.optimizer), "dash" if warm else "solid"
        name = esc(c.label)
        best = c.test_error.cummin()
        fig["data"].append(dict(type="scatter", x=[int(e) for e in best.index], y=finite_list(best), mode="lines",
                                name=name, legendgroup=name, line=dict(color=color, width=2.2, dash=dash),
                                xaxis=x1, yaxis=y1,
                                hovertemplate=f"{name}<br>best after epoch %{{x}}: %{{y:.2%}}<extra></extra>"))
        fig["data"].append(dict(type="scatter", x=[int(e) for e in c.train_loss.index], y=finite_list(c.train_loss),
                                mode="lines", name=name, legendgroup=name, showlegend=False, xaxis=x2, yaxis=y2,
                                line=dict(color=color, width=1.6, dash=dash),
                                hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>"))
        marks = restart_marks(best, c.restarts, include_last=True) if warm else []
        if marks:
            fig["data"].append(restart_markers(
                best, marks, color=color, size=10, first=not restart_shown, xref=x1, yref=y1,
                hovertemplate=f"{name}<br>restart after epoch %{{x}}: %{{y:.2%}}<extra></extra>"))
            restart_shown = True
    errors = [c.test_error for c in curves]
    fig["layout"]["xaxis"].update(epoch_axis(errors))
    fig["layout"]["xaxis2"].update(epoch_axis(errors))
    fig["layout"]["yaxis"].update(type="log", title=dict(text="best test error so far"), tickformat=".1%", mirror=True)
    fig["layout"]["yaxis2"].update(type="log", title=dict(text="train loss"), mirror=True)
    return finish(fig, title=title, height=500, uirevision=uirevision)
