"""Write side: one Optuna study per (sweep, optimizer, schedule), one trial per grid point.

What is written is declared in :mod:`storage.schema` (the grid point, the study name, the user
attrs); this module validates against it and writes.

Trials are written whole with ``optuna.trial.create_trial`` + ``Study.add_trial`` (one
transaction per trial, no ask/tell), so a trial is either fully recorded or absent. Recording the
same grid point twice leaves two trials; readers (:mod:`storage.analysis`) use the latest COMPLETE
trial of a point, else its latest FAIL.
"""

from __future__ import annotations

import datetime
import json
import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from storage import tables
from storage.connect import check_writable
from storage.errors import UnknownNameError
from storage.schema import OPTIONAL_TRIAL_ATTRS, PARAMS, STATES, STUDY_ATTRS, TRIAL_ATTRS, GridPoint, study_name
from storage.sql import sweep_study_ids


def grid_distributions(
    lrs: Iterable[float], wd_norms: Iterable[float], budgets: Iterable[int], seeds: Iterable[int]
) -> dict[str, BaseDistribution]:
    """The Optuna distributions of a grid: log-uniform α and λ_norm, integer budget and seed,
    each bounded by the grid's min and max (what :func:`record_trial` expects)."""
    lrs, wd_norms, budgets, seeds = (list(v) for v in (lrs, wd_norms, budgets, seeds))
    for label, values in (("lrs", lrs), ("wd_norms", wd_norms), ("budgets", budgets), ("seeds", seeds)):
        if not values:
            raise ValueError(f"{label} is empty")
    return {
        "lr": FloatDistribution(float(min(lrs)), float(max(lrs)), log=True),
        "wd_norm": FloatDistribution(float(min(wd_norms)), float(max(wd_norms)), log=True),
        "budget": IntDistribution(int(min(budgets)), int(max(budgets))),
        "seed": IntDistribution(int(min(seeds)), int(max(seeds))),
    }


def _check_types(what: str, attrs: Mapping[str, Any], schema: Mapping[str, Any], required: Iterable[str]) -> None:
    missing = [k for k in required if k not in attrs]
    if missing:
        raise ValueError(f"{what} lacks {', '.join(missing)} (required: {', '.join(schema)})")
    for key, kind in schema.items():
        if key in attrs and attrs[key] is not None:
            value = attrs[key]
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{what} {key!r} must be {_type_name(kind)}, got {type(value).__name__}")
    try:
        json.dumps(dict(attrs))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be JSON-serialisable: {exc}") from None


def _type_name(kind) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def ensure_study(
    storage: optuna.storages.BaseStorage, *, sweep: str, optimizer: str, schedule: str, attrs: Mapping[str, Any]
) -> optuna.Study:
    """Create or load the study ``sweep/optimizer/schedule`` (direction minimize) and set its user attrs.

    ``attrs`` must hold every key of :data:`STUDY_ATTRS` except ``sweep``/``optimizer``/``schedule``
    (taken from the arguments). Safe when several processes call it at once: Optuna's
    ``load_if_exists`` handles the creation race; only attrs whose value changed are written.
    """
    check_writable(storage)
    name = study_name(sweep, optimizer, schedule)
    full = {**dict(attrs), "sweep": sweep, "optimizer": optimizer, "schedule": schedule}
    _check_types(f"study attrs of {name}", full, STUDY_ATTRS, STUDY_ATTRS)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
    if study.directions != [optuna.study.StudyDirection.MINIMIZE]:
        raise ValueError(f"study {name} exists with directions {study.directions}; Basin studies minimise test error")
    current = study.user_attrs
    for key, value in full.items():
        if key not in current or current[key] != json.loads(json.dumps(value)):
            study.set_user_attr(key, value)
    return study


def _is_number(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _name_parts(study: optuna.Study) -> tuple[str, str]:
    parts = study.study_name.rsplit("/", 2)
    if len(parts) != 3:
        raise ValueError(f"study {study.study_name!r} is not a Basin study (name is not sweep/optimizer/schedule)")
    return parts[1], parts[2]


def record_trial(
    study: optuna.Study,
    point: GridPoint,
    distributions: Mapping[str, BaseDistribution],
    *,
    state: str,
    value: float | None,
    intermediate: Mapping[int, float],
    user_attrs: Mapping[str, Any],
) -> None:
    """Record one finished grid point as one trial (a single transaction).

    ``state="COMPLETE"``: ``value`` is the final test error in [0, 1] (chance error 1 − 1/C for
    a diverged run), ``intermediate`` maps epoch (1-based) → test error (None → NaN), and
    ``user_attrs`` holds every key of :data:`TRIAL_ATTRS` (extra keys are kept). ``state="FAIL"``: ``value`` is None and ``user_attrs`` holds
    ``error`` (text); other attrs are optional. ``optimizer``/``schedule`` attrs are added from
    ``point``. ``distributions`` has ``lr``, ``wd_norm``, ``budget``, ``seed``
    (see :func:`grid_distributions`); Optuna rejects a point outside them.
    """
    check_writable(study._storage)
    optimizer, schedule = _name_parts(study)
    if (point.optimizer, point.schedule) != (optimizer, schedule):
        raise ValueError(
            f"point is {point.optimizer}/{point.schedule} but study {study.study_name!r} is {optimizer}/{schedule}"
        )
    if state not in STATES:
        raise ValueError(f"state must be one of {', '.join(STATES)}; got {state!r}")
    if set(distributions) != set(PARAMS):
        raise ValueError(f"distributions must have exactly the keys {', '.join(PARAMS)}; got {sorted(distributions)}")
    attrs = dict(user_attrs)
    if state == "COMPLETE":
        if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"a COMPLETE trial needs a test error in [0, 1] as value; got {value!r}")
        _check_types("trial user_attrs", attrs, {**TRIAL_ATTRS, **OPTIONAL_TRIAL_ATTRS}, TRIAL_ATTRS)
        value = float(value)
    else:
        if value is not None:
            raise ValueError(f"a FAIL trial has no value; got {value!r}")
        if not isinstance(attrs.get("error"), str) or not attrs["error"]:
            raise ValueError("a FAIL trial needs user_attrs['error'] (text saying what went wrong)")
        _check_types("trial user_attrs", attrs, {**TRIAL_ATTRS, **OPTIONAL_TRIAL_ATTRS}, ())
    steps = {}
    for step, v in intermediate.items():
        if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
            raise ValueError(f"intermediate keys are 1-based epochs (int); got {step!r}")
        if v is not None and not _is_number(v):
            raise ValueError(f"intermediate value at epoch {step} must be a number or None; got {v!r}")
        steps[int(step)] = math.nan if v is None else float(v)  # None: no test error that epoch
    attrs["optimizer"], attrs["schedule"] = point.optimizer, point.schedule
    trial = optuna.trial.create_trial(
        state=optuna.trial.TrialState[state],
        value=value,
        params=point.params(),
        distributions=dict(distributions),
        user_attrs=attrs,
        intermediate_values=steps,
    )
    seconds = attrs.get("seconds")
    if isinstance(seconds, (int, float)) and math.isfinite(seconds) and seconds >= 0:
        trial.datetime_start = trial.datetime_complete - datetime.timedelta(seconds=float(seconds))
    study.add_trial(trial)


def delete_sweep(storage: optuna.storages.BaseStorage, sweep: str) -> int:
    """Delete every study of ``sweep`` with all its trials, in one transaction; returns the count.

    Direct SQL (children before parents) instead of Optuna's ORM cascade, which loads every
    trial first. Raises :class:`UnknownNameError` if the sweep has no study.
    """
    check_writable(storage)
    with storage.engine.begin() as conn:
        ids = list(sweep_study_ids(conn, sweep))
        if not ids:
            raise UnknownNameError(f"no sweep named {sweep!r} to delete")
        trial_ids = sa.select(tables.trials.c.trial_id).where(tables.trials.c.study_id.in_(ids))
        for table in tables.TRIAL_CHILDREN:
            conn.execute(sa.delete(table).where(table.c.trial_id.in_(trial_ids)))
        conn.execute(sa.delete(tables.trials).where(tables.trials.c.study_id.in_(ids)))
        for table in tables.STUDY_CHILDREN:
            conn.execute(sa.delete(table).where(table.c.study_id.in_(ids)))
        conn.execute(sa.delete(tables.studies).where(tables.studies.c.study_id.in_(ids)))
    return len(ids)
