"""One converter to plain JSON values, shared by ``basin best --json`` and the dashboard's JSON API.

:func:`jsonable` turns numpy arrays and scalars into Python lists and numbers, NaN, ±inf, ``pd.NA`` and
``pd.NaT`` into ``None``, recurses into dicts (keys as strings), lists and tuples, and a DataFrame into
its records (:func:`records`). Anything else is returned as it is.

Light: numpy and pandas are not imported here; a value can only be one of theirs when its package is
already loaded, so they are looked up in ``sys.modules``.
"""

from __future__ import annotations

import math
import sys


def jsonable(value):
    """Plain JSON values: numpy/pandas scalars → Python, NaN/inf/NA → None, containers recursed."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(value, np.ndarray):
            return [jsonable(v) for v in value.tolist()]
        if isinstance(value, np.bool_):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value) if math.isfinite(value) else None
    pd = sys.modules.get("pandas")
    if pd is not None:
        if value is pd.NA or value is pd.NaT:
            return None
        if isinstance(value, pd.DataFrame):
            return records(value)
    return value


def records(frame) -> list[dict]:
    """A DataFrame as a list of JSON-ready row dicts."""
    return [jsonable(r) for r in frame.to_dict(orient="records")]
