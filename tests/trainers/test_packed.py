"""Packed training is the same run as ``trainers.run.train``, member by member (float64, to 1e-10).

Every test trains a pack and the unpacked run of each member with ``trainers.run.train`` itself,
and compares per-epoch results, final parameters and BatchNorm statistics.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from trainers import models, pack_models
from trainers.packed import PackState, check_pack, train_pack
from trainers.run import RunConfig, RunState, train

RESTARTS = dict(schedule="warm-restarts", schedule_params={"t0": 1, "t_mult": 2})  # restarts at epochs 1, 3


def configs(members, **shared):
    base = dict(dataset="digits", model="cnn", batch_size=32, seed=3, dtype="float64", epochs=7, **RESTARTS)
    base.update(shared)
    return [RunConfig(**{**base, **m}) for m in members]


def close(a: float, b: float, rel: float = 1e-10) -> bool:
    return a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= rel * max(abs(a), abs(b), 1e-12))


def assert_same_runs(members: list[RunConfig], rel: float = 1e-10) -> PackState:
    """Each member's epochs, parameters and buffers equal its unpacked run's."""
    state = PackState()
    per_epoch = list(train_pack(members, state))
    for i, config in enumerate(members):
        ref_state = RunState()
        ref = list(train(config, ref_state))
        mine = [epoch[i] for epoch in per_epoch if i in epoch]
        assert [r.epoch for r in mine] == [r.epoch for r in ref], (i, config)
        for a, b in zip(ref, mine):
            assert a.diverged == b.diverged and a.period_end == b.period_end
            for key in ("train_loss", "train_error", "test_error", "test_loss", "eta", "wd", "val_error", "val_loss"):
                x, y = getattr(a, key), getattr(b, key)
                if x is None or y is None:
                    assert x is None and y is None, (i, key)
                    continue
                assert close(x, y, rel) or (math.isnan(x) and math.isnan(y)), (i, config.optimizer, a.epoch, key, x, y)
        if not ref[-1].diverged:
            ref_params = ref_state.model.state_dict()
            for name, value in state.final[i].items():
                torch.testing.assert_close(value, ref_params[name], rtol=rel, atol=rel * 1e-3, msg=f"{i} {name}")
    return state


ADAM_FAMILY = [
    dict(optimizer="adam", lr=2e-3, wd_norm=0.1),
    dict(optimizer="adamw", lr=1e-3, wd_norm=0.05),
    dict(optimizer="adamw", lr=4e-3, wd_norm=0.5),
    dict(optimizer="adamw-torch", lr=1e-3, wd_norm=0.5),
    dict(optimizer="adam", lr=5e-4, wd_norm=0.025),
    dict(optimizer="adamw", lr=2e-3, wd_norm=0.0),
]
SGD_FAMILY = [
    dict(optimizer="sgd", lr=0.05, wd_norm=0.05),
    dict(optimizer="sgdw", lr=0.1, wd_norm=0.1),
    dict(optimizer="sgdw", lr=0.02, wd_norm=0.5),
    dict(optimizer="sgd", lr=0.2, wd_norm=0.01),
    dict(optimizer="sgdw", lr=0.05, wd_norm=0.0),
    dict(optimizer="sgd", lr=0.01, wd_norm=0.2),
]


@pytest.mark.parametrize("model", ["cnn", "mlp"])
@pytest.mark.parametrize("members, shared", [
    (ADAM_FAMILY, {}),
    (SGD_FAMILY, {"momentum_form": "paper"}),
    (SGD_FAMILY, {"momentum_form": "torch"}),
], ids=["adam-family", "sgd-paper-momentum", "sgd-torch-momentum"])
def test_every_member_is_its_unpacked_run(model, members, shared):
    """≥ 200 steps (digits, batch 32: 31 per epoch × 7), a warm restart inside η_t and λ, K = 6 mixed members."""
    assert_same_runs(configs(members, model=model, **shared))


def test_members_with_different_budgets_and_schedules_share_a_pack():
    """... and a validation split: every member's validation curve is its unpacked run's."""
    members = configs([
        dict(optimizer="adamw", lr=1e-3, wd_norm=0.05, epochs=2, schedule="cosine", schedule_params={}),
        dict(optimizer="adamw", lr=1e-3, wd_norm=0.05, epochs=5, schedule="cosine", schedule_params={}),
        dict(optimizer="adam", lr=2e-3, wd_norm=0.1, epochs=7),
        dict(optimizer="adamw", lr=3e-3, wd_norm=0.2, epochs=4, schedule="step-drop", schedule_params={}),
    ], validation=0.1)
    assert_same_runs(members)
    first = list(train(members[0]))
    assert first[-1].val_error is not None and first[-1].val_error != first[-1].test_error


def test_a_pack_scores_its_curves_on_curve_test_as_its_members_runs_do():
    """An epoch that ends any member's budget (or restart period) scores the whole test set for every
    member (the pack makes one pass); the other epochs score the first curve_test examples, as the
    unpacked run does; every member's value epochs are its unpacked run's."""
    cosine = dict(schedule="cosine", schedule_params={})
    members = configs([dict(optimizer="adamw", lr=1e-3, wd_norm=0.05, epochs=2, **cosine),
                       dict(optimizer="adam", lr=2e-3, wd_norm=0.1, epochs=4, **cosine)], n_test=400, curve_test=60)
    per_epoch = list(train_pack(members))
    cheap = [{r.epoch: r.test_error for r in train(c)} for c in members]
    whole = [{r.epoch: r.test_error for r in train(dataclasses.replace(c, curve_test=None))} for c in members]
    assert close(per_epoch[0][0].test_error, cheap[0][1]) and close(per_epoch[0][1].test_error, cheap[1][1])
    assert cheap[1][1] != whole[1][1]  # epoch 1 scores 60 examples, not 400
    assert close(per_epoch[1][0].test_error, whole[0][2]) and close(per_epoch[1][1].test_error, whole[1][2])
    assert close(per_epoch[2][1].test_error, cheap[1][3]) and close(per_epoch[3][1].test_error, whole[1][4])


def test_an_exploding_member_poisons_nothing():
    """A member with an absurd α diverges at once (chance error, dropped); the others are bit for bit
    the pack they would have been without it, and equal their unpacked runs."""
    good = [dict(optimizer="sgdw", lr=0.05, wd_norm=0.1), dict(optimizer="sgd", lr=0.1, wd_norm=0.05),
            dict(optimizer="sgdw", lr=0.2, wd_norm=0.5)]
    bad = dict(optimizer="sgd", lr=1e6, wd_norm=0.1)
    with_bad = configs([good[0], bad, *good[1:]], epochs=3)
    state = assert_same_runs(with_bad)
    results = list(train_pack(with_bad))
    exploded = [epoch[1] for epoch in results if 1 in epoch]
    assert len(exploded) == 1 and exploded[0].diverged and exploded[0].test_error == pytest.approx(0.9)
    without = PackState()
    clean = list(train_pack(configs(good, epochs=3), without))
    for j, i in enumerate((0, 2, 3)):
        assert [e[i] .test_error for e in results if i in e] == [e[j].test_error for e in clean]
        for name, value in state.final[i].items():
            assert torch.equal(value, without.final[j][name]), name


def test_float32_pack_agrees_with_unpacked_runs_to_rounding():
    members = configs(ADAM_FAMILY[:3], dtype="float32", epochs=3, model="cnn")
    per_epoch = list(train_pack(members))
    for i, config in enumerate(members):
        ref = list(train(config))
        for a, b in zip(ref, (e[i] for e in per_epoch)):
            assert abs(a.train_loss - b.train_loss) < 1e-3 * a.train_loss
            assert abs(a.test_error - b.test_error) <= 0.01  # 8 of 809 test images: rounding drift only


def test_members_must_share_what_a_pack_shares():
    with pytest.raises(ValueError, match="these differ: seed"):
        check_pack(configs([dict(seed=0), dict(seed=1)]))
    with pytest.raises(ValueError, match="optimizer family"):
        check_pack(configs([dict(optimizer="sgd"), dict(optimizer="adamw")]))


class Custom(nn.Module):
    """A module with no hand-stacked form: BatchNorm1d, dropout and a skip connection."""

    def __init__(self):
        super().__init__()
        self.a, self.bn, self.b = nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 10)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        h = self.drop(torch.relu(self.bn(self.a(x.flatten(1)))))
        return self.b(h + h.mean(1, keepdim=True))


def test_func_pack_runs_any_module_member_by_member():
    """torch.func path: train-mode outputs (dropout's random numbers shared, as under one seed) and
    BatchNorm statistics of every member equal the module's own."""
    torch.manual_seed(0)
    module = Custom().double()
    x = torch.randn(16, 1, 8, 8, dtype=torch.float64)
    packed = pack_models.pack(module, 3, x[:4])
    assert isinstance(packed, pack_models.FuncPack)
    with torch.no_grad():
        packed.flat[1].mul_(1.5)  # members now differ
    member1 = Custom().double()
    member1.load_state_dict(packed.member_state_dict(1))
    packed.train(), member1.train()
    rng = torch.random.get_rng_state()
    out = packed(x)
    torch.random.set_rng_state(rng)
    ref = member1(x)
    torch.testing.assert_close(out[1], ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(packed.member_state_dict(1)["bn.running_mean"], member1.bn.running_mean)
    assert int(packed.member_state_dict(1)["bn.num_batches_tracked"]) == 1


def test_shake_shake_packs_through_torch_func_and_unknown_forms_do_not():
    torch.manual_seed(0)
    shake = models.build("shake26-2x64d", (3, 32, 32), 10)
    assert isinstance(pack_models.pack(shake, 2, torch.randn(2, 3, 32, 32)), pack_models.FuncPack)

    class NotVmappable(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, x):
            return x.flatten(1)[:, :3] * self.w if float(self.w.sum()) > 0 else x  # data-dependent control flow

    assert pack_models.pack(NotVmappable(), 2, torch.randn(2, 3)) is None
