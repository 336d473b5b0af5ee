"""Stochastic pooling (Zeiler & Fergus, 2013), vectorized, with explicit JAX PRNG keys.

PyTorch has no stochastic pooling; this follows the paper.  Windows are those of
``max_pool``/``avg_pool`` (``kernel_size``, ``stride`` defaulting to the kernel, ``padding`` at
most half the kernel; no dilation, no ``ceil_mode``); padding cells are not part of a window.

**Weights.**  A window's cells get weights ``w_i = max(a_i, 0)``: the method assumes
non-negative activations (e.g. after ReLU), and a negative activation is treated as having
probability zero.  A window whose cells are all ``<= 0`` has no positive weight; it picks one of
its (in-bounds) cells *uniformly*, i.e. ``w_i = 1``.

**Training** (``training=True``): each window outputs the value ``a_k`` of one cell ``k`` drawn
with probability ``p_k = w_k / sum(w)``, independently per window (one uniform draw per window,
inverted through the running sum of the weights in row-major order).  The gradient is one-hot on
the picked cell (summed where windows overlap).  If a window has positive weights, the picked
cell is positive, so the output is ``>= 0``; an all-non-positive window returns the value of a
uniformly picked cell (0 for ReLU outputs, possibly negative otherwise).

**Inference** (``training=False``): the expectation of the training output,
``sum_i p_i * a_i``.  With positive weights that is ``sum(w_i**2) / sum(w_i)`` (negative cells
contribute nothing); for an all-non-positive window it is the mean of its cells.  It is
deterministic (no key needed) and differentiable with its exact gradient.

**Non-finite input.**  A window containing NaN or ``+inf`` (or whose weight sum overflows) has
no well-defined distribution; its output is NaN in both modes.  ``-inf`` has weight zero.

Weights, sums and draws are computed in float32 (float64 for float64 input); the training output
is the picked input value itself, in the input's dtype.  Same key, same result; the draws do not
depend on the layout (``channels_last`` gives the transposed result) or on whether the input is
batched.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpool import _args, _execute, _taps
from jaxpool.plan import fixed_tables


def stochastic_pool(input, kernel_size, stride=None, padding=0, *, ndim: int, key=None,
                    training: bool = True, channels_last: bool = False):
    """Stochastic pooling over ``ndim`` spatial axes (see the module docstring for the rules).

    Args:
      input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, floating; with
        ``channels_last=True``, ``(N, *spatial, C)`` or ``(*spatial, C)``.
      kernel_size, stride, padding: as ``max_pool`` (``stride=None`` means the kernel size).
      key: a :func:`jax.random.key` (or ``PRNGKey``); required when ``training=True``, unused
        otherwise.  One uniform number per window is drawn from it.
      training: sample (True) or return the expectation (False).
    """
    op = f"stochastic_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op)
    tables = fixed_tables(input, layout, op, kernel_size, stride, padding, 1, False)
    if not isinstance(training, bool):
        raise TypeError(f"{op}: training must be a bool, got {training!r}")
    x = layout.batch(input)
    compute = jnp.float64 if x.dtype == jnp.float64 else jnp.float32
    if not training:
        return layout.unbatch(_expectation(x, tables, compute))
    if key is None:
        raise ValueError(f"{op}: training=True needs key= (a jax.random key); jaxpool keeps no global random state")
    if not isinstance(key, jax.Array):
        raise TypeError(f"{op}: key must be a jax.random key array, got {type(key).__name__}")
    # One draw per window, generated in (N, C, *out) order whatever the layout.
    out = [w.output_size for w in tables.values()]
    u = jax.random.uniform(key, (x.shape[0], x.shape[layout.channel_axis], *out), compute)
    if layout.channels_last:
        u = jnp.moveaxis(u, 1, -1)
    return layout.unbatch(_sample(x, tables, u, compute))


def _window_taps(x, tables):
    """Every window tap in row-major order: ``(values, valid)`` with ``valid`` a static mask.

    ``values`` has the output's shape (one strided slice per axis of the padded input);
    ``valid`` is a broadcastable numpy bool array, or None when the tap is in bounds everywhere.
    """
    tables = {a: w.trimmed() for a, w in tables.items()}  # taps in bounds in some window only
    padded, offsets = x, {}
    for axis, w in tables.items():
        padded, offsets[axis] = _taps.padded_axis(padded, w, axis)
    axes = sorted(tables)
    for taps in itertools.product(*(range(tables[a].max_length) for a in axes)):
        value, valid = padded, None
        for axis, j in zip(axes, taps):
            w = tables[axis]
            value = _taps.take_positions(value, w.positions[:, j] + offsets[axis], axis)
            if not w.valid[:, j].all():
                mask = _taps.along(w.valid[:, j], axis, x.ndim)
                valid = mask if valid is None else valid & mask
        yield value, valid


def _sample(x, tables, u, compute):
    """Inverse-CDF draw per window over the row-major running sum of the weights.

    Pass 1 sums the weights ``max(a, 0)`` (``total``) and counts the in-bounds cells.  A window
    with ``total > 0`` uses weights ``max(a, 0)``, else weight 1 on each in-bounds cell.  Pass 2
    takes the first tap whose running sum exceeds ``u * sum(weights)``; since ``u < 1`` and
    the running sum ends at exactly ``sum(weights)`` (same additions, same order), tap ``k`` is
    taken with probability ``w_k / sum(w)``.  A tap of weight 0 can never be the first to exceed
    the threshold (the sum does not grow there).  If rounding makes ``u * sum`` equal the sum,
    the last tap of positive weight is taken.  Values flow through ``where`` selections only, so
    the gradient reaches exactly the picked cell.
    """
    taps = list(_window_taps(x, tables))
    total = count = None
    for value, valid in taps:
        weight = _masked(jax.nn.relu(value.astype(compute)), valid)
        ones = np.ones((), compute) if valid is None else valid.astype(compute)
        total = weight if total is None else total + weight
        count = ones if count is None else count + ones
    positive = total > 0
    threshold = u * jnp.where(positive, total, count)
    running = found = picked = last = None
    for value, valid in taps:
        weight = jnp.where(positive, jax.nn.relu(value.astype(compute)),
                           np.ones((), compute) if valid is None else valid.astype(compute))
        weight = _masked(weight, valid)
        running = weight if running is None else running + weight
        hit = running > threshold
        if found is None:
            found, picked = hit, jnp.where(hit, value, jnp.zeros((), value.dtype))
            last = picked
        else:
            hit = hit & ~found
            found = found | hit
            picked = jnp.where(hit, value, picked)
        last = jnp.where(weight > 0, value, last)
    picked = jnp.where(found, picked, last)
    return jnp.where(jnp.isfinite(total), picked, jnp.asarray(np.nan, picked.dtype))


def _masked(a, valid):
    return a if valid is None else jnp.where(valid, a, 0)


def _expectation(x, tables, compute):
    """``sum(p * a)``: ``sum(w**2) / sum(w)`` with ``w = max(a, 0)``, or the window mean if ``sum(w) == 0``."""
    a = x.astype(compute)
    w = jax.nn.relu(a)  # NaN propagates; gradient 0 at 0, the ReLU convention
    total = _execute.window_sum(w, tables)
    squares = _execute.window_sum(w * w, tables)
    mean = _execute.window_sum(a, tables)
    count = np.ones((), np.int64)
    for axis, t in tables.items():
        count = count * _taps.along(t.inside_counts, axis, x.ndim)
    positive = total > 0
    out = jnp.where(positive, squares / jnp.where(positive, total, 1), mean / count.astype(compute))
    out = jnp.where(jnp.isfinite(total), out, np.nan)
    return out.astype(x.dtype)
