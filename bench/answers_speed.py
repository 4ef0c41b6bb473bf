"""Basin's answers at scale, baseline against current, side by side in one run (issue 19).

Fills SQLite (a temporary file) and PostgreSQL (a throw-away schema) with the synthetic sweep of
bench/query_scale.py (100k trials = 32 panels × 64 cells × 49 seeds), then times on the SAME
database, with the code of a baseline revision and with the working tree's:

* ``best``      ``storage.best(rdb, sweep=...)``                      (``basin best``)
* ``headline``  ``storage.best_and_headline(rdb, sweep=...)`` — all ``basin best`` prints (older code:
  ``storage.best`` and ``storage.headline``)
* ``coupling``  ``storage.coupling(rdb, sweep=...)``                  (``basin best --coupling``)
* ``panels``    the Basins page's data: ``storage.figure2_panels(rdb, sweep, "cosine", 40, [sgd, sgdw,
  adam, adamw])``, or on older code ``dashboards.panels.read_panels`` (same signature).

The baseline's code is a ``git worktree`` of ``--baseline REV`` in a temporary folder (removed at
the end). Each (query, version) runs in its own fresh subprocess of this venv's Python whose
``PYTHONPATH`` and working directory are that code's root, so no import, cache or connection pool
is shared between the two versions. In it, imports, opening the storage
(``open_storage(url, read_only=True)``) and one small query that opens a connection are untimed;
the answer is then called ``--repeat`` times (default 3) and the best time is reported, with the
first call's (which also pays the answer's lazy imports, as a one-shot ``basin best`` does).
Baseline and current alternate query by query (and which goes first alternates), so the load of
this shared machine hits both alike. The current code runs twice: ``computed`` with
``BASIN_CACHE=off`` (every call computes), and ``repeated`` with ``storage.answer_cache`` on, in an
empty folder per query (its 1st call computes and keeps the answer, the later calls are the same
question asked again). Times are reported, never asserted.

    .venv/bin/python bench/answers_speed.py                          # SQLite + PostgreSQL, 100k trials
    .venv/bin/python bench/answers_speed.py --sizes 1000 10000 --backends sqlite
    .venv/bin/python bench/answers_speed.py --baseline 17bc95a --queries best coupling
    .venv/bin/python bench/answers_speed.py --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target (issue 19): each answer ≤ 1 s at 100k trials on both backends; ``best`` ≥ 25× faster.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_BASELINE = "17bc95a"  # the commit before issue 19's work
QUERIES = ("best", "headline", "coupling", "panels")
FIGURE2_OPTIMIZERS = ["sgd", "sgdw", "adam", "adamw"]
TIMEOUT_S = 900  # one call of one version; the baseline's `best` took ≈ 30 s at 100k

# Runs in a fresh process, with the code under test first on sys.path. argv: url sweep query repeat.
SNIPPET = r"""
import json, sys, time
url, sweep, query, repeat = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
import storage
rdb = storage.open_storage(url, read_only=True)
rdb.get_all_studies()  # connection, schema check: not part of the answer's time
optimizers = %(optimizers)r
if query == "best":
    name, fn = "storage.best", storage.best
    call = lambda: fn(rdb, sweep=sweep)
elif query == "headline":  # what `basin best` prints: the table and the headline
    try:
        from storage import best_and_headline as fn
        name, call = "storage.best_and_headline", lambda: fn(rdb, sweep=sweep)[0]
    except ImportError:
        name = "storage.best + storage.headline"
        call = lambda: (storage.best(rdb, sweep=sweep), storage.headline(rdb, sweep=sweep))[0]
elif query == "coupling":
    name, fn = "storage.coupling", storage.coupling
    call = lambda: fn(rdb, sweep=sweep)
else:
    try:
        from storage import figure2_panels as fn
        name = "storage.figure2_panels"
    except ImportError:
        from dashboards.panels import read_panels as fn
        name = "dashboards.panels.read_panels"
    call = lambda: fn(rdb, sweep, "cosine", 40, optimizers)
times = []
for _ in range(repeat):
    start = time.perf_counter()
    out = call()
    times.append(time.perf_counter() - start)
print(json.dumps({"times": times, "function": name, "size": len(out), "storage": storage.__file__}))
""" % {"optimizers": FIGURE2_OPTIMIZERS}


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f} (1/5/15 min, {os.cpu_count()} cores)"


def time_calls(code_root: Path, url: str, sweep: str, query: str, repeat: int, extra_env: dict) -> dict:
    """``repeat`` timed calls of ``query`` with the code at ``code_root``, in one fresh subprocess."""
    env = {**os.environ, "PYTHONPATH": str(code_root), "PYTHONDONTWRITEBYTECODE": "1", **extra_env}
    try:
        proc = subprocess.run([sys.executable, "-c", SNIPPET, url, sweep, query, str(repeat)], cwd=code_root, env=env,
                              capture_output=True, text=True, timeout=TIMEOUT_S * repeat)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {TIMEOUT_S * repeat} s"}
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
        return {"error": lines[-1][:300] if lines else f"exit {proc.returncode}"}
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    where = Path(result["storage"]).resolve()
    if not where.is_relative_to(code_root.resolve()):
        return {"error": f"imported storage from {where}, not from {code_root}"}
    return result


def bench_database(label: str, url: str, n: int, versions: dict[str, tuple[Path, dict]], queries: list[str],
                   repeat: int) -> list[dict]:
    from bench.query_scale import fill
    from storage import open_storage

    sweep = f"speed-{n}"
    writer = open_storage(url)
    fill_s = fill(writer, sweep, n)
    writer.engine.dispose()
    print(f"{label} {n} trials: filled in {fill_s:.1f} s", flush=True)
    rows = []
    for i, query in enumerate(queries):
        row = dict(backend=label, trials=n, query=query, fill_s=fill_s)
        order = list(versions) if i % 2 == 0 else list(versions)[::-1]  # who goes first alternates
        for version in order:
            root, env = versions[version]
            if "BASIN_CACHE_DIR" in env:  # an empty cache folder for each query: the 1st call computes and keeps
                env = {**env, "BASIN_CACHE_DIR": tempfile.mkdtemp(prefix="cache-", dir=env["BASIN_CACHE_DIR"])}
            res = time_calls(root, url, sweep, query, repeat, env)
            if "times" in res:
                times = res["times"]
                row[version], row[f"{version}_first"], row[f"{version}_error"] = min(times), times[0], None
                shown = (f"best {min(times):.3f} s of {', '.join(f'{t:.3f}' for t in times)} "
                         f"({res['function']}, {res['size']} results)")
            else:
                row[version], row[f"{version}_first"], row[f"{version}_error"] = math.nan, math.nan, res["error"]
                shown = f"ERROR {res['error']}"
            print(f"  {label:10s} {n:>7d} {query:9s} {version:8s} {shown}   load {os.getloadavg()[0]:.2f}", flush=True)
        rows.append(row)
    return rows


def print_table(rows: list[dict], base_label: str, cur_label: str) -> None:
    print()
    print(f"baseline = {base_label}; current = {cur_label}")
    print("seconds: best of the calls in one process (its 1st call also pays lazy imports, e.g. scipy)")
    print()
    print("computed = current code with BASIN_CACHE=off; repeated = current code, the same question again "
          "(storage.answer_cache: its 1st call computed and kept the answer)")
    print()
    print("| backend | trials | query | baseline s | computed s | speed-up × | computed 1st call s | repeated s |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    show = lambda x: "error" if math.isnan(x) else f"{x:.3f}"  # noqa: E731
    for r in rows:
        b, c = r["baseline"], r["current"]
        ratio = f"{b / c:.1f}" if c > 0 and not math.isnan(b) and not math.isnan(c) else "-"
        print(f"| {r['backend']} | {r['trials']} | {r['query']} | {show(b)} | {show(c)} | {ratio} | "
              f"{show(r['current_first'])} | {show(r.get('cached', math.nan))} |")
    for r in rows:
        for version in ("baseline", "current", "cached"):
            if r[f"{version}_error"]:
                print(f"{r['backend']} {r['trials']} {r['query']} {version}: {r[f'{version}_error']}")
    print()
    print("target (issue 19): each answer ≤ 1 s at 100k trials on SQLite and PostgreSQL; `best` ≥ 25× faster")
    for r in rows:
        if r["trials"] < 100_000:
            continue
        c, b = r["current"], r["baseline"]
        verdict = "computed: " + ("no result" if math.isnan(c) else ("≤ 1 s" if c <= 1 else "over 1 s"))
        h = r.get("cached", math.nan)
        verdict += ", repeated: " + ("no result" if math.isnan(h) else ("≤ 1 s" if h <= 1 else "over 1 s"))
        if r["query"] == "best" and not (math.isnan(b) or math.isnan(c)) and c > 0:
            verdict += f", {b / c:.1f}× ({'≥' if b / c >= 25 else '<'} 25×)"
        print(f"  {r['backend']:10s} {r['query']:9s} {verdict}")


def main(argv: list[str] | None = None) -> int:
    from bench.query_scale import databases
    from storage.testing import PG_TEST_URL

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000], help="trials (default 100000)")
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_TEST_URL)
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, metavar="REV",
                        help=f"the revision to compare with (default {DEFAULT_BASELINE})")
    parser.add_argument("--queries", nargs="+", choices=QUERIES, default=list(QUERIES))
    parser.add_argument("--repeat", type=int, default=3, help="timed calls per query and version (best of; default 3)")
    args = parser.parse_args(argv)

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    base_rev = git("rev-parse", "--short", args.baseline)
    head = git("rev-parse", "--short", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    cur_label = f"working tree {ROOT} (HEAD {head}{' + uncommitted changes' if dirty else ''})"
    base_label = f"{args.baseline} ({base_rev}, a git worktree)"
    print(f"answers_speed: {time.strftime('%Y-%m-%d %H:%M %Z')}, Python {sys.version.split()[0]}")
    print(f"baseline: {base_label}\ncurrent:  {cur_label}")
    load_start = load()
    print(f"load average at start: {load_start}", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="basin-answers-speed-"))
    worktree = tmp / "baseline"
    rows: list[dict] = []
    try:
        git("worktree", "add", "--detach", str(worktree), base_rev)
        off = {"BASIN_CACHE": "off"}
        cached = {"BASIN_CACHE": "on", "BASIN_CACHE_DIR": str(tmp / "cache")}
        (tmp / "cache").mkdir()
        versions = {"baseline": (worktree, off), "current": (ROOT, off), "cached": (ROOT, cached)}
        for label, url, n in databases(args.backends, args.sizes, args.pg_url, "basin-speed"):
            rows += bench_database(label, url, n, versions, args.queries, args.repeat)
    finally:
        if worktree.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                           capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "-C", str(ROOT), "worktree", "prune"], capture_output=True)

    print_table(rows, base_label, cur_label)
    print()
    print(f"load average at start: {load_start}")
    print(f"load average at end:   {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
