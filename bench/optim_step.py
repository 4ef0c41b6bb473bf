"""Time one optimizer step of every Basin variant against torch.optim.AdamW(foreach=True).

Parameters: the shapes of Shake-Shake 26 2x64d (≈11.6M parameters), random gradients. All
variants run in the same process, interleaved round by round, so machine noise hits them alike;
the figure of merit is the ratio of medians to torch's AdamW (target ≤ 1.10 on CPU).

    python bench/optim_step.py [--steps 30] [--threads N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from trainers import models, optim


def make_params(device):
    model = models.build("shake26-2x64d", (3, 32, 32), 10)
    params = [torch.nn.Parameter(p.detach().clone().to(device)) for p in model.parameters()]
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    return params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    contenders = {"torch.optim.AdamW(foreach)": None, **{name: name for name in optim.OPTIMIZERS}}
    opts = {}
    for label, name in contenders.items():
        params = make_params(device)
        if name is None:
            opts[label] = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, foreach=True)
        else:
            opts[label] = optim.build(name, params, lr=1e-3, weight_decay=5e-4)
    n = sum(p.numel() for p in next(iter(opts.values())).param_groups[0]["params"])
    times = {label: [] for label in opts}
    for step in range(args.steps + 3):  # 3 warm-up rounds
        for label, opt in opts.items():
            sync()
            t0 = time.perf_counter()
            opt.step()
            sync()
            if step >= 3:
                times[label].append(time.perf_counter() - t0)
    base = statistics.median(times["torch.optim.AdamW(foreach)"])
    print(f"{n / 1e6:.2f}M parameters (Shake-Shake 26 2x64d shapes), device {device}, "
          f"threads {torch.get_num_threads()}, median of {args.steps} steps")
    print(f"{'optimizer':<28} {'median ms':>10} {'ratio':>7}")
    for label, ts in times.items():
        med = statistics.median(ts)
        print(f"{label:<28} {med * 1e3:>10.2f} {med / base:>7.2f}")


if __name__ == "__main__":
    main()
