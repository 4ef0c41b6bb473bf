"""The optimizer table (trainers/optimizers.py) says what the updates do: one float64 step with λ > 0.

With a zero gradient and zero optimizer state only the decay moves θ, so each decay form has one
predicted step, checked on the single-run optimizer (``trainers.optim.build``, both SGD momentum
forms) and on the packed one (``trainers.pack_optim.PackedOptimizer``, all members of a family at once):

* ``"coupled"`` (L2): exactly the step of the same optimizer without decay on the gradient λ·θ;
* ``"decoupled"`` (the paper): θ ← (1 − η_t·λ)·θ, whatever α;
* ``"lr-coupled"`` (torch's AdamW): θ ← (1 − α·η_t·λ)·θ.
"""

from __future__ import annotations

import pytest
import torch

from trainers import optim, optimizers, pack_optim

ALPHA, ETA, LAM = 0.3, 0.25, 0.2  # α, η_t (a scheduler's lr / initial_lr), raw λ
THETA = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
NAMES = [(name, form) for name in optimizers.OPTIMIZERS
         for form in (optim.MOMENTUM_FORMS if optimizers.get(name).family == "sgd" else ("paper",))]


def one_step(name: str, grad: torch.Tensor, lam: float, momentum_form: str = "paper") -> torch.Tensor:
    """θ after one step of ``optim.build(name)`` at η_t = ETA (set as a torch scheduler sets it)."""
    p = torch.nn.Parameter(THETA.clone())
    opt = optim.build(name, [p], lr=ALPHA, weight_decay=lam, momentum_form=momentum_form)
    for group in opt.param_groups:
        group["initial_lr"], group["lr"] = ALPHA, ALPHA * ETA
    p.grad = grad.clone()
    opt.step()
    return p.detach()


def predicted(decay_form: str) -> torch.Tensor:
    """θ after a decay-only step of ``decay_form`` (module doc)."""
    shrink = {"decoupled": ETA * LAM, "lr-coupled": ALPHA * ETA * LAM}[decay_form]
    return (1.0 - shrink) * THETA


@pytest.mark.parametrize(("name", "momentum_form"), NAMES)
def test_each_optimizer_decays_as_the_table_says(name, momentum_form):
    row = optimizers.get(name)
    after = one_step(name, torch.zeros_like(THETA), LAM, momentum_form)
    if row.decay_form == "coupled":  # nothing beyond the L2 gradient λθ
        torch.testing.assert_close(after, one_step(name, LAM * THETA, 0.0, momentum_form), rtol=0, atol=0)
        assert not torch.equal(after, THETA)
    else:
        torch.testing.assert_close(after, predicted(row.decay_form), rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("family", optimizers.FAMILIES)
def test_the_packed_update_decays_as_the_table_says(family):
    names = optimizers.in_family(family)
    k = len(names)

    def packed_step(grad_rows: torch.Tensor, lam: float) -> torch.Tensor:
        opt = pack_optim.PackedOptimizer(list(names), torch.full((k,), ALPHA, dtype=torch.float64))
        flat = THETA.repeat(k, 1).requires_grad_()
        flat.grad = grad_rows.clone()
        opt.step(flat, torch.full((k,), ETA, dtype=torch.float64), torch.full((k,), lam, dtype=torch.float64))
        return flat.detach()

    after = packed_step(torch.zeros(k, THETA.numel(), dtype=torch.float64), LAM)
    l2_only = packed_step(LAM * THETA.repeat(k, 1), 0.0)
    for i, name in enumerate(names):
        row = optimizers.get(name)
        if row.decay_form == "coupled":
            torch.testing.assert_close(after[i], l2_only[i], rtol=0, atol=0)
        else:
            torch.testing.assert_close(after[i], predicted(row.decay_form), rtol=1e-15, atol=1e-15)
        torch.testing.assert_close(after[i], one_step(name, torch.zeros_like(THETA), LAM), rtol=1e-15, atol=1e-15)


def test_the_table_is_consistent():
    assert set(optimizers.OPTIMIZERS) == set(optim.OPTIMIZERS) == {"sgd", "sgdw", "adam", "adamw", "adamw-torch"}
    for row in optimizers.TABLE.values():
        assert pack_optim.family(row.name) == row.family
        if row.pair is not None:  # compared against a decoupled optimizer of the same family
            pair = optimizers.get(row.pair)
            assert pair.decay_form == "decoupled" and pair.family == row.family and row.decay_form != "decoupled"
    with pytest.raises(ValueError, match="sgd family implements"):
        optimizers.Optimizer("sgd-torch", "sgd", "lr-coupled", "x", None, None)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        optimizers.get("lion")
