"""End to end: `basin sweep` of a spec packed (its own `pack`, default auto) against `--pack 1`, side by
side in one run, each into a fresh SQLite database, and the per-point results compared.

    python bench/sweep_packed.py [--spec examples/figure2-mnist1d.toml] [--seeds 0] [--variants auto,16,1]
                                 [--order packed-first] [--worst 5]

`--seeds` overrides the spec's seeds (the issue's comparison is the single-seed Figure 2 grid);
`--variants` lists the pack settings to time (default `auto,1`: the spec's own against one point per
trial; e.g. `auto,16,1`). Prints each wall time, the ratios against `--pack 1`, and how far the
runs' per-point final test errors and train losses are apart (float32: packed and unpacked runs
differ by rounding only). For the points that differ most it then trains the point alone twice,
on 1 and on 2 threads (another reduction order, nothing else changed): how far rounding alone moves
that point is the yardstick for the packed/unpacked difference.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

BASIN = str(Path(sys.executable).with_name("basin"))


def sweep(spec: Path, url: str, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([BASIN, "sweep", str(spec), "--storage", url, "--quiet", *extra], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def results(url: str) -> dict:
    out = {}
    for name in optuna.get_all_study_names(url):
        for t in optuna.load_study(study_name=name, storage=url).trials:
            if t.state.name == "COMPLETE":
                out[(name, t.params["lr"], t.params["wd_norm"], t.params["budget"], t.params["seed"])] = (
                    t.value, t.user_attrs["train_loss"][-1])
    return out


def rounding_spread(spec_path: Path, key: tuple) -> tuple[float, float]:
    """Final test error of the point trained alone by trainers.run.train on 1 and on 2 threads."""
    import torch

    from storage.schema import GridPoint
    from study.spec import load_spec
    from trainers.run import RunConfig, train

    spec, _ = load_spec(spec_path)
    name, lr, wd_norm, budget, seed = key
    _, optimizer, schedule = name.split("/")
    config = RunConfig(**spec.run_config(GridPoint(optimizer, schedule, lr, wd_norm, budget, seed), device="cpu"))
    errors = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        errors.append(list(train(config))[-1].test_error)
    return errors[0], errors[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="examples/figure2-mnist1d.toml")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds replacing the spec's")
    ap.add_argument("--order", choices=["packed-first", "unpacked-first"], default="packed-first")
    ap.add_argument("--variants", default="auto,1", help="pack settings to time, comma-separated (must include 1)")
    ap.add_argument("--worst", type=int, default=5, help="re-train this many most-different points alone")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    variants = args.variants.split(",")
    if "1" not in variants or len(variants) < 2:
        ap.error("--variants must list 1 and at least one other pack setting, e.g. auto,1")
    text = Path(args.spec).read_text()
    if args.seeds:
        text = re.sub(r"(?m)^seeds = .*$", f"seeds = [{args.seeds}]", text)
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(text)
        wall, got = {}, {}
        for v in variants if args.order == "packed-first" else variants[::-1]:
            url = f"sqlite:///{tmp}/pack-{v}.db"
            wall[v] = sweep(spec, url, *(() if v == "auto" else ("--pack", v)))
            got[v] = results(url)
            print(f"--pack {v:5s} {wall[v]:8.1f} s  ({len(got[v])} points)", flush=True)
        base = got["1"]
        for v in (x for x in variants if x != "1"):
            keys = sorted(set(got[v]) & set(base))
            d_err = sorted(abs(got[v][k][0] - base[k][0]) for k in keys)
            d_loss = [abs(got[v][k][1] - base[k][1]) / max(abs(base[k][1]), 1e-12) for k in keys]
            print(f"--pack {v}: ratio (--pack 1) / (--pack {v}) = {wall['1'] / wall[v]:.2f}x (target ≥ 3)")
            print(f"  per point over {len(keys)} points: final test error identical for {d_err.count(0.0)}, "
                  f"|Δ| ≤ 0.005 for {sum(e <= 0.005 for e in d_err)}, max {d_err[-1]:.4f}, "
                  f"median {statistics.median(d_err):.4f}; final train loss relative |Δ| "
                  f"median {statistics.median(d_loss):.2e} max {max(d_loss):.2e}")
        v = next(x for x in variants if x != "1")
        worst = sorted(set(got[v]) & set(base), key=lambda k: -abs(got[v][k][0] - base[k][0]))[: args.worst]
        if worst:
            print(f"most different points (--pack {v} vs --pack 1), and the same point alone on 1 vs 2 threads:")
        for k in worst:
            one, two = rounding_spread(spec, k)
            print(f"  {k[0]} α={k[1]:.4g} λ_norm={k[2]:.4g} T={k[3]} seed={k[4]}: packed {got[v][k][0]:.3f}, "
                  f"unpacked {base[k][0]:.3f} | alone on 1 thread {one:.3f}, on 2 threads {two:.3f}", flush=True)


if __name__ == "__main__":
    main()
