"""The data sets of a Basin sweep, held whole in memory (on the device) and batched with tensor ops.

:func:`load` loads any data set a sweep names: the built-ins below (registered in pyproject.toml
under ``basin.datasets``, like any installed package's) or a user's function
``"package.module:function"`` returning a :class:`Dataset` or a pair of ``torch.utils.data.Dataset``
(:func:`materialise`); the contract is load's docstring.

Every built-in data set is loaded into one :class:`Dataset` of float32 tensors, normalised with statistics
of its *training* split, labels int64 in [0, classes):

``"digits"``     sklearn's 8×8 digits (1,797 images, bundled with scikit-learn, offline). A fixed,
                 stratified split independent of any run seed: ``train_test_split(test_size=0.45,
                 random_state=0, stratify=y)`` → 988 train / 809 test. Pixels x/16 ∈ [0, 1], then
                 (x − μ)/σ with the scalar train mean and std. Shape (N, 1, 8, 8).
``"mnist1d"``    MNIST-1D (Greydanus 2020) generated locally by ``mnist1d.data.make_dataset`` with its
                 default arguments (5,000 signals, seed 42, 80/20 split) → 4,000 train / 1,000 test
                 signals of length 40, 10 classes; scalar train mean/std; shape (N, 1, 40). Never
                 downloads; the arrays are cached as ``mnist1d/mnist1d-v1-seed42.npz`` under the data root.
                 ``n_test`` > 1,000 (a spec's ``n_test``) appends signals generated at seed 43.
``"cifar10"``    CIFAR-10/100 from the python-pickle folders (``cifar-10-batches-py``,
``"cifar100"``   ``cifar-100-python``) read by torchvision's loaders; per-channel train mean/std.
``"imagenet32"`` Downsampled ImageNet 32×32 (Chrabaszcz et al. 2017): ``train_data_batch_1`` …
                 ``train_data_batch_10`` (those present, at least one) and ``val_data`` as the test set,
                 each a pickle (or the published ``.npz``) of ``{"data": uint8 N×3072 (R, G, B planes,
                 32×32 row-major each), "labels": 1..1000}``; labels become 0..999; per-channel mean/std.

The data root is ``data_dir``, else ``$BASIN_DATA_DIR``, else ``~/.cache/basin``.

Augmentation (cifar10, cifar100, imagenet32: ``Dataset.augment``) is the paper's "standard CIFAR
augmentation": pad 4 pixels of zeros, crop a random 32×32 window, flip horizontally with
probability ½. Padding is applied to the *normalised* images, i.e. pads with the mean colour, as in
fb.resnet.torch which the paper's Shake-Shake code builds on. For a batch x of B images with crop
offsets (dy_i, dx_i) ∈ {0..8}² and flip bits f_i the output is two gathers (rows, then columns) from the padded batch x̃:

    out[i, c, h, w] = x̃[i, c, dy_i + h, dx_i + (W − 1 − w if f_i else w)]

All random numbers of an epoch (permutation, offsets, flips) come from the caller's CPU
``torch.Generator`` at the start of the epoch, so an epoch is a pure function of the generator state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("digits", "mnist1d", "cifar10", "cifar100", "imagenet32")  # the built-ins, registered in pyproject.toml
AUGMENTED = frozenset({"cifar10", "cifar100", "imagenet32"})
CROP_PADDING = 4  # pixels of zero padding before the random crop

DIGITS_TEST_FRACTION = 0.45
DIGITS_SPLIT_SEED = 0
MNIST1D_SEED = 42  # mnist1d's default generation seed: the data set of the MNIST-1D paper
MNIST1D_CACHE = "mnist1d-v1-seed42.npz"
MNIST1D_EXTRA_SEED = 43  # the generation seed of test signals beyond the published 1,000
IMAGENET32_TRAIN_BATCHES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
IMAGENET32_TEST = "val_data"
IMAGENET32_URL = "https://image-net.org/download-images.php (Downsampled ImageNet, 32x32: Imagenet32_train, Imagenet32_val)"

#: (B, n_test, classes, input shape) of the file-based sets as published, for a host without the files.
PUBLISHED_SIZES = {
    "cifar10": (50000, 10000, 10, (3, 32, 32)),
    "cifar100": (50000, 10000, 100, (3, 32, 32)),
    "imagenet32": (1281167, 50000, 1000, (3, 32, 32)),
}

_CHUNK = 4096  # images converted to float per step (bounds the temporary memory of the big sets)


class DataError(Exception):
    """One clear line: what was expected, where, and how to get it."""


class NTestError(DataError):
    """``n_test`` asks for more test examples than the data set has (a spec error, not a missing file)."""

    def __init__(self, name: str, have: int):
        super().__init__(f"n_test: {name} has {have} test examples; set n_test <= {have} (or leave it out)")


#: A training-batch augmentation: ``hook(x, generator) -> x`` (see :class:`Dataset`).
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Dataset:
    """A whole data set as tensors: what every data-set function returns (or what Basin makes of the
    pair of ``torch.utils.data.Dataset`` it returns, :func:`materialise`).

    ``x_*`` float tensors (N, *input_shape) — Basin's own sets normalised with training statistics;
    integer inputs (token ids) are kept as they are. ``y_*`` int64 labels in [0, num_classes) for a
    classification set; for a set without classes (``num_classes = 0``, metric functions only) any
    tensor with one row per example. ``augment``: ``False``; ``True`` for the paper's crop-and-flip
    of (N, C, H, W) images; or a hook ``augment(x, generator) -> x`` applied to every training batch
    on its device, drawing its random numbers from ``generator`` (the run's CPU ``torch.Generator``,
    so a run stays a function of its seed), e.g. ``torch.rand(len(x), generator=generator)``.
    """

    name: str
    x_train: torch.Tensor  # (N, C, H, W) images, (N, C, L) 1-D signals, (N, d) rows, ...
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool | Augment = False
    x_val: torch.Tensor | None = None  # a validation split carved from the training data (split_validation)
    y_val: torch.Tensor | None = None

    @property
    def n_train(self) -> int:
        return int(self.x_train.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Per-example shape, e.g. (1, 8, 8), (1, 40), (3, 32, 32)."""
        return tuple(int(s) for s in self.x_train.shape[1:])


# --------------------------------------------------------------------------------------------- API


def default_data_dir() -> Path:
    """``$BASIN_DATA_DIR`` if set, else ``~/.cache/basin``."""
    env = os.environ.get("BASIN_DATA_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "basin"


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False, verify: bool = True,
         n_test: int | None = None) -> Dataset:
    """Load data set ``name`` on the CPU: a registered name (:data:`DATASETS` and any installed
    package's ``basin.datasets`` entry points) or a reference ``"package.module:function"``.

    The contract of a data-set function, Basin's own included: it is called with those of the
    keyword arguments ``data_dir`` (a ``pathlib.Path``: the data root — ``data_dir`` here, else
    ``$BASIN_DATA_DIR``, else ``~/.cache/basin``) and ``download`` (bool: may it fetch missing files)
    that its signature names (all of them, given ``**kwargs``), and returns either a
    :class:`Dataset` or a pair ``(train, test)`` of ``torch.utils.data.Dataset`` whose items are
    ``(x, y)``, which :func:`materialise` turns into one (once per process).

    ``verify`` checks the CIFAR files against torchvision's MD5 sums (``False``: existence only, for
    re-packed or test copies). ``n_test`` (None: the data set's own test set) sizes the test set:
    a function that names ``n_test`` in its signature makes that many (MNIST-1D generates more
    signals); any other set keeps its first ``n_test`` test examples, and asking for more than it
    has is a DataError. Raises DataError (one line: what, where, how to get it) for missing,
    corrupt or malformed files of Basin's sets, ValueError (a RegistryError) for an unknown name, a
    bad reference or a return value that breaks the contract.
    """
    from trainers import registry

    fn = registry.resolve("dataset", name)
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    out = registry.call_with_accepted(fn, data_dir=root, download=download, verify=verify, n_test=n_test)
    return sized_test_set(as_dataset(out, name), n_test)


def sized_test_set(ds: Dataset, n_test: int | None) -> Dataset:
    """``ds`` with its first ``n_test`` test examples (None: all); DataError if it has fewer."""
    if n_test is None:
        return ds
    have = int(ds.x_test.shape[0])
    if n_test > have:
        raise NTestError(ds.name, have)
    if n_test == have:
        return ds
    return dataclasses.replace(ds, x_test=ds.x_test[:n_test], y_test=ds.y_test[:n_test])


def as_dataset(out, name: str) -> Dataset:
    """A data-set function's return value as a checked :class:`Dataset` (see :func:`load`)."""
    from trainers.registry import RegistryError

    if isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(d, torch.utils.data.Dataset) for d in out):
        out = materialise(out[0], out[1], name=name)
    if not isinstance(out, Dataset):
        raise RegistryError(f"dataset: {name!r} returned a {type(out).__name__}; a data-set function returns a "
                            "trainers.data.Dataset or a pair (train, test) of torch.utils.data.Dataset")
    problem = _dataset_problem(out)
    if problem:
        raise RegistryError(f"dataset: {name!r} returned a Dataset whose {problem}")
    return out


def _dataset_problem(ds: Dataset) -> str | None:
    """What breaks the :class:`Dataset` contract, or None."""
    for split in ("train", "test", "val"):
        x, y = getattr(ds, f"x_{split}"), getattr(ds, f"y_{split}")
        if split == "val" and x is None and y is None:
            continue
        if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
            return f"x_{split}/y_{split} are not both tensors ({type(x).__name__}, {type(y).__name__})"
        if x.dim() < 2 or x.shape[0] == 0:
            return f"x_{split} has shape {tuple(x.shape)}; expected (N, *input_shape) with N >= 1"
        if y.shape[:1] != x.shape[:1]:
            return f"y_{split} has {y.shape[0] if y.dim() else 0} rows but x_{split} {x.shape[0]}"
        if x.is_complex() or x.dtype == torch.bool:
            return f"x_{split} is {x.dtype}; expected a float (or integer) tensor"
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        return f"train examples have shape {tuple(ds.x_train.shape[1:])} but test examples {tuple(ds.x_test.shape[1:])}"
    c = ds.num_classes
    if isinstance(c, bool) or not isinstance(c, int) or c < 0 or c == 1:
        return f"num_classes is {c!r}; expected an integer >= 2 (or 0 for a data set without classes)"
    if c >= 2:
        for split in ("train", "test", "val"):
            y = getattr(ds, f"y_{split}")
            if y is None:
                continue
            if y.dtype != torch.int64 or y.dim() != 1:
                return f"y_{split} is {y.dtype} of shape {tuple(y.shape)}; class labels are int64 of shape (N,)"
            if y.numel() and (int(y.min()) < 0 or int(y.max()) >= c):
                return f"y_{split} spans {int(y.min())}..{int(y.max())}; expected 0..{c - 1} (num_classes = {c})"
    if not (isinstance(ds.augment, bool) or callable(ds.augment)):
        return f"augment is a {type(ds.augment).__name__}; expected a bool or a hook augment(x, generator) -> x"
    if ds.augment is True and ds.x_train.dim() != 4:
        return f"augment = True needs (N, C, H, W) images; x_train has shape {tuple(ds.x_train.shape)}"
    return None


def materialise(train: torch.utils.data.Dataset, test: torch.utils.data.Dataset, *, name: str = "materialised",
                num_classes: int | None = None, augment: bool | Augment = False) -> Dataset:
    """Two ``torch.utils.data.Dataset`` of ``(x, y)`` items read once, in order, into a :class:`Dataset`.

    Items are collated with torch's ``default_collate`` (tensors, NumPy arrays and numbers all
    work); inputs become float32 (integer inputs keep their dtype) and are not normalised further
    (a transform of the data set is applied as it stands — once: put random augmentation in the
    ``augment`` hook, not in the transform). ``num_classes``: given, else ``len(train.classes)`` or
    ``train.num_classes`` when the set has one (torchvision's sets do), else the largest integer
    label of train and test + 1; 0 when the labels are not integers (a set without classes).
    """
    from torch.utils.data import DataLoader

    def read(ds, split):
        xs, ys = [], []
        for batch in DataLoader(ds, batch_size=512, shuffle=False, num_workers=0):
            if not isinstance(batch, (tuple, list)) or len(batch) != 2:
                raise ValueError(f"the {split} set's items must be pairs (x, y); got {type(batch).__name__}")
            xs.append(torch.as_tensor(batch[0]))
            ys.append(torch.as_tensor(batch[1]))
        if not xs:
            raise ValueError(f"the {split} set is empty")
        x, y = torch.cat(xs), torch.cat(ys)
        return (x.float() if x.is_floating_point() or x.dtype == torch.uint8 else x), y

    from trainers.registry import RegistryError

    try:
        (x_tr, y_tr), (x_te, y_te) = read(train, "train"), read(test, "test")
    except Exception as exc:  # noqa: BLE001 - reading the user's sets: one line naming the data set
        raise RegistryError(f"dataset: reading {name!r}'s torch.utils.data.Dataset pair failed: "
                            f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from None
    integer = not y_tr.is_floating_point() and not y_te.is_floating_point()
    if num_classes is None:
        classes = getattr(train, "classes", None)
        if classes is not None:
            num_classes = len(classes)
        elif isinstance(getattr(train, "num_classes", None), int):
            num_classes = train.num_classes
        else:
            num_classes = int(max(y_tr.max(), y_te.max())) + 1 if integer and y_tr.dim() == 1 else 0
    if num_classes and integer:
        y_tr, y_te = y_tr.long(), y_te.long()
    return Dataset(name, x_tr, y_tr, x_te, y_te, num_classes, augment=augment)


# Basin's own data sets: the functions pyproject.toml registers under basin.datasets.

def digits() -> Dataset:
    """``"digits"``: sklearn's 8×8 digits (offline)."""
    return _load_digits()


def mnist1d(*, data_dir: Path, n_test: int | None = None) -> Dataset:
    """``"mnist1d"``: MNIST-1D, generated locally and cached under ``data_dir``; ``n_test`` > 1,000
    adds test signals from the same generator (see :func:`_load_mnist1d`)."""
    return _load_mnist1d(Path(data_dir), n_test)


def cifar10(*, data_dir: Path, download: bool = False, verify: bool = True) -> Dataset:
    """``"cifar10"``: CIFAR-10 from its python-pickle folder under ``data_dir``."""
    return _load_cifar("cifar10", Path(data_dir), download=download, verify=verify)


def cifar100(*, data_dir: Path, download: bool = False, verify: bool = True) -> Dataset:
    """``"cifar100"``: CIFAR-100 from its python-pickle folder under ``data_dir``."""
    return _load_cifar("cifar100", Path(data_dir), download=download, verify=verify)


def imagenet32(*, data_dir: Path, download: bool = False) -> Dataset:
    """``"imagenet32"``: Downsampled ImageNet 32×32 batch files in ``data_dir``."""
    return _load_imagenet32(Path(data_dir), download=download)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """⌈n_train / batch_size⌉: the last, partial batch of an epoch is kept."""
    _check_batch_size(batch_size)
    return -(-int(n_train) // batch_size)


def to_device(ds: Dataset, device: torch.device | str, dtype: torch.dtype | None = None) -> Dataset:
    """The same data set with all its tensors moved to ``device`` once (a no-op copy on the CPU),
    float inputs and float targets cast to ``dtype`` when given (float64 for exactness tests);
    integer tensors (labels, token ids) keep their dtype."""
    device = torch.device(device)

    def move(t):
        if t is None:
            return None
        return t.to(device, dtype=dtype if dtype is not None and t.is_floating_point() else None)

    return dataclasses.replace(ds, x_train=move(ds.x_train), y_train=move(ds.y_train), x_test=move(ds.x_test),
                               y_test=move(ds.y_test), x_val=move(ds.x_val), y_val=move(ds.y_val))


def train_batches(ds: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One training epoch of ``(x, y)`` batches, ⌈N/b⌉ of them, each example exactly once.

    The order is ``torch.randperm(N, generator=generator)``; then, when ``ds.augment`` is True, crop
    offsets (N×2 in 0..8) and flip bits (N), all drawn up front from the CPU ``generator`` and moved
    to the data's device in one transfer each. Batches are gathered from the (on-device) tensors and
    augmented in bulk (:func:`crop_flip`): no DataLoader, no per-example Python. A hook
    ``ds.augment(x, generator)`` instead runs on each gathered batch, in order.
    """
    _check_batch_size(batch_size)
    n = ds.n_train
    device = ds.x_train.device
    perm = torch.randperm(n, generator=generator)
    hook = ds.augment if callable(ds.augment) else None
    if ds.augment is True:
        if ds.x_train.dim() != 4:
            raise ValueError(f"augmentation needs (N, C, H, W) images; {ds.name} has shape {tuple(ds.x_train.shape)}")
        offsets = torch.randint(0, 2 * CROP_PADDING + 1, (n, 2), generator=generator)
        flips = torch.randint(0, 2, (n,), generator=generator).bool()
        offsets, flips = offsets.to(device, non_blocking=True), flips.to(device, non_blocking=True)
    perm = perm.to(device, non_blocking=True)
    for start in range(0, n, batch_size):
        idx = perm[start : start + batch_size]
        x = ds.x_train.index_select(0, idx)
        y = ds.y_train.index_select(0, idx)
        if hook is not None:
            x = hook(x, generator)
        elif ds.augment:
            end = start + idx.numel()
            x = crop_flip(x, offsets[start:end], flips[start:end])
        yield x, y


def test_batches(ds: Dataset, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The test set in order, in slices of ``batch_size`` (views, no copies), never augmented."""
    return eval_batches(ds.x_test, ds.y_test, batch_size)


def eval_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``(x, y)`` in order, in slices of ``batch_size`` (views, no copies): a test or validation pass."""
    _check_batch_size(batch_size)
    for start in range(0, int(x.shape[0]), batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


VALIDATION_SEED = 0  # the split is a property of the data set, the same for every run and seed


def split_validation(ds: Dataset, fraction: float) -> Dataset:
    """``ds`` with a stratified ``fraction`` of its training examples moved to (x_val, y_val).

    The split is fixed (``train_test_split(test_size=fraction, random_state=VALIDATION_SEED,
    stratify=y)`` on the indices; not stratified for a set without classes), independent of any run seed, so every run of a sweep sees the
    same training set of B − n_val examples — the B of λ = λ_norm·√(b/(B·T)) — and the same
    validation set. Normalisation statistics stay those of the whole training split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction!r}")
    from sklearn.model_selection import train_test_split

    idx = np.arange(ds.n_train)
    stratify = ds.y_train.cpu().numpy() if ds.num_classes >= 2 else None  # a set without classes: a plain split
    train_idx, val_idx = train_test_split(idx, test_size=fraction, random_state=VALIDATION_SEED, stratify=stratify)
    train_idx, val_idx = torch.from_numpy(np.sort(train_idx)), torch.from_numpy(np.sort(val_idx))
    return dataclasses.replace(ds, x_train=ds.x_train[train_idx], y_train=ds.y_train[train_idx],
                               x_val=ds.x_train[val_idx], y_val=ds.y_train[val_idx])


def crop_flip(x: torch.Tensor, offsets: torch.Tensor, flips: torch.Tensor, padding: int = CROP_PADDING) -> torch.Tensor:
    """Random-crop-with-padding and horizontal flip of a whole batch in two gathers.

    ``x`` (B, C, H, W); ``offsets`` (B, 2) integer (dy, dx) ∈ [0, 2·padding]; ``flips`` (B,) bool.
    out[i, c, h, w] = pad(x)[i, c, dy_i + h, dx_i + (W − 1 − w if flips_i else w)], zero padding.
    Offsets (padding, padding) and no flip give x back exactly.
    """
    b, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    offsets = offsets.to(device=x.device, dtype=torch.long)
    flips = flips.to(device=x.device, dtype=torch.bool)
    ar_h = torch.arange(h, device=x.device)
    ar_w = torch.arange(w, device=x.device)
    rows = offsets[:, :1] + ar_h  # (B, H)
    cols = offsets[:, 1:] + torch.where(flips[:, None], (w - 1) - ar_w, ar_w)  # (B, W)
    xp = xp.gather(2, rows[:, None, :, None].expand(b, c, h, w + 2 * padding))
    return xp.gather(3, cols[:, None, None, :].expand(b, c, h, w))


# ------------------------------------------------------------------------------------ small sets


def _load_digits() -> Dataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = bunch.data.astype(np.float32) / 16.0  # pixel intensities 0..16 → [0, 1]
    y = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
    )
    x_tr = torch.from_numpy(x_tr).reshape(-1, 1, 8, 8)
    x_te = torch.from_numpy(x_te).reshape(-1, 1, 8, 8)
    x_tr, x_te = _normalise_scalar(x_tr, x_te)
    return Dataset("digits", x_tr, torch.from_numpy(y_tr), x_te, torch.from_numpy(y_te), 10, augment=False)


def _load_mnist1d(root: Path, n_test: int | None = None) -> Dataset:
    """The published 4,000 / 1,000 split; with ``n_test`` > 1,000 the test set is the published
    1,000 signals followed by n_test − 1,000 more from ``make_dataset`` at seed 43 (the same
    templates and transforms, a disjoint random stream; each generation standardised by its own
    mean and std, as make_dataset does): the training signals never change."""
    path = root / "mnist1d" / MNIST1D_CACHE
    arrays = _read_mnist1d_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d()
        _write_npz_atomic(path, arrays)
    x_te_np, y_te_np = arrays["x_test"], arrays["y_test"]
    extra = 0 if n_test is None else n_test - len(y_te_np)
    if extra > 0:
        more = _mnist1d_extra_test(root, extra)
        x_te_np, y_te_np = np.concatenate([x_te_np, more["x_test"]]), np.concatenate([y_te_np, more["y_test"]])
    x_tr = torch.from_numpy(arrays["x"].astype(np.float32)).unsqueeze(1)
    x_te = torch.from_numpy(x_te_np.astype(np.float32)).unsqueeze(1)
    x_tr, x_te = _normalise_scalar(x_tr, x_te)
    y_tr = torch.from_numpy(arrays["y"].astype(np.int64))
    y_te = torch.from_numpy(y_te_np.astype(np.int64))
    return Dataset("mnist1d", x_tr, y_tr, x_te, y_te, 10, augment=False)


def _mnist1d_extra_test(root: Path, n: int) -> dict[str, np.ndarray]:
    """``n`` more MNIST-1D test signals (make_dataset at seed MNIST1D_EXTRA_SEED, all test), cached."""
    size = -(-n // 10) * 10  # make_dataset makes num_samples // 10 signals per class
    path = root / "mnist1d" / f"mnist1d-v1-seed{MNIST1D_EXTRA_SEED}-test{size}.npz"
    arrays = _read_mnist1d_cache(path, (0, size))
    if arrays is None:
        arrays = _generate_mnist1d(MNIST1D_EXTRA_SEED, size, train_split=0.0)
        _write_npz_atomic(path, arrays)
    return {k: arrays[k][:n] for k in ("x_test", "y_test")}


def _generate_mnist1d(seed: int = MNIST1D_SEED, num_samples: int | None = None,
                      train_split: float | None = None) -> dict[str, np.ndarray]:
    """``make_dataset`` with the package defaults (or this seed, size and split). It never touches the
    network (only ``get_dataset`` downloads), but it reseeds Python's and NumPy's global RNGs: restored here."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - mnist1d is a declared dependency
        raise DataError(f"mnist1d: the 'mnist1d' package is needed to generate it ({exc}); pip install mnist1d") from None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        args = get_dataset_args()
        args.seed = seed
        if num_samples is not None:
            args.num_samples = num_samples
        if train_split is not None:
            args.train_split = train_split
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}


def _read_mnist1d_cache(path: Path, sizes: tuple[int, int] = (4000, 1000)) -> dict[str, np.ndarray] | None:
    """The cached arrays of (train, test) ``sizes``, or None (absent, unreadable or malformed: it is regenerated)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except Exception:
        return None
    n_train, n_test = sizes
    ok = (
        arrays["x"].shape[0] == n_train
        and arrays["x_test"].shape == (n_test, 40)
        and arrays["y"].shape == (n_train,)
        and arrays["y_test"].shape == (n_test,)
    )
    return arrays if ok else None


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache via a temporary file + rename, so concurrent trials never read half a file.
    An unwritable data root only costs the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _normalise_scalar(x_train: torch.Tensor, x_test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = x_train.double().mean()
    std = x_train.double().std()
    return ((x_train - mean) / std).float(), ((x_test - mean) / std).float()


# ------------------------------------------------------------------------------------- CIFAR


_CIFAR = {
    "cifar10": dict(title="CIFAR-10", classes=10, url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"),
    "cifar100": dict(title="CIFAR-100", classes=100, url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"),
}


def _cifar_classes(name: str):
    """torchvision's CIFAR10/CIFAR100 class and a reading subclass whose file lists carry ``md5=None``.

    The subclass runs torchvision's own pickle-reading code unchanged; with ``md5=None``
    torchvision's ``check_integrity(path, md5)`` only checks that each file exists (an option
    torchvision itself provides). The MD5 check is done once, here, by :func:`_cifar_problem`
    against the base class's sums (torchvision would otherwise hash every file once per split).
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if name == "cifar10" else CIFAR100
    reader = type(
        f"Unverified{base.__name__}",
        (base,),
        {
            "train_list": [[f, None] for f, _ in base.train_list],
            "test_list": [[f, None] for f, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
        },
    )
    return base, reader


def _load_cifar(name: str, root: Path, *, download: bool, verify: bool) -> Dataset:
    info = _CIFAR[name]
    base, reader = _cifar_classes(name)
    folder = root / base.base_folder
    how = f"run `basin train --dataset {name} --data-dir {root} --download`, or fetch {info['url']} and extract it into {root}"
    problem = _cifar_problem(base, folder, info["title"], verify)
    if problem and download:
        _cifar_download(base, root, info)
        problem = _cifar_problem(base, folder, info["title"], verify)
    if problem:
        raise DataError(f"{problem}; {how}")
    try:
        x_tr, y_tr = _cifar_arrays(reader(str(root), train=True, download=False))
        x_te, y_te = _cifar_arrays(reader(str(root), train=False, download=False))
    except Exception as exc:  # unpickling, missing keys, wrong sizes: the files are not CIFAR pickles
        raise DataError(
            f"{info['title']} unreadable under {folder}: {type(exc).__name__}: {_one_line(exc)}; delete it and {how}"
        ) from None
    _check_labels(info["title"], folder, y_tr, info["classes"])
    _check_labels(info["title"], folder, y_te, info["classes"])
    mean, std = _channel_stats([x_tr])
    return Dataset(
        name,
        _to_float([x_tr], mean, std),
        torch.from_numpy(y_tr),
        _to_float([x_te], mean, std),
        torch.from_numpy(y_te),
        info["classes"],
        augment=True,
    )


def _cifar_problem(base, folder: Path, title: str, verify: bool) -> str | None:
    """What is wrong with the CIFAR folder (missing folder or file, failed MD5), or None."""
    entries = base.train_list + base.test_list + [[base.meta["filename"], base.meta["md5"]]]
    if not folder.is_dir():
        return f"{title} not found: expected folder {folder} holding {', '.join(f for f, _ in entries)}"
    for fname, md5 in entries:
        path = folder / fname
        if not path.is_file():
            return f"{title} incomplete: {path} is missing"
        if verify and _md5(path) != md5:
            return f"{title} corrupt: {path} fails its MD5 check (expected {md5}; load(..., verify=False) skips it); delete {folder} and re-fetch it"
    return None


def _cifar_download(base, root: Path, info: dict) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    try:
        download_and_extract_archive(base.url, str(root), filename=base.filename, md5=base.tgz_md5)
    except Exception as exc:
        raise DataError(
            f"{info['title']} download into {root} failed ({type(exc).__name__}: {_one_line(exc)}); "
            f"fetch {info['url']} by hand and extract it into {root}"
        ) from None


def _cifar_arrays(ds) -> tuple[np.ndarray, np.ndarray]:
    """torchvision keeps HWC uint8 (N, 32, 32, 3) and a label list: return NCHW uint8 + int64."""
    data = np.asarray(ds.data)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise ValueError(f"expected uint8 images (N, 32, 32, 3), got {data.dtype} {data.shape}")
    labels = np.asarray(ds.targets, dtype=np.int64)
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{data.shape[0]} images but {labels.shape[0]} labels")
    return data.transpose(0, 3, 1, 2), labels


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# -------------------------------------------------------------------------------- ImageNet32


def _load_imagenet32(root: Path, *, download: bool) -> Dataset:
    title = "ImageNet32x32"
    how = f"download Imagenet32_train and Imagenet32_val from {IMAGENET32_URL} (free login) and unpack the batch files into {root}"
    if download and not (root / IMAGENET32_TEST).exists() and not (root / f"{IMAGENET32_TEST}.npz").exists():
        raise DataError(f"{title} cannot be downloaded automatically (the files need an image-net.org login); {how}")
    train_paths = [p for p in (_imagenet32_file(root, n) for n in IMAGENET32_TRAIN_BATCHES) if p is not None]
    test_path = _imagenet32_file(root, IMAGENET32_TEST)
    if not train_paths or test_path is None:
        missing = "train_data_batch_1..10 (at least one)" if not train_paths else IMAGENET32_TEST
        raise DataError(f"{title} not found: expected {missing} in {root}; {how}")
    train = [_read_imagenet32_batch(p, how) for p in train_paths]
    x_te, y_te = _read_imagenet32_batch(test_path, how)
    xs = [x for x, _ in train]
    y_tr = np.concatenate([y for _, y in train])
    mean, std = _channel_stats(xs)
    x_tr = _to_float(xs, mean, std)
    del xs, train
    return Dataset(
        "imagenet32", x_tr, torch.from_numpy(y_tr), _to_float([x_te], mean, std), torch.from_numpy(y_te), 1000, augment=True
    )


def _imagenet32_file(root: Path, name: str) -> Path | None:
    """``name`` (pickle, as published) or ``name.npz`` (the published npz variant), if present."""
    for candidate in (root / name, root / f"{name}.npz"):
        if candidate.is_file():
            return candidate
    return None


def _read_imagenet32_batch(path: Path, how: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file → uint8 (N, 3, 32, 32) and int64 labels 0..999."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as f:
                entry = {k: f[k] for k in ("data", "labels")}
        else:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")  # latin1: also reads the Python 2 pickles
        data = np.asarray(entry["data"])
        labels = np.asarray(entry["labels"])
    except Exception as exc:
        raise DataError(
            f"ImageNet32x32 batch {path} unreadable ({type(exc).__name__}: {_one_line(exc)}): expected a pickle of "
            f"{{'data': uint8 N×3072, 'labels': 1..1000}}; replace it: {how}"
        ) from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (data.shape[0],):
        raise DataError(
            f"ImageNet32x32 batch {path} malformed: 'data' is {data.dtype} {data.shape}, 'labels' {labels.shape}; "
            f"expected uint8 (N, 3072) and N labels; replace it: {how}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise DataError(f"ImageNet32x32 batch {path}: labels must be integers 1..1000 (1-based); replace it: {how}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64) - 1


# --------------------------------------------------------------------------------------- shared


def _check_labels(title: str, where: Path, labels: np.ndarray, classes: int) -> None:
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise DataError(
            f"{title} under {where}: labels span {labels.min()}..{labels.max()}, expected 0..{classes - 1}; the files are not {title}"
        )


def _channel_stats(chunks: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std (population) of uint8 NCHW arrays scaled to [0, 1], float64 sums."""
    total = 0
    s = torch.zeros(3, dtype=torch.float64)
    s2 = torch.zeros(3, dtype=torch.float64)
    for arr in chunks:
        for start in range(0, arr.shape[0], _CHUNK):
            part = torch.from_numpy(np.ascontiguousarray(arr[start : start + _CHUNK])).double() / 255.0
            s += part.sum(dim=(0, 2, 3))
            s2 += (part * part).sum(dim=(0, 2, 3))
            total += part.shape[0] * part.shape[2] * part.shape[3]
    if total == 0:
        raise DataError("no training images to compute normalisation statistics from")
    mean = s / total
    std = (s2 / total - mean * mean).clamp_min(1e-12).sqrt()
    return mean, std


def _to_float(chunks: Sequence[np.ndarray], mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW arrays → one float32 (N, C, H, W) tensor ((x/255 − μ_c)/σ_c), filled chunk by
    chunk so the peak memory is the output plus one chunk."""
    n = sum(int(a.shape[0]) for a in chunks)
    out = torch.empty((n, *chunks[0].shape[1:]), dtype=torch.float32)
    scale = (1.0 / (255.0 * std)).float().view(1, -1, 1, 1)
    shift = (mean / std).float().view(1, -1, 1, 1)
    pos = 0
    for arr in chunks:
        for start in range(0, arr.shape[0], _CHUNK):
            part = torch.from_numpy(np.ascontiguousarray(arr[start : start + _CHUNK]))
            out[pos : pos + part.shape[0]] = part.float() * scale - shift
            pos += part.shape[0]
    return out


def _check_batch_size(batch_size: int) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1; got {batch_size!r}")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:200] + ("…" if len(text) > 200 else "") if text else "no detail"


__all__ = [
    "AUGMENTED",
    "DATASETS",
    "DataError",
    "NTestError",
    "Dataset",
    "as_dataset",
    "crop_flip",
    "default_data_dir",
    "eval_batches",
    "load",
    "materialise",
    "split_validation",
    "steps_per_epoch",
    "test_batches",
    "to_device",
    "train_batches",
]
