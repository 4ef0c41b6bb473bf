"""Packed training: K grid points of one seed trained together, each the same run as ``train()``.

A *pack* is a list of :class:`trainers.run.RunConfig` that share data set, model, batch size,
seed, device, dtype and optimizer family (with its momentum / β / ε); α, λ_norm, schedule and
budget are each member's own. Because the members share the seed they share the initial weights
(the network built under that seed), the data order and the augmentation: one batch stream feeds
them all. Each member k gets its own η_k(t) and λ_k(t) = λ_norm,k·√(b/(B·T_i)) per step, from
tables computed once with the same functions as ``train()``.

Per batch:  logits (K, N, C) = pack(x);  loss_k = mean cross-entropy of member k;
            total = Σ_k loss_k (a sum, never a mean: each member's gradient is its own);
            backward; one packed optimizer update (:mod:`trainers.pack_optim`).

A member whose loss turns non-finite or exceeds the divergence bound is checked *per member,
before its update* (every batch on the CPU; every CHECK_EVERY_GPU batches on a GPU, with the
epoch of its first bad batch kept on the device), recorded as diverged at that epoch with chance
error, and dropped from the pack: its rows leave the parameters, the optimizer state and the
BatchNorm statistics (a stopped member's statistics would keep moving in train mode). A member
whose budget ends is evaluated and dropped the same way. Nothing is computed across members
(no pack-wide norm or metric), so the others go on as if it had never been there.

``train_pack(configs)`` yields, per epoch, ``{member index: EpochResult}`` for every member that
ran that epoch; ``PackState`` receives the packed model for tests.
"""

from __future__ import annotations

import math
import socket
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from trainers import data as data_mod
from trainers import metrics, pack_models, pack_optim, schedules
from trainers.run import (
    CHECK_EVERY_GPU,
    EpochResult,
    RunConfig,
    build_model,
    chance_error,
    curve_epochs_full,
    encode_wrong,
    eval_batch_size,
    period_end_epochs,
    resolve_device,
    run_bound,
    run_data,
    untrained,
    value_epochs,
    weight_decay_at,
)

#: What the members of one pack must share (everything else is per member).
SHARED = ("dataset", "model", "batch_size", "seed", "device", "data_dir", "dtype", "validation", "momentum",
          "momentum_form", "betas", "eps", "metric", "decay", "n_test", "curve_test")


class NoPackedForm(ValueError):
    """The pack's model or metric cannot be trained packed: run its members one by one (pack = 1).

    A ValueError, so callers that catch ValueError still see it; a driver that falls back to unpacked
    runs catches this type (``study.driver``), never the message's words."""


def pack_key(config: RunConfig) -> tuple:
    """Configs with equal keys can share a pack."""
    return (*(_hashable(getattr(config, f)) for f in SHARED), pack_optim.family(config.optimizer))


def _hashable(value):
    return tuple(value) if isinstance(value, list) else value


def packable(model: str) -> bool:
    """Whether ``model`` has a hand-stacked packed form (others are tried through torch.func)."""
    return model in ("mlp", "cnn")


def metric_packs(metric: str) -> bool:
    """Whether runs of ``metric`` can be packed: the built-in metrics (cross-entropy of the pack's
    logits); a metric function runs unpacked."""
    return metrics.has_classes(metric)


@dataclass
class PackState:
    """What a finished pack leaves behind: the packed model (its members' final rows) and which
    config each row belongs to."""

    model: pack_models.PackedModel | None = None
    members: list[int] = field(default_factory=list)
    #: {member index: its final parameters and buffers as the unpacked module's state_dict}, kept
    #: when the member leaves the pack (budget reached or diverged)
    final: dict[int, dict] = field(default_factory=dict)


@dataclass
class _Tables:
    """Per-member numbers of every step: η_k(t), λ_k(t), and the member's last step."""

    eta: torch.Tensor  # (K, S) float64
    lam: torch.Tensor  # (K, S) float64
    steps: torch.Tensor  # (K,) number of steps of each member's budget

def _tables(configs: Sequence[RunConfig], n_train: int, spe: int) -> tuple[_Tables, list[set[int]]]:
    """η and λ of every member at every step t (fractional epoch t/spe), as ``train()`` computes
    them, computed once per distinct (schedule, its parameters, budget)."""
    total = max(c.epochs for c in configs) * spe
    eta = np.zeros((len(configs), total))
    lam = np.zeros((len(configs), total))
    cache: dict = {}
    ends = []
    for k, c in enumerate(configs):
        key = (c.schedule, tuple(sorted((a, _hashable(b)) for a, b in c.schedule_params.items())), c.epochs)
        if key not in cache:
            sched = schedules.make(c.schedule, c.epochs, **c.schedule_params)
            steps = range(c.epochs * spe)
            cache[key] = (sched, np.array([sched.multiplier(t / spe) for t in steps]))
        sched, etas = cache[key]
        eta[k, :len(etas)] = etas
        lam[k, :len(etas)] = [weight_decay_at(c, n_train, sched, t / spe) for t in range(len(etas))]
        ends.append(period_end_epochs(sched))
    steps = torch.tensor([c.epochs * spe for c in configs])
    return _Tables(torch.from_numpy(eta), torch.from_numpy(lam), steps), ends


def check_pack(configs: Sequence[RunConfig]) -> None:
    """Raise ValueError unless ``configs`` can share one pack."""
    if not configs:
        raise ValueError("a pack needs at least one member")
    keys = {pack_key(c) for c in configs}
    if len(keys) != 1:
        fields = [f for f in SHARED if len({_hashable(getattr(c, f)) for c in configs}) > 1]
        raise ValueError(f"a pack's members must share {', '.join(SHARED)} and the optimizer family; "
                         f"these differ: {', '.join(fields) or 'optimizer family'}")


def train_pack(configs: Sequence[RunConfig], state: PackState | None = None) -> Iterator[dict[int, EpochResult]]:
    """Train the members ``configs`` together; yield ``{member index: EpochResult}`` per epoch.

    Every member's results are those ``trainers.run.train(config)`` yields for it (up to
    floating-point reassociation; exact in float64 to ~1e-10): same initialisation, data order,
    schedule, decay and divergence rule. Raises :class:`NoPackedForm` if the model or the metric has
    no packed form, ValueError if the configs cannot share a pack.
    """
    configs = list(configs)
    check_pack(configs)
    first = configs[0]
    if not metric_packs(first.metric):
        raise NoPackedForm(f"metric {first.metric!r} has no packed form here (a metric function); "
                           "run it unpacked (pack = 1)")
    device = resolve_device(first.device)
    ds = run_data(first, device)
    module = build_model(first, ds, device)
    amp = device.type == "cuda"
    eval_batch = eval_batch_size(first)
    loss_metric = not metrics.is_error(first.metric)
    # a loss metric's chance: the untrained network's loss, the same for every member (shared weights)
    untrained_test, untrained_val = untrained(module, ds, eval_batch, amp, None, first.metric) if loss_metric \
        else (None, None)
    probe = ds.x_train[: min(8, ds.n_train)]
    model = pack_models.pack(module, len(configs), probe)
    if model is None:
        raise NoPackedForm(f"model {first.model!r} has no packed form here; run it unpacked (pack = 1)")
    if state is not None:
        state.model = model
    spe = data_mod.steps_per_epoch(ds.n_train, first.batch_size)
    tables, period_ends = _tables(configs, ds.n_train, spe)
    full = [curve_epochs_full(c, ends) for c, ends in zip(configs, period_ends)]
    valued = [value_epochs(c, ends) for c, ends in zip(configs, period_ends)]
    tables = _Tables(tables.eta.to(device), tables.lam.to(device), tables.steps)  # indexed every step: keep on device
    opt = pack_optim.PackedOptimizer(
        [c.optimizer for c in configs], torch.tensor([c.lr for c in configs], dtype=torch.float64, device=device),
        momentum=first.momentum, momentum_form=first.momentum_form, betas=tuple(first.betas), eps=first.eps,
        decay_mask=model.decay_mask(first.decay).to(device),
    )
    alive = list(range(len(configs)))  # config index of every row of the pack
    if state is not None:
        state.members = alive
    generator = torch.Generator().manual_seed(first.seed)
    chance = chance_error(ds.num_classes)
    bound = run_bound(first, ds.num_classes, untrained_test)
    nan = float("nan")
    check_every = 1 if device.type == "cpu" else CHECK_EVERY_GPU
    node, dev_name = socket.gethostname(), str(device)
    has_val = ds.x_val is not None

    def keep_rows(keep: list[int]) -> None:
        nonlocal tables
        if state is not None:
            for r in set(range(len(alive))) - set(keep):
                state.final[alive[r]] = model.member_state_dict(r)
        index = torch.tensor(keep, dtype=torch.long, device=device)
        model.select(index)
        opt.select(index)
        tables = _Tables(tables.eta[index], tables.lam[index], tables.steps[index.cpu()])  # members on their rows
        alive[:] = [alive[i] for i in keep]

    start = time.perf_counter()
    step = 0
    max_epochs = max(c.epochs for c in configs)
    for epoch in range(1, max_epochs + 1):
        if not alive:
            return
        model.train()
        k = len(alive)
        loss_sum = torch.zeros(k, device=device, dtype=ds.x_train.dtype)
        wrong = torch.zeros(k, device=device, dtype=torch.long)
        first_bad = torch.zeros(k, device=device, dtype=torch.bool)  # GPU: flagged since the last check
        seen = 0
        results: dict[int, EpochResult] = {}

        def retire(rows: list[int], at_step: int) -> None:
            """Record the members in ``rows`` as diverged at this epoch and drop them."""
            nonlocal loss_sum, wrong, first_bad
            for r in rows:
                t = min(at_step, int(tables.steps[r]) - 1)
                results[alive[r]] = EpochResult(
                    epoch=epoch, train_loss=nan, train_error=chance, test_error=chance,
                    test_loss=untrained_test if loss_metric else nan, eta=float(tables.eta[r, t]),
                    wd=float(tables.lam[r, t]), seconds=time.perf_counter() - start, diverged=True,
                    period_end=epoch in period_ends[alive[r]], node=node, device=dev_name,
                    val_error=chance if has_val else None,
                    val_loss=(untrained_val if loss_metric else nan) if has_val else None,
                )
            keep = [r for r in range(len(alive)) if r not in set(rows)]
            index = torch.tensor(keep, dtype=torch.long, device=device)
            loss_sum, wrong, first_bad = loss_sum[index], wrong[index], first_bad[index]
            keep_rows(keep)

        for x, y in data_mod.train_batches(ds, first.batch_size, generator):
            if not alive:
                break
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                logits = model(x)  # (K, N, C)
            k, n, c = logits.shape
            flat_logits = (logits.float() if amp else logits).reshape(k * n, c)
            losses = F.cross_entropy(flat_logits, y.repeat(k), reduction="none").view(k, n).mean(1)
            bad = ~torch.isfinite(losses) | (losses > bound)
            if check_every == 1:
                rows = torch.nonzero(bad).flatten().tolist()
            else:
                first_bad |= bad
                rows = torch.nonzero(first_bad).flatten().tolist() if step % check_every == 0 else []
            model.flat.grad = None
            losses.sum().backward()  # Σ_k loss_k: each member's gradient is its own loss's
            if rows:
                retire(rows, step)
                if not alive:
                    break
                losses = losses[torch.tensor([r for r in range(k) if r not in set(rows)], device=device)]
                logits = logits[torch.tensor([r for r in range(k) if r not in set(rows)], device=device)]
            opt.step(model.flat, tables.eta[:, step], tables.lam[:, step])
            model.step_batch_counters()
            step += 1
            loss_sum += losses.detach() * y.numel()
            wrong += (logits.detach().argmax(-1) != y).sum(1)
            seen += y.numel()
        if alive:
            finite = torch.isfinite(loss_sum) & torch.isfinite(model.flat.detach()).all(1) & ~first_bad
            rows = torch.nonzero(~finite).flatten().tolist()
            if rows:
                retire(rows, step - 1)
        if alive:
            # the whole test set where any member's value can come from this epoch (trainers.run.curve_epochs_full)
            n_eval = None if any(full[m](epoch) for m in alive) else first.curve_test
            # the value epoch's wrong examples, under an error metric (trainers.run.value_epochs)
            keep = not loss_metric and any(valued[m](epoch) for m in alive)
            test_loss, test_error, test_se, *test_wrong = _evaluate(model, ds.x_test[:n_eval], ds.y_test[:n_eval],
                                                                eval_batch, amp, keep_wrong=keep)
            if has_val:
                val_loss, val_error, _ = _evaluate(model, ds.x_val, ds.y_val, eval_batch, amp)
            last = step - 1
            sums, misses = loss_sum.cpu(), wrong.cpu()  # one transfer, not one per member
            etas, lams = tables.eta[:, last].cpu(), tables.lam[:, last].cpu()
            for r, member in enumerate(alive):
                results[member] = EpochResult(
                    epoch=epoch, train_loss=float(sums[r]) / seen, train_error=int(misses[r]) / seen,
                    test_error=float(test_error[r]), test_loss=float(test_loss[r]),
                    eta=float(etas[r]), wd=float(lams[r]),
                    seconds=time.perf_counter() - start, period_end=epoch in period_ends[member],
                    node=node, device=dev_name,
                    val_error=float(val_error[r]) if has_val else None, val_loss=float(val_loss[r]) if has_val else None,
                    test_se=float(test_se[r]) if loss_metric else None,
                    test_wrong=encode_wrong(test_wrong[0][r]) if keep and valued[member](epoch) else None,
                )
            done = [r for r, member in enumerate(alive) if configs[member].epochs == epoch]
            if done:
                keep_rows([r for r in range(len(alive)) if r not in set(done)])
        yield dict(sorted(results.items()))


def _evaluate(model, x_all, y_all, batch_size: int, amp: bool, *, keep_wrong: bool = False) -> tuple:
    """Per-member (loss, error, standard error of the loss) on (x_all, y_all), as ``trainers.run.evaluate``;
    with ``keep_wrong`` a fourth item, which examples each member got wrong (bool (K, n), on the CPU)."""
    model.eval()
    k = model.k
    loss_sum = torch.zeros(k, dtype=torch.float64, device=x_all.device)
    square_sum = torch.zeros(k, dtype=torch.float64, device=x_all.device)
    wrong = torch.zeros(k, dtype=torch.long, device=x_all.device)
    misses = []
    n = 0
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for x, y in data_mod.eval_batches(x_all, y_all, batch_size):
            out = model(x)  # (K, N, C)
            out = out.float() if amp else out
            kk, m, c = out.shape
            losses = metrics.cross_entropy_losses(out.reshape(kk * m, c), y.repeat(kk)).view(kk, m).double()
            loss_sum += losses.sum(1)
            square_sum += losses.square().sum(1)
            miss = out.argmax(-1) != y  # (K, m)
            wrong += miss.sum(1)
            if keep_wrong:
                misses.append(miss)
            n += y.numel()
    sums, squares = loss_sum.cpu(), square_sum.cpu()
    se = [metrics.standard_error(float(a), float(b), n) for a, b in zip(sums, squares)]
    out = (sums / n, (wrong.double() / n).cpu(), se)
    return (*out, torch.cat(misses, 1).cpu()) if keep_wrong else out


__all__ = ["NoPackedForm", "PackState", "SHARED", "check_pack", "metric_packs", "pack_key", "packable", "train_pack"]
