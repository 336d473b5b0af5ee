"""The executor of stochastic pooling: one cell picked per window, or the pick's expectation.

The windows are the plan's fixed tables (:func:`jaxpool._plan_random.stochastic_pool`).  The
pick is the traced part: one uniform draw per window, inverted through the running sum of the
weights, over the taps as strided slices of the padded input (one route on every platform).
The expectation is three window sums, which go through the executor
(:func:`jaxpool._execute.window_sum`) like ``avg_pool``'s.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from jaxpool import _eager, _execute, _taps


def _compute_dtype(x):
    """Weights, sums and draws in float32 (float64 for float64 input)."""
    return jnp.float64 if x.dtype == jnp.float64 else jnp.float32


@_eager.compiled_when_eager
def sample_of(p, input, key):
    """The training output of plan ``p`` on ``input``: one draw per window, generated in
    ``(N, C, *out)`` order whatever the layout, with the input's batching."""
    x = p.layout.batch(input)
    compute = _compute_dtype(x)
    tables = dict(p.tables)
    out = [w.output_size for w in tables.values()]
    u = jax.random.uniform(key, (x.shape[0], x.shape[p.layout.channel_axis], *out), compute)
    if p.layout.channels_last:
        u = jnp.moveaxis(u, 1, -1)
    return p.layout.unbatch(_sample(x, tables, u, compute))


@_eager.compiled_when_eager
def expectation_of(p, input):
    """The evaluation output of plan ``p`` on ``input`` (see :func:`_expectation`)."""
    x = p.layout.batch(input)
    return p.layout.unbatch(_expectation(x, dict(p.tables), _compute_dtype(x)))


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
