"""Adaptive seeds: the first seed on every cell, then every seed only where the doubt is, in rounds.

A sweep whose spec has an ``[adaptive]`` table (or ``basin sweep --adaptive``, ``basin reproduce
--until-decided``) runs in rounds, each an ordinary :func:`study.driver.run_sweep` over a part of the
grid, on one Ray session:

0. the first seed (``seeds[0]``) on every cell of every panel;
1. every seed on the cells in doubt (``storage.doubt``: the plausible optima and, per basin row, the
   best cell ± ``radius`` columns and the edge's cells), read from what is recorded;
2. again, on the answers with those seeds (``storage.evidence.doubt.next_step``): cells that came
   into doubt get their seeds; when none did and a panel's coupling verdict is still undecided the
   window widens by one column, up to ``max_radius``; it stops when every verdict is decided and no
   cell in doubt lacks a seed, when the window cannot widen, or when ``max_runs`` (default: the full
   grid) is spent. A point is run at most once per invocation: one that FAILs stays failed until
   the sweep is run again (as in any sweep), rather than being retried in every round.

Every added run is an ordinary trial in the same study, so a sweep resumes like any other: a re-run
recomputes the rounds from what is recorded and runs only what is missing. Why the intervals stay
honest: :mod:`storage.evidence.doubt` and docs/evidence.md ("Adaptive seeds").
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from storage.evidence.doubt import MAX_ROUNDS
from study.spec import Adaptive, Point, SweepSpec


@dataclass
class RoundLog:
    """What one round ran: its number, the λ_norm* window's radius, points run, cells in doubt."""

    round: int
    radius: int
    run: int
    doubt_cells: int = 0
    undecided: tuple[str, ...] = ()


@dataclass
class AdaptiveSummary:
    """Counts over every round (the keys of ``run_sweep``'s summary) and the rounds themselves."""

    total: int
    counts: dict = field(default_factory=dict)
    rounds: list[RoundLog] = field(default_factory=list)
    stopped: str = ""

    def add(self, summary: dict) -> None:
        for k in ("run", "in_flight", "packs", "failed", "diverged"):
            self.counts[k] = self.counts.get(k, 0) + int(summary.get(k, 0))


def settings(spec: SweepSpec) -> Adaptive:
    """The spec's ``[adaptive]`` table, or its defaults (``--adaptive`` on a spec without one)."""
    return spec.adaptive or Adaptive()


def next_points(spec: SweepSpec, cells, done: set) -> list[Point]:
    """Every seed of each cell in doubt (rows of ``storage.doubt.Doubt.cells``) that is not in ``done``."""
    from storage.schema import normalise_float

    want = {(r.optimizer, r.schedule, int(r.budget), normalise_float(r.lr), normalise_float(r.wd_norm))
            for r in cells.itertuples()}
    return [p for p in spec.points() if p not in done
            and (p.optimizer, p.schedule, p.budget, normalise_float(p.lr), normalise_float(p.wd_norm)) in want]


def run_adaptive(spec: SweepSpec, text: str, *, storage_url: str | None = None, address: str | None = None,
                 verbose: bool = False, quiet: bool = False, pack=None, prepared=None, log=None) -> AdaptiveSummary:
    """Run ``spec`` in adaptive rounds (module doc); ``log(line)`` hears one line per round."""
    import ray

    from storage.connect import open_storage
    from storage.doubt import DECIDED, in_doubt
    from storage.evidence.doubt import next_step
    from storage.sql import completed_points
    from study.driver import connect_ray, run_sweep
    from study.preflight import prepare

    say = log or (lambda line: print(line, file=sys.stderr))
    cfg = settings(spec)
    prepared = prepared or prepare(spec, None)
    budget = cfg.max_runs or len(spec.points())
    out = AdaptiveSummary(total=len(spec.points()))
    started = not ray.is_initialized()
    connect_ray(address, verbose, prepared.runtime_env())
    try:
        kw = dict(storage_url=storage_url, verbose=verbose, quiet=quiet, pack=pack, prepared=prepared, adaptive=True)
        first = run_sweep(spec, text, points=spec.first_points(), **kw)
        out.add(first)
        out.rounds.append(RoundLog(0, 0, first["run"]))
        say(f"adaptive round 0: seed {spec.seeds[0]} on every cell: ran {first['run']} points "
            f"({first['already_complete']} already complete)")
        rdb = open_storage(storage_url)
        radius = cfg.radius
        tried = set(spec.first_points())  # a point that FAILs is tried once per invocation, not once a round
        for rnd in range(1, MAX_ROUNDS + 1):
            found = in_doubt(rdb, spec.name, radius=radius)
            done = completed_points(rdb.engine, spec.name)
            todo = next_points(spec, found.cells, done | tried)
            undecided = tuple(f"{o}/{s} T={T}" for (o, s, T), v in sorted(found.verdicts.items())
                              if v not in DECIDED)
            step, why = next_step(len(todo), found.decided, radius, cfg.max_radius)
            if step == "stop":
                out.stopped = why + (f" ({', '.join(undecided)})" if undecided else "")
                break
            if step == "widen":
                radius += 1
                say(f"adaptive: {why} ({', '.join(undecided)})")
                continue
            room = budget - len(done)
            if room <= 0:
                out.stopped = f"the run budget (max_runs = {budget}) is spent"
                break
            todo = todo[:room]
            tried.update(todo)
            summary = run_sweep(spec, text, points=todo, **kw)
            out.add(summary)
            out.rounds.append(RoundLog(rnd, radius, summary["run"], int(len(found.cells)), undecided))
            say(f"adaptive round {rnd}: {len(found.cells)} cells in doubt (window ±{radius}): ran {summary['run']} "
                f"points" + (f"; undecided: {', '.join(undecided)}" if undecided else ""))
        else:
            out.stopped = f"{MAX_ROUNDS} rounds"
        return out
    finally:
        if started:
            ray.shutdown()


__all__ = ["AdaptiveSummary", "MAX_ROUNDS", "RoundLog", "next_points", "run_adaptive", "settings"]
