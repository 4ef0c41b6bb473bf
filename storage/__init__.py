"""Basin's results store: Optuna RDB studies (SQLite or PostgreSQL), written by sweeps, read by answers.

Write side (:mod:`storage.record`, :mod:`storage.connect`): one study per (sweep, optimizer,
schedule), one trial per grid point (α, λ_norm, budget T, seed). Read side
(:mod:`storage.queries`, :mod:`storage.analysis`, :mod:`storage.basin_shape`,
:mod:`storage.exports`): best settings, λ* against T, coupling of the basin, heatmap data,
learning curves and exports, read directly from Optuna's tables.

No Ray and no Dash here: only optuna, sqlalchemy, pandas and numpy. Names are imported lazily,
so a sweep driver that only writes (``from storage import record_trial``) never imports pandas.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "storage.connect": ("default_url", "is_read_only", "open_storage", "storage_label"),
    "storage.basin_shape": ("Coupling",),
    "storage.errors": ("EmptyStorageError", "ReadOnlyStorageError", "StorageError", "UnknownNameError"),
    "storage.exports": ("export", "export_frame"),
    "storage.queries": (
        "StudyProgress",
        "SweepProgress",
        "basin_grid",
        "best",
        "best_by_budget",
        "coupling",
        "coupling_frame",
        "curves",
        "headline",
        "list_sweeps",
        "studies_frame",
        "trials_frame",
    ),
    "storage.record": (
        "STUDY_ATTRS",
        "TRIAL_ATTRS",
        "GridPoint",
        "completed_points",
        "delete_sweep",
        "ensure_study",
        "grid_distributions",
        "record_trial",
        "study_name",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    module = _WHERE.get(name)
    if module is None:
        if name in ("analysis", "basin_shape", "exports", "fetch", "queries", "record", "tables", "testing"):
            return importlib.import_module(f"storage.{name}")
        raise AttributeError(f"module 'storage' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
