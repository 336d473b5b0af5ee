"""Average pooling with PyTorch's divisor rules (count_include_pad, divisor_override)."""

from __future__ import annotations

import math

import jax
import numpy as np

from jaxpool import _args, _execute, plan


def avg_pool(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
             divisor_override=None, *, ndim: int, channels_last: bool = False):
    """Mean over each window, as ``torch.nn.functional.avg_pool{ndim}d``.

    Windows are those of max pooling without dilation, with zero padding.  The divisor of a
    window (PyTorch's ``avg_pool2d`` CPU kernel), per axis and multiplied over axes:

    * ``count_include_pad=True``: ``min(start + kernel, in + padding) - start``, so padding
      cells count but a ``ceil_mode`` window is cut where the right padding ends;
    * ``count_include_pad=False``: the number of cells inside the input;
    * ``divisor_override=d``: ``d`` for every window.

    PyTorch's 3-d kernel alone also requires input >= kernel on every axis (padding not
    counted); that rule is reproduced.  Sums accumulate in float32 for float16/bfloat16.  int64 input is accepted as by PyTorch and
    divides with truncation.
    """
    op = f"avg_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op, allow_int64=True)
    if np.dtype(input.dtype) == np.int64 and not jax.config.jax_enable_x64:
        _check_int32_sums(input, layout, kernel_size, op)
    p = plan.avg_pool(input, layout, op, kernel_size, stride, padding, ceil_mode, count_include_pad,
                      divisor_override)
    return _execute.mean_of(p, input)


def _check_int32_sums(input, layout: _args.Layout, kernel_size, op: str):
    """int64 input without x64 is summed in int32 (JAX's conversion): a concrete input whose
    window sums could leave int32 is an error, not a wraparound."""
    if not isinstance(input, (np.ndarray, np.generic)):
        return
    values = np.asarray(input)
    if values.size == 0:
        return
    kernel = _args.int_tuple(kernel_size, layout.n, "kernel_size", op)
    cells = math.prod(max(1, min(k, s)) for k, s in zip(kernel, layout.spatial_shape(input)))
    largest = max(abs(int(values.min())), abs(int(values.max())))
    if largest * cells > np.iinfo(np.int32).max:
        raise ValueError(
            f"{op}: int64 input holding {largest} with kernel_size {kernel} may sum past int32, "
            "and without 64-bit mode JAX computes int64 input in int32: enable jax_enable_x64 "
            "(jax.config.update('jax_enable_x64', True))"
        )
