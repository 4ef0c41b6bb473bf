"""AdamW vs Adam on one shared test set (storage.evidence.paired): the test set resampled once per draw
for both sides, the seeds paired as before.

Planted data: both optimizers' runs see the same test examples, each with a difficulty z_i common to
every run (as real test sets have hard examples); a run gets example i wrong with probability
σ(a + u + b·z_i), a the cell's level, u the seed's. The decoupled optimizer's best cell is 10% better
than the coupled one's, over the test *population* (the truth the interval is for).
"""

from __future__ import annotations

import numpy as np
import pytest

import storage
from storage import evidence
from storage.evidence import paired
from storage.sql import fetch_attrs
from tests.planted import raw_wd, study_attrs, trial_attrs
from trainers.run import encode_wrong

GH_X, GH_W = np.polynomial.hermite_e.hermegauss(80)  # E over a standard normal


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def population_error(a: float, scale: float) -> float:
    """E σ(a + scale·ξ), ξ ~ N(0, 1): a cell's error over the test population and its seeds."""
    return float((sigmoid(a + scale * GH_X) * GH_W).sum() / GH_W.sum())


def level_for(error: float, scale: float) -> float:
    """The a whose population error is ``error`` (bisection)."""
    lo, hi = -30.0, 10.0
    for _ in range(80):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if population_error(mid, scale) < error else (lo, mid)
    return (lo + hi) / 2


def planted_sides(rng, *, n=5000, b=5.0, su=0.05, seeds=3, cells=16, error=0.03, improvement=0.10):
    """[(E, masks)] for the coupled and the decoupled optimizer on one test set; one best cell each,
    the others 0.35–0.65 logits worse. Returns (sides, the true relative improvement)."""
    z = rng.standard_normal(n)  # the examples' difficulty, shared by every run of both optimizers
    scale = np.hypot(b, su)
    errors = (error, error * (1 - improvement))
    out = []
    for e in errors:
        a = level_for(e, scale)
        offset = 0.35 + rng.uniform(0, 0.3, cells)
        offset[rng.integers(cells)] = 0.0
        E, masks = np.empty((cells, seeds)), {}
        for c in range(cells):
            for s in range(seeds):
                wrong = rng.random(n) < sigmoid(a + offset[c] + rng.normal(0, su) + b * z)
                E[c, s], masks[(c, s)] = wrong.mean(), wrong
        out.append((E, masks))
    truth = (population_error(level_for(errors[0], scale), scale)
             - population_error(level_for(errors[1], scale), scale)) / population_error(level_for(errors[0], scale), scale)
    return out, truth


def sides_of(planted, n, draws, rng):
    out = []
    for E, masks in planted:
        panel = evidence.Panel(E, False, n, np.arange(4) + 1.0, np.arange(len(E) // 4) + 1.0, tuple(range(E.shape[1])))
        out.append(paired.Side(panel, evidence.best_error(panel, draws, rng), masks))
    return out


def test_paired_interval_covers_the_truth_and_is_narrower_than_the_unpaired_one():
    """≥ 100 replicates: nominal 95% covers r in ≥ 90%, at ≤ 0.7× the unpaired width (measured: coverage
    0.95–0.98, width 0.52–0.55× with 3 seeds; docs/evidence.md)."""
    rng = np.random.default_rng(7)
    reps, n = 100, 5000
    covered, ratio = 0, []
    for _ in range(reps):
        planted, truth = planted_sides(rng, n=n)
        draws = evidence.seed_draws(range(3), 500, rng)
        c, d = sides_of(planted, n, draws, rng)
        both = paired.compare_paired(c, d, draws, rng)
        alone = evidence.compare(c.best, d.best)
        assert both.paired_test_set and both.sources == (paired.PAIRED_TEST_SET, "seeds")
        assert both.improvement == pytest.approx(alone.improvement)  # the point estimate does not change
        covered += both.ci[0] <= truth <= both.ci[1]
        ratio.append((both.ci[1] - both.ci[0]) / (alone.ci[1] - alone.ci[0]))
    assert covered / reps >= 0.90, covered
    assert np.median(ratio) <= 0.70, np.median(ratio)


def test_one_seed_and_naive_selection_pair_the_test_set_too():
    rng = np.random.default_rng(3)
    planted, truth = planted_sides(rng, seeds=1, n=4000)
    draws = evidence.seed_draws([0], 400, rng)
    c, d = sides_of(planted, 4000, draws, rng)
    both, alone = paired.compare_paired(c, d, draws, rng), evidence.compare(c.best, d.best)
    assert c.best.method == "naive" and both.paired_test_set and both.sources == (paired.PAIRED_TEST_SET,)
    assert both.ci[1] - both.ci[0] < alone.ci[1] - alone.ci[0]


def test_reweighting_only_the_union_is_the_poisson_bootstrap_of_every_example():
    """Weights on the examples some run got wrong plus one Poisson for the rest: the errors' mean and
    spread are those of the Poisson bootstrap, e and e(1 − e)/n for one run."""
    rng = np.random.default_rng(0)
    n, p = 4000, 0.05
    wrong = rng.random((n, 1)) < p
    x = paired.reweighted_errors(wrong, 4000, rng)[:, 0]
    e = wrong.mean()
    assert x.mean() == pytest.approx(e, rel=0.01)
    assert x.std() == pytest.approx(np.sqrt(e * (1 - e) / n), rel=0.05)
    assert np.allclose(paired.reweighted_errors(np.zeros((50, 2), bool), 10, rng), 0.0)
    assert paired.POISSON_TABLE.mean() == pytest.approx(1.0) and paired.POISSON_TABLE.var() == pytest.approx(1.0, abs=1e-4)


def test_falls_back_with_a_note_where_masks_are_missing_or_wrong():
    rng = np.random.default_rng(1)
    planted, _ = planted_sides(rng, n=2000, cells=8)
    draws = evidence.seed_draws(range(3), 200, rng)
    c, d = sides_of(planted, 2000, draws, rng)
    alone = evidence.compare(c.best, d.best)
    cases = {
        "not read": paired.Side(d.panel, d.best),
        "has no test_wrong": paired.Side(d.panel, d.best, {}),
        "does not match": paired.Side(d.panel, d.best, {k: ~m for k, m in d.masks.items()}),
        "examples, not n_test": paired.Side(d.panel, d.best, {k: m[:-1] for k, m in d.masks.items()}),
    }
    for words, side in cases.items():
        out = paired.compare_paired(c, side, draws, rng)
        assert not out.paired_test_set and out.sources == ("test set", "seeds")
        assert (out.improvement, out.ci) == (alone.improvement, alone.ci)  # today's independent form
        assert any(n.startswith("test set not paired") and words in n for n in out.notes), out.notes
    other = evidence.Panel(d.panel.E, False, 3000, d.panel.alphas, d.panel.wd_norms, d.panel.seeds)
    out = paired.compare_paired(c, paired.Side(other, d.best, d.masks), draws, rng)
    assert not out.paired_test_set and any("differ in size" in n for n in out.notes)


def _write(rdb, sweep, optimizer, E, masks, n, *, lrs, wds, keep_masks=True):
    """One study of the planted panel E (cells row-major over lrs × wds, seed columns) through record_trial."""
    attrs = study_attrs(n_test=n, grid_size=E.size)
    study = storage.ensure_study(rdb, sweep=sweep, optimizer=optimizer, schedule="cosine", attrs=attrs)
    dists = storage.grid_distributions(lrs, wds, [4], list(range(E.shape[1])))
    for c in range(len(E)):
        lr, wd = lrs[c // len(wds)], wds[c % len(wds)]
        for s in range(E.shape[1]):
            user = trial_attrs(float(E[c, s]), 4, raw_wd(wd, 4))
            if keep_masks:
                user["test_wrong"] = encode_wrong(masks[(c, s)])
            point = storage.GridPoint(optimizer, "cosine", lr, wd, 4, s)
            storage.record_trial(study, point, dists, state="COMPLETE", value=float(E[c, s]),
                                 intermediate={e: v for e, v in enumerate(user["test_error"], 1)}, user_attrs=user)


LRS, WDS = [1e-3, 2e-3, 4e-3, 8e-3], [0.0125, 0.025, 0.05, 0.1]


def test_masks_round_trip_and_the_headline_pairs_the_test_set(rdb, sweep_name):
    rng = np.random.default_rng(5)
    n = 3000
    (Ec, mc), (Ed, md) = planted_sides(rng, n=n)[0]
    _write(rdb, sweep_name, "adam", Ec, mc, n, lrs=LRS, wds=WDS)
    _write(rdb, sweep_name, "adamw", Ed, md, n, lrs=LRS, wds=WDS)
    frame = storage.trials_frame(rdb, sweep_name)
    assert "test_wrong" not in frame  # never in the bulk frame
    got = fetch_attrs(rdb.engine, frame["trial_id"].tolist(), ["test_wrong"])
    for row in frame.itertuples():
        cell = LRS.index(row.lr) * len(WDS) + WDS.index(row.wd_norm)
        masks = mc if row.optimizer == "adam" else md
        assert np.array_equal(paired.decode_wrong(got[row.trial_id]["test_wrong"], n), masks[(cell, row.seed)])
    table, heads = storage.best_and_headline(rdb, sweep_name)
    h = heads.iloc[0]
    assert (h.decoupled, h.coupled) == ("adamw", "adam")
    assert h.paired_test_set and h.paired and h.sources == "test set (paired) + seeds"
    assert "test set paired" in h.notes
    assert h.improvement_lo <= h.improvement <= h.improvement_hi
    pd_equal = storage.headline(rdb, sweep_name)
    assert pd_equal.iloc[0].improvement_lo == h.improvement_lo and pd_equal.iloc[0].paired_test_set


def test_a_study_without_masks_falls_back_with_a_note(rdb, sweep_name):
    rng = np.random.default_rng(6)
    n = 3000
    (Ec, mc), (Ed, md) = planted_sides(rng, n=n)[0]
    _write(rdb, sweep_name, "adam", Ec, mc, n, lrs=LRS, wds=WDS, keep_masks=False)  # recorded before test_wrong
    _write(rdb, sweep_name, "adamw", Ed, md, n, lrs=LRS, wds=WDS)
    h = storage.headline(rdb, sweep_name).iloc[0]
    assert not h.paired_test_set and h.paired and h.sources == "test set + seeds"
    assert "test set not paired" in h.notes and "no test_wrong" in h.notes
