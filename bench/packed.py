"""Per-epoch throughput of a pack against K separate runs, side by side in one process.

For each (model, data set) and thread count: the epoch time of one ``trainers.run.train`` run
(the unpacked reference) and of ``trainers.packed.train_pack`` packs of K members (AdamW, α and
λ_norm spread over the members), measured in interleaved rounds; the figure of merit is

    speed-up(K) = K · (reference epoch) / (pack epoch)

i.e. how much faster K grid points train as one pack than one after another on the same threads.
Epoch 1 (warm-up) is never timed; the median over rounds is printed.

    python bench/packed.py [--rounds 3] [--ks 1,8,32,64,128] [--threads 1,2] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from trainers.packed import train_pack
from trainers.run import RunConfig, train

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples" / "byo" / "src"))  # the user-model case
CASES = {"cnn/mnist1d": ("cnn", "mnist1d"), "mlp/digits": ("mlp", "digits"),
         # a user's module (examples/byo), packed through torch.func (FuncPack)
         "resmlp/byo": ("byo_example.models:resmlp", "byo_example.data:tabular")}


BATCH = 128


def configs(model: str, dataset: str, k: int, device: str, epochs: int) -> list[RunConfig]:
    return [RunConfig(dataset=dataset, model=model, optimizer="adamw", lr=1e-3 * 2 ** (i / max(k, 1)),
                      wd_norm=0.05 * 2 ** (-i / max(k, 1)), epochs=epochs, batch_size=BATCH, seed=0, device=device)
            for i in range(k)]


def epoch_seconds(stamps: list[float]) -> float:
    """Median epoch time after the first (warm-up) epoch, from cumulative seconds."""
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return statistics.median(gaps)


def reference(model: str, dataset: str, device: str, epochs: int) -> float:
    return epoch_seconds([r.seconds for r in train(configs(model, dataset, 1, device, epochs)[0])])


def packed(model: str, dataset: str, k: int, device: str, epochs: int) -> float:
    stamps = [next(iter(epoch.values())).seconds for epoch in train_pack(configs(model, dataset, k, device, epochs))]
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return epoch_seconds(stamps)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--ks", default="1,8,32,64,128")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per timed run (the first is not timed)")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--batch-size", type=int, default=BATCH)
    args = ap.parse_args()
    globals()["BATCH"] = args.batch_size
    ks = [int(k) for k in args.ks.split(",")]
    print(f"device {args.device}, torch {torch.__version__}, batch {BATCH}, {args.rounds} rounds, median epoch times")
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        for case in args.cases.split(","):
            model, dataset = CASES[case]
            reference(model, dataset, args.device, 2)  # load the data set, warm the kernels
            ref, packs = [], {k: [] for k in ks}
            for _ in range(args.rounds):
                ref.append(reference(model, dataset, args.device, args.epochs))
                for k in ks:
                    packs[k].append(packed(model, dataset, k, args.device, args.epochs))
            r = statistics.median(ref)
            cells = []
            for k in ks:
                p = statistics.median(packs[k])
                cells.append(f"K={k}: {p:7.3f} s/epoch, {k * r / p:5.2f}x")
            print(f"{case:12s} {threads} thread(s): train() {r:6.3f} s/epoch | " + " | ".join(cells), flush=True)


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")
