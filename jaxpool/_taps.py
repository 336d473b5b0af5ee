"""Building blocks every executor shares: static takes, PyTorch's scan rule, the chosen-tap JVP.

Platform-neutral pieces of the algorithm over :class:`~jaxpool.windows.AxisWindows` tables:

* a *tap* ``j`` of an axis is the input at ``starts + j * dilation`` for every window, taken as
  one strided slice (an arithmetic progression), a few slices (periodic positions, runs) or a
  static gather (:func:`take_positions`); positions outside the input read zero;
* PyTorch's max scan rule ``val > best or isnan(val)`` (:func:`scan_takes`, :func:`scan_fold_axis`)
  and its associative form over ``(value, position)`` pairs (:func:`torch_argmax_combine`);
* the chosen-tap maps a max's derivative is made of (:func:`chosen_taps`, see
  :mod:`jaxpool._choices`), and the stride-phase split that lets their transpose avoid an
  interior pad per tap (:func:`phase_taps`);
* linear maps differentiated as another form of the same map (:func:`linear_as`).
"""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool.windows import AxisWindows


# Windows with more taps than this are reduced as a materialised axis, not tap by tap.
MAX_UNROLLED_TAPS = 16


# A static take is split into at most this many slices before falling back to a gather.
MAX_SLICE_PIECES = 48


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


def broadcast(value, shape) -> jax.Array:
    """``value`` (an array, a numpy table or scalar) broadcast to ``shape`` as numpy would."""
    if isinstance(value, jax.Array) and value.shape == tuple(shape):
        return value
    rank = np.ndim(value)
    return lax.broadcast_in_dim(value, tuple(shape), tuple(range(len(shape) - rank, len(shape))))


def select(which, on_true, on_false) -> jax.Array:
    """``jnp.where(which, on_true, on_false)`` for operands of one dtype, as one ``lax.select``.

    The executors select once per tap, and jnp's functions are jitted: a program compiled from
    scratch traces each anew per shape, which was most of a max route's trace time.  Unlike
    ``jnp.where`` nothing is promoted: two arrays must share a dtype (else lax's
    ``TypeError``), and a numpy or Python constant takes the array operand's dtype, which must
    hold it exactly.
    """
    dtype = next((v.dtype for v in (on_true, on_false) if isinstance(v, jax.Array)), None)
    if dtype is None:
        dtype = np.result_type(on_true, on_false)

    def operand(v):
        if isinstance(v, jax.Array):
            return v
        exact = np.asarray(v, dtype)
        if not np.array_equal(exact, v, equal_nan=True):
            raise TypeError(f"jaxpool: select constant {v!r} does not fit {np.dtype(dtype)}")
        return exact

    shape = lax.broadcast_shapes(np.shape(which), np.shape(on_true), np.shape(on_false))  # symbolic dims too
    return lax.select(broadcast(which, shape), broadcast(operand(on_true), shape), broadcast(operand(on_false), shape))


def along(values: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape a 1-d table so it broadcasts along ``axis`` of an ``ndim`` array."""
    shape = [1] * ndim
    shape[axis] = values.shape[0]
    return values.reshape(shape)


def window_table(table: np.ndarray, axis: int, ndim: int) -> np.ndarray:
    """Reshape an ``(out, taps)`` table to broadcast against a windowed array (see take_windows)."""
    return table.reshape([1] * axis + list(table.shape) + [1] * (ndim - axis - 1))


def progression_step(pos: np.ndarray) -> int | None:
    """Step of an increasing arithmetic progression (1 for a single element), else None."""
    if pos.shape[0] == 1:
        return 1
    step = int(pos[1] - pos[0])
    return step if step > 0 and np.all(np.diff(pos) == step) else None


def pad_widths(w: AxisWindows) -> tuple[int, int]:
    """``(lo, hi)``: the zeros to add on each side so every tap position is addressable
    (closed form: the least and greatest of ``starts + j * dilation``, ``j < max_length``)."""
    if w.output_size == 0:
        return 0, 0
    top = int(w.starts.max()) + (w.max_length - 1) * w.dilation
    return max(0, -int(w.starts.min())), max(0, top - (w.input_size - 1))


def padded_axis(x: jax.Array, w: AxisWindows, axis: int) -> tuple[jax.Array, int]:
    """Zero-pad ``x`` along ``axis`` so every tap position (padding included) is addressable."""
    lo, hi = pad_widths(w)
    if lo or hi:
        config = [(0, 0, 0)] * x.ndim
        config[axis] = (lo, hi, 0)
        x = lax.pad(x, np.zeros((), x.dtype), config)
    return x, lo


def take_positions(x: jax.Array, pos: np.ndarray, axis: int, *, pieces: bool = True) -> jax.Array:
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
    gather is computed once; folds are never differentiated (see :func:`jaxpool._choices.route_to_chosen`), so the
    slow scatter-add that would be a gather's gradient never appears.
    """
    step = progression_step(pos)
    if step is not None:
        return _progression(x, pos, step, axis)
    if not pieces:
        return _gather(x, pos, axis)
    phases, runs = _phases(pos), _runs(pos)
    if phases is not None and phases <= min(len(runs), MAX_SLICE_PIECES):
        parts = [take_positions(x, pos[r::phases], axis) for r in range(phases)]
        stacked = lax.concatenate([lax.expand_dims(p, (axis + 1,)) for p in parts], axis + 1)  # (..., n / q, q, ...): phase r in column r
        return lax.reshape(stacked, stacked.shape[:axis] + (pos.shape[0],) + stacked.shape[axis + 2 :])
    if len(runs) <= MAX_SLICE_PIECES:
        return _take_runs(x, runs, axis)
    return _gather(x, pos, axis)


def _gather(x: jax.Array, pos: np.ndarray, axis: int) -> jax.Array:
    """A static gather along ``axis``; positions outside the axis read 0."""
    inside = (pos >= 0) & (pos < x.shape[axis])
    taken = gather_along(x, np.clip(pos, 0, x.shape[axis] - 1), axis, mode=lax.GatherScatterMode.CLIP)
    if inside.all():
        return taken
    return select(along(inside, axis, x.ndim), taken, np.zeros((), x.dtype))


def gather_along(x: jax.Array, pos: np.ndarray, axis: int, *, mode, sorted_unique: bool = False) -> jax.Array:
    """``x`` at static positions ``pos`` along ``axis`` (``jnp.take``) as one ``lax.gather``;
    ``sorted_unique``: the positions increase strictly, so the transpose is a scatter to
    distinct cells."""
    dims = lax.GatherDimensionNumbers(offset_dims=tuple(d for d in range(x.ndim) if d != axis),
                                      collapsed_slice_dims=(axis,), start_index_map=(axis,))
    sizes = tuple(1 if d == axis else n for d, n in enumerate(x.shape))
    indices = np.asarray(pos, position_dtype(x.shape[axis])).reshape(-1, 1)
    return lax.gather(x, indices, dims, sizes, indices_are_sorted=sorted_unique, unique_indices=sorted_unique,
                      mode=mode)


def _progression(x: jax.Array, pos: np.ndarray, step: int, axis: int) -> jax.Array:
    """``x`` at the increasing progression ``pos``: one strided slice, zero outside the axis."""
    inside = np.flatnonzero((pos >= 0) & (pos < x.shape[axis]))
    if inside.size == 0:
        shape = list(x.shape)
        shape[axis] = pos.shape[0]
        return lax.full(shape, 0, x.dtype)
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
        if n % q == 0 and all(progression_step(pos[r::q]) is not None for r in range(q)):
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
            parts.append(lax.broadcast_in_dim(part, tuple(shape), tuple(range(part.ndim))))
        else:
            parts.append(_progression(x, first + step * np.arange(count), step, axis))
    return parts[0] if len(parts) == 1 else lax.concatenate(parts, axis)


def is_regular(w: AxisWindows) -> bool:
    """Whether every tap of the axis is one strided slice (fixed windows; adaptive ``out | in``):
    tap ``j`` of every window lies at ``starts + j * dilation``, so exactly when the starts are
    an increasing progression (O(out), no tap table)."""
    return w.output_size <= 1 or progression_step(w.starts) is not None


def tiling_range(w: AxisWindows) -> tuple[int, int] | None:
    """``(first, stop)`` when the windows are contiguous, disjoint and inside the input.

    The windows of such an axis (``kernel == stride``, no padding; adaptive ``in % out == 0``)
    are a reshape of ``x[first:stop]`` into ``(out, taps)``: no slicing per tap at all.
    """
    n = w.output_size
    if n == 0 or w.dilation != 1 or np.any(w.lengths != w.lengths[0]):
        return None
    length, first = int(w.lengths[0]), int(w.starts[0])
    if (n > 1 and progression_step(w.starts) != length) or first < 0 or first + n * length > w.input_size:
        return None
    return first, first + n * length


def take_windows(xp: jax.Array, positions: np.ndarray, axis: int, *, pieces: bool = True) -> jax.Array:
    """``xp`` taken into an ``(out, taps)`` pair of axes at ``axis``, ``axis + 1``."""
    out, taps = positions.shape
    x = take_positions(xp, positions.reshape(-1), axis, pieces=pieces)  # contiguous disjoint windows: one plain slice
    return x.reshape(x.shape[:axis] + (out, taps) + x.shape[axis + 1 :])


@jax.custom_jvp
def from_zero(total):
    """``total`` with ``-0.0`` made ``+0.0``, as a sum that starts from ``0`` gives it.

    PyTorch's loops start at ``sum = 0``, so a window of ``-0.0`` sums to ``+0.0``; a sum of
    taps starts from the first tap and keeps ``-0.0`` (and XLA drops an added ``+ 0.0``).
    The derivative is the identity.
    """
    return select(lax.eq(total, np.zeros((), total.dtype)), np.zeros((), total.dtype), total)


from_zero.defjvp(lambda primals, tangents: (from_zero(primals[0]), tangents[0]))


def linear_as(values, tangent):
    """The linear map ``values``, differentiated as ``tangent``: the same map written for
    XLA to transpose well (the gradient is the transpose of ``tangent``)."""

    @jax.custom_jvp
    def f(x):
        return values(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        return f(primals[0]), tangent(tangents[0])

    return f


def sum_phase_taps(t, w: AxisWindows, axis: int):
    """Linear in ``t``: window sums of a regular axis from its stride phases
    (:func:`phase_taps`), so the transpose interleaves the phases once."""
    total = None
    for j, tap in phase_taps(t, {axis: w}, reachable_taps({axis: w})).items():
        if not w.valid[:, j].all():
            tap = select(along(w.valid[:, j], axis, t.ndim), tap, 0)
        total = tap if total is None else lax.add(total, tap)
    return total


def scan_takes(tap, best):
    """PyTorch's scan rule, where a tap replaces the best so far: ``val > best or isnan(val)``
    (the first maximum, the last NaN; no NaN test for integers)."""
    take = lax.gt(tap, best)
    return lax.bitwise_or(take, lax.ne(tap, tap)) if jnp.issubdtype(tap.dtype, jnp.floating) else take


def plane_size(x, tables) -> int:
    return math.prod(x.shape[a] for a in tables)


def reachable_taps(tables: dict[int, AxisWindows]) -> dict[int, tuple[int, ...]]:
    """``{row-major tap number: per-axis taps}`` of the N-d taps some window has in bounds (a
    dilated tap can lie in the padding of every window)."""
    axes = sorted(tables)
    combos = itertools.product(*(range(tables[a].max_length) for a in axes))
    return {t: c for t, c in enumerate(combos)
            if all(tables[a].valid[:, j].any() for a, j in zip(axes, c))}


def window_step(w: AxisWindows) -> int:
    """Distance between consecutive windows of a regular axis (1 for a single window)."""
    return progression_step(w.starts)


def phase_taps(t, tables: dict[int, AxisWindows], taps: dict) -> dict:
    """``{n: t at N-d tap taps[n] of every window}`` (zero outside ``t``) of regular windows.

    ``t`` is split into its stride phases, ``phase[r][m] = t[m*stride + r]`` along every
    pooled axis: one pad up to a whole number of strides, a reshape, a transpose that brings
    the phase axes to the front, and a split.  Tap ``j`` of window ``o`` lies at
    ``o*stride + c`` with ``c = positions[0, j] = q*stride + r``, so it is phase ``r`` shifted
    by ``q`` windows: a pad (or slice) of an output-sized array.
    """
    axes = sorted(tables)
    steps = {a: window_step(tables[a]) for a in axes}
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


def first_valid_tap(w: AxisWindows) -> np.ndarray:
    """``(out,)`` number of the first in-bounds tap of each window."""
    return w.first_taps


def chosen_cell(chosen, w: AxisWindows, axis: int, dtype=None):
    """Position along the axis of every window's chosen tap, in ``dtype`` (default: int32, or
    int64 for an axis too long for int32 positions)."""
    dtype = position_dtype(w.input_size) if dtype is None else dtype
    return jnp.asarray(along(w.starts, axis, chosen.ndim), dtype) + chosen.astype(dtype) * np.asarray(w.dilation, dtype)


def position_dtype(size: int):
    """int32 for positions along an axis of ``size`` cells while they fit, else int64 (an axis
    that long is indexed only under x64: :func:`jaxpool._args.index_dtype`)."""
    return np.int32 if size <= np.iinfo(np.int32).max else np.int64


def scan_fold_axis(xp, w, axis, index):
    """``(chosen tap, value, earlier axes' index)`` of every window by PyTorch's scan rule.

    ``index`` (the earlier axes' index, or None) is carried through the fold when given.
    """
    first = first_valid_tap(w)
    best = best_index = chosen = None
    for j in range(w.max_length):
        pos = w.positions[:, j]
        tap = take_positions(xp, pos, axis, pieces=False)
        tap_index = None if index is None else take_positions(index, pos, axis, pieces=False)
        if best is None:  # tap 0 is each window's first valid tap, or replaced below
            best, best_index, chosen = tap, tap_index, lax.full(tap.shape, 0, np.int32)
            continue
        take = scan_takes(tap, best)
        if not w.valid[:, j].all():
            take = lax.bitwise_and(take, broadcast(along(w.valid[:, j], axis, xp.ndim), take.shape))
        if (first == j).any():
            take = lax.bitwise_or(take, broadcast(along(first == j, axis, xp.ndim), take.shape))
        best = select(take, tap, best)
        chosen = select(take, np.int32(j), chosen)
        if tap_index is not None:
            best_index = select(take, tap_index, best_index)
    return chosen, best, best_index


def chosen_taps(x, chosen, w: AxisWindows, axis: int, windowed: bool):
    """Linear in ``x``: every window's value of ``x`` at its ``chosen`` tap."""
    if windowed or tiling_range(w) is not None or not is_regular(w):
        xw = take_windows(x, w.positions, axis)
        return picked_taps(xw, chosen, (axis + 1,))
    total = None
    for j in range(w.max_length):
        tap = select(lax.eq(chosen, chosen.dtype.type(j)), take_positions(x, w.positions[:, j], axis), np.zeros((), x.dtype))
        total = tap if total is None else lax.add(total, tap)
    return total


def picked_taps(xw, chosen, tap_axes: tuple[int, ...]):
    """Linear in ``xw``: its value at tap ``chosen`` (row-major over ``tap_axes``) of every
    window, ``xw`` holding the taps of each window in ``tap_axes`` and ``chosen`` lacking them.
    One select and one sum: its transpose is a select, no pad or scatter."""
    number = None
    for k in tap_axes:
        tap = lax.broadcasted_iota(chosen.dtype, xw.shape, k)
        number = tap if number is None else lax.add(lax.mul(number, chosen.dtype.type(xw.shape[k])), tap)
    kept = tuple(d for d in range(xw.ndim) if d not in tap_axes)
    hit = lax.eq(lax.broadcast_in_dim(chosen, xw.shape, kept), number)
    return lax.reduce_sum(select(hit, xw, np.zeros((), xw.dtype)), tap_axes)


def torch_argmax_combine(a, b):
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
