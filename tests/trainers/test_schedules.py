"""Each schedule, driven per batch by ``torch_scheduler``, gives the lr of the torch scheduler it mirrors.

We run an SGD optimizer for a whole run (300-2000 steps) under Basin's LambdaLR and under the real
torch scheduler, then compare ``group["lr"]`` before the first step and after every step. The lrs
are Python floats, so this is float64 arithmetic. Everything agrees to a relative 1e-12 (abs=0):
the largest gap, about 7e-14, comes from CosineAnnealingLR's recursive update, which builds up
rounding over the run and is worst where lr is near 0 at the end of the anneal (it grows to about
6e-13 at 10,000 steps). The closed forms agree to about 5e-14, MultiStepLR matches exactly, and
torch's fractional-epoch warm-restart form matches exactly or to within a few 1e-16.

Basin also allows a fractional T_mult (say 1.5). Torch's CosineAnnealingWarmRestarts accepts only
an integer T_mult ≥ 1, so only integer T_mult is compared here. Torch's fractional-epoch form
finds the period with ``int(math.log(..., T_mult))``, which can round down at a restart: with
T_0 = 1 and T_mult = 3 it gives lr = η_min at epoch 121 where it should restart. The runs here
end well before any such epoch.
"""

from __future__ import annotations

import pytest
import torch
from torch.optim import lr_scheduler

from trainers.schedules import WarmRestarts, make, torch_scheduler

ALPHA = 0.1  # base learning rate α
SPE = 20  # steps per epoch
REL = 1e-12


def lrs(scheduler, steps, step=lambda sched, t: sched.step()):
    """group["lr"] before the first step, then after each of ``steps`` optimizer + scheduler steps."""
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=ALPHA)
    sched = scheduler(opt)
    out = [opt.param_groups[0]["lr"]]
    for t in range(1, steps + 1):
        opt.step()
        if sched is not None:
            step(sched, t)
        out.append(opt.param_groups[0]["lr"])
    return out


def basin(schedule, steps):
    return lrs(lambda opt: torch_scheduler(opt, schedule, SPE), steps)


def restart_steps(t0, t_mult, steps):
    """Steps where a warm-restart period ends: cumulative sums of T_i = T_0·T_mult^i (in steps)."""
    ends, length = [], t0 * SPE
    end = length
    while end <= steps:
        ends.append(end)
        length *= t_mult
        end += length
    return ends


@pytest.mark.parametrize("torch_sched", [lambda opt: None, lambda opt: lr_scheduler.ConstantLR(opt, factor=1.0)],
                         ids=["no-scheduler", "ConstantLR"])
def test_fixed_is_a_constant_lr(torch_sched):
    ours = basin(make("fixed", 15), 15 * SPE)
    assert ours == lrs(torch_sched, 15 * SPE) == [ALPHA] * (15 * SPE + 1)


@pytest.mark.parametrize("budget, params", [
    (100, {"milestones": (30, 60, 80), "factor": 0.1}),  # Figure 1
    (15, {}),  # the defaults: 4.5, 9, 12, factor 0.1 (a drop in the middle of an epoch)
    (20, {"milestones": (5, 12), "factor": 0.5}),
])
def test_step_drop_is_multistep_lr_stepped_per_batch(budget, params):
    schedule = make("step-drop", budget, **params)
    milestones = [round(m * SPE) for m in schedule.milestones]
    theirs = lrs(lambda opt: lr_scheduler.MultiStepLR(opt, milestones, gamma=schedule.factor), budget * SPE)
    assert basin(schedule, budget * SPE) == pytest.approx(theirs, rel=REL, abs=0)


@pytest.mark.parametrize("budget, milestones, factor", [(100, (30, 60, 80), 0.1), (20, (5, 12), 0.5)])
def test_step_drop_is_multistep_lr_stepped_per_epoch_for_integer_milestones(budget, milestones, factor):
    per_epoch = lrs(lambda opt: lr_scheduler.MultiStepLR(opt, list(milestones), gamma=factor), budget)
    ours = basin(make("step-drop", budget, milestones=milestones, factor=factor), budget * SPE)
    assert ours[::SPE] == pytest.approx(per_epoch, rel=REL, abs=0)  # epoch boundaries
    assert ours == pytest.approx([per_epoch[t // SPE] for t in range(budget * SPE + 1)], rel=REL, abs=0)  # every batch


def test_step_drop_milestone_inside_an_epoch_is_missed_by_per_epoch_multistep_lr():
    schedule = make("step-drop", 15)  # milestones 4.5, 9, 12
    per_epoch = lrs(lambda opt: lr_scheduler.MultiStepLR(opt, list(schedule.milestones), gamma=0.1), 15)
    ours = basin(schedule, 15 * SPE)
    assert ours[round(4.5 * SPE)] == pytest.approx(ALPHA * 0.1, rel=REL, abs=0)  # dropped mid-epoch 4
    assert per_epoch[5] == ALPHA  # torch's last_epoch never equals 4.5


@pytest.mark.parametrize("budget", [15, 40])
@pytest.mark.parametrize("eta_min", [0.0, 0.05])
def test_cosine_is_cosine_annealing_lr_stepped_per_batch(budget, eta_min):
    steps = budget * SPE
    theirs = lrs(lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=ALPHA * eta_min), steps)
    ours = basin(make("cosine", budget, eta_min=eta_min), steps)
    assert ours == pytest.approx(theirs, rel=REL, abs=0)
    assert ours[0] == ALPHA and ours[-1] == pytest.approx(ALPHA * eta_min, rel=REL, abs=0)


PER_BATCH = "per batch, T_0 in steps"
FRACTIONAL = "step(epoch + i / steps_per_epoch), T_0 in epochs"


@pytest.mark.parametrize("driven", [PER_BATCH, FRACTIONAL])
@pytest.mark.parametrize("t0, t_mult, eta_min", [(1, 2, 0.0), (2, 2, 0.05), (1, 3, 0.0), (3, 1, 0.05)])
def test_warm_restarts_is_cosine_annealing_warm_restarts(driven, t0, t_mult, eta_min):
    steps = 15 * SPE
    if driven == PER_BATCH:
        theirs = lrs(lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=t0 * SPE, T_mult=t_mult, eta_min=ALPHA * eta_min), steps)
    else:
        theirs = lrs(lambda opt: lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=t0, T_mult=t_mult, eta_min=ALPHA * eta_min), steps, step=lambda sched, t: sched.step(t / SPE))
    ours = basin(make("warm-restarts", 15, t0=t0, t_mult=t_mult, eta_min=eta_min), steps)
    assert ours == pytest.approx(theirs, rel=REL, abs=0)

    expected = restart_steps(t0, t_mult, steps)
    assert len(expected) >= 3
    for lr in (ours, theirs):  # η jumps back to η_max on exactly the same steps
        assert [t for t in range(1, steps + 1) if lr[t] > lr[t - 1]] == expected
        assert [lr[t] for t in expected] == pytest.approx([ALPHA] * len(expected), rel=REL, abs=0)


@pytest.mark.parametrize("t0, t_mult, budget, ends", [
    (100, 2, 1500, [100, 300, 700, 1500]),  # the paper's example (SuppFigure 1)
    (1, 3, 13, [1, 4, 13]),
    (3, 1, 15, [3, 6, 9, 12, 15]),
])
def test_periods_are_where_torch_restarts(t0, t_mult, budget, ends):
    schedule = WarmRestarts(budget, t0=t0, t_mult=t_mult)
    assert schedule.period_ends() == ends
    opt = torch.optim.SGD([torch.zeros(1, dtype=torch.float64, requires_grad=True)], lr=ALPHA)
    torch_sched = lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=t0, T_mult=t_mult)  # stepped once per epoch
    restarts = []
    for epoch in range(1, budget + 1):
        opt.step()
        torch_sched.step()
        period = schedule.period(epoch)
        assert (period.start, period.length) == (epoch - torch_sched.T_cur, torch_sched.T_i)
        assert period.index == sum(end <= epoch for end in ends)
        if torch_sched.T_cur == 0:
            restarts.append(epoch)
    assert restarts == ends
