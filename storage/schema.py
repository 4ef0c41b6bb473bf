"""What Basin records, declared once: the grid point, the study name, and every user attr.

Symbols as in the paper: α the initial learning rate (param ``lr``), λ_norm the normalised weight
decay (param ``wd_norm``), λ = λ_norm·√(b/(B·T)) the raw decay (user attr ``wd``), T the budget in
epochs (param ``budget``), η_t the schedule multiplier (user attr ``eta``).

Layout of a sweep in an Optuna database:

* one study per (sweep, optimizer, schedule), named :func:`study_name`, direction minimise, with
  the :data:`STUDY_ATTRS` user attrs (the data set, B, C, n_test, the chance level, the spec);
* one trial per grid point (:class:`GridPoint`), params :data:`PARAMS`, value = the sweep's
  metric at the final epoch (:func:`trial_record` says which epoch is "final") — the test error
  by default, the test loss for a loss metric (study attr ``metric``, :func:`is_error_metric`) —
  intermediate values = that metric per epoch, and the :data:`TRIAL_ATTRS` user attrs.

The write side (:mod:`storage.record`) validates against these declarations; the read side
(:mod:`storage.frames`, :mod:`storage.exports`) decodes the attrs named here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

STATES = ("COMPLETE", "FAIL")
PARAMS = ("lr", "wd_norm", "budget", "seed")

#: Study user attrs every study must carry, with their types (ensure_study checks them).
STUDY_ATTRS: dict[str, type | tuple[type, ...]] = {
    "sweep": str,
    "optimizer": str,
    "schedule": str,
    "dataset": str,
    "model": str,
    "batch_size": int,  # b
    "n_train": int,  # B, the training points (after any validation split)
    "n_test": int,  # test-set size: the n of the binomial test-set noise of every error
    "n_val": int,  # examples held out of the training data as a validation split (0: none)
    "num_classes": int,  # C
    # the value a diverged run records: chance error 1 − 1/C; for a loss metric the untrained network's
    # test loss under the sweep's first seed, as the driver computed it (each diverged trial holds its
    # own seed's), None when the driver does not hold the test set
    "chance": (int, float),
    "schedule_params": dict,
    "grid_size": int,
    "spec": dict,
    "basin_version": str,
}

#: Study user attrs written by sweeps since they had them; a study without them is the default.
OPTIONAL_STUDY_ATTRS: dict[str, type | tuple[type, ...]] = {
    "metric": str,  # what the value is: "error" (default: test error in [0, 1]), "test_loss", or a loss function
    "decay": str,  # which parameters decayed: "all" (default, the paper) or "matrices" (not biases / norm weights)
    # test examples scored at the curve's epochs other than the last and the restart periods' ends
    # (absent: all n_test); the value of every trial is always scored on all n_test
    "curve_test": int,
    # the optimizer's row of trainers/optimizers.py's table (OPTIMIZER_INFO's keys): how storage and the
    # dashboard, which import no trainers, learn its decay form, labels and comparison pair
    "optimizer_info": dict,
    "spec_toml": str,  # the spec file as the user wrote it
    # {T: λ/λ_norm = √(b/(B·T))} for each budget T of the spec, by trainers.schedules.normalized_weight_decay:
    # raw λ* of the budget answer without storage computing the formula (with warm restarts the runs'
    # recorded λ is the first period's, so it cannot serve)
    "lambda_scale": dict,
    # the sweep ran in adaptive rounds (study.adaptive): the first seed on every cell, the others where
    # the doubt is — fewer trials than grid_size is then its finished state, not an unfinished sweep
    "adaptive": bool,
}
ERROR_METRIC = "error"  # the metric of a study without a ``metric`` attr (trainers.metrics.ERROR)
DEFAULT_DECAY = "all"


#: The keys of the ``optimizer_info`` study attr (a row of ``trainers.optimizers.TABLE``): the name; the
#: family ("sgd", "adam"); where the decay sits ("coupled": L2 in the gradient, "decoupled": λ·η_t,
#: the paper's, "lr-coupled": λ·α·η_t, torch's AdamW); the display labels (plain, and of the
#: warm-restart variant, None: the plain one); the decoupled optimizer it is compared against (None:
#: it is a reference itself).
OPTIMIZER_INFO = ("name", "family", "decay_form", "label", "restart_label", "pair")

#: The legacy fallback — the one place storage names optimizers itself: studies recorded before the
#: ``optimizer_info`` attr existed are read as these rows (trainers/optimizers.py's table when the attr
#: was introduced; tests/study/test_optimizer_info.py holds the two equal).
LEGACY_OPTIMIZER_INFO: dict[str, dict[str, str | None]] = {
    row[0]: dict(zip(OPTIMIZER_INFO, row)) for row in (
        ("sgd", "sgd", "coupled", "SGD+L2", "SGDR+L2", "sgdw"),
        ("sgdw", "sgd", "decoupled", "SGDW", "SGDWR", None),
        ("adam", "adam", "coupled", "Adam+L2", "AdamR+L2", "adamw"),
        ("adamw", "adam", "decoupled", "AdamW", "AdamWR", None),
        ("adamw-torch", "adam", "lr-coupled", "AdamW (torch, lr-coupled)", None, "adamw"),
    )
}


def optimizer_info(optimizer: str, recorded: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A study's optimizer facts (keys :data:`OPTIMIZER_INFO`): its recorded ``optimizer_info`` attr,
    else the legacy fallback row of its name, else a row that knows only the name (label = name;
    family, decay form and pair None)."""
    row = dict.fromkeys(OPTIMIZER_INFO)
    row.update(name=optimizer, label=optimizer)
    row.update(LEGACY_OPTIMIZER_INFO.get(optimizer, {}))
    if isinstance(recorded, Mapping):
        row.update((k, recorded[k]) for k in OPTIMIZER_INFO if k in recorded)
    return row


def is_error_metric(metric: str | None) -> bool:
    """Whether a study's values are classification errors in [0, 1] (None: a study from before
    ``metric`` was recorded, so an error); else they are losses, any finite number."""
    return metric is None or metric == ERROR_METRIC

#: Per-epoch list attrs of a COMPLETE trial (one entry per epoch run; a diverged run's lists end early).
LIST_ATTRS = ("train_loss", "train_error", "test_error", "test_loss", "eta", "wd_per_epoch")

#: Trial user attrs a COMPLETE trial must carry (a FAIL trial needs only ``error``).
TRIAL_ATTRS: dict[str, type | tuple[type, ...]] = {
    **{key: list for key in LIST_ATTRS},
    "diverged": bool,
    "wd": (int, float),  # raw λ at the first step
    "seconds": (int, float),  # wall time of the run
    "node": str,  # host name
    "device": str,
    "code_version": str,
    "restart_epochs": list,  # epochs that end a restart period (SuppFigure 1's recommended solutions)
}

#: Trial user attrs written when known, read by exports (and the answers that need them).
OPTIONAL_TRIAL_ATTRS: dict[str, type | tuple[type, ...]] = {
    "error": str,  # FAIL: what went wrong
    "recommended_epoch": int,  # the epoch whose test error is the trial's value
    "node_id": str,  # Ray node id
    "worker_pid": int,  # the Ray worker process (shows actor reuse)
    "pack": str,  # the pack (one Ray trial) that trained this point with others: "<sweep>#<Tune trial id>"
    "pack_size": int,  # how many points that pack trained together (1: unpacked)
    "claimed_by": str,  # the driver that claimed and ran the point: "host:pid:start"
    "val_error": list,  # per epoch, on the validation split, when the sweep has one
    "val_loss": list,
    "val_value": (int, float),  # the validation metric of the recommended epoch: what selection uses
    "test_se": list,  # loss metrics, per epoch: sd of the per-example test losses / √n_test (the mean's noise)
    "value_se": (int, float),  # loss metrics: test_se of the recommended epoch (the value's noise)
    # error metrics: the test examples the recommended epoch got wrong, one bit per example in test-set order,
    # numpy.packbits then base64 (≈ n_test/6 characters; trainers.run.encode_wrong). Read by trial id for the
    # paired comparison only (storage.evidence.paired), never by the bulk frames or exports (not in SCALAR_ATTRS)
    "test_wrong": str,
}

#: Scalar attrs the tidy trial frame decodes by default (each one more is a pass over the attr table).
FRAME_ATTRS = ("diverged", "wd", "seconds", "node", "error")
#: Every scalar attr Basin records: what exports carry.
SCALAR_ATTRS = (*FRAME_ATTRS, "device", "code_version", "recommended_epoch", "node_id", "worker_pid", "pack",
                "pack_size", "claimed_by", "val_value", "value_se")

_SIGNIFICANT_DIGITS = 12


def normalise_float(x: float) -> float:
    """``x`` rounded to 12 significant digits: the identity of a grid coordinate.

    α = 2⁻⁷ from a spec and the float read back from the database (or computed as 10**-2.1 on
    another machine) agree to far more than 12 digits, so they map to the same key.
    """
    x = float(x)
    return float(f"{x:.{_SIGNIFICANT_DIGITS}g}") if math.isfinite(x) else x


@dataclass(frozen=True, eq=False)
class GridPoint:
    """One grid point of a sweep: (optimizer, schedule, α, λ_norm, budget T, seed).

    Equality and hashing go through :meth:`key`, which rounds α and λ_norm to 12 significant
    digits, so a point read back from the database equals the point built from the spec.
    The exact floats are kept (and recorded) as given.
    """

    optimizer: str
    schedule: str
    lr: float
    wd_norm: float
    budget: int
    seed: int

    def key(self) -> tuple[str, str, float, float, int, int]:
        return (
            self.optimizer,
            self.schedule,
            normalise_float(self.lr),
            normalise_float(self.wd_norm),
            int(self.budget),
            int(self.seed),
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GridPoint) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def params(self) -> dict[str, float | int]:
        """The Optuna params of this point: ``lr``, ``wd_norm``, ``budget``, ``seed``."""
        return {"lr": float(self.lr), "wd_norm": float(self.wd_norm), "budget": int(self.budget), "seed": int(self.seed)}


def study_name(sweep: str, optimizer: str, schedule: str) -> str:
    """``"{sweep}/{optimizer}/{schedule}"``; optimizer and schedule may not contain ``/``."""
    for label, value in (("sweep", sweep), ("optimizer", optimizer), ("schedule", schedule)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{label} must be a non-empty string, got {value!r}")
    for label, value in (("optimizer", optimizer), ("schedule", schedule)):
        if "/" in value:
            raise ValueError(f"{label} may not contain '/', got {value!r}")
    return f"{sweep}/{optimizer}/{schedule}"


@dataclass(frozen=True)
class TrialRecord:
    """One finished run as :func:`storage.record.record_trial` writes it."""

    value: float
    intermediate: dict[int, float | None]
    user_attrs: dict[str, Any]


def trial_record(epochs: Sequence[Mapping[str, Any]], metric: str = ERROR_METRIC, **attrs: Any) -> TrialRecord:
    """The COMPLETE trial of a run from its per-epoch results (``trainers.run.EpochResult.to_json()``).

    value: the ``metric`` — test error, else test loss — of the *recommended* epoch: with warm
    restarts the last epoch that ends a restart period (SuppFigure 1: the solution just before a
    restart is the recommended one), else the last epoch; a diverged run records its last epoch
    (the chance level). Intermediate values: the same metric per epoch. ``attrs`` adds or
    overrides user attrs (e.g. ``code_version``, ``node_id``, ``worker_pid``); the per-epoch lists
    of :data:`LIST_ATTRS` come from the epochs (key ``wd`` of an epoch → ``wd_per_epoch``). Under an
    error metric the recommended epoch's ``test_wrong`` (which test examples it got wrong) is kept,
    unless the run diverged (its value is no measurement).
    """
    if not epochs:
        raise ValueError("a run with no epoch has nothing to record")
    last = epochs[-1]
    diverged = bool(last.get("diverged"))
    ends = [int(r["epoch"]) for r in epochs if r.get("period_end")]
    recommended = ends[-1] if ends and not diverged else int(last["epoch"])
    key = "test_error" if is_error_metric(metric) else "test_loss"
    value = next(r[key] for r in epochs if int(r["epoch"]) == recommended)
    source = {key: key for key in LIST_ATTRS} | {"wd_per_epoch": "wd"}
    user_attrs: dict[str, Any] = {key: [r.get(field) for r in epochs] for key, field in source.items()}
    if last.get("val_error") is not None or last.get("val_loss") is not None:  # a validation split: selection reads val_value
        val_key = "val_error" if is_error_metric(metric) else "val_loss"
        user_attrs.update(val_error=[r.get("val_error") for r in epochs], val_loss=[r.get("val_loss") for r in epochs],
                          val_value=next(r[val_key] for r in epochs if int(r["epoch"]) == recommended))
    wrong = next((r.get("test_wrong") for r in epochs if int(r["epoch"]) == recommended), None)
    if is_error_metric(metric) and wrong is not None and not diverged:  # the value's wrong examples
        user_attrs["test_wrong"] = wrong
    if not is_error_metric(metric):  # the test-set noise of a loss, which no binomial gives
        user_attrs["test_se"] = [r.get("test_se") for r in epochs]
        user_attrs["value_se"] = next(r.get("test_se") for r in epochs if int(r["epoch"]) == recommended)
    user_attrs.update(
        diverged=diverged, wd=epochs[0]["wd"], seconds=last["seconds"], node=last.get("node", ""),
        device=last.get("device", ""), restart_epochs=ends, recommended_epoch=recommended,
    )
    user_attrs.update(attrs)
    return TrialRecord(value, {int(r["epoch"]): r[key] for r in epochs}, user_attrs)


__all__ = [
    "DEFAULT_DECAY",
    "ERROR_METRIC",
    "FRAME_ATTRS",
    "LEGACY_OPTIMIZER_INFO",
    "LIST_ATTRS",
    "OPTIMIZER_INFO",
    "OPTIONAL_STUDY_ATTRS",
    "OPTIONAL_TRIAL_ATTRS",
    "PARAMS",
    "SCALAR_ATTRS",
    "STATES",
    "STUDY_ATTRS",
    "TRIAL_ATTRS",
    "GridPoint",
    "TrialRecord",
    "is_error_metric",
    "normalise_float",
    "optimizer_info",
    "study_name",
    "trial_record",
]
