"""Apply static window tables: separable, tap-wise masked reductions.

Every pooling operator reduces over a box window that is the product of one 1-d window per
spatial axis (:class:`jaxpool.windows.AxisWindows`).  The reductions here run one axis at a
time; for each axis they walk the window *taps* (tap ``j`` of every output is one strided slice
or one static gather of the input) and fold them together with elementwise ops that XLA fuses
into a single loop.  Windows with many taps are materialised as an extra axis instead and
reduced there.

Reducing axis by axis is exact for PyTorch's rules, not an approximation:

* sum: a box sum is a sum of row sums (only the rounding order differs);
* max with index: PyTorch scans a window in row-major order and takes a cell when
  ``value > best or isnan(value)``, starting from ``best = lowest`` at the first in-bounds
  cell.  That picks the *first* maximum and the *last* NaN in row-major order, and the same
  rule applied per axis picks the same cell (lexicographic order composes).  The gradient is
  routed through ``where`` selections, so it reaches exactly the recorded cell, ties included.

Performance on XLA:CPU (measured, see docs/performance.md):

* nothing input-sized is written that the result does not need: taps slice the in-range part
  of the input and pad the (output-sized) tap, never the input.  XLA:CPU allocates a fresh
  temporary per call and faults its pages in (about 0.3 ms per MiB here), which made a padded
  input copy cost more than the pooling itself.  The exception is the values of N-d window
  sums padded along the minor axis with stride 1, whose padded taps XLA writes out one by one
  instead (:func:`_padded_once`);
* axes whose windows tile the input (``kernel == stride``, no padding; adaptive with
  ``in % out == 0``) are summed together as one strided slice per tap (global windows: a
  product with ones), differentiated as a reshape-reduce whose transpose is a broadcast;
* irregular adaptive averages sum their taps and are differentiated as products with the
  0/1 window matrix (:func:`_summed_by_dots`);
* the max fold runs on ``stop_gradient(x)`` and its derivative is a custom JVP "tangent at the
  chosen tap" (:func:`_route`): differentiating the fold itself gives select chains that XLA
  recomputes per input cell;
* max over regular windows with few N-d taps (fixed pools, ResNet's 3x3/2, SegNet's 2x2)
  folds all N-d taps at once, block by block over windows with the same in-bounds taps so
  that no tap is padded (:func:`_max_direct`); its gradient is a masked reshape for tiling
  windows and is otherwise assembled per stride phase of the input from shifted
  output-sized cotangents (:func:`_chosen_phase_taps`);
* the tap choice is materialised behind an op XLA does not duplicate (:func:`_materialised`);
  irregular max folds output only that choice and read value and index at the chosen cell,
  as a fold with several outputs makes XLA write every gathered tap; adaptive max folds the
  major axes first, each window over static slices, later axes picking by value and then
  by flat index (:func:`_max_major_first`), and routes its derivative through the flat
  index, so its gradient is one scatter-add of output-sized updates;
* otherwise derivatives take taps with strided slices (:func:`_tap`: progressions, periodic
  phases, runs), never gathers, so no input-sized scatter-add appears in a backward pass;
  forward folds may gather, which XLA computes once where fused slice pieces would be
  recomputed per tap (except along the minor axis, where XLA:CPU writes a gather
  index-major: sums take slice pieces there).
"""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool.windows import AxisWindows

# Windows with more taps than this are reduced as a materialised axis, not tap by tap.
MAX_UNROLLED_TAPS = 16
# Stride-1 max windows padded along the minor axis fold up to this many N-d taps at once from
# one padded copy (_engine._fold_padded; Inception's and SPP's 3x3 to 9x9, 3-D 3x3x3), where
# axis by axis XLA:CPU writes every padded tap out and refolds the earlier axes per tap
# (3x3x3/1/1 of (4, 32, 32, 64, 64), warm, interleaved: forward 168 -> 70 ms, f+b 311 -> 188;
# 9x9/1/4 of (8, 256, 20, 20): f+b 98 -> 29 ms).  The tap choice stays int8 (_choice_dtype).
MAX_PADDED_FOLD_TAPS = 100
# A static take is split into at most this many slices before falling back to a gather.
MAX_SLICE_PIECES = 48
# Up to this many windows along an axis, irregular max folds slice each window (_per_window).
MAX_SLAB_WINDOWS = 16
# Axes whose window tables would be large are reduced without them (:func:`_sum_large`,
# :func:`_max_large`): windows of more than MAX_UNROLLED_TAPS taps whose ``(out, taps)`` table
# would exceed MAX_WINDOWED_ENTRIES entries, and irregular windows (adaptive ``in % out != 0``)
# more numerous than MAX_STATIC_WINDOWS, whose per-tap static takes loop over every window.
MAX_WINDOWED_ENTRIES = 2**20
MAX_STATIC_WINDOWS = 2**16


def lowest(dtype) -> np.generic:
    """The identity of ``max``: ``-inf`` for floats, the smallest integer otherwise.

    A float type without infinities (float8_e4m3fn, the ``fnuz`` types, ...) turns ``-inf``
    into NaN, which would win every window; its lowest finite value is used instead.
    """
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        value = np.array(-np.inf, dtype)
        return value if np.isneginf(value.astype(np.float64)) else np.array(jnp.finfo(dtype).min, dtype)
    return np.array(jnp.iinfo(dtype).min, dtype)


def along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape a 1-d table so it broadcasts along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = values.shape[0]
    return values.reshape(shape)


def _window_table(table: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape an ``(out, taps)`` table to broadcast against a windowed array (see _windowed)."""
    return table.reshape([1] * axis + list(table.shape) + [1] * (ndim - axis - 1))


def _is_progression(pos: np.ndarray) -> int | None:
    """Step of an increasing arithmetic progression (1 for a single element), else None."""
    if pos.shape[0] == 1:
        return 1
    step = int(pos[1] - pos[0])
    return step if step > 0 and np.all(np.diff(pos) == step) else None


def _pad_widths(w: AxisWindows) -> tuple[int, int]:
    """``(lo, hi)``: the zeros to add on each side so every tap position is addressable
    (closed form: the least and greatest of ``starts + j * dilation``, ``j < max_length``)."""
    if w.output_size == 0:
        return 0, 0
    top = int(w.starts.max()) + (w.max_length - 1) * w.dilation
    return max(0, -int(w.starts.min())), max(0, top - (w.input_size - 1))


def _padded(x: jax.Array, w: AxisWindows, axis: int) -> tuple[jax.Array, int]:
    """Zero-pad ``x`` along ``axis`` so every tap position (padding included) is addressable."""
    lo, hi = _pad_widths(w)
    if lo or hi:
        config = [(0, 0, 0)] * x.ndim
        config[axis] = (lo, hi, 0)
        x = lax.pad(x, np.zeros((), x.dtype), config)
    return x, lo


# ------------------------------------------------------------------------- static takes


def _tap(x: jax.Array, pos: np.ndarray, axis: int, *, pieces: bool = True) -> jax.Array:
    """``x`` at static positions ``pos`` along ``axis``; positions outside the axis read 0.

    XLA's CPU gathers, and the scatter-adds that are their gradients, are an order of
    magnitude slower than slices, so static positions are decomposed into strided slices:

    * an arithmetic progression is one strided slice (of its in-range part, zero-padded to
      full length: the input itself is never padded, as a padded copy of a large input is an
      input-sized temporary that XLA:CPU allocates, and faults in, on every call);
    * periodic positions, ``pos[i + q] = pos[i] + p`` (adaptive windows with
      ``in / out = p / q``), are ``q`` strided slices interleaved by a stack and a reshape;
    * otherwise maximal runs of equally spaced positions are concatenated (a repeated
      position is a broadcast).

    The form with fewer pieces is used; positions that need more than ``MAX_SLICE_PIECES``
    pieces are gathered.  All forms are linear and transpose to pads, never to a scatter.

    ``pieces=False`` gathers whatever is not one slice.  The forward folds use it: XLA fuses
    slice pieces into every consumer and, across two axes, recomputes them per tap, while a
    gather is computed once; folds are never differentiated (see :func:`_route`), so the
    slow scatter-add that would be a gather's gradient never appears.
    """
    step = _is_progression(pos)
    if step is not None:
        return _progression(x, pos, step, axis)
    if not pieces:
        return _gather(x, pos, axis)
    phases, runs = _phases(pos), _runs(pos)
    if phases is not None and phases <= min(len(runs), MAX_SLICE_PIECES):
        parts = [_tap(x, pos[r::phases], axis) for r in range(phases)]
        stacked = jnp.stack(parts, axis=axis + 1)  # (..., n / q, q, ...): phase r in column r
        return stacked.reshape(stacked.shape[:axis] + (pos.shape[0],) + stacked.shape[axis + 2 :])
    if len(runs) <= MAX_SLICE_PIECES:
        return _take_runs(x, runs, axis)
    return _gather(x, pos, axis)


def _gather(x: jax.Array, pos: np.ndarray, axis: int) -> jax.Array:
    """A static gather along ``axis``; positions outside the axis read 0."""
    inside = (pos >= 0) & (pos < x.shape[axis])
    taken = jnp.take(x, jnp.asarray(np.clip(pos, 0, x.shape[axis] - 1)), axis=axis, mode="clip")
    if inside.all():
        return taken
    return jnp.where(along(inside, axis, x.ndim), taken, np.zeros((), x.dtype))


def _progression(x: jax.Array, pos: np.ndarray, step: int, axis: int) -> jax.Array:
    """``x`` at the increasing progression ``pos``: one strided slice, zero outside the axis."""
    inside = np.flatnonzero((pos >= 0) & (pos < x.shape[axis]))
    if inside.size == 0:
        shape = list(x.shape)
        shape[axis] = pos.shape[0]
        return jnp.zeros(shape, x.dtype)
    first, last = int(inside[0]), int(inside[-1])
    part = lax.slice_in_dim(x, int(pos[first]), int(pos[last]) + 1, step, axis)
    if first == 0 and last == pos.shape[0] - 1:
        return part
    config = [(0, 0, 0)] * x.ndim
    config[axis] = (first, pos.shape[0] - 1 - last, 0)
    return lax.pad(part, np.zeros((), x.dtype), config)


def _phases(pos: np.ndarray) -> int | None:
    """Smallest ``q`` (a divisor of the length) whose ``q`` phases are all progressions."""
    n = pos.shape[0]
    for q in range(2, min(n // 2, MAX_SLICE_PIECES) + 1):
        if n % q == 0 and all(_is_progression(pos[r::q]) is not None for r in range(q)):
            return q
    return None


def _runs(pos: np.ndarray) -> list[tuple[int, int, int]]:
    """Greedy split of ``pos`` into ``(first, count, step)`` runs with a constant step >= 0."""
    runs, i, n = [], 0, pos.shape[0]
    while i < n:
        step = int(pos[i + 1] - pos[i]) if i + 1 < n else 1
        if step < 0:
            step = 1
            j = i
        else:
            j = i + 1 if i + 1 < n else i
            while j + 1 < n and pos[j + 1] - pos[j] == step:
                j += 1
        runs.append((int(pos[i]), j - i + 1, step))
        i = j + 1
    return runs


def _take_runs(x, runs, axis):
    parts = []
    for first, count, step in runs:
        if step == 0:  # one position, repeated
            part = _progression(x, np.array([first]), 1, axis)
            shape = list(part.shape)
            shape[axis] = count
            parts.append(jnp.broadcast_to(part, shape))
        else:
            parts.append(_progression(x, first + step * np.arange(count), step, axis))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=axis)


def _regular(w: AxisWindows) -> bool:
    """Whether every tap of the axis is one strided slice (fixed windows; adaptive ``out | in``):
    tap ``j`` of every window lies at ``starts + j * dilation``, so exactly when the starts are
    an increasing progression (O(out), no tap table)."""
    return w.output_size <= 1 or _is_progression(w.starts) is not None


def _tiling(w: AxisWindows) -> tuple[int, int] | None:
    """``(first, stop)`` when the windows are contiguous, disjoint and inside the input.

    The windows of such an axis (``kernel == stride``, no padding; adaptive ``in % out == 0``)
    are a reshape of ``x[first:stop]`` into ``(out, taps)``: no slicing per tap at all.
    """
    n = w.output_size
    if n == 0 or w.dilation != 1 or np.any(w.lengths != w.lengths[0]):
        return None
    length, first = int(w.lengths[0]), int(w.starts[0])
    if (n > 1 and _is_progression(w.starts) != length) or first < 0 or first + n * length > w.input_size:
        return None
    return first, first + n * length


def _windowed(xp: jax.Array, positions: np.ndarray, axis: int, *, pieces: bool = True) -> jax.Array:
    """``xp`` taken into an ``(out, taps)`` pair of axes at ``axis``, ``axis + 1``."""
    out, taps = positions.shape
    x = _tap(xp, positions.reshape(-1), axis, pieces=pieces)  # contiguous disjoint windows: one plain slice
    return x.reshape(x.shape[:axis] + (out, taps) + x.shape[axis + 1 :])


# --------------------------------------------------------------------------------------- sum


def window_sum(x: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """Sum of the in-bounds cells of every window (padding counts as zero).

    Axes whose windows tile the input are summed together (:func:`_sum_tiled`); axes with
    irregular windows (adaptive ``in % out != 0``) by a matrix product where that is cheap
    (:func:`_summed_by_dots`); the other axes tap by tap, one axis at a time, the values of
    stride-1 padded ones from one padded copy of the input (:func:`_padded_once`).

    The tables are :meth:`~jaxpool.windows.AxisWindows.trimmed` first (taps out of bounds in
    every window add nothing), and large axes are summed without tap tables first
    (:func:`_sum_large`).
    """
    tables = {a: w.trimmed() for a, w in tables.items()}
    large = {a: w for a, w in tables.items() if _large(w)}
    for axis, w in sorted(large.items(), reverse=True):
        x = _sum_large(x, w, axis)
    tables = {a: w for a, w in tables.items() if a not in large}
    if not tables:
        return _from_zero(x) if jnp.issubdtype(x.dtype, jnp.floating) else x
    tiled = {a: t for a, w in tables.items() if (t := _tiling(w)) is not None}
    dotted = {a: w for a, w in tables.items() if a not in tiled and _dot_is_cheaper(w)}
    padded = _padded_once(tables, tiled, x.ndim)

    def values(x):
        return _window_sum(*_padded_input(x, tables, padded), tiled, {})

    if not jnp.issubdtype(x.dtype, jnp.floating):
        return values(x)
    if dotted:
        total = _summed_by_dots(x, tables, tiled, dotted)
    elif padded:
        total = _linear(values, tangent=lambda t: _window_sum(t, tables, tiled, {}))(x)
    else:
        total = _window_sum(x, tables, tiled, {})
    return _from_zero(total)


def _padded_once(tables: dict[int, AxisWindows], tiled, ndim: int) -> list[int]:
    """The stride-1 padded axes whose values are summed from one padded copy of the input
    (:func:`_padded_input`): when the minor (last) axis is one of them and another axis is
    summed tap by tap after it.  The minor axis' taps, slices padded back to full length,
    feed every tap of the next axis, so XLA:CPU writes each of them out and checks the pad's
    bounds per element.  A 1-d sum, or padding on the major axes only, is faster tap by tap;
    a strided axis keeps its stride-phase derivative (:func:`_sum_axis`).  Where this is
    not empty, a small max fold reads a padded copy too (:func:`_fold_padded`).
    """
    tapwise = [a for a in tables if a not in tiled]
    axes = [a for a in tapwise if _regular(tables[a]) and _step(tables[a]) == 1 and _pads(tables[a])]
    return axes if ndim - 1 in axes and len(tapwise) > 1 else []


def _pads(w: AxisWindows) -> bool:
    """Whether some tap of the axis lies in its padding (or past the input's end)."""
    return w.output_size > 0 and any(_pad_widths(w))


def _padded_input(x, tables: dict[int, AxisWindows], axes, fill=0):
    """``x`` padded once with ``fill`` along ``axes`` and the tables of the padded input.

    The values of the sums chosen by :func:`_padded_once` read their taps as plain slices of
    this copy: 3x3/1/1 averages of (16, 192, 28, 28) 4.7-5.2 -> 2.6-3.1 ms, of
    (16, 64, 112, 112) 47-53 -> 11.4-14.4 ms, 3x3x3/1/1 of (2, 32, 32, 32, 32) 7.1-8.1 -> 2.4-3.4 ms
    (warm allocator; the copy is one more input-sized temporary).  The derivative stays
    tap by tap (:func:`window_sum`): differentiating the copy made no gradient faster.
    """
    if not axes:
        return x, tables
    config = [(0, 0, 0)] * x.ndim
    shifted = dict(tables)
    for axis in axes:
        w = tables[axis]
        lo, hi = _pad_widths(w)
        config[axis] = (lo, hi, 0)
        shifted[axis] = AxisWindows(w.input_size + lo + hi, w.starts + lo, w.lengths, w.dilation)
    return lax.pad(x, np.asarray(fill, x.dtype), config), shifted


@jax.custom_jvp
def _from_zero(total):
    """``total`` with ``-0.0`` made ``+0.0``, as a sum that starts from ``0`` gives it.

    PyTorch's loops start at ``sum = 0``, so a window of ``-0.0`` sums to ``+0.0``; a sum of
    taps starts from the first tap and keeps ``-0.0`` (and XLA drops an added ``+ 0.0``).
    The derivative is the identity.
    """
    return jnp.where(total == 0, jnp.zeros((), total.dtype), total)


_from_zero.defjvp(lambda primals, tangents: (_from_zero(primals[0]), tangents[0]))


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
    if w.output_size == 0 or _regular(w):
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
    once (:func:`_stored`).  The derivative is linear, and as products with the membership
    matrices its transpose (the gradient) is a product too: XLA:CPU's matrix kernels, where
    the transpose of a gathered tap is a scatter-add and that of slice pieces a sum of pads,
    both several times slower.  ``0 * inf`` is NaN, so a non-finite *tangent or cotangent*
    entry spreads NaN over its plane's derivative where PyTorch keeps it to the window's
    cells; finite ones give PyTorch's gradient.
    """

    return _linear(lambda x: _stored(_window_sum(x, tables, tiled, {})),
                   tangent=lambda t: _window_sum(t, tables, tiled, dotted))(x)


def _stored(y):
    """``y`` itself (floating point), computed by a loop of its own and written once.

    When a result has two consumers (the output and, in a backward pass, the next op's
    derivative), XLA duplicates cheap producers into both and writes their operands out
    instead: every gathered tap of a window sum became an input-sized buffer.  An integer
    remainder is never duplicated, so the sum is written once.  The remainder by the largest
    unsigned value is the identity except on the all-ones bit pattern, a NaN, so NaNs are
    made canonical first (PyTorch's NaN payloads are not part of its results).
    """
    unsigned = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(y.dtype).itemsize]
    y = jnp.where(jnp.isnan(y), np.array(np.nan, y.dtype), y)
    bits = lax.bitcast_convert_type(y, unsigned)
    bits = lax.rem(bits, np.array(np.iinfo(unsigned).max, unsigned))
    return lax.bitcast_convert_type(bits, y.dtype)


def _sum_tiled(x, tables, tiled):
    """Window sums over the axes whose windows tile the input (``(first, stop)`` per axis).

    The tangent (so the gradient, a broadcast) is always a reshape-reduce of tiles; the
    values are computed the way XLA:CPU does fastest (docs/performance.md, item 4):

    * at most ``MAX_UNROLLED_TAPS`` N-d taps: a sum of strided slices, one per tap in
      PyTorch's row-major order.  XLA:CPU reduces a reshape's size-2..4 minor axes by a
      scalar loop: 2x2 tiles of (32, 512, 14, 14) took 8-10 ms as a reshape-reduce and
      0.5-2.5 ms as four slices (whose own transpose, a sum of interior pads, is slower than
      the reshape's broadcast);
    * one window over every trailing axis (global pooling), floating point: a matrix-vector
      product with ones, 25-30% faster than the row reduction for (64, 2048, 7, 7);
    * otherwise the reshape-reduce.
    """
    for axis, (first, stop) in tiled.items():
        x = lax.slice_in_dim(x, first, stop, 1, axis)
    axes = sorted(tiled)
    taps = math.prod(tables[a].max_length for a in axes)
    if taps <= MAX_UNROLLED_TAPS:
        values = functools.partial(_sum_tile_slices, tables=tables, axes=axes)
    elif (axes == list(range(x.ndim - len(axes), x.ndim)) and jnp.issubdtype(x.dtype, jnp.floating)
          and all(tables[a].output_size == 1 for a in axes)):
        values = functools.partial(_sum_trailing_by_dot, axes=len(axes))
    else:
        return _reshape_sum(x, tables, tiled)

    return _linear(values, tangent=lambda t: _reshape_sum(t, tables, tiled))(x)


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
    regular windows take the tangent's taps from stride phases (:func:`_sum_phase_taps`):
    a strided slice transposes to an interior pad that XLA writes out per tap (3-d
    17 -> 4 forward+backward: 2.4 -> 1.0 ms, torch 2.2; LP 3x3/2: 10.4 -> 7.1 ms).  The
    values take irregular taps as slice pieces along the minor (last) axis, where XLA:CPU
    writes a gather index-major and transposes it back (33 -> 7: 4.6 -> 1.5 ms forward),
    and gather them along the other axes, where slice pieces would be recomputed per tap.
    """
    if _regular(w):
        if _step(w) == 1 or w.max_length > MAX_UNROLLED_TAPS:  # taps are shifts: pads transpose well
            return _sum_taps(x, w, axis, pieces=True)
        return _linear(lambda x: _sum_taps(x, w, axis, pieces=True),
                       tangent=lambda t: _sum_phase_taps(t, w, axis))(x)
    minor = axis == x.ndim - 1
    return _linear(lambda x: _sum_taps(x, w, axis, pieces=minor),
                   tangent=lambda t: _sum_taps(t, w, axis, pieces=True))(x)


def _linear(values, tangent):
    """The linear map ``values``, differentiated as ``tangent``: the same map written for
    XLA to transpose well (the gradient is the transpose of ``tangent``)."""

    @jax.custom_jvp
    def f(x):
        return values(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        return f(primals[0]), tangent(tangents[0])

    return f


def _differentiated_as(values, reference):
    """``values``, differentiated as ``reference``, which computes the same numbers another
    way (the fastest forward, the derivative of the form whose gradient is cheapest)."""

    @jax.custom_jvp
    def f(x):
        return values(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        return jax.jvp(reference, primals, tangents)

    return f


def _sum_phase_taps(t, w: AxisWindows, axis: int):
    """Linear in ``t``: window sums of a regular axis from its stride phases
    (:func:`_phase_taps`), so the transpose interleaves the phases once."""
    total = None
    for j, tap in _phase_taps(t, {axis: w}, _reachable_taps({axis: w})).items():
        if not w.valid[:, j].all():
            tap = jnp.where(along(w.valid[:, j], axis, t.ndim), tap, 0)
        total = tap if total is None else total + tap
    return total


def _sum_taps(x, w: AxisWindows, axis: int, pieces: bool):
    if w.max_length > MAX_UNROLLED_TAPS:
        xw = _windowed(x, w.positions, axis, pieces=pieces)
        return jnp.sum(jnp.where(_window_table(w.valid, axis, x.ndim), xw, 0), axis=axis + 1)
    total = None
    for j in range(w.max_length):
        tap = _tap(x, w.positions[:, j], axis, pieces=pieces)
        if not w.valid[:, j].all():  # padding reads zero already; this masks ragged windows
            tap = jnp.where(along(w.valid[:, j], axis, x.ndim), tap, 0)
        total = tap if total is None else total + tap
    return total


# --------------------------------------------------------------------------------------- max


def window_max(
    x: jax.Array,
    tables: dict[int, AxisWindows],
    plane_strides: dict[int, int],
    index_dtype=None,
) -> tuple[jax.Array, jax.Array | None]:
    """Max of every window and, if ``index_dtype`` is given, its flat index in the plane.

    ``plane_strides[axis]`` is the flat-index stride of a spatial axis within one input plane
    (for NCHW: ``{3: 1, 2: W}``); irregular windows route their gradient by that index even
    when no index is returned (:func:`_values_routed_by_index`).  Indices follow PyTorch CPU:
    first maximum in row-major order, last NaN if any.  Every window must hold at least one
    in-bounds cell; the first one is always taken, so a window of ``-inf`` (or of the lowest
    integer) reports, and passes its gradient to, its first in-bounds cell, as PyTorch does.

    The fold runs on ``stop_gradient(x)``; the derivative is attached by :func:`_route` as
    "the tangent at the chosen tap", which transposes to one masked pad per tap (a masked
    (A plain ``lax.reduce_window`` or
    ``jnp.max`` forward is not used: XLA:CPU's vectorised max can drop a NaN; large axes
    reduce ``(value, position)`` pairs with PyTorch's rule instead, :func:`_max_large`.)

    The tables are :meth:`~jaxpool.windows.AxisWindows.trimmed` first: a tap out of bounds in
    every window is never chosen.
    """
    indexed = index_dtype is not None
    tables = {a: w.trimmed() for a, w in tables.items()}
    large = any(_large(w) for w in tables.values())
    if not large and _folds_directly(tables, x.ndim):
        return _max_direct(x, tables, plane_strides, index_dtype)
    if not large and _index_major_first(tables):
        if indexed:
            return _max_major_first(x, tables, plane_strides, index_dtype)
        if jnp.issubdtype(x.dtype, jnp.floating) and _plane_size(x, tables) < 2**31:
            return _values_routed_by_index(x, tables, plane_strides), None
    best, index = x, None
    for n, (axis, w) in enumerate(sorted(tables.items(), reverse=True)):
        if n and index is not None:
            index = _kept(index)  # and the values, inside _max_axis (not their gradient path)
        stride = plane_strides[axis] if indexed else None
        if _large(w):
            best, index = _max_large(best, index, w, axis, stride, index_dtype)
        elif w.max_length > MAX_UNROLLED_TAPS:
            best, index = _max_axis_windowed(best, index, w, axis, stride, index_dtype)
        else:
            best, index = _max_axis(best, index, w, axis, stride, index_dtype, keep=bool(n and index is not None))
    return best, index


def _index_major_first(tables: dict[int, AxisWindows]) -> bool:
    """Whether max and index fold the major axes first (:func:`_max_major_first`): windows
    irregular along some axis (adaptive ``in % out != 0``) and short along all."""
    return any(not _regular(w) for w in tables.values()) and all(
        w.max_length <= MAX_UNROLLED_TAPS for w in tables.values())


def _max_major_first(x, tables, plane_strides, index_dtype):
    """Max and flat index of irregular windows, the major axes first and the minor axis last.

    The first axis folds the whole input, and along a major axis a tap is a run of whole rows;
    folding the minor axis first (gathers across each row) was about twice as slow (33 -> 5:
    20 -> 10 ms).  PyTorch's pick is the maximum of a total order, "NaN above all values,
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
    plane = _plane_size(x, tables)
    for axis in axes[1:]:
        value, index = _kept(value), _kept(index)  # else XLA redoes the last fold per tap
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
    pieces, is several times slower (33 -> 5: the first fold 3-4 -> 1.4 ms, the minor axis
    with indices 4.5 -> 1.5 ms).  Many windows take each tap for all of them at once, as a
    slice where it is one and a gather otherwise.
    """
    last = w.starts + w.lengths - 1
    if (w.starts < 0).any() or (last >= w.input_size).any():
        raise AssertionError("_per_window takes windows without padding")
    cell_dtype = _position_dtype(w.input_size)
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
    taps = [tuple(_tap(a, positions[:, j], axis, pieces=False) for a in arrays)
            for j in range(w.max_length)]
    cells = [along(positions[:, j].astype(cell_dtype), axis, ndim) for j in range(w.max_length)]
    return reduce(taps, cells, lambda a: a)


def _scan_fold(x, w: AxisWindows, axis: int):
    """``(value, position along axis)`` of every window's cell by PyTorch's scan rule,
    ``val > best or isnan(val)``: the first maximum, the last NaN."""

    def reduce(taps, cells, part):
        (best,), cell = taps[0], jnp.broadcast_to(cells[0], taps[0][0].shape)
        for (tap,), here in zip(taps[1:], cells[1:]):
            take = _scan_takes(tap, best)
            best, cell = jnp.where(take, tap, best), jnp.where(take, here, cell)
        return best, cell

    return _per_window((x,), w, axis, reduce)


def _match_fold(value, index, w: AxisWindows, axis: int, plane: int):
    """``(value, flat index)`` of every window's cell along a later axis: its taps' maximum
    value, then among the taps holding it the smallest flat index (the largest if the
    maximum is NaN), PyTorch's total order (see :func:`_max_major_first`).

    ``value``/``index`` are the earlier axes' choice at every cell.  The index is picked
    without selects, as ``max((plane - order) * hit)`` with ``order`` the index (or its
    mirror ``plane - 1 - index`` for NaN windows): XLA:CPU vectorises integer arithmetic
    here, where a float comparison feeding an integer select was four times slower.
    """
    (best,) = _per_window((value,), w, axis, _scan_values)
    nan_window = jnp.isnan(best)
    top = np.asarray(plane, index.dtype)

    def order(i, mirror):  # i, or plane - 1 - i where mirror is all ones
        return i + (mirror & ((top - 1 - i) - i))

    def reduce(taps, cells, part):
        m, nan_m = part(best), part(nan_window)
        mirror = -nan_m.astype(index.dtype)
        found = None
        for v, i in taps:
            hit = ((v == m) | (nan_m & jnp.isnan(v))).astype(index.dtype)
            score = (top - order(i, mirror)) * hit
            found = score if found is None else jnp.maximum(found, score)
        return (found,)

    (found,) = _per_window((value, index), w, axis, reduce)
    return best, order(top - found, -nan_window.astype(index.dtype))


def _scan_values(taps, cells, part):
    """The maximum of the taps by PyTorch's scan rule (NaN wins), as a 1-tuple."""
    (best,) = taps[0]
    for (tap,) in taps[1:]:
        best = jnp.where(_scan_takes(tap, best), tap, best)
    return (best,)


def _scan_takes(tap, best):
    """PyTorch's scan rule, where a tap replaces the best so far: ``val > best or isnan(val)``
    (the first maximum, the last NaN; no NaN test for integers)."""
    take = tap > best
    return take | jnp.isnan(tap) if jnp.issubdtype(tap.dtype, jnp.floating) else take


def _plane_size(x, tables) -> int:
    return math.prod(x.shape[a] for a in tables)


def _values_routed_by_index(x, tables, plane_strides):
    """Values only, for the windows of :func:`_max_major_first`: the plain folds forward
    (minor axis first, one output per fold: the fastest forward), and as derivative that of
    :func:`_max_major_first`, whose gradient is one scatter-add at the flat indices."""

    def values(x):
        best = x
        for axis, w in sorted(tables.items(), reverse=True):
            best = _max_axis(best, None, w, axis, None, None)[0]
        return best

    def routed(x):
        return _max_major_first(x, tables, plane_strides, np.int32)[0]

    return _differentiated_as(values, routed)(x)


def _route_at_index(x, best, index, axes):
    """``best`` (computed from ``stop_gradient(x)``) with the derivative of "``x`` at
    ``index``", the flat offset of every window's chosen cell in its plane (the spatial
    ``axes``, contiguous).  The tangent is a gather; its transpose, the gradient, is one
    scatter-add of the output-sized cotangent into each plane, as PyTorch's backward: XLA:CPU
    scatters 200k updates into a 35 MB gradient in 2-5 ms more than it takes to write the
    zeros, where routing per axis computed every input cell from the cotangent (33 -> 5 with
    indices: forward+backward 29-56 -> 27-40 ms, torch 23-33).
    """
    return _route(x, best, index, functools.partial(_at_flat_index, axes=axes))


def _at_flat_index(t, index, axes):
    """Linear in ``t``: ``t`` at every window's flat in-plane ``index`` (``axes`` contiguous).

    A batched gather per plane, so GSPMD partitions it (and its scatter) over batch and
    channels.  Flattening ``t`` whole made the scatter 2-5 ms cheaper on one CPU device
    (one index per update instead of three), but under a batch split GSPMD all-gathers
    a flat operand.
    """
    first, n = axes[0], len(axes)

    def flat(a):
        return a.reshape(a.shape[:first] + (-1,) + a.shape[first + n :])

    picked = jnp.take_along_axis(flat(t), flat(index), axis=first, mode="promise_in_bounds")
    return picked.reshape(index.shape)


def _folds_directly(tables: dict[int, AxisWindows], ndim: int) -> bool:
    """Whether to fold the whole N-d window at once (see :func:`_max_direct`): regular windows
    (fixed pools; adaptive ``out | in``) with few N-d taps, or up to
    ``MAX_PADDED_FOLD_TAPS`` where they are read from one padded copy (:func:`_fold_padded`)."""
    limit = MAX_PADDED_FOLD_TAPS if _padded_once(tables, {}, ndim) else MAX_UNROLLED_TAPS
    return all(_regular(w) for w in tables.values()) and math.prod(
        w.max_length for w in tables.values()) <= limit


def _max_direct(x, tables, plane_strides, index_dtype):
    """Max and index of small regular windows, folding all ``prod(kernel)`` taps at once.

    The taps are visited in row-major order and folded with PyTorch's own scan rule, which is
    exactly PyTorch's loop; no per-axis intermediate is written, so the only buffers are the
    output, the chosen tap numbers and, in a backward pass, the gradient (an intermediate the
    size of the input after one axis costs its page faults on every call on XLA:CPU).
    The fold runs block by block over windows with the same in-bounds taps
    (:func:`_fold_blocks`), so no tap is padded: ResNet's 3x3/2 with padding 1 forward
    3.3-3.5 ms on a quiet machine, where the axis-by-axis fold took 9.6-9.9 ms (its padded
    taps and its first axis' result written out).  Stride-1 windows padded along the minor
    axis, whose blocks would be concatenated along it, read one padded copy of the input
    instead (:func:`_fold_padded`).  Windows that tile every axis route the gradient by a masked reshape
    (:func:`_chosen_tiled_taps`); other regular windows by stride phases
    (:func:`_chosen_phase_taps`), reading the values again at the choice so that XLA writes
    the choice once instead of redoing the fold inside the gradient's loop (forward+backward
    170 ms without), and interleaving the phases once where per-tap strided slices would
    transpose to interior pads that every input cell evaluates.
    """
    axes = sorted(tables)
    combos = _reachable_taps(tables)
    if _padded_once(tables, {}, x.ndim):  # stride-1 windows padded along the minor axis
        padded = [a for a in axes if _pads(tables[a])]
        best, chosen = _fold_padded(lax.stop_gradient(x), tables, combos, padded)
        read = functools.partial(_read_padded_taps, tables=tables, taps=combos, axes=padded)
    else:
        best, chosen = _fold_blocks(lax.stop_gradient(x), tables, combos)
        read = functools.partial(_read_block_taps, tables=tables, taps=combos)
    chosen = _materialised(chosen, math.prod(tables[a].max_length for a in axes))
    index = None
    if index_dtype is not None:
        index = jnp.zeros((), index_dtype)
        rest = chosen
        for a in reversed(axes):  # decode the row-major tap number, last axis first
            w = tables[a]
            j = rest % np.int32(w.max_length)
            rest = rest // np.int32(w.max_length)
            cell = jnp.asarray(along(w.starts, a, x.ndim), index_dtype) + (
                j.astype(index_dtype) * np.asarray(w.dilation, index_dtype))  # int32 wraps past 2**31
            index = index + cell * np.asarray(plane_strides[a], index_dtype)
    if jnp.issubdtype(x.dtype, jnp.floating):
        if all(_tiling(w) is not None for w in tables.values()):
            best = _route(x, best, chosen, functools.partial(_chosen_tiled_taps, tables=tables))
        else:
            best = _route(x, best, chosen, functools.partial(_chosen_phase_taps, tables=tables, taps=combos),
                          read=read)
    return best, index


def _fold_blocks(x, tables: dict[int, AxisWindows], combos: dict[int, tuple[int, ...]]):
    """``(max, row-major tap number)`` of every N-d window by PyTorch's scan rule, folded over
    blocks of windows whose in-bounds taps are the same (:func:`_by_blocks`)."""

    dtype = _choice_dtype(math.prod(w.max_length for w in tables.values()))

    def fold(taps, part):
        (t, best), rest = taps[0], taps[1:]
        return _scan_taps(best, jnp.full(best.shape, t, dtype), rest)

    return _by_blocks(x, tables, combos, fold)


def _scan_taps(best, chosen, taps):
    """Fold ``(row-major tap number, tap)`` pairs into ``(best, chosen)`` by PyTorch's scan rule."""
    for t, tap in taps:
        take = _scan_takes(tap, best)
        best, chosen = jnp.where(take, tap, best), jnp.where(take, chosen.dtype.type(t), chosen)
    return best, chosen


def _fold_padded(x, tables: dict[int, AxisWindows], combos: dict, axes):
    """``(max, row-major tap number)`` of every N-d window by PyTorch's loop, every tap a plain
    slice of one copy of ``x`` padded along ``axes`` with the dtype's lowest value.

    As PyTorch does, the fold starts from the lowest value and each window's first in-bounds
    tap, and takes a tap when ``val > best or isnan(val)``; a padded tap holds the lowest
    value and is never taken, so a window of ``-inf`` keeps its first in-bounds cell.  Used
    where :func:`_padded_once` pads a sum: the blocks of :func:`_fold_blocks` are then
    concatenated along the minor axis, and XLA:CPU writes the blocks out and then copies
    them (3x3/1/1 of (16, 64, 112, 112), warm allocator, interleaved: forward 21 -> 11.6 ms,
    forward+backward 152 -> 36 ms; docs/performance.md, item 14).
    """
    dims = sorted(tables)
    dtype = _choice_dtype(math.prod(tables[a].max_length for a in dims))
    first = np.zeros((), np.int64)
    for a in dims:  # the row-major number of each window's first in-bounds N-d tap
        first = first * tables[a].max_length + along(_first_valid_tap(tables[a]), a, x.ndim)
    taps = _lowest_padded_taps(x, tables, combos, axes)
    chosen = jnp.broadcast_to(jnp.asarray(first.astype(dtype)), taps[0][1].shape)
    return _scan_taps(jnp.full(taps[0][1].shape, lowest(x.dtype), x.dtype), chosen, taps)


def _lowest_padded_taps(x, tables: dict[int, AxisWindows], combos: dict, axes) -> list:
    """``[(row-major tap number, tap)]`` of the ``combos``, each one strided slice of ``x``
    padded once along ``axes`` with the dtype's lowest value."""
    xp, shifted = _padded_input(x, tables, axes, fill=lowest(x.dtype))
    whole = {a: (0, w.output_size) for a, w in shifted.items()}
    return [(t, _tap_slice(xp, shifted, combo, whole)) for t, combo in combos.items()]


def _read_padded_taps(x, chosen, tables: dict[int, AxisWindows], taps: dict, axes):
    """``x`` at every window's ``chosen`` N-d tap, from the taps of :func:`_fold_padded`."""
    return _select_chosen(chosen, _lowest_padded_taps(x, tables, taps, axes))


def _read_block_taps(x, chosen, tables: dict[int, AxisWindows], taps: dict):
    """``x`` at every window's ``chosen`` N-d tap (a chain of selects over the blocks of
    :func:`_by_blocks`, so no padded copy of ``x`` is made)."""

    def read(block_taps, part):
        return (_select_chosen(part(chosen), block_taps),)

    return _by_blocks(x, tables, taps, read)[0]


def _select_chosen(chosen, taps):
    """The tap numbered ``chosen`` of ``(row-major tap number, tap)`` pairs, as a chain of
    selects (``chosen`` is always one of the numbers)."""
    (_, best), rest = taps[0], taps[1:]
    for t, tap in rest:
        best = jnp.where(chosen == t, tap, best)
    return best


def _by_blocks(x, tables: dict[int, AxisWindows], combos: dict, reduce):
    """``reduce(taps, part)`` over blocks of windows with the same in-bounds taps, concatenated.

    Along every axis the windows split into runs with one pattern of in-bounds taps (the
    padded windows at either end, the interior ones between).  Within a block, a product of
    such runs, every tap in bounds is one strided slice of ``x`` for all its windows, and
    the first of them is each window's first in-bounds cell: ``taps`` lists ``(row-major tap
    number, slice)`` for those taps in order, so a scan needs neither masks nor padded taps;
    ``part(a)`` is an output-sized ``a``'s block.  Padding a tap instead made XLA:CPU write
    every padded tap out (ResNet's 3x3/2 with padding 1: five 13 MB temporaries per call,
    each a fresh allocation whose pages fault in).
    """
    axes = sorted(tables)

    def block_taps(block):  # block: {axis: (first window, stop)}
        return [(t, _tap_slice(x, tables, combo, block)) for t, combo in combos.items()
                if all(tables[a].valid[block[a][0], j] for a, j in zip(axes, combo))]

    def part_of(block):
        def part(a):
            start, limit = [0] * a.ndim, list(a.shape)
            for axis, (first, stop) in block.items():
                start[axis], limit[axis] = first, stop
            return lax.slice(a, start, limit)
        return part

    def assemble(done: dict, rest: list):  # nested concatenation, the first axis outermost
        if not rest:
            return reduce(block_taps(done), part_of(done))
        axis = rest[0]
        parts = [assemble({**done, axis: run}, rest[1:]) for run in _runs_of_pattern(tables[axis])]
        if len(parts) == 1:
            return parts[0]
        return tuple(jnp.concatenate(p, axis) for p in zip(*parts))

    return assemble({}, axes)


def _tap_slice(x, tables: dict[int, AxisWindows], combo, block):
    """N-d tap ``combo`` of the windows ``block`` (``{axis: (first, stop)}``) as one strided
    slice of ``x`` (every one of those taps in bounds)."""
    start, limit, strides = [0] * x.ndim, list(x.shape), [1] * x.ndim
    for a, j in zip(sorted(tables), combo):
        pos = tables[a].positions[block[a][0]:block[a][1], j]
        start[a], limit[a], strides[a] = int(pos[0]), int(pos[-1]) + 1, _is_progression(pos)
    return lax.slice(x, start, limit, strides)


def _runs_of_pattern(w: AxisWindows) -> list[tuple[int, int]]:
    """``(first, stop)`` ranges of consecutive windows with the same in-bounds taps."""
    if w.output_size == 0:
        return []
    cuts = np.flatnonzero(np.any(w.valid[1:] != w.valid[:-1], axis=1)) + 1  # vectorised: O(out)
    bounds = [0, *cuts.tolist(), w.output_size]
    return list(zip(bounds[:-1], bounds[1:]))


def _reachable_taps(tables: dict[int, AxisWindows]) -> dict[int, tuple[int, ...]]:
    """``{row-major tap number: per-axis taps}`` of the N-d taps some window has in bounds (a
    dilated tap can lie in the padding of every window)."""
    axes = sorted(tables)
    combos = itertools.product(*(range(tables[a].max_length) for a in axes))
    return {t: c for t, c in enumerate(combos)
            if all(tables[a].valid[:, j].any() for a, j in zip(axes, c))}


def _step(w: AxisWindows) -> int:
    """Distance between consecutive windows of a regular axis (1 for a single window)."""
    return _is_progression(w.starts)


def _chosen_phase_taps(t, chosen, tables: dict[int, AxisWindows], taps: dict):
    """Linear in ``t``: every window's value of ``t`` at its ``chosen`` N-d tap (a key of
    ``taps``, see :func:`_reachable_taps`), for regular windows.

    Built from :func:`_phase_taps`, so the transpose (the gradient) assembles each stride
    phase of the input from shifted, masked copies of the output-sized cotangent and
    interleaves the phases once.  A strided slice per tap transposes to an interior pad per
    tap instead, and every input cell evaluates every one of those pads.
    """
    total = None
    for n, tap in _phase_taps(t, tables, taps).items():
        tap = jnp.where(chosen == n, tap, jnp.zeros((), t.dtype))
        total = tap if total is None else total + tap
    return total


def _phase_taps(t, tables: dict[int, AxisWindows], taps: dict) -> dict:
    """``{n: t at N-d tap taps[n] of every window}`` (zero outside ``t``) of regular windows.

    ``t`` is split into its stride phases, ``phase[r][m] = t[m*stride + r]`` along every
    pooled axis: one pad up to a whole number of strides, a reshape, a transpose that brings
    the phase axes to the front, and a split.  Tap ``j`` of window ``o`` lies at
    ``o*stride + c`` with ``c = positions[0, j] = q*stride + r``, so it is phase ``r`` shifted
    by ``q`` windows: a pad (or slice) of an output-sized array.
    """
    axes = sorted(tables)
    steps = {a: _step(tables[a]) for a in axes}
    counts = {a: -(-t.shape[a] // steps[a]) for a in axes}  # cells per phase
    config, split_shape, phase_dims, other_dims = [(0, 0, 0)] * t.ndim, [], [], []
    for d in range(t.ndim):
        if d in tables:
            config[d] = (0, counts[d] * steps[d] - t.shape[d], 0)
            other_dims.append(len(split_shape))
            phase_dims.append(len(split_shape) + 1)
            split_shape += [counts[d], steps[d]]
        else:
            other_dims.append(len(split_shape))
            split_shape.append(t.shape[d])
    split = lax.pad(t, np.zeros((), t.dtype), config).reshape(split_shape)
    split = split.transpose(phase_dims + other_dims)
    n_phases = math.prod(steps.values())
    split = split.reshape((n_phases,) + split.shape[len(phase_dims):])
    phases = [p.reshape(p.shape[1:]) for p in lax.split(split, [1] * n_phases, axis=0)]
    result = {}
    for n, combo in taps.items():
        phase, shift = 0, [(0, 0, 0)] * t.ndim
        for a, j in zip(axes, combo):
            w = tables[a]
            q, r = divmod(int(w.positions[0, j]), steps[a])
            phase = phase * steps[a] + r
            shift[a] = (-q, w.output_size - counts[a] + q, 0)
        result[n] = lax.pad(phases[phase], np.zeros((), t.dtype), shift)
    return result


def _chosen_tiled_taps(t, chosen, tables: dict[int, AxisWindows]):
    """Linear in ``t``: every window's value of ``t`` at its chosen N-d tap (row-major tap
    number), for windows that tile every axis.  ``t`` is reshaped to ``(..., out, taps, ...)``
    per axis, so the transpose (the gradient) is one select and reshape, no pad per tap."""
    shape, tap_axes, tap_number = [], [], 0
    for a in range(t.ndim):
        if a in tables:
            w = tables[a]
            first, stop = _tiling(w)
            t = lax.slice_in_dim(t, first, stop, 1, a)
            shape += [w.output_size, w.max_length]
            tap_axes.append(len(shape) - 1)
        else:
            shape.append(t.shape[a])
    for k in tap_axes:
        tap_number = tap_number * shape[k] + lax.broadcasted_iota(np.int32, shape, k)
    hit = jnp.expand_dims(chosen, tap_axes) == tap_number
    picked = jnp.where(hit, t.reshape(shape), jnp.zeros((), t.dtype))
    return jnp.sum(picked, axis=tuple(tap_axes), dtype=t.dtype)


def _materialised(chosen, taps: int):
    """``chosen`` itself, behind an op XLA will not duplicate into its consumers.

    XLA fuses a cheap producer into every consumer that reads it, so a gradient loop that reads
    a window's choice once per input cell would redo the whole tap fold per cell.  An integer
    remainder (the identity here: ``0 <= chosen < taps``) counts as expensive, which keeps the
    fold in its own loop that writes the choices once.

    The choice is stored as ``int8`` when the tap count allows (every unrolled fold does): it
    is the only temporary of a fixed max pool's forward+backward, and a fresh buffer costs its
    page faults on every call (ResNet's 3x3/2 of (16, 64, 112, 112): 12.2 -> 3.1 MiB; the
    consumers widen it inside their own loops).
    """
    divisor = taps + 1
    while divisor & (divisor - 1) == 0:  # XLA rewrites a power-of-two remainder as a cheap `and`
        divisor += 1
    dtype = _choice_dtype(taps)
    return lax.rem(chosen.astype(dtype), dtype(divisor))


def _choice_dtype(taps: int):
    """The integer type of a tap number below ``taps`` (and of :func:`_materialised`'s
    divisor, at most ``taps + 2``): ``int8`` up to ``MAX_PADDED_FOLD_TAPS`` (100) taps, which
    every unrolled fold is."""
    return np.int8 if taps <= MAX_PADDED_FOLD_TAPS else np.int32


def _kept(a):
    """``a`` itself, computed once: split into 16-bit halves behind an integer remainder.

    Like :func:`_materialised`: the next axis gathers its taps from this axis' result, and
    XLA would otherwise fuse (and redo) this axis' whole fold inside each of those gathers.
    """
    if np.dtype(a.dtype).itemsize != 4:  # 32-bit values and indices (the common case) only
        return a
    u = lax.bitcast_convert_type(a, np.uint32)
    hi = lax.rem(lax.shift_right_logical(u, np.uint32(16)), np.uint32(65537))
    lo = lax.rem(u & np.uint32(0xFFFF), np.uint32(65537))
    return lax.bitcast_convert_type(lax.shift_left(hi, np.uint32(16)) | lo, a.dtype)



def _first_valid_tap(w: AxisWindows) -> np.ndarray:
    """``(out,)`` number of the first in-bounds tap of each window."""
    return w.first_taps


def _max_axis(x, index, w, axis, stride, index_dtype, keep=False):
    """Fold the taps of one axis with PyTorch's ``val > best || isnan(val)`` rule."""
    xs = lax.stop_gradient(x)
    xp = _kept(xs) if keep else xs
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if not _regular(w):
        if stride is None and index is None and floating:
            return _irregular_values(x, w, axis, keep), None
        return _irregular_max(x, xp, index, w, axis, stride, index_dtype)
    chosen, best, best_index = _fold(xp, w, axis, index)
    chosen = _materialised(chosen, w.max_length)
    if stride is not None:  # the chosen cell's offset along this axis, plus the earlier axes'
        offset = _chosen_cell(chosen, w, axis, index_dtype) * np.asarray(stride, index_dtype)
        best_index = offset if index is None else best_index + offset
    if floating:
        best = _route(x, best, chosen, functools.partial(_chosen_taps, w=w, axis=axis, windowed=False))
    return best, best_index


def _chosen_cell(chosen, w: AxisWindows, axis: int, dtype=None):
    """Position along the axis of every window's chosen tap, in ``dtype`` (default: int32, or
    int64 for an axis too long for int32 positions)."""
    dtype = _position_dtype(w.input_size) if dtype is None else dtype
    return jnp.asarray(along(w.starts, axis, chosen.ndim), dtype) + chosen.astype(dtype) * np.asarray(w.dilation, dtype)


def _position_dtype(size: int):
    """int32 for positions along an axis of ``size`` cells while they fit, else int64 (an axis
    that long is indexed only under x64: :func:`jaxpool._args.index_dtype`)."""
    return np.int32 if size <= np.iinfo(np.int32).max else np.int64


def _irregular_max(x, xp, index, w, axis, stride, index_dtype):
    """Irregular windows (adaptive; every tap a gather): fold only the chosen tap, then read the
    value and the earlier axes' index at the chosen cell.  A fold with one output is one fused
    loop; with several, XLA:CPU writes every gathered tap out as an input-sized buffer."""
    chosen = _materialised(_fold(xp, w, axis, None)[0], w.max_length)
    cell = _chosen_cell(chosen, w, axis, index_dtype)
    best = jnp.take_along_axis(xp, cell, axis=axis, mode="clip")
    best_index = None
    if stride is not None:
        best_index = cell * np.asarray(stride, index_dtype)
        if index is not None:
            best_index = best_index + jnp.take_along_axis(index, cell, axis=axis, mode="clip")
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _route(x, best, chosen, functools.partial(_chosen_taps, w=w, axis=axis, windowed=False))
    return best, best_index


def _irregular_values(x, w, axis, keep):
    """Values only, irregular windows: the plain fold forward (one output, one fused loop);
    its derivative folds the chosen tap instead (:func:`_irregular_max`)."""

    def folded(x):
        xs = lax.stop_gradient(x)
        return _kept(xs) if keep else xs

    def values(x):
        return _fold(folded(x), w, axis, None)[1]

    def routed(x):
        return _irregular_max(x, folded(x), None, w, axis, None, None)[0]

    return _differentiated_as(values, routed)(x)


def _fold(xp, w, axis, index):
    """``(chosen tap, value, earlier axes' index)`` of every window by PyTorch's scan rule.

    ``index`` (the earlier axes' index, or None) is carried through the fold when given.
    """
    first = _first_valid_tap(w)
    best = best_index = chosen = None
    for j in range(w.max_length):
        pos = w.positions[:, j]
        tap = _tap(xp, pos, axis, pieces=False)
        tap_index = None if index is None else _tap(index, pos, axis, pieces=False)
        if best is None:  # tap 0 is each window's first valid tap, or replaced below
            best, best_index, chosen = tap, tap_index, jnp.zeros(tap.shape, np.int32)
            continue
        take = _scan_takes(tap, best)
        if not w.valid[:, j].all():
            take = take & along(w.valid[:, j], axis, xp.ndim)
        if (first == j).any():
            take = take | along(first == j, axis, xp.ndim)
        best = jnp.where(take, tap, best)
        chosen = jnp.where(take, np.int32(j), chosen)
        if tap_index is not None:
            best_index = jnp.where(take, tap_index, best_index)
    return chosen, best, best_index


def _max_axis_windowed(x, index, w, axis, stride, index_dtype):
    """Long windows: take them into an extra axis, pick the tap with a variadic reduce."""
    positions = w.positions
    xw = _windowed(lax.stop_gradient(x), positions, axis, pieces=False)
    taps = w.max_length
    tap_no = lax.broadcasted_iota(jnp.int32, xw.shape, axis + 1)
    valid = _window_table(w.valid, axis, x.ndim)
    # Invalid taps lose every comparison: lowest value and a tap number past the end.  A
    # valid window always picks a valid tap, so the reduced value is the chosen cell's.
    values = jnp.where(valid, xw, lowest(xw.dtype))
    tap_no = jnp.where(valid, tap_no, taps)
    best, chosen = lax.reduce(
        (values, tap_no), (lowest(xw.dtype), np.int32(taps)), _torch_argmax_combine, (axis + 1,)
    )
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _route(x, best, chosen, functools.partial(_chosen_taps, w=w, axis=axis, windowed=True))
    if stride is None:
        return best, None
    tap_index = jnp.asarray(_window_table(w.positions * stride, axis, x.ndim), index_dtype)
    if index is not None:
        tap_index = tap_index + _windowed(index, positions, axis, pieces=False)
    hit = lax.broadcasted_iota(jnp.int32, xw.shape, axis + 1) == jnp.expand_dims(chosen, axis + 1)
    picked = jnp.sum(jnp.where(hit, tap_index, 0), axis=axis + 1, dtype=index_dtype)
    return best, picked


def _route(x, best, chosen, taps_at, read=None):
    """``best`` (computed from ``stop_gradient(x)``) with the derivative of a max over ``x``.

    The tangent of a window max is the tangent of the chosen tap: ``taps_at(t, chosen)``,
    linear in ``t``.  Written as a custom JVP, reverse mode transposes it to
    ``where(chosen == j, g, 0)`` placed by a pad per tap (or one masked reshape), so the
    gradient reaches exactly the recorded cell (ties and NaN included) at the cost of the
    forward pass, and forward mode works too.

    ``read(x, chosen)``, if given, recomputes the values from the choice where the program
    differentiates: the choice then has a second consumer besides the gradient, so XLA
    writes it once (:func:`_materialised`) instead of redoing the fold inside the gradient's
    loop for every tap that reads it.
    """

    @jax.custom_jvp
    def routed(x, best, chosen):
        return best

    @routed.defjvp
    def routed_jvp(primals, tangents):
        # The primal output is routed(...) again, not ``best``: ``best`` carries no derivative
        # (stop_gradient), and higher-order derivatives differentiate this rule itself.
        x, best, chosen = primals
        if read is not None:
            best = read(lax.stop_gradient(x), chosen)
        return routed(x, best, chosen), taps_at(tangents[0], chosen)

    return routed(x, best, chosen)


def _chosen_taps(x, chosen, w: AxisWindows, axis: int, windowed: bool):
    """Linear in ``x``: every window's value of ``x`` at its ``chosen`` tap."""
    if windowed or _tiling(w) is not None or not _regular(w):
        xw = _windowed(x, w.positions, axis)
        hit = lax.broadcasted_iota(chosen.dtype, xw.shape, axis + 1) == jnp.expand_dims(chosen, axis + 1)
        return jnp.sum(jnp.where(hit, xw, jnp.zeros((), x.dtype)), axis=axis + 1, dtype=x.dtype)
    total = None
    for j in range(w.max_length):
        tap = jnp.where(chosen == j, _tap(x, w.positions[:, j], axis), jnp.zeros((), x.dtype))
        total = tap if total is None else total + tap
    return total


def _torch_argmax_combine(a, b):
    """Associative form of PyTorch's scan rule over (value, tap number) pairs.

    NaN beats everything and the later NaN wins; otherwise the larger value wins and the
    earlier tap wins ties.
    """
    va, ia = a
    vb, ib = b
    if jnp.issubdtype(va.dtype, jnp.floating):
        a_nan, b_nan = jnp.isnan(va), jnp.isnan(vb)
        prefer_b = jnp.where(
            a_nan | b_nan,
            b_nan & (~a_nan | (ib > ia)),
            (vb > va) | ((vb == va) & (ib < ia)),
        )
    else:
        prefer_b = (vb > va) | ((vb == va) & (ib < ia))
    return jnp.where(prefer_b, vb, va), jnp.where(prefer_b, ib, ia)


# ------------------------------------------------------------------------------ large axes
#
# Axes whose tap tables would be large (see MAX_WINDOWED_ENTRIES, MAX_STATIC_WINDOWS): huge
# kernels, global windows over long axes, adaptive windows by the million.  Their cost is
# O(outputs + in-bounds taps) and no table of ``outputs * taps`` entries is built: regular
# windows are one ``lax.reduce_window`` (one ``lax.reduce`` for a single window), irregular
# ones gather ``(out, taps)`` cells whose positions are computed on the device from
# O(min(in, out)) constants (:func:`_device_ramp`), since a large constant costs XLA seconds
# to compile.  Max reduces ``(value, position)`` pairs with PyTorch's rule
# (:func:`_torch_argmax_combine`, a larger position being a later tap) and routes its
# derivative through the chosen cell (a gather, transposed to an output-sized scatter-add).


def _large(w: AxisWindows) -> bool:
    """Whether the axis is reduced without tap tables (:func:`_sum_large`, :func:`_max_large`)."""
    if w.max_length > MAX_UNROLLED_TAPS and w.output_size * w.max_length > MAX_WINDOWED_ENTRIES:
        return True
    return w.output_size > MAX_STATIC_WINDOWS and not _regular(w)


def _cell_dtype(w: AxisWindows):
    return np.int32 if w.input_size < 2**31 else np.int64


def _reduce_window_config(w: AxisWindows, x: jax.Array, axis: int):
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


def _whole_axis(w: AxisWindows) -> bool:
    """One window reading every cell of the axis (a global window): one plain reduction."""
    return w.output_size == 1 and w.dilation == 1 and int(w.inside_counts[0]) == w.input_size


@functools.partial(jax.jit, static_argnums=(1, 2))
def _sum_large(x: jax.Array, w: AxisWindows, axis: int) -> jax.Array:
    """Window sums of a large axis (padding adds zero); differentiated by JAX's own rules.

    Jitted (the table is static, cached tables are the same object), so an eager call compiles
    one program instead of dispatching every step over output-sized arrays."""
    if _whole_axis(w):
        return jnp.sum(x, axis=axis, keepdims=True, dtype=x.dtype)
    if w.uniform_stride() is not None:
        xs, dims, strides, padding, dilation = _reduce_window_config(w, x, axis)
        total = lax.reduce_window(xs, np.zeros((), x.dtype), lax.add, dims, strides, padding,
                                  window_dilation=dilation)
        return lax.slice_in_dim(total, 0, w.output_size, 1, axis)
    xw, _, tap_no, lengths = _irregular_windowed(x, w, axis)
    inside = tap_no < lengths
    return jnp.sum(jnp.where(inside, xw, jnp.zeros((), x.dtype)), axis=axis + 1, dtype=x.dtype)


@functools.partial(jax.jit, static_argnums=(2, 3, 4, 5))
def _max_large(x, index, w: AxisWindows, axis: int, stride, index_dtype):
    """Max (PyTorch's first maximum, last NaN) and index over a large axis (jitted as
    :func:`_sum_large`)."""
    xs = lax.stop_gradient(x)
    dtype = _cell_dtype(w)
    low = lowest(x.dtype)
    if _whole_axis(w) or w.uniform_stride() is not None:
        cells = lax.broadcasted_iota(dtype, xs.shape, axis)
        if _whole_axis(w):
            best, cell = lax.reduce((xs, cells), (low, dtype(np.iinfo(dtype).max)),
                                    _torch_argmax_combine, (axis,))
            best, cell = jnp.expand_dims(best, axis), jnp.expand_dims(cell, axis)
        else:
            xs, dims, strides, padding, dilation = _reduce_window_config(w, xs, axis)
            first = max(int(w.starts[0]), 0)
            cells = lax.slice_in_dim(cells, first, cells.shape[axis], 1, axis)
            # padding holds (lowest, largest position): it loses every comparison to an
            # in-bounds cell, even one of the lowest value (ties go to the earlier position)
            best, cell = lax.reduce_window((xs, cells), (low, dtype(np.iinfo(dtype).max)),
                                           _torch_argmax_combine, dims, strides, padding,
                                           window_dilation=dilation)
            best = lax.slice_in_dim(best, 0, w.output_size, 1, axis)
            cell = lax.slice_in_dim(cell, 0, w.output_size, 1, axis)
    else:
        xw, cells, _, _ = _irregular_windowed(xs, w, axis)
        best, cell = lax.reduce((xw, jnp.broadcast_to(cells.astype(dtype), xw.shape)), (low, dtype(np.iinfo(dtype).max)),
                                _torch_argmax_combine, (axis + 1,))
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _route(x, best, cell, functools.partial(_at_cell, axis=axis))
    if stride is None:
        return best, None
    offset = cell.astype(index_dtype) * np.asarray(stride, index_dtype)
    if index is not None:
        offset = offset + _at_cell(index, cell, axis)
    return best, offset


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
    if _large(w.trimmed()) and not _regular(w):
        return _device_counts(w, axis, ndim)
    return along(counts, axis, ndim)


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _device_counts(w: AxisWindows, axis: int, ndim: int):
    starts, lasts = _window_bounds(w)
    return (lasts - starts + 1).reshape([1] * axis + [w.output_size] + [1] * (ndim - axis - 1))
