"""One axis of a max fold on XLA:CPU: the portable fold (:mod:`jaxpool._portable`) with the
choice behind fusion barriers (:mod:`jaxpool._cpu_barriers`), which beats XLA:CPU redoing the
fold inside the gradient's loop; irregular windows fold only the choice, which beats a fold
with several outputs (XLA:CPU writes every gathered tap out).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _cpu_barriers, _portable, _taps


def max_axis(x, index, w, axis, stride, index_dtype, keep=False):
    """Fold the taps of one axis with PyTorch's ``val > best || isnan(val)`` rule."""
    xs = lax.stop_gradient(x)
    xp = _cpu_barriers.kept(xs) if keep else xs
    floating = jnp.issubdtype(x.dtype, jnp.floating)
    if not _taps.is_regular(w):
        if stride is None and index is None and floating:
            return _irregular_values(x, w, axis, keep), None
        return _irregular_max(x, xp, index, w, axis, stride, index_dtype)
    chosen, best, best_index = _taps.scan_fold_axis(xp, w, axis, index)
    chosen = _cpu_barriers.materialised(chosen, w.max_length)
    if stride is not None:  # the chosen cell's offset along this axis, plus the earlier axes'
        offset = _taps.chosen_cell(chosen, w, axis, index_dtype) * np.asarray(stride, index_dtype)
        best_index = offset if index is None else best_index + offset
    if floating:
        at = _cpu_barriers.read_twice(functools.partial(_taps.chosen_taps, w=w, axis=axis, windowed=False), w.max_length)
        best = _choices.route_to_chosen(x, best, chosen, at)
    return best, best_index


def _irregular_max(x, xp, index, w, axis, stride, index_dtype):
    """Irregular windows (adaptive; every tap a gather): fold only the chosen tap, then read the
    value and the earlier axes' index at the chosen cell.  A fold with one output is one fused
    loop; with several, XLA:CPU writes every gathered tap out as an input-sized buffer."""
    chosen = _cpu_barriers.materialised(_taps.scan_fold_axis(xp, w, axis, None)[0], w.max_length)
    cell = _taps.chosen_cell(chosen, w, axis, index_dtype)
    best = jnp.take_along_axis(xp, cell, axis=axis, mode="clip")
    best_index = None
    if stride is not None:
        best_index = cell * np.asarray(stride, index_dtype)
        if index is not None:
            best_index = best_index + jnp.take_along_axis(index, cell, axis=axis, mode="clip")
    if jnp.issubdtype(x.dtype, jnp.floating):
        best = _choices.route_to_chosen(x, best, chosen, functools.partial(_taps.chosen_taps, w=w, axis=axis, windowed=False))
    return best, best_index


def _irregular_values(x, w, axis, keep):
    """Values only, irregular windows: the plain fold forward (one output, one fused loop);
    its derivative folds the chosen tap instead (:func:`_irregular_max`)."""

    def folded(x):
        xs = lax.stop_gradient(x)
        return _cpu_barriers.kept(xs) if keep else xs

    def values(x):
        return _taps.scan_fold_axis(folded(x), w, axis, None)[1]

    def routed(x):
        return _irregular_max(x, folded(x), None, w, axis, None, None)[0]

    return _choices.differentiated_as(values, routed)(x)


