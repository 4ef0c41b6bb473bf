"""Your own model on real Ray: the example of the README (examples/byo) swept end to end on a local
Ray into SQLite, and a user's module that exists only in a folder on the driver's side shipped to a
two-node cluster (runtime_env), with a loss metric, decay = "matrices" and a model that raises."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.study.test_sweep import two_node_cluster  # noqa: F401 - the fixture

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BASIN = str(Path(sys.executable).with_name("basin"))
EXAMPLE = ROOT / "examples" / "byo" / "byo.toml"


def _trials(url: str, sweep: str) -> dict[str, list]:
    storage = optuna.storages.RDBStorage(url)
    return {s.study_name: optuna.load_study(study_name=s.study_name, storage=storage).trials
            for s in optuna.get_all_study_summaries(storage) if s.study_name.startswith(sweep + "/")}


def test_the_example_sweeps_end_to_end_on_local_ray_into_sqlite(tmp_path):
    """From a folder that is not the checkout: the spec's code folder is found beside the spec, the
    model packs through torch.func (the dry run says so), every point is its own COMPLETE trial."""
    url = f"sqlite:///{tmp_path}/byo.db"
    run = dict(cwd=tmp_path, capture_output=True, text=True, timeout=400)
    dry = subprocess.run([BASIN, "sweep", str(EXAMPLE), "--dry-run"], **run)
    assert dry.returncode == 0, dry.stderr
    assert "metric error (chance 0.75), decay matrices; 35,140 parameters" in dry.stdout, dry.stdout
    assert "packs: 4 trials of 8 points (auto: cap 8 on CPU, torch.func (FuncPack" in dry.stdout, dry.stdout
    out = subprocess.run([BASIN, "sweep", str(EXAMPLE), "--storage", url, "--quiet"], **run)
    assert out.returncode == 0, out.stderr
    assert "ran 32 points in 4 packs (0 were already complete), 0 failed, 0 diverged" in out.stdout, out.stdout
    studies = _trials(url, "byo-tabular")
    assert sorted(studies) == ["byo-tabular/adam/cosine", "byo-tabular/adamw/cosine"]
    for name, trials in studies.items():
        study = optuna.load_study(study_name=name, storage=url)
        assert study.user_attrs["metric"] == "error" and study.user_attrs["decay"] == "matrices"
        assert study.user_attrs["model"] == "byo_example.models:resmlp" and study.user_attrs["n_test"] == 1600
        assert len(trials) == 16 and all(t.state.name == "COMPLETE" for t in trials)
        assert {t.user_attrs["pack_size"] for t in trials} == {8}
        assert min(t.value for t in trials) < 0.25  # chance is 0.75: the best cells learned the task


MODULE = """
import time
from pathlib import Path

import ray
import torch
from torch import nn

from trainers.data import Dataset

FOLDER = {folder!r}  # where this file lives on the driver's side


def data(data_dir):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(400, 6, generator=g)
    y = 10 * (x @ torch.arange(1.0, 7.0) + 0.5 * torch.randn(400, generator=g))  # a regression, MSE ≥ 25
    return Dataset("linear", x[:300], y[:300], x[300:], y[300:], 0)


class Net(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.seed = torch.initial_seed()  # Basin seeds torch with the run's seed before building
        self.calls = 0
        self.body = nn.Sequential(nn.Linear(d, 32), nn.LayerNorm(32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x):
        self.calls += 1
        if self.training:
            time.sleep(0.01)  # a slow model: trials overlap, so both nodes get some
        if self.seed == 1 and self.calls > 100:
            raise RuntimeError("boom: this model fails mid-training for seed 1")
        return self.body(x).squeeze(1)


def model(input_shape, num_classes):
    worker = ray._private.worker.global_worker.mode == ray.WORKER_MODE
    if worker and str(Path(__file__).resolve().parent) == FOLDER:
        raise RuntimeError("a worker imported the driver's folder, not the code Ray shipped")
    return Net(input_shape[0])


def mse(model, batch):
    x, y = batch
    return (model(x) - y) ** 2
"""


def test_user_code_only_on_the_driver_runs_on_a_two_node_cluster(tmp_path, two_node_cluster):  # noqa: F811
    """The module lives only in a temporary folder of the driver: Ray ships it (--code) to both
    nodes, which import their shipped copy. Loss metric values (> 1) and test_se are recorded; the
    seed whose model raises is FAIL with the error text while the others complete."""
    address, env = two_node_cluster
    code = tmp_path / "usercode"
    code.mkdir()
    (code / "regress_only_here.py").write_text(MODULE.format(folder=str(code.resolve())))
    (tmp_path / "s.toml").write_text(textwrap.dedent("""
        name = "shipped"
        model = "regress_only_here:model"
        dataset = "regress_only_here:data"
        metric = "regress_only_here:mse"
        decay = "matrices"
        batch_size = 16
        budgets = [12]
        seeds = [0, 1]
        max_concurrent_trials = 2
        [resources]
        cpus = 1
        [[schedules]]
        name = "cosine"
        [optimizers.adamw]
        lr = [0.001, 0.003]
        wd_norm = [0.05]
    """))
    out = subprocess.run([BASIN, "sweep", str(tmp_path / "s.toml"), "--storage", f"sqlite:///{tmp_path}/b.db",
                          "--address", address, "--code", str(code), "--quiet"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stderr
    assert "ran 4 points in 4 packs" in out.stdout and "2 failed" in out.stdout, out.stdout
    (trials,) = _trials(f"sqlite:///{tmp_path}/b.db", "shipped").values()
    study = optuna.load_study(study_name="shipped/adamw/cosine", storage=f"sqlite:///{tmp_path}/b.db")
    assert study.user_attrs["metric"] == "regress_only_here:mse" and study.user_attrs["decay"] == "matrices"
    assert study.user_attrs["num_classes"] == 0 and study.user_attrs["chance"] > 1  # the untrained net's MSE
    by_seed = {s: [t for t in trials if t.params["seed"] == s] for s in (0, 1)}
    assert Counter(t.state.name for t in by_seed[0]) == Counter(COMPLETE=2)
    for t in by_seed[0]:
        assert t.value == t.user_attrs["test_loss"][-1] == t.intermediate_values[12] and t.value > 1
        assert t.user_attrs["test_error"] == [None] * 12 and len(t.user_attrs["test_se"]) == 12
        assert all(se > 0 for se in t.user_attrs["test_se"])
    assert Counter(t.state.name for t in by_seed[1]) == Counter(FAIL=2)
    assert all("RuntimeError: boom: this model fails mid-training for seed 1" in t.user_attrs["error"]
               for t in by_seed[1])
    assert len({t.user_attrs["node_id"] for t in trials}) == 2  # both nodes imported the shipped module
