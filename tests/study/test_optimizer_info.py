"""The optimizer table reaches storage through the study attrs; the driver's unpacked fallback is typed.

* the driver's study attrs are the ones ``storage.schema`` declares, ``optimizer_info`` the table's row;
* the studies frame carries the row as columns, and a study recorded before the attr reads the same
  facts from storage's legacy fallback, which equals the table;
* a pack whose model has no packed form raises ``NoPackedForm`` and the worker trains its members one by one.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import storage
from storage import analysis, frames, schema
from study import driver
from study.preflight import Prepared
from study.spec import parse_spec
from tests.planted import study_attrs
from trainers import optimizers
from trainers.packed import NoPackedForm
from trainers.run import DatasetInfo, RunConfig

SPEC = """
name = "info"
dataset = "digits"
model = "mlp"
budgets = [2]
seeds = [0]

[[schedules]]
name = "cosine"

[optimizers.adam]
lr = [0.001]
wd_norm = [0.05]

[optimizers.adamw-torch]
lr = [0.001]
wd_norm = [0.05]
"""


def prepared() -> Prepared:
    info = DatasetInfo(n_train=1000, n_test=297, num_classes=10, input_shape=(64,), n_val=0)
    return Prepared(SimpleNamespace(info=info, chance=0.9))


def test_the_legacy_fallback_is_the_table():
    assert schema.LEGACY_OPTIMIZER_INFO == {name: row.attr() for name, row in optimizers.TABLE.items()}
    assert set(schema.OPTIMIZER_INFO) == set(optimizers.TABLE["adamw"].attr())


def test_the_driver_records_the_table_row_in_every_study(tmp_path):
    spec = parse_spec(SPEC)
    rdb = storage.open_storage(f"sqlite:///{tmp_path}/s.db")
    attrs = driver.study_attrs(spec, SPEC, "test", prepared(), "adam", spec.schedules[0])
    declared = [*schema.STUDY_ATTRS, *schema.OPTIONAL_STUDY_ATTRS]
    assert list(attrs) == [k for k in declared if k in attrs] and set(schema.STUDY_ATTRS) <= set(attrs)
    studies = driver.open_studies(spec, rdb, SPEC, "test", prepared())
    for (optimizer, _), study in studies.items():
        assert study.user_attrs["optimizer_info"] == optimizers.get(optimizer).attr()
    meta = storage.studies_frame(rdb).set_index("optimizer")
    assert meta.loc["adamw-torch", "decay_form"] == "lr-coupled" and meta.loc["adamw-torch", "pair"] == "adamw"
    assert meta.loc["adam", "label"] == "Adam+L2" and meta.loc["adam", "family"] == "adam"
    assert analysis.comparison_pairs(meta.reset_index()) == (("adamw", "adam"), ("adamw", "adamw-torch"))


def test_a_study_recorded_before_the_attr_reads_the_legacy_row_and_a_recorded_row_wins(tmp_path):
    rdb = storage.open_storage(f"sqlite:///{tmp_path}/old.db")
    storage.ensure_study(rdb, sweep="old", optimizer="sgd", schedule="cosine", attrs=study_attrs())
    recorded = {**optimizers.get("sgdw").attr(), "label": "SGDW (renamed)"}
    storage.ensure_study(rdb, sweep="old", optimizer="sgdw", schedule="cosine",
                         attrs=study_attrs(optimizer_info=recorded))
    meta = storage.studies_frame(rdb)
    rows = meta.set_index("optimizer")
    assert rows.loc["sgd", "decay_form"] == "coupled" and rows.loc["sgd", "pair"] == "sgdw"  # legacy
    assert rows.loc["sgdw", "label"] == "SGDW (renamed)"  # what the study recorded
    assert analysis.comparison_pairs(meta) == (("sgdw", "sgd"),)
    assert set(analysis.comparison_pairs()) == {("adamw", "adam"), ("sgdw", "sgd"), ("adamw", "adamw-torch")}
    assert set(frames.OPTIMIZER_COLS) <= set(meta.columns)


def test_a_pack_without_a_packed_form_runs_its_members_one_by_one(monkeypatch):
    import trainers.packed
    import trainers.run

    def no_pack(configs):
        raise NoPackedForm("model 'x' has no packed form here; run it unpacked (pack = 1)")
        yield  # a generator, like train_pack

    def one_run(config):
        yield SimpleNamespace(to_json=lambda: {"lr": config.lr})

    monkeypatch.setattr(trainers.packed, "train_pack", no_pack)
    monkeypatch.setattr(trainers.run, "train", one_run)
    reports = []
    runs = {0: RunConfig(lr=0.1), 2: RunConfig(lr=0.2)}
    driver.train_members(runs, lambda members=None, failed=None: reports.append((members, failed)))
    assert reports == [({"0": {"lr": 0.1}}, None), ({"2": {"lr": 0.2}}, None)]
    assert issubclass(NoPackedForm, ValueError)


def test_any_other_pack_error_fails_the_members_without_a_fallback(monkeypatch):
    import trainers.packed

    def broken(configs):
        raise ValueError("something else")
        yield

    monkeypatch.setattr(trainers.packed, "train_pack", broken)
    reports = []
    driver.train_members({0: RunConfig(), 1: RunConfig()}, lambda members=None, failed=None: reports.append(failed))
    assert reports == [{"0": "ValueError: something else", "1": "ValueError: something else"}]


def test_train_pack_raises_no_packed_form_for_a_metric_function():
    from trainers.packed import train_pack

    configs = [RunConfig(metric="tests.nowhere:loss", lr=lr) for lr in (0.1, 0.2)]
    with pytest.raises(NoPackedForm, match="has no packed form"):
        next(train_pack(configs))


def test_raw_lambda_star_uses_the_whole_budgets_scale_the_driver_recorded(tmp_path):
    """Each study records λ/λ_norm = √(b/(B·T)) per budget by trainers.schedules' formula; the budget
    answer's raw λ* is λ_norm* times it — not the runs' recorded λ, which with warm restarts is the first
    period's (planted here as other than the whole budget's: the runs record λ for B = 100), used only
    for studies without the attr."""
    import math

    from tests.planted import write_panel
    from trainers.schedules import normalized_weight_decay

    spec = parse_spec(SPEC.replace("budgets = [2]", "budgets = [2, 8]"))
    attrs = driver.study_attrs(spec, SPEC, "test", prepared(), "adam", spec.schedules[0])
    assert attrs["lambda_scale"] == {str(T): normalized_weight_decay(1.0, spec.batch_size, 1000, T) for T in (2, 8)}
    url = f"sqlite:///{tmp_path}/raw.db"
    rdb = storage.open_storage(url)
    bowl = lambda a, w, b, s: 0.05 + 0.02 * math.log2(w / 0.05) ** 2  # noqa: E731
    b = study_attrs()["batch_size"]
    for sweep, extra in (("new", {"lambda_scale": attrs["lambda_scale"]}), ("old", {})):
        write_panel(rdb, sweep=sweep, optimizer="adamw", schedule="warm-restarts", lrs=[1e-3],
                    wd_norms=[0.0125, 0.025, 0.05, 0.1, 0.2], budgets=[2, 8], seeds=[0], error=bowl, n_test=50_000,
                    n_train=100, **extra)
    expected = {"new": [attrs["lambda_scale"][str(T)] for T in (2, 8)],
                "old": [normalized_weight_decay(1.0, b, 100, T) for T in (2, 8)]}
    for sweep in ("new", "old"):
        table = storage.best_by_budget(url, sweep).sort_values("budget")
        assert (table["raw_star"] / table["lambda_norm_star"]).tolist() == pytest.approx(expected[sweep])
