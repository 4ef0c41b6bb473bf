"""End to end: `basin sweep` of a spec packed (its own `pack`, default auto) against `--pack 1`, side by
side in one run, each into a fresh SQLite database, and the per-point results compared.

    python bench/sweep_packed.py [--spec examples/figure2-mnist1d.toml] [--seeds 0] [--order packed-first]

`--seeds` overrides the spec's seeds (the issue's comparison is the single-seed Figure 2 grid). Prints
both wall times, their ratio, and how far the two runs' per-point final test errors and train losses
are apart (float32: packed and unpacked runs differ by rounding only).
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default="examples/figure2-mnist1d.toml")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds replacing the spec's")
    ap.add_argument("--order", choices=["packed-first", "unpacked-first"], default="packed-first")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    text = Path(args.spec).read_text()
    if args.seeds:
        text = re.sub(r"(?m)^seeds = .*$", f"seeds = [{args.seeds}]", text)
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "spec.toml"
        spec.write_text(text)
        runs = {"packed": (), "unpacked": ("--pack", "1")}
        order = list(runs) if args.order == "packed-first" else list(runs)[::-1]
        wall, got = {}, {}
        for name in order:
            url = f"sqlite:///{tmp}/{name}.db"
            wall[name] = sweep(spec, url, *runs[name])
            got[name] = results(url)
            print(f"{name:9s} {wall[name]:8.1f} s  ({len(got[name])} points)", flush=True)
    print(f"ratio unpacked / packed: {wall['unpacked'] / wall['packed']:.2f}x (target ≥ 3)")
    keys = sorted(set(got["packed"]) & set(got["unpacked"]))
    d_err = [abs(got["packed"][k][0] - got["unpacked"][k][0]) for k in keys]
    d_loss = [abs(got["packed"][k][1] - got["unpacked"][k][1]) / max(abs(got["unpacked"][k][1]), 1e-12) for k in keys]
    same = sum(d == 0 for d in d_err)
    print(f"per point over {len(keys)} points: final test error identical for {same}, |Δ| max {max(d_err):.4f} "
          f"median {statistics.median(d_err):.4f}; final train loss relative |Δ| max {max(d_loss):.2e}")


if __name__ == "__main__":
    main()
