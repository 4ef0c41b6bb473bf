"""How fast the ``basin`` CLI starts: the median of 5 warm runs of ``basin --help`` (issue 19).

Each run is a fresh process of the installed ``basin`` entry point (the venv's, next to this Python),
after one untimed run that warms the file cache. With ``--storage URL`` it also times
``basin best --storage URL`` (whose time is mostly the storage's reads) twice: computed every time
(``BASIN_CACHE=off``) and asked again (``storage.answer_cache`` on, in a temporary folder: the
untimed first run computes and keeps the answer), and with ``--demo`` it
first writes a small planted sweep (Figure 2's four optimizers, tests/dashboards/planted.py) into a
temporary SQLite file and times ``basin best`` on that.

    .venv/bin/python bench/cli_startup.py
    .venv/bin/python bench/cli_startup.py --demo
    .venv/bin/python bench/cli_startup.py --storage sqlite:///basin.db
    PYTHONPATH=/tmp/basin-before .venv/bin/python bench/cli_startup.py --demo   # another checkout's code

Target (issue 19): ``basin --help`` ≤ 0.7 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASIN = Path(sys.executable).parent / "basin"
RUNS = 5


def timed(argv: list[str], runs: int = RUNS, env: dict | None = None) -> list[float]:
    """Wall seconds of ``runs`` warm runs of ``basin argv`` (one untimed run first); each must exit 0."""
    cmd = [sys.executable, str(BASIN), *argv]
    env = {**os.environ, **(env or {})}
    subprocess.run(cmd, check=True, capture_output=True, env=env)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    print(f"{label:40s} median {statistics.median(times):.3f} s  (min {min(times):.3f}, max {max(times):.3f}; "
          f"{len(times)} warm runs)")


def demo_storage(folder: str) -> str:
    """A small planted sweep in a new SQLite file (the dashboard tests' ``paper_sweep``)."""
    sys.path.insert(0, str(ROOT))
    import optuna

    import storage
    from tests.dashboards.planted import paper_sweep

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = f"sqlite:///{folder}/demo.db"
    paper_sweep(storage.open_storage(url), "demo")
    return url


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--storage", metavar="URL", help="also time `basin best --storage URL`")
    where.add_argument("--demo", action="store_true", help="also time `basin best` on a small planted sweep")
    parser.add_argument("--runs", type=int, default=RUNS, help=f"timed runs per command (default {RUNS})")
    args = parser.parse_args()
    code = os.environ.get("PYTHONPATH") or str(ROOT)
    print(f"basin CLI startup: {code} on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    report("basin --help", timed(["--help"], args.runs))
    with tempfile.TemporaryDirectory() as tmp:
        url = demo_storage(tmp) if args.demo else args.storage
        if url:  # computed every time, then asked again with the answer cache (its untimed 1st run keeps it)
            report("basin best (computed: BASIN_CACHE=off)", timed(["best", "--storage", url], args.runs,
                                                                  {"BASIN_CACHE": "off"}))
            report("basin best (asked again: answer cache)", timed(["best", "--storage", url], args.runs,
                                                                  {"BASIN_CACHE": "on", "BASIN_CACHE_DIR": f"{tmp}/cache"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
