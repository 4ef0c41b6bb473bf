"""The numbers beside the figures, as rows of plain text: best cells, coupling, headline, λ* vs T.

Pages turn the rows into Dash tables and the report into HTML tables (escaped there); both show
the same figures as ``basin best`` — the rows are read from the same storage answers.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

import storage
from dashboards.panels import Panel
from dashboards.text import num, optimizer_label, pct, signed, slope_interval, value_label

Rows = tuple[list[str], list[list[str]]]


def _v(x) -> str:
    return "–" if x is None or pd.isna(x) else value_label(float(x), rich=False)


def _err(mean, std) -> str:
    if mean is None or pd.isna(mean):
        return "–"
    return pct(mean) + ("" if std is None or pd.isna(std) else f" ± {pct(std)}")


def _slope(c: storage.Coupling | None) -> str:
    if c is None:
        return "–"
    if c.slope is None:
        return c.verdict
    return slope_interval(c.slope, c.slope_ci)


def panel_rows(panels: Sequence[Panel], *, with_sweep: bool = False, with_schedule: bool = False,
               with_budget: bool = False) -> Rows:
    """One row per panel: its best cell, counts and coupling fit."""
    header = (["sweep"] if with_sweep else []) + ["optimizer"] + (["schedule"] if with_schedule else []) + (
        ["T"] if with_budget else []) + ["best α", "best λ_norm", "raw λ", "test error", "seeds", "cells done",
                                         "diverged", "failed", "slope d log λ_norm*/d log α", "basin"]
    rows = []
    for p in panels:
        lead = ([p.sweep] if with_sweep else []) + [optimizer_label(p.optimizer)] + (
            [p.schedule] if with_schedule else []) + ([str(p.budget) if p.budget is not None else "–"] if with_budget else [])
        b = p.best_row()
        if b is None:
            rows.append(lead + ["–"] * 9 + ["; ".join(p.notes) or "no data"])
            continue
        g = p.grid
        rows.append(lead + [
            _v(b["lr"]), _v(b["wd_norm"]), num(b["wd"]), _err(b["test_error"], b["test_error_std"]),
            str(int(b["n_seeds"])), f"{int((g['n_seeds'] > 0).sum())} / {len(g)}",
            str(int(g["n_diverged"].sum())), str(int(g["n_failed"].sum())), _slope(p.coupling),
            p.coupling.verdict if p.coupling is not None else "–",
        ])
    return header, rows


def panel_notes(panels: Sequence[Panel], *, with_sweep: bool = False) -> list[str]:
    """Border warnings and coupling notes, one line each, prefixed by the panel."""
    out = []
    for p in panels:
        name = optimizer_label(p.optimizer) + (f" ({p.sweep})" if with_sweep else "")
        if p.border:
            out.append(f"{name}: {p.border}")
        for n in p.notes:
            if p.has_data:
                out.append(f"{name}: {n}")
        if p.coupling is not None:
            out.extend(f"{name}: {n}" for n in p.coupling.notes if n != p.border)
    return list(dict.fromkeys(out))


def best_rows(best: pd.DataFrame) -> Rows:
    """``basin best``'s table."""
    header = ["sweep", "optimizer", "schedule", "T", "α", "λ_norm", "raw λ", "test error", "seeds", "done",
              "failed", "diverged", "note"]
    rows = []
    for r in best.itertuples():
        note = [r.border] if r.border else []
        if r.n_tied > 1:
            note.append(f"{r.n_tied} cells tie at the best mean")
        rows.append([r.sweep, r.optimizer, r.schedule, str(r.budget), _v(r.lr), _v(r.wd_norm), num(r.wd),
                     _err(r.test_error, r.test_error_std), str(r.n_seeds), str(r.n_complete), str(r.n_failed),
                     str(r.n_diverged), "; ".join(note)])
    return header, rows


def headline_rows(heads: pd.DataFrame) -> Rows:
    """AdamW vs Adam and SGDW vs SGD (the paper: ≈15% lower error for AdamW)."""
    header = ["sweep", "schedule", "T", "decoupled", "error", "coupled (L2)", "error", "relative change"]
    rows = []
    for h in heads.itertuples():
        change = "–" if pd.isna(h.improvement) else (
            f"{abs(100 * h.improvement):.1f}% {'lower' if h.improvement >= 0 else 'higher'} with decoupled decay")
        rows.append([h.sweep, h.schedule, str(h.budget), h.decoupled, pct(h.decoupled_error), h.coupled,
                     pct(h.coupled_error), change])
    return header, rows


def coupling_rows(results: Sequence[storage.Coupling]) -> Rows:
    """``basin best --coupling``: slope with its interval, top-10 axis angle, edge slope, verdict."""
    header = ["sweep", "optimizer", "schedule", "T", "verdict", "argmin slope [95%]", "α values",
              "top-10 axis", "edge slope", "notes"]
    rows = []
    for c in results:
        axis = "–" if c.axis_angle is None else f"{c.axis_angle:.0f}° (elong. {c.axis_elongation:.2f})"
        rows.append([c.sweep, c.optimizer, c.schedule, str(c.budget), c.verdict, _slope(c), str(c.n_alpha), axis,
                     signed(c.edge_slope), "; ".join(c.notes)])
    return header, rows


def budget_rows(table: pd.DataFrame) -> Rows:
    """λ_norm* and raw λ* per budget, with the fitted exponents (Appendix B.1: 0 and −0.5)."""
    header = ["optimizer", "schedule", "T", "α*", "λ_norm*", "raw λ*", "λ*·√T", "test error",
              "λ* ∝ T^", "λ_norm* ∝ T^"]
    rows = []
    for r in table.itertuples():
        rows.append([optimizer_label(r.optimizer), r.schedule, str(r.budget), _v(r.lr), _v(r.wd_norm), num(r.wd),
                     num(r.wd_sqrt_budget), _err(r.test_error, r.test_error_std), signed(r.wd_slope),
                     signed(r.wd_norm_slope)])
    return header, rows


def panels_best_frame(panels: Sequence[Panel]) -> pd.DataFrame:
    """The rows of ``storage.best`` for these panels (for ``storage.analysis.budget_scaling``)."""
    recs = []
    for p in panels:
        b = p.best_row()
        if b is None:
            continue
        recs.append(dict(sweep=p.sweep, optimizer=p.optimizer, schedule=p.schedule, budget=int(p.budget),
                         lr=float(b["lr"]), wd_norm=float(b["wd_norm"]), wd=float(b["wd"]),
                         test_error=float(b["test_error"]), test_error_std=float(b["test_error_std"]),
                         n_seeds=int(b["n_seeds"]), border=p.border))
    cols = ["sweep", "optimizer", "schedule", "budget", "lr", "wd_norm", "wd", "test_error", "test_error_std",
            "n_seeds", "border"]
    return pd.DataFrame(recs, columns=cols)
