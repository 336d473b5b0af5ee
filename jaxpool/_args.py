"""Argument checking and input layout, shared by every operator.

All checks run at trace time on static Python values and shapes, and raise ``TypeError`` (wrong
kind of value) or ``ValueError`` (wrong value) naming the operator, the argument and the rule.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def int_tuple(value, n: int, name: str, op: str, *, allow_none: bool = False) -> tuple:
    """An int or a sequence of 1 or ``n`` ints, as a tuple of ``n`` Python ints."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items = (value,)
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
    elif isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) <= 1:
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{op}: {name} must be static Python ints, not a traced array")
        items = tuple(np.atleast_1d(np.asarray(value)).tolist())
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(items) == 1:
        items = items * n
    if len(items) != n:
        raise ValueError(
            f"{op}: {name} must be a single int or a tuple of {n} ints, got {len(items)} values {value!r}"
        )
    for item in items:
        if item is None and allow_none:
            continue
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{op}: {name} must contain ints, got {item!r} in {value!r}")
    return tuple(None if i is None else int(i) for i in items)


def positive(values: tuple, name: str, op: str) -> tuple:
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be greater than zero, got {values}")
    return values


def non_negative(values: tuple, name: str, op: str) -> tuple:
    if any(v < 0 for v in values):
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")
    return values


def stride_or_kernel(stride, kernel: tuple, n: int, op: str) -> tuple:
    """PyTorch's default: ``stride=None`` (or an empty sequence) means ``stride = kernel_size``."""
    if stride is None or (isinstance(stride, Sequence) and len(stride) == 0):
        return kernel
    return positive(int_tuple(stride, n, "stride", op), "stride", op)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the spatial axes of a (batched) input are, and how to undo the batching.

    ``channels_last=False`` is PyTorch's ``(N, C, *spatial)``; ``True`` is ``(N, *spatial, C)``,
    the Flax/Haiku convention.  Unbatched inputs (``(C, *spatial)`` / ``(*spatial, C)``) get a
    leading batch axis of 1 that :meth:`unbatch` removes again.
    """

    n: int
    channels_last: bool
    batched: bool

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        first = 1 if self.channels_last else 2
        return tuple(range(first, first + self.n))

    @property
    def channel_axis(self) -> int:
        return self.n + 1 if self.channels_last else 1

    def batch(self, x):
        return x if self.batched else x[None]

    def unbatch(self, x):
        return x if (self.batched or x is None) else x[0]

    def spatial_shape(self, x) -> tuple[int, ...]:
        """Spatial sizes of an input given as the user passed it (batched or not)."""
        shape = self.batch_shape(x.shape)
        return tuple(shape[a] for a in self.spatial_axes)

    def batch_shape(self, shape) -> tuple[int, ...]:
        return tuple(shape) if self.batched else (1, *shape)

    def plane_strides(self, spatial: tuple[int, ...]) -> dict[int, int]:
        """Flat-index stride of each spatial axis inside one plane (row-major over spatial)."""
        strides = np.cumprod((1,) + tuple(spatial[::-1]))[:-1][::-1]
        return {a: int(s) for a, s in zip(self.spatial_axes, strides)}


def layout_of(x, n: int, op: str, channels_last: bool = False, *, empty_channels: bool = False) -> Layout:
    """Check the rank and sizes of ``x`` for an ``n``-d pooling op and describe its layout.

    The batch may be empty (N=0), as in PyTorch; spatial sizes may not.  PyTorch's adaptive
    pools also accept zero channels (``empty_channels=True``); its fixed-window pools do not.
    """
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{op}: input must be an array, got {type(x).__name__}")
    if not isinstance(channels_last, bool):
        raise TypeError(f"{op}: channels_last must be a bool, got {channels_last!r}")
    rank = len(x.shape)
    if rank not in (n + 1, n + 2):
        kind = "(N, *spatial, C) or (*spatial, C)" if channels_last else "(N, C, *spatial) or (C, *spatial)"
        raise ValueError(
            f"{op}: input must have {n + 1} (unbatched) or {n + 2} (batched) dimensions {kind}, "
            f"got shape {tuple(x.shape)}"
        )
    layout = Layout(n, channels_last, rank == n + 2)
    shape = layout.batch_shape(x.shape)
    checked = [shape[a] for a in layout.spatial_axes]
    if not empty_channels:
        checked.append(shape[layout.channel_axis])
    if any(s == 0 for s in checked):
        raise ValueError(
            f"{op}: input must have non-zero size in every non-batch dimension, got shape {tuple(x.shape)}"
        )
    return layout


def index_dtype(spatial: tuple[int, ...], op: str):
    """int64 under x64, else int32; a plane too large for int32 indices is an error, not a wrap."""
    dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    size = int(np.prod(spatial, dtype=np.int64))
    if size - 1 > jnp.iinfo(dtype).max:
        raise ValueError(
            f"{op}: an input plane of {size} elements has flat indices beyond int32; "
            "enable 64-bit mode (jax.config.update('jax_enable_x64', True)) for indices this large"
        )
    return dtype


def check_float_or_int(x, op: str):
    """Max pooling: floating and integer dtypes, as PyTorch (bool and complex are rejected)."""
    dtype = np.dtype(x.dtype)
    if not (jnp.issubdtype(dtype, jnp.floating) or jnp.issubdtype(dtype, jnp.integer)):
        raise TypeError(f"{op}: input dtype must be floating or integer, got {dtype}")


def check_float(x, op: str, *, allow_int64: bool = False):
    """Averaging ops: floating dtypes (PyTorch's CPU avg_pool also takes int64)."""
    dtype = np.dtype(x.dtype)
    if jnp.issubdtype(dtype, jnp.floating) or (allow_int64 and dtype == np.int64):
        return
    allowed = "floating (or int64)" if allow_int64 else "floating"
    raise TypeError(f"{op}: input dtype must be {allowed}, got {dtype}")
