"""Adaptive pooling: PyTorch's variable, overlapping windows from input and output sizes."""

from __future__ import annotations

import math

import jax.numpy as jnp

from jaxpool import _args, _execute, plan


def _allows_empty_channels(input, ndim: int, average: bool) -> bool:
    """PyTorch's emptiness rule for adaptive pools: an unbatched input may have zero channels
    (only its spatial dims are checked); a batched one only for adaptive_avg_pool1d/2d, whose
    CPU kernel checks just the spatial dims (adaptive_max and adaptive_avg_pool3d check C too)."""
    return len(getattr(input, "shape", ())) == ndim + 1 or (average and ndim < 3)


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
    p = plan.adaptive_pool(input, layout, op, output_size, "sum")
    shape = p.output_shape
    empty = math.prod(shape) == 0
    global_mean = all(w.output_size == 1 for w in p.tables.values())
    if empty and ndim < 3 and not global_mean:
        # torch's 1-d/2-d kernel returns before checking the dtype; an output of all ones is
        # computed by ``input.mean()`` instead, which checks it first
        return layout.unbatch(jnp.zeros(shape, input.dtype))
    _args.check_float(input, op)
    if empty:
        return layout.unbatch(jnp.zeros(shape, input.dtype))
    return _execute.mean_of(p, input)


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
    p = plan.adaptive_pool(input, layout, op, output_size, "max", return_indices)
    if math.prod(p.output_shape) == 0:
        empty = layout.unbatch(jnp.zeros(p.output_shape, input.dtype))
        if return_indices:
            return empty, empty.astype(_args.index_dtype((1,), op))
        return empty
    return _execute.max_of(p, input)
