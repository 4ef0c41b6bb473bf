"""The sweep driver: a Ray Tune ``Tuner`` over packs of the missing grid points, recording into Optuna.

* Before anything runs (:mod:`study.preflight`): the user's code folder goes on the import path,
  the first grid point is checked on the CPU (references, data set, one forward/backward pass) —
  a problem is one SpecError, with no database opened and no Ray started — and the folder becomes
  the Ray job's ``runtime_env`` ``working_dir``, so every worker imports the same code.
* The missing points are claimed (``storage.record.claim_points``: a RUNNING trial with a
  heartbeat each), so a second driver of the same sweep skips what is in flight, and grouped into
  packs (:mod:`study.packs`).
* One Tune trial per pack (``tune.grid_search`` over the packs): a function trainable that trains
  the pack's members together (``trainers.packed.train_pack``; a pack of one runs
  ``trainers.run.train``, exactly as before packs) and reports every epoch with ``tune.report``.
* Resources per trial from the spec (``tune.with_resources``); ``max_concurrent_trials`` from the
  spec; ``reuse_actors=True`` so a worker keeps its imports and loaded data set between trials.
* A trial whose worker dies is retried whole (``FailureConfig(max_failures)``); a trial whose
  training raises reports the error and ends normally, so its unfinished members are recorded as
  FAIL and never retried.
* The driver is the only writer: a Tune callback adds each member of a finished pack to its Optuna
  study as its own trial (``storage.record_trial``, user attrs ``pack`` and ``pack_size`` naming
  the pack) as soon as the pack finishes, then deletes the point's claim. A crash loses at most the
  packs in flight; a re-run (resume) packs only the points that have no COMPLETE trial.

Optuna's GridSampler / Ray's OptunaSearch are not used: OptunaSearch rejects ``tune.grid_search``
and concurrent GridSampler workers can repeat points; an exhaustive grid recorded with
``create_trial`` + ``add_trial`` has neither problem.
"""

from __future__ import annotations

import logging
import os
import subprocess
import tempfile
import threading
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import optuna

from storage.connect import HEARTBEAT_S, open_storage
from storage.record import beat, claim_points, ensure_study, grid_distributions, record_trial, release_claims
from storage.schema import OPTIONAL_STUDY_ATTRS, STUDY_ATTRS, trial_record
from study import packs as packs_mod
from study.preflight import Prepared, prepare
from study.progress import Progress
from study.spec import Point, SpecError, SweepSpec, spec_dict
from trainers import optimizers
from trainers.schedules import normalized_weight_decay

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


# --- the trainable (runs on a Ray worker) ------------------------------------------------------------


def run_pack(config: dict) -> None:
    """The Tune function trainable: train one pack, one ``tune.report`` per epoch.

    Reports ``{"members": {"i": epoch result}, "failed": {"i": error}}``: member i's result of
    that epoch, or why member i stopped. A pack of one runs ``trainers.run.train``; a model that
    cannot be packed runs its members one after another.
    """
    import ray
    import torch
    from ray import tune

    from trainers.run import RunConfig

    trial = config["trial"]
    torch.set_num_threads(max(1, int(trial["cpus"])))
    where = {"node_id": ray.get_runtime_context().get_node_id(), "worker_pid": os.getpid()}

    def report(members=None, failed=None):
        tune.report({"members": members or {}, "failed": failed or {}, **where})

    runs, refused = {}, {}
    for i, r in enumerate(trial["runs"]):
        try:
            runs[i] = RunConfig(**r)
        except ValueError as exc:  # a config the worker refuses: that member is FAIL, not retried
            refused[str(i)] = _error(exc)
    if refused:
        report(failed=refused)
    train_members(runs, report)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def train_members(runs: dict, report) -> None:
    """Train ``runs`` ({member index: RunConfig}) as one pack, calling ``report(members=…)`` per epoch
    and ``report(failed=…)`` for members that stop on an error. A pack whose model or metric has no
    packed form (``trainers.packed.NoPackedForm``) runs its members one after another instead."""
    from trainers.packed import NoPackedForm, train_pack
    from trainers.run import train

    if len(runs) > 1:
        index = list(runs)  # pack row → member index
        finished: set[int] = set()
        try:
            for epoch in train_pack([runs[i] for i in index]):
                report({str(index[j]): r.to_json() for j, r in epoch.items()})
                finished |= {index[j] for j, r in epoch.items() if r.diverged or r.epoch == runs[index[j]].epochs}
            return
        except NoPackedForm:
            pass  # run unpacked, below
        except Exception as exc:  # recorded as FAIL by the driver, not retried
            report(failed={str(i): _error(exc) for i in index if i not in finished})
            return
    for i, run in runs.items():  # one point, or a model without a packed form: one by one
        try:
            for r in train(run):
                report({str(i): r.to_json()})
        except Exception as exc:  # this point is FAIL; the others still run
            report(failed={str(i): _error(exc)})


def _trial_name(trial) -> str:
    points = trial.config["trial"]["points"]
    p = points[0]
    more = f"+{len(points) - 1}" if len(points) > 1 else ""
    return (f"{trial.trial_id}_{p['optimizer']}_{p['schedule']}_lr{p['lr']:.3g}_wd{p['wd_norm']:.3g}"
            f"_T{p['budget']}_s{p['seed']}{more}")


# --- recording (runs in the driver) --------------------------------------------------------------------


class Recorder:
    """Turns a member's per-epoch reports into one Optuna trial (COMPLETE or FAIL), then frees its claim."""

    def __init__(self, spec: SweepSpec, studies: dict, version: str, rdb, claims: dict[Point, int]):
        self.studies = studies  # (optimizer, schedule) -> optuna.Study
        self.version = version
        self.rdb = rdb
        self.claims = claims
        self.lock = threading.Lock()
        self.distributions = distributions(spec)
        self.metric = spec.metric

    def __getstate__(self):  # Tune pickles its callbacks into the experiment state; a lock cannot be
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, state):
        self.__dict__.update(state, lock=threading.Lock())

    def _claim(self, point: Point) -> int | None:
        with self.lock:
            return self.claims.pop(point, None)

    def complete(self, point: Point, epochs: list[dict], **attrs) -> bool | None:
        """Record a finished run; returns whether it diverged — None when its result is not a
        COMPLETE trial (e.g. a loss metric's NaN value) and it was recorded FAIL saying why."""
        study = self.studies[(point.optimizer, point.schedule)]
        last = epochs[-1]
        rec = trial_record(epochs, metric=self.metric, code_version=self.version, node_id=last.get("node_id", ""),
                           worker_pid=int(last.get("worker_pid", 0)), **attrs)
        claim = self._claim(point)
        try:
            record_trial(study, point, self.distributions[point.optimizer], state="COMPLETE", value=rec.value,
                         intermediate=rec.intermediate, user_attrs=rec.user_attrs, claim=claim)
        except ValueError as exc:
            self._fail(point, f"its result cannot be recorded: {exc}", last.get("node_id", ""), claim, **attrs)
            return None
        return bool(rec.user_attrs["diverged"])

    def fail(self, point: Point, error: str, node: str = "", **attrs) -> None:
        self._fail(point, error, node, self._claim(point), **attrs)

    def _fail(self, point: Point, error: str, node: str, claim: int | None, **attrs) -> None:
        study = self.studies[(point.optimizer, point.schedule)]
        record_trial(
            study, point, self.distributions[point.optimizer], state="FAIL", value=None, intermediate={},
            user_attrs={"error": error[-4000:], "node_id": node, "code_version": self.version, **attrs},
            claim=claim,
        )


def distributions(spec: SweepSpec) -> dict:
    """The Optuna distributions of each optimizer's grid, for every trial (and claim) it records."""
    return {name: grid_distributions(spec.lr_values(name), spec.wd_norm_values(name), spec.budgets, spec.seeds)
            for name in spec.optimizers}


def _make_callback(recorder: Recorder, progress: Progress):
    from ray import tune

    class RecordingCallback(tune.Callback):
        """Writes every member of a finished pack to Optuna as soon as the pack finishes."""

        def __init__(self):
            self.history: dict[str, dict[int, dict[int, dict]]] = {}  # trial → member → epoch → result
            self.errors: dict[str, dict[int, str]] = {}
            self.node: dict[str, str] = {}

        def on_trial_result(self, iteration, trials, trial, result, **info):
            history = self.history.setdefault(trial.trial_id, {})
            members = {int(i): r for i, r in (result.get("members") or {}).items()}
            if any(r["epoch"] in history.get(i, {}) for i, r in members.items()):
                history.clear()  # a retried pack starts over
                self.errors.pop(trial.trial_id, None)
            for i, r in members.items():
                history.setdefault(i, {})[r["epoch"]] = {**r, "node_id": result.get("node_id", ""),
                                                         "worker_pid": result.get("worker_pid", 0)}
            for i, text in (result.get("failed") or {}).items():
                self.errors.setdefault(trial.trial_id, {})[int(i)] = text
            self.node[trial.trial_id] = result.get("node_id", "")

        def _record(self, trial, default_error: str):
            pack = trial.config["trial"]
            points = [Point(**p) for p in pack["points"]]
            history = self.history.pop(trial.trial_id, {})
            errors = self.errors.pop(trial.trial_id, {})
            node = self.node.pop(trial.trial_id, "")
            attrs = {"pack": f"{pack['sweep']}#{trial.trial_id}", "pack_size": len(points)}
            for i, point in enumerate(points):
                epochs = [history[i][e] for e in sorted(history.get(i, {}))]
                finished = epochs and (epochs[-1].get("diverged") or epochs[-1]["epoch"] == point.budget)
                if finished and i not in errors:
                    outcome = recorder.complete(point, epochs, **attrs)
                    progress.point(failed=outcome is None, diverged=bool(outcome))
                else:
                    recorder.fail(point, errors.get(i, default_error), node, **attrs)
                    progress.point(failed=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._record(trial, "the pack stopped before this point finished")

        def on_trial_error(self, iteration, trials, trial, **info):
            err = trial.get_error()
            self._record(trial, f"{type(err).__name__}: {err}" if err else "the trial's worker failed")

        def on_experiment_end(self, trials, **info):
            progress.close()

    return RecordingCallback()


# --- Ray and the database ----------------------------------------------------------------------------


def connect_ray(address: str | None, verbose: bool, runtime_env: dict | None = None) -> str:
    """Join ``address`` (or RAY_ADDRESS) if given, else start a local Ray with this machine's CPUs/GPUs.
    ``runtime_env`` (the user's code folder) becomes the job's: every worker of this sweep gets it."""
    import ray

    quiet = dict(log_to_driver=verbose, logging_level=logging.INFO if verbose else logging.WARNING)
    if runtime_env:
        quiet["runtime_env"] = runtime_env
    address = address or os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        if runtime_env and ray.get_runtime_context().runtime_env.get("working_dir") is None:
            raise SpecError("code: Ray is already initialised in this process without the code folder; "
                            f"call ray.init(runtime_env={runtime_env!r}) or let basin start Ray")
        return "existing"
    if not verbose:  # Ray's note that a local cluster made an auth token is not the user's business
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
    if address:
        ray.init(address=address, **quiet)
        return address
    # address="local": never join a stale cluster left behind by a killed session.
    ray.init(address="local", include_dashboard=False, **quiet)
    return "local"


def check_resources(spec: SweepSpec) -> int:
    """Refuse per-trial resources that no node of the cluster could ever grant; returns how many
    trials the cluster can run at once."""
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
    return slots_of(spec, nodes)


def slots_of(spec: SweepSpec, nodes: list[dict]) -> int:
    """Trials that fit at once on ``nodes`` (Ray resource dicts), capped by max_concurrent_trials."""
    per = []
    for n in nodes:
        fits = int(n.get("CPU", 0) // spec.resources.cpus)
        if spec.resources.gpus > 0:
            fits = min(fits, int(n.get("GPU", 0) // spec.resources.gpus))
        per.append(fits)
    slots = max(1, sum(per))
    return min(slots, spec.max_concurrent_trials) if spec.max_concurrent_trials else slots


def study_attrs(spec: SweepSpec, text: str, version: str, prepared: Prepared, optimizer: str, sched,
                adaptive: bool = False) -> dict:
    """The user attrs of the study ``spec.name/optimizer/sched.name``, keyed and ordered as
    ``storage.schema`` declares them (STUDY_ATTRS, then OPTIONAL_STUDY_ATTRS); a value for a key the
    schema does not declare is an error here rather than an undocumented attr in the database.
    ``optimizer_info`` is the optimizer's row of the trainers' table (:mod:`trainers.optimizers`)."""
    info = prepared.checked.info
    values = {
        "sweep": spec.name, "optimizer": optimizer, "schedule": sched.name, "dataset": spec.dataset,
        "model": spec.model, "batch_size": spec.batch_size, "n_train": info.n_train, "n_test": info.n_test,
        "n_val": info.n_val, "num_classes": info.num_classes, "chance": prepared.checked.chance,
        "schedule_params": sched.params, "grid_size": spec.study_grid_size(optimizer), "spec": spec_dict(spec),
        "basin_version": version, "metric": spec.metric, "decay": spec.decay,
        **({"curve_test": min(spec.curve_test, info.n_test)} if spec.curve_test else {}),
        "optimizer_info": optimizers.get(optimizer).attr(), "spec_toml": text,
        # λ/λ_norm for the whole budget T, by trainers.schedules' formula: how storage turns λ_norm* into raw λ*
        "lambda_scale": {str(T): normalized_weight_decay(1.0, spec.batch_size, info.n_train, T) for T in spec.budgets},
        "adaptive": bool(adaptive),
    }
    declared = [*STUDY_ATTRS, *OPTIONAL_STUDY_ATTRS]
    undeclared = sorted(set(values) - set(declared))
    if undeclared:
        raise ValueError(f"study attrs {', '.join(undeclared)} are not declared in storage.schema")
    return {key: values[key] for key in declared if key in values}


def open_studies(spec: SweepSpec, rdb, text: str, version: str, prepared: Prepared, adaptive: bool = False) -> dict:
    studies = {}
    for opt_name in spec.optimizers:
        for sched in spec.schedules:
            studies[(opt_name, sched.name)] = ensure_study(
                rdb, sweep=spec.name, optimizer=opt_name, schedule=sched.name,
                attrs=study_attrs(spec, text, version, prepared, opt_name, sched, adaptive),
            )
    return studies


def missing_points(spec: SweepSpec, rdb, points: list[Point] | None = None) -> list[Point]:
    """The grid points (``points``: a part of the grid, default all of it) without a COMPLETE trial."""
    from storage.sql import completed_points

    done = completed_points(rdb.engine, spec.name)
    return [p for p in (spec.points() if points is None else points) if p not in done]


class _Heartbeat:
    """Beats the claims still held every HEARTBEAT_S seconds, in a daemon thread."""

    def __init__(self, rdb, claims: dict[Point, int], lock: threading.Lock):
        self.rdb, self.claims, self.lock = rdb, claims, lock
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="basin-heartbeat", daemon=True)

    def _run(self):
        while not self.stop.wait(HEARTBEAT_S):
            with self.lock:
                ids = list(self.claims.values())
            try:
                beat(self.rdb, ids)
            except Exception:  # noqa: BLE001 - a missed beat only risks a claim going stale
                logging.getLogger(__name__).warning("heartbeat of %d claims failed", len(ids), exc_info=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)


def run_sweep(
    spec: SweepSpec, text: str, *, storage_url: str | None = None, address: str | None = None,
    verbose: bool = False, quiet: bool = False, limit: int | None = None, pack: int | str | None = None,
    trainable=None, code: str | None = None, prepared: Prepared | None = None, points: list[Point] | None = None,
    adaptive: bool = False,
) -> dict:
    """Run every grid point that has no COMPLETE trial and no live claim yet. Returns counts.

    ``points``: run only these points of the grid (an adaptive round, ``study.adaptive``, which sets
    ``adaptive``: the studies record that they ran so); the counts are then of them.
    ``pack`` overrides the spec's ``pack``, ``code`` its ``code`` folder. ``prepared``: the result
    of :func:`study.preflight.prepare` when the caller ran it already (else it runs here, first).
    ``trainable`` replaces :func:`run_pack` (same signature); tests use it to kill or break trials.
    """
    import ray
    from ray import tune

    prepared = prepared or prepare(spec, code)  # before anything is written or started
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pack = spec.pack if pack is None else pack
    rdb = open_storage(storage_url)
    missing = missing_points(spec, rdb, points)
    total = len(spec.points() if points is None else points)
    summary = {"total": total, "already_complete": total - len(missing), "run": 0, "in_flight": 0,
               "packs": 0, "failed": 0, "diverged": 0}
    if not missing:
        return summary
    if not verbose:
        # Ray's new console output prints an experiment table even at verbose=0; the classic one is silent.
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        # We disable Tune's result files, so its end-of-run summary would warn about each trial.
        logging.getLogger("ray.tune").setLevel(logging.ERROR)
    version = code_version()
    studies = open_studies(spec, rdb, text, version, prepared, adaptive)
    claims, in_flight = claim_points(rdb, studies, distributions(spec), missing[:limit] if limit else missing,
                                     spec.name)
    summary.update(run=len(claims), in_flight=len(in_flight))
    if not claims:
        return summary
    recorder = Recorder(spec, studies, version, rdb, claims)
    started_here = not ray.is_initialized()
    try:
        with _Heartbeat(rdb, claims, recorder.lock):
            connect_ray(address, verbose, prepared.runtime_env())
            slots = check_resources(spec)
            device = "auto" if spec.resources.gpus > 0 else "cpu"
            todo = [p for p in missing if p in claims]
            planned = packs_mod.plan(spec, todo, pack=pack, slots=slots, device=device, checked=prepared.checked)
            summary["packs"] = len(planned)
            progress = Progress(spec.name, len(todo), quiet=quiet)
            callback = _make_callback(recorder, progress)
            resources = {"cpu": spec.resources.cpus, "gpu": spec.resources.gpus}
            configs = [{"points": [asdict(p) for p in pk.points], "runs": list(pk.runs), "cpus": spec.resources.cpus,
                        "sweep": spec.name} for pk in planned]
            with tempfile.TemporaryDirectory(prefix="basin-tune-") as tmp:
                tuner = tune.Tuner(
                    tune.with_resources(trainable or run_pack, resources),
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
            progress.close()
            summary["failed"], summary["diverged"] = progress.failed, progress.diverged
        return summary
    finally:
        with recorder.lock:
            left = list(claims.values())
            claims.clear()
        # Points this driver will not run: FAIL at once, so the next driver takes them without waiting.
        release_claims(rdb, left, "the driver stopped before this point ran")
        if started_here:
            ray.shutdown()
