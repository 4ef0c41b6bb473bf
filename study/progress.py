"""A sweep's progress on stderr, counted in grid points (not packs).

On a terminal: a tqdm bar with failed/diverged counts. Elsewhere (``make demo > log``, CI, a
cluster job, ``docker compose run``): one line every :data:`EVERY_S` seconds or every tenth of
the work, whichever comes first, and one when the sweep ends::

    sweep figure2-mnist1d: 120/768 points (15.6%), 0 failed, 1 diverged, 1m05s elapsed, ETA 5m51s

``quiet`` prints nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

EVERY_S = 10.0


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
    """Counts finished grid points of ``total`` and shows them."""

    def __init__(self, name: str, total: int, *, quiet: bool = False, stream: TextIO | None = None,
                 every_s: float = EVERY_S) -> None:
        self.name, self.total = name, total
        self.stream = stream or sys.stderr
        self.done = self.failed = self.diverged = 0
        self.start = time.monotonic()
        self.every_s = every_s
        self.quiet = quiet
        self.bar = None
        self._last_line, self._last_done = self.start, 0
        if not quiet and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="point", file=self.stream, dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")

    def __getstate__(self):  # Tune pickles its callbacks (and this with them); a stream cannot be
        return {k: v for k, v in self.__dict__.items() if k not in ("stream", "bar")}

    def __setstate__(self, state):
        self.__dict__.update(state, stream=sys.stderr, bar=None)

    def line(self) -> str:
        elapsed = time.monotonic() - self.start
        eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        return (f"sweep {self.name}: {self.done}/{self.total} points ({pct:.1f}%), {self.failed} failed, "
                f"{self.diverged} diverged, {_clock(elapsed)} elapsed"
                + (f", ETA {_clock(eta)}" if self.done and self.done < self.total else ""))

    def point(self, *, failed: bool = False, diverged: bool = False) -> None:
        """One grid point recorded."""
        self.done += 1
        self.failed += failed
        self.diverged += diverged
        if self.quiet:
            return
        if self.bar is not None:
            self.bar.set_postfix_str(f"failed {self.failed}, diverged {self.diverged}")
            self.bar.update(1)
            return
        now = time.monotonic()
        step = max(1, self.total // 10)
        if now - self._last_line >= self.every_s or self.done - self._last_done >= step:
            self._emit(now)

    def _emit(self, now: float) -> None:
        print(self.line(), file=self.stream, flush=True)
        self._last_line, self._last_done = now, self.done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif not self.quiet and self._last_done != self.done:
            self._emit(time.monotonic())


__all__ = ["EVERY_S", "Progress"]
