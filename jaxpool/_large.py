"""Axes whose tap tables would be large: reduced with O(outputs + in-bounds taps) work, no table.

Huge kernels, global windows over long axes, adaptive windows by the million.  Regular windows
are one ``lax.reduce_window`` (one ``lax.reduce`` for a single window); irregular ones gather
``(out, taps)`` cells whose positions are computed on the device from O(min(in, out))
constants (a large constant costs XLA seconds to compile).  Max reduces ``(value, position)``
pairs with PyTorch's rule and routes its derivative through the chosen cell.  Used by both
routes (:mod:`jaxpool._portable`, :mod:`jaxpool._cpu_sum`, :mod:`jaxpool._cpu_max`).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _taps
from jaxpool.windows import AxisWindows


# Axes whose window tables would be large are reduced without them (:func:`sum_large`,
# :func:`max_large`): windows of more than _taps.MAX_UNROLLED_TAPS taps whose ``(out, taps)`` table
# would exceed MAX_WINDOWED_ENTRIES entries, and irregular windows (adaptive ``in % out != 0``)
# more numerous than MAX_STATIC_WINDOWS, whose per-tap static takes loop over every window.
MAX_WINDOWED_ENTRIES = 2**20


MAX_STATIC_WINDOWS = 2**16


def is_large(w: AxisWindows) -> bool:
    """Whether the axis is reduced without tap tables (:func:`sum_large`, :func:`max_large`)."""
    if w.max_length > _taps.MAX_UNROLLED_TAPS and w.output_size * w.max_length > MAX_WINDOWED_ENTRIES:
        return True
    return w.output_size > MAX_STATIC_WINDOWS and not _taps.is_regular(w)


def _cell_dtype(w: AxisWindows):
    return np.int32 if w.input_size < 2**31 else np.int64


def reduce_window_config(w: AxisWindows, x: jax.Array, axis: int):
    """``(x', dims, strides, padding, dilation)`` of a ``lax.reduce_window`` over ``x'`` (``x``
    sliced where the first window starts inside the input) whose output is at least the
    regular windows of ``w`` along ``axis``, in order (cut it to ``w.output_size``)."""
    first = int(w.starts[0])
    if first > 0:
        x = lax.slice_in_dim(x, first, x.shape[axis], 1, axis)
    lo = max(0, -first)
    step = w.uniform_stride() or 1
    reach = max(first, 0) + lo + (w.output_size - 1) * step + (w.max_length - 1) * w.dilation + 1
    hi = max(0, reach - (x.shape[axis] + lo))
    dims, strides, padding, dilation = [1] * x.ndim, [1] * x.ndim, [(0, 0)] * x.ndim, [1] * x.ndim
    dims[axis], strides[axis], padding[axis], dilation[axis] = w.max_length, step, (lo, hi), w.dilation
    return x, tuple(dims), tuple(strides), tuple(padding), tuple(dilation)


def whole_axis(w: AxisWindows) -> bool:
    """One window reading every cell of the axis (a global window): one plain reduction."""
    return w.output_size == 1 and w.dilation == 1 and int(w.inside_counts[0]) == w.input_size


def sum_large(x: jax.Array, w: AxisWindows, axis: int) -> jax.Array:
    """Window sums of a large axis (padding adds zero); differentiated by JAX's own rules."""
    if whole_axis(w):
        return jnp.sum(x, axis=axis, keepdims=True, dtype=x.dtype)
    if w.uniform_stride() is not None:
        xs, dims, strides, padding, dilation = reduce_window_config(w, x, axis)
        total = lax.reduce_window(xs, np.zeros((), x.dtype), lax.add, dims, strides, padding,
                                  window_dilation=dilation)
        return lax.slice_in_dim(total, 0, w.output_size, 1, axis)
    xw, _, tap_no, lengths = _irregular_windowed(x, w, axis)
    inside = tap_no < lengths
    return jnp.sum(jnp.where(inside, xw, jnp.zeros((), x.dtype)), axis=axis + 1, dtype=x.dtype)


def max_large(x, index, w: AxisWindows, axis: int, stride, index_dtype):
    """Max (PyTorch's first maximum, last NaN) and index over a large axis; the derivative is
    routed to the chosen cell (the executor records the choice, :mod:`jaxpool._choices`)."""
    best, cell = _fold_large(lax.stop_gradient(x), w, axis)
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _choices.route_to_chosen(x, best, cell, functools.partial(_at_cell, axis=axis))
    if stride is None:
        return best, None
    offset = cell.astype(index_dtype) * np.asarray(stride, index_dtype)
    if index is not None:
        offset = offset + _at_cell(index, cell, axis)
    return best, offset


def _fold_large(xs, w: AxisWindows, axis: int):
    """``(max, chosen cell)`` of every window of a large axis by PyTorch's rule."""
    dtype = _cell_dtype(w)
    low = _taps.lowest(xs.dtype)
    if whole_axis(w) or w.uniform_stride() is not None:
        cells = lax.broadcasted_iota(dtype, xs.shape, axis)
        if whole_axis(w):
            best, cell = lax.reduce((xs, cells), (low, dtype(np.iinfo(dtype).max)),
                                    _taps.torch_argmax_combine, (axis,))
            best, cell = jnp.expand_dims(best, axis), jnp.expand_dims(cell, axis)
        else:
            xs, dims, strides, padding, dilation = reduce_window_config(w, xs, axis)
            first = max(int(w.starts[0]), 0)
            cells = lax.slice_in_dim(cells, first, cells.shape[axis], 1, axis)
            # padding holds (lowest, largest position): it loses every comparison to an
            # in-bounds cell, even one of the lowest value (ties go to the earlier position)
            best, cell = lax.reduce_window((xs, cells), (low, dtype(np.iinfo(dtype).max)),
                                           _taps.torch_argmax_combine, dims, strides, padding,
                                           window_dilation=dilation)
            best = lax.slice_in_dim(best, 0, w.output_size, 1, axis)
            cell = lax.slice_in_dim(cell, 0, w.output_size, 1, axis)
    else:
        xw, cells, _, _ = _irregular_windowed(xs, w, axis)
        best, cell = lax.reduce((xw, jnp.broadcast_to(cells.astype(dtype), xw.shape)), (low, dtype(np.iinfo(dtype).max)),
                                _taps.torch_argmax_combine, (axis + 1,))
    return best, cell


def _at_cell(t, cell, axis):
    """Linear in ``t``: ``t`` at every window's chosen ``cell`` along ``axis``."""
    return jnp.take_along_axis(t, cell.astype(np.int32) if t.shape[axis] < 2**31 else cell, axis=axis,
                               mode="clip")


def _irregular_windowed(x, w: AxisWindows, axis: int):
    """``(xw, cells, tap_no, lengths)``: ``x`` gathered into ``(out, taps)`` axes at ``axis``,
    ``axis + 1``, with each tap's cell, tap number and window length (broadcastable to ``xw``).
    A window's missing taps repeat its last cell (adaptive windows, the only irregular ones,
    lie inside the input), so no position is out of range and a max is unchanged by them."""
    starts, lasts = _window_bounds(w)
    tap_no = lax.broadcasted_iota(np.int32, (w.output_size, w.max_length), 1)
    positions = jnp.minimum(starts[:, None] + tap_no, lasts[:, None])
    xw = jnp.take(x, positions.reshape(-1), axis=axis, mode="clip")
    xw = xw.reshape(x.shape[:axis] + (w.output_size, w.max_length) + x.shape[axis + 1:])
    shape = [1] * axis + [w.output_size, w.max_length] + [1] * (x.ndim - axis - 1)
    lengths = (lasts - starts + 1)[:, None]
    return (xw, positions.reshape(shape), tap_no.reshape(shape),
            lengths.reshape(shape[:axis + 1] + [1] + shape[axis + 2:]))


def _window_bounds(w: AxisWindows):
    """``(starts, last cells)`` of the windows as int32 device arrays, from O(min(in, out))
    constants (:func:`_device_ramp`): both are non-decreasing for adaptive windows."""
    starts = np.asarray(w.starts, np.int64)
    lasts = starts + np.asarray(w.lengths, np.int64) - 1
    return _device_ramp(starts, w.input_size), _device_ramp(lasts, w.input_size)


def _device_ramp(values: np.ndarray, size: int) -> jax.Array:
    """The non-decreasing ``values`` (in ``[0, size)``) as an int32 device array, built by a
    cumulative sum of increments scattered at the outputs where the value changes: the
    constants are one entry per distinct value, where the array itself as a constant would be
    one per output (a constant of 10**7 entries costs XLA:CPU seconds to compile).  The
    barrier keeps XLA from folding the whole computation back into one constant."""
    out = values.shape[0]
    if out and (np.any(np.diff(values) < 0) or values[0] < 0 or values[-1] >= size):
        return jnp.asarray(values.astype(np.int32))  # not a ramp: a constant (never for adaptive)
    change = np.flatnonzero(np.diff(values, prepend=0) != 0)
    increments = np.diff(values[change], prepend=0).astype(np.int32)
    marks = lax.optimization_barrier(jnp.zeros(out, np.int32))
    marks = marks.at[change].add(increments, mode="promise_in_bounds", indices_are_sorted=True,
                                 unique_indices=True)
    return jnp.cumsum(marks, dtype=np.int32)


def inside_counts_along(w: AxisWindows, axis: int, ndim: int):
    """Each window's number of in-bounds cells, broadcastable along ``axis`` of an ``ndim``
    array: one number when all windows agree, computed on the device for many irregular
    windows (:func:`_window_bounds`), else the table itself (a constant of ``out`` entries)."""
    counts = w.inside_counts
    if w.output_size and np.all(counts == counts[0]):
        return np.reshape(counts[:1], (1,) * ndim)
    if is_large(w.trimmed()) and not _taps.is_regular(w):
        return _device_counts(w, axis, ndim)
    return _taps.along(counts, axis, ndim)


def _device_counts(w: AxisWindows, axis: int, ndim: int):
    starts, lasts = _window_bounds(w)
    return (lasts - starts + 1).reshape([1] * axis + [w.output_size] + [1] * (ndim - axis - 1))
