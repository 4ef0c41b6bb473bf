"""Training throughput: Basin's tensor batching against a plain DataLoader, and Shake-Shake on this machine.

1. One ``digits`` epoch of the ``cnn`` (forward + backward + AdamW step, batch 128) fed (a) by
   ``trainers.data.train_batches`` (one permutation, batches gathered from the resident tensors) and
   (b) by ``DataLoader(TensorDataset(x, y), shuffle=True, batch_size=128)`` over the same tensors.
   Same process, epochs interleaved (a, b, a, b, …) with two identically initialised models so
   machine noise hits both alike; images/second of the median epoch and the ratio (a)/(b).
2. The same two feeders with no model at all (data path only), to show where the difference lies.
3. Shake-Shake 26 2x64d forward + backward (train mode) on random CIFAR-shaped batches.

Threads: ``torch.set_num_threads(--threads)``, default 1, so results are reproducible on a shared box.

    python bench/train_throughput.py [--threads 1] [--epochs 9] [--batch-size 128]
                                     [--shake-batch 32] [--shake-steps 4] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trainers import data, models, optim


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_epoch(model, opt, batches) -> int:
    n = 0
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        n += y.numel()
    return n


def _drain(batches) -> int:
    n = 0
    for _, y in batches:
        n += y.numel()
    return n


def feeders(ds: data.Dataset, batch_size: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    loader = DataLoader(
        TensorDataset(ds.x_train, ds.y_train), batch_size=batch_size, shuffle=True,
        generator=torch.Generator().manual_seed(seed),
    )
    return {"train_batches": lambda: data.train_batches(ds, batch_size, gen), "DataLoader": lambda: iter(loader)}


def bench_digits(args, device: torch.device) -> None:
    ds = data.to_device(data.load("digits"), device)
    feed = feeders(ds, args.batch_size, seed=0)
    runs = {}
    for label in feed:
        torch.manual_seed(0)
        model = models.build("cnn", ds.input_shape, ds.num_classes).to(device).train()
        runs[label] = (model, optim.build("adamw", model.parameters(), lr=1e-3, weight_decay=5e-4))
    times = {label: [] for label in feed}
    data_times = {label: [] for label in feed}
    for epoch in range(args.epochs + 1):  # epoch 0 warms up
        for label, make in feed.items():
            model, opt = runs[label]
            _sync(device)
            t0 = time.perf_counter()
            n = _train_epoch(model, opt, make())
            _sync(device)
            if epoch:
                times[label].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            _drain(make())
            _sync(device)
            if epoch:
                data_times[label].append(time.perf_counter() - t0)
    print(f"digits cnn epoch ({n} train images, batch {args.batch_size}, fwd+bwd+AdamW), device {device}, "
          f"threads {torch.get_num_threads()}, median of {args.epochs} interleaved epochs")
    rate = {label: n / statistics.median(t) for label, t in times.items()}
    for label, t in times.items():
        print(f"  {label:<14} {statistics.median(t) * 1e3:8.1f} ms/epoch  {rate[label]:10.0f} images/s")
    print(f"  ratio train_batches / DataLoader: {rate['train_batches'] / rate['DataLoader']:.2f}x")
    drate = {label: n / statistics.median(t) for label, t in data_times.items()}
    print("data path only (same epochs, no model):")
    for label, t in data_times.items():
        print(f"  {label:<14} {statistics.median(t) * 1e3:8.2f} ms/epoch  {drate[label]:10.0f} images/s")
    print(f"  ratio train_batches / DataLoader: {drate['train_batches'] / drate['DataLoader']:.1f}x")


def bench_shake(args, device: torch.device) -> None:
    torch.manual_seed(0)
    model = models.build("shake26-2x64d", (3, 32, 32), 10).to(device).train()
    x = torch.randn(args.shake_batch, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.shake_batch,), device=device)
    times = []
    for step in range(args.shake_steps + 1):  # step 0 warms up
        _sync(device)
        t0 = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        _sync(device)
        if step:
            times.append(time.perf_counter() - t0)
    t = statistics.median(times)
    print(f"shake26-2x64d fwd+bwd, batch {args.shake_batch}, random 3x32x32, device {device}, "
          f"threads {torch.get_num_threads()}, median of {args.shake_steps} steps:")
    print(f"  {t * 1e3:8.1f} ms/step  {args.shake_batch / t:10.1f} images/s  "
          f"(≈ {50000 / (args.shake_batch / t) / 60:.1f} min per CIFAR-10 epoch, without optimizer step)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--shake-batch", type=int, default=32)
    ap.add_argument("--shake-steps", type=int, default=4)
    ap.add_argument("--no-shake", action="store_true", help="skip the Shake-Shake measurement")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    bench_digits(args, device)
    if not args.no_shake:
        bench_shake(args, device)


if __name__ == "__main__":
    main()
