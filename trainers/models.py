"""The networks of a Basin sweep: a small MLP, a small BatchNorm CNN, and the paper's Shake-Shake ResNets.

:func:`build` makes any network a sweep names: these built-ins (registered in pyproject.toml under
the entry-point group ``basin.models``, like any installed package's models) or a user's builder
``"package.module:function"``, all through :mod:`trainers.registry` and one contract (see build).

``"mlp"``   flatten → Linear(d, 256) → ReLU → Linear(256, classes).
``"cnn"``   a small BatchNorm CNN for (C, L) signals (run as height-1 images) and (C, H, W) images:
            conv(32)-BN-ReLU → conv(64, stride 2)-BN-ReLU → conv(64)-BN-ReLU → global average pool
            → Linear(64, classes) (1-D: the first conv has kernel 5 and stride 2 as well).
            Every conv is followed by BN, so its weights are scale-invariant: f(c·w) = f(w). Weight
            decay on such weights does not change the function, only the effective step size
            α/‖w‖², which is what couples α and λ in the paper's landscapes.
``"shake26-2x64d"``, ``"shake26-2x96d"``  Shake-Shake-Image ResNet 26 2×Kd (Gastaldi 2017), as in
            the authors' fb.resnet.torch code the paper used: conv3×3(16)-BN stem, 3 stages × 4 blocks
            of widths K, 2K, 4K (stride 2 into stages 2 and 3), ReLU, global average pool, linear.
            A block is x ↦ s(x) + mix(b₁(x), b₂(x)) with two branches bᵢ = ReLU-conv3×3-BN-ReLU-conv3×3-BN
            and s the identity or, when the shape changes, the shake-shake shortcut ReLU →
            [conv1×1(x subsampled) ‖ conv1×1(x shifted one pixel right/down, subsampled)] → BN.
            Training: forward mix = α·b₁ + (1−α)·b₂ and backward ∂/∂b₁ = β·g, ∂/∂b₂ = (1−β)·g with
            independent α, β ~ U(0, 1) per image and block ("Shake-Shake-Image"); eval: 0.5·b₁ + 0.5·b₂.
            Parameters on CIFAR-10 (10 classes): 11,653,978 (2×64d; paper 11.6M) and 26,192,922 (2×96d).
            The latter is what the authors' Lua code (models/shakeshake*.lua, widenFactor 6) builds;
            Loshchilov & Hutter print 25.6M, 2.3% less, which no variant of that code reproduces.

No dtype or memory format is fixed, so bf16 autocast and channels_last work. Randomness (init, α, β)
comes from torch's global RNG: seed it with ``torch.manual_seed`` for a reproducible run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MODELS = ("mlp", "cnn", "shake26-2x64d", "shake26-2x96d")  # the built-ins, registered in pyproject.toml (basin.models)
SHAKE_WIDTHS = {"shake26-2x64d": 64, "shake26-2x96d": 96}
MLP_HIDDEN = 256


def build(model: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """The network ``model`` names — a registered name (:data:`MODELS` and any installed package's
    ``basin.models`` entry points) or a reference ``"package.module:function"`` — for one example's
    ``input_shape`` and ``num_classes``.

    The contract of a model builder, Basin's own included: ``fn(input_shape, num_classes)`` where
    ``input_shape`` is the shape of one example as a tuple of ints (``(C, H, W)`` images,
    ``(C, L)`` signals, ``(d,)`` table rows: whatever the data set holds) and ``num_classes`` the
    data set's number of classes (0 for a data set without classes); it returns an ``nn.Module``
    that maps a batch ``(N, *input_shape)`` to logits ``(N, num_classes)`` — or, with a metric
    function, to whatever that function takes. Its initialisation draws from torch's global RNG,
    which Basin seeds with the run's seed first. Raises ValueError (a
    :class:`trainers.registry.RegistryError` for a bad name, reference or return value).
    """
    from trainers import registry

    fn = registry.resolve("model", model)
    module = fn(tuple(int(s) for s in input_shape), num_classes)
    if not isinstance(module, nn.Module):
        raise registry.RegistryError(f"model: {model!r} returned a {type(module).__name__}, not a torch.nn.Module; "
                                     "a model builder fn(input_shape, num_classes) returns the network")
    return module


def _classifier_shape(input_shape: tuple[int, ...], num_classes: int) -> tuple[int, ...]:
    """The built-ins' inputs: (C, L) or (C, H, W) with positive sizes, and ≥ 2 classes."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(f"input_shape must be (C, L) or (C, H, W) with positive sizes; got {input_shape!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2; got {num_classes!r}")
    return shape


def mlp(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``"mlp"``: :class:`MLP`."""
    return MLP(_classifier_shape(input_shape, num_classes), num_classes)


def cnn(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``"cnn"``: :class:`CNN`."""
    return CNN(_classifier_shape(input_shape, num_classes), num_classes)


def _shake(name: str, input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    shape = _classifier_shape(input_shape, num_classes)
    if len(shape) != 3:
        raise ValueError(f"{name} needs (C, H, W) images; got input_shape {shape}")
    return ShakeShakeResNet(shape[0], num_classes, width=SHAKE_WIDTHS[name])


def shake26_2x64d(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``"shake26-2x64d"``: :class:`ShakeShakeResNet` of width 64."""
    return _shake("shake26-2x64d", input_shape, num_classes)


def shake26_2x96d(input_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    """``"shake26-2x96d"``: :class:`ShakeShakeResNet` of width 96."""
    return _shake("shake26-2x96d", input_shape, num_classes)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars (BN running statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ------------------------------------------------------------------------------------- MLP, CNN


class MLP(nn.Sequential):
    """flatten → Linear(d, 256) → ReLU → Linear(256, classes)."""

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, hidden: int = MLP_HIDDEN) -> None:
        d = 1
        for s in input_shape:
            d *= s
        super().__init__(nn.Flatten(), nn.Linear(d, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, num_classes))


def conv_spec(input_shape: tuple[int, ...], widths: tuple[int, int, int] = (32, 64, 64)) -> list[tuple[int, int, int, int]]:
    """(c_in, c_out, kernel, stride) of the CNN's three conv layers for ``input_shape``."""
    c1, c2, c3 = widths
    signal = len(input_shape) == 2
    return [(input_shape[0], c1, 5 if signal else 3, 2 if signal else 1), (c1, c2, 3, 2), (c2, c3, 3, 1)]


def conv_geometry(kernel: int, stride: int, signal: bool) -> dict:
    """Conv2d kernel/stride/padding of one layer: (1, k) along the signal for 1-D, (k, k) for images."""
    if signal:
        return dict(kernel_size=(1, kernel), stride=(1, stride), padding=(0, kernel // 2))
    return dict(kernel_size=kernel, stride=stride, padding=kernel // 2)


class CNN(nn.Module):
    """Small BN CNN, three conv-BN-ReLU layers, global average pool, Linear(64, classes).

    1-D (C, L):    conv5(32, stride 2) → conv3(64, stride 2) → conv3(64)      (L = 40 → 20 → 10 → 10)
    2-D (C, H, W): conv3(32)           → conv3(64, stride 2) → conv3(64)      (8×8 → 8×8 → 4×4 → 4×4)

    A 1-D signal runs as an image of height 1 (Conv2d with (1, k) kernels): the same function and
    the same initialisation as Conv1d (same weights, fan-in and draw order), but oneDNN's
    channels-last 2-D kernels are ≈ 2× faster on a CPU than its 1-D ones (bench/packed.py). Every
    activation is kept channels-last; a one-channel input is ambiguous in memory format, so the
    first conv's output is made channels-last explicitly (else every later layer falls back to the
    slow layout). Global average pooling is a mean over the spatial axes.

    Downsampling is by strided convolution, not pooling: on one CPU thread max/avg-pool backward
    costs as much as a convolution here, and MNIST-1D/digits errors were the same within noise.
    Convs have no bias (BN follows each), so all conv weights are scale-invariant.
    """

    def __init__(self, input_shape: tuple[int, ...], num_classes: int, widths: tuple[int, int, int] = (32, 64, 64)) -> None:
        super().__init__()
        self.signal = len(input_shape) == 2
        layers = []
        for c_in, c_out, kernel, stride in conv_spec(input_shape, widths):
            layers += [nn.Conv2d(c_in, c_out, bias=False, **conv_geometry(kernel, stride, self.signal)),
                       nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.signal:
            x = x.unsqueeze(2)  # (N, C, L) → (N, C, 1, L)
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.features[0](x).contiguous(memory_format=torch.channels_last)
        x = self.features[1:](x)
        return self.head(x.mean(dim=(2, 3)))


# -------------------------------------------------------------------------------- Shake-Shake


class _ShakeMix(torch.autograd.Function):
    """y = α·x₁ + (1−α)·x₂ forward; ∂L/∂x₁ = β·∂L/∂y, ∂L/∂x₂ = (1−β)·∂L/∂y backward.

    Written in the functorch style (forward without ctx, ``setup_context``) so that ``vmap`` can
    batch it: a packed Shake-Shake (``trainers.pack_models.FuncPack``) runs through it unchanged.
    """

    generate_vmap_rule = True

    @staticmethod
    def forward(x1, x2, alpha, beta):
        return torch.lerp(x2, x1, alpha)  # x₂ + α(x₁ − x₂)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[3])

    @staticmethod
    def backward(ctx, grad):
        (beta,) = ctx.saved_tensors
        g1 = grad * beta
        return g1, grad - g1, None, None


def shake_mix(x1: torch.Tensor, x2: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """The shake-shake combination: forward with α, backward with β (both broadcast against x₁)."""
    return _ShakeMix.apply(x1, x2, alpha, beta)


def _branch(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(inplace=False),  # the block input also feeds the other branch and the shortcut
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
    )


class ShakeShortcut(nn.Module):
    """ReLU → [conv1×1(x[::s, ::s]) ‖ conv1×1(shift(x)[::s, ::s])] → BN, each conv cout/2 channels.

    shift moves the image one pixel right and down (zero row/column in at the top/left), as
    ``SpatialZeroPadding(1, -1, 1, -1)`` in the authors' code, so the two halves see different pixels.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = nn.Conv2d(cin, cout // 2, 1, bias=False)
        self.conv2 = nn.Conv2d(cin, cout - cout // 2, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        s = self.stride
        shifted = F.pad(x[:, :, :-1, :-1], (1, 0, 1, 0))
        return self.bn(torch.cat([self.conv1(x[:, :, ::s, ::s]), self.conv2(shifted[:, :, ::s, ::s])], dim=1))


class ShakeBlock(nn.Module):
    """x ↦ shortcut(x) + mix(b₁(x), b₂(x)); per-image α, β ~ U(0, 1) when training, 0.5/0.5 in eval."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.branch1 = _branch(cin, cout, stride)
        self.branch2 = _branch(cin, cout, stride)
        self.shortcut = nn.Identity() if (cin == cout and stride == 1) else ShakeShortcut(cin, cout, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h1, h2 = self.branch1(x), self.branch2(x)
        if self.training:
            shape = (h1.shape[0],) + (1,) * (h1.dim() - 1)
            alpha = torch.rand(shape, device=h1.device, dtype=h1.dtype)
            beta = torch.rand(shape, device=h1.device, dtype=h1.dtype)
            h = shake_mix(h1, h2, alpha, beta)
        else:
            h = 0.5 * (h1 + h2)
        return self.shortcut(x) + h


class ShakeShakeResNet(nn.Module):
    """Shake-Shake-Image ResNet 26 2×{width}d: stem conv3×3(16)-BN, stages of 4 blocks with widths
    (w, 2w, 4w) and strides (1, 2, 2), ReLU, global average pool, Linear(4w, classes).

    Initialisation as fb.resnet.torch: conv weights N(0, 2/(k²·c_out)), BN γ=1 β=0, linear bias 0.
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64, blocks_per_stage: int = 4) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        stages, cin = [], 16
        for i, stride in enumerate((1, 2, 2)):
            cout = width * 2**i
            blocks = [ShakeBlock(cin, cout, stride)] + [ShakeBlock(cout, cout, 1) for _ in range(blocks_per_stage - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = cout
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        x = F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1)
        return self.fc(x)


__all__ = ["MODELS", "build", "cnn", "count_parameters", "mlp", "shake26_2x64d", "shake26_2x96d", "shake_mix", "CNN", "MLP", "ShakeShakeResNet", "ShakeBlock"]
