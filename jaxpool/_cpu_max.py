"""Window max and PyTorch's indices, XLA:CPU tactics: which one runs (:func:`choose`).

* :mod:`jaxpool._cpu_max_direct` (regular windows, few taps) beats an axis-by-axis fold, whose
  per-axis intermediate and padded taps XLA:CPU writes out (item 9);
* :mod:`jaxpool._cpu_max_adaptive` (irregular windows) beats gathering taps along the minor axis,
  which XLA:CPU writes index-major (item 8);
* otherwise :mod:`jaxpool._cpu_max_axis`, the portable per-axis fold behind fusion barriers.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jaxpool import _cpu_barriers, _cpu_max_adaptive, _cpu_max_axis, _cpu_max_direct, _large, _portable, _taps
from jaxpool.windows import AxisWindows


def window_max(
    x: jax.Array,
    tables: dict[int, AxisWindows],
    plane_strides: dict[int, int],
    index_dtype=None,
) -> tuple[jax.Array, jax.Array | None]:
    """Max of every window and, if ``index_dtype`` is given, its flat index in the plane.

    ``plane_strides[axis]`` is the flat-index stride of a spatial axis within one input plane
    (for NCHW: ``{3: 1, 2: W}``); irregular windows route their gradient by that index even
    when no index is returned (:func:`_cpu_max_adaptive.values_routed_by_index`).  Indices follow PyTorch CPU:
    first maximum in row-major order, last NaN if any.  Every window must hold at least one
    in-bounds cell; the first one is always taken, so a window of ``-inf`` (or of the lowest
    integer) reports, and passes its gradient to, its first in-bounds cell, as PyTorch does.

    The fold runs on ``stop_gradient(x)``; the derivative is attached by
    :func:`jaxpool._choices.route_to_chosen` as "the tangent at the chosen tap".  Large axes reduce
    ``(value, position)`` pairs with PyTorch's rule (:func:`jaxpool._large.max_large`).

    The tables are :meth:`~jaxpool.windows.AxisWindows.trimmed` first: a tap out of bounds in
    every window is never chosen.
    """
    indexed = index_dtype is not None
    tables = {a: w.trimmed() for a, w in tables.items()}
    tactic = choose(tables, x.ndim, indexed, jnp.issubdtype(x.dtype, jnp.floating))
    if tactic == "direct":
        return _cpu_max_direct.max_direct(x, tables, plane_strides, index_dtype)
    if tactic == "major_first":
        return _cpu_max_adaptive.max_major_first(x, tables, plane_strides, index_dtype)
    if tactic == "routed_by_index":
        return _cpu_max_adaptive.values_routed_by_index(x, tables, plane_strides), None
    best, index = x, None
    for n, (axis, w) in enumerate(sorted(tables.items(), reverse=True)):
        if n and index is not None:
            index = _cpu_barriers.kept(index)  # and the values, inside _cpu_max_axis.max_axis (not their gradient path)
        stride = plane_strides[axis] if indexed else None
        if _large.is_large(w):
            best, index = _large.max_large(best, index, w, axis, stride, index_dtype)
        elif w.max_length > _taps.MAX_UNROLLED_TAPS:
            best, index = _portable.max_axis_windowed(best, index, w, axis, stride, index_dtype)
        else:
            keep = bool(n and index is not None)
            best, index = _cpu_max_axis.max_axis(best, index, w, axis, stride, index_dtype, keep=keep)
    return best, index


ROUTES = {
    "direct": "every N-d tap folded at once, block by block over windows with the same in-bounds "
              "taps (or from one padded copy for stride-1 windows padded along the minor axis); "
              "gradient per stride phase",
    "major_first": "irregular windows: major axes first over whole-row slices, later axes by "
                   "value then flat index; gradient one output-sized scatter at the flat index",
    "routed_by_index": "irregular windows, values only: per-axis folds forward, gradient one "
                       "output-sized scatter at the flat index",
    "per_axis": "axis by axis (minor first), each fold behind a fusion barrier",
}


def differentiates_another_form(tables: dict[int, AxisWindows], ndim: int, indexed: bool) -> bool:
    """Whether floating-point :func:`window_max` over trimmed ``tables`` differentiates
    another form than its forward (:func:`jaxpool._choices.differentiated_as`): values only
    over irregular windows folded tap by tap, whose gradient is that of the indexed fold."""
    if indexed:
        return False
    if choose(tables, ndim, indexed, True) == "routed_by_index":
        return True
    return any(not _taps.is_regular(w) and not _large.is_large(w) and w.max_length <= _taps.MAX_UNROLLED_TAPS
               for w in tables.values())


def choose(tables: dict[int, AxisWindows], ndim: int, indexed: bool, floating: bool) -> str:
    """The tactic :func:`window_max` takes for trimmed ``tables`` (a key of :data:`ROUTES`)."""
    large = any(_large.is_large(w) for w in tables.values())
    if not large and _cpu_max_direct.folds_directly(tables, ndim):
        return "direct"
    if not large and _cpu_max_adaptive.index_major_first(tables):
        if indexed:
            return "major_first"
        if floating and math.prod(w.input_size for w in tables.values()) < 2**31:
            return "routed_by_index"
    return "per_axis"
