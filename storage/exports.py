"""Export every trial of a storage (or one sweep) as one tidy file: CSV or Parquet.

One row per trial (every state, duplicates included; ``effective`` marks the trial each grid
point is counted with), carrying the study's description (dataset, model, b, B, C), the grid
coordinates, the outcome and the per-epoch lists (train_loss, train_error, test_loss,
test_error, eta, wd_per_epoch) plus restart_epochs. Parquet keeps the lists as list columns;
CSV writes each list as a JSON array.

The file appears whole or not at all (:func:`storage.files.write_atomic`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from storage import analysis
from storage.connect import StorageLike, reader, storage_label
from storage.errors import StorageError, read_errors
from storage.files import output_path, write_atomic
from storage.frames import select_studies, studies_frame, trials_for
from storage.schema import LIST_ATTRS, SCALAR_ATTRS
from storage.sql import fetch_attrs

FORMATS = ("csv", "parquet")
_STUDY_DESC = ("dataset", "model", "batch_size", "n_train", "num_classes")


def format_for(path: str | os.PathLike, fmt: str | None) -> str:
    """The export format: ``fmt`` if given (checked against the suffix), else from the suffix."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if fmt is None:
        if suffix not in FORMATS:
            raise ValueError(f"cannot tell the format of {os.fspath(path)!r}: give --format csv|parquet "
                             "or an output name ending in .csv or .parquet")
        return suffix
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    if suffix in FORMATS and suffix != fmt:
        raise ValueError(f"output {os.fspath(path)!r} ends in .{suffix} but the format is {fmt}; make them agree")
    return fmt


@read_errors
def export_frame(storage: StorageLike, sweep: str | None = None) -> pd.DataFrame:
    """The exported rows as a frame (see the module docstring)."""
    rdb = reader(storage)
    meta = select_studies(studies_frame(rdb), where=storage_label(rdb), sweep=sweep)
    frame = trials_for(rdb, meta, attrs=(*SCALAR_ATTRS, "restart_epochs"))
    effective_ids = set(analysis.effective_trials(frame)["trial_id"])
    frame.insert(frame.columns.get_loc("state") + 1, "effective", frame["trial_id"].isin(effective_ids))
    desc = meta[["study", *_STUDY_DESC]]
    frame = frame.merge(desc, on="study", how="left")
    lists = fetch_attrs(rdb.engine, frame["trial_id"].tolist(), LIST_ATTRS)
    for key in LIST_ATTRS:
        frame[key] = [_float_list(lists[t].get(key)) for t in frame["trial_id"]]
    frame["restart_epochs"] = [[int(x) for x in v] if isinstance(v, list) else None for v in frame["restart_epochs"]]
    front = [*analysis.STUDY_COLS, "study", *_STUDY_DESC]
    return frame[front + [c for c in frame.columns if c not in front]]


def _float_list(values) -> list[float] | None:
    if not isinstance(values, list):
        return None
    return [float("nan") if v is None else float(v) for v in values]


def export(storage: StorageLike, path: str | os.PathLike, *, fmt: str | None = None, sweep: str | None = None) -> Path:
    """Write the export of ``storage`` (or of ``sweep``) to ``path``, atomically; returns the path.

    Raises ValueError for a bad format/path combination, StorageError for a missing directory,
    UnknownNameError/EmptyStorageError when there is nothing to export.
    """
    fmt = format_for(path, fmt)
    target = output_path(path)
    frame = export_frame(storage, sweep)

    def write(tmp: str) -> None:
        if fmt == "csv":
            out = frame.copy()
            for key in (*LIST_ATTRS, "restart_epochs"):
                out[key] = [None if v is None else json.dumps(v) for v in out[key]]
            out.to_csv(tmp, index=False)
        else:
            _write_parquet(frame, tmp)

    return write_atomic(target, write)


def _write_parquet(frame: pd.DataFrame, path: str) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise StorageError("Parquet export needs pyarrow: pip install pyarrow (or export --format csv)") from None
    fields = []
    for col in frame.columns:
        if col in LIST_ATTRS:
            fields.append(pa.field(col, pa.list_(pa.float64())))
        elif col == "restart_epochs":
            fields.append(pa.field(col, pa.list_(pa.int64())))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    for f in fields:
        table = table.set_column(table.schema.get_field_index(f.name), f, pa.array(frame[f.name].tolist(), type=f.type))
    pq.write_table(table, path)


__all__ = ["FORMATS", "export", "export_frame", "format_for"]
