"""The portable executor: each reduction written as the plain algorithm over the window tables.

This is the route every platform but XLA:CPU runs (GPU, TPU; see :mod:`jaxpool._execute`), and
the reference the CPU tactics (:mod:`jaxpool._cpu_sum`, :mod:`jaxpool._cpu_max`) must agree with.
Nothing here games one compiler: no fusion barrier, no matrix product used as a sum, no
threshold tuned to a cost model.  What is kept is algorithmic:

* window sums of regular axes are ``lax.reduce_window`` (an exact sum by XLA's semantics; only
  the rounding order differs from PyTorch's loop), irregular axes (adaptive ``in % out != 0``)
  sum their taps, each tap one strided slice or static gather;
* window max folds the taps of one axis at a time with PyTorch's scan rule
  ``val > best or isnan(val)`` (first maximum, last NaN; per axis is exact, lexicographic order
  composes) and records the chosen tap; the index is the chosen cell's flat offset;
* the derivative of a max is the tangent at the chosen tap (a custom JVP), assembled per stride
  phase for strided windows, so the backward pass has no interior pad per tap and no scatter
  the size of the input;
* axes whose tap tables would be large reduce without them (:mod:`jaxpool._large`).

Max does not use ``lax.reduce_window(max)``: XLA's ``max`` gives ``+0.0`` for ``max(-0.0, +0.0)``
where PyTorch keeps the first cell, and its NaN handling is a backend's choice.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _large, _taps
from jaxpool._taps import MAX_UNROLLED_TAPS
from jaxpool.windows import AxisWindows


def window_sum(x: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """Sum of the in-bounds cells of every window (padding adds zero), one axis at a time."""
    for axis, w in sorted(tables.items(), reverse=True):
        w = w.trimmed()
        if _large.whole_axis(w):  # a global window: a plain reduction (its transpose a broadcast)
            x = jnp.sum(x, axis=axis, keepdims=True, dtype=x.dtype)
        elif _large.is_large(w):
            x = _large.sum_large(x, w, axis)
        elif _taps.is_regular(w):
            x = _reduce_window_sum(x, w, axis)
        else:
            x = sum_taps(x, w, axis, pieces=True)
    return x


def window_sum_tangent(t: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """:func:`window_sum` of ``t`` (the sum is linear), written so that its transpose, the
    gradient, is cheap on every platform: an irregular axis (adaptive ``in % out != 0``) sums
    its windows per length (:func:`_sum_by_length`), as tap-by-tap slices transpose into one
    interior pad per slice piece, all added per input cell (docs/performance.md, "GPU")."""
    for axis, w in sorted(tables.items(), reverse=True):
        w = w.trimmed()
        if _by_length(w):
            t = _sum_by_length(t, w, axis)
        else:
            t = window_sum(t, {axis: w})
    return t


def _by_length(w: AxisWindows) -> bool:
    """Irregular contiguous windows inside the axis, of at most 2 lengths, with distinct starts
    (adaptive pools that shrink the axis: lengths ``ceil(in / out)`` and one more),
    at most :data:`MAX_UNROLLED_TAPS` long: a stride-1 window sum costs ``input * length``."""
    return (w.output_size > 1 and w.dilation == 1 and w.max_length <= MAX_UNROLLED_TAPS
            and not _taps.is_regular(w) and not _large.is_large(w)
            and bool(np.all(np.diff(w.starts.astype(np.int64)) > 0)) and int(w.starts[0]) >= 0
            and int((w.starts.astype(np.int64) + w.lengths).max()) <= w.input_size
            and len(np.unique(w.lengths)) <= 2)


def _sum_by_length(x, w: AxisWindows, axis: int):
    """Window sums of one axis: per window length, a stride-1 ``lax.reduce_window`` (the sum of
    the window starting at every cell) and a static gather of the starts.  The starts are
    distinct and in bounds, so the gradient scatters one update per window to distinct cells
    (no collision, no atomics) and then sums windows again."""
    total = None
    for length in np.unique(w.lengths):
        dims = tuple(int(length) if a == axis else 1 for a in range(x.ndim))
        padding = tuple((0, int(length) - 1) if a == axis else (0, 0) for a in range(x.ndim))
        sums = lax.reduce_window(x, np.zeros((), x.dtype), lax.add, dims, (1,) * x.ndim, padding)
        taken = _taps.gather_along(sums, w.starts, axis, mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
                                   sorted_unique=True)
        if total is None:
            total = taken
        else:
            total = _taps.select(_taps.along(w.lengths == length, axis, x.ndim), taken, total)
    return total


def _reduce_window_sum(x, w: AxisWindows, axis: int):
    """Regular windows of one axis as one ``lax.reduce_window`` add (its transpose is a pad and
    another window sum, never a scatter)."""
    xs, dims, strides, padding, dilation = _large.reduce_window_config(w, x, axis)
    total = lax.reduce_window(xs, np.zeros((), x.dtype), lax.add, dims, strides, padding,
                              window_dilation=dilation)
    return lax.slice_in_dim(total, 0, w.output_size, 1, axis)


def sum_taps(x, w: AxisWindows, axis: int, pieces: bool):
    """Window sums of one axis, tap by tap (each tap a strided slice, slice pieces or a static
    gather, :func:`jaxpool._taps.take_positions`), ragged windows masked."""
    if w.max_length > MAX_UNROLLED_TAPS:
        xw = _taps.take_windows(x, w.positions, axis, pieces=pieces)
        return jnp.sum(jnp.where(_taps.window_table(w.valid, axis, x.ndim), xw, 0), axis=axis + 1)
    total = None
    for j in range(w.max_length):
        tap = _taps.take_positions(x, w.positions[:, j], axis, pieces=pieces)
        if not w.valid[:, j].all():  # padding reads zero already; this masks ragged windows
            tap = _taps.select(_taps.along(w.valid[:, j], axis, x.ndim), tap, 0)
        total = tap if total is None else lax.add(total, tap)
    return total


def window_max(x: jax.Array, tables: dict[int, AxisWindows], plane_strides: dict[int, int],
               index_dtype=None) -> tuple[jax.Array, jax.Array | None]:
    """Max of every window and, if ``index_dtype`` is given, its flat index in the plane.

    The minor axis is folded first; each later axis carries the earlier axes' index of every
    cell it chooses.  ``plane_strides[axis]`` is the flat-index stride of a spatial axis.
    """
    best, index = x, None
    for axis, w in sorted(tables.items(), reverse=True):
        w = w.trimmed()
        stride = plane_strides[axis] if index_dtype is not None else None
        if _large.is_large(w):
            best, index = _large.max_large(best, index, w, axis, stride, index_dtype)
        elif w.max_length > MAX_UNROLLED_TAPS:
            best, index = max_axis_windowed(best, index, w, axis, stride, index_dtype)
        else:
            best, index = _max_axis(best, index, w, axis, stride, index_dtype)
    return best, index


def _max_axis(x, index, w: AxisWindows, axis: int, stride, index_dtype):
    """Fold the taps of one axis by PyTorch's scan rule; route the derivative to the chosen tap."""
    chosen, best, best_index = _taps.scan_fold_axis(lax.stop_gradient(x), w, axis, index)
    if stride is not None:  # the chosen cell's offset along this axis, plus the earlier axes'
        offset = _taps.chosen_cell(chosen, w, axis, index_dtype) * np.asarray(stride, index_dtype)
        best_index = offset if index is None else best_index + offset
    if jnp.issubdtype(x.dtype, jnp.floating):
        if _taps.is_regular(w) and _taps.tiling_range(w) is None:
            taps = _taps.reachable_taps({axis: w})
            at = functools.partial(chosen_phase_taps, tables={axis: w}, taps=taps)
        else:
            at = functools.partial(_taps.chosen_taps, w=w, axis=axis, windowed=False)
        best = _choices.route_to_chosen(x, best, chosen, at)
    return best, best_index


def chosen_phase_taps(t, chosen, tables: dict[int, AxisWindows], taps: dict):
    """Linear in ``t``: every window's value of ``t`` at its ``chosen`` N-d tap (a key of
    ``taps``, see :func:`_taps.reachable_taps`), for regular windows.

    Built from :func:`_taps.phase_taps`, so the transpose (the gradient) assembles each stride
    phase of the input from shifted, masked copies of the output-sized cotangent and
    interleaves the phases once.  A strided slice per tap transposes to an interior pad per
    tap instead, and every input cell evaluates every one of those pads.
    """
    total = None
    for n, tap in _taps.phase_taps(t, tables, taps).items():
        tap = _taps.select(lax.eq(chosen, chosen.dtype.type(n)), tap, np.zeros((), t.dtype))
        total = tap if total is None else lax.add(total, tap)
    return total


def max_axis_windowed(x, index, w, axis, stride, index_dtype):
    """Long windows: take them into an extra axis, pick the tap with a variadic reduce."""
    positions = w.positions
    xw = _taps.take_windows(lax.stop_gradient(x), positions, axis, pieces=False)
    taps = w.max_length
    tap_no = lax.broadcasted_iota(jnp.int32, xw.shape, axis + 1)
    valid = _taps.window_table(w.valid, axis, x.ndim)
    # Invalid taps lose every comparison: lowest value and a tap number past the end.  A
    # valid window always picks a valid tap, so the reduced value is the chosen cell's.
    values = jnp.where(valid, xw, _taps.lowest(xw.dtype))
    tap_no = jnp.where(valid, tap_no, taps)
    best, chosen = lax.reduce(
        (values, tap_no), (_taps.lowest(xw.dtype), np.int32(taps)), _taps.torch_argmax_combine, (axis + 1,)
    )
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _choices.route_to_chosen(x, best, chosen, functools.partial(_taps.chosen_taps, w=w, axis=axis, windowed=True))
    if stride is None:
        return best, None
    tap_index = jnp.asarray(_taps.window_table(w.positions * stride, axis, x.ndim), index_dtype)
    if index is not None:
        tap_index = tap_index + _taps.take_windows(index, positions, axis, pieces=False)
    hit = lax.broadcasted_iota(jnp.int32, xw.shape, axis + 1) == jnp.expand_dims(chosen, axis + 1)
    picked = jnp.sum(jnp.where(hit, tap_index, 0), axis=axis + 1, dtype=index_dtype)
    return best, picked


def route(tables: dict[int, AxisWindows], reduction: str) -> str:
    """What :func:`window_sum` / :func:`window_max` do with ``tables``, in words, per axis."""
    parts = []
    for axis, w in sorted(tables.items(), reverse=True):
        w = w.trimmed()
        if _large.is_large(w):
            how = "table-free reduce_window/reduce" if _taps.is_regular(w) else "device-built gather"
        elif reduction == "sum" and _large.whole_axis(w):
            how = "one reduction (global window)"
        elif reduction == "sum":
            how = "reduce_window add" if _taps.is_regular(w) else "tap sum (slices / static gathers)"
        elif w.max_length > MAX_UNROLLED_TAPS:
            how = "windows gathered, variadic reduce by PyTorch's rule"
        else:
            how = f"scan fold of {w.max_length} taps" + (
                ", stride-phase gradient" if _taps.is_regular(w) and _taps.tiling_range(w) is None else "")
        parts.append(f"axis {axis}: {how}")
    return "; ".join(parts)
