"""Reading an interval: the two rules every verdict of Basin is made of.

* :func:`side` — where a 95% interval [lo, hi] lies against a threshold: ``above`` (lo > threshold),
  ``below`` (hi < threshold), else ``straddles`` (no interval counts as straddling). AdamW vs Adam
  (``better``/``worse``/``not distinguishable`` at 0) and ``basin reproduce``'s interval claims
  (``reproduced``/``not reproduced``/``inconclusive`` at the paper's threshold) are this rule.
* :func:`near` — which predicted values the interval comes within ``margin`` of. The coupling's
  slope verdict (−1 coupled, 0 decoupled, margin 0.25: decided when exactly one is near) and the
  budget exponent's consistent predictions (margin 0: the predictions the interval contains) are
  this rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

ABOVE, BELOW, STRADDLES = "above", "below", "straddles"


def _interval(ci) -> tuple[float, float] | None:
    if ci is None:
        return None
    lo, hi = ci
    if lo is None or hi is None or not (math.isfinite(lo) and math.isfinite(hi)):
        return None
    return float(lo), float(hi)


def side(ci, threshold: float = 0.0) -> str:
    """``above``, ``below`` or ``straddles``: the interval ``ci`` = (lo, hi) against ``threshold``."""
    iv = _interval(ci)
    if iv is None:
        return STRADDLES
    lo, hi = iv
    return ABOVE if lo > threshold else BELOW if hi < threshold else STRADDLES


def near(ci, predictions: Mapping[str, float], margin: float = 0.0) -> tuple[str, ...]:
    """The names of the ``predictions`` that [lo − margin, hi + margin] contains (none without an interval)."""
    iv = _interval(ci)
    if iv is None:
        return ()
    lo, hi = iv
    return tuple(name for name, p in predictions.items() if lo - margin <= p <= hi + margin)


__all__ = ["ABOVE", "BELOW", "STRADDLES", "near", "side"]
