"""The data sets of a Basin sweep, held whole in memory (on the device) and batched with tensor ops.

Every data set is loaded into one :class:`Dataset` of float32 tensors, normalised with statistics
of its *training* split, labels int64 in [0, classes):

``"digits"``     sklearn's 8×8 digits (1,797 images, bundled with scikit-learn, offline). A fixed,
                 stratified split independent of any run seed: ``train_test_split(test_size=0.45,
                 random_state=0, stratify=y)`` → 988 train / 809 test. Pixels x/16 ∈ [0, 1], then
                 (x − μ)/σ with the scalar train mean and std. Shape (N, 1, 8, 8).
``"mnist1d"``    MNIST-1D (Greydanus 2020) generated locally by ``mnist1d.data.make_dataset`` with its
                 default arguments (5,000 signals, seed 42, 80/20 split) → 4,000 train / 1,000 test
                 signals of length 40, 10 classes; scalar train mean/std; shape (N, 1, 40). Never
                 downloads; the arrays are cached as ``mnist1d/mnist1d-v1-seed42.npz`` under the data root.
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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

DATASETS = ("digits", "mnist1d", "cifar10", "cifar100", "imagenet32")
AUGMENTED = frozenset({"cifar10", "cifar100", "imagenet32"})
CROP_PADDING = 4  # pixels of zero padding before the random crop

DIGITS_TEST_FRACTION = 0.45
DIGITS_SPLIT_SEED = 0
MNIST1D_SEED = 42  # mnist1d's default generation seed: the data set of the MNIST-1D paper
MNIST1D_CACHE = "mnist1d-v1-seed42.npz"
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


@dataclass
class Dataset:
    """A whole data set as tensors; ``x_*`` float32 normalised, ``y_*`` int64 in [0, num_classes)."""

    name: str
    x_train: torch.Tensor  # (N, C, H, W) images or (N, C, L) 1-D signals
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    augment: bool  # random crop with 4-px padding + horizontal flip in train_batches
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


def load(name: str, *, data_dir: str | os.PathLike | None = None, download: bool = False, verify: bool = True) -> Dataset:
    """Load data set ``name`` (one of :data:`DATASETS`) on the CPU.

    ``data_dir`` is the data root (default :func:`default_data_dir`); ``digits`` ignores it.
    ``download=True`` fetches CIFAR-10/100 when missing (the other sets need no or allow no download).
    ``verify`` checks the CIFAR files against torchvision's MD5 sums (``False``: existence only, for
    re-packed or test copies). Raises DataError (one line: what, where, how to get it) for missing,
    corrupt or malformed files, ValueError for an unknown name.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {', '.join(DATASETS)}; got {name!r}")
    root = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name == "digits":
        return _load_digits()
    if name == "mnist1d":
        return _load_mnist1d(root)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, root, download=download, verify=verify)
    return _load_imagenet32(root, download=download)


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """⌈n_train / batch_size⌉: the last, partial batch of an epoch is kept."""
    _check_batch_size(batch_size)
    return -(-int(n_train) // batch_size)


def to_device(ds: Dataset, device: torch.device | str, dtype: torch.dtype | None = None) -> Dataset:
    """The same data set with all four tensors moved to ``device`` once (a no-op copy on the CPU),
    the inputs cast to ``dtype`` when given (float64 for exactness tests)."""
    device = torch.device(device)
    return dataclasses.replace(
        ds,
        x_train=ds.x_train.to(device, dtype=dtype),
        y_train=ds.y_train.to(device),
        x_test=ds.x_test.to(device, dtype=dtype),
        y_test=ds.y_test.to(device),
        x_val=None if ds.x_val is None else ds.x_val.to(device, dtype=dtype),
        y_val=None if ds.y_val is None else ds.y_val.to(device),
    )


def train_batches(ds: Dataset, batch_size: int, generator: torch.Generator) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """One training epoch of ``(x, y)`` batches, ⌈N/b⌉ of them, each example exactly once.

    The order is ``torch.randperm(N, generator=generator)``; then, when ``ds.augment``, crop
    offsets (N×2 in 0..8) and flip bits (N), all drawn up front from the CPU ``generator`` and moved
    to the data's device in one transfer each. Batches are gathered from the (on-device) tensors and
    augmented in bulk (:func:`crop_flip`): no DataLoader, no per-example Python.
    """
    _check_batch_size(batch_size)
    n = ds.n_train
    device = ds.x_train.device
    perm = torch.randperm(n, generator=generator)
    if ds.augment:
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
        if ds.augment:
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
    stratify=y)`` on the indices), independent of any run seed, so every run of a sweep sees the
    same training set of B − n_val examples — the B of λ = λ_norm·√(b/(B·T)) — and the same
    validation set. Normalisation statistics stay those of the whole training split.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must lie in (0, 1), got {fraction!r}")
    from sklearn.model_selection import train_test_split

    idx = np.arange(ds.n_train)
    train_idx, val_idx = train_test_split(idx, test_size=fraction, random_state=VALIDATION_SEED,
                                          stratify=ds.y_train.cpu().numpy())
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


def _load_mnist1d(root: Path) -> Dataset:
    path = root / "mnist1d" / MNIST1D_CACHE
    arrays = _read_mnist1d_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d()
        _write_npz_atomic(path, arrays)
    x_tr = torch.from_numpy(arrays["x"].astype(np.float32)).unsqueeze(1)
    x_te = torch.from_numpy(arrays["x_test"].astype(np.float32)).unsqueeze(1)
    x_tr, x_te = _normalise_scalar(x_tr, x_te)
    y_tr = torch.from_numpy(arrays["y"].astype(np.int64))
    y_te = torch.from_numpy(arrays["y_test"].astype(np.int64))
    return Dataset("mnist1d", x_tr, y_tr, x_te, y_te, 10, augment=False)


def _generate_mnist1d() -> dict[str, np.ndarray]:
    """``make_dataset`` with the package defaults. It never touches the network (only
    ``get_dataset`` downloads), but it reseeds Python's and NumPy's global RNGs: restored here."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - mnist1d is a declared dependency
        raise DataError(f"mnist1d: the 'mnist1d' package is needed to generate it ({exc}); pip install mnist1d") from None
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        args = get_dataset_args()
        args.seed = MNIST1D_SEED
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    return {k: np.asarray(raw[k]) for k in ("x", "y", "x_test", "y_test")}


def _read_mnist1d_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays, or None (absent, unreadable or malformed: it is regenerated)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in ("x", "y", "x_test", "y_test")}
    except Exception:
        return None
    ok = (
        arrays["x"].shape == (4000, 40)
        and arrays["x_test"].shape == (1000, 40)
        and arrays["y"].shape == (4000,)
        and arrays["y_test"].shape == (1000,)
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
    "Dataset",
    "crop_flip",
    "default_data_dir",
    "eval_batches",
    "load",
    "split_validation",
    "steps_per_epoch",
    "test_batches",
    "to_device",
    "train_batches",
]
