"""Your own model, data set and metric in the trainers: the registry, the data-set contract, loss
metrics, and which parameters decay — checked on the parameters themselves, plain and packed."""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from tests.trainers.test_packed import assert_same_runs, configs
from trainers import data, models, optim, pack_models, pack_optim, registry
from trainers.packed import train_pack
from trainers.run import RunConfig, RunState, train


class Normed(nn.Module):
    """Weights (2-D, 4-D) and 1-D parameters of every kind: biases, LayerNorm and BatchNorm weights."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 16)
        self.ln = nn.LayerNorm(16)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.ln(self.fc(self.bn(self.conv(x)).relu().flatten(1))))


@pytest.mark.parametrize("name", optim.OPTIMIZERS)
def test_decay_matrices_leaves_biases_and_norm_weights_undecayed_plain_and_packed(name):
    """Zero gradients and a huge λ: under "matrices" every 1-D parameter (biases, BatchNorm and
    LayerNorm weights) is bit-for-bit unchanged and every matrix shrinks; under "all" all shrink.
    The same in the plain optimizer (param groups) and the packed one (a mask over the flat row)."""
    torch.manual_seed(0)
    module = Normed().double()
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.5)  # no parameter starts at 0 (BatchNorm's bias does), so decay would show
    one_d = {n for n, p in module.named_parameters() if p.dim() == 1}
    assert {"conv.bias", "bn.weight", "bn.bias", "ln.weight", "ln.bias", "fc.bias", "head.bias"} <= one_d

    def after(decay: str, packed: bool) -> dict[str, torch.Tensor]:
        model = Normed().double()
        model.load_state_dict(module.state_dict())
        lr, lam = 1e-3, 0.3
        if packed:
            pk = pack_models.FuncPack(model, 2)
            opt = pack_optim.PackedOptimizer([name, name], torch.tensor([lr, lr], dtype=torch.float64),
                                             decay_mask=pk.decay_mask(decay))
            for _ in range(3):
                pk.flat.grad = torch.zeros_like(pk.flat)
                opt.step(pk.flat, torch.ones(2, dtype=torch.float64), torch.full((2,), lam, dtype=torch.float64))
            return pk.member_state_dict(1)
        opt = optim.build(name, model.parameters(), lr=lr, weight_decay=lam, decay=decay)
        for _ in range(3):
            for p in model.parameters():
                p.grad = torch.zeros_like(p)
            opt.step()
        return dict(model.named_parameters())

    for packed in (False, True):
        matrices, every = after("matrices", packed), after("all", packed)
        for n, p0 in module.named_parameters():
            if n in one_d:
                assert torch.equal(matrices[n], p0), (packed, n)
                assert (every[n].abs() < p0.abs()).all(), (packed, n, "'all' must decay it")
            else:
                assert (matrices[n].abs() < p0.abs()).all(), (packed, n)
                torch.testing.assert_close(matrices[n], every[n], rtol=0, atol=0)


def test_packed_runs_with_decay_matrices_are_their_unpacked_runs():
    """decay = "matrices" through train() and train_pack(): the same runs to 1e-10 (MLP: two biases)."""
    members = [dict(optimizer="adamw", lr=2e-3, wd_norm=2.0), dict(optimizer="adam", lr=1e-3, wd_norm=1.0),
               dict(optimizer="adamw-torch", lr=1e-3, wd_norm=4.0)]
    state = assert_same_runs(configs(members, model="mlp", epochs=2, decay="matrices"))
    everything = RunState()
    list(train(configs(members[:1], model="mlp", epochs=2)[0], everything))
    ref = everything.model.state_dict()
    assert not torch.allclose(state.final[0]["1.bias"], ref["1.bias"])  # decay = "all" differs on the biases


def test_names_resolve_through_entry_points_including_an_installed_package(tmp_path, monkeypatch):
    """Basin's built-ins are entry points of its own distribution; a package installed beside it
    (a dist-info with entry_points.txt) adds names the same way, and errors list them."""
    for name in models.MODELS:
        fn = registry.resolve("model", name)
        assert fn.__module__ == "trainers.models"
    assert registry.resolve("dataset", "digits") is data.digits
    (tmp_path / "tinymodels.py").write_text(
        "from torch import nn\n"
        "def tiny(input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes))\n")
    info = tmp_path / "tinymodels-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinymodels\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[basin.models]\ntiny-net = tinymodels:tiny\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "tiny-net" in registry.names("model") and registry.names("model")[:4] == list(models.MODELS)
    net = models.build("tiny-net", (1, 8, 8), 10)
    assert isinstance(net, nn.Sequential)
    runs = list(train(RunConfig(model="tiny-net", lr=0.02, epochs=2)))
    assert runs[-1].test_error < 0.5
    with pytest.raises(ValueError, match=r"unknown model 'tiny'; registered \(basin.models\): mlp, cnn, .*tiny-net"):
        RunConfig(model="tiny")
    with pytest.raises(ValueError, match="is not a reference"):
        RunConfig(model="a b:c")


def test_a_pair_of_torch_datasets_is_materialised_with_its_classes_and_augment_hook():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 3, generator=g), torch.arange(50) % 3
    ds = data.as_dataset((TensorDataset(x[:40], y[:40]), TensorDataset(x[40:], y[40:])), "pair")
    assert ds.num_classes == 3 and ds.input_shape == (3,) and ds.y_train.dtype == torch.int64
    assert torch.equal(ds.x_train, x[:40]) and torch.equal(ds.y_test, y[40:])
    calls = []

    def hook(batch, generator):
        calls.append(generator)
        return batch + torch.rand(batch.shape, generator=generator)

    hooked = data.materialise(TensorDataset(x[:40], y[:40]), TensorDataset(x[40:], y[40:]), num_classes=5,
                              augment=hook)
    gen = torch.Generator().manual_seed(1)
    batches = list(data.train_batches(hooked, 16, gen))
    assert hooked.num_classes == 5 and len(calls) == 3 and all(c is gen for c in calls)
    assert not any(torch.equal(b, ds.x_train[:len(b)]) for b, _ in batches)
    regression = data.as_dataset((TensorDataset(x[:40], x[:40, 0]), TensorDataset(x[40:], x[40:, 0])), "reg")
    assert regression.num_classes == 0
    assert data.split_validation(regression, 0.25).x_val.shape == (10, 3)  # not stratified: no classes
    with pytest.raises(ValueError, match=r"dataset: 'bad' returned a dict"):
        data.as_dataset({"x": x}, "bad")
    with pytest.raises(ValueError, match=r"y_train spans 0\.\.2; expected 0\.\.1"):
        data.as_dataset(data.Dataset("bad", x, y, x, y, 2), "bad")


def _write_regression(folder) -> str:
    name = "regress_" + folder.name.replace("-", "_")
    (folder / f"{name}.py").write_text(
        "import torch\n"
        "from torch import nn\n"
        "from trainers.data import Dataset\n"
        "def data():\n"
        "    g = torch.Generator().manual_seed(0)\n"
        "    x = torch.randn(300, 5, generator=g)\n"
        "    y = x @ torch.arange(1.0, 6.0) + 0.1 * torch.randn(300, generator=g)\n"
        "    return Dataset('lin', x[:200], y[:200], x[200:], y[200:], 0)\n"
        "def model(input_shape, num_classes):\n"
        "    return nn.Sequential(nn.Linear(input_shape[0], 16), nn.ReLU(), nn.Linear(16, 1))\n"
        "def mse(model, batch):\n"
        "    x, y = batch\n"
        "    return (model(x).squeeze(1) - y) ** 2\n")
    return name


def test_a_loss_metric_reports_its_loss_its_standard_error_and_the_untrained_loss_as_chance(tmp_path):
    sys.path.insert(0, str(tmp_path))
    try:
        mod = _write_regression(tmp_path)
        base = dict(dataset=f"{mod}:data", model=f"{mod}:model", metric=f"{mod}:mse", optimizer="adamw",
                    lr=1e-2, wd_norm=0.05, epochs=3, batch_size=32)
        state = RunState()
        results = list(train(RunConfig(**base), state))
        last = results[-1]
        assert last.test_error is None and last.train_error is None and last.test_loss < results[0].test_loss
        ds = data.load(f"{mod}:data")
        state.model.eval()
        with torch.no_grad():
            losses = (state.model(ds.x_test).squeeze(1) - ds.y_test) ** 2
        assert last.test_loss == pytest.approx(losses.mean().item(), rel=1e-5)
        assert last.test_se == pytest.approx(losses.std().item() / math.sqrt(len(losses)), rel=1e-4)
        torch.manual_seed(0)  # the untrained network of seed 0: what a diverged run records
        with torch.no_grad():
            untrained = ((models.build(f"{mod}:model", (5,), 0)(ds.x_test).squeeze(1) - ds.y_test) ** 2).mean()
        exploded = list(train(RunConfig(**{**base, "lr": 1e4, "optimizer": "sgd"})))
        assert exploded[-1].diverged and exploded[-1].test_loss == pytest.approx(untrained.item(), rel=1e-6)
    finally:
        sys.path.remove(str(tmp_path))


def test_test_loss_metric_packs_and_matches_its_unpacked_runs():
    """metric = "test_loss": packed and unpacked runs agree on the loss, its standard error and a
    diverged member's value (the untrained network's loss, about ln C)."""
    members = [dict(optimizer="sgdw", lr=0.05, wd_norm=0.1), dict(optimizer="sgd", lr=1e6, wd_norm=0.1)]
    pack = configs(members, model="mlp", epochs=2, metric="test_loss")
    packed = list(train_pack(pack))
    for i, config in enumerate(pack):
        ref = list(train(config))
        mine = [epoch[i] for epoch in packed if i in epoch]
        assert [r.diverged for r in ref] == [r.diverged for r in mine] and len(ref) == len(mine)
        for a, b in zip(ref, mine):
            assert b.test_loss == pytest.approx(a.test_loss, rel=1e-10)
            assert (a.test_se is None) == (b.test_se is None) or a.diverged
            if a.test_se is not None:
                assert b.test_se == pytest.approx(a.test_se, rel=1e-8) and a.test_se > 0
    diverged = [epoch[1] for epoch in packed if 1 in epoch][-1]
    assert diverged.diverged and diverged.test_loss == pytest.approx(math.log(10), rel=0.1)
