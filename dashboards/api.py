"""The JSON API on the dashboard's own server (Flask routes on ``app.server``).

``GET /api/sweeps``
    Every sweep with its studies and progress (grid points done / total / failed / diverged).
``GET /api/basin?study=<sweep/optimizer/schedule>&budget=<epochs>``
    One heatmap: the α and λ_norm axes, matrices of mean/std error, each cell's 95% interval
    (error_lo, error_hi), P(best), plausible, seeds and divergence (rows λ_norm, columns α, as
    drawn), every cell as a record, the top-10, the best cell, the plausible optima and the best
    setting's honestly reported error (best_error, best_error_ci, selection, sources)
    (``storage.basin_grid``). ``budget`` may be left out when the study has one budget.
``GET /api/best?sweep=<name>[&optimizer=a,b][&schedule=c][&view=best|budget|coupling|headline]``
    What ``basin best`` answers (with ``--by budget``, ``--coupling``, ``--headline``), from
    ``storage.best``, ``storage.best_by_budget``, ``storage.coupling`` and ``storage.headline``:
    every estimate with its 95% interval (``*_lo``/``*_hi``, ``slope_ci``), the selection method
    and the noise sources.

Query strings are checked: an unknown, repeated or malformed parameter is a 400 whose JSON
names it (``{"error": "...", "parameter": "budget"}``); an unknown sweep, study, optimizer,
schedule or budget is a 404 with a JSON error; an unreachable database a 503. No request ever
gets an HTML traceback. Floats that are NaN or infinite are sent as null
(``storage.jsonable``, the one converter ``basin best --json`` uses too).
"""

from __future__ import annotations

import json
import logging
import re

import flask
import pandas as pd
from werkzeug.exceptions import HTTPException

import storage
from dashboards.data import Source

log = logging.getLogger(__name__)

VIEWS = ("best", "budget", "coupling", "headline")
MAX_BUDGET = 1_000_000
_INT = re.compile(r"[0-9]{1,7}")


class ApiError(Exception):
    def __init__(self, status: int, message: str, parameter: str | None = None):
        super().__init__(message)
        self.status, self.message, self.parameter = status, message, parameter


def respond(payload, status: int = 200) -> flask.Response:
    body = json.dumps(storage.jsonable(payload), allow_nan=False, ensure_ascii=False)
    resp = flask.Response(body, status=status, mimetype="application/json")
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _error(status: int, message: str, parameter: str | None = None) -> flask.Response:
    payload = {"error": message, "status": status}
    if parameter is not None:
        payload["parameter"] = parameter
    return respond(payload, status)


def _params(allowed: tuple[str, ...]) -> dict[str, str]:
    args = flask.request.args
    for key in args:
        if key not in allowed:
            takes = ", ".join(allowed) if allowed else "no parameters"
            raise ApiError(400, f"unknown query parameter {key!r}; this endpoint takes {takes}", key)
        if len(args.getlist(key)) > 1:
            raise ApiError(400, f"query parameter {key!r} is given {len(args.getlist(key))} times; give it once", key)
    return {k: args[k] for k in allowed if k in args}


def _budget(text: str) -> int:
    if not _INT.fullmatch(text or "") or not 1 <= int(text) <= MAX_BUDGET:
        raise ApiError(400, f"query parameter 'budget' must be a whole number of epochs from 1 to {MAX_BUDGET}, "
                            f"got {text!r}", "budget")
    return int(text)


def _name_list(text: str, key: str) -> list[str]:
    """The names in a comma-separated query parameter (``optimizer=sgd,adamw``); a 400 when it has none."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ApiError(400, f"query parameter {key!r} is empty; give one or more names, comma-separated", key)
    return names


def _studies(source: Source) -> pd.DataFrame:
    """Every study, read now (cheap: study attrs only), so a study created a second ago is found."""
    try:
        return storage.studies_frame(source.rdb())
    except storage.EmptyStorageError:
        return pd.DataFrame(columns=["study", "sweep", "optimizer", "schedule"])


def sweep_json(sp: storage.SweepProgress) -> dict:
    return {
        "sweep": sp.sweep, "grid_size": sp.grid_size, "n_done": sp.n_done, "n_complete": sp.n_complete,
        "n_failed": sp.n_failed, "n_diverged": sp.n_diverged, "fraction": sp.fraction,
        "finished": sp.n_done >= sp.grid_size,
        "studies": [{
            "study": s.study, "optimizer": s.optimizer, "schedule": s.schedule, "dataset": s.dataset,
            "model": s.model, "budgets": list(s.budgets), "grid_size": s.grid_size, "n_done": s.n_done,
            "n_complete": s.n_complete, "n_failed": s.n_failed, "n_diverged": s.n_diverged,
            "n_trials": s.n_trials, "fraction": s.fraction,
        } for s in sp.studies],
    }


#: The matrices of /api/basin (rows λ_norm, columns α).
MATRICES = ("test_error", "test_error_std", "error_lo", "error_hi", "p_best", "plausible", "n_seeds", "n_failed",
            "n_diverged", "diverged_all", "missing")
#: The fields of each cell in /api/basin's top10, best and plausible lists.
CELL_FIELDS = ["rank", "lr", "wd_norm", "wd", "test_error", "test_error_std", "error_lo", "error_hi", "p_best",
               "plausible", "n_seeds", "n_diverged"]


def basin_json(grid: pd.DataFrame) -> dict:
    """``storage.basin_grid``'s frame as axes, matrices (rows λ_norm, columns α), cells, top-10, best,
    the plausible optima, and its attrs (the reported best error with its interval, the sources)."""
    lrs = sorted(grid["lr"].unique())
    wds = sorted(grid["wd_norm"].unique())
    matrices = {}
    for col in MATRICES:
        m = grid.pivot(index="wd_norm", columns="lr", values=col).reindex(index=wds, columns=lrs)
        matrices[col] = storage.jsonable(m.to_numpy().tolist())
    cells = storage.records(grid)
    top = grid[grid["top10"]].sort_values("rank")
    best = grid[grid["best"]]
    plausible = grid[grid["plausible"].astype(bool)].sort_values(["lr", "wd_norm"])
    return {
        **storage.jsonable(dict(grid.attrs)),
        "level": storage.DEFAULT_LEVEL,
        "lr": storage.jsonable(lrs), "wd_norm": storage.jsonable(wds),
        "grid": matrices, "cells": cells,
        "top10": storage.records(top[CELL_FIELDS]),
        "best": storage.records(best[CELL_FIELDS])[0] if not best.empty else None,
        "plausible": storage.records(plausible[CELL_FIELDS]),
    }


def _headline(source: Source, sweep, optimizers, schedules) -> list[dict]:
    """``storage.headline``'s rows, those whose two optimizers were both asked for (all when none was)."""
    heads = source.headline(sweep, schedules)
    if optimizers is not None:
        heads = heads[heads["decoupled"].isin(optimizers) & heads["coupled"].isin(optimizers)]
    return storage.records(heads)


def register(server: flask.Flask, source: Source, prefix: str = "/api") -> None:
    """Add the API routes (and JSON error pages for ``prefix``) to the dashboard's Flask server."""
    bp = flask.Blueprint("basin_api", __name__)

    @bp.get("/")
    @bp.get("")
    def index():
        _params(())
        return respond({"storage": source.label, "endpoints": {
            f"{prefix}/sweeps": "every sweep with its studies and progress",
            f"{prefix}/basin?study=NAME&budget=T": "one heatmap: axes, cells with 95% intervals and P(best), "
                                                   "top-10, best, plausible optima",
            f"{prefix}/best?sweep=NAME&view=best|budget|coupling|headline": "the answers of basin best, with intervals",
        }})

    @bp.get("/sweeps")
    def sweeps():
        _params(())
        return respond({"storage": source.label, "read_only": True,
                        "sweeps": [sweep_json(sp) for sp in source.sweeps()]})

    @bp.get("/basin")
    def basin():
        p = _params(("study", "budget"))
        study = (p.get("study") or "").strip()
        if not study:
            raise ApiError(400, "query parameter 'study' is required: a study name sweep/optimizer/schedule "
                                "(see /api/sweeps)", "study")
        budget = _budget(p["budget"]) if "budget" in p else None
        if study not in set(_studies(source)["study"]):
            raise ApiError(404, f"unknown study {study!r} (see /api/sweeps for the studies here)", "study")
        try:
            grid = source.basin_grid(study, budget)
        except storage.EmptyStorageError as exc:
            raise ApiError(404, str(exc), "study") from None
        except storage.UnknownNameError as exc:
            if budget is None:  # several budgets: the caller must choose
                raise ApiError(400, str(exc), "budget") from None
            raise ApiError(404, str(exc), "budget") from None
        return respond(basin_json(grid))

    @bp.get("/best")
    def best():
        p = _params(("sweep", "optimizer", "schedule", "view"))
        view = p.get("view", "best")
        if view not in VIEWS:
            raise ApiError(400, f"query parameter 'view' must be one of {', '.join(VIEWS)}, got {view!r}", "view")
        sweep = p.get("sweep")
        if sweep is not None and not sweep.strip():
            raise ApiError(400, "query parameter 'sweep' is empty; give a sweep name or leave it out", "sweep")
        optimizers = _name_list(p["optimizer"], "optimizer") if "optimizer" in p else None
        schedules = _name_list(p["schedule"], "schedule") if "schedule" in p else None
        meta = _studies(source)
        if meta.empty:
            raise ApiError(404, f"no Basin sweep recorded in {source.label} yet")
        if sweep is not None:
            if sweep not in set(meta["sweep"]):
                raise ApiError(404, f"unknown sweep {sweep!r} (see /api/sweeps for the sweeps here)", "sweep")
            meta = meta[meta["sweep"] == sweep]
        for key, wanted in (("optimizer", optimizers), ("schedule", schedules)):
            unknown = [w for w in wanted or [] if w not in set(meta[key])]
            if unknown:
                raise ApiError(404, f"unknown {key} {', '.join(map(repr, unknown))}"
                                    f"{f' in sweep {sweep!r}' if sweep else ''}", key)
        out = {"storage": source.label, "sweep": sweep, "view": view, "level": storage.DEFAULT_LEVEL}
        if view == "coupling":
            out["coupling"] = [c.to_dict() for c in source.coupling(sweep, optimizers, schedules)]
            return respond(out)
        if view == "budget":
            out["by_budget"] = storage.records(source.best_by_budget(sweep, optimizers, schedules))
        elif view == "headline":
            out["headline"] = _headline(source, sweep, optimizers, schedules)
        else:
            out["best"] = storage.records(source.best(sweep, optimizers, schedules))
            out["headline"] = _headline(source, sweep, optimizers, schedules)
        return respond(out)

    @bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    def unknown(rest: str):
        raise ApiError(404, f"no API endpoint {prefix}/{rest}; see {prefix}/ for the endpoints")

    @bp.errorhandler(ApiError)
    def api_error(exc: ApiError):
        return _error(exc.status, exc.message, exc.parameter)

    @bp.errorhandler(storage.StorageError)
    def storage_error(exc: storage.StorageError):
        if isinstance(exc, storage.UnknownNameError):
            return _error(404, str(exc))
        if isinstance(exc, storage.EmptyStorageError):
            return _error(404, str(exc))
        return _error(503, str(exc))

    server.register_blueprint(bp, url_prefix=prefix)

    def wants_json() -> bool:
        path = flask.request.path
        return path == prefix or path.startswith(prefix + "/")

    @server.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if wants_json():
            return _error(exc.code or 500, exc.description or exc.name)
        return exc.get_response()

    @server.errorhandler(Exception)
    def internal_error(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        log.exception("unhandled error on %s", flask.request.path)
        if wants_json():
            return _error(500, "internal error (see the server log)")
        return flask.Response("internal error (see the server log)", status=500, mimetype="text/plain")

    @server.after_request
    def security_headers(resp: flask.Response):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("X-Frame-Options", "SAMEORIGIN")
        return resp
