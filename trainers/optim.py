"""The paper's four optimizers (plus torch's lr-coupled AdamW), exactly.

Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019. Symbols: α the initial
learning rate, λ the raw per-step weight decay (or L2 factor), η_t the schedule multiplier,
β₁/β₂ the moment factors, ε the Adam epsilon.

Contract shared by every optimizer that :func:`build` returns:

* ``lr`` is α and each param group's ``"weight_decay"`` holds the raw λ (so a trainer can change
  λ at a warm restart with ``group["weight_decay"] = λ``).
* η_t reaches the optimizer the torch way: a torch LR scheduler sets ``group["lr"] = α·η_t`` and
  keeps α in ``group["initial_lr"]``, so η_t = ``group["lr"] / group["initial_lr"]`` (1 without a
  scheduler). See :func:`schedule_multiplier`.
* Decoupled decay (SGDW, AdamW) is multiplied by η_t and **not** by α — the whole point of the
  paper. torch.optim.AdamW / optax multiply it by the learning rate α·η_t instead; that is
  ``"adamw-torch"`` here, and equals the paper's AdamW only after reparametrising λ_torch = λ/α.

Variants (``name`` in :func:`build`; which is coupled, decoupled or lr-coupled, their labels and pairs:
the table in :mod:`trainers.optimizers`, which :func:`build` reads):

``"sgd"``   Algorithm 1 with L2:  g_t = ∇f + λθ_{t−1};  m_t = β₁m_{t−1} + η_tα·g_t;  θ_t = θ_{t−1} − m_t
``"sgdw"``  Algorithm 1, decoupled:  g_t = ∇f;  m_t = β₁m_{t−1} + η_tα·g_t;  θ_t = θ_{t−1} − m_t − η_tλθ_{t−1}
``"adam"``  Algorithm 2 with L2 (line 6): g_t = ∇f + λθ_{t−1}, then Adam with step η_tα
``"adamw"`` Algorithm 2, decoupled (line 12): θ_t = θ_{t−1} − η_t(α·m̂_t/(√v̂_t + ε) + λθ_{t−1})
``"adamw-torch"`` torch.optim.AdamW: θ_t = θ_{t−1} − η_tα(m̂_t/(√v̂_t + ε) + λθ_{t−1})

Momentum form for the SGD variants (``momentum_form``):

``"paper"`` (default) Algorithm 1 as printed: η_tα sits *inside* the buffer, m_t = β₁m_{t−1} + η_tα·g_t,
            θ_t = θ_{t−1} − m_t (− η_tλθ_{t−1}).
``"torch"`` the authors' released Lua code and torch.optim.SGD: b_t = β₁b_{t−1} + g_t,
            θ_t = θ_{t−1} − η_tα·b_t (− η_tλθ_{t−1}).
The two are identical while η_t is constant; they differ whenever η_t changes, because the paper's
buffer remembers the step sizes of past batches while torch's rescales the whole buffer by today's.

Which parameters decay (``decay``, :func:`decays`): ``"all"`` (default) — every parameter, as in the
paper and the authors' code; ``"matrices"`` — only parameters with ≥ 2 dimensions (weights of linear
and conv layers, embeddings), not biases nor the 1-D weights of norm layers (timm's rule and many
recipes'). The undecayed parameters get a param group of their own flagged ``"decay": False``, whose
λ stays 0 whatever :func:`set_weight_decay` sets (for SGD/Adam with L2 they get no L2 term either).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from trainers import optimizers

#: The names :func:`build` knows; each one's family and decay form are in :mod:`trainers.optimizers`.
OPTIMIZERS = optimizers.OPTIMIZERS
MOMENTUM_FORMS = ("paper", "torch")
DECAYS = ("all", "matrices")


def decays(ndim: int, decay: str) -> bool:
    """Whether a parameter with ``ndim`` dimensions is decayed (weight decay or L2) under ``decay``:
    always under ``"all"``; under ``"matrices"`` only when ``ndim >= 2`` (not biases, not norm weights)."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}; got {decay!r}")
    return decay == "all" or ndim >= 2


def param_groups(params: Iterable, decay: str) -> list:
    """``params`` as the optimizer's param groups: as given under ``"all"``; under ``"matrices"`` a
    group of the decayed parameters and one of the others, flagged ``"decay": False``."""
    if decay not in DECAYS:
        raise ValueError(f"decay must be one of {', '.join(DECAYS)}; got {decay!r}")
    params = list(params)
    if decay == "all":
        return params
    if any(isinstance(p, dict) for p in params):
        raise ValueError("decay = 'matrices' splits parameters into groups itself: pass parameters, not groups")
    groups = [{"params": [p for p in params if decays(p.dim(), decay)]},
              {"params": [p for p in params if not decays(p.dim(), decay)], "decay": False}]
    return [g for g in groups if g["params"]]


def set_weight_decay(opt: torch.optim.Optimizer, weight_decay: float) -> None:
    """Set raw λ on every param group that decays (0 on the ``"decay": False`` group): how a trainer
    changes λ at a warm restart."""
    for group in opt.param_groups:
        group["weight_decay"] = weight_decay if group.get("decay", True) else 0.0


def schedule_multiplier(group: dict) -> float:
    """η_t of a param group: ``lr / initial_lr`` (a torch scheduler stores α in ``initial_lr``)."""
    alpha = group.get("initial_lr")
    if alpha is None:
        return 1.0
    return group["lr"] / alpha


def initial_lr(group: dict) -> float:
    """α of a param group: ``initial_lr`` when a scheduler is attached, else ``lr``."""
    return group.get("initial_lr", group["lr"])


class MomentumSGD(torch.optim.Optimizer):
    """SGD with momentum, L2 (``decoupled=False``) or decoupled weight decay (SGDW), Algorithm 1.

    Hand-written on purpose: torch has no SGDW and no SGD with the paper's momentum form
    (η_t·α inside the buffer). Every update is a multi-tensor (foreach) kernel over the group.

    Paper form:  m_t = β₁·m_{t−1} + η_t·α·g_t;        θ_t = (1 − η_t·λ_d)·θ_{t−1} − m_t
    Torch form:  b_t = β₁·b_{t−1} + g_t;              θ_t = (1 − η_t·λ_d)·θ_{t−1} − η_t·α·b_t
    with g_t = ∇f_t(θ_{t−1}) + λ_L2·θ_{t−1}; exactly one of λ_L2, λ_d is the group's λ.
    """

    def __init__(
        self,
        params: Iterable,
        *,
        lr: float,
        weight_decay: float,
        momentum: float,
        decoupled: bool,
        momentum_form: str = "paper",
    ) -> None:
        defaults = dict(lr=lr, weight_decay=weight_decay, momentum=momentum)
        super().__init__(params, defaults)
        self.decoupled = decoupled
        self.momentum_form = momentum_form

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            lr_t = group["lr"]  # α·η_t
            eta = schedule_multiplier(group)
            lam = group["weight_decay"]
            beta1 = group["momentum"]
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                bufs.append(state["momentum_buffer"])
            if lam and not self.decoupled:  # g_t = ∇f + λθ_{t−1}, in place: p.grad holds g_t afterwards
                torch._foreach_add_(grads, params, alpha=lam)
            torch._foreach_mul_(bufs, beta1)
            if self.momentum_form == "paper":
                torch._foreach_add_(bufs, grads, alpha=lr_t)  # m_t = β₁m + η_tα·g_t
                step_scale = -1.0
            else:
                torch._foreach_add_(bufs, grads)  # b_t = β₁b + g_t
                step_scale = -lr_t
            if lam and self.decoupled:  # − η_t·λ·θ_{t−1}, uses θ_{t−1}: decay before the step
                torch._foreach_mul_(params, 1.0 - eta * lam)
            torch._foreach_add_(params, bufs, alpha=step_scale)
        return loss


class AdamW(torch.optim.AdamW):
    """The paper's AdamW (Algorithm 2, line 12): θ_t = θ_{t−1} − η_t(α·m̂_t/(√v̂_t + ε) + λ·θ_{t−1}).

    torch.optim.AdamW computes θ_t = θ_{t−1} − η_tα(m̂_t/(√v̂_t + ε) + λ_torch·θ_{t−1}); with
    λ_torch = λ/α the two are the same algorithm, so this class reuses torch's fused multi-tensor
    kernel and only translates the group's raw λ into λ/α for the duration of each step. The
    group's ``"weight_decay"`` therefore keeps meaning raw λ, like every other Basin optimizer.
    """

    @torch.no_grad()
    def step(self, closure=None):
        raw = [group["weight_decay"] for group in self.param_groups]
        for group, lam in zip(self.param_groups, raw):
            group["weight_decay"] = lam / initial_lr(group)
        try:
            return super().step(closure)
        finally:
            for group, lam in zip(self.param_groups, raw):
                group["weight_decay"] = lam


class AdamL2(torch.optim.Adam):
    """Adam with L2 regularisation (Algorithm 2, line 6): g_t = ∇f_t(θ_{t−1}) + λ·θ_{t−1}, then Adam.

    The same numbers as torch.optim.Adam(weight_decay=λ), which it runs with λ = 0 after adding
    λ·θ_{t−1} into ``p.grad`` in place (torch's own path allocates a second copy of every gradient,
    30% slower on an 11.6M-parameter net). After ``step()``, ``p.grad`` therefore holds g_t, the
    gradient of the regularised loss, exactly as Algorithm 2 names it.
    """

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        raw = [group["weight_decay"] for group in self.param_groups]
        for group, lam in zip(self.param_groups, raw):
            params = [p for p in group["params"] if p.grad is not None]
            if lam and params:
                torch._foreach_add_([p.grad for p in params], params, alpha=lam)
            group["weight_decay"] = 0.0
        try:
            super().step()
        finally:
            for group, lam in zip(self.param_groups, raw):
                group["weight_decay"] = lam
        return loss


def _check_finite(name: str, value: float, *, positive: bool) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value) or (value <= 0 if positive else value < 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def _check_unit_interval(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must lie in [0, 1), got {value!r}")
    return float(value)


def build(
    name: str,
    params: Iterable,
    *,
    lr: float,
    weight_decay: float,
    momentum: float = 0.9,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    momentum_form: str = "paper",
    decay: str = "all",
) -> torch.optim.Optimizer:
    """Build one of :data:`OPTIMIZERS` with α = ``lr`` and raw λ = ``weight_decay``.

    ``momentum`` (β₁ of Algorithm 1) and ``momentum_form`` apply to ``"sgd"``/``"sgdw"``;
    ``betas`` and ``eps`` to the Adam variants; ``decay`` says which parameters decay
    (:func:`decays`). Raises ValueError naming the bad argument.
    """
    opt = _build(name, param_groups(params, decay), lr=lr, weight_decay=weight_decay, momentum=momentum,
                 betas=betas, eps=eps, momentum_form=momentum_form)
    set_weight_decay(opt, opt.defaults["weight_decay"])
    return opt


def _build(name, params, *, lr, weight_decay, momentum, betas, eps, momentum_form) -> torch.optim.Optimizer:
    info = optimizers.get(name)  # family and decay form: trainers/optimizers.py
    lr = _check_finite("lr", lr, positive=True)
    weight_decay = _check_finite("weight_decay", weight_decay, positive=False)
    if info.family == "sgd":
        momentum = _check_unit_interval("momentum", momentum)
        if momentum_form not in MOMENTUM_FORMS:
            raise ValueError(
                f"momentum_form must be one of {', '.join(MOMENTUM_FORMS)}; got {momentum_form!r}"
            )
        if info.l2 and momentum_form == "torch":
            # torch.optim.SGD is exactly SGD+L2 with torch-style momentum: reuse it.
            return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, foreach=True)
        return MomentumSGD(
            params,
            lr=lr,
            weight_decay=weight_decay,
            momentum=momentum,
            decoupled=not info.l2,
            momentum_form=momentum_form,
        )
    if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
        raise ValueError(f"betas must be a pair (β₁, β₂) in [0, 1), got {betas!r}")
    betas = (_check_unit_interval("betas[0]", betas[0]), _check_unit_interval("betas[1]", betas[1]))
    eps = _check_finite("eps", eps, positive=True)
    return _ADAM[info.decay_form](params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=True)


#: The Adam family's update per decay form (trainers/optimizers.py): L2 in the gradient, the paper's
#: decay × η_t, torch's decay × α·η_t.
_ADAM = {"coupled": AdamL2, "decoupled": AdamW, "lr-coupled": torch.optim.AdamW}
