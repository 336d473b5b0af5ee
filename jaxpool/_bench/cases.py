"""What the benchmark measures: the workloads, their JAX peers, their ``lax.reduce_window``
formulations (the compile-time reference), and whether a peer computes torch's numbers."""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np


@dataclasses.dataclass(frozen=True)
class Peer:
    """Another JAX library's version of a workload's op, timed beside jaxpool.

    ``library`` names the table's column group (``PEER_LIBRARIES``), ``call`` what is called;
    ``fn`` takes the input in its own layout: channels-last (``(N, *spatial, C)``) when
    ``channels_last``, else the workload's NCHW input.
    """

    library: str
    call: str
    fn: Callable
    channels_last: bool


PEER_LIBRARIES = ("flax", "keras")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark case.

    ``jax_fn``/``torch_fn`` take the NCHW input and return the output, or a tuple whose first
    element is the differentiable output.  ``peers`` are other JAX libraries' versions of the
    op (:class:`Peer`).  ``extra`` makes extra constant arguments (shared random
    samples) from a numpy generator; they are passed after the input to both sides.
    ``reduce_window`` is the op written as one ``lax.reduce_window`` on the NCHW input (a
    :class:`Peer` of library ``lax``), whose forward+backward compile time is the reference for
    jaxpool's, or, as a string, why ``reduce_window`` cannot express the op.
    """

    name: str
    shape: tuple[int, ...]
    quick_shape: tuple[int, ...]
    jax_fn: Callable
    torch_fn: Callable
    peers: tuple[Peer, ...] = ()
    extra: Callable | None = None  # (rng, shape) -> tuple of numpy arrays passed to both sides
    requires: str | None = None  # jaxpool attribute that must exist
    reduce_window: Peer | str | None = None


def _flax_pool(call: str, kind: str, window, strides, padding="VALID", **kw) -> Peer:
    def fn(x):
        from flax import linen as nn

        pool = nn.max_pool if kind == "max" else nn.avg_pool
        return pool(x, window, strides=strides, padding=padding, **kw)
    return Peer("flax", call, fn, channels_last=True)


def _per_axis(value, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * n


def _torch_padding(size: int, kernel: int, stride: int, padding: int, dilation: int,
                   ceil_mode: bool) -> tuple[int, int]:
    """(low, high) padding that gives reduce_window torch's output size: in ceil_mode a last
    window that starts inside the input or its left padding is kept, so the high side grows."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return padding, max(padding, (out - 1) * stride + span - size - padding)


def _reduce_window(kind: str, kernel, stride, padding=0, dilation=1, ceil_mode=False,
                   count_include_pad=True, same_as: str = "") -> Peer:
    """The op as one ``lax.reduce_window`` over the spatial axes of the NCHW input: ``kind``
    "max" (padding -inf), "avg" (window sum / count) or "lp2" (square root of the window sum of
    squares: torch's lp_pool with p=2).  ``same_as`` says why an adaptive op is this pool."""
    call = f"lax.reduce_window {kind} k{kernel} s{stride}" + (f" p{padding}" if padding else "")
    call += (f" d{dilation}" if dilation != 1 else "") + (" ceil_mode" if ceil_mode else "")
    call += "" if count_include_pad else " (count excludes padding)"
    call += f" ({same_as})" if same_as else ""

    def fn(x):
        from jax import lax

        n = x.ndim - 2
        k, s, p, d = (_per_axis(v, n) for v in (kernel, stride, padding, dilation))
        pads = tuple(_torch_padding(*axis, ceil_mode) for axis in zip(x.shape[2:], k, s, p, d))
        window = {"window_dimensions": (1, 1, *k), "window_strides": (1, 1, *s),
                  "padding": ((0, 0), (0, 0), *pads), "window_dilation": (1, 1, *d)}
        if kind == "max":
            return lax.reduce_window(x, np.array(-np.inf, x.dtype), lax.max, **window)
        zero = np.array(0, x.dtype)
        total = lax.reduce_window(x * x if kind == "lp2" else x, zero, lax.add, **window)
        if kind == "lp2":
            return lax.sqrt(total)
        if count_include_pad:
            return total / math.prod(k)
        ones = np.ones((1, 1, *x.shape[2:]), x.dtype)
        return total / lax.reduce_window(ones, zero, lax.add, **window)
    return Peer("lax", call, fn, channels_last=False)


@functools.cache
def keras_status() -> str | None:
    """None when Keras 3 runs on the JAX backend here, else why its peers are not timed.

    ``KERAS_BACKEND`` is read once, at Keras' import: this process asks for JAX unless the
    caller chose a backend."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return "not installed (pip install -e '.[bench]')"
    if keras.backend.backend() != "jax":
        return f"runs on the {keras.backend.backend()} backend, not jax (set KERAS_BACKEND=jax)"
    if not hasattr(keras.ops, "adaptive_average_pool"):
        return f"keras {keras.__version__} has no keras.ops.adaptive_average_pool"
    return None


def _keras_adaptive(kind: str, output_size) -> Peer:
    name = "adaptive_average_pool" if kind == "avg" else "adaptive_max_pool"

    def fn(x):
        import keras

        return getattr(keras.ops, name)(x, output_size, data_format="channels_first")
    return Peer("keras", f"keras.ops.{name}", fn, channels_last=False)


def workloads() -> list[Workload]:
    import jaxpool
    import torch.nn.functional as F

    def frac_jax(x, samples):
        return jaxpool.fractional_max_pool2d(x, 3, output_ratio=0.5, _random_samples=samples)

    def frac_torch(x, samples):
        return F.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.5), _random_samples=samples)  # torch takes len()

    def frac_samples(rng, shape):
        return (rng.random((shape[0], shape[1], 2)).astype(np.float32),)

    return [
        Workload("max_pool2d_k3s2p1_resnet", (16, 64, 112, 112), (2, 8, 32, 32),
                 lambda x: jaxpool.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1),
                 (_flax_pool("flax.linen.max_pool", "max", (3, 3), (2, 2), ((1, 1), (1, 1))),),
                 reduce_window=_reduce_window("max", 3, 2, 1)),
        Workload("max_pool2d_k2s2_indices_unpool_segnet", (16, 64, 64, 64), (2, 8, 16, 16),
                 lambda x: jaxpool.max_unpool2d(*jaxpool.max_pool2d(x, 2, 2, return_indices=True), 2, 2),
                 lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, 2, return_indices=True), 2, 2),
                 reduce_window="reduce_window returns no indices, so no max_unpool2d either"),
        Workload("max_pool2d_k3s2d2_ceil", (16, 64, 57, 57), (2, 8, 17, 17),
                 lambda x: jaxpool.max_pool2d(x, 3, 2, 0, 2, True),
                 lambda x: F.max_pool2d(x, 3, 2, 0, 2, True),
                 reduce_window=_reduce_window("max", 3, 2, 0, 2, ceil_mode=True)),
        Workload("avg_pool2d_k3s1p1_nopad", (16, 192, 28, 28), (2, 8, 14, 14),
                 lambda x: jaxpool.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                 lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                 (_flax_pool("flax.linen.avg_pool", "avg", (3, 3), (1, 1), ((1, 1), (1, 1)),
                             count_include_pad=False),),
                 reduce_window=_reduce_window("avg", 3, 1, 1, count_include_pad=False)),
        Workload("lp_pool2d_p2_k3s2", (16, 64, 56, 56), (2, 8, 16, 16),
                 lambda x: jaxpool.lp_pool2d(x, 2, 3, 2), lambda x: F.lp_pool2d(x, 2, 3, 2),
                 reduce_window=_reduce_window("lp2", 3, 2)),
        Workload("adaptive_avg_pool2d_14to7", (32, 512, 14, 14), (2, 8, 14, 14),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 7), lambda x: F.adaptive_avg_pool2d(x, 7),
                 (_flax_pool("flax.linen.avg_pool (k2 s2, same windows)", "avg", (2, 2), (2, 2)),
                  _keras_adaptive("avg", 7)),
                 reduce_window=_reduce_window("avg", 2, 2, same_as="14 -> 7: the same windows")),
        Workload("adaptive_avg_pool2d_33to7", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 7), lambda x: F.adaptive_avg_pool2d(x, 7),
                 (_keras_adaptive("avg", 7),),
                 reduce_window="33 -> 7 windows are 5 or 6 long: no fixed window"),
        Workload("adaptive_avg_pool2d_global", (64, 2048, 7, 7), (2, 16, 7, 7),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 1), lambda x: F.adaptive_avg_pool2d(x, 1),
                 (_flax_pool("flax.linen.avg_pool (k7, same window)", "avg", (7, 7), (7, 7)),
                  _keras_adaptive("avg", 1)),
                 reduce_window=_reduce_window("avg", 7, 7, same_as="global: the same window")),
        Workload("adaptive_avg_pool2d_10x9to80x60", (8, 64, 10, 9), (2, 8, 10, 9),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, (80, 60)),
                 lambda x: F.adaptive_avg_pool2d(x, (80, 60)), (_keras_adaptive("avg", (80, 60)),),
                 reduce_window="upsampling (10x9 -> 80x60): windows 1 or 2 long at a fractional stride"),
        Workload("adaptive_max_pool2d_33to5", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_max_pool2d(x, 5), lambda x: F.adaptive_max_pool2d(x, 5),
                 (_keras_adaptive("max", 5),),
                 reduce_window="33 -> 5 windows are 7 or 8 long: no fixed window"),
        Workload("adaptive_max_pool2d_33to5_indices", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_max_pool2d(x, 5, True),
                 lambda x: F.adaptive_max_pool2d(x, 5, True),
                 reduce_window="33 -> 5 windows are 7 or 8 long, and reduce_window returns no indices"),
        Workload("adaptive_max_pool1d_1000to100", (64, 256, 1000), (2, 8, 1000),
                 lambda x: jaxpool.adaptive_max_pool1d(x, 100), lambda x: F.adaptive_max_pool1d(x, 100),
                 (_flax_pool("flax.linen.max_pool (k10 s10, same windows)", "max", (10,), (10,)),
                  _keras_adaptive("max", 100)),
                 reduce_window=_reduce_window("max", 10, 10, same_as="1000 -> 100: the same windows")),
        Workload("max_pool3d_k2s2", (4, 32, 32, 64, 64), (1, 4, 8, 16, 16),
                 lambda x: jaxpool.max_pool3d(x, 2, 2), lambda x: F.max_pool3d(x, 2, 2),
                 (_flax_pool("flax.linen.max_pool", "max", (2, 2, 2), (2, 2, 2)),),
                 reduce_window=_reduce_window("max", 2, 2)),
        Workload("adaptive_avg_pool3d_17to4", (4, 64, 17, 17, 17), (1, 4, 17, 17, 17),
                 lambda x: jaxpool.adaptive_avg_pool3d(x, 4), lambda x: F.adaptive_avg_pool3d(x, 4),
                 (_keras_adaptive("avg", 4),),
                 reduce_window=_reduce_window("avg", 5, 4, same_as="17 -> 4: the same windows")),
        Workload("fractional_max_pool2d_k3_r0.5", (8, 64, 64, 64), (2, 4, 16, 16),
                 frac_jax, frac_torch, extra=frac_samples, requires="fractional_max_pool2d",
                 reduce_window="pseudo-random window starts: no fixed stride"),
    ]


# A peer agrees with torch when every output is within float32 summation noise of torch's.
PEER_RTOL, PEER_ATOL = 1e-4, 1e-5


def agreement(library: str, out: np.ndarray, reference: np.ndarray) -> dict:
    """Whether a peer's forward output is torch's: ``{library}_matches_torch`` and, where it is
    not, how many outputs differ, how many of them are NaN, and the table's footnote."""
    if out.shape != reference.shape:
        return {f"{library}_matches_torch": False, f"{library}_differs": f"shape {out.shape}, torch {reference.shape}"}
    close = np.isclose(out, reference, rtol=PEER_RTOL, atol=PEER_ATOL, equal_nan=True)
    wrong = int(np.count_nonzero(~close))
    error = np.abs(out.astype(np.float64) - reference)
    finite = error[np.isfinite(error)]
    result: dict[str, Any] = {f"{library}_matches_torch": wrong == 0}
    if wrong:
        nan = int(np.count_nonzero(np.isnan(out) & ~np.isnan(reference)))
        result.update({f"{library}_wrong_outputs": wrong, f"{library}_nan_outputs": nan,
                       f"{library}_differs": f"{wrong} of {out.size} outputs, {nan} of them NaN, largest "
                                             f"finite error {finite.max() if finite.size else float('nan'):.3g}"})
    return result
