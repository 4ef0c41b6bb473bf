"""`basin sweep` end to end on real Ray (local and a two-node loopback cluster), real SQLite and
real PostgreSQL: packs, recording, resume, claims, fault tolerance. Nothing mocked."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import optuna
import pytest

from storage.connect import open_storage
from storage.record import delete_sweep
from storage.sql import completed_points
from study.spec import parse_spec

pytestmark = pytest.mark.slow

BASIN = str(Path(sys.executable).with_name("basin"))
RAY = str(Path(sys.executable).with_name("ray"))


def spec_text(name: str, *, budget: int = 2, lrs=(0.05, 0.2), extra: str = "", pack="1") -> str:
    return f"""
name = "{name}"
dataset = "digits"
model = "cnn"
batch_size = 128
budgets = [{budget}]
seeds = [0]
max_concurrent_trials = 2
max_failures = 2
pack = {pack}
{extra}
[resources]
cpus = 1

[[schedules]]
name = "cosine"

[optimizers.sgdw]
lr = {list(lrs)}
wd_norm = [0.025, 0.1]
"""


def trials_by_point(url: str, sweep: str):
    """{point key: Counter(state)} over every study of the sweep."""
    storage = optuna.storages.RDBStorage(url)
    out: dict = {}
    for summary in optuna.get_all_study_summaries(storage):
        if not summary.study_name.startswith(sweep + "/"):
            continue
        _, opt, sched = summary.study_name.split("/")
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        for t in study.trials:
            key = (opt, sched, t.params["lr"], t.params["wd_norm"], t.params["budget"], t.params["seed"])
            out.setdefault(key, Counter())[t.state.name] += 1
    return out


def sweep_cli(spec_path, url, *extra, env=None, timeout=300):
    return subprocess.run([BASIN, "sweep", str(spec_path), "--storage", url, "--quiet", *extra],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_packed_sweep_records_every_point_as_its_own_trial_and_agrees_with_unpacked(tmp_path):
    """Packs of 4 (two trials for 8 points): every point its own COMPLETE trial naming its pack; the
    same spec unpacked (--pack 1) gives the same numbers up to float32 rounding; a re-run does
    nothing; without a terminal the sweep prints progress lines and none of Ray's own warnings."""
    path = tmp_path / "s.toml"
    path.write_text(spec_text("local", lrs=(0.02, 0.05, 0.1, 0.2), pack="4", extra="n_test = 800\ncurve_test = 100"))
    url = f"sqlite:///{tmp_path}/b.db"
    dry = subprocess.run([BASIN, "sweep", str(path), "--dry-run"], capture_output=True, text=True, timeout=120)
    assert "packs: 2 trials of 4 points (pack = 4)" in dry.stdout, dry.stdout
    out = subprocess.run([BASIN, "sweep", str(path), "--storage", url], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "ran 8 points in 2 packs" in out.stdout
    assert "sweep local: 8/8 points (100.0%), 0 failed, 0 diverged" in out.stderr, out.stderr
    assert "WARNING" not in out.stderr and "Token authentication" not in out.stderr, out.stderr
    by_point = trials_by_point(url, "local")
    assert len(by_point) == 8 and all(c == Counter(COMPLETE=1) for c in by_point.values())

    study = optuna.load_study(study_name="local/sgdw/cosine", storage=url)
    assert study.user_attrs["dataset"] == "digits" and study.user_attrs["grid_size"] == 8
    assert study.user_attrs["spec"]["name"] == "local" and study.user_attrs["n_test"] == 800
    assert study.user_attrs["curve_test"] == 100 and study.user_attrs["spec"]["n_test"] == 800
    t = study.trials[0]
    assert set(t.distributions) == {"lr", "wd_norm", "budget", "seed"} and t.distributions["lr"].log
    assert t.value == t.intermediate_values[2] == t.user_attrs["test_error"][-1]
    for key in ("train_loss", "test_error", "diverged", "wd", "seconds", "node", "device", "code_version"):
        assert key in t.user_attrs, key
    assert len(t.user_attrs["train_loss"]) == 2
    assert Counter(tr.user_attrs["pack"] for tr in study.trials).most_common()[0][1] == 4
    assert {tr.user_attrs["pack_size"] for tr in study.trials} == {4}

    unpacked = f"sqlite:///{tmp_path}/u.db"
    assert sweep_cli(path, unpacked, "--pack", "1").returncode == 0
    ref = optuna.load_study(study_name="local/sgdw/cosine", storage=unpacked)
    assert {tr.user_attrs["pack_size"] for tr in ref.trials} == {1}
    key = lambda tr: (tr.params["lr"], tr.params["wd_norm"])  # noqa: E731
    mine = {key(tr): tr for tr in study.trials}
    for tr in ref.trials:
        other = mine[key(tr)]
        assert abs(tr.value - other.value) <= 0.01  # 8 of 800 test images; observed 0 (docs/benchmarks.md)
        assert abs(tr.user_attrs["train_loss"][-1] - other.user_attrs["train_loss"][-1]) < 1e-3

    again = sweep_cli(path, url)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert trials_by_point(url, "local") == by_point


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_same_sweep_started_twice_at_once_runs_each_point_once(tmp_path, backend, request):
    """Points are claimed before they run: the second driver skips those in flight, saying so."""
    name = f"twice{uuid.uuid4().hex[:6]}"
    path = tmp_path / "s.toml"
    path.write_text(spec_text(name, lrs=(0.02, 0.05, 0.1, 0.2), pack="2"))
    url = f"sqlite:///{tmp_path}/b.db" if backend == "sqlite" else request.getfixturevalue("pg_url")
    try:
        procs = [subprocess.Popen([BASIN, "sweep", str(path), "--storage", url, "--quiet"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=400) for p in procs]
        for proc, (stdout, stderr) in zip(procs, outs):
            assert proc.returncode == 0, stderr
        by_point = trials_by_point(url, name)
        assert len(by_point) == 8 and all(c == Counter(COMPLETE=1) for c in by_point.values()), by_point
        said = " ".join(o for o, _ in outs)
        assert "in flight in another driver were skipped" in said, said
    finally:
        if backend == "postgresql":
            delete_sweep(open_storage(url), name)


def test_driver_killed_mid_sweep_resumes_without_duplicates(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(spec_text("crash", budget=3, lrs=(0.02, 0.05, 0.1, 0.2)))
    url = f"sqlite:///{tmp_path}/b.db"
    proc = subprocess.Popen([BASIN, "sweep", str(path), "--storage", url, "--quiet"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    storage = None
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            time.sleep(0.5)
            if storage is None and (tmp_path / "b.db").exists():
                try:
                    storage = open_storage(url, read_only=True)
                except Exception:
                    storage = None
            if storage is not None and len(completed_points(storage.engine, "crash")) >= 2:
                break
        assert proc.poll() is None, "the sweep finished before it could be killed; make it longer"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the driver and the local Ray it started
        proc.wait()
    done_before = len(completed_points(open_storage(url, read_only=True).engine, "crash"))
    assert 2 <= done_before < 8
    out = sweep_cli(path, url)
    assert out.returncode == 0, out.stderr
    assert f"ran {8 - done_before} points in" in out.stdout and f"({done_before} were already complete)" in out.stdout
    by_point = trials_by_point(url, "crash")
    assert len(by_point) == 8 and all(c["COMPLETE"] == 1 for c in by_point.values()), by_point
    assert not any(c["RUNNING"] for c in by_point.values())  # the killed driver's claims were taken over


def _run_in_process(spec, url, trainable, env):
    import ray

    from study.driver import run_sweep
    from tests.study import faults

    ray.cloudpickle.register_pickle_by_value(faults)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return run_sweep(spec, "", storage_url=url, quiet=True, trainable=trainable)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_pack_whose_worker_is_killed_is_retried_to_exactly_one_complete(tmp_path):
    from tests.study import faults

    spec = parse_spec(spec_text("kill", budget=8, pack="2"))
    url = f"sqlite:///{tmp_path}/b.db"
    marker = tmp_path / "killed"
    env = {"BASIN_TEST_MARKER": str(marker), "BASIN_TEST_TARGET_OPT": "sgdw", "BASIN_TEST_TARGET_LR": "0.2",
           "BASIN_TEST_KILL_AFTER": "1.5"}
    summary = _run_in_process(spec, url, faults.kill_first_attempt, env)
    assert marker.exists(), "the fault was never injected"
    assert summary["failed"] == 0
    by_point = trials_by_point(url, "kill")
    assert len(by_point) == 4 and all(c == Counter(COMPLETE=1) for c in by_point.values()), by_point
    study = optuna.load_study(study_name="kill/sgdw/cosine", storage=url)
    target = [t for t in study.trials if abs(t.params["lr"] - 0.2) < 1e-12]
    assert all(len(t.user_attrs["test_error"]) == 8 for t in target)  # the retry ran all 8 epochs


def test_trial_that_raises_is_recorded_as_fail_and_the_sweep_goes_on(tmp_path):
    from tests.study import faults

    spec = parse_spec(spec_text("raise"))
    url = f"sqlite:///{tmp_path}/b.db"
    env = {"BASIN_TEST_TARGET_OPT": "sgdw", "BASIN_TEST_TARGET_LR": "0.05"}
    summary = _run_in_process(spec, url, faults.invalid_config_for_target, env)
    assert summary["failed"] == 2 and summary["run"] == 4
    study = optuna.load_study(study_name="raise/sgdw/cosine", storage=url)
    states = Counter(t.state.name for t in study.trials)
    assert states == Counter(COMPLETE=2, FAIL=2)
    fails = [t for t in study.trials if t.state.name == "FAIL"]
    assert all("lr" in t.user_attrs["error"] and "ValueError" in t.user_attrs["error"] for t in fails)
    # a re-run retries only the failed points (they have no COMPLETE trial)
    assert len(completed_points(open_storage(url, read_only=True).engine, "raise")) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_with_env(marker: str) -> list[int]:
    """Processes whose environment carries ``marker``: every process a test cluster started."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


@pytest.fixture
def two_node_cluster(tmp_path):
    """A real two-node Ray cluster on loopback (head on port 6390 — Redis holds 6379), 1 CPU each.

    Every process of it inherits a unique marker variable, so the fixture stops exactly those
    processes by PID afterwards (never `ray stop`, which would stop any other Ray here too).
    """
    marker = f"BASIN_TEST_CLUSTER={uuid.uuid4().hex}"
    key, value = marker.split("=")
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", key: value}
    temp = Path("/tmp") / f"rt{uuid.uuid4().hex[:6]}"  # Ray's socket paths must stay short
    port = 6390
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    try:
        subprocess.run([RAY, "start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}",
                        *common], env=env, check=True, capture_output=True, timeout=120)
        subprocess.run([RAY, "start", f"--address=127.0.0.1:{port}", *common], env=env, check=True,
                       capture_output=True, timeout=120)
        yield f"127.0.0.1:{port}", {k: v for k, v in env.items() if k != key}
    finally:
        for pid in _pids_with_env(marker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_two_node_cluster_runs_trials_on_both_nodes(tmp_path, two_node_cluster):
    address, env = two_node_cluster
    path = tmp_path / "s.toml"
    path.write_text(spec_text("cluster", budget=3, lrs=(0.02, 0.05, 0.1, 0.2)))
    url = f"sqlite:///{tmp_path}/b.db"
    out = sweep_cli(path, url, "--address", address, env=env)
    assert out.returncode == 0, out.stderr
    study = optuna.load_study(study_name="cluster/sgdw/cosine", storage=url)
    assert len(study.trials) == 8 and all(t.state.name == "COMPLETE" for t in study.trials)
    nodes = {t.user_attrs["node_id"] for t in study.trials}
    assert len(nodes) == 2, nodes


def test_two_sweeps_into_one_postgresql_database_at_once_lose_nothing(tmp_path, pg_url):
    names = [f"pg{uuid.uuid4().hex[:8]}", f"pg{uuid.uuid4().hex[:8]}"]
    paths = []
    for name in names:
        path = tmp_path / f"{name}.toml"
        path.write_text(spec_text(name))
        paths.append(path)
    try:
        procs = [subprocess.Popen([BASIN, "sweep", str(p), "--storage", pg_url, "--quiet"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for p in paths]
        outs = [p.communicate(timeout=400) for p in procs]
        for proc, (stdout, stderr) in zip(procs, outs):
            assert proc.returncode == 0, stderr
        for name in names:
            by_point = trials_by_point(pg_url, name)
            assert len(by_point) == 4 and all(c == Counter(COMPLETE=1) for c in by_point.values()), by_point
    finally:
        storage = open_storage(pg_url)
        for name in names:
            delete_sweep(storage, name)
