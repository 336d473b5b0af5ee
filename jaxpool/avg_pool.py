"""Average pooling with PyTorch's divisor rules (count_include_pad, divisor_override)."""

from __future__ import annotations

import numbers

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _args, _bind, _engine
from jaxpool._fixed import fixed_tables


def accumulation_dtype(dtype):
    """PyTorch CPU accumulates float16/bfloat16 in float32 (``opmath_type``)."""
    return jnp.float32 if np.dtype(dtype).itemsize < 4 and jnp.issubdtype(dtype, jnp.floating) else dtype


def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None, *, ndim: int, channels_last: bool = False):
    """Mean over each window, as ``torch.nn.functional.avg_pool{ndim}d``.

    Windows are those of max pooling without dilation, with zero padding.  The divisor of a
    window (PyTorch's ``avg_pool2d`` CPU kernel), per axis and multiplied over axes:

    * ``count_include_pad=True``: ``min(start + kernel, in + padding) - start``, so padding
      cells count but a ``ceil_mode`` window is cut where the right padding ends;
    * ``count_include_pad=False``: the number of cells inside the input;
    * ``divisor_override=d``: ``d`` for every window.

    Sums accumulate in float32 for float16/bfloat16.  int64 input is accepted as by PyTorch and
    divides with truncation.
    """
    op = f"avg_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op, allow_int64=True)
    tables = fixed_tables(input, layout, op, kernel_size, stride, padding, 1, ceil_mode)
    if ndim == 3:  # torch's avg_pool3d (pool3d_shape_check, check_input_size): padding not counted
        spatial = layout.spatial_shape(input)
        kernel = _args.int_tuple(kernel_size, 3, "kernel_size", op)
        if any(i < k for i, k in zip(spatial, kernel)):
            raise ValueError(f"{op}: input size {spatial} is smaller than kernel_size {kernel} "
                             "(avg_pool3d requires every input size >= kernel size, padding aside)")
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
            raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
        divisor = np.asarray(int(divisor_override))
    else:
        divisor = window_divisor(tables, input.ndim + (not layout.batched), count_include_pad)
    return layout.unbatch(_divided_sum(layout.batch(input), tables, divisor))


def window_divisor(tables, ndim: int, count_include_pad: bool) -> np.ndarray:
    """Broadcastable product over axes of each window's per-axis cell count."""
    divisor = np.ones((), np.int64)
    for axis, w in tables.items():
        counts = w.padded_counts if count_include_pad else w.inside_counts
        divisor = divisor * _engine.along(counts, axis, ndim)
    return divisor


def _divided_sum(x, tables, divisor: np.ndarray):
    acc = accumulation_dtype(x.dtype)
    total = _engine.window_sum(x.astype(acc), tables)
    if jnp.issubdtype(acc, jnp.integer):
        return lax.div(total, jnp.asarray(divisor, acc))  # C++ integer division truncates
    return (total / jnp.asarray(divisor, acc)).astype(x.dtype)


def _make(n):
    if n == 1:  # torch's avg_pool1d has no divisor_override
        def wrapper(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                    count_include_pad=True, *, channels_last=False):
            return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            ndim=1, channels_last=channels_last)
        return wrapper

    def wrapper(input, kernel_size, stride=None, padding=0, ceil_mode=False,
                count_include_pad=True, divisor_override=None, *, channels_last=False):
        return avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad,
                        divisor_override, ndim=n, channels_last=channels_last)
    return wrapper


avg_pool1d, avg_pool2d, avg_pool3d = _bind.per_dimension(_make, avg_pool, "avg_pool")
