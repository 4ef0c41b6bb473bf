"""What an evidence read decodes (storage.panel.evidence_attrs): the validation value and a loss's standard
error only where the studies can hold them — and a study with a validation split is still selected on it."""

from __future__ import annotations

import pandas as pd
import pytest

import storage
from storage import panel
from tests.planted import raw_wd, study_attrs, trial_attrs

ALPHAS, LAMBDAS, SEEDS = [1e-3, 2e-3, 4e-3], [0.025, 0.05, 0.1], [0, 1]


@pytest.mark.parametrize("n_val, metric, expect", [
    ([0, 0], [None, "error"], ("diverged", "wd")),
    ([0, 500], [None, None], ("diverged", "wd", "val_value")),
    ([0, None], [None, None], ("diverged", "wd", "val_value")),  # a study that did not record n_val may have a split
    ([0, 0], ["error", "loss"], ("diverged", "wd", "value_se")),
])
def test_evidence_attrs_follow_the_studies_attrs(n_val, metric, expect):
    meta = pd.DataFrame({"study": ["a", "b"], "n_val": n_val, "metric": metric})
    assert panel.evidence_attrs(meta) == expect


def test_a_validation_split_is_read_and_selects(rdb, sweep_name):
    """Test error is lowest at (α₀, λ₀), validation error at (α₂, λ₂): with n_val recorded > 0 the best
    setting is the validation's. A study recorded with n_val = 0 is answered without validation values —
    the same answer whether it is read alone or beside a study that has a split."""
    for optimizer, n_val in (("sgd", 300), ("sgdw", 0)):
        study = storage.ensure_study(rdb, sweep=sweep_name, optimizer=optimizer, schedule="cosine",
                                     attrs=study_attrs(grid_size=18, n_val=n_val))
        dists = storage.grid_distributions(ALPHAS, LAMBDAS, [1], SEEDS)
        for i, lr in enumerate(ALPHAS):
            for j, wd_norm in enumerate(LAMBDAS):
                for seed in SEEDS:
                    test_err = 0.10 + 0.02 * (i + j) + 0.001 * seed
                    attrs = {**trial_attrs(test_err, 1, raw_wd(wd_norm, 1)),
                             "val_value": 0.10 + 0.02 * (4 - i - j) + 0.001 * seed}
                    storage.record_trial(study, storage.GridPoint(optimizer, "cosine", lr, wd_norm, 1, seed), dists,
                                         state="COMPLETE", value=test_err, intermediate={1: test_err}, user_attrs=attrs)
    table = storage.best(rdb, sweep=sweep_name).set_index("optimizer")
    assert table.loc["sgd", "selection"] == "validation"
    assert (table.loc["sgd", "lr"], table.loc["sgd", "wd_norm"]) == (ALPHAS[2], LAMBDAS[2])
    assert table.loc["sgdw", "selection"] == "cross_fit"  # its runs' val_value is not read as a split's
    alone = storage.best(rdb, sweep=sweep_name, optimizer="sgdw")
    pd.testing.assert_frame_equal(alone.set_index("optimizer"), table.loc[["sgdw"]], check_exact=True)
