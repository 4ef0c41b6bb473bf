"""A run's model, data set and metric checked on this host's CPU before anything runs.

:func:`check_run` does, in order, and stops at the first problem with a :class:`CheckError` — one
line ``"<field>: <problem>"`` naming ``model``, ``dataset`` or ``metric``:

1. the references import (:mod:`trainers.registry`);
2. the data set loads and keeps the contract (:func:`trainers.data.load`);
3. the model builds under the run's seed and is an ``nn.Module`` with parameters
   (:func:`trainers.models.build`);
4. one forward and one backward pass on one training batch of the run's batch size, on the CPU in
   float32: logits (N, num_classes) for the built-in metrics, per-example losses (N,) from a
   metric function, and a gradient for at least one parameter;
5. the optimizer builds over the parameters with the run's ``decay``.

It returns what a sweep needs to know about the run before it starts (:class:`Checked`): the data
set's sizes, the chance level (for a loss metric the untrained network's test loss, computed here
on the CPU), and whether and how the model packs (:func:`trainers.pack_models.try_pack`).
Nothing is written anywhere except the data cache a data set may keep (MNIST-1D).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from trainers import data as data_mod
from trainers import metrics, optim, pack_models, packed, registry
from trainers.run import DatasetInfo, RunConfig, build_model, chance_error, dataset_info, run_data, untrained


class CheckError(ValueError):
    """What is wrong with a run's user code, in one line naming the field."""


@dataclass(frozen=True)
class Checked:
    """What :func:`check_run` learned: the data set's sizes, the chance level of the run's metric,
    the number of trainable scalars, and the packed form (None: runs one point at a time) with why."""

    info: DatasetInfo
    chance: float | None  # None: a loss metric on a data set this host does not hold
    n_params: int | None  # None: not built here (a built-in run)
    packed_form: str | None
    why: str


def builtin(config: RunConfig) -> bool:
    """Whether the run uses only Basin's own model, data set and metric (tested in Basin's suite)."""
    from trainers import models

    return (config.model in models.MODELS and config.dataset in data_mod.DATASETS
            and metrics.has_classes(config.metric))


def check_run(config: RunConfig) -> Checked:
    """Check ``config``'s model, data set and metric (see the module docstring). A run of Basin's own
    model, data set and built-in metric only (:func:`builtin`) skips steps 3–5: nothing of it is
    the user's, and Shake-Shake's pass alone takes seconds on a CPU."""
    cpu = dataclasses.replace(config, device="cpu", dtype="float32", compile=False)
    loss_fn = _step("metric", lambda: metrics.loss_function(cpu.metric))
    if builtin(cpu) and metrics.is_error(cpu.metric):
        info = dataset_info(cpu)
        hand = packed.packable(cpu.model)
        return Checked(info, chance_error(info.num_classes), None, "hand-stacked" if hand else None,
                       "hand-stacked" if hand else "no hand-stacked form; pack = N tries torch.func in the worker")
    ds = _load(cpu)
    info = dataset_info(cpu)
    if loss_fn is None and ds.num_classes < 2:
        raise CheckError(f"dataset: {cpu.dataset!r} has no classes (num_classes = {ds.num_classes}); metric "
                         f"{cpu.metric!r} needs class labels — give a loss function, metric = 'package.module:function'")
    model = _step("model", lambda: build_model(cpu, ds, torch.device("cpu")), "building it failed")
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise CheckError(f"model: {cpu.model!r} has no trainable parameters")
    if metrics.is_error(cpu.metric):
        chance = chance_error(ds.num_classes)
    elif ds.name == _STAND_IN:
        chance = None  # the test set is not on this host: each run measures its own
    else:
        chance = _step("metric" if loss_fn else "model",
                       lambda: untrained(model, ds, max(cpu.batch_size, 512), False, loss_fn, cpu.metric)[0],
                       "evaluating the untrained network on the test set failed")
    x, y = next(data_mod.train_batches(ds, cpu.batch_size, torch.Generator().manual_seed(cpu.seed)))
    probe = x[: min(8, len(x))].clone()
    model.train()
    rng = torch.random.get_rng_state()
    out = _step("model", lambda: model(x), f"the forward pass on one batch {tuple(x.shape)} failed")
    if loss_fn is None:
        if not isinstance(out, torch.Tensor) or out.shape != (x.shape[0], ds.num_classes):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise CheckError(f"model: {cpu.model!r} returned {shape} for a batch {tuple(x.shape)}; metric "
                             f"{cpu.metric!r} needs logits ({x.shape[0]}, {ds.num_classes}) (N, num_classes)")
        loss = _step("model", lambda: F.cross_entropy(out, y), "cross-entropy of its output failed")
    else:
        loss = _step("metric", lambda: metrics.example_losses(loss_fn, model, x, y, cpu.metric).mean(),
                     "the loss function failed on one batch")
    _step("model", loss.backward, "the backward pass on one batch failed")
    if all(p.grad is None for p in params):
        raise CheckError(f"model: no parameter of {cpu.model!r} got a gradient from the "
                         f"{'loss' if loss_fn else 'cross-entropy'} on one batch; is its output detached?")
    _step("model", lambda: optim.build(cpu.optimizer, params, lr=cpu.lr, weight_decay=0.0, decay=cpu.decay),
          "the optimizer cannot take its parameters")
    torch.random.set_rng_state(rng)
    form, why = _packing(cpu, ds, probe)
    return Checked(info, None if chance is None else float(chance), sum(p.numel() for p in params), form, why)


_STAND_IN = "stand-in"


def _load(config: RunConfig) -> data_mod.Dataset:
    """The run's data set on the CPU; for one of Basin's file-based sets that is not on this host
    (a driver need not hold it), a stand-in batch of random examples of its published shape."""
    try:
        return _step("dataset", lambda: run_data(config, torch.device("cpu")), "loading it failed")
    except CheckError:
        if config.dataset not in data_mod.PUBLISHED_SIZES:
            raise
    _, _, classes, shape = data_mod.PUBLISHED_SIZES[config.dataset]
    g = torch.Generator().manual_seed(0)
    x = torch.randn((config.batch_size, *shape), generator=g)
    y = torch.randint(0, classes, (config.batch_size,), generator=g)
    return data_mod.Dataset(_STAND_IN, x, y, x, y, classes)


def _packing(config: RunConfig, ds: data_mod.Dataset, probe: torch.Tensor) -> tuple[str | None, str]:
    """(packed form or None, why) for ``config``'s model, on a freshly built copy."""
    if not packed.metric_packs(config.metric):
        return None, f"metric {config.metric!r} is a loss function: its runs are not packed"
    module = build_model(config, ds, torch.device("cpu"))
    pk, why = pack_models.try_pack(module, 2, probe)
    if pk is None:
        return None, why
    return ("hand-stacked" if not isinstance(pk, pack_models.FuncPack) else "torch.func"), why


def _step(field: str, fn, what: str | None = None):
    """``fn()``; any exception becomes a one-line CheckError naming ``field``."""
    try:
        return fn()
    except CheckError:
        raise
    except registry.RegistryError as exc:
        raise CheckError(str(exc)) from None
    except data_mod.DataError as exc:
        raise CheckError(f"{field}: {' '.join(str(exc).split())}") from None
    except Exception as exc:  # noqa: BLE001 - the user's code raised: one line, no traceback
        text = " ".join(str(exc).split()) or "no detail"
        text = text[:300] + ("…" if len(text) > 300 else "")
        raise CheckError(f"{field}: {what or 'failed'}: {type(exc).__name__}: {text}") from None


__all__ = ["CheckError", "Checked", "check_run"]
