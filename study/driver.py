"""The sweep driver: a Ray Tune ``Tuner`` over the missing grid points, recording into Optuna.

* One Tune trial per grid point (``tune.grid_search`` over the points), a function trainable that
  runs one training run (trainers.run) and reports every epoch with ``tune.report``.
* Resources per trial from the spec (``tune.with_resources``); ``max_concurrent_trials`` from the
  spec; ``reuse_actors=True`` so a worker keeps its imports and loaded data set between trials.
* A trial whose worker dies is retried (``FailureConfig(max_failures)``); a trial whose training
  raises reports the error and ends normally, so it is recorded as FAIL and never retried.
* The driver is the only writer: a Tune callback adds each finished trial to its Optuna study
  (``storage.record_trial``) as soon as it finishes, so a crash loses at most the trials in flight,
  and a re-run (resume) only runs the points that have no COMPLETE trial.

Optuna's GridSampler / Ray's OptunaSearch are not used: OptunaSearch rejects ``tune.grid_search``
and concurrent GridSampler workers can repeat points; an exhaustive grid recorded with
``create_trial`` + ``add_trial`` has neither problem.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import optuna

from storage.connect import open_storage
from storage.record import ensure_study, grid_distributions, record_trial
from storage.schema import trial_record
from storage.sql import completed_points
from study.spec import Point, SpecError, SweepSpec, spec_dict

# Tune's automatic CSV/JSON/TensorBoard loggers cost time per result and we never read them.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


def code_version() -> str:
    """The installed package version, plus the git commit when run from a checkout."""
    try:
        ver = version("basin-landscape")
    except PackageNotFoundError:
        ver = "unknown"
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).resolve().parent,
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{ver}+{sha}" if sha else ver


def run_point(config: dict) -> None:
    """The Tune function trainable: one training run, one ``tune.report`` per epoch."""
    import ray
    import torch
    from ray import tune

    from trainers.run import RunConfig, train

    config = config["trial"]
    torch.set_num_threads(max(1, int(config["cpus"])))
    node_id = ray.get_runtime_context().get_node_id()
    try:
        for result in train(RunConfig(**config["run"])):
            tune.report({**result.to_json(), "node_id": node_id, "worker_pid": os.getpid(), "failed": False})
    except Exception as exc:  # recorded as FAIL by the driver, not retried
        tune.report({"failed": True, "error": f"{type(exc).__name__}: {exc}", "node_id": node_id})


def _trial_name(trial) -> str:
    p = trial.config["trial"]["point"]
    return (f"{trial.trial_id}_{p['optimizer']}_{p['schedule']}_lr{p['lr']:.3g}_wd{p['wd_norm']:.3g}"
            f"_T{p['budget']}_s{p['seed']}")


class Recorder:
    """Turns a trial's per-epoch reports into one Optuna trial (COMPLETE or FAIL)."""

    def __init__(self, spec: SweepSpec, studies: dict, version: str):
        self.studies = studies  # (optimizer, schedule) -> optuna.Study
        self.version = version
        self.distributions = {  # the Optuna distributions of each optimizer's grid, for every trial it records
            name: grid_distributions(spec.lr_values(name), spec.wd_norm_values(name), spec.budgets, spec.seeds)
            for name in spec.optimizers
        }

    def complete(self, point: Point, epochs: list[dict]) -> bool:
        """Record a finished run; returns whether it diverged."""
        study = self.studies[(point.optimizer, point.schedule)]
        last = epochs[-1]
        rec = trial_record(epochs, code_version=self.version, node_id=last.get("node_id", ""),
                           worker_pid=int(last.get("worker_pid", 0)))
        record_trial(study, point, self.distributions[point.optimizer], state="COMPLETE", value=rec.value,
                     intermediate=rec.intermediate, user_attrs=rec.user_attrs)
        return bool(rec.user_attrs["diverged"])

    def fail(self, point: Point, error: str, node: str = "") -> None:
        study = self.studies[(point.optimizer, point.schedule)]
        record_trial(
            study, point, self.distributions[point.optimizer], state="FAIL", value=None,
            intermediate={}, user_attrs={"error": error[-4000:], "node_id": node, "code_version": self.version},
        )


def _make_callback(recorder: Recorder, total: int, quiet: bool):
    from ray import tune
    from tqdm import tqdm

    class RecordingCallback(tune.Callback):
        """Writes every finished trial to Optuna as soon as it finishes; drives the progress bar."""

        def __init__(self):
            self.history: dict[str, dict[int, dict]] = {}
            self.errors: dict[str, tuple[str, str]] = {}
            self.failed = self.diverged = 0
            self.bar = tqdm(total=total, unit="trial", file=sys.stderr, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True,
                            bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}")

        def _tick(self):
            self.bar.set_postfix_str(f"failed {self.failed}, diverged {self.diverged}")
            self.bar.update(1)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            if result.get("failed"):
                self.errors[trial.trial_id] = (result.get("error", "unknown error"), result.get("node_id", ""))
                return
            history = self.history.setdefault(trial.trial_id, {})
            if result["epoch"] == 1:  # a retried trial starts over
                history.clear()
            history[result["epoch"]] = dict(result)

        def on_trial_complete(self, iteration, trials, trial, **info):
            point = Point(**trial.config["trial"]["point"])
            history = self.history.pop(trial.trial_id, {})
            if trial.trial_id in self.errors or not history:
                error, node = self.errors.pop(trial.trial_id, ("the trial reported no result", ""))
                recorder.fail(point, error, node)
                self.failed += 1
            elif recorder.complete(point, [history[e] for e in sorted(history)]):
                self.diverged += 1
            self._tick()

        def on_trial_error(self, iteration, trials, trial, **info):
            point = Point(**trial.config["trial"]["point"])
            self.history.pop(trial.trial_id, None)
            err = trial.get_error()
            recorder.fail(point, f"{type(err).__name__}: {err}" if err else "the trial's worker failed")
            self.failed += 1
            self._tick()

        def on_experiment_end(self, trials, **info):
            self.bar.close()

    return RecordingCallback()


def connect_ray(address: str | None, verbose: bool) -> str:
    """Join ``address`` (or RAY_ADDRESS) if given, else start a local Ray with this machine's CPUs/GPUs."""
    import ray

    quiet = dict(log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING)
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        return "existing"
    if address:
        ray.init(address=address, **quiet)
        return address
    # address="local": never join a stale cluster left behind by a killed session.
    ray.init(address="local", include_dashboard=False, **quiet)
    return "local"


def check_resources(spec: SweepSpec) -> None:
    """Refuse per-trial resources that no node of the cluster could ever grant."""
    import ray

    nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive")]
    max_cpu = max((n.get("CPU", 0) for n in nodes), default=0)
    max_gpu = max((n.get("GPU", 0) for n in nodes), default=0)
    if spec.resources.gpus > max_gpu:
        raise SpecError(
            f"resources.gpus: {spec.resources.gpus} GPU per trial but the largest node has {max_gpu:g}; "
            "lower it or join a cluster with GPUs (--address)"
        )
    if spec.resources.cpus > max_cpu:
        raise SpecError(
            f"resources.cpus: {spec.resources.cpus} CPU per trial but the largest node has {max_cpu:g}; lower it"
        )


#: (B, n_test, classes) of the file-based data sets, for a driver host that does not hold the files itself.
KNOWN_SIZES = {"cifar10": (50000, 10000, 10), "cifar100": (50000, 10000, 100), "imagenet32": (1281167, 50000, 1000)}


def dataset_size(spec: SweepSpec):
    """The ``trainers.run.DatasetInfo`` of the spec's data set: loaded when it is on this host, else
    the published sizes."""
    from trainers.data import DataError
    from trainers.run import DatasetInfo, RunConfig, dataset_info

    try:
        return dataset_info(RunConfig(dataset=spec.dataset, model=spec.model, data_dir=spec.data_dir))
    except DataError:
        if spec.dataset in KNOWN_SIZES:
            return DatasetInfo(*KNOWN_SIZES[spec.dataset])
        raise


def open_studies(spec: SweepSpec, rdb, text: str, version: str) -> dict:
    info = dataset_size(spec)
    studies = {}
    for opt_name in spec.optimizers:
        for sched in spec.schedules:
            attrs = {
                "sweep": spec.name, "optimizer": opt_name, "schedule": sched.name, "dataset": spec.dataset,
                "model": spec.model, "batch_size": spec.batch_size, "n_train": info.n_train, "n_test": info.n_test,
                "num_classes": info.num_classes, "chance": info.chance,
                "schedule_params": sched.params,
                "grid_size": spec.study_grid_size(opt_name), "spec": spec_dict(spec), "spec_toml": text,
                "basin_version": version,
            }
            studies[(opt_name, sched.name)] = ensure_study(
                rdb, sweep=spec.name, optimizer=opt_name, schedule=sched.name, attrs=attrs
            )
    return studies


def missing_points(spec: SweepSpec, rdb) -> list[Point]:
    done = {p.key() for p in completed_points(rdb.engine, spec.name)}
    return [p for p in spec.points() if p.key() not in done]


def run_sweep(
    spec: SweepSpec, text: str, *, storage_url: str | None = None, address: str | None = None,
    verbose: bool = False, quiet: bool = False, limit: int | None = None, trainable=None,
) -> dict:
    """Run every grid point that has no COMPLETE trial yet. Returns counts of what happened.

    ``trainable`` replaces :func:`run_point` (same signature); tests use it to kill or break trials.
    """
    import ray
    from ray import tune

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    rdb = open_storage(storage_url)
    missing = missing_points(spec, rdb)
    total = len(spec.points())
    todo = missing if limit is None else missing[:limit]
    summary = {"total": total, "already_complete": total - len(missing), "run": len(todo), "failed": 0, "diverged": 0}
    if not todo:
        return summary
    if not verbose:
        # Ray's new console output prints an experiment table even at verbose=0; the classic one is silent.
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        # We disable Tune's result files, so its end-of-run summary would warn about each trial.
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
    started_here = not ray.is_initialized()
    connect_ray(address, verbose)
    try:
        check_resources(spec)
        version = code_version()
        studies = open_studies(spec, rdb, text, version)
        recorder = Recorder(spec, studies, version)
        callback = _make_callback(recorder, len(todo), quiet)
        resources = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus}
        device = "auto" if spec.resources.gpus > 0 else "cpu"
        configs = [
            {"point": asdict(p), "run": spec.run_config(p, device), "cpus": spec.resources.cpus} for p in todo
        ]
        with tempfile.TemporaryDirectory(prefix="basin-tune-") as tmp:
            tuner = tune.Tuner(
                tune.with_resources(trainable or run_point, resources),
                param_space={"trial": tune.grid_search(configs)},
                tune_config=tune.TuneConfig(
                    max_concurrent_trials=spec.max_concurrent_trials, reuse_actors=True, num_samples=1,
                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name=f"basin-{spec.name}", storage_path=tmp, verbose=2 if verbose else 0,
                    callbacks=[callback], failure_config=tune.FailureConfig(max_failures=spec.max_failures),
                ),
            )
            tuner.fit()
        summary["failed"], summary["diverged"] = callback.failed, callback.diverged
        return summary
    finally:
        if started_here:
            ray.shutdown()
