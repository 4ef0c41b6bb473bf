"""A small thread-safe cache of recent answers, so one page view does not read the database twice.

Entries live ``ttl_s`` seconds. An entry asked for with ``stale_ok=True`` after it expired is
returned as it is while one background thread recomputes it (stale-while-revalidate): the
sweep index behind every selector then never makes a page wait once it has been read. Errors
are never cached. One computation per key runs at a time; concurrent askers wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

log = logging.getLogger(__name__)


class TTLCache:
    def __init__(self, ttl_s: float = 10.0, max_entries: int = 256):
        self.ttl_s = float(ttl_s)
        self.max_entries = int(max_entries)
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._locks: dict[Hashable, threading.Lock] = {}
        self._refreshing: set[Hashable] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def forget(self, key: Hashable) -> None:
        with self._lock:
            self._data.pop(key, None)

    def _lookup(self, key: Hashable) -> tuple[float, Any] | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is not None:
                self._data.move_to_end(key)
            return hit

    def _store(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._data[key] = (time.monotonic(), value)
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def _key_lock(self, key: Hashable) -> threading.Lock:
        with self._lock:
            return self._locks.setdefault(key, threading.Lock())

    def get(self, key: Hashable, compute: Callable[[], Any], *, ttl_s: float | None = None,
            stale_ok: bool = False) -> Any:
        ttl = self.ttl_s if ttl_s is None else ttl_s
        hit = self._lookup(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < ttl:
                return hit[1]
            if stale_ok:
                self._refresh_in_background(key, compute)
                return hit[1]
        with self._key_lock(key):
            hit = self._lookup(key)  # computed by another thread while this one waited
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            value = compute()
            self._store(key, value)
            return value

    def _refresh_in_background(self, key: Hashable, compute: Callable[[], Any]) -> None:
        with self._lock:
            if key in self._refreshing:
                return
            self._refreshing.add(key)

        def run() -> None:
            try:
                with self._key_lock(key):
                    self._store(key, compute())
            except Exception:  # noqa: BLE001 - the stale value stays; the next ask retries
                log.warning("background refresh of %r failed", key, exc_info=True)
            finally:
                with self._lock:
                    self._refreshing.discard(key)

        threading.Thread(target=run, name="basin-cache-refresh", daemon=True).start()
