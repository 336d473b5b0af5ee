"""The model benchmark's four architectures, in Flax (three pool kits) and in PyTorch.

Each Flax model takes a ``pools`` field naming its pool kit:

* ``"jaxpool"``: :mod:`jaxpool.flax.linen` layers (channels-last, torch.nn's arguments);
* ``"flax"``: Flax's own ``nn.max_pool``/``nn.avg_pool``, where they can express the model
  (:data:`FLAX_CANNOT` says where not and why);
* ``"slice"``: each pool replaced by the cheapest op of the same output shape (a strided
  slice, a pad), so that the step time of the jaxpool model minus this one is the pools' share.

The parameters do not depend on the kit, so one ``init`` serves all three, and
:func:`port_to_torch` copies them into the PyTorch model (NCHW, same layer names), which then
computes the same numbers.  :data:`MODELS` lists the benchmark's models with full and quick
shapes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

import jaxpool.flax.linen as jpl

KITS = ("jaxpool", "flax", "slice")

FLAX_CANNOT = {
    "vgg11": ("n/a: Flax has no adaptive pool, and AdaptiveAvgPool2d((7,7)) of a map that is not a "
              "multiple of 7 has unequal, overlapping windows"),
    "segnet": "n/a: Flax has no pool indices or max_unpool",
}


# ------------------------------------------------------------------------------ pool kits


def _out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - k) // s + 1


def _strided_index(spatial, k: int, s: int, p: int) -> tuple[slice, ...]:
    """Every s-th cell along each spatial axis, as many as a k/s/p pool has outputs."""
    return tuple(slice(0, s * (_out_size(n, k, s, p) - 1) + 1, s) for n in spatial)


def _strided(x, k: int, s: int, p: int):
    """The cheapest op with a k/s/p pool's output shape: every s-th cell (channels-last)."""
    return x[(slice(None), *_strided_index(x.shape[1:-1], k, s, p), slice(None))]


def max_pool(kit: str, x, k: int, s: int, p: int = 0):
    """torch.nn.MaxPool{2,3}d(k, s, p) on channels-last ``x`` with the kit's op."""
    n = x.ndim - 2
    if kit == "jaxpool":
        return (jpl.MaxPool2d if n == 2 else jpl.MaxPool3d)(k, s, p)(x)
    if kit == "flax":  # Flax pads max pools with -inf, as torch does
        return nn.max_pool(x, (k,) * n, (s,) * n, padding=((p, p),) * n)
    return _strided(x, k, s, p)


def global_avg_pool(kit: str, x):
    """torch.nn.AdaptiveAvgPool{2,3}d(1) on channels-last ``x``: ``(N, 1, ..., 1, C)``."""
    n = x.ndim - 2
    if kit == "jaxpool":
        return (jpl.AdaptiveAvgPool2d if n == 2 else jpl.AdaptiveAvgPool3d)(1)(x)
    if kit == "flax":  # one window over the whole map
        return nn.avg_pool(x, x.shape[1:-1], x.shape[1:-1])
    return x[(slice(None), *(slice(0, 1),) * n, slice(None))]


def adaptive_avg_pool7(kit: str, x):
    """torch.nn.AdaptiveAvgPool2d((7, 7)) on channels-last ``x``."""
    if kit == "jaxpool":
        return jpl.AdaptiveAvgPool2d((7, 7))(x)
    if kit == "flax":
        raise ValueError(FLAX_CANNOT["vgg11"])
    h, w = x.shape[1:3]  # the slice kit: crop or zero-pad to 7x7
    x = x[:, :7, :7]
    return jnp.pad(x, ((0, 0), (0, max(0, 7 - h)), (0, max(0, 7 - w)), (0, 0)))


def max_pool_indices(kit: str, x):
    """torch.nn.MaxPool2d(2, 2, return_indices=True): ``(output, indices)``."""
    if kit == "jaxpool":
        return jpl.MaxPool2d(2, 2, return_indices=True)(x)
    if kit == "flax":
        raise ValueError(FLAX_CANNOT["segnet"])
    return _strided(x, 2, 2, 0), None


def max_unpool(kit: str, x, indices):
    """torch.nn.MaxUnpool2d(2, 2) of ``max_pool_indices``' result."""
    if kit == "jaxpool":
        return jpl.MaxUnpool2d(2, 2)(x, indices)
    if kit == "flax":
        raise ValueError(FLAX_CANNOT["segnet"])
    # the slice kit: each value at its window's first cell, zeros between (interior padding)
    return lax.pad(x, jnp.zeros((), x.dtype), ((0, 0, 0), (0, 1, 1), (0, 1, 1), (0, 0, 0)))


# ------------------------------------------------------------------------------ Flax models


def conv(features: int, k: int, s: int = 1, p: int = 0, n: int = 2, name: str | None = None):
    """torch.nn.Conv{n}d(?, features, k, s, p) as a Flax conv (explicit, symmetric padding)."""
    return nn.Conv(features, (k,) * n, (s,) * n, padding=((p, p),) * n, name=name)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convs and the identity (or a strided 1x1 conv) shortcut."""

    features: int
    stride: int

    @nn.compact
    def __call__(self, x):
        y = nn.relu(conv(self.features, 3, self.stride, 1, name="conv1")(x))
        y = conv(self.features, 3, 1, 1, name="conv2")(y)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = conv(self.features, 1, self.stride, name="down")(x)
        return nn.relu(x + y)


class ResNet(nn.Module):
    """ResNet-18 style: stem conv 7x7/2 + MaxPool2d(3, 2, 1), two basic blocks per stage,
    AdaptiveAvgPool2d(1) and a linear head (no normalization layers)."""

    widths: tuple[int, ...]
    classes: int
    pools: str = "jaxpool"

    @nn.compact
    def __call__(self, x):
        x = nn.relu(conv(self.widths[0], 7, 2, 3, name="stem")(x))
        x = max_pool(self.pools, x, 3, 2, 1)
        for i, width in enumerate(self.widths):
            for b in range(2):
                x = BasicBlock(width, 2 if i and not b else 1, name=f"layer{i}_{b}")(x)
        x = global_avg_pool(self.pools, x)
        return nn.Dense(self.classes, name="fc")(x.reshape(x.shape[0], -1))


class VGG(nn.Module):
    """VGG-11 style: stages of 3x3 convs, MaxPool2d(2, 2) after all but the last, so the head's
    AdaptiveAvgPool2d((7, 7)) meets a map that is not a multiple of 7; a 3-layer classifier."""

    stages: tuple[tuple[int, ...], ...]
    hidden: int
    classes: int
    pools: str = "jaxpool"

    @nn.compact
    def __call__(self, x):
        for i, stage in enumerate(self.stages):
            for j, width in enumerate(stage):
                x = nn.relu(conv(width, 3, 1, 1, name=f"conv{i}_{j}")(x))
            if i < len(self.stages) - 1:
                x = max_pool(self.pools, x, 2, 2)
        x = adaptive_avg_pool7(self.pools, x)
        x = x.reshape(x.shape[0], -1)  # (h, w, c) order; the torch model permutes to match
        x = nn.relu(nn.Dense(self.hidden, name="fc0")(x))
        x = nn.relu(nn.Dense(self.hidden, name="fc1")(x))
        return nn.Dense(self.classes, name="fc2")(x)


class SegNet(nn.Module):
    """SegNet style encoder-decoder: per level two 3x3 convs and MaxPool2d(2, 2,
    return_indices=True); the decoder unpools with those indices (MaxUnpool2d(2, 2)) before its
    convs; per-pixel class logits."""

    widths: tuple[int, ...]
    classes: int
    pools: str = "jaxpool"

    @nn.compact
    def __call__(self, x):
        saved = []
        for i, width in enumerate(self.widths):
            x = nn.relu(conv(width, 3, 1, 1, name=f"enc{i}_0")(x))
            x = nn.relu(conv(width, 3, 1, 1, name=f"enc{i}_1")(x))
            x, indices = max_pool_indices(self.pools, x)
            saved.append(indices)
        for i in reversed(range(len(self.widths))):
            x = max_unpool(self.pools, x, saved[i])
            out = self.widths[i - 1] if i else self.widths[0]
            x = nn.relu(conv(self.widths[i], 3, 1, 1, name=f"dec{i}_0")(x))
            x = nn.relu(conv(out, 3, 1, 1, name=f"dec{i}_1")(x))
        return conv(self.classes, 1, name="head")(x)


class Net3d(nn.Module):
    """3-D conv net: per stage a 3x3x3 conv and MaxPool3d(2, 2); AdaptiveAvgPool3d(1) and a
    linear regression head."""

    widths: tuple[int, ...]
    outputs: int
    pools: str = "jaxpool"

    @nn.compact
    def __call__(self, x):
        for i, width in enumerate(self.widths):
            x = nn.relu(conv(width, 3, 1, 1, n=3, name=f"conv{i}")(x))
            x = max_pool(self.pools, x, 2, 2)
        x = global_avg_pool(self.pools, x)
        return nn.Dense(self.outputs, name="fc")(x.reshape(x.shape[0], -1))


# ------------------------------------------------------------------------------ PyTorch models


def _torch_models():
    """The PyTorch twins (NCHW), layer names as in the Flax models.  torch is imported here
    only, so that the Flax half of this module imports without it."""
    import torch
    from torch import nn as tnn

    def tconv(cin, cout, k, s=1, p=0, n=2):
        return (tnn.Conv2d if n == 2 else tnn.Conv3d)(cin, cout, k, s, p)

    class TBasicBlock(tnn.Module):
        def __init__(self, cin, features, stride):
            super().__init__()
            self.conv1 = tconv(cin, features, 3, stride, 1)
            self.conv2 = tconv(features, features, 3, 1, 1)
            self.down = tconv(cin, features, 1, stride) if stride != 1 or cin != features else None

        def forward(self, x):
            y = self.conv2(torch.relu(self.conv1(x)))
            return torch.relu((x if self.down is None else self.down(x)) + y)

    class TResNet(tnn.Module):
        def __init__(self, cin, widths, classes):
            super().__init__()
            self.stem = tconv(cin, widths[0], 7, 2, 3)
            self.pool = tnn.MaxPool2d(3, 2, 1)
            c = widths[0]
            for i, width in enumerate(widths):
                for b in range(2):
                    setattr(self, f"layer{i}_{b}", TBasicBlock(c, width, 2 if i and not b else 1))
                    c = width
            self.blocks = [f"layer{i}_{b}" for i in range(len(widths)) for b in range(2)]
            self.head = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(c, classes)

        def forward(self, x):
            x = self.pool(torch.relu(self.stem(x)))
            for name in self.blocks:
                x = getattr(self, name)(x)
            return self.fc(self.head(x).flatten(1))

    class TVGG(tnn.Module):
        def __init__(self, cin, stages, hidden, classes):
            super().__init__()
            self.convs = []
            c = cin
            for i, stage in enumerate(stages):
                for j, width in enumerate(stage):
                    setattr(self, f"conv{i}_{j}", tconv(c, width, 3, 1, 1))
                    self.convs.append((f"conv{i}_{j}", i, j == len(stage) - 1))
                    c = width
            self.last_stage = len(stages) - 1
            self.pool = tnn.MaxPool2d(2, 2)
            self.head = tnn.AdaptiveAvgPool2d((7, 7))
            self.fc0, self.fc1 = tnn.Linear(49 * c, hidden), tnn.Linear(hidden, hidden)
            self.fc2 = tnn.Linear(hidden, classes)

        def forward(self, x):
            for name, stage, last in self.convs:
                x = torch.relu(getattr(self, name)(x))
                if last and stage < self.last_stage:
                    x = self.pool(x)
            x = self.head(x).permute(0, 2, 3, 1).flatten(1)  # Flax's (h, w, c) order
            x = torch.relu(self.fc1(torch.relu(self.fc0(x))))
            return self.fc2(x)

    class TSegNet(tnn.Module):
        def __init__(self, cin, widths, classes):
            super().__init__()
            self.levels = len(widths)
            c = cin
            for i, width in enumerate(widths):
                setattr(self, f"enc{i}_0", tconv(c, width, 3, 1, 1))
                setattr(self, f"enc{i}_1", tconv(width, width, 3, 1, 1))
                c = width
            for i in reversed(range(len(widths))):
                out = widths[i - 1] if i else widths[0]
                setattr(self, f"dec{i}_0", tconv(c, widths[i], 3, 1, 1))
                setattr(self, f"dec{i}_1", tconv(widths[i], out, 3, 1, 1))
                c = out
            self.head = tconv(c, classes, 1)
            self.pool = tnn.MaxPool2d(2, 2, return_indices=True)
            self.unpool = tnn.MaxUnpool2d(2, 2)

        def forward(self, x):
            saved = []
            for i in range(self.levels):
                x = torch.relu(getattr(self, f"enc{i}_1")(torch.relu(getattr(self, f"enc{i}_0")(x))))
                x, indices = self.pool(x)
                saved.append(indices)
            for i in reversed(range(self.levels)):
                x = self.unpool(x, saved[i])
                x = torch.relu(getattr(self, f"dec{i}_1")(torch.relu(getattr(self, f"dec{i}_0")(x))))
            return self.head(x)

    class TNet3d(tnn.Module):
        def __init__(self, cin, widths, outputs):
            super().__init__()
            c = cin
            for i, width in enumerate(widths):
                setattr(self, f"conv{i}", tconv(c, width, 3, 1, 1, n=3))
                c = width
            self.stages = len(widths)
            self.pool = tnn.MaxPool3d(2, 2)
            self.head = tnn.AdaptiveAvgPool3d(1)
            self.fc = tnn.Linear(c, outputs)

        def forward(self, x):
            for i in range(self.stages):
                x = self.pool(torch.relu(getattr(self, f"conv{i}")(x)))
            return self.fc(self.head(x).flatten(1))

    return {"resnet18": TResNet, "vgg11": TVGG, "segnet": TSegNet, "net3d": TNet3d}


def torch_without_pools(net) -> None:
    """Replace the pools of a PyTorch twin, in place, by the slice kit's stand-ins (the same
    output shapes, NCHW): ``torch - torch no-pool`` is torch's pools' share of the step, to set
    beside ``jaxpool - slice``.  The stand-ins mirror :func:`max_pool`, :func:`global_avg_pool`,
    :func:`adaptive_avg_pool7`, :func:`max_pool_indices` and :func:`max_unpool`'s slice kit."""
    from torch import nn as tnn
    import torch.nn.functional as F

    class Strided(tnn.Module):  # MaxPool{2,3}d(k, s, p): every s-th cell (NCHW)
        def __init__(self, pool):
            super().__init__()
            self.ksp = tuple(v if isinstance(v, int) else v[0] for v in (pool.kernel_size, pool.stride, pool.padding))
            self.with_indices = pool.return_indices

        def forward(self, x):
            out = x[(slice(None), slice(None), *_strided_index(x.shape[2:], *self.ksp))]
            return (out, None) if self.with_indices else out

    class Corner(tnn.Module):  # AdaptiveAvgPool(1): the first cell
        def forward(self, x):
            return x[(slice(None), slice(None), *(slice(0, 1),) * (x.ndim - 2))]

    class CropOrPad7(tnn.Module):  # AdaptiveAvgPool2d((7, 7))
        def forward(self, x):
            h, w = x.shape[2:]
            return F.pad(x[:, :, :7, :7], (0, max(0, 7 - w), 0, max(0, 7 - h)))

    class Spread(tnn.Module):  # MaxUnpool2d(2, 2): each value at its window's first cell
        def forward(self, x, indices):
            out = x.new_zeros(x.shape[:2] + (2 * x.shape[2], 2 * x.shape[3]))
            out[:, :, ::2, ::2] = x  # autograd records the copy into the fresh zeros
            return out

    for name, module in list(net.named_children()):
        if isinstance(module, (tnn.MaxPool2d, tnn.MaxPool3d)):
            setattr(net, name, Strided(module))
        elif isinstance(module, (tnn.AdaptiveAvgPool2d, tnn.AdaptiveAvgPool3d)):
            size = module.output_size
            setattr(net, name, Corner() if size in (1, (1, 1), (1, 1, 1)) else CropOrPad7())
        elif isinstance(module, tnn.MaxUnpool2d):
            setattr(net, name, Spread())


def init_params(module: nn.Module, x, seed: int = 0):
    """Parameters for ``module`` on input ``x``, drawn with numpy: kernels LeCun-normal
    (``N(0, 1/fan_in)``, Flax's default), biases zero.  ``jax.eval_shape`` finds the shapes
    without compiling anything: ``module.init`` would compile every initializer, seconds each
    on a loaded 2-core machine."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(module.init, jax.random.key(seed), x)["params"]

    def draw(leaf):
        if len(leaf.shape) == 1:
            return jnp.zeros(leaf.shape, leaf.dtype)
        fan_in = int(np.prod(leaf.shape[:-1]))
        return jnp.asarray(rng.standard_normal(leaf.shape) / np.sqrt(fan_in), leaf.dtype)
    return jax.tree.map(draw, shapes)


def port_to_torch(params, torch_model) -> None:
    """Copy Flax ``params`` into ``torch_model``'s layer of the same dotted name: conv kernels
    ``(*k, in, out)`` -> ``(out, in, *k)``, dense kernels ``(in, out)`` -> ``(out, in)``."""
    import torch

    flat = jax.tree_util.tree_flatten_with_path(params)[0]
    modules = dict(torch_model.named_modules())
    seen = set()
    for path, value in flat:
        names = [p.key for p in path]
        module = modules[".".join(names[:-1])]
        value = np.asarray(value)
        if names[-1] == "kernel":
            value = value.T if value.ndim == 2 else np.moveaxis(value, (-1, -2), (0, 1))
            target = module.weight
        else:
            target = module.bias
        if tuple(target.shape) != value.shape:
            raise ValueError(f"port_to_torch: {'.'.join(names)} has shape {value.shape}, torch {tuple(target.shape)}")
        with torch.no_grad():
            target.copy_(torch.from_numpy(np.array(value)))  # a writable copy
        seen.add(id(target))
    missing = [n for n, p in torch_model.named_parameters() if id(p) not in seen]
    if missing:
        raise ValueError(f"port_to_torch: no Flax parameter for torch's {missing}")


# ------------------------------------------------------------------------------ the models


@dataclasses.dataclass(frozen=True)
class Model:
    """One benchmark model: ``flax(kit)`` builds the Flax model, ``torch()`` its PyTorch twin;
    ``shape``/``quick_shape`` are channels-last input shapes; ``loss`` is "ce" (cross-entropy
    over ``classes``, per pixel when ``per_pixel``) or "mse" (against ``classes`` targets)."""

    name: str
    description: str
    shape: tuple[int, ...]
    quick_shape: tuple[int, ...]
    flax: Callable[[str, bool], nn.Module]
    torch: Callable[[int, bool], object]
    loss: str
    classes: int
    per_pixel: bool = False

    def targets(self, rng: np.random.Generator, batch: tuple[int, ...]) -> np.ndarray:
        """Random labels (int32: ``(N,)``, or ``(N, *spatial)`` per pixel) or MSE targets."""
        if self.loss == "mse":
            return rng.standard_normal((batch[0], self.classes)).astype(np.float32)
        return rng.integers(0, self.classes, batch[:-1] if self.per_pixel else batch[:1]).astype(np.int32)


def _resnet(quick):
    return (8,) if quick else (32, 64, 128)


def _vgg(quick):
    return ((4,), (8,)) if quick else ((16,), (32,), (64, 64), (128, 128), (128, 128))


def _segnet(quick):
    return (4,) if quick else (16, 32, 64)


def _net3d(quick):
    return (4,) if quick else (8, 16, 32)


def _twin(name: str, *args):
    return _torch_models()[name](*args)


MODELS = [
    Model("resnet18", "ResNet-18 style: stem 7x7/2 conv, MaxPool2d(3,2,1), 2 basic blocks per stage, AdaptiveAvgPool2d(1)",
          (16, 112, 112, 3), (2, 16, 16, 3),
          lambda kit, q: ResNet(_resnet(q), 10, pools=kit),
          lambda cin, q: _twin("resnet18", cin, _resnet(q), 10), "ce", 10),
    Model("vgg11", "VGG-11 style: 3x3 convs, MaxPool2d(2,2) between stages, AdaptiveAvgPool2d((7,7)) of a non-multiple-of-7 map, 3 dense",
          (8, 100, 100, 3), (2, 24, 24, 3),
          lambda kit, q: VGG(_vgg(q), 32 if q else 256, 10, pools=kit),
          lambda cin, q: _twin("vgg11", cin, _vgg(q), 32 if q else 256, 10), "ce", 10),
    Model("segnet", "SegNet style: per level MaxPool2d(2,2,return_indices=True) + MaxUnpool2d(2,2), per-pixel CE",
          (8, 64, 64, 3), (2, 8, 8, 3),
          lambda kit, q: SegNet(_segnet(q), 5, pools=kit),
          lambda cin, q: _twin("segnet", cin, _segnet(q), 5), "ce", 5, per_pixel=True),
    Model("net3d", "3-D conv net: per stage Conv3d 3^3 + MaxPool3d(2,2), AdaptiveAvgPool3d(1), MSE regression",
          (4, 32, 32, 32, 1), (2, 4, 4, 4, 1),
          lambda kit, q: Net3d(_net3d(q), 4, pools=kit),
          lambda cin, q: _twin("net3d", cin, _net3d(q), 4), "mse", 4),
]
