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
import logging
import math
import numbers
import os
import socket
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution

from storage import tables
from storage.connect import check_writable, exclusive, rdb_of
from storage.errors import UnknownNameError
from storage.schema import (
    OPTIONAL_STUDY_ATTRS,
    OPTIONAL_TRIAL_ATTRS,
    PARAMS,
    STATES,
    STUDY_ATTRS,
    TRIAL_ATTRS,
    GridPoint,
    is_error_metric,
    study_name,
)
from storage.sql import completed_points, copy_trial_rows, has_trial_rows, running_claims, sweep_study_ids

log = logging.getLogger(__name__)


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
    (taken from the arguments), and may hold those of :data:`OPTIONAL_STUDY_ATTRS`. Safe when several processes call it at once: Optuna's
    ``load_if_exists`` handles the creation race; only attrs whose value changed are written.
    """
    check_writable(storage)
    name = study_name(sweep, optimizer, schedule)
    full = {**dict(attrs), "sweep": sweep, "optimizer": optimizer, "schedule": schedule}
    _check_types(f"study attrs of {name}", full, {**STUDY_ATTRS, **OPTIONAL_STUDY_ATTRS}, STUDY_ATTRS)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize", load_if_exists=True)
    if study.directions != [optuna.study.StudyDirection.MINIMIZE]:
        raise ValueError(f"study {name} exists with directions {study.directions}; Basin studies minimise test error")
    current = study.user_attrs
    for key, value in full.items():
        if key not in current or current[key] != json.loads(json.dumps(value)):
            study.set_user_attr(key, value)
    sync_trial_rows(storage, [study._study_id])  # a study an older Basin recorded: its rows, once
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
    claim: int | None = None,
) -> None:
    """Record one finished grid point as one trial (a single transaction).

    ``state="COMPLETE"``: ``value`` is the final test error in [0, 1] (chance error 1 − 1/C for
    a diverged run) — or, in a study whose ``metric`` attr is a loss, any finite loss —
    ``intermediate`` maps epoch (1-based) → that metric (None → NaN), and
    ``user_attrs`` holds every key of :data:`TRIAL_ATTRS` (extra keys are kept). ``state="FAIL"``: ``value`` is None and ``user_attrs`` holds
    ``error`` (text); other attrs are optional. ``optimizer``/``schedule`` attrs are added from
    ``point``. ``distributions`` has ``lr``, ``wd_norm``, ``budget``, ``seed``
    (see :func:`grid_distributions`); Optuna rejects a point outside them.

    ``claim``: the id of this point's claim (:func:`claim_points`); the result is then written
    into that RUNNING trial — same number, one transaction — instead of a new one (if another
    driver failed the claim as stale meanwhile, a new trial is added after all).
    """
    trial = _finished_trial(study, point, distributions, state=state, value=value, intermediate=intermediate,
                            user_attrs=user_attrs)
    if claim is None or not _finish_claim(rdb_of(study._storage), claim, trial):
        study.add_trial(trial)
    sync_trial_rows(study._storage, [study._study_id])


def _finished_trial(study, point, distributions, *, state, value, intermediate, user_attrs) -> optuna.trial.FrozenTrial:
    """The validated FrozenTrial of :func:`record_trial` (see there)."""
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
        if is_error_metric(study.user_attrs.get("metric")):
            if not _is_number(value) or not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"a COMPLETE trial needs a test error in [0, 1] as value; got {value!r}")
        elif not _is_number(value) or not math.isfinite(float(value)):
            raise ValueError(f"a COMPLETE trial of a loss metric needs a finite loss as value; got {value!r}")
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
    return trial


def _finish_claim(rdb: optuna.storages.RDBStorage, trial_id: int, trial: optuna.trial.FrozenTrial) -> bool:
    """Write ``trial``'s outcome into the RUNNING claim ``trial_id`` in one transaction; False if the
    claim is no longer RUNNING (failed as stale by another driver).

    Uses Optuna's own ORM models (the ones its RDBStorage writes with), so the rows are exactly
    what Optuna writes for a trial told finished — in one commit instead of one per attr.
    """
    from optuna.storages._rdb import models

    session = rdb.scoped_session()
    try:
        row = session.query(models.TrialModel).filter(models.TrialModel.trial_id == trial_id).with_for_update().one()
        if row.state != optuna.trial.TrialState.RUNNING:
            session.rollback()
            return False
        have = {a.key: a for a in session.query(models.TrialUserAttributeModel)
                .filter(models.TrialUserAttributeModel.trial_id == trial_id)}
        for key, value in trial.user_attrs.items():
            if key in have:
                have[key].value_json = json.dumps(value)
            else:
                session.add(models.TrialUserAttributeModel(trial_id=trial_id, key=key, value_json=json.dumps(value)))
        for step, value in trial.intermediate_values.items():
            stored, kind = models.TrialIntermediateValueModel.intermediate_value_to_stored_repr(value)
            session.add(models.TrialIntermediateValueModel(trial_id=trial_id, step=step, intermediate_value=stored,
                                                           intermediate_value_type=kind))
        if trial.values:
            stored, kind = models.TrialValueModel.value_to_stored_repr(trial.values[0])
            session.add(models.TrialValueModel(trial_id=trial_id, objective=0, value=stored, value_type=kind))
        row.state = trial.state
        row.datetime_start = trial.datetime_start
        row.datetime_complete = trial.datetime_complete
        session.commit()
        return True
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def sync_trial_rows(storage: optuna.storages.BaseStorage, study_ids) -> None:
    """Copy the finished trials of ``study_ids`` that lack a row into ``basin_trials`` (creating the
    table the first time), one transaction; see ``storage.sql`` on why a row is only ever a copy.

    Called after each recorded trial and by :func:`ensure_study`: a study's trials recorded by an
    older Basin, or by Optuna directly, get their rows the next time Basin records into it. A failure
    here (e.g. a database locked past the busy timeout) is logged, not raised: the trial itself is
    committed already, and reads take a trial without a row from Optuna's tables.
    """
    rdb = rdb_of(storage)
    engine = rdb.engine
    try:
        if not has_trial_rows(engine):
            with exclusive(rdb, "basin-trial-rows"):
                tables.basin_metadata.create_all(engine, checkfirst=True)
        with engine.begin() as conn:
            copy_trial_rows(conn, study_ids)
    except sa.exc.OperationalError as exc:
        log.warning("basin_trials not updated for studies %s (%s); reads take these trials from Optuna's "
                    "tables until the next recording", list(study_ids), str(exc).splitlines()[0])


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
        if has_trial_rows(conn):
            conn.execute(sa.delete(tables.basin_trials).where(tables.basin_trials.c.study_id.in_(ids)))
        for table in tables.TRIAL_CHILDREN:
            conn.execute(sa.delete(table).where(table.c.trial_id.in_(trial_ids)))
        conn.execute(sa.delete(tables.trials).where(tables.trials.c.study_id.in_(ids)))
        for table in tables.STUDY_CHILDREN:
            conn.execute(sa.delete(table).where(table.c.study_id.in_(ids)))
        conn.execute(sa.delete(tables.studies).where(tables.studies.c.study_id.in_(ids)))
    return len(ids)


# --- claims of points in flight ---------------------------------------------------------------------
#
# A driver claims every point it is about to run with a RUNNING trial (Optuna's own state for a
# trial in progress) and a heartbeat row it refreshes every HEARTBEAT_S seconds, so a second
# driver of the same sweep skips what is in flight. A claim is stale — failed, and its point
# taken over — when its heartbeat is older than GRACE_S (Optuna's ``fail_stale_trials``), or at
# once when its owner was a process on this host that no longer exists. A finished point's result
# is written into its claim (:func:`record_trial` with ``claim=``): RUNNING becomes COMPLETE or
# FAIL in one transaction, the trial keeps its number, and there is one trial per point.

CLAIM_ATTR = "claimed_by"


def claim_owner() -> str:
    """``host:pid:start`` of this process: what a claim records as its owner."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), so a reused PID is not mistaken
    for a live owner; "" where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` was a process of this host that no longer runs (False when unsure)."""
    host, _, rest = owner.partition(":")
    pid, _, ticks = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit() or not ticks:
        return False
    return _start_ticks(int(pid)) != ticks


def claim_points(
    rdb: optuna.storages.RDBStorage,
    studies: Mapping[tuple[str, str], optuna.Study],
    distributions: Mapping[str, Mapping[str, BaseDistribution]],
    points: Iterable[GridPoint],
    sweep: str,
) -> tuple[dict[GridPoint, int], list[GridPoint]]:
    """Claim the points of ``points`` that are neither complete nor held by a live claim.

    Runs under :func:`storage.connect.exclusive` for the sweep, so two drivers never claim one
    point. ``studies`` maps (optimizer, schedule) → study, ``distributions`` optimizer → its grid
    distributions. Returns ({claimed point: claim trial id}, points in flight in another driver).
    Stale claims are failed first (their points are then claimed here).
    """
    check_writable(rdb)
    owner = claim_owner()
    with exclusive(rdb, f"basin-claims/{sweep}"):
        with warnings.catch_warnings():  # "experimental" in Optuna since 2.9: relied on knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            for study in studies.values():
                optuna.storages.fail_stale_trials(study)
        live: set[GridPoint] = set()
        for point, claims in running_claims(rdb.engine, sweep).items():
            for trial_id, claimed_by in claims:
                if owner_is_gone(claimed_by or ""):
                    _fail_claim(rdb, trial_id, f"claim of {claimed_by}, a driver that stopped")
                else:
                    live.add(point)
        done = completed_points(rdb.engine, sweep)
        claimed: dict[GridPoint, int] = {}
        in_flight: list[GridPoint] = []
        for point in points:
            if point in done or point in claimed:
                continue
            if point in live:
                in_flight.append(point)
                continue
            study = studies[(point.optimizer, point.schedule)]
            trial = optuna.trial.create_trial(
                state=optuna.trial.TrialState.RUNNING, params=point.params(),
                distributions=dict(distributions[point.optimizer]),
                user_attrs={CLAIM_ATTR: owner, "optimizer": point.optimizer, "schedule": point.schedule},
            )
            claimed[point] = rdb.create_new_trial(study._study_id, template_trial=trial)
        beat(rdb, list(claimed.values()))
    return claimed, in_flight


def beat(rdb: optuna.storages.RDBStorage, trial_ids: list[int]) -> None:
    """Refresh the heartbeat of the claims ``trial_ids`` (one statement each for update and insert)."""
    if not trial_ids:
        return
    hb = tables.trial_heartbeats
    now = sa.func.current_timestamp()
    with rdb.engine.begin() as conn:
        for start in range(0, len(trial_ids), 900):
            chunk = trial_ids[start:start + 900]
            conn.execute(sa.update(hb).where(hb.c.trial_id.in_(chunk)).values(heartbeat=now))
            have = {r[0] for r in conn.execute(sa.select(hb.c.trial_id).where(hb.c.trial_id.in_(chunk)))}
            missing = [{"trial_id": t} for t in chunk if t not in have]
            if missing:
                conn.execute(sa.insert(hb).values(heartbeat=now), missing)


def release_claims(rdb: optuna.storages.RDBStorage, trial_ids: list[int], why: str) -> None:
    """Give up claims this driver will not finish: each becomes FAIL with ``why`` (never deleted:
    Optuna numbers a study's trials by counting them, so a deletion would repeat numbers)."""
    for trial_id in trial_ids:
        _fail_claim(rdb, trial_id, why)


def _fail_claim(rdb: optuna.storages.RDBStorage, trial_id: int, why: str) -> None:
    try:
        rdb.set_trial_user_attr(trial_id, "error", why)
        rdb.set_trial_state_values(trial_id, optuna.trial.TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        pass  # another driver failed it first
