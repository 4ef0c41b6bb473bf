"""Read side: the answers users ask of a sweep, straight from Optuna's tables.

"Which (α, λ_norm) is best per (sweep, optimizer, schedule, budget T)?" (:func:`best`),
"how do λ_norm* and raw λ* move with T?" (:func:`best_by_budget`), "is the basin coupled?"
(:func:`coupling`), "how much does AdamW gain over Adam?" (:func:`headline`), plus the data of
one heatmap (:func:`basin_grid`), learning curves (:func:`curves`) and progress
(:func:`list_sweeps`).

Reads select only the needed columns and user-attr keys (one query for the study attrs, one
pivoting query for the trials, see :mod:`storage.fetch`), never Optuna's ``get_trials``, which
builds a FrozenTrial per trial with every attr decoded. bench/query_scale.py times them at 10³–10⁵
trials. Every function takes an opened storage (see :func:`storage.open_storage`) or a URL, which
is then opened read-only.

The counting and ranking rules (latest trial per grid point, diverged = chance error and kept,
FAIL excluded and counted, deterministic tie-break) are those of :mod:`storage.analysis`.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import optuna
import pandas as pd
import sqlalchemy as sa

from storage import analysis
from storage import tables as T
from storage.connect import open_storage, rdb_of, storage_label
from storage.basin_shape import DEFAULT_BOOT, DEFAULT_TOL, Coupling, panel_coupling
from storage.errors import EmptyStorageError, StorageError, UnknownNameError, one_line
from storage.fetch import attr_column, fetch_trial_rows, study_param_values
from storage.record import PARAMS, GridPoint

#: Trial user attrs decoded into columns by default: each one more costs a pass over the attr table,
#: so ``device``/``code_version`` (or any other key) are opt-in through ``attrs=``.
SCALAR_ATTRS = ("diverged", "wd", "seconds", "node", "error")
#: Every scalar attr Basin records (what exports carry).
ALL_SCALAR_ATTRS = (*SCALAR_ATTRS, "device", "code_version")
#: Per-epoch list attrs, as recorded.
LIST_ATTRS = ("train_loss", "train_error", "test_error", "test_loss", "eta", "wd_per_epoch")
#: Study attrs carried into frames (``spec`` and ``schedule_params`` stay in the study).
STUDY_META = ("sweep", "optimizer", "schedule", "dataset", "model", "batch_size", "n_train", "num_classes",
              "grid_size", "basin_version")
_NUMERIC_ATTRS = {"wd", "seconds"}
_IN_CHUNK = 900  # ids per IN (...) clause: below SQLite's variable limit on every build


StorageLike = optuna.storages.RDBStorage | str


def _storage(storage: StorageLike) -> optuna.storages.RDBStorage:
    if isinstance(storage, str):
        return open_storage(storage, read_only=True)
    storage = rdb_of(storage)
    if not isinstance(storage, optuna.storages.RDBStorage):
        raise StorageError(f"Basin reads need an RDB storage (SQLite/PostgreSQL URL), got {type(storage).__name__}")
    return storage


def _db_errors() -> tuple[type[BaseException], ...]:
    """Database errors, including the drivers' own (fast reads use the DB-API cursor directly)."""
    errors: list[type[BaseException]] = [sa.exc.SQLAlchemyError, sqlite3.Error]
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency, but SQLite needs none
        pass
    else:
        errors.append(psycopg.Error)
    return tuple(errors)


_DB_ERRORS = _db_errors()


def _sql_errors(fn):
    """Turn a database error in a read into one StorageError line (e.g. not an Optuna schema)."""

    @functools.wraps(fn)
    def wrapper(storage, *args, **kwargs):
        try:
            return fn(storage, *args, **kwargs)
        except _DB_ERRORS as exc:
            detail = one_line(getattr(exc, "orig", None) or exc)
            raise StorageError(f"reading {storage_label(storage) if not isinstance(storage, str) else storage} "
                               f"failed: {detail}") from None

    return wrapper


# --- studies ------------------------------------------------------------------------------------


@_sql_errors
def studies_frame(storage: StorageLike) -> pd.DataFrame:
    """One row per Basin study (a study with a ``sweep`` user attr); others are ignored.

    Columns: study_id, study, then :data:`STUDY_META` (missing attrs are None).
    """
    rdb = _storage(storage)
    s, a = T.studies, T.study_user_attributes
    query = (
        sa.select(s.c.study_id, s.c.study_name, a.c.key, a.c.value_json)
        .select_from(s.outerjoin(a, sa.and_(a.c.study_id == s.c.study_id, a.c.key.in_(STUDY_META))))
    )
    with rdb.engine.connect() as conn:
        rows = conn.execute(query).all()
    by_id: dict[int, dict] = {}
    for study_id, name, key, value_json in rows:
        rec = by_id.setdefault(study_id, {"study_id": study_id, "study": name})
        if key is not None:
            rec[key] = json.loads(value_json)
    recs = [r for r in by_id.values() if isinstance(r.get("sweep"), str)]
    cols = ["study_id", "study", *STUDY_META]
    frame = pd.DataFrame(recs, columns=cols)
    return frame.sort_values(["sweep", "optimizer", "schedule"], kind="stable").reset_index(drop=True)


def _names(values: Iterable) -> str:
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
            raise UnknownNameError(f"unknown study {study!r}; studies here: {_names(meta['study'])}")
        meta = meta[meta["study"] == study]
    if sweep is not None:
        if sweep not in set(meta["sweep"]):
            raise UnknownNameError(f"unknown sweep {sweep!r}; sweeps here: {_names(meta['sweep'])}")
        meta = meta[meta["sweep"] == sweep]
    scope = f" in sweep {sweep!r}" if sweep is not None else ""
    for col, wanted in (("optimizer", optimizer), ("schedule", schedule)):
        if wanted is None:
            continue
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        unknown = [w for w in wanted if w not in set(meta[col])]
        if unknown:
            raise UnknownNameError(f"unknown {col} {', '.join(map(repr, unknown))}{scope}; "
                                   f"{col}s here: {_names(meta[col])}")
        meta = meta[meta[col].isin(wanted)]
    return meta


# --- trials -------------------------------------------------------------------------------------


def _decode_attr(key: str, raw: pd.Series) -> pd.Series:
    """JSON text → values, vectorised for the scalar attrs Basin records."""
    if key == "diverged":
        return raw.eq("true")
    if key in _NUMERIC_ATTRS:
        return pd.to_numeric(raw, errors="coerce").astype(float)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)  # few distinct values: decode each once
    decoded = np.empty(len(uniques) + 1, dtype=object)
    decoded[:-1] = [json.loads(u) for u in uniques]
    decoded[-1] = None
    return pd.Series(decoded[codes], index=raw.index, dtype=object)


@_sql_errors
def trials_frame(
    storage: StorageLike,
    sweep: str | None = None,
    study: str | None = None,
    *,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    budget: int | None = None,
    attrs: Sequence[str] = SCALAR_ATTRS,
) -> pd.DataFrame:
    """Tidy frame, one row per trial (every state, duplicates included) of the selected studies.

    Columns: sweep, optimizer, schedule, study, trial_id, number, state, lr, wd_norm, budget,
    seed, value, then one column per key of ``attrs`` (default :data:`SCALAR_ATTRS`: diverged
    (bool), wd (raw λ at start), seconds, node, error; pass e.g.
    ``attrs=(*SCALAR_ATTRS, "device", "code_version")`` for more — any user-attr key works, decoded
    from JSON). ``value`` is the final test error (NaN for FAIL); a COMPLETE
    diverged trial without a finite value gets chance error 1 − 1/C. Use
    :func:`storage.analysis.effective_trials` for one row per grid point.
    """
    rdb = _storage(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizer,
                          schedule=schedule, study=study)
    return _trials_for(rdb, meta, attrs=attrs, budget=budget)


def _frame_columns(attrs: Sequence[str]) -> list[str]:
    return [*analysis.STUDY_COLS, "study", "trial_id", "number", "state", *PARAMS, "value", *attrs]


def _trials_for(rdb, meta: pd.DataFrame, *, attrs: Sequence[str], budget: int | None) -> pd.DataFrame:
    attrs = list(dict.fromkeys(attrs))
    if meta.empty:
        return pd.DataFrame(columns=_frame_columns(attrs))
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
        errors = fetch_attrs(rdb, failed, ["error"]) if failed else {}
        text = pd.Series({t: a.get("error") for t, a in errors.items()}, dtype=object)
        frame["error"] = frame["trial_id"].map(text).astype(object).where(frame["trial_id"].isin(text.index), None)
    meta_cols = meta[["study_id", "study", *analysis.STUDY_COLS, "num_classes"]]
    frame = frame.merge(meta_cols, on="study_id", how="left", sort=False)
    if "diverged" in frame:
        chance = 1.0 - 1.0 / frame["num_classes"].astype(float)
        fill = frame["state"].eq("COMPLETE") & frame["diverged"] & ~np.isfinite(frame["value"])
        frame.loc[fill, "value"] = chance[fill]
    return frame[_frame_columns(attrs)].reset_index(drop=True)


def _values(raw: pd.DataFrame) -> pd.Series:
    value = raw["value"].astype(float)
    kind = raw["value_type"]
    value = value.mask(kind.eq("INF_POS"), np.inf)
    return value.mask(kind.eq("INF_NEG"), -np.inf)


# --- progress -----------------------------------------------------------------------------------


class _Progress:
    """Done = complete + failed (a failed point is finished until it is re-run); fraction of the grid."""

    @property
    def n_done(self) -> int:
        return self.n_complete + self.n_failed

    @property
    def fraction(self) -> float:
        return self.n_done / self.grid_size if self.grid_size else float("nan")


@dataclass(frozen=True)
class StudyProgress(_Progress):
    """Progress of one study: grid points done (latest trial per point) against ``grid_size``."""

    study: str
    sweep: str
    optimizer: str
    schedule: str
    dataset: str | None
    model: str | None
    budgets: tuple[int, ...]
    grid_size: int
    n_complete: int
    n_failed: int
    n_diverged: int
    n_trials: int  # trials in the study, every state and duplicate included


@dataclass(frozen=True)
class SweepProgress(_Progress):
    """A sweep, its studies and their summed progress."""

    sweep: str
    studies: tuple[StudyProgress, ...]
    grid_size: int
    n_complete: int
    n_failed: int
    n_diverged: int


@_sql_errors
def list_sweeps(storage: StorageLike) -> list[SweepProgress]:
    """Every sweep with its studies and progress, sorted by name; [] for an empty storage."""
    rdb = _storage(storage)
    meta = studies_frame(rdb)
    if meta.empty:
        return []
    frame = _trials_for(rdb, meta, attrs=("diverged",), budget=None)
    eff = analysis.effective_trials(frame)
    sweeps = []
    for sweep, group in meta.groupby("sweep", sort=True):
        studies = []
        for m in group.itertuples():
            e = eff[eff["study"] == m.study]
            complete = e["state"].eq("COMPLETE")
            studies.append(
                StudyProgress(
                    study=m.study, sweep=sweep, optimizer=m.optimizer, schedule=m.schedule,
                    dataset=m.dataset, model=m.model,
                    budgets=tuple(sorted(int(b) for b in e["budget"].unique())),
                    grid_size=int(m.grid_size) if pd.notna(m.grid_size) else 0,
                    n_complete=int(complete.sum()), n_failed=int((~complete).sum()),
                    n_diverged=int((e["diverged"] & complete).sum()),
                    n_trials=int((frame["study"] == m.study).sum()),
                )
            )
        sweeps.append(
            SweepProgress(
                sweep=sweep, studies=tuple(studies), grid_size=sum(s.grid_size for s in studies),
                n_complete=sum(s.n_complete for s in studies), n_failed=sum(s.n_failed for s in studies),
                n_diverged=sum(s.n_diverged for s in studies),
            )
        )
    return sweeps


# --- answers ------------------------------------------------------------------------------------


def _cells(rdb, sweep, optimizer, schedule, study=None, budget=None, attrs=("diverged", "wd")):
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep, optimizer=optimizer,
                          schedule=schedule, study=study)
    frame = _trials_for(rdb, meta, attrs=attrs, budget=budget)
    eff = analysis.effective_trials(frame)
    return eff, analysis.cell_stats(eff)


@_sql_errors
def best(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per (sweep, optimizer, schedule, budget): the (α, λ_norm) with the lowest mean final test error.

    Columns: sweep, optimizer, schedule, budget, lr, wd_norm, wd (raw λ), test_error (mean over
    seeds), test_error_std, n_seeds, n_tied (cells sharing the best mean), n_cells, n_complete,
    n_failed, n_diverged (panel totals over grid points), border (note when the best cell is on
    the grid's edge, else ""), study. Ties: more seeds, then smaller α, then smaller λ_norm.
    """
    rdb = _storage(storage)
    # Raw λ is needed for the winning cells only: read it for their trials afterwards.
    eff, cells = _cells(rdb, sweep, optimizer, schedule, attrs=("diverged",))
    table = analysis.best_cells(cells)
    if table.empty:
        return table
    keys = ["study", "budget", "_lr", "_wd"]
    winners = table.assign(_lr=analysis.grid_key(table["lr"]), _wd=analysis.grid_key(table["wd_norm"]))[keys]
    trials = eff[eff["state"].eq("COMPLETE")].merge(winners, on=keys, how="inner")
    wd = fetch_attrs(rdb, trials["trial_id"].tolist(), ["wd"])
    trials = trials.assign(wd=[_as_float(wd[t].get("wd")) for t in trials["trial_id"]])
    mean_wd = trials.groupby(keys, sort=False)["wd"].mean().rename("_wd_mean").reset_index()
    table = table.assign(_lr=winners["_lr"].to_numpy(), _wd=winners["_wd"].to_numpy())
    table = table.merge(mean_wd, on=keys, how="left")
    table["wd"] = table["_wd_mean"]
    return table.drop(columns=["_lr", "_wd", "_wd_mean"])


@_sql_errors
def best_by_budget(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """λ_norm* and raw λ* against the budget T, per (sweep, optimizer, schedule).

    The rows of :func:`best`, sorted by T, plus wd_sqrt_budget (λ*·√T), n_budgets, wd_slope
    (d log λ*/d log T; Appendix B.1 predicts −0.5) and wd_norm_slope (predicted 0).
    """
    return analysis.budget_scaling(best(storage, sweep, optimizer, schedule))


@_sql_errors
def headline(storage: StorageLike, sweep: str | None = None, schedule: str | Sequence[str] | None = None) -> pd.DataFrame:
    """Best AdamW vs best Adam and best SGDW vs best SGD error, with the relative improvement.

    See :func:`storage.analysis.headline` for the columns; empty when no pair is complete.
    """
    return analysis.headline(best(storage, sweep, None, schedule))


def _panel_budget(budgets: Iterable[int], name: str, budget: int | None) -> int:
    budgets = sorted({int(b) for b in budgets})
    if not budgets:
        raise EmptyStorageError(f"study {name!r} has no trial yet")
    if budget is None:
        if len(budgets) > 1:
            raise UnknownNameError(f"study {name!r} has several budgets ({', '.join(map(str, budgets))}); choose one")
        return budgets[0]
    if int(budget) not in budgets:
        raise UnknownNameError(f"study {name!r} has no trial with budget {budget}; budgets there: "
                               f"{', '.join(map(str, budgets))}")
    return int(budget)


@_sql_errors
def basin_grid(storage: StorageLike, study_name: str, budget: int | None = None) -> pd.DataFrame:
    """Heatmap data of one panel: every (α, λ_norm) of the study's grid at budget T.

    One row per cell of the full product of the study's α and λ_norm values (over all its
    trials), sorted by α then λ_norm; cells without any trial at T have ``missing=True``,
    n_seeds 0 and NaN error. Columns: lr, wd_norm, wd (raw λ), test_error (mean over seeds,
    diverged runs at chance), test_error_std, n_seeds, n_failed, n_diverged, diverged_any,
    diverged_all, missing, rank (1 = best; <NA> without a COMPLETE seed), top10, best.
    ``frame.attrs`` holds study, sweep, optimizer, schedule, budget, chance (1 − 1/C) and
    border (a note when the best cell is on the grid's edge, else ""). ``budget`` may be
    omitted when the study has a single one.
    """
    rdb = _storage(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    axes = study_param_values(rdb.engine, int(meta["study_id"].iloc[0]))
    budget = _panel_budget(axes["budget"], study_name, budget)
    frame = _trials_for(rdb, meta, attrs=("diverged", "wd"), budget=budget)
    eff = analysis.effective_trials(frame)
    cells = analysis.rank_cells(analysis.cell_stats(eff))
    out = analysis.full_grid(axes["lr"], axes["wd_norm"], cells)
    m = meta.iloc[0]
    winner = cells[cells["best"]]
    out.attrs.update(
        study=study_name, sweep=m["sweep"], optimizer=m["optimizer"], schedule=m["schedule"], budget=budget,
        chance=1.0 - 1.0 / float(m["num_classes"]) if pd.notna(m["num_classes"]) else None,
        border=analysis.border_note(cells, winner.iloc[0]) if not winner.empty else "",
    )
    return out[analysis.GRID_COLUMNS].sort_values(["lr", "wd_norm"], kind="stable").reset_index(drop=True)


@_sql_errors
def coupling(
    storage: StorageLike,
    sweep: str | None = None,
    optimizer: str | Sequence[str] | None = None,
    schedule: str | Sequence[str] | None = None,
    *,
    budget: int | None = None,
    tol: float = DEFAULT_TOL,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> list[Coupling]:
    """Coupling measurements of every panel (optimizer × schedule × budget) selected.

    See :mod:`storage.basin_shape`: argmin slope of log λ_norm* vs log α with a seed-bootstrap
    interval, the top-10 principal-axis angle, the tolerance-edge slope (``tol`` absolute error,
    default 0.02) and a verdict, with notes for too few points and grid-border basins.
    """
    if not (isinstance(tol, (int, float)) and tol >= 0):
        raise ValueError(f"tol must be a number ≥ 0, got {tol!r}")
    eff, cells = _cells(_storage(storage), sweep, optimizer, schedule, budget=budget)
    out = []
    for key, panel in cells.groupby(analysis.PANEL_COLS, sort=True):
        study = panel["study"].iloc[0]
        panel_eff = eff[(eff["study"] == study) & (eff["budget"] == key[3])]
        out.append(panel_coupling(panel_eff, panel, tol=tol, n_boot=n_boot, seed=seed))
    return out


def coupling_frame(results: Sequence[Coupling]) -> pd.DataFrame:
    """Coupling results as a frame (slope_ci split into slope_lo/slope_hi, notes joined by '; ')."""
    rows = []
    for c in results:
        d = c.to_dict()
        ci = d.pop("slope_ci")
        d["slope_lo"], d["slope_hi"] = (ci if ci is not None else (None, None))
        d["notes"] = "; ".join(d["notes"])
        rows.append(d)
    return pd.DataFrame(rows)


# --- curves -------------------------------------------------------------------------------------

CURVE_COLUMNS = ["study", "trial_id", "lr", "wd_norm", "budget", "seed", "rank", "value", "diverged", "epoch",
                 *LIST_ATTRS, "restart", "intermediate"]


def fetch_attrs(rdb, trial_ids: Sequence[int], keys: Sequence[str]) -> dict[int, dict]:
    """{trial_id: {key: decoded value}} for the given user-attr keys (chunked IN lists)."""
    a = T.trial_user_attributes
    out: dict[int, dict] = {int(i): {} for i in trial_ids}
    ids = list(out)
    with rdb.engine.connect() as conn:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            rows = conn.execute(
                sa.select(a.c.trial_id, a.c.key, a.c.value_json).where(a.c.trial_id.in_(chunk), a.c.key.in_(list(keys)))
            )
            for trial_id, key, value_json in rows:
                out[trial_id][key] = json.loads(value_json)
    return out


def fetch_intermediate(rdb, trial_ids: Sequence[int]) -> dict[int, dict[int, float]]:
    """{trial_id: {step: value}} of Optuna's intermediate values."""
    iv = T.trial_intermediate_values
    out: dict[int, dict[int, float]] = {int(i): {} for i in trial_ids}
    ids = list(out)
    special = {"INF_POS": np.inf, "INF_NEG": -np.inf, "NAN": np.nan}
    with rdb.engine.connect() as conn:
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start:start + _IN_CHUNK]
            rows = conn.execute(
                sa.select(iv.c.trial_id, iv.c.step, iv.c.intermediate_value,
                          sa.cast(iv.c.intermediate_value_type, sa.String)).where(iv.c.trial_id.in_(chunk))
            )
            for trial_id, step, value, kind in rows:
                out[trial_id][int(step)] = special.get(kind, value)
    return out


def _as_float(x) -> float:
    return float("nan") if x is None else float(x)


@_sql_errors
def curves(
    storage: StorageLike,
    study_name: str,
    points: Iterable[GridPoint | tuple] | None = None,
    *,
    top_k: int | None = None,
    budget: int | None = None,
) -> pd.DataFrame:
    """Per-epoch learning curves of chosen settings of one study, long format (one row per trial × epoch).

    Choose trials by ``points`` (GridPoints, or (lr, wd_norm, budget, seed) tuples) or by
    ``top_k``: every seed of the k best cells of each budget (or of ``budget``); with neither,
    the top 10. Columns: study, trial_id, lr, wd_norm, budget, seed, rank (cell rank in its
    panel, <NA> for trials chosen by point), value, diverged, epoch (1-based), train_loss,
    train_error, test_loss, test_error, eta, wd_per_epoch (raw λ of that epoch), restart (the
    epoch ends a restart period: ``restart_epochs``), intermediate (Optuna's value at that step).
    Lists shorter than the longest (e.g. a run stopped at divergence) are padded with NaN.
    """
    rdb = _storage(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), study=study_name)
    frame = _trials_for(rdb, meta, attrs=("diverged", "wd"), budget=None)
    eff = analysis.effective_trials(frame)
    eff = eff[eff["state"].eq("COMPLETE")]
    if budget is not None:
        budget = _panel_budget(eff["budget"], study_name, budget)
        eff = eff[eff["budget"] == budget]
    if points is not None:
        m = meta.iloc[0]
        wanted = set()
        for p in points:
            if not isinstance(p, GridPoint):
                lr, wd_norm, b, s = p
                p = GridPoint(m["optimizer"], m["schedule"], lr, wd_norm, b, s)
            wanted.add(p)
        keys = [GridPoint(r.optimizer, r.schedule, r.lr, r.wd_norm, r.budget, r.seed) in wanted for r in eff.itertuples()]
        chosen = eff[np.asarray(keys, bool)].assign(rank=pd.NA)
    else:
        k = 10 if top_k is None else int(top_k)
        if k < 1:
            raise ValueError(f"top_k must be ≥ 1, got {top_k!r}")
        ranked = analysis.rank_cells(analysis.cell_stats(eff))
        top = ranked[ranked["rank"].le(k)][["budget", "_lr", "_wd", "rank"]]
        chosen = eff.merge(top, on=["budget", "_lr", "_wd"], how="inner")
    chosen = chosen.sort_values(["budget", "rank", "lr", "wd_norm", "seed"], kind="stable", na_position="last")
    ids = [int(i) for i in chosen["trial_id"]]
    lists = fetch_attrs(rdb, ids, [*LIST_ATTRS, "restart_epochs"])
    inter = fetch_intermediate(rdb, ids)
    rows = []
    for r in chosen.itertuples():
        attrs = lists[r.trial_id]
        n = max([len(attrs.get(k) or []) for k in LIST_ATTRS] + [max(inter[r.trial_id], default=0)])
        restarts = set(attrs.get("restart_epochs") or [])
        for epoch in range(1, n + 1):
            row = {"study": r.study, "trial_id": r.trial_id, "lr": r.lr, "wd_norm": r.wd_norm, "budget": r.budget,
                   "seed": r.seed, "rank": r.rank, "value": r.value, "diverged": bool(r.diverged), "epoch": epoch}
            for key in LIST_ATTRS:
                seq = attrs.get(key) or []
                row[key] = _as_float(seq[epoch - 1]) if epoch <= len(seq) else np.nan
            row["restart"] = epoch in restarts
            row["intermediate"] = inter[r.trial_id].get(epoch, np.nan)
            rows.append(row)
    out = pd.DataFrame(rows, columns=CURVE_COLUMNS)
    out["rank"] = out["rank"].astype("Int64")
    return out
