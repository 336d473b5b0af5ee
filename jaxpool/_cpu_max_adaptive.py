"""Max and index of irregular (adaptive) windows on XLA:CPU: major axes first.

Beats folding the minor axis first, whose gathered taps XLA:CPU writes index-major (33 -> 5
twice as fast, docs/performance.md item 8); the gradient is one output-sized scatter-add at the
flat index, which beats routing per axis (every input cell computed from the cotangent).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _cpu_barriers, _cpu_max_axis, _taps
from jaxpool.windows import AxisWindows


# Up to this many windows along an axis, irregular max folds slice each window (_per_window).
MAX_SLAB_WINDOWS = 16


def index_major_first(tables: dict[int, AxisWindows]) -> bool:
    """Whether max and index fold the major axes first (:func:`max_major_first`): windows
    irregular along some axis (adaptive ``in % out != 0``) and short along all."""
    return any(not _taps.is_regular(w) for w in tables.values()) and all(
        w.max_length <= _taps.MAX_UNROLLED_TAPS for w in tables.values())


def max_major_first(x, tables, plane_strides, index_dtype):
    """Max and flat index of irregular windows, the major axes first and the minor axis last.

    The first axis folds the whole input, and along a major axis a tap is a run of whole rows;
    folding the minor axis first (gathers across each row) was about twice as slow (item 8).
    PyTorch's pick is the maximum of a total order, "NaN above all values,
    later NaN above earlier; otherwise larger value, and on ties the smaller flat index", so
    any axis order gives its cell: the first axis folds with PyTorch's scan rule (which is
    that order along one axis) and records the chosen cell (:func:`_scan_fold`); every later
    axis takes the maximum value of its taps and then, among the taps holding it, the one
    that order prefers (:func:`_match_fold`).

    The result is read at the final flat index, so a window's ``-0.0`` or ``+0.0`` is the
    chosen cell's own.  The derivative is the tangent at that index (:func:`_route_at_index`).
    """
    xs = lax.stop_gradient(x)
    axes = sorted(tables)
    value, cell = _scan_fold(xs, tables[axes[0]], axes[0])
    index = cell.astype(index_dtype) * np.asarray(plane_strides[axes[0]], index_dtype)
    for other in axes[1:]:
        position = lax.broadcasted_iota(index_dtype, cell.shape, other)
        index = index + position * np.asarray(plane_strides[other], index_dtype)
    plane = _taps.plane_size(x, tables)
    for axis in axes[1:]:
        value, index = _cpu_barriers.kept(value), _cpu_barriers.kept(index)  # else XLA redoes the last fold per tap
        value, index = _match_fold(value, index, tables[axis], axis, plane)
    value = _at_flat_index(xs, index, axes)
    if jnp.issubdtype(x.dtype, jnp.floating):
        value = _route_at_index(x, value, index, axes)
    return value, index


def _per_window(arrays, w: AxisWindows, axis: int, reduce):
    """``reduce(taps, cells, part)`` over the windows of ``w`` along ``axis`` of ``arrays``.

    ``taps[j]`` is the tuple of the arrays' values at tap ``j``, ``cells[j]`` its position
    along the axis (broadcastable), and ``part(a)`` the part of an output-sized ``a`` for the
    windows being reduced.  A window's last cell stands in for its missing taps: no maximum,
    and no choice between equal cells, can tell a repeated cell apart (adaptive windows, the
    only ones here, have no padding).

    Few windows are reduced one by one over static slices and concatenated, so every tap is
    one slice of whole rows, which XLA:CPU vectorises; a gathered tap, or one made of slice
    pieces, is several times slower (item 8).  Many windows take each tap for all of them at once, as a
    slice where it is one and a gather otherwise.
    """
    last = w.starts + w.lengths - 1
    if (w.starts < 0).any() or (last >= w.input_size).any():
        raise AssertionError("_per_window takes windows without padding")
    cell_dtype = _taps.position_dtype(w.input_size)
    if w.output_size <= MAX_SLAB_WINDOWS:
        parts = []
        for k in range(w.output_size):
            cells = range(int(w.starts[k]), int(last[k]) + 1)
            taps = [tuple(lax.slice_in_dim(a, c, c + 1, 1, axis) for a in arrays) for c in cells]
            parts.append(reduce(taps, [cell_dtype(c) for c in cells],
                                lambda a, k=k: lax.slice_in_dim(a, k, k + 1, 1, axis)))
        if len(parts) == 1:
            return parts[0]
        return tuple(jnp.concatenate(r, axis) for r in zip(*parts))
    positions = np.minimum(w.positions, last[:, None])
    ndim = arrays[0].ndim
    taps = [tuple(_taps.take_positions(a, positions[:, j], axis, pieces=False) for a in arrays)
            for j in range(w.max_length)]
    cells = [_taps.along(positions[:, j].astype(cell_dtype), axis, ndim) for j in range(w.max_length)]
    return reduce(taps, cells, lambda a: a)


def _scan_fold(x, w: AxisWindows, axis: int):
    """``(value, position along axis)`` of every window's cell by PyTorch's scan rule,
    ``val > best or isnan(val)``: the first maximum, the last NaN."""

    def reduce(taps, cells, part):
        (best,), cell = taps[0], jnp.broadcast_to(cells[0], taps[0][0].shape)
        for (tap,), here in zip(taps[1:], cells[1:]):
            take = _taps.scan_takes(tap, best)
            best, cell = _taps.select(take, tap, best), _taps.select(take, here, cell)
        return best, cell

    return _per_window((x,), w, axis, reduce)


def _match_fold(value, index, w: AxisWindows, axis: int, plane: int):
    """``(value, flat index)`` of every window's cell along a later axis: its taps' maximum
    value, then among the taps holding it the smallest flat index (the largest if the
    maximum is NaN), PyTorch's total order (see :func:`max_major_first`).

    ``value``/``index`` are the earlier axes' choice at every cell.  The index is picked
    without selects, as ``max((plane - order) * hit)`` with ``order`` the index (or its
    mirror ``plane - 1 - index`` for NaN windows): XLA:CPU vectorises integer arithmetic
    here, where a float comparison feeding an integer select was four times slower.
    """
    (best,) = _per_window((value,), w, axis, _scan_values)
    nan_window = jnp.isnan(best)
    top = np.asarray(plane, index.dtype)

    def order(i, mirror):  # i, or plane - 1 - i where mirror is all ones
        return lax.add(i, lax.bitwise_and(mirror, lax.sub(lax.sub(top - 1, i), i)))

    def reduce(taps, cells, part):
        m, nan_m = part(best), part(nan_window)
        mirror = -nan_m.astype(index.dtype)
        found = None
        for v, i in taps:
            hit = lax.bitwise_or(lax.eq(v, m), lax.bitwise_and(nan_m, lax.ne(v, v)))
            score = lax.mul(lax.sub(top, order(i, mirror)), lax.convert_element_type(hit, index.dtype))
            found = score if found is None else lax.max(found, score)
        return (found,)

    (found,) = _per_window((value, index), w, axis, reduce)
    return best, order(top - found, -nan_window.astype(index.dtype))


def _scan_values(taps, cells, part):
    """The maximum of the taps by PyTorch's scan rule (NaN wins), as a 1-tuple."""
    (best,) = taps[0]
    for (tap,) in taps[1:]:
        best = _taps.select(_taps.scan_takes(tap, best), tap, best)
    return (best,)


def values_routed_by_index(x, tables, plane_strides):
    """Values only, for the windows of :func:`max_major_first`: the plain folds forward
    (minor axis first, one output per fold: the fastest forward), and as derivative that of
    :func:`max_major_first`, whose gradient is one scatter-add at the flat indices."""

    def values(x):
        best = x
        for axis, w in sorted(tables.items(), reverse=True):
            best = _cpu_max_axis.max_axis(best, None, w, axis, None, None)[0]
        return best

    def routed(x):
        return max_major_first(x, tables, plane_strides, np.int32)[0]

    return _choices.differentiated_as(values, routed)(x)


def _route_at_index(x, best, index, axes):
    """``best`` (computed from ``stop_gradient(x)``) with the derivative of "``x`` at
    ``index``", the flat offset of every window's chosen cell in its plane (the spatial
    ``axes``, contiguous).  The tangent is a gather; its transpose, the gradient, is one
    scatter-add of the output-sized cotangent into each plane, as PyTorch's backward, where
    routing per axis computed every input cell from the cotangent (item 8).
    """
    return _choices.route_to_chosen(x, best, index, functools.partial(_at_flat_index, axes=axes))


def _at_flat_index(t, index, axes):
    """Linear in ``t``: ``t`` at every window's flat in-plane ``index`` (``axes`` contiguous).

    A batched gather per plane, so GSPMD partitions it (and its scatter) over batch and
    channels.  Flattening ``t`` whole made the scatter cheaper on one CPU device
    (one index per update instead of three), but under a batch split GSPMD all-gathers
    a flat operand (item 8).
    """
    first, n = axes[0], len(axes)

    def flat(a):
        return a.reshape(a.shape[:first] + (-1,) + a.shape[first + n :])

    picked = jnp.take_along_axis(flat(t), flat(index), axis=first, mode="promise_in_bounds")
    return picked.reshape(index.shape)
