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

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _cpu_barriers, _large, _portable, _taps
from jaxpool.windows import AxisWindows


def window_sum(x: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """Sum of the in-bounds cells of every window (padding counts as zero).

    Axes whose windows tile the input are summed together (:func:`_sum_tiled`); axes with
    irregular windows (adaptive ``in % out != 0``) by a matrix product where that is cheap
    (:func:`_summed_by_dots`); the other axes tap by tap, one axis at a time, the values of
    stride-1 padded ones from one padded copy of the input (:func:`padded_once`).

    The tables are :meth:`~jaxpool.windows.AxisWindows.trimmed` first (taps out of bounds in
    every window add nothing), and large axes are summed without tap tables first
    (:func:`_large.sum_large`).
    """
    tables = {a: w.trimmed() for a, w in tables.items()}
    large = {a: w for a, w in tables.items() if _large.is_large(w)}
    for axis, w in sorted(large.items(), reverse=True):
        x = _large.sum_large(x, w, axis)
    tables = {a: w for a, w in tables.items() if a not in large}
    if not tables:
        return _taps.from_zero(x) if jnp.issubdtype(x.dtype, jnp.floating) else x
    tiled = {a: t for a, w in tables.items() if (t := _taps.tiling_range(w)) is not None}
    dotted = {a: w for a, w in tables.items() if a not in tiled and _dot_is_cheaper(w)}
    padded = padded_once(tables, tiled, x.ndim)

    def values(x):
        return _window_sum(*padded_input(x, tables, padded), tiled, {})

    if not jnp.issubdtype(x.dtype, jnp.floating):
        return values(x)
    if dotted:
        total = _summed_by_dots(x, tables, tiled, dotted)
    elif padded:
        total = _taps.linear_as(values, tangent=lambda t: _window_sum(t, tables, tiled, {}))(x)
    else:
        total = _window_sum(x, tables, tiled, {})
    return _taps.from_zero(total)


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


def _window_sum(x, tables, tiled, dotted):
    if tiled:
        x = _sum_tiled(x, tables, tiled)
    for axis, w in sorted(tables.items(), reverse=True):
        if axis in dotted:
            x = _dot_axis(x, w, axis)
        elif axis not in tiled:
            x = _sum_axis(x, w, axis)
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
    """Window sums along ``axis`` as ``x @ membership``: linear, and its transpose is a product too."""
    matrix = jnp.asarray(membership(w), x.dtype)
    y = lax.dot_general(x, matrix, (((axis,), (0,)), ((), ())), precision=lax.Precision.HIGHEST)
    return jnp.moveaxis(y, -1, axis)


def _summed_by_dots(x, tables, tiled, dotted):
    """Window sums whose derivative multiplies by the 0/1 window matrix of each irregular axis.

    The values are summed tap by tap (exact for inf and NaN, as PyTorch sums) and written
    once (:func:`_cpu_barriers.stored`).  The derivative is linear, and as products with the membership
    matrices its transpose (the gradient) is a product too: XLA:CPU's matrix kernels, where
    the transpose of a gathered tap is a scatter-add and that of slice pieces a sum of pads,
    both several times slower.  ``0 * inf`` is NaN, so a non-finite *tangent or cotangent*
    entry spreads NaN over its plane's derivative where PyTorch keeps it to the window's
    cells; finite ones give PyTorch's gradient.
    """

    return _taps.linear_as(lambda x: _cpu_barriers.stored(_window_sum(x, tables, tiled, {})),
                   tangent=lambda t: _window_sum(t, tables, tiled, dotted))(x)


def _sum_tiled(x, tables, tiled):
    """Window sums over the axes whose windows tile the input (``(first, stop)`` per axis).

    The tangent (so the gradient, a broadcast) is always a reshape-reduce of tiles; the
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
    taps = math.prod(tables[a].max_length for a in axes)
    if taps <= _taps.MAX_UNROLLED_TAPS:
        values = functools.partial(_sum_tile_slices, tables=tables, axes=axes)
    elif (axes == list(range(x.ndim - len(axes), x.ndim)) and jnp.issubdtype(x.dtype, jnp.floating)
          and all(tables[a].output_size == 1 for a in axes)):
        values = functools.partial(_sum_trailing_by_dot, axes=len(axes))
    else:
        return _reshape_sum(x, tables, tiled)

    return _taps.linear_as(values, tangent=lambda t: _reshape_sum(t, tables, tiled))(x)


def _sum_tile_slices(x, tables, axes):
    total = None
    for offsets in itertools.product(*(range(tables[a].max_length) for a in axes)):
        tap = x
        for axis, offset in zip(axes, offsets):
            tap = lax.slice_in_dim(tap, offset, x.shape[axis], tables[axis].max_length, axis)
        total = tap if total is None else total + tap
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


def _sum_axis(x: jax.Array, w: AxisWindows, axis: int) -> jax.Array:
    """Window sums of one axis; slice-built taps for derivatives.

    The sum is linear, so its tangent is the same sum of the tangent; computing that one
    from slices makes the gradient a sum of pads instead of a gather's scatter-add.  Strided
    regular windows take the tangent's taps from stride phases (:func:`_taps.sum_phase_taps`):
    a strided slice transposes to an interior pad that XLA writes out per tap (item 10).  The
    values take irregular taps as slice pieces along the minor (last) axis, where XLA:CPU
    writes a gather index-major and transposes it back (item 7),
    and gather them along the other axes, where slice pieces would be recomputed per tap.
    """
    if _taps.is_regular(w):
        if _taps.window_step(w) == 1 or w.max_length > _taps.MAX_UNROLLED_TAPS:  # taps are shifts: pads transpose well
            return _portable.sum_taps(x, w, axis, pieces=True)
        return _taps.linear_as(lambda x: _portable.sum_taps(x, w, axis, pieces=True),
                       tangent=lambda t: _taps.sum_phase_taps(t, w, axis))(x)
    minor = axis == x.ndim - 1
    return _taps.linear_as(lambda x: _portable.sum_taps(x, w, axis, pieces=minor),
                   tangent=lambda t: _portable.sum_taps(t, w, axis, pieces=True))(x)




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
    rest = [a for a in tables if a not in tiled]
    if rest:
        parts.append(f"axes {sorted(rest)}: tap by tap (strided slices, stride-phase derivative)")
    return "; ".join(parts)
