"""Which test examples a run got wrong (``EpochResult.test_wrong``): recorded on the epochs a trial's
value can come from, the same bits from a single run and from a pack, their mean the recorded error."""

from __future__ import annotations

import numpy as np
import pytest

from storage.evidence.paired import decode_wrong
from storage.schema import trial_record
from trainers.data import load
from trainers.packed import train_pack
from trainers.run import RunConfig, encode_wrong, train

RESTARTS = dict(schedule="warm-restarts", schedule_params={"t0": 1, "t_mult": 2})  # periods end at epochs 1, 3


def config(**kw) -> RunConfig:
    base = dict(dataset="digits", model="cnn", batch_size=64, seed=1, dtype="float64", epochs=4, curve_test=100,
                optimizer="adamw", lr=1e-3, wd_norm=0.05, **RESTARTS)
    return RunConfig(**{**base, **kw})


def test_encode_wrong_packs_one_bit_per_example_and_decodes_back():
    rng = np.random.default_rng(0)
    for n in (1, 7, 8, 9, 360, 20000):
        bits = rng.random(n) < 0.3
        text = encode_wrong(bits)
        assert len(text) == 4 * (((n + 7) // 8 + 2) // 3)  # base64 of ⌈n/8⌉ bytes: ≈ n/6 characters
        assert np.array_equal(decode_wrong(text, n), bits)
    with pytest.raises(ValueError, match="bytes"):
        decode_wrong(encode_wrong(np.ones(16, bool)), 8)
    with pytest.raises(ValueError, match="past"):
        decode_wrong(encode_wrong(np.ones(16, bool)), 12)


def test_value_epochs_record_the_wrong_examples_and_their_mean_is_the_error():
    n_test = load("digits").x_test.shape[0]
    results = list(train(config()))
    by_epoch = {r.epoch: r for r in results}
    assert sorted(e for e, r in by_epoch.items() if r.test_wrong is not None) == [1, 3, 4]  # period ends, last
    for e in (1, 3, 4):
        mask = decode_wrong(by_epoch[e].test_wrong, n_test)
        assert mask.mean() == by_epoch[e].test_error  # the same count over the whole test set
    rec = trial_record([r.to_json() for r in results])
    assert rec.user_attrs["recommended_epoch"] == 3
    assert rec.user_attrs["test_wrong"] == by_epoch[3].test_wrong
    assert decode_wrong(rec.user_attrs["test_wrong"], n_test).mean() == rec.value


def test_a_pack_records_the_same_bits_as_the_single_runs():
    members = [config(), config(optimizer="adam", lr=2e-3, wd_norm=0.1, epochs=3), config(lr=4e-3, wd_norm=0.5)]
    packed = list(train_pack(members))
    for i, member in enumerate(members):
        single = {r.epoch: r for r in train(member)}
        mine = {epoch[i].epoch: epoch[i] for epoch in packed if i in epoch}
        assert sorted(mine) == sorted(single)
        for e, r in single.items():
            assert mine[e].test_wrong == r.test_wrong, (i, e)  # identical masks (float64: the same argmax)
        assert single[member.epochs].test_wrong is not None


def test_no_mask_under_a_loss_metric_or_for_a_diverged_run():
    for r in train(config(metric="test_loss", epochs=3)):
        assert r.test_wrong is None
    assert all(r.test_wrong is None for r in train_pack([config(metric="test_loss", epochs=1)] * 2) for r in r.values())
    diverged = list(train(config(optimizer="sgd", lr=1e6, epochs=3, schedule="cosine", schedule_params={})))
    assert diverged[-1].diverged and diverged[-1].test_wrong is None
    rec = trial_record([r.to_json() for r in diverged])
    assert "test_wrong" not in rec.user_attrs
    loss = trial_record([r.to_json() for r in train(config(metric="test_loss", epochs=1))], metric="test_loss")
    assert "test_wrong" not in loss.user_attrs
