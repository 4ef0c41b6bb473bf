"""``basin report``: one self-contained HTML file with the dashboard's figures and ``basin best``'s numbers.

Plotly's JavaScript is embedded once, inline, so the file opens offline and can be mailed or
archived with the results. Per sweep: the best settings, AdamW vs Adam and SGDW vs SGD, the
coupling of every basin — each number with its 95% interval, the selection method and the noise
sources, from ``storage.best``, ``storage.headline`` and ``storage.coupling`` — then Figure 2
(basins, one per schedule), Figure 1 (schedules, when the sweep has several), Figure 3 (learning
curves), SuppFigure 3 (budgets with ``storage.best_by_budget``'s intervals, when it has several)
and Figure 4 (anytime, when it has warm restarts) — built by the same code as the dashboard's
pages, with their default selections.

Every recorded name is escaped (:func:`html.escape` here; figures escape their own text), and
the file is written to a temporary file beside the target and renamed over it: a reader never
sees half a report.
"""

from __future__ import annotations

import datetime
import html
import os
from pathlib import Path

import plotly.io as pio
import plotly.offline

import storage
from dashboards import page_anytime, page_basins, page_budgets, page_curves, page_schedules, pagekit
from dashboards.data import Source
from dashboards.figkit import graph_config
from dashboards.style import CSS
from dashboards.summaries import best_rows, coupling_rows, headline_rows
from dashboards.text import schedule_label

E = html.escape


def _table(caption: str, header: list[str], rows: list[list[str]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{E(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{E(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="data"><caption>{E(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class _Figures:
    """Numbers the figures' divs and renders them without Plotly's JS (embedded once in <head>)."""

    def __init__(self):
        self.count = 0

    def __call__(self, fig: dict, filename: str) -> str:
        self.count += 1
        return pio.to_html(fig, full_html=False, include_plotlyjs=False, config=graph_config(filename, "png"),
                           div_id=f"figure-{self.count}", default_width="100%", validate=True)


def _view(figures: _Figures, heading: str, view: pagekit.View) -> str:
    parts = [f"<h3>{E(heading)}</h3>"]
    if view.message:
        parts.append(f'<p class="message message-error">{E(view.message)}</p>')
    for name, fig in view.figures.items():
        parts.append(f'<div class="figure">{figures(fig, view.filenames.get(name, name))}</div>')
    if view.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{E(n)}</li>" for n in view.notes) + "</ul>")
    for caption, header, rows in view.tables:
        parts.append(_table(caption, header, rows))
    return "\n".join(parts)


def sweep_section(source: Source, index: dict, name: str, figures: _Figures) -> str:
    info = index[name]
    sp = info.progress
    parts = [f'<section><h2>{E(name)}</h2><p class="muted">{E(info.dataset or "?")} / {E(info.model or "?")} · '
             f"{sp.n_done} of {sp.grid_size} grid points done · {sp.n_failed} failed · {sp.n_diverged} diverged</p>"]
    best = source.best(name)
    parts.append("<h3>Best settings (basin best)</h3>" + (_table(
        "the lowest mean final test error over seeds; reported error: the best setting's error on noise it was not "
        "selected on (selection: cross_fit, validation) or the naive minimum (biased low); [lo, hi]: 95% intervals; "
        "ties: more seeds, then smaller α, then smaller λ_norm", *best_rows(best)) or "<p>no finished trial yet</p>"))
    parts.append(_table("Decoupled against L2: relative improvement of the reported errors with its 95% interval, "
                        "paired over common seeds (the paper: ≈15% lower error for AdamW)",
                        *headline_rows(source.headline(name))))
    parts.append(_table("Coupling of each basin (basin best --coupling): the verdict comes from the slope's 95% "
                        "interval — coupled: excludes 0, contains −1; decoupled: contains 0, excludes −1",
                        *coupling_rows(source.coupling(name))))

    def build(page, heading: str, query: dict) -> None:
        sel = page.resolve(index, query)
        parts.append(_view(figures, heading, pagekit.build_safely(page, source, sel)))

    for schedule in info.schedules:
        build(page_basins, f"Figure 2 — basins, {schedule_label(schedule)}", {"sweep": [name], "schedule": [schedule]})
    if len(info.schedules) > 1:
        build(page_schedules, "Figure 1 — schedules", {"sweep": [name]})
    build(page_curves, "Figure 3 — learning curves", {"sweep": [name]})
    if len(info.budgets_for()) > 1:
        build(page_budgets, "SuppFigure 3 — budgets", {"sweep": [name]})
    if page_anytime.RESTART_DEFAULT in info.schedules:
        build(page_anytime, "Figure 4 — anytime performance", {"sweep": [name]})
    parts.append("</section>")
    return "\n".join(parts)


def build_report(source: Source, sweep: str | None = None) -> tuple[str, int]:
    """The report's HTML and its number of figures. Raises EmptyStorageError / UnknownNameError."""
    index = source.index()
    if not index:
        raise storage.EmptyStorageError(f"no Basin sweep recorded in {source.label} yet: run a sweep first")
    if sweep is not None and sweep not in index:
        raise storage.UnknownNameError(f"unknown sweep {sweep!r}; sweeps here: {', '.join(sorted(index))}")
    names = [sweep] if sweep is not None else list(index)
    figures = _Figures()
    sections = [sweep_section(source, index, n, figures) for n in names]
    stamp = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    title = "Basin report — " + (sweep if sweep is not None else ", ".join(names))
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{E(title)}</title>
<style>{CSS}
section {{ background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 18px; margin: 16px 0; }}
h3 {{ margin: 22px 0 6px; }}
</style>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
</head><body><main>
<h1>{E(title)}</h1>
<p class="intro">Loshchilov &amp; Hutter, <i>Decoupled Weight Decay Regularization</i> (ICLR 2019), reproduced from
{E(source.label)} on {E(stamp)}. Hover a figure for values; its camera icon saves a PNG. Every estimate comes with
its 95% interval [lo, hi]: a bootstrap over the test set (each error is a proportion of n_test examples) and, where
a cell has two or more seeds, over seeds; the tables and hovers name the noise each includes.</p>
{''.join(sections)}
</main></body></html>
"""
    return doc, figures.count


def write(source: Source, path: str | os.PathLike, sweep: str | None = None) -> tuple[Path, int]:
    """Write the report to ``path`` atomically (:func:`storage.files.write_atomic`); returns
    (absolute path, number of figures)."""
    target = storage.output_path(path)
    doc, n = build_report(source, sweep)

    def fill(tmp: str) -> None:
        Path(tmp).write_text(doc, encoding="utf-8")

    return storage.write_atomic(target, fill), n
