"""Overhead of `basin sweep` over a plain Python loop, on the same 32 short `digits` trials.

(a) a plain loop calling trainers.run.train for each point, one thread (what one Ray trial gets);
(b) `basin sweep` on a local Ray with 2 concurrent trials of 1 CPU each, into a fresh SQLite file.
On a 2-core machine the ideal (b) is (a)/2; the figure of merit is (b) / ((a)/2) (target ≤ 1.2),
and the per-trial overhead is ((b) − (a)/2)·2 / 32 seconds.

    python bench/sweep_overhead.py [--epochs 3]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from study.spec import parse_spec
from trainers.run import RunConfig, train

SPEC = """
name = "overhead"
dataset = "digits"
model = "cnn"
batch_size = 128
budgets = [{epochs}]
seeds = [0, 1]
max_concurrent_trials = 2

[resources]
cpus = 1

[[schedules]]
name = "cosine"

[optimizers.sgdw]
lr = {{ start = -6, stop = -3, num = 4 }}
wd_norm = {{ start = -6, stop = -3, num = 4 }}
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    args = ap.parse_args()
    text = SPEC.format(epochs=args.epochs)
    spec = parse_spec(text)
    points = spec.points()
    assert len(points) == 32

    torch.set_num_threads(1)
    list(train(RunConfig(**spec.run_config(points[0], "cpu"))))  # warm the data set cache and imports
    t0 = time.perf_counter()
    for p in points:
        list(train(RunConfig(**spec.run_config(p, "cpu"))))
    loop = time.perf_counter() - t0

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "overhead.toml"
        path.write_text(text)
        basin = str(Path(sys.executable).with_name("basin"))
        t0 = time.perf_counter()
        subprocess.run([basin, "sweep", str(path), "--storage", f"sqlite:///{tmp}/o.db", "--quiet"], check=True,
                       stdout=subprocess.DEVNULL)
        sweep = time.perf_counter() - t0

    ideal = loop / 2
    print(f"32 digits trials of {args.epochs} epochs (cnn, batch 128)")
    print(f"(a) plain loop, 1 thread:             {loop:7.1f} s  ({loop / 32:.2f} s per trial)")
    print(f"(b) basin sweep, 2 concurrent trials: {sweep:7.1f} s  (includes Ray start-up and shut-down)")
    print(f"ratio (b) / ((a)/2):                  {sweep / ideal:7.2f}   (target ≤ 1.2)")
    print(f"overhead per trial:                   {(sweep - ideal) * 2 / 32:7.2f} s")


if __name__ == "__main__":
    main()
