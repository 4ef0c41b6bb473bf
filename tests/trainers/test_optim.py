"""The five optimizers against references written from the paper's pseudo-code (float64, 1e-10)."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from trainers import optim
from trainers.schedules import WarmRestarts, torch_scheduler

STEPS = 60
STEPS_PER_EPOCH = 5
ALPHA = 0.05
LAMBDA = 0.01
BETA1 = 0.9
BETAS = (0.9, 0.999)
EPS = 1e-8
# T_0 = 4 epochs, T_mult = 2: restarts after steps 20 and 60, so η_t falls, jumps back to 1 at step 21, falls again.
SCHEDULE = WarmRestarts(budget=12, t0=4, t_mult=2)


def eta(t: int) -> float:
    """η_t for the 1-indexed step t under SCHEDULE driven per batch."""
    return SCHEDULE.multiplier((t - 1) / STEPS_PER_EPOCH)


def make_problem(seed: int):
    """A small random non-convex problem: a tanh layer on random data, float64."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 6, generator=g, dtype=torch.float64)
    y = torch.randn(32, 3, generator=g, dtype=torch.float64)
    w1 = torch.randn(6, 8, generator=g, dtype=torch.float64) * 0.5
    w2 = torch.randn(8, 3, generator=g, dtype=torch.float64) * 0.5
    b = torch.randn(3, generator=g, dtype=torch.float64) * 0.1

    def grad(params):
        ps = [p.detach().clone().requires_grad_(True) for p in params]
        loss = ((torch.tanh(x @ ps[0]) @ ps[1] + ps[2] - y) ** 2).mean()
        return list(torch.autograd.grad(loss, ps))

    return [w1, w2, b], grad


def run_ours(name, seed, *, scheduled=True, **kwargs):
    init, grad = make_problem(seed)
    params = [p.clone().requires_grad_(True) for p in init]
    opt = optim.build(name, params, lr=ALPHA, weight_decay=LAMBDA, **kwargs)
    sched = torch_scheduler(opt, SCHEDULE, STEPS_PER_EPOCH) if scheduled else None
    for _ in range(STEPS):
        for p, gp in zip(params, grad(params)):
            p.grad = gp
        opt.step()
        if sched:
            sched.step()
    return [p.detach() for p in params]


def reference_sgd(seed, *, decoupled, form="paper", lam=LAMBDA, alpha=ALPHA, beta1=BETA1, etas=eta):
    """Algorithm 1, line by line."""
    theta, grad = make_problem(seed)
    m = [torch.zeros_like(p) for p in theta]
    for t in range(1, STEPS + 1):
        g = grad(theta)
        if not decoupled:
            g = [gi + lam * th for gi, th in zip(g, theta)]  # g_t ← ∇f + λθ_{t−1}
        e = etas(t)
        new = []
        for i, th in enumerate(theta):
            if form == "paper":
                m[i] = beta1 * m[i] + e * alpha * g[i]  # m_t ← β₁m_{t−1} + η_tα g_t
                step = m[i]
            else:
                m[i] = beta1 * m[i] + g[i]  # Lua/torch: b_t ← β₁b_{t−1} + g_t
                step = e * alpha * m[i]
            decay = e * lam * th if decoupled else 0.0  # η_t λ θ_{t−1}
            new.append(th - step - decay)
        theta = new
    return theta


def reference_adam(seed, *, mode, lam=LAMBDA):
    """Algorithm 2, line by line. mode: 'l2' (line 6), 'decoupled' (line 12), 'torch' (λ·α·η_t)."""
    theta, grad = make_problem(seed)
    m = [torch.zeros_like(p) for p in theta]
    v = [torch.zeros_like(p) for p in theta]
    b1, b2 = BETAS
    for t in range(1, STEPS + 1):
        g = grad(theta)
        if mode == "l2":
            g = [gi + lam * th for gi, th in zip(g, theta)]
        e = eta(t)
        new = []
        for i, th in enumerate(theta):
            m[i] = b1 * m[i] + (1 - b1) * g[i]
            v[i] = b2 * v[i] + (1 - b2) * g[i] ** 2
            m_hat = m[i] / (1 - b1**t)
            v_hat = v[i] / (1 - b2**t)
            adam = ALPHA * m_hat / (v_hat.sqrt() + EPS)
            if mode == "decoupled":
                new.append(th - e * (adam + lam * th))
            elif mode == "torch":
                new.append(th - e * (adam + ALPHA * lam * th))
            else:
                new.append(th - e * adam)
        theta = new
    return theta


def assert_close(ours, ref):
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_schedule_has_a_warm_restart_inside_the_steps():
    etas = [eta(t) for t in range(1, STEPS + 1)]
    assert etas[0] == 1.0 and etas[20] == 1.0  # step 21 starts period 2
    assert etas[19] < 0.01  # just before the restart η ≈ 0
    assert len(set(round(e, 12) for e in etas)) > 30  # non-trivial sequence


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("form", ["paper", "torch"])
def test_sgd_l2_matches_algorithm_1(seed, form):
    assert_close(run_ours("sgd", seed, momentum_form=form), reference_sgd(seed, decoupled=False, form=form))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("form", ["paper", "torch"])
def test_sgdw_matches_algorithm_1(seed, form):
    assert_close(run_ours("sgdw", seed, momentum_form=form), reference_sgd(seed, decoupled=True, form=form))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adam_l2_matches_algorithm_2(seed):
    assert_close(run_ours("adam", seed), reference_adam(seed, mode="l2"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adamw_matches_algorithm_2(seed):
    assert_close(run_ours("adamw", seed), reference_adam(seed, mode="decoupled"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_adamw_torch_is_lr_coupled(seed):
    assert_close(run_ours("adamw-torch", seed), reference_adam(seed, mode="torch"))


def test_momentum_forms_differ_when_eta_changes_and_agree_when_fixed():
    paper = run_ours("sgdw", 0, momentum_form="paper")
    torch_form = run_ours("sgdw", 0, momentum_form="torch")
    assert max((a - b).abs().max().item() for a, b in zip(paper, torch_form)) > 1e-6
    paper_fixed = run_ours("sgdw", 0, scheduled=False, momentum_form="paper")
    torch_fixed = run_ours("sgdw", 0, scheduled=False, momentum_form="torch")
    assert_close(paper_fixed, torch_fixed)


def test_decoupled_decay_is_not_scaled_by_alpha():
    """Zero gradient: AdamW shrinks θ by (1 − η_tλ) regardless of α; adamw-torch by (1 − η_tαλ)."""
    for name, factor in (("adamw", 1 - LAMBDA), ("adamw-torch", 1 - 0.5 * LAMBDA), ("sgdw", 1 - LAMBDA)):
        p = torch.ones(3, dtype=torch.float64, requires_grad=True)
        opt = optim.build(name, [p], lr=0.5, weight_decay=LAMBDA)
        p.grad = torch.zeros_like(p)
        opt.step()
        torch.testing.assert_close(p.detach(), torch.full((3,), factor, dtype=torch.float64), rtol=0, atol=1e-15)


@pytest.mark.parametrize("seed", [0, 1])
def test_proposition_1_sgd_l2_equals_sgdw_without_momentum(seed):
    """Plain SGD with L2 factor λ′ = SGD with weight decay λ = α·λ′ (fixed η_t = 1)."""
    lam_prime = 0.2
    one = lambda t: 1.0  # noqa: E731
    l2 = reference_sgd(seed, decoupled=False, lam=lam_prime, beta1=0.0, etas=one)
    init, grad = make_problem(seed)
    params = [p.clone().requires_grad_(True) for p in init]
    opt = optim.build("sgdw", params, lr=ALPHA, weight_decay=ALPHA * lam_prime, momentum=0.0)
    for _ in range(STEPS):
        for p, gp in zip(params, grad(params)):
            p.grad = gp
        opt.step()
    assert_close([p.detach() for p in params], l2)
    # and ours with L2 agrees too
    params = [p.clone().requires_grad_(True) for p in init]
    opt = optim.build("sgd", params, lr=ALPHA, weight_decay=lam_prime, momentum=0.0)
    for _ in range(STEPS):
        for p, gp in zip(params, grad(params)):
            p.grad = gp
        opt.step()
    assert_close([p.detach() for p in params], l2)


def test_proposition_3_fixed_preconditioner():
    """With a fixed preconditioner M = diag(s)⁻¹, decoupled decay λ equals L2 on the scale-adjusted
    loss f + (λ′/2)‖θ ⊙ √s‖² with λ′ = λ/α (Eq. 2, Appendix A)."""
    g = torch.Generator().manual_seed(3)
    s = torch.rand(10, generator=g, dtype=torch.float64) + 0.5
    a = torch.randn(10, 10, generator=g, dtype=torch.float64)
    target = torch.randn(10, generator=g, dtype=torch.float64)
    grad_f = lambda th: a.T @ (a @ th - target) / 10  # noqa: E731
    alpha, lam = 0.1, 0.03
    m = 1.0 / s  # the fixed preconditioner M = diag(s)⁻¹
    th_dec = th_l2 = torch.randn(10, generator=g, dtype=torch.float64)
    lam_prime = lam / alpha
    for _ in range(100):
        th_dec = th_dec - alpha * m * grad_f(th_dec) - lam * th_dec  # θ − αM∇f − λθ
        grad_reg = grad_f(th_l2) + lam_prime * s * th_l2  # ∇(f + λ′/2 ‖θ ⊙ √s‖²)
        th_l2 = th_l2 - alpha * m * grad_reg  # θ − αM∇f_reg
    torch.testing.assert_close(th_dec, th_l2, rtol=0, atol=1e-12)


def test_proposition_2_adam_l2_cannot_match_adamw():
    """No single L2 factor λ′ reproduces AdamW (adaptive preconditioner ≠ k·I): scan λ′ widely."""
    target = run_ours("adamw", 0)
    gaps = []
    for lam_prime in [LAMBDA * 10**k for k in (-3, -2, -1, 0, 1, 2)] + [LAMBDA / ALPHA]:
        init, grad = make_problem(0)
        params = [p.clone().requires_grad_(True) for p in init]
        opt = optim.build("adam", params, lr=ALPHA, weight_decay=lam_prime)
        sched = torch_scheduler(opt, SCHEDULE, STEPS_PER_EPOCH)
        for _ in range(STEPS):
            for p, gp in zip(params, grad(params)):
                p.grad = gp
            opt.step()
            sched.step()
        gaps.append(max((a - b.detach()).abs().max().item() for a, b in zip(target, params)))
    assert min(gaps) > 1e-4


def _run_torch(opt_cls, seed, **kwargs):
    init, grad = make_problem(seed)
    params = [p.clone().requires_grad_(True) for p in init]
    opt = opt_cls(params, lr=ALPHA, betas=BETAS, eps=EPS, **kwargs)
    sched = torch_scheduler(opt, SCHEDULE, STEPS_PER_EPOCH)
    for _ in range(STEPS):
        for p, gp in zip(params, grad(params)):
            p.grad = gp
        opt.step()
        sched.step()
    return [p.detach() for p in params]


def test_against_torch_optim():
    for seed in (0, 1):
        assert_close(run_ours("adamw", seed), _run_torch(torch.optim.AdamW, seed, weight_decay=LAMBDA / ALPHA))
        assert_close(run_ours("adam", seed), _run_torch(torch.optim.Adam, seed, weight_decay=LAMBDA))
        assert_close(run_ours("adamw-torch", seed), _run_torch(torch.optim.AdamW, seed, weight_decay=LAMBDA))


def test_weight_decay_group_key_is_raw_lambda_and_can_change():
    p = torch.ones(2, dtype=torch.float64, requires_grad=True)
    opt = optim.build("adamw", [p], lr=0.5, weight_decay=0.1)
    assert opt.param_groups[0]["weight_decay"] == 0.1
    opt.param_groups[0]["weight_decay"] = 0.2  # e.g. a new λ at a warm restart
    p.grad = torch.zeros_like(p)
    opt.step()
    assert opt.param_groups[0]["weight_decay"] == 0.2
    torch.testing.assert_close(p.detach(), torch.full((2,), 0.8, dtype=torch.float64), rtol=0, atol=1e-15)


def test_state_dict_roundtrip_continues_identically():
    init, grad = make_problem(0)
    a = [p.clone().requires_grad_(True) for p in init]
    opt_a = optim.build("sgdw", a, lr=ALPHA, weight_decay=LAMBDA)
    for _ in range(5):
        for p, gp in zip(a, grad(a)):
            p.grad = gp
        opt_a.step()
    b = [p.detach().clone().requires_grad_(True) for p in a]
    opt_b = optim.build("sgdw", b, lr=ALPHA, weight_decay=LAMBDA)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as if saved to disk
    for _ in range(5):
        for params, opt in ((a, opt_a), (b, opt_b)):
            for p, gp in zip(params, grad(params)):
                p.grad = gp
            opt.step()
    assert_close([p.detach() for p in a], [p.detach() for p in b])


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(name="lamb"), "optimizer must be one of sgd, sgdw, adam, adamw, adamw-torch"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(lr=0.0), "lr"),
        (dict(weight_decay=-0.1), "weight_decay"),
        (dict(weight_decay=float("inf")), "weight_decay"),
        (dict(name="adam", betas=(1.0, 0.999)), r"betas\[0\]"),
        (dict(name="adamw", betas=(0.9, -0.1)), r"betas\[1\]"),
        (dict(name="sgdw", momentum=1.5), "momentum"),
        (dict(name="sgdw", momentum_form="lua"), "momentum_form must be one of paper, torch"),
    ],
)
def test_bad_input_names_the_argument(kwargs, field):
    args = dict(name="adamw", lr=0.1, weight_decay=0.01)
    args.update(kwargs)
    name = args.pop("name")
    with pytest.raises(ValueError, match=field):
        optim.build(name, [torch.zeros(2, requires_grad=True)], **args)


def test_float32_parameters_work_for_every_variant():
    for name in optim.OPTIMIZERS:
        p = torch.randn(4, 4, requires_grad=True)
        opt = optim.build(name, [p], lr=1e-2, weight_decay=1e-3)
        (p**2).sum().backward()
        before = p.detach().clone()
        opt.step()
        assert torch.isfinite(p).all() and not torch.equal(before, p.detach()), name
        assert math.isfinite(opt.param_groups[0]["lr"])


def test_l2_variants_leave_the_regularised_gradient_in_grad():
    """SGD+L2 and Adam+L2 add λθ into p.grad in place: afterwards p.grad is g_t = ∇f + λθ_{t−1}."""
    for name in ("sgd", "adam"):
        p = torch.full((3,), 2.0, dtype=torch.float64, requires_grad=True)
        opt = optim.build(name, [p], lr=0.1, weight_decay=0.25)
        p.grad = torch.ones(3, dtype=torch.float64)
        opt.step()
        torch.testing.assert_close(p.grad, torch.full((3,), 1.5, dtype=torch.float64), rtol=0, atol=0)
        assert opt.param_groups[0]["weight_decay"] == 0.25
