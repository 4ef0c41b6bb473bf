"""The dashboard's one door to the database: a read-only storage and cached answers from ``storage``.

:class:`Source` opens the storage lazily with ``storage.open_storage(url, read_only=True)`` —
so a dashboard can start before the first sweep has created the database, and a gunicorn
worker forked after import opens its own connections — and keeps recent answers for a few
seconds (:mod:`dashboards.cache`), so the several callbacks of one page view share one read.
Every answer carries storage's evidence (95% intervals over the test set and seeds); ``n_boot``
is the bootstrap draws behind them, passed to every storage answer. Nothing here writes.

:class:`SweepInfo` is the index behind every selector: which optimizers, schedules and
budgets a sweep has, from ``storage.list_sweeps`` and ``storage.studies_frame``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

import storage

from dashboards.cache import TTLCache
from dashboards.panels import Panel, empty_panel, read_panels
from dashboards.text import OPTIMIZER_ORDER, SCHEDULE_ORDER, ordered

DEFAULT_TTL_S = 10.0
#: Progress is re-read more often (in the background: the page never waits for it).
PROGRESS_TTL_S = 3.0


@dataclass(frozen=True)
class SweepInfo:
    """What one sweep holds: its studies, their budgets and their progress."""

    name: str
    progress: storage.SweepProgress
    dataset: str | None
    model: str | None
    optimizers: tuple[str, ...]
    schedules: tuple[str, ...]
    #: (optimizer, schedule) → study name
    studies: dict[tuple[str, str], str]
    #: (optimizer, schedule) → budgets with a finished trial
    budgets: dict[tuple[str, str], tuple[int, ...]]
    #: optimizer → the chance level its studies recorded (None when they recorded none)
    chance: dict[str, float | None]

    def budgets_for(self, schedules: Sequence[str] | None = None, optimizers: Sequence[str] | None = None) -> list[int]:
        """Sorted budgets over the given schedules and optimizers (all when None)."""
        out = set()
        for (opt, sched), values in self.budgets.items():
            if (schedules is None or sched in schedules) and (optimizers is None or opt in optimizers):
                out.update(values)
        return sorted(out)

    def default_budget(self, schedules: Sequence[str] | None = None, optimizers: Sequence[str] | None = None) -> int | None:
        """The longest budget every chosen (optimizer, schedule) study has reached; else the longest of any."""
        common = None
        for (opt, sched), values in self.budgets.items():
            if (schedules is None or sched in schedules) and (optimizers is None or opt in optimizers):
                common = set(values) if common is None else common & set(values)
        if common:
            return max(common)
        union = self.budgets_for(schedules, optimizers)
        return union[-1] if union else None

    def optimizers_for(self, schedule: str) -> list[str]:
        return [o for o in self.optimizers if (o, schedule) in self.studies]


class Source:
    """A read-only storage URL and a short-lived cache of answers read from it."""

    def __init__(self, url: str | None = None, *, ttl_s: float = DEFAULT_TTL_S,
                 n_boot: int = storage.DEFAULT_BOOT):
        self.url = url or storage.default_url()
        self.label = storage.safe_url(self.url)  # never the password
        self.n_boot = int(n_boot)
        self.cache = TTLCache(ttl_s)
        self._rdb = None
        self._pid = None
        self._lock = threading.Lock()

    # --- the storage --------------------------------------------------------------------------

    def rdb(self):
        """The read-only storage, opened on first use (and again in a forked worker).

        Raises ``storage.EmptyStorageError`` while nothing is recorded yet (asked again on the
        next call), ``storage.StorageError`` when the URL cannot be opened.
        """
        with self._lock:
            if self._rdb is None or self._pid != os.getpid():
                rdb = storage.open_storage(self.url, read_only=True)
                assert storage.is_read_only(rdb)
                self._rdb, self._pid = rdb, os.getpid()
                self.label = storage.storage_label(rdb)
            return self._rdb

    def check(self) -> str | None:
        """Open the storage now: None if it holds Optuna tables, else the EmptyStorageError text.

        Raises ``storage.StorageError`` for a URL that cannot be used at all.
        """
        try:
            self.rdb()
        except storage.EmptyStorageError as exc:
            return str(exc)
        return None

    def clear(self) -> None:
        """Forget every cached answer (benchmarks time cold reads with this)."""
        self.cache.clear()

    # --- the index ------------------------------------------------------------------------------

    def sweeps(self) -> list[storage.SweepProgress]:
        """Every sweep with its progress; [] while the storage is empty."""

        def compute():
            try:
                return storage.list_sweeps(self.rdb())
            except storage.EmptyStorageError:
                return []

        return self.cache.get(("sweeps",), compute, ttl_s=PROGRESS_TTL_S, stale_ok=True)

    def studies(self) -> pd.DataFrame:
        """``storage.studies_frame``: one row per study with its attrs (cheap: no trial is read)."""

        def compute():
            try:
                return storage.studies_frame(self.rdb())
            except storage.EmptyStorageError:
                return pd.DataFrame(columns=["study_id", "study", "sweep", "optimizer", "schedule", "num_classes",
                                             "chance"])

        return self.cache.get(("studies",), compute, stale_ok=True)

    def index(self, *, require: str | None = None) -> dict[str, SweepInfo]:
        """{sweep: SweepInfo}, sorted by sweep name.

        The index may be a few seconds old; asked for a sweep it lacks (``require``, e.g. a
        link to a sweep that just started), it is read again at once.
        """
        index = build_index(self.sweeps(), self.studies())
        if require is not None and require not in index:
            self.cache.forget(("sweeps",))
            self.cache.forget(("studies",))
            index = build_index(self.sweeps(), self.studies())
        return index

    def sweep(self, name: str) -> SweepInfo:
        info = self.index().get(name)
        if info is None:
            raise storage.UnknownNameError(f"unknown sweep {name!r}")
        return info

    # --- answers --------------------------------------------------------------------------------

    def panels(self, sweep: str, schedule: str, budget: int | None, optimizers: Sequence[str]) -> dict[str, Panel]:
        """{optimizer: Panel} of one (sweep, schedule, T); optimizers without a study get an empty panel."""
        info = self.index().get(sweep)
        out: dict[str, Panel] = {}
        present = []
        for opt in optimizers:
            if info is None:
                out[opt] = empty_panel(sweep, opt, schedule, budget, f"no sweep {sweep!r}")
            elif (opt, schedule) not in info.studies:
                out[opt] = empty_panel(sweep, opt, schedule, budget, f"no study {opt}/{schedule} in this sweep")
            elif budget is None:
                out[opt] = empty_panel(sweep, opt, schedule, budget, "no finished trial yet",
                                       info.studies[(opt, schedule)])
            else:
                present.append(opt)
        if present:
            key = ("panels", sweep, schedule, int(budget), tuple(present))
            read = self.cache.get(key, lambda: read_panels(self.rdb(), sweep, schedule, int(budget), present,
                                                           chance=info.chance, n_boot=self.n_boot))
            out.update(read)
        return {opt: out[opt] for opt in optimizers}

    def budget_view(self, sweep: str, schedule: str, optimizers: Sequence[str]) -> tuple[dict, pd.DataFrame]:
        """``storage.budget_view``: every budget's panels and the λ_norm*(T) table from one read.
        Optimizers without a study in the sweep get an empty panel at every budget."""
        info = self.sweep(sweep)
        present = [o for o in optimizers if (o, schedule) in info.studies]
        if not present:
            raise storage.UnknownNameError(f"no study of {', '.join(optimizers) or 'any optimizer'} with schedule "
                                           f"{schedule!r} in sweep {sweep!r}")
        key = ("budget_view", sweep, schedule, tuple(present))
        panels, table = self.cache.get(key, lambda: storage.budget_view(self.rdb(), sweep, schedule, present,
                                                                         chance=info.chance, n_boot=self.n_boot))
        full = {b: {o: by_opt.get(o) or empty_panel(sweep, o, schedule, b, f"no study {o}/{schedule} in this sweep")
                    for o in optimizers} for b, by_opt in panels.items()}
        return full, table

    def basin_grid(self, study: str, budget: int | None) -> pd.DataFrame:
        """``storage.basin_grid``: one heatmap's cells with their evidence."""
        return self.cache.get(("basin_grid", study, budget),
                              lambda: storage.basin_grid(self.rdb(), study, budget, n_boot=self.n_boot))

    def best(self, sweep: str | None = None, optimizers: Sequence[str] | None = None,
             schedules: Sequence[str] | None = None) -> pd.DataFrame:
        """``storage.best``: the best setting of every panel, its interval, P(best) and reported error."""
        key = ("best", sweep, _tuple(optimizers), _tuple(schedules))
        return self.cache.get(key, lambda: storage.best(self.rdb(), sweep, _list(optimizers), _list(schedules),
                                                        n_boot=self.n_boot))

    def best_by_budget(self, sweep: str | None = None, optimizers: Sequence[str] | None = None,
                       schedules: Sequence[str] | None = None) -> pd.DataFrame:
        """``storage.best_by_budget``: λ_norm* and raw λ* per budget with intervals, and their exponents."""
        key = ("best_by_budget", sweep, _tuple(optimizers), _tuple(schedules))
        return self.cache.get(key, lambda: storage.best_by_budget(self.rdb(), sweep, _list(optimizers),
                                                                  _list(schedules), n_boot=self.n_boot))

    def headline(self, sweep: str | None = None, schedules: Sequence[str] | None = None) -> pd.DataFrame:
        """``storage.headline``: AdamW vs Adam and SGDW vs SGD, relative improvement with its interval."""
        key = ("headline", sweep, _tuple(schedules))
        return self.cache.get(key, lambda: storage.headline(self.rdb(), sweep, _list(schedules), n_boot=self.n_boot))

    def coupling(self, sweep: str | None = None, optimizers: Sequence[str] | None = None,
                 schedules: Sequence[str] | None = None) -> list[storage.Coupling]:
        """``storage.coupling``: every panel's verdict, slope interval and λ_norm*(α) band."""
        key = ("coupling", sweep, _tuple(optimizers), _tuple(schedules))
        return self.cache.get(key, lambda: storage.coupling(self.rdb(), sweep, _list(optimizers), _list(schedules),
                                                            n_boot=self.n_boot))

    def anytime(self, sweep: str, restart: str, plain: str | None, budget: int,
                optimizers: Sequence[str] | None = None) -> pd.DataFrame:
        """``storage.anytime``: Figure 4's speed-up at the first restart, with its interval."""
        key = ("anytime", sweep, restart, plain, int(budget), _tuple(optimizers))
        return self.cache.get(key, lambda: storage.anytime(self.rdb(), sweep, restart_schedule=restart,
                                                           plain_schedule=plain, optimizer=_list(optimizers),
                                                           budget=int(budget), n_boot=self.n_boot))

    def curves(self, study: str, budget: int, top_k: int = 10) -> pd.DataFrame:
        """Per-epoch curves of every seed of the ``top_k`` best cells of ``study`` at T."""
        key = ("curves", study, int(budget), int(top_k))
        return self.cache.get(key, lambda: storage.curves(self.rdb(), study, top_k=top_k, budget=int(budget)))


def _tuple(values):
    return None if values is None else tuple(values)


def _list(values):
    return None if values is None else list(values)


def build_index(sweeps: Sequence[storage.SweepProgress], meta: pd.DataFrame) -> dict[str, SweepInfo]:
    """The :class:`SweepInfo` of every sweep from ``list_sweeps`` and ``studies_frame``."""
    classes = {}  # study → the chance level it recorded (what its diverged runs hold)
    if not meta.empty:
        for _, row in meta.iterrows():
            classes[row["study"]] = storage.study_chance(row)
    out = {}
    for sp in sweeps:
        studies = {(s.optimizer, s.schedule): s.study for s in sp.studies}
        budgets = {(s.optimizer, s.schedule): tuple(s.budgets) for s in sp.studies}
        chance = {}
        for s in sp.studies:
            if chance.get(s.optimizer) is None:
                chance[s.optimizer] = classes.get(s.study)
        first = sp.studies[0] if sp.studies else None
        out[sp.sweep] = SweepInfo(
            name=sp.sweep,
            progress=sp,
            dataset=first.dataset if first else None,
            model=first.model if first else None,
            optimizers=tuple(ordered((s.optimizer for s in sp.studies), OPTIMIZER_ORDER)),
            schedules=tuple(ordered((s.schedule for s in sp.studies), SCHEDULE_ORDER)),
            studies=studies,
            budgets=budgets,
            chance=chance,
        )
    return dict(sorted(out.items()))
