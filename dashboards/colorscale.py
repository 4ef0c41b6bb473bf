"""How the heatmaps map mean test error to colour: the modes, :class:`ColorSpec`, the shared
:class:`ColorRange` of a set of panels and its colour bar.

The colour scale must not be washed out by diverged runs (recorded at chance error 1 − 1/C):
by default it is clipped at the 90th percentile of the non-diverged cells, or capped at chance,
and the colour bar says which. Every panel of one figure shares one range (one ``coloraxis``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dashboards.figkit import nice_step
from dashboards.panels import Panel
from dashboards.style import COLORSCALE
from dashboards.text import esc, pct

#: The colour-scale modes, as the pages' radio items label them.
COLOR_MODES = {
    "quantile": "clip at the 90th percentile of non-diverged cells",
    "chance": "cap at chance level (1 − 1/C)",
    "full": "full range",
}


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


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Colour-bar ticks inside [lo, hi): 1-2-5 decades on a log scale, a nice step otherwise."""
    ticks: list[float] = []
    if log:
        ticks = [m * 10.0**e for e in range(-4, 1) for m in (1, 2, 5) if lo <= m * 10.0**e < hi]
    if len(ticks) < 3:
        step = nice_step(hi - lo)
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
