"""Progress of every sweep: grid points done (latest trial per point) against the grid's size."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from storage import analysis
from storage.connect import StorageLike, reader
from storage.errors import read_errors
from storage.frames import studies_frame, trials_for


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
    metric: str = "error"  # what the values are (storage.schema.is_error_metric)
    decay: str = "all"  # which parameters decay: all, or matrices (no decay on biases and norms)
    adaptive: bool = False  # ran in adaptive rounds: fewer points than grid_size is its finished state


@dataclass(frozen=True)
class SweepProgress(_Progress):
    """A sweep, its studies and their summed progress."""

    sweep: str
    studies: tuple[StudyProgress, ...]
    grid_size: int
    n_complete: int
    n_failed: int
    n_diverged: int


@read_errors
def list_sweeps(storage: StorageLike) -> list[SweepProgress]:
    """Every sweep with its studies and progress, sorted by name; [] for an empty storage."""
    rdb = reader(storage)
    meta = studies_frame(rdb)
    if meta.empty:
        return []
    frame = trials_for(rdb, meta, attrs=("diverged",))
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
                    metric=m.metric if isinstance(m.metric, str) else "error",
                    decay=m.decay if isinstance(m.decay, str) else "all",
                    adaptive=bool(m.adaptive) if pd.notna(m.adaptive) else False,
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


__all__ = ["StudyProgress", "SweepProgress", "list_sweeps"]
