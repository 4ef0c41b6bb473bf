"""How the dashboard scales: server-side time of the Basins page data and of /api/basin at 10k and 100k trials.

Fills SQLite and PostgreSQL with :func:`bench.query_scale.fill` (synthetic sweeps shaped like real
ones, bulk-inserted into Optuna's tables: 8 studies — 4 optimizers × 2 schedules — of an 8×8 grid
at 4 budgets, seeds as many as the size needs), then times, with every cache emptied first:

index       ``Source.index()``: ``storage.list_sweeps`` + ``studies_frame`` (the selectors' choices;
            the dashboard keeps it and refreshes it in the background, so pages rarely wait on it)
basins      the Basins page's callback work for its default view (4 heatmaps: SGD, SGDW, Adam,
            AdamW at T = 40): read, cells, coupling fits, the figure dict, the tables, and the
            figure as the JSON Dash sends — index already read
basins+idx  the same with the index read too (the first view after a start)
api         ``GET /api/basin?study=…/adamw/cosine&budget=40`` through the Flask app, JSON included

    .venv/bin/python bench/dashboard_scale.py                      # SQLite + PostgreSQL, 10k and 100k
    .venv/bin/python bench/dashboard_scale.py --sizes 10000 --backends sqlite

Target: ≤ 1 s for basins and api at 100k trials. Times are the best of --repeat runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import optuna  # noqa: E402
import plotly.io as pio  # noqa: E402

import storage  # noqa: E402
from dashboards import page_basins, pagekit  # noqa: E402
from dashboards.app import create_app  # noqa: E402
from dashboards.data import Source  # noqa: E402
from query_scale import databases, fill  # noqa: E402  (the filler and databases of bench/query_scale.py)
from storage.testing import PG_TEST_URL  # noqa: E402

TARGET_S = 1.0


def _best(fn, repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(label: str, url: str, n: int, repeat: int) -> dict:
    sweep = f"bench-{n}"
    writer = storage.open_storage(url)
    fill_s = fill(writer, sweep, n)
    writer.engine.dispose()

    source = Source(url)
    app = create_app(source=source)
    client = app.server.test_client()
    study = f"{sweep}/adamw/cosine"
    n_trials = sum(sp.n_complete + sp.n_failed for sp in storage.list_sweeps(url) if sp.sweep == sweep)

    def index():
        source.clear()
        source.index()

    def page(with_index: bool):
        source.clear()
        if not with_index:
            source.index()
        t = time.perf_counter()
        sel = page_basins.resolve(source.index(require=sweep), {"sweep": [sweep]})
        view = pagekit.build_safely(page_basins, source, sel)
        assert not view.message, view.message
        heat = [t for t in view.figures["heatmaps"]["data"] if t["type"] == "heatmap"]
        assert len(heat) == 4, len(heat)
        pagekit.details(view)
        pio.to_json(view.figures["heatmaps"], validate=False)
        return time.perf_counter() - t

    def api():
        source.clear()
        resp = client.get(f"/api/basin?study={study}&budget=40")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        resp.get_data()

    page(False)  # warm the process (imports, Plotly's template, the subplot grid)
    row = {
        "backend": label, "trials": n_trials, "fill_s": fill_s,
        "index_s": _best(index, repeat),
        "basins_s": min(page(False) for _ in range(repeat)),
        "basins_idx_s": min(page(True) for _ in range(repeat)),
        "api_s": _best(api, repeat),
    }
    print(f"{label:10s} {n_trials:>8d} trials  fill {fill_s:6.1f} s  index {row['index_s']:6.3f} s  "
          f"basins {row['basins_s']:6.3f} s  basins+idx {row['basins_idx_s']:6.3f} s  api {row['api_s']:6.3f} s",
          flush=True)
    if source._rdb is not None:
        source._rdb.engine.dispose()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", choices=("sqlite", "postgresql"), default=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_TEST_URL)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rows = [measure(label, url, n, args.repeat)
            for label, url, n in databases(args.backends, args.sizes, args.pg_url, "basin-dash-bench")]
    print()
    print(f"{'backend':10s} {'trials':>8s} {'index s':>8s} {'basins s':>9s} {'+index s':>9s} {'api s':>7s}")
    for r in rows:
        print(f"{r['backend']:10s} {r['trials']:>8d} {r['index_s']:8.3f} {r['basins_s']:9.3f} "
              f"{r['basins_idx_s']:9.3f} {r['api_s']:7.3f}")
    big = [r for r in rows if r["trials"] >= 100_000]
    if big:
        worst = max(max(r["basins_s"], r["api_s"]) for r in big)
        print(f"slowest of basins/api at ≥100k trials: {worst:.3f} s (target ≤ {TARGET_S:g} s): "
              f"{'OK' if worst <= TARGET_S else 'TOO SLOW'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
