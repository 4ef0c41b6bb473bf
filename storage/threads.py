"""The panels of one request (and the headline's comparisons), answered on a few threads.

Each panel's answer (``storage.panel.answer``) is a pure function of its inputs — its values, its axes,
the sweep's seed draw and a generator of its own seeded with ``storage.panel.RNG_SEED`` — so answering
the panels on several threads gives the same numbers as answering them one after the other, in the
same order (:func:`map_ordered` keeps the input order). What the threads share is read only, or
computed on first use from what is (``SeedDraws.counts``: a race computes the same array twice at
worst). Threads rather than processes: the work is numpy on (n_boot × cells × folds) arrays, whose
loops release the GIL, and a thread shares the read's frames instead of pickling them. Measured on the 2-core bench machine (100k trials, 32 panels): the
panels' part of ``storage.best`` 1.1 → 0.7 s on two threads. The read itself stays on one thread:
split into two shares read at once it took 1.2 s against 0.65 s for SQLite (each row's step hands the
GIL back and forth between the readers) and gained nothing on PostgreSQL (measured here).

BLAS runs one thread inside the pool: the draws' matrix products are (n_boot × k)·(k × cells) with
k ≤ a fold's seeds, too small for OpenBLAS's threads to pay for themselves — on their default (one
per core) the same panels took 1.1 s serially against 0.88 s with one BLAS thread (measured here).

``BASIN_THREADS`` sets the number of threads (default: the CPUs this process may use, at most
:data:`MAX_THREADS`); ``BASIN_THREADS=1`` runs everything in the calling thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: At most this many threads by default (a panel's arrays are a few MB: memory bandwidth, not cores, bounds it).
MAX_THREADS = 8
ENV = "BASIN_THREADS"


def thread_count() -> int:
    """Threads an answer may use: ``$BASIN_THREADS`` if set (≥ 1), else the CPUs this process may run
    on, capped at :data:`MAX_THREADS`."""
    text = os.environ.get(ENV, "").strip()
    if text:
        try:
            n = int(text)
        except ValueError:
            raise ValueError(f"{ENV}={text!r} is not a whole number: set it to 1 or more (1 = no threads)") from None
        if n < 1:
            raise ValueError(f"{ENV}={text!r}: set it to 1 or more (1 = no threads)")
        return n
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus, MAX_THREADS))


def one_blas_thread():
    """A context in which BLAS (numpy's matmul) uses one thread (threadpoolctl); see the module doc."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def map_ordered(fn: Callable[[T], R], items: Iterable[T], *, threads: int | None = None) -> list[R]:
    """``[fn(x) for x in items]``, on up to ``threads`` (default :func:`thread_count`) threads with
    BLAS on one thread each; results in the order of ``items``. An exception in any ``fn(x)`` is raised
    here (the first in input order), after the pool has finished."""
    items = list(items)
    n = min(threads or thread_count(), len(items))
    with one_blas_thread():
        if n <= 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="basin-answer") as pool:
            return list(pool.map(fn, items))
