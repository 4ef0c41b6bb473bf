"""Basin's results store: Optuna RDB studies (SQLite or PostgreSQL), written by sweeps, read by answers.

One job per module:

``schema``      what is recorded, declared once: GridPoint, study names, study and trial user attrs
``connect``     open a storage from a URL (WAL SQLite, read-only opening, clear errors)
``record``      the writes: studies, trials (whole, one transaction each), claims of points in flight, deletes
``tables``      SQLAlchemy handles on Optuna's tables (what the raw reads select from)
``sql``         every raw SQL read: the bulk trial rows, attrs, intermediate values, completed points
``frames``      the tidy frames: one row per study, one row per trial
``analysis``    the rules on frames: grid points, cells, ranking, the best cell, budget scaling, headline
``evidence``    the intervals: bootstrap over the test set and seeds, selection-aware best errors, verdicts
``panel``       one panel (heatmap) with its evidence: the rule every heatmap number goes through
``basin_shape`` the coupling of a basin: the evidence's verdict, the top-10 axis, the edge slope
``answers``     the answers read from a database: best, by budget, coupling, headline, anytime, a heatmap, curves
``answer_cache`` answers kept between requests, under a key of everything they are computed from
``doubt``       where an adaptive sweep runs next: every panel's cells in doubt and coupling verdicts
``progress``    every sweep's progress
``exports``     every trial to CSV or Parquet
``files``       atomic output files (exports, the dashboard's report)
``errors``      the exceptions, one line each
``constants``   the numeric defaults the CLI shows too (bootstrap draws, the edge's tolerance, "fits its data")
``json_ready``  the one converter to plain JSON values (numpy, NaN/inf/NA → null), for the CLI and the API
``cli_kit``     what every ``basin`` command shares: exit codes, the one-line failure, ``--storage``, the parser
``testing``     helpers for tests of code that reads Basin storage (scratch PostgreSQL schemas)

No Ray and no Dash here: only optuna, sqlalchemy, pandas and numpy. Names are imported lazily,
so a sweep driver that only writes (``from storage import record_trial``) never imports pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "storage.connect": ("default_url", "is_read_only", "open_storage", "reader", "safe_url", "storage_label"),
    "storage.basin_shape": ("Coupling",),
    "storage.cli_kit": ("EXIT_EMPTY", "EXIT_OK", "EXIT_USAGE", "fail", "storage_args"),
    "storage.constants": ("DEFAULT_BOOT", "DEFAULT_TOL", "FIT_TRAIN_ERROR"),
    "storage.evidence": ("DEFAULT_LEVEL", "PREDICTIONS", "BestError"),
    "storage.files": ("output_path", "write_atomic"),
    "storage.json_ready": ("jsonable", "records"),
    "storage.panel": ("PANEL_GRID_COLUMNS", "PanelData", "empty_panel", "figure2_panels"),
    "storage.errors": ("EmptyStorageError", "ReadOnlyStorageError", "StorageError", "UnknownNameError"),
    "storage.exports": ("export", "export_frame"),
    "storage.frames": ("select_studies", "studies_frame", "study_chance", "trials_frame"),
    "storage.progress": ("StudyProgress", "SweepProgress", "list_sweeps"),
    "storage.answers": ("anytime", "basin_grid", "best", "best_and_headline", "best_by_budget", "budget_view",
                        "coupling", "coupling_frame", "curves", "headline"),
    "storage.schema": ("STUDY_ATTRS", "TRIAL_ATTRS", "GridPoint", "optimizer_info", "study_name", "trial_record"),
    "storage.record": ("delete_sweep", "ensure_study", "grid_distributions", "record_trial"),
    "storage.doubt": ("Doubt", "in_doubt"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

_MODULES = ("analysis", "answer_cache", "answers", "basin_shape", "cli_kit", "connect", "constants", "doubt", "errors", "evidence",
            "exports", "files", "frames", "json_ready", "panel", "progress", "record", "schema", "sql", "tables", "testing")

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        if name in _MODULES:
            return importlib.import_module(f"storage.{name}")
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
