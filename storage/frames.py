"""The tidy frames every answer starts from: one row per study, one row per trial.

:func:`studies_frame` — the Basin studies with their attrs (cheap: no trial read);
:func:`select_studies` — filter it by sweep / optimizer / schedule / study, naming what exists
when a name is unknown; :func:`trials_frame` / :func:`trials_for` — one row per trial (every
state, duplicates included) with the grid coordinates, the value and chosen scalar attrs.
The rules that turn trials into grid points and cells are in :mod:`storage.analysis`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from storage.analysis import STUDY_COLS
from storage.connect import StorageLike, reader, storage_label
from storage.errors import EmptyStorageError, UnknownNameError, read_errors
from storage.schema import FRAME_ATTRS, OPTIMIZER_INFO, PARAMS, optimizer_info
from storage.sql import attr_column, fetch_attrs, fetch_trial_rows, study_attr_rows

#: Study attrs carried into frames (``spec`` and ``schedule_params`` stay in the study).
STUDY_META = ("sweep", "optimizer", "schedule", "dataset", "model", "metric", "decay", "batch_size", "n_train", "n_test",
              "n_val", "curve_test", "num_classes", "chance", "grid_size", "basin_version", "lambda_scale", "adaptive")
#: The optimizer facts carried into the studies frame, one column each (from the ``optimizer_info`` attr).
OPTIMIZER_COLS = tuple(k for k in OPTIMIZER_INFO if k != "name")
_NUMERIC_ATTRS = {"wd", "seconds", "val_value", "value_se"}


@read_errors
def studies_frame(storage: StorageLike) -> pd.DataFrame:
    """One row per Basin study (a study with a ``sweep`` user attr); others are ignored.

    Columns: study_id, study, then :data:`STUDY_META` (missing attrs are None), then
    :data:`OPTIMIZER_COLS` — family, decay_form, label, restart_label, pair — from the study's
    ``optimizer_info`` attr (a study recorded before it: :func:`storage.schema.optimizer_info`'s legacy rows).
    """
    rdb = reader(storage)
    by_id: dict[int, dict] = {}
    for study_id, name, key, value_json in study_attr_rows(rdb.engine, (*STUDY_META, "optimizer_info")):
        rec = by_id.setdefault(study_id, {"study_id": study_id, "study": name})
        if key is not None:
            rec[key] = json.loads(value_json)
    recs = [_with_optimizer(r) for r in by_id.values() if isinstance(r.get("sweep"), str)]
    frame = pd.DataFrame(recs, columns=["study_id", "study", *STUDY_META, *OPTIMIZER_COLS])
    return frame.sort_values(STUDY_COLS, kind="stable").reset_index(drop=True)


def _with_optimizer(rec: dict) -> dict:
    """A study's attrs with its optimizer facts as :data:`OPTIMIZER_COLS` in place of ``optimizer_info``."""
    facts = optimizer_info(rec.get("optimizer"), rec.pop("optimizer_info", None))
    return {**rec, **{key: facts[key] for key in OPTIMIZER_COLS}}


def study_chance(meta_row) -> float | None:
    """The chance level 1 − 1/C a study recorded (what its diverged runs hold), None if it recorded none:
    the one reader of it (``meta_row`` a row of :func:`studies_frame`)."""
    value = meta_row.get("chance")
    return float(value) if value is not None and pd.notna(value) else None


def listing(values: Iterable) -> str:
    """Distinct values, sorted and comma-separated (the first 20), for "X here: …" messages."""
    values = sorted({str(v) for v in values})
    shown = ", ".join(values[:20])
    return shown + (f", … ({len(values)} in all)" if len(values) > 20 else "")


def select_studies(
    meta: pd.DataFrame,
    *,
    where: str,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    study: str | None = None,
) -> pd.DataFrame:
    """Filter the studies frame; an unknown name raises UnknownNameError listing what exists."""
    if meta.empty:
        raise EmptyStorageError(f"no Basin sweep recorded in {where} yet: run a sweep first, or pass another --storage")
    if study is not None:
        if study not in set(meta["study"]):
            raise UnknownNameError(f"unknown study {study!r}; studies here: {listing(meta['study'])}")
        meta = meta[meta["study"] == study]
    if sweep is not None:
        if sweep not in set(meta["sweep"]):
            raise UnknownNameError(f"unknown sweep {sweep!r}; sweeps here: {listing(meta['sweep'])}")
        meta = meta[meta["sweep"] == sweep]
    scope = f" in sweep {sweep!r}" if sweep is not None else ""
    for col, wanted in (("optimizer", optimizer), ("schedule", schedule)):
        if wanted is None:
            continue
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        unknown = [w for w in wanted if w not in set(meta[col])]
        if unknown:
            raise UnknownNameError(f"unknown {col} {', '.join(map(repr, unknown))}{scope}; "
                                   f"{col}s here: {listing(meta[col])}")
        meta = meta[meta[col].isin(wanted)]
    return meta


def _decode_attr(key: str, raw: pd.Series) -> pd.Series:
    """JSON text → values, vectorised for the scalar attrs Basin records."""
    if key == "diverged":
        return raw.eq("true")
    if key in _NUMERIC_ATTRS:
        try:  # JSON numbers (and null): Python's float() on each, ≈ 2× pandas' parser, the same values
            return pd.Series(raw.to_numpy(dtype=object).astype(float), index=raw.index)
        except (TypeError, ValueError):  # some value is not a number: NaN for it
            return pd.to_numeric(raw, errors="coerce").astype(float)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)  # few distinct values: decode each once
    decoded = np.empty(len(uniques) + 1, dtype=object)
    decoded[:-1] = [json.loads(u) for u in uniques]
    decoded[-1] = None
    return pd.Series(decoded[codes], index=raw.index, dtype=object)


@read_errors
def trials_frame(
    storage: StorageLike,
    sweep: str | None = None,
    study: str | None = None,
    *,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    budget: int | None = None,
    attrs: Sequence[str] = FRAME_ATTRS,
) -> pd.DataFrame:
    """Tidy frame, one row per trial (every state, duplicates included) of the selected studies.

    Columns: sweep, optimizer, schedule, study, trial_id, number, state, lr, wd_norm, budget,
    seed, value, then one column per key of ``attrs`` (default :data:`storage.schema.FRAME_ATTRS`:
    diverged (bool), wd (raw λ at start), seconds, node, error; any user-attr key works, decoded
    from JSON). ``value`` is the final test error (NaN for FAIL). Use
    :func:`storage.analysis.effective_trials` for one row per grid point.
    """
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizer,
                          schedule=schedule, study=study)
    return trials_for(rdb, meta, attrs=attrs, budget=budget)


def frame_columns(attrs: Sequence[str]) -> list[str]:
    return [*STUDY_COLS, "study", "trial_id", "number", "state", *PARAMS, "value", *attrs]


def trials_for(rdb, meta: pd.DataFrame, *, attrs: Sequence[str] = FRAME_ATTRS, budget: int | None = None) -> pd.DataFrame:
    """:func:`trials_frame` for studies already selected (rows of :func:`studies_frame`)."""
    attrs = list(dict.fromkeys(attrs))
    if meta.empty:
        return pd.DataFrame(columns=frame_columns(attrs))
    # ``error`` exists on FAIL trials only: read it for those afterwards instead of probing every trial.
    joined = [a for a in attrs if a != "error"]
    raw = fetch_trial_rows(rdb.engine, meta["study_id"], joined, budget=budget)
    raw = raw.dropna(subset=list(PARAMS))  # not a Basin trial (no grid params): skip it
    frame = pd.DataFrame(
        {
            "trial_id": raw["trial_id"].astype(np.int64),
            "number": raw["number"].astype(np.int64),
            "study_id": raw["study_id"].astype(np.int64),
            "state": raw["state"].astype(str),
            "lr": raw["lr"].astype(float),
            "wd_norm": raw["wd_norm"].astype(float),
            "budget": raw["budget"].round().astype(np.int64),
            "seed": raw["seed"].round().astype(np.int64),
            "value": _values(raw),
        }
    )
    for i, key in enumerate(joined):
        frame[key] = _decode_attr(key, raw[attr_column(i)])
    if "error" in attrs:
        failed = frame.loc[frame["state"].eq("FAIL"), "trial_id"].tolist()
        errors = fetch_attrs(rdb.engine, failed, ["error"]) if failed else {}
        text = pd.Series({t: a.get("error") for t, a in errors.items()}, dtype=object)
        frame["error"] = frame["trial_id"].map(text).astype(object).where(frame["trial_id"].isin(text.index), None)
    frame = frame.merge(meta[["study_id", "study", *STUDY_COLS]], on="study_id", how="left", sort=False)
    return frame[frame_columns(attrs)].reset_index(drop=True)


def _values(raw: pd.DataFrame) -> pd.Series:
    """The objective value: Optuna keeps ±inf as NULL with value_type INF_POS / INF_NEG."""
    value = raw["value"].astype(float)
    kind = raw["value_type"]
    if not kind.isin(("INF_POS", "INF_NEG")).any():  # the usual case: nothing to mask
        return value
    value = value.mask(kind.eq("INF_POS"), np.inf)
    return value.mask(kind.eq("INF_NEG"), -np.inf)


__all__ = ["OPTIMIZER_COLS", "STUDY_META", "frame_columns", "listing", "select_studies", "studies_frame", "trials_for",
           "trials_frame"]
