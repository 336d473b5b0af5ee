"""Window sums, XLA:CPU tactics (the route ``lax.platform_dependent`` takes on CPU).

Each beats the portable tap sum / ``reduce_window`` on XLA:CPU (figures in docs/performance.md):

* tiling windows (``kernel == stride``) as one strided slice per tap: XLA:CPU reduces a
  reshape's small minor axes with a scalar loop (item 4);
* global windows as a matrix-vector product with ones (item 4);
* irregular adaptive windows differentiated as products with the 0/1 window matrix: XLA:CPU's
  matrix kernels beat its scatter-adds (item 7);
* stride-1 windows padded along the minor axis read one padded copy: tap by tap, XLA:CPU
  writes every padded tap out (item 11);
* strided windows differentiated per stride phase: a strided slice's transpose is an interior
  pad that XLA:CPU evaluates per tap (item 10).
"""

from __future__ import annotations

import functools
import itertools
import math
import operator

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _cpu_barriers, _large, _portable, _taps
from jaxpool.windows import AxisWindows


def window_sum(x: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """Sum of the in-bounds cells of every window (padding counts as zero), as computed fastest.

    Axes whose windows tile the input are summed together (:func:`_sum_tiled`); the other axes
    tap by tap, one axis at a time, the values of stride-1 padded ones from one padded copy of
    the input (:func:`padded_once`); where irregular axes are summed by a matrix product in the
    derivative (:func:`_dot_is_cheaper`), the values are written once
    (:func:`_cpu_barriers.stored`) so the forward fold is not redone inside the gradient.

    The tables are :meth:`~jaxpool.windows.AxisWindows.trimmed` first (taps out of bounds in
    every window add nothing), and large axes are summed without tap tables first
    (:func:`_large.sum_large`).  The derivative is :func:`window_sum_tangent`.
    """
    tables, x = _sum_large_axes(x, tables)
    if not tables:
        return x
    tiled, dotted, padded = _forms(tables, x)
    if dotted:
        return _cpu_barriers.stored(_window_sum(x, tables, tiled, {}, derivative=False))
    return _window_sum(*padded_input(x, tables, padded), tiled, {}, derivative=False)


def window_sum_tangent(t: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """:func:`window_sum` of ``t`` (the sum is linear), written so that its transpose, the
    gradient, is XLA:CPU's fastest: irregular axes as products with the 0/1 window matrix
    (:func:`_dot_axis`), tiling axes as a reshape-reduce (its transpose a broadcast), strided
    axes per stride phase (:func:`_taps.sum_phase_taps`).  Where the values take a matrix
    product or a padded copy, the other axes keep their value forms (as measured)."""
    tables, t = _sum_large_axes(t, tables)
    if not tables:
        return t
    tiled, dotted, padded = _forms(tables, t)
    return _window_sum(t, tables, tiled, dotted, derivative=not (dotted or padded))


def _sum_large_axes(x, tables):
    """``(the other axes' trimmed tables, x summed over its large axes)``."""
    tables = {a: w.trimmed() for a, w in tables.items()}
    for axis, w in sorted(tables.items(), reverse=True):
        if _large.is_large(w):
            x = _large.sum_large(x, w, axis)
    return {a: w for a, w in tables.items() if not _large.is_large(w)}, x


def _forms(tables, x):
    """``(tiled, dotted, padded)``: the tiling axes' ``(first, stop)``, the axes whose
    derivative is a matrix product (floating point only) and the stride-1 padded axes read
    from one padded copy (:func:`padded_once`)."""
    tiled = {a: t for a, w in tables.items() if (t := _taps.tiling_range(w)) is not None}
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    dotted = {a: w for a, w in tables.items() if floating and a not in tiled and _dot_is_cheaper(w)}
    return tiled, dotted, padded_once(tables, tiled, x.ndim)


def padded_once(tables: dict[int, AxisWindows], tiled, ndim: int) -> list[int]:
    """The stride-1 padded axes whose values are summed from one padded copy of the input
    (:func:`padded_input`): when the minor (last) axis is one of them and another axis is
    summed tap by tap after it.  The minor axis' taps, slices padded back to full length,
    feed every tap of the next axis, so XLA:CPU writes each of them out and checks the pad's
    bounds per element.  A 1-d sum, or padding on the major axes only, is faster tap by tap;
    a strided axis keeps its stride-phase derivative (:func:`_sum_axis`).  Where this is
    not empty, a small max fold reads a padded copy too (:func:`_cpu_max_direct._fold_padded`).
    """
    tapwise = [a for a in tables if a not in tiled]
    axes = [a for a in tapwise
            if _taps.is_regular(tables[a]) and _taps.window_step(tables[a]) == 1 and has_padding(tables[a])]
    return axes if ndim - 1 in axes and len(tapwise) > 1 else []


def has_padding(w: AxisWindows) -> bool:
    """Whether some tap of the axis lies in its padding (or past the input's end)."""
    return w.output_size > 0 and any(_taps.pad_widths(w))


def padded_input(x, tables: dict[int, AxisWindows], axes, fill=0):
    """``x`` padded once with ``fill`` along ``axes`` and the tables of the padded input.

    The values of the sums chosen by :func:`padded_once` read their taps as plain slices of
    this copy (docs/performance.md, item 11; the copy is one more input-sized temporary).  The derivative stays
    tap by tap (:func:`window_sum`): differentiating the copy made no gradient faster.
    """
    if not axes:
        return x, tables
    config = [(0, 0, 0)] * x.ndim
    shifted = dict(tables)
    for axis in axes:
        w = tables[axis]
        lo, hi = _taps.pad_widths(w)
        config[axis] = (lo, hi, 0)
        shifted[axis] = AxisWindows(w.input_size + lo + hi, w.starts + lo, w.lengths, w.dilation)
    return lax.pad(x, np.asarray(fill, x.dtype), config), shifted


def _window_sum(x, tables, tiled, dotted, derivative: bool):
    """Window sums over every axis: the value forms, or (``derivative``) the derivative forms."""
    if tiled:
        x = _sum_tiled(x, tables, tiled, derivative)
    for axis, w in sorted(tables.items(), reverse=True):
        if axis in dotted:
            x = _dot_axis(x, w, axis)
        elif axis not in tiled:
            x = _sum_axis(x, w, axis, derivative)
    return x


def _dot_is_cheaper(w: AxisWindows) -> bool:
    """Irregular windows whose 0/1 membership matrix is small enough to multiply by.

    A product costs ``in * out`` multiply-adds per row against about ``in + out`` reads for the
    taps; XLA:CPU's matrix kernels beat its gathers by far more than the ratio allowed here.
    """
    if w.output_size == 0 or _taps.is_regular(w):
        return False
    return w.input_size * w.output_size <= 32 * (w.input_size + w.output_size)


@functools.lru_cache(maxsize=256)
def membership(w: AxisWindows) -> np.ndarray:
    """``(in, out)`` 0/1 matrix: 1 where input cell ``i`` lies in window ``o`` (valid taps)."""
    matrix = np.zeros((w.input_size, w.output_size), np.float32)
    rows = np.broadcast_to(np.arange(w.output_size)[:, None], w.positions.shape)
    matrix[w.positions[w.valid], rows[w.valid]] = 1
    matrix.setflags(write=False)
    return matrix


def _dot_axis(x: jax.Array, w: AxisWindows, axis: int) -> jax.Array:
    """Window sums along ``axis`` as ``x @ membership``, the derivative of irregular axes.

    Its transpose (the gradient) is a product too: XLA:CPU's matrix kernels, where the
    transpose of a gathered tap is a scatter-add and that of slice pieces a sum of pads, both
    several times slower.  ``0 * inf`` is NaN, so a non-finite *tangent or cotangent* entry
    spreads NaN over its plane's derivative where PyTorch keeps it to the window's cells;
    finite ones give PyTorch's gradient.  The values are summed tap by tap (exact for inf and
    NaN, as PyTorch sums)."""
    matrix = jnp.asarray(membership(w), x.dtype)
    y = lax.dot_general(x, matrix, (((axis,), (0,)), ((), ())), precision=lax.Precision.HIGHEST)
    return jnp.moveaxis(y, -1, axis)


def _sum_tiled(x, tables, tiled, derivative: bool):
    """Window sums over the axes whose windows tile the input (``(first, stop)`` per axis).

    The derivative (so the gradient, a broadcast) is always a reshape-reduce of tiles; the
    values are computed the way XLA:CPU does fastest (docs/performance.md, item 4):

    * at most ``_taps.MAX_UNROLLED_TAPS`` N-d taps: a sum of strided slices, one per tap in
      PyTorch's row-major order.  XLA:CPU reduces a reshape's size-2..4 minor axes by a
      scalar loop, several times slower than the slices (whose own transpose, a sum of
      interior pads, is slower than the reshape's broadcast);
    * one window over every trailing axis (global pooling), floating point: a matrix-vector
      product with ones, 25-30% faster than the row reduction for (64, 2048, 7, 7);
    * otherwise the reshape-reduce.
    """
    for axis, (first, stop) in tiled.items():
        x = lax.slice_in_dim(x, first, stop, 1, axis)
    axes = sorted(tiled)
    if derivative:
        return _reshape_sum(x, tables, tiled)
    if math.prod(tables[a].max_length for a in axes) <= _taps.MAX_UNROLLED_TAPS:
        return _sum_tile_slices(x, tables, axes)
    if (axes == list(range(x.ndim - len(axes), x.ndim)) and jnp.issubdtype(x.dtype, jnp.floating)
            and all(tables[a].output_size == 1 for a in axes)):
        return _sum_trailing_by_dot(x, len(axes))
    return _reshape_sum(x, tables, tiled)


def _sum_tile_slices(x, tables, axes):
    total = None
    for offsets in itertools.product(*(range(tables[a].max_length) for a in axes)):
        tap = x
        for axis, offset in zip(axes, offsets):
            tap = lax.slice_in_dim(tap, offset, x.shape[axis], tables[axis].max_length, axis)
        total = tap if total is None else lax.add(total, tap)
    return total


def _sum_trailing_by_dot(x, axes):
    kept, window = x.shape[: x.ndim - axes], x.shape[x.ndim - axes :]
    rows = x.reshape(math.prod(kept), math.prod(window))
    ones = jnp.ones((math.prod(window), 1), x.dtype)
    total = jnp.dot(rows, ones, precision=lax.Precision.HIGHEST)
    return total.reshape(kept + (1,) * axes)


def _reshape_sum(x, tables, tiled):
    """Sum of tiles as one reduce over the tap axes of ``x`` reshaped to ``(..., out, taps, ...)``."""
    shape, reduced = [], []
    for axis in range(x.ndim):
        if axis in tiled:
            shape += [tables[axis].output_size, tables[axis].max_length]
            reduced.append(len(shape) - 1)
        else:
            shape.append(x.shape[axis])
    return jnp.sum(x.reshape(shape), axis=tuple(reduced), dtype=x.dtype)


def _sum_axis(x: jax.Array, w: AxisWindows, axis: int, derivative: bool) -> jax.Array:
    """Window sums of one axis, tap by tap: the value form, or (``derivative``) the form
    whose transpose is fastest.

    Both build taps from slices where they can, so the gradient is a sum of pads instead of a
    gather's scatter-add.  The derivative of strided regular windows takes its taps from
    stride phases (:func:`_taps.sum_phase_taps`): a strided slice transposes to an interior pad
    that XLA writes out per tap (item 10).  The values take irregular taps as slice pieces
    along the minor (last) axis, where XLA:CPU writes a gather index-major and transposes it
    back (item 7), and gather them along the other axes, where slice pieces would be
    recomputed per tap.
    """
    if _taps.is_regular(w):
        if _is_blocked(w):
            return _blocked_sum(x, w, axis, derivative)
        if derivative and _taps.window_step(w) != 1:
            return _taps.sum_phase_taps(x, w, axis)
        return _portable.sum_taps(x, w, axis, pieces=True)  # every tap one (strided) slice
    return _portable.sum_taps(x, w, axis, pieces=derivative or axis == x.ndim - 1)


def _is_blocked(w: AxisWindows) -> bool:
    """Whether the axis is summed by :func:`_blocked_sum`: regular windows of more than
    ``_taps.MAX_UNROLLED_TAPS`` taps, dilation 1, each its ``max_length`` cells from its start
    (zero outside the input: a shorter window stops at the input's end)."""
    if w.max_length <= _taps.MAX_UNROLLED_TAPS or w.dilation != 1 or not _taps.is_regular(w):
        return False
    ends = w.starts.astype(np.int64) + w.lengths.astype(np.int64)
    return bool(np.all((w.lengths == w.max_length) | (ends >= w.input_size)))


def _blocked_sum(x: jax.Array, w: AxisWindows, axis: int, derivative: bool) -> jax.Array:
    """Window sums of a long regular axis (``k`` taps, stride ``s``) in O(in + out * k / s).

    Cut the cells from the first window's start into blocks of ``s``: window ``o`` is blocks
    ``o .. o + m - 2`` whole (``m = ceil(k / s)``) and the first ``k - (m - 1) * s`` cells of
    block ``o + m - 1``.  So the blocks are summed once and ``m - 1`` of them per window by a
    stride-1 ``lax.reduce_window``; each window still adds exactly its own cells (inf and NaN
    as PyTorch's loop), in another order.  The values sum a block's cells as ``s`` strided
    slices and the derivative as a reshape-reduce (whose transpose is a broadcast), as
    :func:`_sum_tiled` does.  Tap by tap, a window sum costs ``out * k`` reads and its
    gradient a gather's scatter-add (docs/performance.md, "The cotangent of jax.grad(sum)
    and long windows").
    """
    step, k, out = _taps.window_step(w), w.max_length, w.output_size
    whole = -(-k // step) - 1  # whole blocks per window
    blocks = out + whole
    first = int(w.starts[0])
    begin, stop = min(max(first, 0), x.shape[axis]), min(max(first + blocks * step, 0), x.shape[axis])
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (begin - first, first + blocks * step - stop, 0)
    cells = lax.pad(lax.slice_in_dim(x, begin, stop, 1, axis), np.zeros((), x.dtype), config)

    def block_sums(offset, count, width):  # sums of cells [offset, offset + width) of `count` blocks
        if derivative or width > _taps.MAX_UNROLLED_TAPS:
            part = lax.slice_in_dim(cells, offset * step, (offset + count) * step, 1, axis)
            part = part.reshape(x.shape[:axis] + (count, step) + x.shape[axis + 1 :])
            return jnp.sum(lax.slice_in_dim(part, 0, width, 1, axis + 1), axis=axis + 1, dtype=x.dtype)
        taps = (lax.slice_in_dim(cells, offset * step + r, (offset + count) * step, step, axis) for r in range(width))
        return functools.reduce(operator.add, taps)

    total = block_sums(whole, out, k - whole * step)
    if whole:
        dims = tuple(whole if a == axis else 1 for a in range(x.ndim))
        runs = lax.reduce_window(block_sums(0, blocks - 1, step), np.zeros((), x.dtype), lax.add, dims, (1,) * x.ndim, "VALID")
        total = total + runs
    return total


def route(tables: dict[int, AxisWindows], ndim: int, floating: bool) -> str:
    """What :func:`window_sum` does with ``tables``, in words (one phrase per tactic used)."""
    tables = {a: w.trimmed() for a, w in tables.items()}
    parts = [f"axis {a}: table-free reduction (large axis)" for a, w in tables.items() if _large.is_large(w)]
    tables = {a: w for a, w in tables.items() if not _large.is_large(w)}
    tiled = {a: t for a, w in tables.items() if (t := _taps.tiling_range(w)) is not None}
    dotted = [a for a, w in tables.items() if a not in tiled and _dot_is_cheaper(w)]
    if tiled:
        parts.append(f"axes {sorted(tiled)}: tiling windows summed as strided slices or a reshape")
    if floating and dotted:
        parts.append(f"axes {dotted}: irregular, derivative as products with the 0/1 window matrix")
    if padded_once(tables, tiled, ndim):
        parts.append("stride-1 padded axes read from one padded copy")
    blocked = [a for a, w in tables.items() if a not in tiled and _is_blocked(w)]
    if blocked:
        parts.append(f"axes {sorted(blocked)}: long windows, blocks of the stride summed once, "
                     "then each window's blocks by a stride-1 window sum")
    rest = [a for a in tables if a not in tiled and a not in blocked]
    if rest:
        parts.append(f"axes {sorted(rest)}: tap by tap (strided slices, stride-phase derivative)")
    return "; ".join(parts)
