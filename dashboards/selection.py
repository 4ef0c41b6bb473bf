"""The selection of a page as a URL query string, and the rules that make any selection valid.

Every page keeps what is shown in the URL (``/basins?sweep=fig2&schedule=cosine&budget=100&opt=sgd
&opt=sgdw``), so a view can be shared by copying the address. Names travel as repeated
parameters, never comma-joined (a sweep name may contain a comma). Whatever the URL says, the
``pick_*`` helpers return a selection that exists in the storage, falling back to the paper's
defaults: cosine annealing, the longest budget, and SGD, SGDW, Adam, AdamW.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import parse_qs, urlencode

from dashboards.text import PAPER_FOUR

Query = Mapping[str, list[str]]


def parse(search: str | None) -> dict[str, list[str]]:
    """``"?a=1&b=x&b=y"`` → ``{"a": ["1"], "b": ["x", "y"]}``."""
    return parse_qs((search or "").lstrip("?"), keep_blank_values=False)


def one(q: Query, key: str) -> str | None:
    values = q.get(key) or []
    return values[0] if values else None


def many(q: Query, key: str) -> list[str]:
    return list(dict.fromkeys(q.get(key) or []))


def integer(q: Query, key: str) -> int | None:
    value = one(q, key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def flag(q: Query, key: str) -> bool:
    return one(q, key) in ("1", "true", "yes", "on")


def encode(params: Mapping[str, object]) -> str:
    """The query string of ``params`` (lists repeat the key; None, "" and [] are left out)."""
    pairs = []
    for key, value in params.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        for v in values:
            if v is None or v == "" or v is False:
                continue
            pairs.append((key, "1" if v is True else str(v)))
    return "?" + urlencode(pairs) if pairs else ""


def pick(options: Sequence, wanted, *defaults):
    """``wanted`` if it is an option, else the first default that is, else the first option (or None)."""
    if wanted in options:
        return wanted
    for d in defaults:
        if d in options:
            return d
    return options[0] if options else None


def pick_budget(budgets: Sequence[int], wanted: int | None, default: int | None = None) -> int | None:
    """``wanted`` if recorded, else ``default``, else the longest budget (the paper's figures use the full run)."""
    budgets = sorted(budgets)
    if wanted in budgets:
        return wanted
    if default in budgets:
        return default
    return budgets[-1] if budgets else None


def pick_many(options: Sequence[str], wanted: Iterable[str], default: Sequence[str] = PAPER_FOUR,
              limit: int | None = None) -> list[str]:
    """The wanted names that exist (in the order asked), else the defaults that exist, else the first few."""
    chosen = [w for w in dict.fromkeys(wanted) if w in options]
    if not chosen:
        chosen = [d for d in default if d in options]
    if not chosen:
        chosen = list(options[: limit or 4])
    return chosen[:limit] if limit else chosen


def carry(q: Query) -> dict[str, list[str]]:
    """The parameters every page understands, carried along by the navigation links."""
    return {k: q[k] for k in ("sweep", "schedule", "budget") if q.get(k)}
