"""Heatmap panels: storage's Figure 2 panel data, and the coupling's lines and points to draw.

A *panel* is one heatmap of Figure 2: (sweep, optimizer, schedule, T). Its data — the grid in
``basin_grid``'s columns plus the evidence (each cell's 95% interval, P(best), the plausible
optima), the best setting's honestly reported error and the coupling verdict with its lines and
bands — is storage's panel-data step, :func:`storage.figure2_panels` (one read for every panel of a
(sweep, schedule, T), one paired seed draw, each panel through storage's one per-panel rule).
:class:`Panel` is :class:`storage.PanelData`. No rule of the answers is computed here:
:func:`stars` and :func:`fitted_lines` only turn storage's λ_norm*(α), edge and valley points into
log₂ coordinates for the figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import storage

#: The heatmap grid's columns: ``basin_grid``'s.
GRID = storage.PANEL_GRID_COLUMNS
LEVEL = storage.DEFAULT_LEVEL
Panel = storage.PanelData
empty_panel = storage.empty_panel
read_panels = storage.figure2_panels


# --- the coupling's lines and points: storage's, drawn ----------------------------------------------


def _log2(v) -> float:
    return math.log2(v) if v is not None and v > 0 and math.isfinite(v) else math.nan


@dataclass(frozen=True)
class Star:
    """storage's λ_norm*(α) of one α row (descriptive: the row's refined argmin) in log₂ units, with the
    row's over-regularisation edge and whether the edge is located inside the grid."""

    lr: float
    wd_norm: float
    lo: float
    hi: float
    edge: float
    edge_lo: float
    edge_hi: float
    edge_located: bool

    @property
    def x(self) -> float:
        return math.log2(self.lr)

    @property
    def y(self) -> tuple[float, float, float]:
        """(log₂ λ_norm*, log₂ lo, log₂ hi)."""
        return _log2(self.wd_norm), _log2(self.lo), _log2(self.hi)

    @property
    def edge_y(self) -> tuple[float, float, float]:
        """(log₂ edge, log₂ lo, log₂ hi)."""
        return _log2(self.edge), _log2(self.edge_lo), _log2(self.edge_hi)


def stars(coupling: storage.Coupling | None) -> list[Star]:
    """Every α row's λ_norm* and edge with their intervals, as storage located them (rows sorted by α)."""
    if coupling is None:
        return []
    nan = lambda v: math.nan if v is None else float(v)
    return sorted((Star(r["lr"], nan(r["lambda_star"]), nan(r["lambda_star_lo"]), nan(r["lambda_star_hi"]),
                        nan(r["edge"]), nan(r["edge_lo"]), nan(r["edge_hi"]), bool(r["edge_located"]))
                   for r in coupling.rows), key=lambda s: s.lr)


@dataclass(frozen=True)
class Line:
    """One of storage's fitted lines (``argmin``, ``valley`` or ``edge``) at each α row, log₂ units, with its band."""

    name: str
    slope: float
    x: list[float]
    y: list[float]
    lo: list[float]
    hi: list[float]

    def band(self) -> tuple[list[float], list[float]]:
        """A closed polygon (x, y): upper ends left to right, then lower ends back."""
        return self.x + self.x[::-1] + self.x[:1], self.hi + self.lo[::-1] + self.hi[:1]


def fitted_lines(coupling: storage.Coupling | None) -> list[Line]:
    """storage's fitted λ_norm*(α), valley and edge lines over the panel's α rows (those it has a slope for)."""
    if coupling is None:
        return []
    out = []
    for name, slope in (("argmin", coupling.argmin_slope), ("valley", coupling.slope), ("edge", coupling.edge_slope)):
        if slope is None or not math.isfinite(slope):
            continue
        pts = sorted((r["lr"], *(_log2(r[f"{name}_line{k}"]) for k in ("", "_lo", "_hi"))) for r in coupling.rows)
        pts = [p for p in pts if all(math.isfinite(v) for v in p[1:])]
        if len(pts) >= 2:
            out.append(Line(name, float(slope), [math.log2(p[0]) for p in pts], [p[1] for p in pts],
                            [p[2] for p in pts], [p[3] for p in pts]))
    return out
