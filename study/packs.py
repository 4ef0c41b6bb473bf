"""Packs: the grid points a sweep still needs, grouped into blocks that train together.

A pack is what one Ray Tune trial trains: the members of one ``trainers.packed`` pack (grid
points that share data set, model, batch size, seed and optimizer family — see
``trainers.packed.pack_key``), or a single point. Every member stays its own grid point and its
own Optuna trial; only the training is shared.

Size (``pack`` in the spec, ``--pack`` on the command line):

``N``       at most N members per pack (``1``: one point per trial, the unpacked runs).
``"auto"``  models with a hand-stacked packed form (``mlp``, ``cnn``) are packed up to a cap: on a
            CPU :data:`CPU_CAP` (speed peaks there: activations outgrow the cache, see
            docs/benchmarks.md), on a GPU :data:`GPU_CAP`; either bounded by the memory a member
            needs (:func:`member_bytes`) against :data:`MEMORY_PER_CPU_TRIAL` or
            :data:`MEMORY_PER_GPU` × the trial's GPUs. Below the cap, packs are sized so that every
            concurrent trial slot gets about :data:`PACKS_PER_SLOT` packs (they finish unevenly).
            Other models run one point per trial; ``pack = N`` packs them through torch.func where
            that reproduces the model (checked in the worker), else they run one after another.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from study.spec import Point, SweepSpec

CPU_CAP = 8
GPU_CAP = 512
PACKS_PER_SLOT = 2
MEMORY_PER_CPU_TRIAL = 2 << 30  # bytes a CPU trial may give its pack
MEMORY_PER_GPU = 16 << 30  # bytes of one GPU a pack may use (a budget that fits any data-centre GPU)


@dataclass(frozen=True)
class Pack:
    """One Tune trial's work: its grid points and their RunConfig keyword arguments."""

    points: tuple[Point, ...]
    runs: tuple[dict, ...]

    @property
    def size(self) -> int:
        return len(self.points)


def hand_stacked(model: str) -> bool:
    from trainers.packed import packable

    return packable(model)


def member_bytes(spec: SweepSpec) -> int:
    """Memory one member of a pack needs: 4 copies of its parameters (θ, gradient, two moments)
    and 3 of its activations at the spec's batch size (forward, saved, gradient), in float32."""
    import torch

    from trainers import models
    from trainers.run import RunConfig, dataset_info

    info = dataset_info(RunConfig(dataset=spec.dataset, model=spec.model, data_dir=spec.data_dir,
                                  validation=spec.validation))
    model = models.build(spec.model, info.input_shape, info.num_classes)
    n_params = sum(p.numel() for p in model.parameters())
    activations = 0

    def count(_module, _inputs, output):
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output[0].numel()  # per example

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.zeros(2, *info.input_shape))
    for h in hooks:
        h.remove()
    return 4 * (4 * n_params + 3 * spec.batch_size * activations)


def pack_cap(spec: SweepSpec, pack: int | str) -> int:
    """The largest pack for this spec: ``pack`` itself when a number, else the "auto" cap."""
    if pack != "auto":
        return int(pack)
    if not hand_stacked(spec.model):
        return 1
    gpu = spec.resources.gpus > 0
    budget = MEMORY_PER_GPU * spec.resources.gpus if gpu else MEMORY_PER_CPU_TRIAL
    return max(1, min(GPU_CAP if gpu else CPU_CAP, budget // member_bytes(spec)))


def plan(spec: SweepSpec, points: list[Point], *, pack: int | str, slots: int, device: str) -> list[Pack]:
    """Group ``points`` into packs (see the module docstring); ``slots`` trials can run at once."""
    from trainers.packed import pack_key
    from trainers.run import RunConfig

    runs = {p: spec.run_config(p, device) for p in points}
    cap = pack_cap(spec, pack)
    if cap <= 1:
        return [Pack((p,), (runs[p],)) for p in points]
    groups: dict[tuple, list[Point]] = defaultdict(list)
    for p in points:
        groups[pack_key(RunConfig(**runs[p]))].append(p)
    size = cap
    if pack == "auto":
        size = min(cap, max(1, math.ceil(len(points) / (max(1, slots) * PACKS_PER_SLOT))))
    out = []
    for key in sorted(groups, key=str):
        members = sorted(groups[key], key=lambda p: (-p.budget, p.optimizer, p.schedule, p.lr, p.wd_norm))
        n = math.ceil(len(members) / size)
        bounds = [round(i * len(members) / n) for i in range(n + 1)]  # n packs, sizes within one of each other
        for lo, hi in zip(bounds, bounds[1:]):
            chunk = tuple(members[lo:hi])
            out.append(Pack(chunk, tuple(runs[p] for p in chunk)))
    return out


def describe(packs: list[Pack], spec: SweepSpec, pack: int | str) -> str:
    """One line for ``--dry-run``: how the work is packed, and why."""
    if not packs:
        return "  packs: none (nothing to run)"
    sizes = sorted({p.size for p in packs})
    shown = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    if pack == "auto" and not hand_stacked(spec.model):
        why = f"{spec.model} has no hand-stacked packed form: one point per trial (pack = N tries torch.func)"
    elif pack == "auto":
        where = "GPU" if spec.resources.gpus > 0 else "CPU"
        why = f"auto: cap {pack_cap(spec, pack)} on {where}"
    else:
        why = f"pack = {pack}"
        if int(pack) > 1 and not hand_stacked(spec.model):
            why += f"; {spec.model} packs through torch.func if it reproduces the model, else runs one by one"
    return f"  packs: {len(packs)} trials of {shown} points ({why})"


__all__ = ["CPU_CAP", "GPU_CAP", "Pack", "describe", "member_bytes", "pack_cap", "plan"]
