"""The numbers beside the figures, as rows of plain text: best cells, coupling, headline, λ* vs T.

Pages turn the rows into Dash tables and the report into HTML tables (escaped there); both show
the same figures as ``basin best`` — the rows are read from the same storage answers, and every
number comes with its 95% interval (``[lo, hi]``), the selection method of a reported best error
and the noise the intervals include (storage's ``sources``).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

import storage
from dashboards.panels import Panel
from dashboards.text import (num, num_interval, optimizer_label, pct, pct_interval, signed_interval, slope_interval,
                             sources_label, value_label)

Rows = tuple[list[str], list[list[str]]]


def _v(x) -> str:
    return "–" if x is None or pd.isna(x) else value_label(float(x), rich=False)


def _err(value, lo=None, hi=None) -> str:
    """"12.30% [11.80%, 12.80%]" (the interval left out when missing)."""
    if value is None or pd.isna(value):
        return "–"
    ci = pct_interval(lo, hi)
    return pct(value) + (f" {ci}" if ci else "")


def _star(value, lo, hi) -> str:
    """"0.05 [0.0451, 0.0549]"."""
    if value is None or pd.isna(value):
        return "–"
    ci = num_interval(lo, hi)
    return num(value) + (f" {ci}" if ci else "")


def _change(value, lo, hi) -> str:
    """A relative improvement as signed percentages: "+12.3% [+5.1%, +19.0%]"."""
    if value is None or pd.isna(value):
        return "–"
    f = lambda x: f"{100 * float(x):+.1f}%".replace("-", "−")
    return f(value) + ("" if lo is None or hi is None or pd.isna(lo) or pd.isna(hi) else f" [{f(lo)}, {f(hi)}]")


def _p(x) -> str:
    return "–" if x is None or pd.isna(x) else f"{float(x):.2f}"


def _slope(c: storage.Coupling | None) -> str:
    if c is None:
        return "–"
    return "; ".join(f"{name} {slope_interval(v, ci)}" for name, v, ci, _ in c.estimates()) or c.verdict


def _reported(p: Panel, b: pd.Series) -> tuple[str, str]:
    """(reported error with its interval, selection method — naming the setting it picks when that
    is not the lowest-mean cell shown beside it)."""
    best = p.best
    if best is None:
        return "–", "–"
    ci = best.ci or (None, None)
    method = best.method
    if best.lr is not None and (not _same(best.lr, b["lr"]) or not _same(best.wd_norm, b["wd_norm"])):
        method += f" (selects α={_v(best.lr)}, λ_norm={_v(best.wd_norm)})"
    return _err(best.error, *ci), method


def _same(a, b) -> bool:
    return a is not None and b is not None and abs(float(a) - float(b)) <= 1e-12 * max(abs(float(a)), abs(float(b)))


def panel_rows(panels: Sequence[Panel], *, with_sweep: bool = False, with_schedule: bool = False,
               with_budget: bool = False) -> Rows:
    """One row per panel: its best cell (mean with its interval, P(best)), the reported best error
    (selection-aware, with its interval and method), the plausible optima, counts and the coupling."""
    header = (["sweep"] if with_sweep else []) + ["optimizer"] + (["schedule"] if with_schedule else []) + (
        ["T"] if with_budget else []) + [
        "best α", "best λ_norm", "raw λ", "cell mean error [95%]", "P(best)", "plausible optima",
        "reported error [95%]", "selection", "seeds", "cells done", "diverged", "failed",
        "slopes d log λ_norm/d log α [95%]", "basin", "noise in the intervals"]
    rows = []
    for p in panels:
        lead = ([p.sweep] if with_sweep else []) + [optimizer_label(p.optimizer)] + (
            [p.schedule] if with_schedule else []) + ([str(p.budget) if p.budget is not None else "–"] if with_budget else [])
        b = p.best_row()
        if b is None:
            rows.append(lead + ["–"] * (len(header) - len(lead) - 1) + ["; ".join(p.notes) or "no data"])
            continue
        g = p.grid
        reported, method = _reported(p, b)
        rows.append(lead + [
            _v(b["lr"]), _v(b["wd_norm"]), num(b["wd"]), _err(b["test_error"], b["error_lo"], b["error_hi"]),
            _p(b["p_best"]), f"{int(g['plausible'].sum())} of {int((g['n_seeds'] > 0).sum())}", reported, method,
            str(int(b["n_seeds"])), f"{int((g['n_seeds'] > 0).sum())} / {len(g)}",
            str(int(g["n_diverged"].sum())), str(int(g["n_failed"].sum())), _slope(p.coupling),
            p.coupling.verdict if p.coupling is not None else "–", sources_label(p.sources),
        ])
    return header, rows


def panel_notes(panels: Sequence[Panel], *, with_sweep: bool = False) -> list[str]:
    """Border warnings, the reported errors' and coupling notes, one line each, prefixed by the panel."""
    out = []
    for p in panels:
        name = optimizer_label(p.optimizer) + (f" ({p.sweep})" if with_sweep else "")
        if p.border:
            out.append(f"{name}: {p.border}")
        for n in p.notes:
            if p.has_data:
                out.append(f"{name}: {n}")
        if p.best is not None:
            out.extend(f"{name}: {n}" for n in p.best.notes)
        if p.coupling is not None:
            out.extend(f"{name}: {n}" for n in p.coupling.notes if n != p.border)
    return list(dict.fromkeys(out))


def evidence_notes(panels: Sequence[Panel]) -> list[str]:
    """What the intervals mean, once per page (the noise sources named as storage names them)."""
    sources = list(dict.fromkeys(sources_label(p.sources) for p in panels if p.has_data))
    if not sources:
        return []
    return [f"[lo, hi]: 95% intervals, bootstrap over {' / '.join(sources)} (storage/evidence.py); P(best): the "
            "share of draws in which the cell is the best; squares: the plausible optima, cells not "
            "distinguishably worse than the best; reported error: the best setting's error on noise it was not "
            "selected on (cross_fit, validation), or the naive minimum, biased low"]


def best_rows(best: pd.DataFrame) -> Rows:
    """``basin best``'s table: the reported error with its interval, selection, P(best), plausible optima."""
    header = ["sweep", "optimizer", "schedule", "T", "α", "λ_norm", "raw λ", "reported error [95%]", "selection",
              "cell mean [95%]", "P(best)", "plausible", "seeds", "done", "failed", "diverged", "noise", "note"]
    rows = []
    for r in best.itertuples():
        note = [r.border] if r.border else []
        if r.n_tied > 1:
            note.append(f"{r.n_tied} cells tie at the best mean")
        if r.evidence_notes:
            note.append(r.evidence_notes)
        rows.append([r.sweep, r.optimizer, r.schedule, str(r.budget), _v(r.lr), _v(r.wd_norm), num(r.wd),
                     _err(r.error, r.error_lo, r.error_hi), r.selection,
                     _err(r.test_error, r.test_error_lo, r.test_error_hi), _p(r.p_best), str(r.n_plausible),
                     str(r.n_seeds), str(r.n_complete), str(r.n_failed), str(r.n_diverged), r.sources,
                     "; ".join(note)])
    return header, rows


def headline_rows(heads: pd.DataFrame) -> Rows:
    """AdamW vs Adam and SGDW vs SGD (the paper: ≈15% lower error for AdamW), with the improvement's interval."""
    header = ["sweep", "schedule", "T", "decoupled", "error", "coupled (L2)", "error",
              "relative improvement [95%]", "selection", "paired over seeds", "noise", "note"]
    rows = []
    for h in heads.itertuples():
        change = _change(h.improvement, h.improvement_lo, h.improvement_hi)
        rows.append([h.sweep, h.schedule, str(h.budget), h.decoupled, pct(h.decoupled_error), h.coupled,
                     pct(h.coupled_error), change, h.selection, "yes" if h.paired else "no", h.sources, h.notes])
    return header, rows


def coupling_rows(results: Sequence[storage.Coupling]) -> Rows:
    """``basin best --coupling``: verdict and what it rests on, the λ_norm*(α), edge and valley slopes
    with their intervals and verdicts, their noise, the top-10 axis angle."""
    header = ["sweep", "optimizer", "schedule", "T", "verdict", "rests on", "λ* slope [95%]", "basin rows in the λ* fit",
              "edge slope [95%]", "α rows locate the edge", "valley slope [95%]", "noise", "top-10 axis", "notes"]
    rows = []
    for c in results:
        axis = "–" if c.axis_angle is None else f"{c.axis_angle:.0f}° (elong. {c.axis_elongation:.2f})"
        est = {name: f"{slope_interval(v, ci)} → {verdict}" for name, v, ci, verdict in c.estimates()}
        rows.append([c.sweep, c.optimizer, c.schedule, str(c.budget), c.verdict, " + ".join(c.rests_on) or "–",
                     est.get("λ*", "–"), str(c.n_argmin_rows), est.get("edge", "–"), str(c.n_alpha),
                     est.get("valley", "–"), sources_label(c.sources), axis, "; ".join(c.notes)])
    return header, rows


def budget_rows(table: pd.DataFrame) -> Rows:
    """``storage.best_by_budget``: λ_norm* and raw λ* per budget with intervals, the fitted exponents
    with theirs and the verdict against the predictions (the paper's √ rule: k = 0)."""
    header = ["optimizer", "schedule", "T", "best α", "λ_norm* [95%]", "raw λ* [95%]", "reported error [95%]",
              "selection", "final train error", "seeds", "λ_norm* ∝ T^k [95%]", "raw λ* ∝ T^ [95%]", "verdict",
              "noise"]
    rows = []
    for r in table.itertuples():
        rows.append([optimizer_label(r.optimizer), r.schedule, str(r.budget), _v(r.lr),
                     _star(r.lambda_norm_star, r.lambda_norm_lo, r.lambda_norm_hi) + ("" if r.located else " (not located)"),
                     _star(r.raw_star, r.raw_lo, r.raw_hi), _err(r.error, r.error_lo, r.error_hi), r.selection,
                     pct(r.train_error), str(r.n_seeds), signed_interval(r.k, r.k_lo, r.k_hi),
                     signed_interval(r.raw_exponent, r.raw_exponent_lo, r.raw_exponent_hi), r.verdict, r.sources])
    return header, rows
