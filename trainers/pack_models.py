"""Packed models: K copies of one network trained at once, as one model with a leading member axis.

A pack holds K *members* — grid points of one seed, so every member starts from the same initial
weights: those of the unpacked network built under that seed. All K members' parameters live in
one flat leaf tensor ``flat`` of shape (K, P) (member k's parameters, in the unpacked module's
``named_parameters()`` order, are row k), so the optimizer updates a whole pack with a handful of
tensor ops (:mod:`trainers.pack_optim`). BatchNorm running statistics are (K, C) buffers, kept
per member, with a per-member ``num_batches_tracked``.

Forms (``PackedModel.forward(x) -> (K, N, classes)``, x the shared batch):

``PackedMLP``  flatten → one GEMM with the K hidden layers stacked (K·H outputs on the shared
               input) → ReLU → a batched head (``baddbmm``).
``PackedCNN``  the first conv has K·C₁ output channels on the shared batch; later convs are
               ``groups=K`` convs; BatchNorm runs over K·C channels with per-member statistics;
               channels-last, as :class:`trainers.models.CNN`; mean pool; batched head.
``FuncPack``   any other module: ``torch.func.stack_module_state``-style stacked parameters and
               buffers, ``functional_call`` under ``vmap`` (``randomness="same"``: members share
               the seed, so they share its random numbers, as their unpacked runs do).

Member k of a pack computes exactly what the unpacked module with member k's parameters computes
(up to floating-point reassociation); the float64 tests check it against ``trainers.run.train``.
Every member's computations are independent of the others': a member whose loss turns NaN
poisons nothing but its own rows. :func:`pack` picks the form and checks a FuncPack against the
module on one batch before use — a module it cannot pack runs unpacked (K = 1), never wrong.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from trainers import models


class PackedModel(nn.Module):
    """K members of ``module``: the flat (K, P) parameters and per-member BatchNorm buffers."""

    def __init__(self, module: nn.Module, k: int) -> None:
        super().__init__()
        if k < 1:
            raise ValueError(f"a pack needs k >= 1 members, got {k}")
        self.k = k
        self.param_names = [name for name, _ in module.named_parameters()]
        self.param_shapes = [tuple(p.shape) for _, p in module.named_parameters()]
        sizes = [math.prod(s) for s in self.param_shapes]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        row = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
        self.flat = nn.Parameter(row.unsqueeze(0).repeat(k, 1))
        self.buffer_names = [name for name, _ in module.named_buffers()]
        for name, buf in module.named_buffers():
            self.register_buffer(_safe(name), buf.detach().unsqueeze(0).repeat(k, *([1] * buf.dim())).clone())

    # -- the members' parameters and buffers ---------------------------------------------------
    def params(self) -> dict[str, torch.Tensor]:
        """{name: (K, *shape)} views of ``flat`` (gradients flow into ``flat``)."""
        return {
            name: self.flat[:, self.offsets[i]:self.offsets[i + 1]].reshape(self.k, *shape)
            for i, (name, shape) in enumerate(zip(self.param_names, self.param_shapes))
        }

    def decay_mask(self, decay: str) -> torch.Tensor:
        """(P,) bool over the flat row: True for the entries of parameters that decay under ``decay``
        (:func:`trainers.optim.decays`, from each parameter's shape)."""
        from trainers.optim import decays

        return torch.cat([torch.full((math.prod(shape),), decays(len(shape), decay), dtype=torch.bool)
                          for shape in self.param_shapes])

    def buffers_of(self) -> dict[str, torch.Tensor]:
        """{name: (K, *shape)} per-member buffers (BatchNorm running statistics)."""
        return {name: getattr(self, _safe(name)) for name in self.buffer_names}

    def select(self, keep: torch.Tensor) -> None:
        """Keep only the members ``keep`` (indices): a new leaf ``flat`` carrying its gradient."""
        grad = None if self.flat.grad is None else self.flat.grad[keep]
        self.flat = nn.Parameter(self.flat.detach()[keep])
        self.flat.grad = grad
        for name in self.buffer_names:
            setattr(self, _safe(name), getattr(self, _safe(name))[keep])
        self.k = int(keep.numel())

    def member_state_dict(self, k: int) -> OrderedDict:
        """Member k as the unpacked module's ``state_dict()`` (loadable into it)."""
        params = self.params()
        out = OrderedDict((name, params[name][k].detach().clone()) for name in self.param_names)
        for name, buf in self.buffers_of().items():
            out[name] = buf[k].clone()
        return out

    def step_batch_counters(self) -> None:
        """BatchNorm's ``num_batches_tracked += 1`` in training mode (what nn.BatchNorm does)."""
        for name in self.buffer_names:
            if name.endswith("num_batches_tracked"):
                getattr(self, _safe(name)).add_(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


def _safe(name: str) -> str:
    return "buf_" + name.replace(".", "_")


# --------------------------------------------------------------------------------- hand-stacked


class PackedMLP(PackedModel):
    """:class:`trainers.models.MLP` × K: Linear(d, H) stacked to K·H outputs, ReLU, batched head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params()
        w1, b1, w2, b2 = (p[n] for n in self.param_names)  # 1.weight, 1.bias, 3.weight, 3.bias
        k, hidden = w1.shape[0], w1.shape[1]
        h = torch.addmm(b1.reshape(-1), x.flatten(1), w1.reshape(k * hidden, -1).t())  # (N, K·H)
        h = F.relu(h).view(x.shape[0], k, hidden).transpose(0, 1)  # (K, N, H)
        return torch.baddbmm(b2.unsqueeze(1), h, w2.transpose(1, 2))  # (K, N, classes)


class PackedCNN(PackedModel):
    """:class:`trainers.models.CNN` × K: grouped convs, BatchNorm over K·C channels, batched head."""

    def __init__(self, module: models.CNN, k: int) -> None:
        super().__init__(module, k)
        self.signal = module.signal
        convs = [m for m in module.features if isinstance(m, nn.Conv2d)]
        bns = [m for m in module.features if isinstance(m, nn.BatchNorm2d)]
        self.geometry = [dict(stride=c.stride, padding=c.padding) for c in convs]
        self.bn_settings = [(bn.momentum, bn.eps) for bn in bns]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.params()
        buf = self.buffers_of()
        k = self.k
        if self.signal:
            x = x.unsqueeze(2)  # (N, C, L) → (N, C, 1, L)
        h = x.contiguous(memory_format=torch.channels_last)
        for i, (geometry, (momentum, eps)) in enumerate(zip(self.geometry, self.bn_settings)):
            conv, bn = f"features.{3 * i}", f"features.{3 * i + 1}"
            w = p[f"{conv}.weight"]  # (K, C_out, C_in, kh, kw)
            h = F.conv2d(h, w.reshape(k * w.shape[1], *w.shape[2:]), groups=1 if i == 0 else k, **geometry)
            if i == 0:  # one-channel input: the output's layout is ambiguous; make it channels-last
                h = h.contiguous(memory_format=torch.channels_last)
            h = F.batch_norm(
                h, buf[f"{bn}.running_mean"].view(-1), buf[f"{bn}.running_var"].view(-1),
                p[f"{bn}.weight"].reshape(-1), p[f"{bn}.bias"].reshape(-1), self.training, momentum, eps,
            )
            h = F.relu_(h)
        h = h.mean(dim=(2, 3)).view(x.shape[0], k, -1).transpose(0, 1)  # (K, N, C₃)
        return torch.baddbmm(p["head.bias"].unsqueeze(1), h, p["head.weight"].transpose(1, 2))


# ------------------------------------------------------------------------------------ torch.func


class FuncPack(PackedModel):
    """Any module × K: ``functional_call`` of the module under ``vmap`` over the member axis.

    Buffers (BatchNorm statistics) are passed batched, so every member updates its own in train
    mode; random ops draw once for the pack (``randomness="same"``), as each member's unpacked
    run would under the shared seed.
    """

    def __init__(self, module: nn.Module, k: int) -> None:
        super().__init__(module, k)
        self.base = [module]  # kept out of the module tree: its own parameters are not the pack's

    def train(self, mode: bool = True):
        super().train(mode)
        self.base[0].train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = self.base[0]

        def one(params, buffers, inputs):
            return torch.func.functional_call(base, {**params, **buffers}, (inputs,))

        return torch.vmap(one, in_dims=(0, 0, None), randomness="same")(self.params(), self.buffers_of(), x)

    def step_batch_counters(self) -> None:
        pass  # the module's own BatchNorm increments the batched counters in place


# ----------------------------------------------------------------------------------- choosing


HAND_STACKED = {models.MLP: PackedMLP, models.CNN: PackedCNN}


def pack(module: nn.Module, k: int, probe: torch.Tensor | None = None) -> PackedModel | None:
    """The packed form of ``module`` with ``k`` members, or None when it has none.

    MLP and CNN have hand-stacked forms; any other module is tried through :class:`FuncPack`,
    checked on ``probe`` (a small input batch): its members must reproduce the module's own output
    in eval and train mode (same random numbers), else None — the caller then runs unpacked.
    """
    return try_pack(module, k, probe)[0]


def try_pack(module: nn.Module, k: int, probe: torch.Tensor | None = None) -> tuple[PackedModel | None, str]:
    """:func:`pack`, and a few words saying which form it chose or why there is none."""
    form = HAND_STACKED.get(type(module))
    if form is not None:
        return form(module, k), f"hand-stacked ({form.__name__})"
    if probe is None:
        return None, "no probe batch to check a torch.func pack on"
    try:
        candidate = FuncPack(module, k)
        if _agrees(module, candidate, probe):
            return candidate, "torch.func (FuncPack, checked against the module on a probe batch)"
        return None, "torch.func runs it, but its packed members do not reproduce the module on a probe batch"
    except Exception as exc:  # noqa: BLE001 - a module vmap cannot run is simply not packable
        text = " ".join(str(exc).split())[:160]
        return None, f"torch.func cannot run it ({type(exc).__name__}: {text})"


def _agrees(module: nn.Module, packed: FuncPack, probe: torch.Tensor) -> bool:
    """The pack's members reproduce the module on ``probe`` (train and eval mode, same RNG),
    without touching the module's own buffers."""
    import copy

    was_training = module.training
    ref_module = copy.deepcopy(module)
    rng = torch.random.get_rng_state()
    try:
        return _agrees_from(module, ref_module, packed, probe)
    finally:  # the run's random numbers start where they would have unpacked, whatever happened
        module.train(was_training)
        packed.train(was_training)
        torch.random.set_rng_state(rng)


def _agrees_from(module: nn.Module, ref_module: nn.Module, packed: FuncPack, probe: torch.Tensor) -> bool:
    ok = True
    for mode in (False, True):
        ref_module.train(mode)
        packed.train(mode)
        state = torch.random.get_rng_state()
        with torch.no_grad():
            ref = ref_module(probe)
            torch.random.set_rng_state(state)
            out = packed(probe)
        ok &= out.shape == (packed.k, *ref.shape) and bool(torch.allclose(out, ref.expand_as(out), rtol=1e-4, atol=1e-5))
    for name, buf in packed.buffers_of().items():  # undo what the train-mode probe did to the statistics
        buf.copy_(dict(module.named_buffers())[name].unsqueeze(0).expand_as(buf))
    return ok


__all__ = ["FuncPack", "PackedCNN", "PackedMLP", "PackedModel", "pack", "try_pack"]
