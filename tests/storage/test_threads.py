"""storage.threads: panels answered on several threads give the answers of one thread, on both backends."""

from __future__ import annotations

import threading
import time
import warnings

import numpy as np
import pandas as pd
import pytest

import storage
from storage import panel, threads
from storage.evidence.base import _nanmean
from storage.evidence.rows import profile


def test_thread_count_reads_basin_threads(monkeypatch):
    monkeypatch.setenv(threads.ENV, "3")
    assert threads.thread_count() == 3
    monkeypatch.delenv(threads.ENV)
    assert 1 <= threads.thread_count() <= threads.MAX_THREADS
    for bad in ("0", "two", "-1"):
        monkeypatch.setenv(threads.ENV, bad)
        with pytest.raises(ValueError, match="BASIN_THREADS=.*1 or more"):
            threads.thread_count()


def test_map_ordered_keeps_the_order_and_uses_the_threads():
    seen = set()

    def slow(x):
        seen.add(threading.get_ident())
        time.sleep(0.02 * (5 - x))  # the first items finish last
        return x * x

    assert threads.map_ordered(slow, range(5), threads=3) == [0, 1, 4, 9, 16]
    assert len(seen) > 1
    seen.clear()
    assert threads.map_ordered(slow, range(3), threads=1) == [0, 1, 4]
    assert seen == {threading.get_ident()}  # one thread: the caller's own


def test_map_ordered_raises_the_first_failure():
    def fails_on_odd(x):
        if x % 2:
            raise KeyError(x)
        return x

    with pytest.raises(KeyError, match="1"):
        threads.map_ordered(fails_on_odd, range(6), threads=2)


def test_evidence_helpers_change_no_warning_state():
    """The NaN reductions behind the evidence give numpy's values without touching ``warnings``' filters
    (process-wide: a ``catch_warnings`` on one thread can swallow or release another thread's warnings)."""
    a = np.array([[0.1, np.nan, 0.3], [np.nan, np.nan, np.nan], [np.inf, 1.0, np.nan]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning raised inside would fail the test
        mean, low = _nanmean(a, 1), profile(a.reshape(1, 3, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(mean, np.nanmean(a, 1))
        np.testing.assert_array_equal(low, np.nanmin(a.reshape(1, 3, 3), axis=-2))


def _answers(url, sweep):
    table, headline = storage.best_and_headline(url, sweep=sweep)
    return table, headline, storage.coupling(url, sweep=sweep), storage.best_by_budget(url, sweep=sweep)


def test_threads_give_the_answers_of_one_thread(planted, monkeypatch):
    """best, headline, coupling and λ*(T) of the planted sweep: identical to the last bit with one thread
    and with four, and the four really answer panels at once (more than one thread runs ``answer``)."""
    url, sweep = planted
    monkeypatch.setenv(threads.ENV, "1")
    serial = _answers(url, sweep)
    used = set()
    real = panel.answer

    def recording(*args, **kwargs):
        used.add(threading.get_ident())
        time.sleep(0.01)  # long enough that a free thread takes the next panel
        return real(*args, **kwargs)

    monkeypatch.setattr(panel, "answer", recording)
    monkeypatch.setenv(threads.ENV, "4")
    threaded = _answers(url, sweep)
    assert len(used) > 1
    for one, many in zip(serial, threaded):
        if isinstance(one, pd.DataFrame):
            pd.testing.assert_frame_equal(one, many, check_exact=True)
        else:  # coupling: a list of Coupling records (NaN equal to NaN, every other number exactly)
            np.testing.assert_equal([c.to_dict() for c in one], [c.to_dict() for c in many])
