"""Adaptive pooling: PyTorch's variable, overlapping windows from input and output sizes."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp
import numpy as np

from jaxpool import _args, _bind, _large, windows
from jaxpool.avg_pool import _divided_sum
from jaxpool.max_pool import _max_over


def adaptive_tables(input, layout: _args.Layout, output_size, op: str):
    """``{axis: windows.adaptive(in, out)}`` after PyTorch's checks; ``None`` keeps a size."""
    n = layout.n
    if isinstance(output_size, Sequence) and len(output_size) != n:  # torch: no 1-tuple here
        raise ValueError(f"{op}: output_size must be an int or a tuple of {n} sizes, got {output_size!r}")
    # torch's 1-d adaptive pools take ints only; 2-d/3-d accept None ("keep this size")
    sizes = _args.int_tuple(output_size, n, "output_size", op, allow_none=n > 1)
    spatial = layout.spatial_shape(input)
    sizes = tuple(i if o is None else o for i, o in zip(spatial, sizes))
    if any(o < 0 for o in sizes):
        raise ValueError(f"{op}: output_size must be non-negative, got {sizes}")
    for o in sizes:  # before any table exists (docs/rules.md, "Table budget")
        windows.check_window_budget(op, "output_size", o)
    return {a: windows.adaptive(i, o) for a, i, o in zip(layout.spatial_axes, spatial, sizes)}


def _allows_empty_channels(input, ndim: int, average: bool) -> bool:
    """PyTorch's emptiness rule for adaptive pools: an unbatched input may have zero channels
    (only its spatial dims are checked); a batched one only for adaptive_avg_pool1d/2d, whose
    CPU kernel checks just the spatial dims (adaptive_max and adaptive_avg_pool3d check C too)."""
    return len(getattr(input, "shape", ())) == ndim + 1 or (average and ndim < 3)


def _output_shape(input, layout, tables) -> tuple:
    """Batched output shape (the zeros of an empty output are made only when it is empty)."""
    shape = list(layout.batch_shape(input.shape))
    for axis, w in tables.items():
        shape[axis] = w.output_size
    return tuple(shape)


def adaptive_avg_pool(input, output_size, *, ndim: int, channels_last: bool = False):
    """Mean over PyTorch's adaptive windows, as ``torch.nn.functional.adaptive_avg_pool{ndim}d``.

    Output ``i`` of an axis of input size ``in`` and output size ``out`` averages input cells
    ``floor(i*in/out)`` up to (excluding) ``ceil((i+1)*in/out)``; see
    :func:`jaxpool.windows.adaptive`.  ``output_size`` is an int or a tuple whose ``None``
    entries keep the input size; it may exceed the input (windows then repeat cells).
    """
    ndim = _args.check_ndim(ndim, "adaptive_avg_pool")  # before _allows_empty_channels uses it
    op = f"adaptive_avg_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last,
                             empty_channels=_allows_empty_channels(input, ndim, average=True))
    tables = adaptive_tables(input, layout, output_size, op)
    shape = _output_shape(input, layout, tables)
    empty = math.prod(shape) == 0
    global_mean = all(w.output_size == 1 for w in tables.values())
    if empty and ndim < 3 and not global_mean:
        # torch's 1-d/2-d kernel returns before checking the dtype; an output of all ones is
        # computed by ``input.mean()`` instead, which checks it first
        return layout.unbatch(jnp.zeros(shape, input.dtype))
    _args.check_float(input, op)
    if empty:
        return layout.unbatch(jnp.zeros(shape, input.dtype))
    ndim_batched = len(layout.batch_shape(input.shape))
    divisor = np.ones((), np.int64)
    for axis, w in tables.items():  # O(1) or O(out) constants, or counts computed on the device
        divisor = divisor * _large.inside_counts_along(w, axis, ndim_batched)
    return layout.unbatch(_divided_sum(layout.batch(input), tables, divisor))


def adaptive_max_pool(input, output_size, return_indices=False, *, ndim: int,
                      channels_last: bool = False):
    """Max over PyTorch's adaptive windows, as ``torch.nn.functional.adaptive_max_pool{ndim}d``.

    Windows as in :func:`adaptive_avg_pool`; indices, ties and NaN as in
    :func:`jaxpool.max_pool` (flat in-plane offsets, first maximum, last NaN).
    """
    ndim = _args.check_ndim(ndim, "adaptive_max_pool")  # before _allows_empty_channels uses it
    op = f"adaptive_max_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last,
                             empty_channels=_allows_empty_channels(input, ndim, average=False))
    _args.check_float(input, op)
    if not isinstance(return_indices, bool):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    tables = adaptive_tables(input, layout, output_size, op)
    shape = _output_shape(input, layout, tables)
    if math.prod(shape) == 0:
        empty = layout.unbatch(jnp.zeros(shape, input.dtype))
        if return_indices:
            return empty, empty.astype(_args.index_dtype((1,), op))
        return empty
    return _max_over(input, layout, tables, return_indices, op)


def _make_avg(n):
    def wrapper(input, output_size, *, channels_last=False):
        return adaptive_avg_pool(input, output_size, ndim=n, channels_last=channels_last)
    return wrapper


def _make_max(n):
    def wrapper(input, output_size, return_indices=False, *, channels_last=False):
        return adaptive_max_pool(input, output_size, return_indices, ndim=n, channels_last=channels_last)
    return wrapper


adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d = _bind.per_dimension(
    _make_avg, adaptive_avg_pool, "adaptive_avg_pool")
adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d = _bind.per_dimension(
    _make_max, adaptive_max_pool, "adaptive_max_pool")
