"""Packs: the grid points a sweep still needs, grouped into blocks that train together.

A pack is what one Ray Tune trial trains: the members of one ``trainers.packed`` pack (grid
points that share data set, model, batch size, seed and optimizer family — see
``trainers.packed.pack_key``), or a single point. Every member stays its own grid point and its
own Optuna trial; only the training is shared.

Size (``pack`` in the spec, ``--pack`` on the command line):

``N``       at most N members per pack (``1``: one point per trial, the unpacked runs).
``"auto"``  models with a hand-stacked packed form (``mlp``, ``cnn``) and the user's models that
            pack through torch.func (``FuncPack``: the driver's check ran a pack of the module on a
            probe batch and it reproduced the module) are packed up to a cap: on a CPU
            :data:`CPU_CAP` (speed peaks there: activations outgrow the cache, see
            docs/benchmarks.md), on a GPU :data:`GPU_CAP`; either bounded by the memory a member
            needs (:func:`member_bytes`) against :data:`MEMORY_PER_CPU_TRIAL` or
            :data:`MEMORY_PER_GPU` × the trial's GPUs. Below the cap, packs are sized so that every
            concurrent trial slot gets about :data:`PACKS_PER_SLOT` packs (they finish unevenly).
            Under ``"auto"`` a torch.func pack has at least :data:`FUNC_PACK_MIN` members, or the
            points run one per trial: measured by
            bench/packed.py on a 2-core CPU (1 thread, docs/benchmarks.md), the example's residual
            MLP (examples/byo) trains 1.2–1.5× faster as packs of 8, 1.25–1.7× as packs of 16,
            than one point after another, but 0.8–1.0× as packs of 4 (vmap's overhead per op; a
            pack of one would be 0.5×). Basin's Shake-Shake keeps one point per trial under
            ``"auto"`` (not measured packed on a GPU); ``pack = N`` packs it through torch.func
            (checked in the worker).
            A user's model that does not pack (torch.func cannot run it, or the pack differs from the
            module) and runs of a metric function run one point per trial, whatever ``pack`` says.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from study.spec import Point, SweepSpec
from trainers.check import Checked

CPU_CAP = 8
GPU_CAP = 512
FUNC_PACK_MIN = 8  # "auto" packs a torch.func model only this many together or more (slower below)
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


def member_bytes(spec: SweepSpec, checked: Checked) -> int:
    """Memory one member of a pack needs: 4 copies of its parameters (θ, gradient, two moments)
    and 3 of its activations at the spec's batch size (forward, saved, gradient), in float32.
    Activations are counted on a zero batch of the data set's shape (none when the model refuses one)."""
    import torch

    from trainers import models

    info = checked.info
    model = models.build(spec.model, info.input_shape, info.num_classes)
    n_params = sum(p.numel() for p in model.parameters())
    activations = 0

    def count(_module, _inputs, output):
        nonlocal activations
        if isinstance(output, torch.Tensor):
            activations += output[0].numel()  # per example

    hooks = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model(torch.zeros(2, *info.input_shape))
    except Exception:  # noqa: BLE001 - e.g. a model of token ids: count its parameters only
        activations = 0
    for h in hooks:
        h.remove()
    return 4 * (4 * n_params + 3 * spec.batch_size * activations)


def packs_at_all(checked: Checked) -> bool:
    """False when the driver's check found no packed form: a user's model torch.func cannot pack,
    or a metric function (whatever ``pack`` says, those run one point per trial)."""
    return checked.packed_form is not None or checked.n_params is None  # n_params None: a built-in, unchecked


def pack_cap(spec: SweepSpec, pack: int | str, checked: Checked) -> int:
    """The largest pack for this spec: ``pack`` itself when a number, else the "auto" cap."""
    if not packs_at_all(checked):
        return 1
    if pack != "auto":
        return int(pack)
    if checked.packed_form is None:  # a built-in model without a hand-stacked form (Shake-Shake)
        return 1
    gpu = spec.resources.gpus > 0
    budget = MEMORY_PER_GPU * spec.resources.gpus if gpu else MEMORY_PER_CPU_TRIAL
    return max(1, min(GPU_CAP if gpu else CPU_CAP, budget // member_bytes(spec, checked)))


def plan(spec: SweepSpec, points: list[Point], *, pack: int | str, slots: int, device: str,
         checked: Checked) -> list[Pack]:
    """Group ``points`` into packs (see the module docstring); ``slots`` trials can run at once;
    ``checked`` is the driver's check of the sweep (its packed form)."""
    from trainers.packed import pack_key
    from trainers.run import RunConfig

    runs = {p: spec.run_config(p, device) for p in points}
    cap = pack_cap(spec, pack, checked)
    if cap <= 1:
        return [Pack((p,), (runs[p],)) for p in points]
    groups: dict[tuple, list[Point]] = defaultdict(list)
    for p in points:
        groups[pack_key(RunConfig(**runs[p]))].append(p)
    size = cap
    if pack == "auto":
        size = min(cap, max(1, math.ceil(len(points) / (max(1, slots) * PACKS_PER_SLOT))))
        if checked.packed_form == "torch.func" and size < FUNC_PACK_MIN:
            size = 1
    out = []
    for key in sorted(groups, key=str):
        members = sorted(groups[key], key=lambda p: (-p.budget, p.optimizer, p.schedule, p.lr, p.wd_norm))
        n = math.ceil(len(members) / size)
        bounds = [round(i * len(members) / n) for i in range(n + 1)]  # n packs, sizes within one of each other
        for lo, hi in zip(bounds, bounds[1:]):
            chunk = tuple(members[lo:hi])
            out.append(Pack(chunk, tuple(runs[p] for p in chunk)))
    return out


def describe(packs: list[Pack], spec: SweepSpec, pack: int | str, checked: Checked) -> str:
    """One line for ``--dry-run``: how the work is packed, and why."""
    if not packs:
        return "  packs: none (nothing to run)"
    sizes = sorted({p.size for p in packs})
    shown = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
    if not packs_at_all(checked):
        why = f"one point per trial: {checked.why}"
    elif pack == "auto" and checked.packed_form is None:
        why = f"{spec.model} has no hand-stacked packed form: one point per trial (pack = N tries torch.func)"
    elif pack == "auto":
        where = "GPU" if spec.resources.gpus > 0 else "CPU"
        how = "" if checked.packed_form == "hand-stacked" else f", {checked.why}"
        why = f"auto: cap {pack_cap(spec, pack, checked)} on {where}{how}"
        if checked.packed_form == "torch.func" and sizes == [1]:
            why += f"; packs of fewer than {FUNC_PACK_MIN} are slower than one point per trial, so none"
    else:
        why = f"pack = {pack}"
        if int(pack) > 1 and checked.packed_form is None:
            why += f"; {spec.model} packs through torch.func if it reproduces the model, else runs one by one"
        elif int(pack) > 1 and checked.packed_form == "torch.func":
            why += f"; {checked.why}"
    return f"  packs: {len(packs)} trials of {shown} points ({why})"


__all__ = ["CPU_CAP", "FUNC_PACK_MIN", "GPU_CAP", "Pack", "describe", "member_bytes", "pack_cap", "plan"]
