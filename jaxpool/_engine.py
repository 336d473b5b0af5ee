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
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool.windows import AxisWindows

# Windows with more taps than this are reduced as a materialised axis, not tap by tap.
MAX_UNROLLED_TAPS = 16


def lowest(dtype) -> np.generic:
    """The identity of ``max``: ``-inf`` for floats, the smallest integer otherwise."""
    dtype = np.dtype(dtype)
    if jnp.issubdtype(dtype, jnp.floating):
        return np.array(-np.inf, dtype)
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


def _padded(x: jax.Array, w: AxisWindows, axis: int) -> tuple[jax.Array, int]:
    """Zero-pad ``x`` along ``axis`` so every tap position (padding included) is addressable."""
    pos = w.positions
    lo = max(0, -int(pos.min()))
    hi = max(0, int(pos.max()) - (w.input_size - 1))
    if lo or hi:
        config = [(0, 0, 0)] * x.ndim
        config[axis] = (lo, hi, 0)
        x = lax.pad(x, np.zeros((), x.dtype), config)
    return x, lo


def _tap(xp: jax.Array, pos: np.ndarray, axis: int) -> jax.Array:
    """``xp`` at static positions ``pos`` along ``axis``: a strided slice when possible."""
    step = _is_progression(pos)
    if step is not None:
        return lax.slice_in_dim(xp, int(pos[0]), int(pos[-1]) + 1, step, axis)
    return jnp.take(xp, jnp.asarray(pos), axis=axis, mode="clip")


def _windowed(xp: jax.Array, positions: np.ndarray, axis: int) -> jax.Array:
    """``xp`` gathered into an ``(out, taps)`` pair of axes at ``axis``, ``axis + 1``."""
    out, taps = positions.shape
    step = _is_progression(positions.reshape(-1))
    if step == 1:  # contiguous, non-overlapping windows: a reshape
        x = lax.slice_in_dim(xp, int(positions[0, 0]), int(positions[-1, -1]) + 1, 1, axis)
    else:
        x = jnp.take(xp, jnp.asarray(positions.reshape(-1)), axis=axis, mode="clip")
    return x.reshape(x.shape[:axis] + (out, taps) + x.shape[axis + 1 :])


# --------------------------------------------------------------------------------------- sum


def window_sum(x: jax.Array, tables: dict[int, AxisWindows]) -> jax.Array:
    """Sum of the in-bounds cells of every window (padding counts as zero)."""
    for axis, w in sorted(tables.items(), reverse=True):
        x = _sum_axis(x, w, axis)
    return x


def _sum_axis(x: jax.Array, w: AxisWindows, axis: int) -> jax.Array:
    xp, lo = _padded(x, w, axis)
    if w.max_length > MAX_UNROLLED_TAPS:
        xw = _windowed(xp, w.positions + lo, axis)
        return jnp.sum(jnp.where(_window_table(w.valid, axis, x.ndim), xw, 0), axis=axis + 1)
    total = None
    for j in range(w.max_length):
        tap = _tap(xp, w.positions[:, j] + lo, axis)
        if not w.valid[:, j].all():  # padding reads zero already; this masks ragged windows
            tap = jnp.where(along(w.valid[:, j], axis, x.ndim), tap, 0)
        total = tap if total is None else total + tap
    return total


# --------------------------------------------------------------------------------------- max


def window_max(
    x: jax.Array,
    tables: dict[int, AxisWindows],
    plane_strides: dict[int, int] | None = None,
    index_dtype=None,
) -> tuple[jax.Array, jax.Array | None]:
    """Max of every window and, if ``plane_strides`` is given, its flat index in the plane.

    ``plane_strides[axis]`` is the flat-index stride of a spatial axis within one input plane
    (for NCHW: ``{3: 1, 2: W}``).  Indices follow PyTorch CPU: first maximum in row-major
    order, last NaN if any.  Every window must hold at least one in-bounds cell; the first one
    is always taken, so a window of ``-inf`` (or of the lowest integer) reports, and passes its
    gradient to, its first in-bounds cell, as PyTorch does.
    """
    index = None
    for axis, w in sorted(tables.items(), reverse=True):
        stride = None if plane_strides is None else plane_strides[axis]
        if w.max_length > MAX_UNROLLED_TAPS:
            x, index = _max_axis_windowed(x, index, w, axis, stride, index_dtype)
        else:
            x, index = _max_axis(x, index, w, axis, stride, index_dtype)
    return x, index


def _first_valid_tap(w: AxisWindows) -> np.ndarray:
    """``(out,)`` number of the first in-bounds tap of each window."""
    return np.argmax(w.valid, axis=1)


def _max_axis(x, index, w, axis, stride, index_dtype):
    """Fold the taps of one axis with PyTorch's ``val > best || isnan(val)`` rule."""
    xp, lo = _padded(x, w, axis)
    ip = None if index is None else _padded(index, w, axis)[0]
    first = _first_valid_tap(w)
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    best = best_index = None
    for j in range(w.max_length):
        pos = w.positions[:, j]
        tap = _tap(xp, pos + lo, axis)
        tap_index = None
        if stride is not None:
            tap_index = jnp.asarray(along(pos * stride, axis, x.ndim), index_dtype)
            if ip is not None:
                tap_index = tap_index + _tap(ip, pos + lo, axis)
        if best is None:  # tap 0 is each window's first valid tap, or replaced below
            best, best_index = tap, tap_index
            continue
        take = tap > best
        if floating:
            take = take | jnp.isnan(tap)
        if not w.valid[:, j].all():
            take = take & along(w.valid[:, j], axis, x.ndim)
        if (first == j).any():
            take = take | along(first == j, axis, x.ndim)
        best = jnp.where(take, tap, best)
        if tap_index is not None:
            best_index = jnp.where(take, jnp.broadcast_to(tap_index, best.shape), best_index)
    if best_index is not None:
        best_index = jnp.broadcast_to(best_index, best.shape)
    return best, best_index


def _max_axis_windowed(x, index, w, axis, stride, index_dtype):
    """Long windows: gather them into an extra axis, pick the tap with a variadic reduce."""
    xp, lo = _padded(x, w, axis)
    positions = w.positions + lo
    xw = _windowed(xp, positions, axis)
    taps = w.max_length
    tap_no = lax.broadcasted_iota(jnp.int32, xw.shape, axis + 1)
    valid = _window_table(w.valid, axis, x.ndim)
    # Invalid taps lose every comparison: lowest value and a tap number past the end.
    values = jnp.where(valid, lax.stop_gradient(xw), lowest(xw.dtype))
    tap_no = jnp.where(valid, tap_no, taps)
    _, chosen = lax.reduce(
        (values, tap_no), (lowest(xw.dtype), np.int32(taps)), _torch_argmax_combine, (axis + 1,)
    )
    best = select_tap(xw, chosen, axis + 1)
    if stride is None:
        return best, None
    tap_index = jnp.asarray(_window_table(w.positions * stride, axis, x.ndim), index_dtype)
    if index is not None:
        tap_index = tap_index + _windowed(_padded(index, w, axis)[0], positions, axis)
    tap_index = jnp.broadcast_to(tap_index, xw.shape)
    picked = jnp.take_along_axis(tap_index, jnp.expand_dims(chosen, axis + 1), axis + 1)
    return best, jnp.squeeze(picked, axis + 1)


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


def select_tap(xw: jax.Array, chosen: jax.Array, axis: int) -> jax.Array:
    """``xw[..., chosen, ...]`` along ``axis``; its gradient is a one-hot mask, not a scatter."""
    return _select_tap(xw, chosen, axis)


def _select_tap(xw, chosen, axis):
    # A custom JVP (not VJP) so forward mode works too: the tangent is a one-hot masked sum,
    # linear in the tangent, and its transpose (the gradient) is the one-hot mask again.
    # ``chosen`` is an argument, not a closure: custom_jvp rules may not close over tracers.
    @jax.custom_jvp
    def f(xw, chosen):
        return jnp.squeeze(jnp.take_along_axis(xw, jnp.expand_dims(chosen, axis), axis), axis)

    @f.defjvp
    def f_jvp(primals, tangents):
        xw, chosen = primals
        t = tangents[0]
        hit = lax.broadcasted_iota(chosen.dtype, xw.shape, axis) == jnp.expand_dims(chosen, axis)
        return f(xw, chosen), jnp.sum(jnp.where(hit, t, jnp.zeros((), t.dtype)), axis=axis)

    return f(xw, chosen)
