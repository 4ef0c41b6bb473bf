"""The training run: learning, divergence, determinism, restarts and the `basin train` CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from trainers.run import RunConfig, train
from trainers.schedules import normalized_weight_decay

BASIN = [str(Path(sys.executable).with_name("basin"))]


def run(**kw):
    base = dict(dataset="digits", model="cnn", optimizer="adamw", lr=1e-3, wd_norm=0.025, schedule="cosine",
                epochs=3, batch_size=64, seed=0)
    base.update(kw)
    return list(train(RunConfig(**base)))


def test_digits_adamw_learns_clearly_better_than_chance():
    results = run(epochs=4)
    assert [r.epoch for r in results] == [1, 2, 3, 4]
    assert results[-1].test_error < 0.20  # chance is 0.9
    for r in results:
        assert 0.0 <= r.train_error <= 1.0 and 0.0 <= r.test_error <= 1.0
        assert math.isfinite(r.train_loss) and not r.diverged


def test_absurd_learning_rate_is_reported_as_diverged_quickly():
    results = run(optimizer="sgd", lr=1e6, epochs=20)
    assert len(results) < 20 and results[-1].diverged
    assert results[-1].test_error == pytest.approx(0.9)  # chance: 1 − 1/10


def test_same_seed_same_numbers_different_seed_different():
    a, b, c = run(seed=3), run(seed=3), run(seed=4)
    key = lambda rs: [(r.train_loss, r.test_error, r.test_loss) for r in rs]  # noqa: E731
    assert key(a) == key(b)
    assert key(a) != key(c)


def test_normalised_weight_decay_and_eta_are_reported():
    results = run(epochs=3, wd_norm=0.05, batch_size=64)
    from trainers.data import load

    n_train = load("digits").n_train
    assert results[0].wd == pytest.approx(normalized_weight_decay(0.05, 64, n_train, 3))
    etas = [r.eta for r in results]
    assert etas == sorted(etas, reverse=True) and etas[-1] < 0.05  # cosine anneals towards 0


def test_warm_restarts_change_lambda_and_mark_period_ends():
    # T_0 = 1, T_mult = 2: periods [0,1), [1,3), [3,7) → λ ∝ 1/√T_i changes at each restart.
    results = run(schedule="warm-restarts", schedule_params={"t0": 1, "t_mult": 2}, epochs=7)
    assert [r.epoch for r in results if r.period_end] == [1, 3, 7]
    wd = [r.wd for r in results]
    assert wd[0] == pytest.approx(wd[1] * math.sqrt(2)) and wd[2] == pytest.approx(wd[3] * math.sqrt(2))
    assert results[1].eta > 0.9 * results[0].eta  # η jumped back up after the restart


def test_curve_test_scores_the_curve_on_a_prefix_and_every_value_epoch_on_the_whole_test_set():
    full, cheap, prefix = run(n_test=700), run(n_test=700, curve_test=100), run(n_test=100)
    assert [r.train_loss for r in cheap] == [r.train_loss for r in full]  # training is untouched
    assert [r.test_error for r in cheap[:-1]] == [r.test_error for r in prefix[:-1]]  # the first 100 examples
    assert cheap[-1].test_error == full[-1].test_error  # the last epoch: all 700
    restarts = dict(schedule="warm-restarts", schedule_params={"t0": 1, "t_mult": 2}, epochs=4)
    wr, wr_full, wr_prefix = run(curve_test=50, **restarts), run(**restarts), run(n_test=50, **restarts)
    ends = [r.epoch for r in wr if r.period_end]
    assert ends == [1, 3]
    for a, b, c in zip(wr, wr_full, wr_prefix):  # period ends and the last epoch on all, epoch 2 on 50
        assert a.test_error == (b.test_error if a.period_end or a.epoch == 4 else c.test_error)


@pytest.mark.parametrize(
    "kw, field",
    [
        (dict(dataset="mnist"), "dataset"),
        (dict(model="resnet"), "model"),
        (dict(optimizer="lamb"), "optimizer"),
        (dict(lr=-1.0), "lr"),
        (dict(wd_norm=float("nan")), "wd_norm"),
        (dict(epochs=0), "epochs"),
        (dict(schedule="warm-restarts", schedule_params={"t0": 0}), "schedule: t0"),
        (dict(schedule="cosine", schedule_params={"t0": 3}), "schedule"),
        (dict(optimizer="adam", betas=(1.5, 0.9)), "optimizer: betas"),
        (dict(n_test=0), "n_test"),
        (dict(curve_test=2.5), "curve_test"),
    ],
)
def test_bad_config_names_the_field(kw, field):
    with pytest.raises(ValueError, match=field):
        run(**kw)


def test_cli_json_lines_only_on_stdout():
    out = subprocess.run(
        BASIN + ["train", "--dataset", "digits", "--model", "cnn", "--optimizer", "adamw", "--lr", "1e-3",
                 "--wd-norm", "0.025", "--schedule", "cosine", "--epochs", "2", "--seed", "0", "--json"],
        capture_output=True, text=True, check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    for key in ("epoch", "train_loss", "train_error", "test_error", "test_loss", "eta", "wd", "seconds"):
        assert all(key in r for r in rows), key


def test_cli_bad_input_is_one_line_and_exit_2():
    out = subprocess.run(BASIN + ["train", "--lr", "-3", "--epochs", "1"], capture_output=True, text=True)
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "lr" in out.stderr
    assert out.stdout == ""
