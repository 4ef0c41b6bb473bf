"""The paper's optimizers for a pack: one update of all K members' flat (K, P) parameters at once.

Hand-written on purpose (torch has no per-row learning rates): the same algorithms as
:mod:`trainers.optim`, in the same operation order, with every per-member number a (K, 1) column
that broadcasts over the member's row — α_k, the raw λ_k of its normalised decay, its schedule
multiplier η_k(t). Each update is a few whole-tensor ops, whatever K. Members of one pack share an
optimizer *family*: the SGD family (``sgd``, ``sgdw``; one momentum and momentum form) or the Adam
family (``adam``, ``adamw``, ``adamw-torch``; one β₁, β₂, ε), so mixed packs are allowed.

Per member k, with g the gradient, λ_L2 = λ_k for the L2 variants (decay form ``"coupled"`` in
:mod:`trainers.optimizers`, else 0) and the decoupled decay factor d_k (0 for the L2 variants):

SGD family, paper form (Algorithm 1):  g ← g + λ_L2·θ;  m ← β₁m + η_kα_k·g;  θ ← (1 − η_kλ_k)·θ − m
SGD family, torch form:                g ← g + λ_L2·θ;  b ← β₁b + g;  θ ← (1 − η_kλ_k)·θ − η_kα_k·b
Adam family (Algorithm 2, torch's formula):  g ← g + λ_L2·θ;  θ ← (1 − d_k)·θ;  m ← lerp(m, g, 1 − β₁);
    v ← β₂v + (1 − β₂)g²;  θ ← θ − (η_kα_k / (1 − β₁ᵗ))·m / (√v / √(1 − β₂ᵗ) + ε)
with d_k = η_kλ_k for decay form ``"decoupled"`` (``adamw``: multiplied by η_t, not α — the paper) and
d_k = η_kα_kλ_k for ``"lr-coupled"`` (``adamw-torch``, torch's form). t is the pack's step count: members
never join a pack late, so they share it.

``decay = "matrices"`` (:func:`trainers.optim.decays`): a (P,) mask over the flat row says which
entries decay; the others get neither the decay factor nor the L2 term — θ·1 and g + 0·θ, the same
numbers as the unpacked optimizer's ``"decay": False`` group with λ = 0.
"""

from __future__ import annotations

import torch

from trainers import optimizers as table

SGD_FAMILY = table.in_family("sgd")
ADAM_FAMILY = table.in_family("adam")


def family(optimizer: str) -> str:
    """``"sgd"`` or ``"adam"``: which packed update runs ``optimizer`` (:mod:`trainers.optimizers`)."""
    return table.get(optimizer).family


class PackedOptimizer:
    """One family's update for K members; per-member numbers come in as (K,) float64 tensors.

    ``optimizers``: each member's variant name; ``lr``: α_k. ``step(flat, eta, lam)`` applies one
    update with η_k(t) and raw λ_k(t) of this step. ``select(keep)`` keeps the members ``keep``.
    """

    def __init__(self, optimizers: list[str], lr: torch.Tensor, *, momentum: float = 0.9,
                 momentum_form: str = "paper", betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decay_mask: torch.Tensor | None = None) -> None:
        families = {family(o) for o in optimizers}
        if len(families) != 1:
            raise ValueError(f"a pack's members must share an optimizer family; got {sorted(set(optimizers))}")
        self.family = families.pop()
        self.optimizers = list(optimizers)
        device = lr.device
        self.lr = lr.to(torch.float64)
        rows = [table.get(o) for o in optimizers]  # each member's decay form
        self.l2 = torch.tensor([r.l2 for r in rows], dtype=torch.float64, device=device)
        self.lr_coupled = torch.tensor([r.lr_coupled for r in rows], dtype=torch.float64, device=device)
        self._flags()
        self.momentum, self.momentum_form = float(momentum), momentum_form
        self.beta1, self.beta2 = (float(b) for b in betas)
        self.eps = float(eps)
        #: (1, P) bool, True where the flat row decays; None: every entry does (decay = "all")
        self.decay_mask = None if decay_mask is None or bool(decay_mask.all()) else decay_mask.bool().view(1, -1)
        self.state: dict[str, torch.Tensor] = {}
        self.t = 0

    def _flags(self) -> None:
        """Which update terms any member needs, as Python bools (no device sync per step)."""
        self.any_l2 = any(table.get(o).l2 for o in self.optimizers)
        self.any_decoupled = not all(table.get(o).l2 for o in self.optimizers)

    def select(self, keep: torch.Tensor) -> None:
        keep = keep.to(self.lr.device)
        for name in ("lr", "l2", "lr_coupled"):
            setattr(self, name, getattr(self, name)[keep])
        self.optimizers = [self.optimizers[i] for i in keep.tolist()]
        self.state = {name: value[keep] for name, value in self.state.items()}
        self._flags()

    @torch.no_grad()
    def step(self, flat: torch.Tensor, eta: torch.Tensor, lam: torch.Tensor) -> None:
        """One update of ``flat`` (K, P) in place from ``flat.grad`` (which then holds g + λ_L2·θ)."""
        col = lambda v: v.to(flat.dtype).unsqueeze(1)  # noqa: E731 - (K,) float64 → (K, 1) in θ's dtype
        theta, g = flat, flat.grad
        mask = None if self.decay_mask is None else self.decay_mask.to(flat.device)

        def decayed(per_member: torch.Tensor, other: float) -> torch.Tensor:
            """(K, 1) column, or (K, P) with ``other`` where the row does not decay."""
            c = col(per_member)
            return c if mask is None else torch.where(mask, c, torch.full_like(c, other))

        lr_t = self.lr * eta  # α_k·η_k(t), in float64 like torch's Python-float lr
        if bool(self.l2.any()):
            g.addcmul_(theta, decayed(self.l2 * lam, 0.0))  # g ← g + λ_L2·θ
        self.t += 1
        if self.family == "sgd":
            decay = (1.0 - self.l2) * eta * lam  # η_k·λ_k decoupled, 0 coupled (the family has no lr-coupled form)
            buf = self.state.setdefault("momentum", torch.zeros_like(theta))
            buf.mul_(self.momentum)
            if self.momentum_form == "paper":
                buf.addcmul_(g, col(lr_t))  # m ← β₁m + η_tα·g
                step = buf
            else:
                buf.add_(g)  # b ← β₁b + g
                step = buf * col(lr_t)
            if bool(decay.any()):
                theta.mul_(decayed(1.0 - decay, 1.0))
            theta.sub_(step)
            return
        decay = (1.0 - self.l2) * torch.where(self.lr_coupled.bool(), lr_t * lam, lr_t * (lam / self.lr))
        if self.any_decoupled:
            theta.mul_(decayed(1.0 - decay, 1.0))
        m = self.state.setdefault("exp_avg", torch.zeros_like(theta))
        v = self.state.setdefault("exp_avg_sq", torch.zeros_like(theta))
        m.lerp_(g, 1.0 - self.beta1)
        v.mul_(self.beta2).addcmul_(g, g, value=1.0 - self.beta2)
        bias1 = 1.0 - self.beta1 ** self.t
        bias2_sqrt = (1.0 - self.beta2 ** self.t) ** 0.5
        denom = v.sqrt().div_(bias2_sqrt).add_(self.eps)
        theta.addcdiv_(m * col(-(lr_t / bias1)), denom)


__all__ = ["ADAM_FAMILY", "SGD_FAMILY", "PackedOptimizer", "family"]
