"""The executor of fractional max pooling: windows drawn per plane, one route on every platform.

The plan (:func:`jaxpool._plan_random.fractional_max_pool`) holds, per axis, the rule of the
windows and their static sizes (:class:`jaxpool.windows.DrawnWindows`); the windows themselves
are data, one set per ``(N, C)`` plane.  Here the samples become traced start tables
(:func:`interval_starts`), each axis gathers its taps at those starts and folds them by
PyTorch's scan rule, and the values are read at the chosen flat index with one gather.  No
tactic is platform-specific, so there is no CPU variant to select.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _args, _eager, _taps
from jaxpool.windows import AxisWindows, DrawnWindows

# (exponent bits, mantissa bits) of the types whose every operation must be rounded explicitly.
_HALF_PRECISION = {"float16": (5, 10), "bfloat16": (8, 7)}


def interval_starts(samples, input_size: int, output_size: int, kernel: int, dtype) -> jax.Array:
    """PyTorch's ``generate_intervals`` for every plane at once.

    ``samples``: array of any shape holding one sample per plane (in ``dtype``).  Returns int32
    starts (int64 for an input of 2**31 cells or more, which needs x64) of shape
    ``samples.shape + (output_size,)``, computed in ``dtype`` as PyTorch does and clamped into
    ``[0, input_size - kernel]``.  float16/bfloat16 round after every operation as c10's
    ``Half``/``BFloat16`` do (``lax.reduce_precision`` after each float32 op, which XLA cannot
    fuse away).
    """
    dtype = np.dtype(dtype)
    last = input_size - kernel
    shape = tuple(samples.shape)
    int_dtype = _start_dtype(input_size)
    if output_size == 0:
        return jnp.zeros(shape + (0,), int_dtype)
    if output_size == 1:
        return jnp.full(shape + (1,), last, int_dtype)
    half = _HALF_PRECISION.get(dtype.name)
    compute = np.float64 if dtype == np.float64 else np.float32

    def rounded(v):
        return v if half is None else lax.reduce_precision(v, *half)

    # Static parts, rounded to the scalar type exactly as c10 does (numpy's float16 and
    # ml_dtypes' bfloat16 also compute in float32 and round once).
    alpha = np.asarray(last, dtype) / np.asarray(output_size - 1, dtype)
    alpha = np.asarray(alpha, dtype).astype(compute)
    i = np.arange(output_size - 1).astype(dtype).astype(compute)
    u = samples.astype(compute)[..., None]
    scaled = rounded(rounded(i + u) * alpha)
    offset = rounded(u * alpha)
    starts = scaled.astype(int_dtype) - offset.astype(int_dtype)  # C++ int(): truncation
    starts = jnp.concatenate([starts, jnp.full(shape + (1,), last, int_dtype)], axis=-1)
    return jnp.clip(starts, 0, last)


def _start_dtype(input_size: int):
    """int32 while every position along the axis fits, else int64 (int32 wraps negative)."""
    if input_size <= np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.jax_enable_x64:
        raise ValueError(f"an axis of {input_size} cells needs 64-bit positions: enable jax_enable_x64")
    return jnp.int64


def starts_of(rule: DrawnWindows, samples) -> jax.Array:
    """The starts of ``rule``'s axis for every plane of ``samples`` (``(..., ndim)``)."""
    return interval_starts(samples[..., rule.sample], rule.input_size, rule.output_size, rule.kernel,
                           jnp.dtype(rule.dtype))


def samples_of(p, given, key) -> jax.Array:
    """``(N, C, ndim)`` samples of the plan's input: the first rows of ``given`` (checked by
    the plan), or ``jax.random.uniform(key, (N, C, ndim), dtype)``."""
    batch, channels = p.input_shape[0], p.input_shape[p.layout.channel_axis]
    if given is not None:
        return jnp.asarray(given)[:batch]
    dtype = jnp.dtype(next(iter(p.tables.values())).dtype)  # the rules' dtype is the input's
    return jax.random.uniform(key, (batch, channels, p.layout.n), dtype=dtype)


def plane_windows(p, samples) -> tuple[AxisWindows, ...]:
    """One plane's windows per spatial axis, from its ``(ndim,)`` concrete samples: what the
    executor reads for that plane (``jaxpool explain``, :func:`jaxpool.windows.op_windows`)."""
    rules = [p.tables[a] for a in p.layout.spatial_axes]
    return tuple(r.table(np.asarray(starts_of(r, jnp.asarray(samples)[None]))[0]) for r in rules)


@_eager.compiled_when_eager
def max_of(p, input, samples):
    """``(values, indices)`` of the plan on ``input`` (with the input's batching) for the
    ``(N, C, ndim)`` ``samples`` (:func:`samples_of`)."""
    x = p.layout.batch(input)
    if 0 in p.output_shape:
        empty = jnp.zeros(p.output_shape, x.dtype)
        return p.layout.unbatch(empty), p.layout.unbatch(empty.astype(p.index_dtype))
    indices = _window_max(x, p, samples)[1]
    return p.layout.unbatch(_gather_plane(x, p.layout, indices)), p.layout.unbatch(indices)


def _place(table: jax.Array, layout: _args.Layout, axis: int, ndim: int) -> jax.Array:
    """Move a ``(N, C, out, ...)`` table so N, C and out sit on the batch, channel and ``axis``."""
    extra = ndim - table.ndim
    table = table.reshape(table.shape + (1,) * extra)
    return jnp.moveaxis(table, (0, 1, 2), (0, layout.channel_axis, axis))


def _window_max(x, p, samples):
    """Max of every window and its flat in-plane index, axis by axis, without gradient.

    The windows are boxes, and PyTorch's row-major scan with ``val > max || isnan(val)`` picks
    the first maximum, or the last NaN; applying the same rule per axis (innermost first) picks
    the same cell (see :mod:`jaxpool._portable`).  Each axis gathers its ``(out, kernel)`` taps at
    the traced window starts and finds the winning tap with the associative form of the rule.
    The caller reads the values at the index with one gather (:func:`_gather_plane`), whose
    gradient is a single scatter-add, as PyTorch's backward (chaining the per-axis gathers'
    transposes instead was ~10x slower on CPU).
    """
    layout, strides, index_dtype = p.layout, p.plane_strides, p.index_dtype
    values, index = lax.stop_gradient(x), None
    for axis in reversed(layout.spatial_axes):
        rule = p.tables[axis]
        starts = starts_of(rule, samples)
        kernel, out = rule.kernel, rule.output_size
        positions = starts[..., None] + jnp.arange(kernel, dtype=starts.dtype)  # (N, C, out, k)
        flat = _place(positions.reshape(starts.shape[:2] + (-1,)), layout, axis, x.ndim)
        taps = jnp.take_along_axis(values, flat, axis=axis)  # (..., out * k, ...)
        split = taps.shape[:axis] + (out, kernel) + taps.shape[axis + 1:]
        taps = taps.reshape(split)
        tap_no = lax.broadcasted_iota(jnp.int32, split, axis + 1)
        _, chosen = lax.reduce(
            (lax.stop_gradient(taps), tap_no), (_taps.lowest(taps.dtype), np.int32(kernel)),
            _taps.torch_argmax_combine, (axis + 1,),
        )
        values = jnp.squeeze(jnp.take_along_axis(taps, jnp.expand_dims(chosen, axis + 1), axis=axis + 1), axis + 1)
        if index_dtype is not None:  # input position of the chosen tap, then its flat index
            pos = _place(starts, layout, axis, x.ndim) + chosen
            index_here = pos.astype(index_dtype) * strides[axis]
            index = index_here if index is None else index_here + jnp.take_along_axis(index, pos, axis=axis)
    return values, index


def _gather_plane(x, layout: _args.Layout, index) -> jax.Array:
    """``x`` at flat in-plane ``index``; its gradient is one scatter-add to those cells, as PyTorch."""
    if layout.channels_last:
        flat_x = x.reshape(x.shape[0], -1, x.shape[-1])
        flat_i = index.reshape(index.shape[0], -1, index.shape[-1])
        return jnp.take_along_axis(flat_x, flat_i, axis=1).reshape(index.shape)
    flat_x = x.reshape(x.shape[0], x.shape[1], -1)
    flat_i = index.reshape(index.shape[0], index.shape[1], -1)
    return jnp.take_along_axis(flat_x, flat_i, axis=2).reshape(index.shape)
