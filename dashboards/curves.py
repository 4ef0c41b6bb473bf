"""Learning curves of chosen cells, averaged over seeds, from ``storage.curves`` frames, for drawing.

Shared by the Learning-curves page (Figure 3) and the Anytime page (Figure 4). A *setting* is
(optimizer, α, λ_norm) within one (sweep, schedule, T); its key ``"adamw|0.0078125|0.05"``
(``repr`` of the floats, so it round-trips exactly) is what the URL and the dropdown carry. A
:class:`Curve` is one setting's seed-mean train loss and test error per epoch. Figure 4's claim in
numbers (the speed-up at the first warm restart, with its interval) is ``storage.anytime``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboards.panels import Panel
from dashboards.text import optimizer_label, pct, value_label


@dataclass(frozen=True)
class Setting:
    optimizer: str
    lr: float
    wd_norm: float
    rank: int | None = None
    error: float | None = None

    @property
    def key(self) -> str:
        return f"{self.optimizer}|{self.lr!r}|{self.wd_norm!r}"

    def label(self, *, with_error: bool = False) -> str:
        rank = f" #{self.rank}" if self.rank is not None else ""
        text = (f"{optimizer_label(self.optimizer)}{rank}: α={value_label(self.lr, rich=False)}, "
                f"λ_norm={value_label(self.wd_norm, rich=False)}")
        return text + (f" ({pct(self.error)})" if with_error and self.error is not None else "")


@dataclass(frozen=True)
class Curve:
    """One setting's curves, averaged over its seeds (epoch-indexed Series)."""

    optimizer: str
    label: str  # plain text, naming the setting; escaped when drawn
    train_loss: pd.Series
    test_error: pd.Series
    restarts: tuple[int, ...]
    n_seeds: int
    schedule: str = ""
    value: float | None = None  # the recorded final test error (seed mean): under warm restarts, at the last restart


def top_settings(panel: Panel, k: int = 10) -> list[Setting]:
    """The ``k`` best cells of a panel, best first."""
    if not panel.has_data:
        return []
    g = panel.grid[panel.grid["rank"].notna()].sort_values("rank")
    return [Setting(panel.optimizer, float(r.lr), float(r.wd_norm), int(r.rank), float(r.test_error))
            for r in g.head(k).itertuples()]


def _rows(frame: pd.DataFrame, s: Setting) -> pd.DataFrame:
    return frame[np.isclose(frame["lr"], s.lr, rtol=1e-9, atol=0) & np.isclose(frame["wd_norm"], s.wd_norm, rtol=1e-9, atol=0)]


def curve(frame: pd.DataFrame, s: Setting, *, label: str | None = None, schedule: str = "") -> Curve | None:
    """Seed-mean train loss and test error per epoch of one setting (None without rows)."""
    rows = _rows(frame, s)
    if rows.empty:
        return None
    by_epoch = rows.groupby("epoch", sort=True)
    restarts = tuple(sorted(int(e) for e in rows.loc[rows["restart"].astype(bool), "epoch"].unique()))
    return Curve(optimizer=s.optimizer, label=label or s.label(),
                 train_loss=by_epoch["train_loss"].mean(), test_error=by_epoch["test_error"].mean(),
                 restarts=restarts, n_seeds=int(rows["trial_id"].nunique()), schedule=schedule,
                 value=float(rows.drop_duplicates("trial_id")["value"].mean()))


def finals(frame: pd.DataFrame, optimizer: str) -> pd.DataFrame:
    """Per cell of ``frame`` (top-k curves of one study): last train loss and final test error, seed-mean."""
    if frame.empty:
        return pd.DataFrame(columns=["optimizer", "lr", "wd_norm", "rank", "train_loss", "test_error"])
    last = (frame.dropna(subset=["train_loss"]).sort_values("epoch")
            .groupby("trial_id", sort=False).tail(1)[["trial_id", "train_loss"]])
    per_trial = frame.drop_duplicates("trial_id")[["trial_id", "lr", "wd_norm", "rank", "value"]].merge(
        last, on="trial_id", how="left")
    out = per_trial.groupby(["lr", "wd_norm"], sort=False).agg(
        rank=("rank", "min"), train_loss=("train_loss", "mean"), test_error=("value", "mean")).reset_index()
    out.insert(0, "optimizer", optimizer)
    return out.sort_values("rank").reset_index(drop=True)
