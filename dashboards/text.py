"""Text shown in figures and pages: 2^k labels, percentages, optimizer names, escaping.

Plotly renders titles, hover text, legend names and annotations through its own small HTML
parser (``<b>``, ``<br>``, ``<a href>`` …), so every recorded name (sweep, study, optimizer,
schedule — free text typed into a spec) goes through :func:`esc` before it reaches a figure:
``<script>`` in a sweep name is then shown as the text ``<script>``. Dash components render
strings as text already; the offline report escapes with :func:`html.escape` itself.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence

import storage

_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")

#: The paper's optimizers first, in Figure 2's reading order (SGD, SGDW / Adam, AdamW).
OPTIMIZER_ORDER = ("sgd", "sgdw", "adam", "adamw", "adamw-torch")
#: Figure 1's schedule order, then warm restarts.
SCHEDULE_ORDER = ("fixed", "step-drop", "cosine", "warm-restarts")
PAPER_FOUR = ("sgd", "sgdw", "adam", "adamw")

_SCHEDULE_LABELS = {"fixed": "fixed", "step-drop": "step-drop", "cosine": "cosine annealing",
                    "warm-restarts": "warm restarts"}


def esc(text: object) -> str:
    """``text`` safe for Plotly's text renderer: ``&``, ``<`` and ``>`` become entities."""
    return html.escape(str(text), quote=False)


def ordered(names: Iterable[str], order: Sequence[str]) -> list[str]:
    """``names`` with those in ``order`` first (in that order), the rest sorted after them."""
    names = list(dict.fromkeys(names))
    known = [n for n in order if n in names]
    return known + sorted(n for n in names if n not in order)


def optimizer_label(name: str, *, restarts: bool = False, info: Mapping | None = None) -> str:
    """Display name of an optimizer (plain text, unescaped): ``adamw`` → ``AdamW`` (``AdamWR`` with
    ``restarts``). ``info``: the study's recorded ``optimizer_info`` attr when the caller holds it; the
    labels are storage's (``storage.schema.optimizer_info``), which the sweep driver recorded from
    the trainers' optimizer table — the dashboard keeps no label table of its own."""
    facts = storage.optimizer_info(name, info)
    return (restarts and facts["restart_label"]) or facts["label"]


def schedule_label(name: str) -> str:
    return _SCHEDULE_LABELS.get(name, name)


def log2_exponent(value: float) -> int | None:
    """k when ``value`` is 2^k (to 1e-9 in the exponent), else None."""
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        return None
    k = math.log2(value)
    return int(round(k)) if abs(k - round(k)) < 1e-9 else None


def power(k: int, *, rich: bool = True) -> str:
    """2^k as ``2<sup>k</sup>`` (Plotly) or ``2ᵏ`` (plain text)."""
    return f"2<sup>{k}</sup>" if rich else "2" + str(k).translate(_SUPERSCRIPT)


def num(value: float | None, digits: int = 3) -> str:
    """A number in ``digits`` significant digits; "–" for None/NaN."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{float(value):.{digits}g}"


def value_label(value: float, *, rich: bool = True) -> str:
    """A grid value: 2^k when it is a power of two, else 3 significant digits."""
    k = log2_exponent(value)
    return power(k, rich=rich) if k is not None else num(value)


def _exact_at_4(value: float) -> bool:
    return math.isclose(float(f"{value:.4g}"), value, rel_tol=1e-9)


def axis_labels(values: Sequence[float], *, rich: bool = True) -> list[str]:
    """Tick labels of a log₂ grid axis.

    Powers of two read 2^k (the paper's axes); other values print as numbers when four
    significant digits show them exactly (0.003125, 0.05); otherwise, when the grid is c·2^k
    for one c (e.g. 0.1·2^k), as c·2^k with c the grid's shortest value.
    """
    values = [float(v) for v in values]
    if not values:
        return []
    if all(log2_exponent(v) is not None for v in values):
        return [power(log2_exponent(v), rich=rich) for v in values]
    if all(_exact_at_4(v) for v in values):
        return [num(v, 4) for v in values]
    base = min(values, key=lambda v: (len(f"{v:.12g}"), v))
    ratios = [log2_exponent(v / base) for v in values]
    if all(r is not None for r in ratios):
        return [num(base) if r == 0 else f"{num(base)}·{power(r, rich=rich)}" for r in ratios]
    return [num(v) for v in values]


def pct(value: float | None, digits: int = 2) -> str:
    """A fraction as a percentage: 0.1234 → "12.34%"; "–" for None/NaN."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    return f"{100 * float(value):.{digits}f}%"


def signed(value: float | None, digits: int = 2) -> str:
    """A slope with a proper minus sign: −0.95."""
    if value is None or not math.isfinite(float(value)):
        return "–"
    text = f"{float(value):.{digits}f}"
    if float(text) == 0:
        text = text.lstrip("-")  # no "−0.00" for a value that rounds to zero
    return text.replace("-", "−")


def slope_interval(slope: float | None, ci: tuple[float, float] | None) -> str:
    """A fitted slope and its interval: "−0.95 [−1.10, −0.80]" (no interval: "−0.95")."""
    return signed(slope) + (f" [{signed(ci[0])}, {signed(ci[1])}]" if ci else "")


def level_label(level: float) -> str:
    """An interval's level as text: 0.95 → "95%"."""
    return f"{100 * float(level):g}%"


def pct_interval(lo: float | None, hi: float | None, digits: int = 2) -> str:
    """An interval of fractions as percentages: "[11.80%, 12.80%]"; "" when either end is missing."""
    if any(v is None or not math.isfinite(float(v)) for v in (lo, hi)):
        return ""
    return f"[{pct(lo, digits)}, {pct(hi, digits)}]"


def num_interval(lo: float | None, hi: float | None, digits: int = 3) -> str:
    """An interval of plain numbers: "[0.0421, 0.0572]"; "" when either end is missing."""
    if any(v is None or not math.isfinite(float(v)) for v in (lo, hi)):
        return ""
    return f"[{num(lo, digits)}, {num(hi, digits)}]"


def signed_interval(value: float | None, lo: float | None, hi: float | None, digits: int = 2) -> str:
    """A signed estimate and its interval: "−0.95 [−1.10, −0.80]" (without an interval: "−0.95")."""
    ok = all(v is not None and math.isfinite(float(v)) for v in (lo, hi))
    return signed(value, digits) + (f" [{signed(lo, digits)}, {signed(hi, digits)}]" if ok else "")


def sources_label(sources) -> str:
    """The noise an interval includes, as storage names it: "test set + seeds" ("none" when empty)."""
    if isinstance(sources, str):
        return sources or "none"
    return " + ".join(sources) or "none"


def count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: "1 seed", "3 seeds"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
