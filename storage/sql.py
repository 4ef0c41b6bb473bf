"""Every raw SQL read of Optuna's tables that Basin makes (the write side goes through Optuna's API,
but for :func:`copy_trial_rows`, which fills Basin's own ``basin_trials`` from Optuna's rows).

The bulk read behind every frame — :func:`fetch_trial_rows`, one row per trial, params and attrs
pivoted — and the small reads: a study's grid axes, chosen attrs or intermediate values of chosen
trials, the studies of a sweep, the grid points already complete (what a sweep resumes from).

Optuna keeps trials in entity–attribute–value form: four ``trial_params`` rows and ~15
``trial_user_attributes`` rows (per-epoch lists included) per trial. Getting (α, λ_norm, T, seed,
value, diverged, λ) for 10⁵ trials is a pivot over ~2·10⁶ rows, so the query shape is chosen per
backend, and rows reach pandas without one Python object per value where possible — and where the
database has ``basin_trials`` (Basin's narrow copy of each finished trial, below), the trials that have
a row are read from it instead, with no pivot at all:

SQLite      one LEFT JOIN per wanted param/attr, each an index probe on Optuna's unique
            (trial_id, key) index — no scan of the attribute table; rows fetched through the
            DB-API cursor (no SQLAlchemy Row objects). Not through ADBC's SQLite driver, though
            it builds the columns in C at twice the speed: it carries its own SQLite library, and
            two SQLite libraries in one process release each other's POSIX locks (SQLite's "How To
            Corrupt An SQLite Database File", 2.2.1) — measured here: a reader that also held
            ``sqlite3`` connections saw "database disk image is malformed" while a sweep wrote.
PostgreSQL  one scan of each EAV table with a GROUP BY pivot (hash joins; a per-row index probe
            is slower there), ``work_mem`` raised for the transaction so the hashes stay in
            memory and JIT off (its compile time exceeds the query's), streamed out with
            ``COPY … TO STDOUT (FORMAT csv)`` into Arrow's CSV reader.

The SQL is text built here from integers and escaped literals only (study ids, budget, attr
keys); no caller text reaches it unescaped.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
import pandas as pd
import sqlalchemy as sa

from storage import tables
from storage.schema import PARAMS, GridPoint

#: Raw columns returned by :func:`fetch_trial_rows` before the attrs (a0, a1, ...).
BASE_COLUMNS = ["trial_id", "study_id", "number", "state", *PARAMS, "value", "value_type"]
_PG_WORK_MEM = "256MB"
_IN_CHUNK = 900  # ids per IN (...) clause: below SQLite's variable limit on every build
_REST_MAX = 20_000  # trials without a basin_trials row that a read still takes one by one (else: the pivot)
_REST_CHUNK = 5_000  # trial ids written into one statement's IN list (literals, not bound variables)


def _lit(text: str) -> str:
    """A SQL string literal."""
    return "'" + str(text).replace("'", "''") + "'"


def _ids(ids) -> str:
    return ", ".join(str(int(i)) for i in ids)


def attr_column(i: int) -> str:
    """Name of the raw JSON-text column of the i-th requested attr."""
    return f"a{i}"


def fetch_trial_rows(
    engine: sa.Engine, study_ids, attrs=(), *, budget: int | None = None, trial_ids=None
) -> pd.DataFrame:
    """Per-trial rows of the given studies: :data:`BASE_COLUMNS` + one JSON-text column per attr.

    ``budget`` keeps only trials whose ``budget`` param equals it; ``trial_ids`` only those
    trials. ``state`` and ``value_type`` are Optuna's enum names as text; attr columns hold
    ``value_json`` (None where the trial lacks the attr). When every attr is one of
    ``tables.ROW_ATTRS`` and the database has ``basin_trials``, the trials that have a row there are
    read from it and the others from Optuna's tables (below); the same frame either way.
    """
    study_ids = [int(i) for i in study_ids]
    attrs = list(attrs)
    columns = BASE_COLUMNS + [attr_column(i) for i in range(len(attrs))]
    if not study_ids or (trial_ids is not None and len(trial_ids) == 0):
        return _empty(columns)
    pg = engine.dialect.name == "postgresql"

    def pivot(ids) -> str:
        """The read from Optuna's tables, of ``ids`` only when given."""
        def where(alias: str) -> str:
            conds = [f"{alias}.study_id IN ({_ids(study_ids)})"]
            if ids is not None:
                conds.append(f"{alias}.trial_id IN ({_ids(ids)})")
            if budget is not None:
                conds.append(
                    f"{alias}.trial_id IN (SELECT trial_id FROM trial_params "
                    f"WHERE param_name = 'budget' AND param_value = {float(int(budget))!r})"
                )
            return " AND ".join(conds)
        return _pivot_sql(where, attrs) if pg else _probe_sql(where, attrs, "t.state", "v.value_type")

    narrow = set(attrs) <= set(tables.ROW_ATTRS) and has_trial_rows(engine)
    with _snapshot(engine) as cursor:  # one read transaction: every statement below sees the same trials
        fetch = (lambda sql: _copy_csv(cursor, sql)) if pg else (lambda sql: _fetch_all(cursor, sql))
        if not narrow:
            parts = [fetch(pivot(trial_ids))]
        else:
            parts = [fetch(_rows_sql(study_ids, attrs, budget, trial_ids))]
            if budget is None and _count(parts[0]) == _trial_count(cursor, study_ids, trial_ids):
                rest = []  # every trial has its row (the rows are one a trial, each of a trial that is there)
            else:
                rest = _trials_without_rows(cursor, study_ids, trial_ids)
            if len(rest) > _REST_MAX:  # mostly not copied yet (an older Basin's database): one pivot
                parts = [fetch(pivot(trial_ids))]
            else:
                parts += [fetch(pivot(rest[i:i + _REST_CHUNK])) for i in range(0, len(rest), _REST_CHUNK)]
    frame = _csv_frame(parts, columns) if pg else _rows_frame(parts, columns)
    return frame.sort_values("trial_id", kind="stable").reset_index(drop=True)


def _empty(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})


def study_param_values(engine: sa.Engine, study_id: int, names=("lr", "wd_norm", "budget")) -> dict[str, list[float]]:
    """Sorted distinct values of the given params over every trial of one study (its grid axes)."""
    return study_axes(engine, [study_id], names)[int(study_id)]


def study_axes(engine: sa.Engine, study_ids, names=("lr", "wd_norm", "budget")) -> dict[int, dict[str, list[float]]]:
    """:func:`study_param_values` of several studies in one query: {study_id: {name: sorted values}}."""
    ids = [int(i) for i in study_ids]
    out: dict[int, dict[str, list[float]]] = {i: {n: [] for n in names} for i in ids}
    if not ids:
        return out
    sql = (
        "SELECT DISTINCT t.study_id, tp.param_name, tp.param_value FROM trial_params tp "
        f"JOIN trials t ON t.trial_id = tp.trial_id WHERE t.study_id IN ({_ids(ids)}) "
        f"AND tp.param_name IN ({', '.join(_lit(n) for n in names)})"
    )
    with engine.connect() as conn:
        for study_id, name, value in conn.exec_driver_sql(sql):
            out[int(study_id)][name].append(float(value))
    return {i: {n: sorted(v) for n, v in axes.items()} for i, axes in out.items()}


def trial_fingerprint(engine: sa.Engine, study_ids) -> list[tuple]:
    """Per study, ordered by id: (study_id, trials, largest trial_id, first start, last completion, and
    how many trials are COMPLETE, FAIL, RUNNING, WAITING, PRUNED) — one aggregate query. Trials are
    written once (Basin records a trial whole, Optuna refuses to change a finished one), so anything
    an answer reads from a study's trials changes this row (``storage.answer_cache``)."""
    ids = [int(i) for i in study_ids]
    if not ids:
        return []
    states = ("COMPLETE", "FAIL", "RUNNING", "WAITING", "PRUNED")
    counts = ", ".join(f"SUM(CASE WHEN state = {_lit(s)} THEN 1 ELSE 0 END)" for s in states)
    sql = (f"SELECT study_id, COUNT(*), MAX(trial_id), MIN(datetime_start), MAX(datetime_complete), {counts} "
           f"FROM trials WHERE study_id IN ({_ids(ids)}) GROUP BY study_id ORDER BY study_id")
    with engine.connect() as conn:
        return [tuple(str(x) if x is not None and not isinstance(x, int) else x for x in row)
                for row in conn.exec_driver_sql(sql)]


# --- basin_trials: Basin's narrow copy of finished trials ------------------------------------------
#
# Optuna's layout costs a read one index probe per param and attr per trial. The recorder also
# copies each finished trial into ``basin_trials`` (storage.record.sync_trial_rows), by SQL from the
# very rows the pivot reads (:func:`copy_trial_rows`), so a row holds what the pivot would return.
# A row is a copy, never the truth: it is used only while the trial it was copied from is there —
# same id and same ``datetime_complete`` (:func:`row_of`), so a trial id that SQLite hands out
# again after another tool deleted a study never meets the old trial's row — and every trial
# without one (RUNNING claims, trials written by other tools or by an older Basin, a recording
# interrupted between Optuna's commit and the copy's) is read from Optuna's tables, in the same
# read transaction. Optuna never changes a finished trial, so a copy cannot go stale otherwise.

#: States of the trials copied into ``basin_trials``: finished, so never changed again.
FINISHED = ("COMPLETE", "FAIL", "PRUNED")


def row_of(rows: str, trials: str) -> str:
    """SQL condition: row ``rows`` of basin_trials is the copy of trial ``trials``."""
    return (f"{rows}.trial_id = {trials}.trial_id AND {rows}.datetime_complete = {trials}.datetime_complete")


def has_trial_rows(bind: sa.Engine | sa.Connection) -> bool:
    """Whether the database has Basin's ``basin_trials`` table (a Basin since issue 19 wrote to it);
    ``bind`` an engine, or a connection whose transaction should see it."""
    if isinstance(bind, sa.Engine):
        with bind.connect() as conn:
            return has_trial_rows(conn)
    return bind.dialect.has_table(bind, tables.basin_trials.name)


def _lacking(study_ids, trial_ids=None, *, finished: bool = False) -> str:
    """SQL condition on trials ``t``: a trial of ``study_ids`` (of ``trial_ids``) without its row
    in basin_trials; with ``finished``, only the finished trials (those a row is made for)."""
    conds = [f"t.study_id IN ({_ids(study_ids)})"]
    if trial_ids is not None:
        conds.append(f"t.trial_id IN ({_ids(trial_ids)})")
    if finished:
        conds.append(f"t.state IN ({', '.join(map(_lit, FINISHED))}) AND t.datetime_complete IS NOT NULL")
    conds.append(f"NOT EXISTS (SELECT 1 FROM basin_trials b WHERE {row_of('b', 't')})")
    return " AND ".join(conds)


def _trials_without_rows(cursor, study_ids, trial_ids=None, *, finished: bool = False) -> list[int]:
    """Ids of the trials of ``study_ids`` (of ``trial_ids``) that basin_trials has no row of (one
    anti-join: ≈ 0.04 s at 10⁵ trials); ``cursor`` a DB-API cursor."""
    cursor.execute(f"SELECT t.trial_id FROM trials t WHERE {_lacking(study_ids, trial_ids, finished=finished)}")
    return [int(i) for (i,) in cursor.fetchall()]


def _trial_count(cursor, study_ids, trial_ids=None) -> int:
    """How many trials the studies hold (of ``trial_ids``): an index count, ≈ 2 ms at 10⁵ trials."""
    where = f"study_id IN ({_ids(study_ids)})" + (f" AND trial_id IN ({_ids(trial_ids)})" if trial_ids is not None else "")
    cursor.execute(f"SELECT COUNT(*) FROM trials WHERE {where}")
    return int(cursor.fetchone()[0])


def _rows_sql(study_ids, attrs: list[str], budget: int | None, trial_ids) -> str:
    """The basin_trials read: :data:`BASE_COLUMNS` + ``attrs`` of the trials that have a row."""
    conds = [f"b.study_id IN ({_ids(study_ids)})"]
    if trial_ids is not None:
        conds.append(f"b.trial_id IN ({_ids(trial_ids)})")
    if budget is not None:
        conds.append(f"b.budget = {float(int(budget))!r}")
    select = [f"b.{c}" for c in BASE_COLUMNS] + [f"b.{key}" for key in attrs]
    # In trial order: PostgreSQL then merges the two primary keys instead of hashing one table (0.17 →
    # 0.12 s at 10⁵ trials, measured here); SQLite scans trials in that order anyway (no sort).
    return (f"SELECT {', '.join(select)} FROM basin_trials b JOIN trials t ON {row_of('b', 't')} "
            f"WHERE {' AND '.join(conds)} ORDER BY t.trial_id")


def copy_trial_rows(conn: sa.Connection, study_ids) -> int:
    """Bring basin_trials up to date for ``study_ids`` within ``conn``'s transaction; returns the rows
    copied. Finds the finished trials without their row, drops any row their ids hold (a row of an
    earlier trial with that id), and copies them through the pivot a read would run — so a row holds
    exactly what the read returns."""
    pg = conn.dialect.name == "postgresql"
    cursor = conn.connection.driver_connection.cursor()
    try:
        lacking = _trials_without_rows(cursor, study_ids, finished=True)
    finally:
        cursor.close()
    keys = list(tables.ROW_ATTRS)
    names = ", ".join([*BASE_COLUMNS, *keys, "datetime_complete"])
    verb, tail = ("INSERT", " ON CONFLICT (trial_id) DO NOTHING") if pg else ("INSERT OR IGNORE", "")
    for start in range(0, len(lacking), _REST_CHUNK):
        chunk = _ids(lacking[start:start + _REST_CHUNK])
        conn.exec_driver_sql(f"DELETE FROM basin_trials WHERE trial_id IN ({chunk})")
        select = _probe_sql(lambda alias: f"{alias}.trial_id IN ({chunk})", keys,
                            "CAST(t.state AS VARCHAR(16))" if pg else "t.state",
                            "CAST(v.value_type AS VARCHAR(16))" if pg else "v.value_type",
                            extra=["t.datetime_complete"])
        conn.exec_driver_sql(f"{verb} INTO basin_trials ({names}) {select}{tail}")
    return len(lacking)


def _probe_sql(where, attrs: list[str], state_text: str, type_text: str, extra=()) -> str:
    select = ["t.trial_id", "t.study_id", "t.number", f"{state_text} AS state"]
    joins = []
    for i, name in enumerate(PARAMS):
        joins.append(f"LEFT JOIN trial_params p{i} ON p{i}.trial_id = t.trial_id AND p{i}.param_name = {_lit(name)}")
        select.append(f"p{i}.param_value AS {name}")
    joins.append("LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0")
    select += ["v.value AS value", f"{type_text} AS value_type"]
    for i, key in enumerate(attrs):
        joins.append(f"LEFT JOIN trial_user_attributes u{i} ON u{i}.trial_id = t.trial_id AND u{i}.key = {_lit(key)}")
        select.append(f"u{i}.value_json AS {attr_column(i)}")
    select += list(extra)
    return f"SELECT {', '.join(select)} FROM trials t {' '.join(joins)} WHERE {where('t')}"


@contextmanager
def _snapshot(engine: sa.Engine):
    """A DB-API cursor inside one read transaction that sees one state of the database throughout —
    SQLite's (a WAL snapshot from its first read) or PostgreSQL's REPEATABLE READ, with ``work_mem``
    raised so the pivot's hashes stay in memory and JIT off (its compile time exceeds the query's) —
    rolled back at the end."""
    with engine.connect() as conn:
        raw = conn.connection.driver_connection
        cursor = raw.cursor()
        try:
            if engine.dialect.name == "postgresql":
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute(f"SET LOCAL work_mem = {_lit(_PG_WORK_MEM)}")
                cursor.execute("SET LOCAL jit = off")
            else:
                cursor.execute("BEGIN")
            yield cursor
        finally:
            cursor.close()
            raw.rollback()  # ends the read transaction (and the SET LOCALs with it)


def _fetch_all(cursor, sql: str) -> list[tuple]:
    cursor.execute(sql)
    return cursor.fetchall()


def _count(part) -> int:
    """Rows in one fetched part: a list of tuples (SQLite), CSV lines (PostgreSQL: one line a row, since
    no column of these reads holds a raw newline — JSON text escapes it)."""
    return part.count(b"\n") if isinstance(part, bytes) else len(part)


def _kind(name: str) -> str:
    """How a raw read's column is held: "id" (int64), "number" (float; NULL → NaN) or "text" (object; NULL → None)."""
    return "id" if name in ("trial_id", "study_id", "number") else "number" if name in (*PARAMS, "value") else "text"


def _column(name: str, values: np.ndarray):
    """One column of a raw read's frame, as :func:`_kind` holds it, from its values (an array)."""
    kind = _kind(name)
    if kind == "id":
        return values.astype(np.int64)
    if kind == "number":
        return values.astype(float)
    return pd.Series(values, dtype=object, copy=False)


def _rows_frame(parts: list[list[tuple]], columns: list[str]) -> pd.DataFrame:
    """The frame of fetched rows (:func:`_column` each) — built column by column from one object array,
    ≈ 3× faster than ``DataFrame.from_records``, which infers every column's type."""
    rows = parts[0] if len(parts) == 1 else [row for part in parts for row in part]
    if not rows:
        return _empty(columns)
    table = np.array(rows, dtype=object)
    return pd.DataFrame({name: _column(name, table[:, j]) for j, name in enumerate(columns)})


def _pivot_sql(where, attrs: list[str]) -> str:
    params = ", ".join(f"max(CASE WHEN tp.param_name = {_lit(n)} THEN tp.param_value END) AS {n}" for n in PARAMS)
    select = ["t.trial_id", "t.study_id", "t.number", "t.state::text AS state", *(f"p.{n}" for n in PARAMS),
              "v.value", "v.value_type::text AS value_type"]
    joins = [
        f"LEFT JOIN (SELECT tp.trial_id, {params} FROM trial_params tp JOIN trials t2 ON t2.trial_id = tp.trial_id "
        f"WHERE {where('t2')} GROUP BY tp.trial_id) p ON p.trial_id = t.trial_id",
        "LEFT JOIN trial_values v ON v.trial_id = t.trial_id AND v.objective = 0",
    ]
    if attrs:
        pivot = ", ".join(
            f"max(CASE WHEN ua.key = {_lit(k)} THEN ua.value_json END) AS {attr_column(i)}" for i, k in enumerate(attrs)
        )
        joins.append(
            f"LEFT JOIN (SELECT ua.trial_id, {pivot} FROM trial_user_attributes ua JOIN trials t3 "
            f"ON t3.trial_id = ua.trial_id WHERE {where('t3')} AND ua.key IN ({', '.join(_lit(k) for k in attrs)}) "
            "GROUP BY ua.trial_id) a ON a.trial_id = t.trial_id"
        )
        select += [f"a.{attr_column(i)}" for i in range(len(attrs))]
    return f"SELECT {', '.join(select)} FROM trials t {' '.join(joins)} WHERE {where('t')}"


def _copy_csv(cursor, sql: str) -> bytes:
    """The rows of ``sql`` as CSV, streamed with COPY."""
    buffer = io.BytesIO()
    with cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
        for block in copy:
            buffer.write(block)
    return buffer.getvalue()


def _csv_frame(parts: list[bytes], columns: list[str]) -> pd.DataFrame:
    """The frame of COPY's CSV: parsed by Arrow's CSV reader (C++, the GIL released; floats read back
    exactly as PostgreSQL wrote them, shortest round-trip), each column typed by :func:`_kind`. An unquoted
    empty field is PostgreSQL's NULL; a quoted one an empty text."""
    import pyarrow as pa
    from pyarrow import csv

    data = b"".join(parts)
    if not data:
        return _empty(columns)
    arrow = {"id": pa.int64(), "number": pa.float64(), "text": pa.string()}
    table = csv.read_csv(
        pa.py_buffer(data),
        read_options=csv.ReadOptions(column_names=columns),
        convert_options=csv.ConvertOptions(column_types={c: arrow[_kind(c)] for c in columns}, null_values=[""],
                                           strings_can_be_null=True, quoted_strings_can_be_null=False),
    )
    return pd.DataFrame({name: _column(name, col.to_numpy(zero_copy_only=False))
                         for name, col in zip(columns, table.columns)})


# --- small reads ----------------------------------------------------------------------------------


def fetch_attrs(engine: sa.Engine, trial_ids: Sequence[int], keys: Sequence[str]) -> dict[int, dict]:
    """{trial_id: {key: decoded value}} for the given user-attr keys (chunked IN lists)."""
    a = tables.trial_user_attributes
    out: dict[int, dict] = {int(i): {} for i in trial_ids}
    ids = list(out)
    with engine.connect() as conn:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            rows = conn.execute(
                sa.select(a.c.trial_id, a.c.key, a.c.value_json).where(a.c.trial_id.in_(chunk), a.c.key.in_(list(keys)))
            )
            for trial_id, key, value_json in rows:
                out[trial_id][key] = json.loads(value_json)
    return out


def fetch_intermediate(engine: sa.Engine, trial_ids: Sequence[int]) -> dict[int, dict[int, float]]:
    """{trial_id: {step: value}} of Optuna's intermediate values."""
    iv = tables.trial_intermediate_values
    out: dict[int, dict[int, float]] = {int(i): {} for i in trial_ids}
    ids = list(out)
    special = {"INF_POS": np.inf, "INF_NEG": -np.inf, "NAN": np.nan}
    with engine.connect() as conn:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            rows = conn.execute(
                sa.select(iv.c.trial_id, iv.c.step, iv.c.intermediate_value,
                          sa.cast(iv.c.intermediate_value_type, sa.String)).where(iv.c.trial_id.in_(chunk))
            )
            for trial_id, step, value, kind in rows:
                out[trial_id][int(step)] = special.get(kind, value)
    return out


def study_attr_rows(engine: sa.Engine, keys: Sequence[str]) -> list[tuple[int, str, str | None, str | None]]:
    """(study_id, study_name, key, value_json) of every study, one row per wanted attr it has
    (one row with key None for a study that has none of them)."""
    s, a = tables.studies, tables.study_user_attributes
    query = (
        sa.select(s.c.study_id, s.c.study_name, a.c.key, a.c.value_json)
        .select_from(s.outerjoin(a, sa.and_(a.c.study_id == s.c.study_id, a.c.key.in_(list(keys)))))
    )
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query).all()]


def sweep_study_ids(conn: sa.Connection, sweep: str) -> dict[int, tuple[str, str]]:
    """{study_id: (optimizer, schedule)} of the studies whose ``sweep`` attr is ``sweep``."""
    sua = tables.study_user_attributes
    rows = conn.execute(
        sa.select(sua.c.study_id, sua.c.key, sua.c.value_json).where(sua.c.key.in_(("sweep", "optimizer", "schedule")))
    ).all()
    by_study: dict[int, dict] = {}
    for study_id, key, value_json in rows:
        by_study.setdefault(study_id, {})[key] = json.loads(value_json)
    return {
        sid: (a.get("optimizer"), a.get("schedule"))
        for sid, a in by_study.items()
        if a.get("sweep") == sweep
    }


def points_in_state(engine: sa.Engine, sweep: str, *states: str) -> dict[GridPoint, list[int]]:
    """{grid point: [trial ids]} of the trials of ``sweep`` in one of ``states`` (e.g. COMPLETE).

    One SQL query over Optuna's tables (params pivoted with a GROUP BY), no FrozenTrial built.
    An unknown sweep gives an empty dict.
    """
    tr, tp = tables.trials, tables.trial_params
    with engine.connect() as conn:
        studies = sweep_study_ids(conn, sweep)
        if not studies:
            return {}
        cols = [sa.func.max(sa.case((tp.c.param_name == p, tp.c.param_value))).label(p) for p in PARAMS]
        query = (
            sa.select(tr.c.trial_id, tr.c.study_id, *cols)
            .select_from(tr.join(tp, tp.c.trial_id == tr.c.trial_id))
            .where(tr.c.study_id.in_(list(studies)), tables.state_is(tr.c.state, *states))
            .group_by(tr.c.trial_id, tr.c.study_id)
        )
        rows = conn.execute(query).all()
    points: dict[GridPoint, list[int]] = {}
    for trial_id, study_id, lr, wd_norm, budget, seed in rows:
        if None in (lr, wd_norm, budget, seed):
            continue  # not a Basin trial (params missing)
        optimizer, schedule = studies[study_id]
        point = GridPoint(optimizer, schedule, float(lr), float(wd_norm), int(round(budget)), int(round(seed)))
        points.setdefault(point, []).append(int(trial_id))
    return points


def completed_points(engine: sa.Engine, sweep: str) -> set[GridPoint]:
    """Grid points of ``sweep`` with at least one COMPLETE trial (what a sweep resumes from)."""
    return set(points_in_state(engine, sweep, "COMPLETE"))


def running_claims(engine: sa.Engine, sweep: str) -> dict[GridPoint, list[tuple[int, str | None]]]:
    """{grid point: [(trial id, owner)]} of the RUNNING trials (claims) of ``sweep``."""
    claims = points_in_state(engine, sweep, "RUNNING")
    ids = [t for trial_ids in claims.values() for t in trial_ids]
    owners = fetch_attrs(engine, ids, ["claimed_by"]) if ids else {}
    return {p: [(t, owners[t].get("claimed_by")) for t in trial_ids] for p, trial_ids in claims.items()}
