"""The dashboard's look: the page template and stylesheet, and the figures' font, template and colours.

The stylesheet and the template are inline (no asset files to package or serve); the report
embeds the same stylesheet. Figures take :data:`FONT` (the page's font family),
:func:`plotly_template`, :data:`COLORSCALE` for errors and :func:`optimizer_color` for lines, so
an optimizer has one colour on every page.
"""

from __future__ import annotations

import functools
import json

import plotly.colors
import plotly.io as pio

FONT_FAMILY = 'Inter, "Segoe UI", Helvetica, Arial, sans-serif'
#: The figures' text, in the page's font.
FONT = dict(family=FONT_FAMILY, size=12)
#: Low error light, high error dark: black circles stay visible on the basin.
COLORSCALE = plotly.colors.get_colorscale("Viridis_r")
OPTIMIZER_COLORS = {
    "sgd": "#1f77b4",
    "sgdw": "#17becf",
    "adam": "#d62728",
    "adamw": "#ff7f0e",
    "adamw-torch": "#9467bd",
}
_EXTRA_COLORS = ("#2ca02c", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
#: Line dashes of the second, third, … curve of one optimizer.
DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def optimizer_color(name: str) -> str:
    """The colour of an optimizer's lines and markers (a stable pick for names outside the paper's)."""
    if name in OPTIMIZER_COLORS:
        return OPTIMIZER_COLORS[name]
    return _EXTRA_COLORS[sum(map(ord, name)) % len(_EXTRA_COLORS)]


@functools.lru_cache(maxsize=1)
def _template_json() -> str:
    return json.dumps(pio.templates["simple_white"].to_plotly_json())


def plotly_template() -> dict:
    """Plotly's ``simple_white`` template as a fresh dict (read from Plotly once)."""
    return json.loads(_template_json())


CSS = """
:root { --ink: #1d2433; --muted: #5f6b7a; --line: #e3e7ee; --bg: #f7f8fa; --accent: #2b59c3; }
* { box-sizing: border-box; }
body { margin: 0; font-family: """ + FONT_FAMILY + """; color: var(--ink);
       background: var(--bg); font-size: 14px; }
header.top { display: flex; align-items: center; gap: 20px; padding: 10px 24px; background: #fff;
             border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 20; flex-wrap: wrap; }
header.top .brand { font-weight: 700; font-size: 18px; letter-spacing: .02em; color: var(--ink);
                    text-decoration: none; }
header.top nav { display: flex; gap: 4px; flex-wrap: wrap; }
header.top nav a { padding: 6px 10px; border-radius: 6px; color: var(--muted); text-decoration: none; }
header.top nav a:hover { background: var(--bg); color: var(--ink); }
header.top nav a.active { background: #e8eefb; color: var(--accent); font-weight: 600; }
header.top .storage { margin-left: auto; color: var(--muted); font-size: 12px; font-family: ui-monospace, monospace;
                      max-width: 380px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
header.top .format { display: flex; align-items: center; gap: 6px; color: var(--muted); font-size: 12px; }
main { padding: 18px 24px 40px; max-width: 1500px; margin: 0 auto; }
h1 { font-size: 22px; margin: 4px 0 4px; }
h2 { font-size: 16px; margin: 0; }
p.intro { color: var(--muted); margin: 0 0 14px; max-width: 1100px; line-height: 1.45; }
.controls { display: flex; flex-wrap: wrap; gap: 12px 18px; align-items: flex-end; background: #fff;
            border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
.field { display: flex; flex-direction: column; gap: 4px; min-width: 170px; }
.field-wide { min-width: 320px; flex: 1; }
.field-label { font-size: 11px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.radio label { margin-right: 10px; font-size: 13px; white-space: nowrap; }
.radio input { margin-right: 4px; }
.presets { display: flex; gap: 6px; flex-wrap: wrap; }
.preset, .chip { font-size: 12px; padding: 3px 8px; border: 1px solid var(--line); border-radius: 12px;
                 text-decoration: none; color: var(--accent); background: #fff; }
.figure { background: #fff; border: 1px solid var(--line); border-radius: 8px; margin-bottom: 14px; }
.details { margin-top: 6px; }
ul.notes { color: var(--muted); margin: 6px 0 12px; padding-left: 18px; line-height: 1.5; }
table.data { border-collapse: collapse; background: #fff; margin: 8px 0 16px; font-size: 13px; width: 100%; }
table.data caption { text-align: left; font-weight: 600; padding: 6px 0; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 5px 8px; text-align: left;
                               vertical-align: middle; }
table.data th { background: var(--bg); font-weight: 600; color: var(--muted); font-size: 12px; }
table.data .num { text-align: right; font-variant-numeric: tabular-nums; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-bottom: 14px; }
.card-head { display: flex; align-items: center; gap: 12px; flex-wrap: wrap; }
.card-head h2 a { color: var(--ink); }
.card-summary { display: flex; align-items: center; gap: 16px; margin: 8px 0; flex-wrap: wrap; }
.chips { display: flex; gap: 6px; margin-left: auto; }
.pill { font-size: 11px; padding: 2px 8px; border-radius: 10px; }
.pill-running { background: #fff4d6; color: #8a5a00; }
.pill-done { background: #e3f5e6; color: #1d6b2c; }
.pill-failed { background: #fde8e8; color: #9b1c1c; }
.progress { display: flex; align-items: center; gap: 8px; }
.progress progress { width: 140px; height: 10px; }
.progress-text { font-variant-numeric: tabular-nums; color: var(--muted); font-size: 12px; }
.muted { color: var(--muted); }
.message { padding: 12px 14px; border-radius: 8px; background: #eef3fd; border: 1px solid #d5e0f7; margin: 10px 0; }
.message-error { background: #fdeeee; border-color: #f3d0d0; }
"""

INDEX = """<!DOCTYPE html>
<html lang="en">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        {%css%}
        <style>""" + CSS + """</style>
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""
