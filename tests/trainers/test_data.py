"""trainers.data: the real loaders on real-format files, the batch iterators, augmentation, errors."""

from __future__ import annotations

import math
import pickle
import random
import socket

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trainers import data, models, optim
from trainers.data import DataError, Dataset


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Small models on one thread: fastest here, and immune to OpenMP spin-waits when the two cores
    are shared (with 2 threads under contention a digits epoch was measured 26× slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- real-format writers


def _images(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random CIFAR-style rows: uint8 (n, 3072), R plane then G then B, 32×32 row-major each."""
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(root, rng, per_batch=4, n_test=6):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    xs, ys = [], []
    for i in range(1, 6):
        x = _images(rng, per_batch)
        y = [int(v) for v in rng.integers(0, 10, per_batch)]
        _dump(folder / f"data_batch_{i}", {"batch_label": f"training batch {i} of 5", "labels": y, "data": x,
                                           "filenames": [f"img{i}_{j}.png" for j in range(per_batch)]})
        xs.append(x)
        ys += y
    xt = _images(rng, n_test)
    yt = [int(v) for v in rng.integers(0, 10, n_test)]
    _dump(folder / "test_batch", {"batch_label": "testing batch 1 of 1", "labels": yt, "data": xt,
                                  "filenames": [f"t{j}.png" for j in range(n_test)]})
    _dump(folder / "batches.meta", {"label_names": [f"class{k}" for k in range(10)], "num_cases_per_batch": per_batch,
                                    "num_vis": 3072})
    return np.concatenate(xs), np.array(ys), xt, np.array(yt)


def write_cifar100(root, rng, n_train=12, n_test=5):
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    x, xt = _images(rng, n_train), _images(rng, n_test)
    y = [int(v) for v in rng.integers(0, 100, n_train)]
    yt = [int(v) for v in rng.integers(0, 100, n_test)]
    for fname, xx, yy in (("train", x, y), ("test", xt, yt)):
        _dump(folder / fname, {"filenames": [f"{fname}{j}.png" for j in range(len(yy))], "batch_label": fname,
                               "fine_labels": yy, "coarse_labels": [v // 5 for v in yy], "data": xx})
    _dump(folder / "meta", {"fine_label_names": [f"f{k}" for k in range(100)],
                            "coarse_label_names": [f"c{k}" for k in range(20)]})
    return x, np.array(y), xt, np.array(yt)


def write_imagenet32(root, rng, batches=(1, 3), per_batch=5, n_val=4):
    root.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in batches:
        x = _images(rng, per_batch)
        y = [int(v) for v in rng.integers(1, 1001, per_batch)]
        y[0], y[-1] = 1, 1000  # both ends of the 1-based range
        _dump(root / f"train_data_batch_{i}", {"data": x, "labels": y, "mean": x.mean(0)})
        xs.append(x)
        ys += y
    xt = _images(rng, n_val)
    yt = [int(v) for v in rng.integers(1, 1001, n_val)]
    _dump(root / "val_data", {"data": xt, "labels": yt})
    return np.concatenate(xs), np.array(ys), xt, np.array(yt)


def expected_normalised(x_train_rows: np.ndarray, rows: np.ndarray) -> torch.Tensor:
    """(rows/255 − μ_c)/σ_c with per-channel train statistics, as (N, 3, 32, 32)."""
    tr = x_train_rows.reshape(-1, 3, 32 * 32).astype(np.float64) / 255.0
    mean = tr.mean(axis=(0, 2))
    std = tr.std(axis=(0, 2))
    out = (rows.reshape(-1, 3, 32 * 32).astype(np.float64) / 255.0 - mean[None, :, None]) / std[None, :, None]
    return torch.from_numpy(out.reshape(-1, 3, 32, 32)).float()


def assert_one_line(exc_info, *needles):
    msg = str(exc_info.value)
    assert "\n" not in msg, msg
    for needle in needles:
        assert str(needle) in msg, f"{needle!r} not in {msg!r}"


# ------------------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits():
    return data.load("digits")


def test_digits_split_shapes_and_normalisation(digits):
    assert digits.name == "digits" and digits.num_classes == 10 and not digits.augment
    assert digits.x_train.shape == (988, 1, 8, 8) and digits.x_test.shape == (809, 1, 8, 8)
    assert digits.n_train == 988 and digits.input_shape == (1, 8, 8)
    assert digits.x_train.dtype == torch.float32 and digits.y_train.dtype == torch.int64
    for y in (digits.y_train, digits.y_test):
        assert y.min() >= 0 and y.max() < 10
        assert torch.bincount(y, minlength=10).min() > 70  # stratified: every class well represented
    assert abs(digits.x_train.mean().item()) < 1e-5 and abs(digits.x_train.std().item() - 1) < 1e-4


def test_digits_split_is_fixed(digits):
    again = data.load("digits", data_dir="/nonexistent/ignored")
    assert torch.equal(again.x_train, digits.x_train) and torch.equal(again.y_test, digits.y_test)


# ------------------------------------------------------------------------------------ mnist1d


@pytest.fixture(scope="module")
def mnist1d_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("mnist1d_root")


@pytest.fixture(scope="module")
def mnist1d(mnist1d_dir):
    return data.load("mnist1d", data_dir=mnist1d_dir)


def test_mnist1d_shapes_labels_normalisation(mnist1d):
    assert mnist1d.x_train.shape == (4000, 1, 40) and mnist1d.x_test.shape == (1000, 1, 40)
    assert mnist1d.input_shape == (1, 40) and mnist1d.num_classes == 10 and not mnist1d.augment
    assert mnist1d.x_train.dtype == torch.float32 and mnist1d.y_train.dtype == torch.int64
    assert set(mnist1d.y_train.unique().tolist()) == set(range(10))
    assert mnist1d.y_test.min() >= 0 and mnist1d.y_test.max() <= 9
    assert abs(mnist1d.x_train.mean().item()) < 1e-5 and abs(mnist1d.x_train.std().item() - 1) < 1e-4


def test_mnist1d_is_cached(mnist1d, mnist1d_dir):
    cache = mnist1d_dir / "mnist1d" / data.MNIST1D_CACHE
    assert cache.is_file()
    again = data.load("mnist1d", data_dir=mnist1d_dir)  # from the cache
    assert torch.equal(again.x_train, mnist1d.x_train) and torch.equal(again.y_test, mnist1d.y_test)


def test_mnist1d_regenerates_deterministically_offline_and_keeps_global_rngs(mnist1d, tmp_path, monkeypatch):
    cache = tmp_path / "mnist1d" / data.MNIST1D_CACHE
    cache.parent.mkdir()
    cache.write_bytes(b"not an npz file")  # a corrupt cache is regenerated, not an error

    def no_network(*args, **kwargs):
        raise AssertionError("mnist1d generation tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    np.random.seed(123)
    random.seed(123)
    np_before, py_before = np.random.get_state()[1].copy(), random.getstate()
    fresh = data.load("mnist1d", data_dir=tmp_path)
    assert np.array_equal(np.random.get_state()[1], np_before) and random.getstate() == py_before
    assert torch.equal(fresh.x_train, mnist1d.x_train) and torch.equal(fresh.y_train, mnist1d.y_train)
    assert torch.equal(fresh.x_test, mnist1d.x_test)
    with np.load(cache) as f:
        assert f["x"].shape == (4000, 40)


def test_mnist1d_larger_test_set_keeps_training_and_the_published_test_signals(mnist1d, mnist1d_dir):
    big = data.load("mnist1d", data_dir=mnist1d_dir, n_test=2345)
    assert big.x_test.shape == (2345, 1, 40) and big.y_test.shape == (2345,)
    assert torch.equal(big.x_train, mnist1d.x_train) and torch.equal(big.y_train, mnist1d.y_train)
    assert torch.equal(big.x_test[:1000], mnist1d.x_test) and torch.equal(big.y_test[:1000], mnist1d.y_test)
    extra = big.x_test[1000:]
    assert not any(torch.equal(extra[i], mnist1d.x_test[j]) for i in range(20) for j in range(1000))  # new signals
    counts = torch.bincount(big.y_test[1000:], minlength=10)
    assert counts.min() >= 100  # the generator's classes, balanced (≈ 134 each)
    assert abs(extra.mean().item()) < 0.1 and abs(extra.std().item() - 1) < 0.1  # the same scale as the training set
    cache = mnist1d_dir / "mnist1d" / f"mnist1d-v1-seed{data.MNIST1D_EXTRA_SEED}-test1350.npz"
    assert cache.is_file()  # cached under its size: part of the cache key
    again = data.load("mnist1d", data_dir=mnist1d_dir, n_test=1200)  # a prefix of a larger draw is a new file
    assert torch.equal(again.x_test[:1000], mnist1d.x_test) and again.x_test.shape[0] == 1200
    small = data.load("mnist1d", data_dir=mnist1d_dir, n_test=300)
    assert torch.equal(small.x_test, mnist1d.x_test[:300])


def test_a_test_set_larger_than_the_data_set_has_is_one_clear_line(digits):
    assert torch.equal(data.load("digits", n_test=100).x_test, digits.x_test[:100])
    with pytest.raises(data.DataError) as exc:
        data.load("digits", n_test=5000)
    assert_one_line(exc, "n_test", "809", "set n_test <= 809")


# -------------------------------------------------------------------------------------- CIFAR


def test_cifar10_real_format(tmp_path):
    x, y, xt, yt = write_cifar10(tmp_path, np.random.default_rng(0))
    ds = data.load("cifar10", data_dir=tmp_path, verify=False)
    assert ds.num_classes == 10 and ds.augment and ds.input_shape == (3, 32, 32)
    assert ds.x_train.shape == (20, 3, 32, 32) and ds.x_test.shape == (6, 3, 32, 32)
    assert torch.equal(ds.y_train, torch.from_numpy(y)) and torch.equal(ds.y_test, torch.from_numpy(yt))
    # channel planes land in the right place and are normalised with per-channel train statistics
    torch.testing.assert_close(ds.x_train, expected_normalised(x, x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ds.x_test, expected_normalised(x, xt), atol=1e-5, rtol=1e-5)
    per_channel = ds.x_train.transpose(0, 1).reshape(3, -1)
    assert per_channel.mean(1).abs().max() < 1e-5 and (per_channel.std(1, unbiased=False) - 1).abs().max() < 1e-4


def test_cifar100_real_format(tmp_path):
    x, y, xt, yt = write_cifar100(tmp_path, np.random.default_rng(1))
    ds = data.load("cifar100", data_dir=tmp_path, verify=False)
    assert ds.num_classes == 100 and ds.augment
    assert ds.x_train.shape == (12, 3, 32, 32) and ds.x_test.shape == (5, 3, 32, 32)
    assert torch.equal(ds.y_train, torch.from_numpy(y)) and torch.equal(ds.y_test, torch.from_numpy(yt))
    torch.testing.assert_close(ds.x_test, expected_normalised(x, xt), atol=1e-5, rtol=1e-5)


def test_cifar_checksums_are_verified_by_default(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(0))
    with pytest.raises(DataError) as exc:
        data.load("cifar10", data_dir=tmp_path)
    assert_one_line(exc, "MD5", "data_batch_1", "--download")


def test_cifar_missing_folder(tmp_path):
    with pytest.raises(DataError) as exc:
        data.load("cifar10", data_dir=tmp_path)
    assert_one_line(exc, tmp_path / "cifar-10-batches-py", "--download", "cifar-10-python.tar.gz")
    with pytest.raises(DataError) as exc:
        data.load("cifar100", data_dir=tmp_path)
    assert_one_line(exc, tmp_path / "cifar-100-python", "cifar-100-python.tar.gz")


def test_cifar_missing_file(tmp_path):
    write_cifar10(tmp_path, np.random.default_rng(0))
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError) as exc:
        data.load("cifar10", data_dir=tmp_path, verify=False)
    assert_one_line(exc, "data_batch_4", "missing")


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong_keys", "bad_labels"])
def test_cifar_corrupt_file(tmp_path, damage):
    write_cifar10(tmp_path, np.random.default_rng(0))
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    if damage == "garbage":
        path.write_bytes(b"\x00this is not a pickle" * 10)
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif damage == "wrong_keys":
        _dump(path, {"pixels": np.zeros((4, 3072), np.uint8)})
    else:
        _dump(path, {"labels": [0, 1, 2, 10], "data": np.zeros((4, 3072), np.uint8)})
    with pytest.raises(DataError) as exc:
        data.load("cifar10", data_dir=tmp_path, verify=False)
    assert_one_line(exc, "CIFAR-10", tmp_path / "cifar-10-batches-py")


# --------------------------------------------------------------------------------- ImageNet32


def test_imagenet32_real_format(tmp_path):
    x, y, xt, yt = write_imagenet32(tmp_path, np.random.default_rng(2))
    ds = data.load("imagenet32", data_dir=tmp_path)
    assert ds.num_classes == 1000 and ds.augment and ds.input_shape == (3, 32, 32)
    assert ds.x_train.shape == (10, 3, 32, 32) and ds.x_test.shape == (4, 3, 32, 32)
    assert torch.equal(ds.y_train, torch.from_numpy(y - 1)) and torch.equal(ds.y_test, torch.from_numpy(yt - 1))
    assert ds.y_train.min() == 0 and ds.y_train.max() == 999
    torch.testing.assert_close(ds.x_train, expected_normalised(x, x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ds.x_test, expected_normalised(x, xt), atol=1e-5, rtol=1e-5)


def test_imagenet32_npz_variant(tmp_path):
    rng = np.random.default_rng(3)
    x, xt = _images(rng, 3), _images(rng, 2)
    np.savez(tmp_path / "train_data_batch_1.npz", data=x, labels=np.array([1, 2, 3]), mean=x.mean(0))
    np.savez(tmp_path / "val_data.npz", data=xt, labels=np.array([5, 1000]))
    ds = data.load("imagenet32", data_dir=tmp_path)
    assert ds.y_train.tolist() == [0, 1, 2] and ds.y_test.tolist() == [4, 999]


def test_imagenet32_missing(tmp_path):
    with pytest.raises(DataError) as exc:
        data.load("imagenet32", data_dir=tmp_path)
    assert_one_line(exc, "train_data_batch_1", tmp_path, "image-net.org")
    write_imagenet32(tmp_path, np.random.default_rng(2))
    (tmp_path / "val_data").unlink()
    with pytest.raises(DataError) as exc:
        data.load("imagenet32", data_dir=tmp_path)
    assert_one_line(exc, "val_data")
    with pytest.raises(DataError) as exc:
        data.load("imagenet32", data_dir=tmp_path, download=True)
    assert_one_line(exc, "login")


@pytest.mark.parametrize("damage", ["garbage", "shape", "zero_label"])
def test_imagenet32_corrupt(tmp_path, damage):
    write_imagenet32(tmp_path, np.random.default_rng(2))
    path = tmp_path / "train_data_batch_3"
    if damage == "garbage":
        path.write_bytes(path.read_bytes()[:300])
    elif damage == "shape":
        _dump(path, {"data": np.zeros((2, 3000), np.uint8), "labels": [1, 2]})
    else:
        _dump(path, {"data": np.zeros((2, 3072), np.uint8), "labels": [0, 2]})
    with pytest.raises(DataError) as exc:
        data.load("imagenet32", data_dir=tmp_path)
    assert_one_line(exc, "train_data_batch_3")


def test_unknown_dataset():
    with pytest.raises(ValueError, match="digits, mnist1d, cifar10, cifar100, imagenet32"):
        data.load("mnist")


# ---------------------------------------------------------------------------------- iterators


def indexed(n: int, augment: bool, shape=(3, 32, 32)) -> Dataset:
    """A data set whose label is the example's index and whose pixels are random but distinct."""
    g = torch.Generator().manual_seed(n)
    x = torch.randn((n, *shape), generator=g)
    y = torch.arange(n)
    return Dataset("indexed", x, y, x[:5].clone(), y[:5].clone(), num_classes=n, augment=augment)


def test_steps_per_epoch():
    assert data.steps_per_epoch(988, 128) == 8
    assert data.steps_per_epoch(4000, 128) == 32
    assert data.steps_per_epoch(256, 128) == 2
    assert data.steps_per_epoch(1, 128) == 1
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            data.steps_per_epoch(10, bad)


@pytest.mark.parametrize("augment", [False, True])
def test_every_example_exactly_once_per_epoch(augment):
    ds = indexed(53, augment)
    gen = torch.Generator().manual_seed(0)
    batches = list(data.train_batches(ds, 16, gen))
    assert len(batches) == data.steps_per_epoch(53, 16) == 4
    assert [len(y) for _, y in batches] == [16, 16, 16, 5]  # last partial batch kept
    seen = torch.cat([y for _, y in batches])
    assert sorted(seen.tolist()) == list(range(53))
    assert seen.tolist() != list(range(53))  # shuffled
    if not augment:  # x travels with its y
        for x, y in batches:
            assert torch.equal(x, ds.x_train[y])


def test_train_batches_deterministic_given_generator():
    ds = indexed(40, augment=True)

    def epoch(seed, epochs=2):
        gen = torch.Generator().manual_seed(seed)
        return [b for _ in range(epochs) for b in data.train_batches(ds, 8, gen)]

    a, b, c = epoch(7), epoch(7), epoch(8)
    assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(a, b))
    assert not all(torch.equal(ya, yc) for (_, ya), (_, yc) in zip(a, c))
    # the second epoch of one run is a different order from its first
    first = torch.cat([y for _, y in a[:5]])
    second = torch.cat([y for _, y in a[5:]])
    assert not torch.equal(first, second)


def candidates(img: torch.Tensor) -> dict[tuple[int, int, bool], torch.Tensor]:
    """All 81 crops × 2 flips of a 4-px zero-padded image, keyed by (dy, dx, flipped)."""
    padded = F.pad(img, (4, 4, 4, 4))
    h, w = img.shape[-2:]
    out = {}
    for dy in range(9):
        for dx in range(9):
            crop = padded[:, dy : dy + h, dx : dx + w]
            out[dy, dx, False] = crop
            out[dy, dx, True] = crop.flip(-1)
    return out


def test_augmentation_crops_and_flips():
    ds = indexed(64, augment=True)
    gen = torch.Generator().manual_seed(3)
    found = []
    for x, y in data.train_batches(ds, 32, gen):
        for xi, yi in zip(x, y):
            orig = ds.x_train[yi]
            assert xi.shape == orig.shape
            keys = [k for k, cand in candidates(orig).items() if torch.equal(xi, cand)]
            assert len(keys) == 1, "not exactly one padded crop/flip of its source image"
            found.append(keys[0])
    flips = sum(f for _, _, f in found)
    assert 16 <= flips <= 48  # about half flipped
    assert len({(dy, dx) for dy, dx, _ in found}) >= 25  # offsets spread over the 9×9 grid
    assert len({dy for dy, _, _ in found}) >= 7 and len({dx for _, dx, _ in found}) >= 7
    assert found.count((4, 4, False)) <= 4  # the identity is rare


def test_crop_flip_exact():
    x = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6)
    centre = torch.tensor([[4, 4], [4, 4]])
    assert torch.equal(data.crop_flip(x, centre, torch.tensor([False, False])), x)
    assert torch.equal(data.crop_flip(x, centre, torch.tensor([True, False]))[0], x[0].flip(-1))
    corner = data.crop_flip(x, torch.tensor([[3, 2], [8, 8]]), torch.tensor([False, False]))
    # offset (3, 2): the window starts one row above and two columns left of the image
    assert torch.equal(corner[0, :, 1:, 2:], x[0, :, :4, :4]) and (corner[0, :, 0] == 0).all()
    assert (corner[0, :, :, :2] == 0).all()
    # offset (8, 8): window starts 4 pixels right/down, so only x[..., 4:, 4:] survives in the top-left
    assert torch.equal(corner[1, :, :1, :2], x[1, :, 4:, 4:]) and (corner[1, :, 1:] == 0).all()


def test_no_augmentation_for_digits_and_mnist1d(digits, mnist1d):
    for ds in (digits, mnist1d):
        assert not ds.augment
        order = torch.randperm(ds.n_train, generator=torch.Generator().manual_seed(5))  # the documented order
        x = torch.cat([x for x, _ in data.train_batches(ds, 300, torch.Generator().manual_seed(5))])
        assert torch.equal(x, ds.x_train[order])  # rows untouched


def test_test_batches_in_order_without_augmentation():
    ds = indexed(10, augment=True)
    ds = Dataset("t", ds.x_train, ds.y_train, ds.x_train.clone(), ds.y_train.clone(), 10, augment=True)
    batches = list(data.test_batches(ds, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert torch.equal(torch.cat([x for x, _ in batches]), ds.x_test)
    assert torch.equal(torch.cat([y for _, y in batches]), ds.y_test)


def test_to_device_moves_every_tensor():
    ds = indexed(20, augment=True)
    moved = data.to_device(ds, "meta")  # a device other than the CPU, available everywhere
    for t in (moved.x_train, moved.y_train, moved.x_test, moved.y_test):
        assert t.device.type == "meta"
    assert moved.n_train == 20 and moved.input_shape == (3, 32, 32) and moved.augment
    x, y = next(data.train_batches(moved, 8, torch.Generator().manual_seed(0)))
    assert x.device.type == "meta" and y.device.type == "meta" and x.shape == (8, 3, 32, 32)
    same = data.to_device(ds, torch.device("cpu"))
    assert torch.equal(same.x_train, ds.x_train)


# ------------------------------------------------------------------------------ learning check


def test_cnn_learns_digits_with_adamw(digits):
    torch.manual_seed(0)
    model = models.build("cnn", digits.input_shape, digits.num_classes)
    opt = optim.build("adamw", model.parameters(), lr=1e-3, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(6):
        model.train()
        for x, y in data.train_batches(digits, 64, gen):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        wrong = sum((model(x).argmax(1) != y).sum().item() for x, y in data.test_batches(digits, 512))
    error = wrong / len(digits.y_test)
    assert math.isfinite(loss.item())
    assert error < 0.20, f"test error {error:.3f} after 6 epochs"


def test_validation_split_is_fixed_stratified_and_carved_from_training_data():
    from trainers.data import load, split_validation
    from trainers.run import RunConfig, dataset_info

    ds = load("digits")
    a, b = split_validation(ds, 0.1), split_validation(ds, 0.1)
    assert torch.equal(a.x_val, b.x_val)  # the same split every time, whatever the run seed
    assert a.n_train + a.x_val.shape[0] == ds.n_train and a.x_val.shape[0] == math.ceil(0.1 * ds.n_train)
    assert torch.equal(a.x_test, ds.x_test)  # the test set is untouched
    rows = {tuple(r.tolist()) for r in ds.x_train.flatten(1)}
    assert {tuple(r.tolist()) for r in a.x_val.flatten(1)} <= rows
    share = torch.bincount(a.y_val, minlength=10).float() / a.y_val.numel()
    assert torch.allclose(share, torch.bincount(ds.y_train, minlength=10).float() / ds.n_train, atol=0.02)
    info = dataset_info(RunConfig(dataset="digits", validation=0.1))
    assert (info.n_train, info.n_val) == (a.n_train, a.x_val.shape[0])  # B of λ is the training set left
    with pytest.raises(ValueError, match="validation"):
        RunConfig(validation=0.7)
