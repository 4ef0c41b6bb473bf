"""Sweep specs: a TOML file, validated, expanded into the grid of points.

A spec (every key; see examples/ and the README)::

    name = "figure2-mnist1d"          # the sweep's name; studies are <name>/<optimizer>/<schedule>
    dataset = "mnist1d"               # a registered name (basin.datasets) or "package.module:function"
    model = "cnn"                     # a registered name (basin.models) or "package.module:function"
    metric = "error"                  # optional: error | test_loss | "package.module:function" (trainers.metrics)
    decay = "all"                     # optional: which parameters decay: all | matrices (trainers.optim.decays)
    code = "src"                      # optional: folder of the user's code, shipped to the Ray workers
                                      # (relative to the spec file's folder)
    batch_size = 128
    budgets = [20]                    # epochs, each ≥ 1
    seeds = [0]
    data_dir = "data"                 # optional: folder of file-based data sets
    max_concurrent_trials = 2         # optional: default = as many as resources allow
    max_failures = 2                  # optional: retries of a trial whose worker died
    pack = "auto"                     # optional: grid points trained together per trial ("auto" | N; 1 = unpacked)
    validation = 0.1                  # optional: fraction of the training data held out to select on (default 0)
    n_test = 20000                    # optional: test examples (default: the data set's own test set;
                                      # MNIST-1D generates more; other sets keep their first n_test)
    curve_test = 1000                 # optional: test examples scored at the curve's other epochs (default: all;
                                      # the last epoch and every restart period's end always score all)

    [resources]                       # per trial
    cpus = 1
    gpus = 0                          # fractions allowed, e.g. 0.25

    [adaptive]                        # optional: seeds where the doubt is (study.adaptive)
    radius = 0                        # the first seed on every cell, then every seed on the plausible optima
    max_radius = 2                    # and, per basin row, the best cell ± radius and the edge's cells;
    max_runs = 500                    # the window widens to max_radius while a verdict is undecided

    [[schedules]]                     # one or more
    name = "cosine"                   # fixed | step-drop | cosine | warm-restarts (+ their parameters)

    [optimizers.sgd]                  # one table per optimizer: its α grid and λ_norm grid
    lr = { start = -6, stop = 1, num = 8 }        # log grid: base^start … base^stop (base = 2 by default)
    wd_norm = [0.0125, 0.025, 0.05]               # or an explicit list
    momentum = 0.9                    # optional; also momentum_form, betas, eps

Grid = optimizer × schedule × α × λ_norm × budget × seed, one trial per point.
"""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from storage.schema import GridPoint as Point
from trainers import metrics, optim, registry, schedules
from trainers.run import DEFAULTS


class SpecError(ValueError):
    """A bad spec, as one line naming the field (with file and line where known) and the fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LogGrid(_Strict):
    """``base**start … base**stop`` in ``num`` points (numpy.logspace): the paper's powers-of-2 axes."""

    start: float
    stop: float
    num: int = Field(ge=1)
    base: float = Field(default=2.0, gt=1.0)

    def values(self) -> list[float]:
        return [float(v) for v in np.logspace(self.start, self.stop, self.num, base=self.base)]


def _grid_values(value: list[float] | LogGrid, field: str) -> list[float]:
    values = value.values() if isinstance(value, LogGrid) else list(value)
    if not values:
        raise ValueError(f"{field} grid is empty; give at least one value")
    for v in values:
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{field} grid values must be finite and > 0 (log axes); got {v!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{field} grid has repeated values: {values}")
    return sorted(values)


class OptimizerGrid(_Strict):
    lr: list[float] | LogGrid
    wd_norm: list[float] | LogGrid
    momentum: float = DEFAULTS["momentum"]
    momentum_form: Literal["paper", "torch"] = DEFAULTS["momentum_form"]
    betas: tuple[float, float] = DEFAULTS["betas"]
    eps: float = DEFAULTS["eps"]

    @field_validator("lr", "wd_norm")
    @classmethod
    def _positive(cls, value, info):
        _grid_values(value, info.field_name)
        return value


class ScheduleSpec(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)

    name: str

    @property
    def params(self) -> dict:
        return dict(self.model_extra or {})


class Resources(_Strict):
    cpus: float = Field(default=1.0, gt=0)
    gpus: float = Field(default=0.0, ge=0)


class Adaptive(_Strict):
    """``[adaptive]``: the first seed on every cell, then every seed only where the doubt is
    (``study.adaptive``; the rule: ``storage.evidence.doubt``)."""

    radius: int = Field(default=0, ge=0)      # columns around each row's best cell in the first round
    max_radius: int = Field(default=2, ge=0)  # the widest window while a coupling verdict is undecided
    max_runs: int | None = Field(default=None, ge=1)  # the run budget (default: the full grid's)

    @model_validator(mode="after")
    def _radii(self) -> "Adaptive":
        if self.max_radius < self.radius:
            raise ValueError(f"max_radius ({self.max_radius}) must be >= radius ({self.radius})")
        return self


class SweepSpec(_Strict):
    name: str = Field(min_length=1)
    dataset: str
    model: str
    metric: str = DEFAULTS["metric"]
    decay: Literal["all", "matrices"] = DEFAULTS["decay"]
    code: str | None = None
    batch_size: int = Field(default=DEFAULTS["batch_size"], ge=1)
    budgets: list[int]
    seeds: list[int] = [0]
    data_dir: str | None = None
    max_concurrent_trials: int | None = Field(default=None, ge=1)
    max_failures: int = Field(default=2, ge=0)
    pack: Literal["auto"] | int = "auto"
    validation: float = Field(default=DEFAULTS["validation"], ge=0.0, lt=0.5)
    n_test: int | None = Field(default=DEFAULTS["n_test"], ge=1)
    curve_test: int | None = Field(default=DEFAULTS["curve_test"], ge=1)
    resources: Resources = Resources()
    adaptive: Adaptive | None = None
    schedules: list[ScheduleSpec]
    optimizers: dict[str, OptimizerGrid]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if "/" in value or value != value.strip():
            raise ValueError("must not contain '/' or surrounding spaces (studies are named <name>/<optimizer>/<schedule>)")
        return value

    @field_validator("pack")
    @classmethod
    def _pack(cls, value):
        if isinstance(value, bool) or (isinstance(value, int) and value < 1):
            raise ValueError(f'must be "auto" or an integer >= 1 (points per trial; 1 = unpacked); got {value!r}')
        return value

    @field_validator("dataset", "model", "metric")
    @classmethod
    def _reference(cls, value: str, info) -> str:
        """A registered name or a well-formed reference; importing it is the driver's check."""
        try:
            if info.field_name == "metric":
                return metrics.check(value)
            return registry.check(info.field_name, value)
        except ValueError as exc:
            raise ValueError(str(exc).removeprefix(f"{info.field_name}: ")) from None

    @field_validator("budgets")
    @classmethod
    def _budgets(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("is empty; give at least one budget in epochs, e.g. budgets = [20]")
        if any(b < 1 for b in value):
            raise ValueError(f"budgets must be >= 1 epoch; got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"has repeated values: {value}")
        return sorted(value)

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("is empty; give at least one seed, e.g. seeds = [0]")
        if any(s < 0 for s in value) or len(set(value)) != len(value):
            raise ValueError(f"seeds must be distinct integers >= 0; got {value}")
        return value

    @model_validator(mode="after")
    def _adaptive_seeds(self) -> "SweepSpec":
        if self.adaptive is not None and len(self.seeds) < 2:
            raise ValueError("adaptive: needs at least two seeds to add where the doubt is; "
                             "give seeds = [0, 1, 2] or remove the [adaptive] table")
        return self

    @field_validator("schedules")
    @classmethod
    def _schedules(cls, value: list[ScheduleSpec]) -> list[ScheduleSpec]:
        if not value:
            raise ValueError("is empty; add at least one [[schedules]] table, e.g. name = \"cosine\"")
        names = [s.name for s in value]
        if len(set(names)) != len(names):
            raise ValueError(f"each schedule may appear once; got {names}")
        return value

    @field_validator("optimizers")
    @classmethod
    def _optimizers(cls, value: dict[str, OptimizerGrid]) -> dict[str, OptimizerGrid]:
        if not value:
            raise ValueError("is empty; add at least one [optimizers.NAME] table")
        for name in value:
            if name not in optim.OPTIMIZERS:
                raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(optim.OPTIMIZERS)}")
        return value

    @model_validator(mode="after")
    def _schedule_params(self) -> "SweepSpec":
        for i, s in enumerate(self.schedules):
            for budget in self.budgets:
                try:
                    schedules.make(s.name, budget, **s.params)
                except ValueError as exc:
                    raise ValueError(f"schedules[{i}] ({s.name}): {exc}") from None
        for name, grid in self.optimizers.items():
            try:
                optim.build(name, [__import__("torch").zeros(1, requires_grad=True)], lr=1.0, weight_decay=0.0,
                            momentum=grid.momentum, momentum_form=grid.momentum_form, betas=grid.betas, eps=grid.eps)
            except ValueError as exc:
                raise ValueError(f"optimizers.{name}: {exc}") from None
        return self

    # -- the grid --------------------------------------------------------------------------------
    def lr_values(self, optimizer: str) -> list[float]:
        return _grid_values(self.optimizers[optimizer].lr, "lr")

    def wd_norm_values(self, optimizer: str) -> list[float]:
        return _grid_values(self.optimizers[optimizer].wd_norm, "wd_norm")

    def points(self) -> list["Point"]:
        """Every grid point: optimizer × schedule × α × λ_norm × budget × seed."""
        out = []
        for opt_name in self.optimizers:
            for sched in self.schedules:
                for lr in self.lr_values(opt_name):
                    for wd_norm in self.wd_norm_values(opt_name):
                        for budget in self.budgets:
                            for seed in self.seeds:
                                out.append(Point(opt_name, sched.name, lr, wd_norm, budget, seed))
        return out

    def first_points(self) -> list["Point"]:
        """The grid points of the first seed: an adaptive sweep's first round."""
        return [p for p in self.points() if p.seed == self.seeds[0]]

    def study_grid_size(self, optimizer: str) -> int:
        return len(self.lr_values(optimizer)) * len(self.wd_norm_values(optimizer)) * len(self.budgets) * len(self.seeds)

    def schedule(self, name: str) -> ScheduleSpec:
        return next(s for s in self.schedules if s.name == name)

    def run_config(self, point: "Point", device: str = "auto") -> dict:
        """The trainers.run.RunConfig keyword arguments of one point."""
        grid = self.optimizers[point.optimizer]
        return dict(
            dataset=self.dataset, model=self.model, optimizer=point.optimizer, lr=point.lr,
            wd_norm=point.wd_norm, schedule=point.schedule, schedule_params=self.schedule(point.schedule).params,
            epochs=point.budget, batch_size=self.batch_size, seed=point.seed, device=device,
            data_dir=self.data_dir, validation=self.validation, momentum=grid.momentum, momentum_form=grid.momentum_form,
            betas=tuple(grid.betas), eps=grid.eps, metric=self.metric, decay=self.decay, n_test=self.n_test,
            curve_test=self.curve_test,
        )


def _line_of(text: str, loc: tuple) -> int | None:
    """Best-effort line number of a field path in the TOML text (TOML parsers give none for values)."""
    keys = [str(k) for k in loc if isinstance(k, str)]
    lines = text.splitlines()
    # A table header like [optimizers.sgd] or a "key =" assignment; search the most specific first.
    for depth in range(len(keys), 0, -1):
        key = keys[depth - 1]
        header = re.compile(r"^\s*\[+\s*" + re.escape(".".join(keys[:depth])) + r"\s*\]+")
        assign = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
        for pattern in (header, assign):
            for i, line in enumerate(lines, 1):
                if pattern.search(line):
                    return i
    return None


def parse_spec(text: str, source: str = "<spec>") -> SweepSpec:
    """Parse and validate TOML text; raise SpecError with one clear line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{source}: not valid TOML: {exc}") from None
    try:
        return SweepSpec.model_validate(raw)
    except ValidationError as exc:
        # In a union (a list or a {start, stop, num} table) the wrong-shape branch says only "should be a
        # list"/"a valid dict": report the branch that matched the value's shape.
        shape_errors = ("list_type", "model_type", "model_attributes_type", "dict_type")
        err = sorted(exc.errors(), key=lambda e: e["type"] in shape_errors)[0]
        loc = tuple(err["loc"])
        path = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[") or "(top level)"
        # pydantic's union errors name the member types in the path: drop them.
        path = re.sub(r"\.(list\[float\]|LogGrid)", "", path)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key; remove it or check its spelling (see the spec format in the README)"
        elif err["type"] == "missing":
            msg = "is required"
        line = _line_of(text, loc)
        where = f"{source}:{line}" if line else source
        raise SpecError(f"{where}: {path}: {msg}") from None


def load_spec(path: str | Path) -> tuple[SweepSpec, str]:
    """Read and validate a spec file; returns the spec and its text. A relative ``code`` folder is
    made absolute against the spec file's folder."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read the spec file ({exc.__class__.__name__}: {exc}); check the path") from None
    spec = parse_spec(text, str(path))
    if spec.code is not None:  # relative to the spec file's folder, wherever basin runs
        spec = spec.model_copy(update={"code": str((path.parent / Path(spec.code).expanduser()).resolve())})
    return spec, text


def spec_dict(spec: SweepSpec) -> dict[str, Any]:
    """The spec as JSON-able data (kept in each study so it can be re-run)."""
    return spec.model_dump(mode="json")
