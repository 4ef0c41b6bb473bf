"""One training run: a validated :class:`RunConfig` in, one :class:`EpochResult` per epoch out.

This is what one trial of a sweep executes. It knows nothing of Ray, Optuna or Dash.

Per batch t (fractional epoch e = t / batches-per-epoch):
    η_t = schedule.multiplier(e)                         (torch LambdaLR sets lr = α·η_t)
    λ   = λ_norm·√(b / (B·T_i))                          (T_i the current restart period, else the budget)
and the optimizer (trainers.optim) applies the paper's update with α, λ and η_t.

Model and data set are names or references (:mod:`trainers.registry`); what is minimised and
reported as the run's value, and when a run counts as diverged, is the metric's
(:mod:`trainers.metrics`); which parameters decay is ``decay`` (:func:`trainers.optim.decays`).
"""

from __future__ import annotations

import base64
import functools
import math
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import MISSING, asdict, dataclass, field, fields

import numpy as np
import torch
import torch.nn.functional as F

from trainers import data as data_mod
from trainers import metrics, models, optim, registry, schedules
from trainers.metrics import DIVERGENCE_FACTOR

DTYPES = {"float32": torch.float32, "float64": torch.float64}
CHECK_EVERY_GPU = 25  # batches between divergence checks on a GPU (each check is a device sync)


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs. Validated on construction (ValueError naming the field)."""

    dataset: str = "digits"  # a registered name or "package.module:function" (trainers.data.load)
    model: str = "cnn"  # a registered name or "package.module:function" (trainers.models.build)
    optimizer: str = "adamw"
    lr: float = 1e-3  # α
    wd_norm: float = 0.025  # λ_norm
    schedule: str = "cosine"
    schedule_params: dict = field(default_factory=dict)
    epochs: int = 10  # the budget
    batch_size: int = 128
    seed: int = 0
    device: str = "cpu"  # "cpu", "cuda", "cuda:N" or "auto"
    data_dir: str | None = None
    download: bool = False
    momentum: float = 0.9
    momentum_form: str = "paper"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    compile: bool = False  # torch.compile the model (CUDA only)
    dtype: str = "float32"  # "float64" for exactness tests
    validation: float = 0.0  # fraction of the training set held out as a validation split (0: none)
    metric: str = metrics.ERROR  # "error", "test_loss" or "package.module:function" (trainers.metrics)
    decay: str = "all"  # which parameters decay: "all" or "matrices" (trainers.optim.decays)
    n_test: int | None = None  # test examples (None: the data set's own; MNIST-1D generates more: trainers.data.load)
    curve_test: int | None = None  # test examples scored at the curve's other epochs (None: all); see train()

    def __post_init__(self) -> None:
        def bad(name: str, msg: str):
            raise ValueError(f"{name}: {msg}")

        registry.check("dataset", self.dataset)
        registry.check("model", self.model)
        metrics.check(self.metric)
        if self.decay not in optim.DECAYS:
            bad("decay", f"must be one of {', '.join(optim.DECAYS)}; got {self.decay!r}")
        if self.optimizer not in optim.OPTIMIZERS:
            bad("optimizer", f"must be one of {', '.join(optim.OPTIMIZERS)}; got {self.optimizer!r}")
        for name in ("lr", "wd_norm"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0 or (name == "lr" and value == 0):
                bad(name, f"must be a finite number {'> 0' if name == 'lr' else '>= 0'}; got {value!r}")
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(name, f"must be an integer >= 1; got {value!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            bad("seed", f"must be an integer >= 0; got {self.seed!r}")
        if not isinstance(self.validation, (int, float)) or not 0.0 <= self.validation < 0.5:
            bad("validation", f"must be a fraction in [0, 0.5) of the training set; got {self.validation!r}")
        for name in ("n_test", "curve_test"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                bad(name, f"must be an integer >= 1 (or left out); got {value!r}")
        if self.dtype not in DTYPES:
            bad("dtype", f"must be one of {', '.join(DTYPES)}; got {self.dtype!r}")
        if not (self.device in ("cpu", "cuda", "auto") or self.device.startswith("cuda:")):
            bad("device", f"must be cpu, cuda, cuda:N or auto; got {self.device!r}")
        try:
            schedules.make(self.schedule, self.epochs, **self.schedule_params)
        except ValueError as exc:
            bad("schedule", str(exc))
        try:  # validate optimizer hyper-parameters on a throwaway tensor
            optim.build(self.optimizer, [torch.zeros(1, requires_grad=True)], lr=self.lr, weight_decay=0.0,
                        momentum=self.momentum, betas=tuple(self.betas), eps=self.eps, momentum_form=self.momentum_form)
        except ValueError as exc:
            bad("optimizer", str(exc))

    def to_dict(self) -> dict:
        return asdict(self)


#: Every RunConfig field's default, read without building a config (building one validates its
#: optimizer on a throwaway tensor, which costs torch's first-optimizer import): one source for
#: `basin train`, the sweep spec and the API.
DEFAULTS = {f.name: f.default for f in fields(RunConfig) if f.default is not MISSING}


@dataclass
class EpochResult:
    """What a run reports at the end of each epoch. Errors are fractions in [0, 1] (None under a
    metric function: no classes); losses are the metric's (mean cross-entropy by default)."""

    epoch: int
    train_loss: float
    train_error: float | None
    test_error: float | None
    test_loss: float
    eta: float  # η_t of the epoch's last step
    wd: float  # raw λ of the epoch's last step
    seconds: float  # since the start of training
    diverged: bool = False
    period_end: bool = False  # the epoch ends a (restart) period: a recommended solution
    node: str = ""
    device: str = ""
    val_error: float | None = None  # on the validation split, when the run has one
    val_loss: float | None = None
    test_se: float | None = None  # loss metrics: sd of the per-example test losses / √n_test
    #: error metrics, on the epochs a trial's value can come from (:func:`value_epochs`): which test
    #: examples the run got wrong, a bit per example (:func:`encode_wrong`); the paired comparison reads it
    test_wrong: str | None = None

    def to_json(self) -> dict:
        """JSON-safe dict (non-finite floats become None)."""
        out = asdict(self)
        for key, value in out.items():
            if isinstance(value, float) and not math.isfinite(value):
                out[key] = None
        return out


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {name!r} asked for but CUDA is not available here; use --device cpu")
    return device


@functools.lru_cache(maxsize=4)
def _load_dataset(name: str, data_dir: str | None, download: bool, validation: float = 0.0,
                  n_test: int | None = None) -> data_mod.Dataset:
    """Loaded once per process: a Ray worker reused across trials does not reload its data set."""
    ds = data_mod.load(name, data_dir=data_dir, download=download, n_test=n_test)
    return data_mod.split_validation(ds, validation) if validation else ds


def chance_error(num_classes: int) -> float:
    """The error of guessing, 1 − 1/C: what a diverged run records (the worst cell of a heatmap)."""
    return 1.0 - 1.0 / num_classes


@dataclass(frozen=True)
class DatasetInfo:
    """What a sweep records about its data set: B (of λ = λ_norm·√(b/(B·T))), n_test, C, chance,
    and the shape of one example."""

    n_train: int
    n_test: int
    num_classes: int
    input_shape: tuple[int, ...]
    n_val: int = 0

    @property
    def chance(self) -> float:
        return chance_error(self.num_classes)


def dataset_info(config: RunConfig) -> DatasetInfo:
    """The :class:`DatasetInfo` of the run's data set: loaded when it is on this host (once per
    process), else the published sizes of Basin's file-based sets (a driver host need not hold them)."""
    try:
        ds = _load_dataset(config.dataset, config.data_dir, config.download, config.validation, config.n_test)
    except data_mod.DataError as exc:
        if config.dataset in data_mod.PUBLISHED_SIZES and not isinstance(exc, data_mod.NTestError):
            n_train, n_test, classes, shape = data_mod.PUBLISHED_SIZES[config.dataset]
            if config.n_test is not None and config.n_test > n_test:
                raise data_mod.NTestError(config.dataset, n_test) from None
            n_test = config.n_test or n_test
            n_val = math.ceil(config.validation * n_train)  # train_test_split's rounding of the held-out share
            return DatasetInfo(n_train - n_val, n_test, classes, shape, n_val)
        raise
    n_val = 0 if ds.x_val is None else int(ds.x_val.shape[0])
    return DatasetInfo(ds.n_train, int(ds.x_test.shape[0]), ds.num_classes, ds.input_shape, n_val)


@dataclass(frozen=True)
class Evaluation:
    """A pass over the test set or the validation split: mean loss, error (None without classes),
    the standard error of the mean loss (sd of the per-example losses / √n), and — when asked for
    (``keep_wrong``) and the run has classes — which examples it got wrong (bool (n,), on the CPU)."""

    loss: float
    error: float | None
    se: float
    wrong: torch.Tensor | None = None


def encode_wrong(wrong) -> str:
    """The examples a run got wrong (bool, one per test example, in test-set order) as text: the bits
    packed with numpy.packbits (big-endian within a byte, zero-padded to whole bytes) and base64-encoded,
    ≈ n/6 characters. ``storage.evidence.paired.decode_wrong`` reads it back, given n."""
    bits = np.asarray(wrong.cpu() if isinstance(wrong, torch.Tensor) else wrong, dtype=bool).ravel()
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def evaluate(model, x_all, y_all, batch_size: int, amp: bool, loss_fn=None, metric: str = metrics.ERROR, *,
             keep_wrong: bool = False) -> Evaluation:
    """``model`` on (x_all, y_all) in eval mode: the test set or the validation split. ``loss_fn``
    is the metric's function (None: cross-entropy of logits, with errors; ``keep_wrong`` keeps which
    examples were wrong)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=x_all.device)
    square_sum = torch.zeros((), dtype=torch.float64, device=x_all.device)
    wrong, n = 0, 0
    misses = []
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        for x, y in data_mod.eval_batches(x_all, y_all, batch_size):
            if loss_fn is None:
                out = model(x)
                out = out.float() if amp else out  # bf16 logits to float32; float64 runs stay float64
                losses = metrics.cross_entropy_losses(out, y)
                miss = out.argmax(1) != y
                wrong += miss.sum().item()
                if keep_wrong:
                    misses.append(miss)
            else:
                losses = metrics.example_losses(loss_fn, model, x, y, metric)
            loss_sum += losses.sum().double()
            square_sum += losses.double().square().sum()
            n += int(x.shape[0])
    total, squares = loss_sum.item(), square_sum.item()
    mask = torch.cat(misses).cpu() if keep_wrong and loss_fn is None else None
    return Evaluation(total / n, wrong / n if loss_fn is None else None, metrics.standard_error(total, squares, n), mask)


def untrained(model, ds: data_mod.Dataset, batch_size: int, amp: bool, loss_fn, metric: str) -> tuple[float, float | None]:
    """(test loss, validation loss or None) of the network as built: the chance level of a loss
    metric. Leaves the global RNG and the model's mode as they were."""
    state, was_training = torch.random.get_rng_state(), model.training
    try:
        test = evaluate(model, ds.x_test, ds.y_test, batch_size, amp, loss_fn, metric).loss
        val = None if ds.x_val is None else evaluate(model, ds.x_val, ds.y_val, batch_size, amp, loss_fn, metric).loss
    finally:
        torch.random.set_rng_state(state)
        model.train(was_training)
    return test, val


def divergence_bound(num_classes: int) -> float:
    """A batch loss above DIVERGENCE_FACTOR·ln(C) (chance is ln C) counts as diverged (error metric)."""
    return DIVERGENCE_FACTOR * math.log(num_classes)


def run_bound(config: RunConfig, num_classes: int, untrained_loss: float | None) -> float:
    """The divergence bound of a run: DIVERGENCE_FACTOR·ln C under the error metric, else
    DIVERGENCE_FACTOR·|untrained loss| (:func:`trainers.metrics.loss_bound`)."""
    if metrics.is_error(config.metric):
        return divergence_bound(num_classes)
    return metrics.loss_bound(untrained_loss)


def period_end_epochs(schedule: schedules.Schedule) -> set[int]:
    """The whole epochs that end a restart period (the recommended solutions of SuppFigure 1)."""
    return {round(e) for e in schedule.period_ends() if abs(e - round(e)) < 1e-9}


def weight_decay_at(config: RunConfig, n_train: int, schedule: schedules.Schedule, epoch: float) -> float:
    """Raw λ at fractional ``epoch``: λ_norm·√(b/(B·T_i)), T_i the restart period holding it."""
    return schedules.normalized_weight_decay(config.wd_norm, config.batch_size, n_train, schedule.period(epoch).length)


def run_data(config: RunConfig, device: torch.device) -> data_mod.Dataset:
    """The run's data set on ``device`` in the run's dtype (loaded once per process)."""
    ds = _load_dataset(config.dataset, config.data_dir, config.download, config.validation, config.n_test)
    return data_mod.to_device(ds, device, DTYPES[config.dtype])


def value_epochs(config: RunConfig, period_ends: set[int]) -> Callable[[int], bool]:
    """Whether a trial's value can come from an epoch (``storage.schema.trial_record``): the restart
    periods' ends and the last epoch. These epochs score the whole test set and, under an error
    metric, record which examples were wrong (``EpochResult.test_wrong``)."""
    return lambda epoch: epoch in period_ends or epoch == config.epochs


def curve_epochs_full(config: RunConfig, period_ends: set[int]) -> Callable[[int], bool]:
    """Whether an epoch is scored on the whole test set: always without ``curve_test``, else the
    epochs a trial's value can come from (:func:`value_epochs`); the curve's other epochs score the
    first ``curve_test`` test examples, which is enough to draw a learning curve and keeps a large
    test set (one that can tell cells apart) cheap."""
    valued = value_epochs(config, period_ends)
    return lambda epoch: config.curve_test is None or valued(epoch)


def build_model(config: RunConfig, ds: data_mod.Dataset, device: torch.device) -> torch.nn.Module:
    """The run's initial network: built under ``torch.manual_seed(config.seed)`` (its initialisation)."""
    torch.manual_seed(config.seed)
    return models.build(config.model, ds.input_shape, ds.num_classes).to(device=device, dtype=DTYPES[config.dtype])


def eval_batch_size(config: RunConfig) -> int:
    return max(config.batch_size, 512)


@dataclass
class RunState:
    """What a finished run leaves behind for its caller (tests compare parameters through it)."""

    model: torch.nn.Module | None = None


def train(config: RunConfig, state: RunState | None = None) -> Iterator[EpochResult]:
    """Run ``config`` and yield one :class:`EpochResult` per epoch.

    A run whose batch loss turns non-finite or exceeds its divergence bound (:func:`run_bound`)
    stops at once: its last result has ``diverged=True`` and the chance level as its value —
    chance error 1 − 1/classes, or the untrained network's loss under a loss metric.
    Deterministic on CPU given ``config.seed`` (initialisation, data order and augmentation).
    ``state``, when given, receives the trained model.

    This is the reference loop, one network through :mod:`trainers.optim`; :mod:`trainers.packed`
    trains many points of one seed at once and is tested against it.
    """
    device = resolve_device(config.device)
    ds = run_data(config, device)
    model = build_model(config, ds, device)
    if state is not None:
        state.model = model
    amp = device.type == "cuda"
    if amp and len(ds.input_shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if (config.compile and amp) else model

    spe = data_mod.steps_per_epoch(ds.n_train, config.batch_size)
    schedule = schedules.make(config.schedule, config.epochs, **config.schedule_params)
    period_ends = period_end_epochs(schedule)
    full = curve_epochs_full(config, period_ends)
    valued = value_epochs(config, period_ends)

    def wd_at(epoch: float) -> float:
        return weight_decay_at(config, ds.n_train, schedule, epoch)

    opt = optim.build(
        config.optimizer, model.parameters(), lr=config.lr, weight_decay=wd_at(0.0), momentum=config.momentum,
        betas=tuple(config.betas), eps=config.eps, momentum_form=config.momentum_form, decay=config.decay,
    )
    sched = schedules.torch_scheduler(opt, schedule, spe)
    group = opt.param_groups[0]
    generator = torch.Generator().manual_seed(config.seed)
    loss_fn = metrics.loss_function(config.metric)  # None: cross-entropy of logits
    eval_batch = eval_batch_size(config)
    loss_metric = not metrics.is_error(config.metric)
    untrained_test, untrained_val = (untrained(forward, ds, eval_batch, amp, loss_fn, config.metric) if loss_metric
                                     else (None, None))
    error_chance = chance_error(ds.num_classes) if loss_fn is None else None
    bound = run_bound(config, ds.num_classes, untrained_test)
    node, dev_name = socket.gethostname(), str(device)

    start = time.perf_counter()
    step = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        loss_sum = torch.zeros((), device=device, dtype=DTYPES[config.dtype])
        wrong = torch.zeros((), device=device, dtype=torch.long)
        seen = 0
        diverged = False
        eta = lam = 0.0
        for x, y in data_mod.train_batches(ds, config.batch_size, generator):
            lam = wd_at(step / spe)
            optim.set_weight_decay(opt, lam)  # λ follows the restart period (normalised weight decay)
            eta = optim.schedule_multiplier(group)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
                if loss_fn is None:
                    out = forward(x)
                else:
                    loss = metrics.example_losses(loss_fn, forward, x, y, config.metric).mean()
            if loss_fn is None:
                loss = F.cross_entropy(out.float() if amp else out, y)
            # On the CPU every batch is checked (free); on a GPU every CHECK_EVERY_GPU batches, since
            # .item() waits for the device. A NaN reached in between shows in the running sum.
            if device.type == "cpu" or step % CHECK_EVERY_GPU == 0:
                loss_value = loss.item()
                if not math.isfinite(loss_value) or loss_value > bound or not torch.isfinite(loss_sum).item():
                    diverged = True
                    break
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            n = int(x.shape[0])
            loss_sum += loss.detach() * n
            if loss_fn is None:
                wrong += (out.detach().argmax(1) != y).sum()
            seen += n
        if not diverged and (not torch.isfinite(loss_sum).item()
                             or not all(torch.isfinite(p).all() for p in model.parameters())):
            diverged = True
        has_val = ds.x_val is not None
        if diverged:
            nan = float("nan")
            yield EpochResult(
                epoch=epoch, train_loss=nan, train_error=error_chance, test_error=error_chance,
                test_loss=untrained_test if loss_metric else nan, eta=eta, wd=lam,
                seconds=time.perf_counter() - start, diverged=True, period_end=epoch in period_ends, node=node,
                device=dev_name, val_error=error_chance if has_val else None,
                val_loss=(untrained_val if loss_metric else nan) if has_val else None,
            )
            return
        n_eval = None if full(epoch) else config.curve_test
        keep = valued(epoch) and not loss_metric  # the value epoch's wrong examples (error metric only)
        test = evaluate(forward, ds.x_test[:n_eval], ds.y_test[:n_eval], eval_batch, amp, loss_fn, config.metric,
                        keep_wrong=keep)
        val = evaluate(forward, ds.x_val, ds.y_val, eval_batch, amp, loss_fn, config.metric) if has_val else None
        yield EpochResult(
            epoch=epoch, train_loss=loss_sum.item() / seen,
            train_error=wrong.item() / seen if loss_fn is None else None,
            test_error=test.error, test_loss=test.loss, eta=eta, wd=lam,
            seconds=time.perf_counter() - start, period_end=epoch in period_ends, node=node, device=dev_name,
            val_error=val.error if val else None, val_loss=val.loss if val else None,
            test_se=test.se if loss_metric else None,
            test_wrong=encode_wrong(test.wrong) if test.wrong is not None else None,
        )
