"""Max over small regular windows on XLA:CPU: every N-d tap folded at once, block by block.

Beats the axis-by-axis fold on XLA:CPU (ResNet's 3x3/2: no padded tap and no per-axis
intermediate written, docs/performance.md item 9); stride-1 windows padded along the minor
axis read one lowest-filled padded copy instead, which beats concatenating the blocks (item 14).
"""

from __future__ import annotations

import functools
import math

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _cpu_barriers, _cpu_sum, _portable, _taps
from jaxpool.windows import AxisWindows


def folds_directly(tables: dict[int, AxisWindows], ndim: int) -> bool:
    """Whether to fold the whole N-d window at once (see :func:`max_direct`): regular windows
    (fixed pools; adaptive ``out | in``) with few N-d taps, or up to
    ``_cpu_barriers.MAX_PADDED_FOLD_TAPS`` where they are read from one padded copy (:func:`_fold_padded`)."""
    limit = _cpu_barriers.MAX_PADDED_FOLD_TAPS if _cpu_sum.padded_once(tables, {}, ndim) else _taps.MAX_UNROLLED_TAPS
    return all(_taps.is_regular(w) for w in tables.values()) and math.prod(
        w.max_length for w in tables.values()) <= limit


def max_direct(x, tables, plane_strides, index_dtype):
    """Max and index of small regular windows, folding all ``prod(kernel)`` taps at once.

    The taps are visited in row-major order and folded with PyTorch's own scan rule, which is
    exactly PyTorch's loop; no per-axis intermediate is written, so the only buffers are the
    output, the chosen tap numbers and, in a backward pass, the gradient (an intermediate the
    size of the input after one axis costs its page faults on every call on XLA:CPU).
    The fold runs block by block over windows with the same in-bounds taps
    (:func:`_fold_blocks`), so no tap is padded, where the axis-by-axis fold wrote its padded taps and its first
    axis' result out (docs/performance.md, item 9).  Stride-1 windows padded along the minor
    axis, whose blocks would be concatenated along it, read one padded copy of the input
    instead (:func:`_fold_padded`).  Windows that tile every axis route the gradient by a masked reshape
    (:func:`_chosen_tiled_taps`); other regular windows by stride phases
    (:func:`_portable.chosen_phase_taps`), reading the values again at the choice so that XLA writes
    the choice once instead of redoing the fold inside the gradient's loop, and interleaving
    the phases once where per-tap strided slices would
    transpose to interior pads that every input cell evaluates.
    """
    axes = sorted(tables)
    combos = _taps.reachable_taps(tables)
    if _cpu_sum.padded_once(tables, {}, x.ndim):  # stride-1 windows padded along the minor axis
        padded = [a for a in axes if _cpu_sum.has_padding(tables[a])]
        best, chosen = _fold_padded(lax.stop_gradient(x), tables, combos, padded)
        read = functools.partial(_read_padded_taps, tables=tables, taps=combos, axes=padded)
    else:
        best, chosen = _fold_blocks(lax.stop_gradient(x), tables, combos)
        read = functools.partial(_read_block_taps, tables=tables, taps=combos)
    chosen = _cpu_barriers.materialised(chosen, math.prod(tables[a].max_length for a in axes))
    index = None
    if index_dtype is not None:
        index = jnp.zeros((), index_dtype)
        rest = chosen
        for a in reversed(axes):  # decode the row-major tap number, last axis first
            w = tables[a]
            j = rest % np.int32(w.max_length)
            rest = rest // np.int32(w.max_length)
            cell = jnp.asarray(_taps.along(w.starts, a, x.ndim), index_dtype) + (
                j.astype(index_dtype) * np.asarray(w.dilation, index_dtype))  # int32 wraps past 2**31
            index = index + cell * np.asarray(plane_strides[a], index_dtype)
    if jnp.issubdtype(x.dtype, jnp.floating):
        if all(_taps.tiling_range(w) is not None for w in tables.values()):
            best = _choices.route_to_chosen(x, best, chosen, functools.partial(_chosen_tiled_taps, tables=tables))
        else:
            at = functools.partial(_portable.chosen_phase_taps, tables=tables, taps=combos)
            at = _cpu_barriers.read_twice(at, math.prod(tables[a].max_length for a in axes))
            best = _choices.route_to_chosen(x, best, chosen, at, read=read)
    return best, index


def _fold_blocks(x, tables: dict[int, AxisWindows], combos: dict[int, tuple[int, ...]]):
    """``(max, row-major tap number)`` of every N-d window by PyTorch's scan rule, folded over
    blocks of windows whose in-bounds taps are the same (:func:`_by_blocks`)."""

    dtype = _cpu_barriers.choice_dtype(math.prod(w.max_length for w in tables.values()))

    def fold(taps, part):
        (t, best), rest = taps[0], taps[1:]
        return _scan_taps(best, lax.full(best.shape, t, dtype), rest)

    return _by_blocks(x, tables, combos, fold)


def _scan_taps(best, chosen, taps):
    """Fold ``(row-major tap number, tap)`` pairs into ``(best, chosen)`` by PyTorch's scan rule."""
    for t, tap in taps:
        take = _taps.scan_takes(tap, best)
        best, chosen = _taps.select(take, tap, best), _taps.select(take, chosen.dtype.type(t), chosen)
    return best, chosen


def _fold_padded(x, tables: dict[int, AxisWindows], combos: dict, axes):
    """``(max, row-major tap number)`` of every N-d window by PyTorch's loop, every tap a plain
    slice of one copy of ``x`` padded along ``axes`` with the dtype's lowest value.

    As PyTorch does, the fold starts from the lowest value and each window's first in-bounds
    tap, and takes a tap when ``val > best or isnan(val)``; a padded tap holds the lowest
    value and is never taken, so a window of ``-inf`` keeps its first in-bounds cell.  Used
    where :func:`_cpu_sum.padded_once` pads a sum: the blocks of :func:`_fold_blocks` are then
    concatenated along the minor axis, and XLA:CPU writes the blocks out and then copies
    them (docs/performance.md, item 14).
    """
    dims = sorted(tables)
    dtype = _cpu_barriers.choice_dtype(math.prod(tables[a].max_length for a in dims))
    first = np.zeros((), np.int64)
    for a in dims:  # the row-major number of each window's first in-bounds N-d tap
        first = first * tables[a].max_length + _taps.along(_taps.first_valid_tap(tables[a]), a, x.ndim)
    taps = _lowest_padded_taps(x, tables, combos, axes)
    chosen = jnp.broadcast_to(jnp.asarray(first.astype(dtype)), taps[0][1].shape)
    return _scan_taps(jnp.full(taps[0][1].shape, _taps.lowest(x.dtype), x.dtype), chosen, taps)


def _lowest_padded_taps(x, tables: dict[int, AxisWindows], combos: dict, axes) -> list:
    """``[(row-major tap number, tap)]`` of the ``combos``, each one strided slice of ``x``
    padded once along ``axes`` with the dtype's lowest value."""
    xp, shifted = _cpu_sum.padded_input(x, tables, axes, fill=_taps.lowest(x.dtype))
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
        best = _taps.select(lax.eq(chosen, chosen.dtype.type(t)), tap, best)
    return best


def _by_blocks(x, tables: dict[int, AxisWindows], combos: dict, reduce):
    """``reduce(taps, part)`` over blocks of windows with the same in-bounds taps, concatenated.

    Along every axis the windows split into runs with one pattern of in-bounds taps (the
    padded windows at either end, the interior ones between).  Within a block, a product of
    such runs, every tap in bounds is one strided slice of ``x`` for all its windows, and
    the first of them is each window's first in-bounds cell: ``taps`` lists ``(row-major tap
    number, slice)`` for those taps in order, so a scan needs neither masks nor padded taps;
    ``part(a)`` is an output-sized ``a``'s block.  Padding a tap instead made XLA:CPU write
    every padded tap out, each a fresh allocation whose pages fault in (item 9).
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
        start[a], limit[a], strides[a] = int(pos[0]), int(pos[-1]) + 1, _taps.progression_step(pos)
    return lax.slice(x, start, limit, strides)


def _runs_of_pattern(w: AxisWindows) -> list[tuple[int, int]]:
    """``(first, stop)`` ranges of consecutive windows with the same in-bounds taps."""
    if w.output_size == 0:
        return []
    cuts = np.flatnonzero(np.any(w.valid[1:] != w.valid[:-1], axis=1)) + 1  # vectorised: O(out)
    bounds = [0, *cuts.tolist(), w.output_size]
    return list(zip(bounds[:-1], bounds[1:]))


def _chosen_tiled_taps(t, chosen, tables: dict[int, AxisWindows]):
    """Linear in ``t``: every window's value of ``t`` at its chosen N-d tap (row-major tap
    number), for windows that tile every axis.  ``t`` is reshaped to ``(..., out, taps, ...)``
    per axis, so the transpose (the gradient) is one select and reshape, no pad per tap."""
    shape, tap_axes = [], []
    for a in range(t.ndim):
        if a in tables:
            w = tables[a]
            first, stop = _taps.tiling_range(w)
            t = lax.slice_in_dim(t, first, stop, 1, a)
            shape += [w.output_size, w.max_length]
            tap_axes.append(len(shape) - 1)
        else:
            shape.append(t.shape[a])
    return _taps.picked_taps(t.reshape(shape), chosen, tuple(tap_axes))
