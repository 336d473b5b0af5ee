"""The lax forms of jnp operations the executors use per tap (:mod:`jaxpool._taps`): the same
numbers as jnp, and no silent promotion or wraparound where jnp would promote."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from jaxpool import _taps


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.int8, jnp.int32])
def test_select_is_where_for_one_dtype(dtype):
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.integers(-5, 5, (2, 3, 4)), dtype)
    b = jnp.asarray(rng.integers(-5, 5, (2, 3, 4)), dtype)
    which = jnp.asarray(rng.random((2, 3, 4)) < 0.5)
    table = np.array([True, False, True])[None, :, None]  # a numpy table along one axis
    _same(_taps.select(which, a, b), jnp.where(which, a, b))
    _same(_taps.select(table, a, b), jnp.where(table, a, b))
    _same(_taps.select(which, a, np.zeros((), dtype)), jnp.where(which, a, jnp.zeros((), dtype)))
    _same(_taps.select(which, 0, b), jnp.where(which, jnp.zeros((), dtype), b))
    _same(jax.jit(_taps.select)(which, a, b), jnp.where(which, a, b))


def test_select_refuses_what_jnp_where_would_promote():
    small = jnp.zeros((3,), jnp.int8)
    which = jnp.asarray([True, False, True])
    with pytest.raises(TypeError, match="does not fit int8"):
        _taps.select(which, np.int32(300), small)  # a cast would wrap to 44
    with pytest.raises(TypeError):
        _taps.select(which, small, jnp.zeros((3,), jnp.int32))
    nan = _taps.select(which, np.array(np.nan, np.float16), jnp.zeros((3,), jnp.float16))
    assert np.isnan(np.asarray(nan)[0]) and np.asarray(nan)[1] == 0


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_gather_along_is_take(axis):
    x = jnp.arange(4 * 5 * 6, dtype=jnp.float32).reshape(4, 5, 6)
    n = x.shape[axis]
    sorted_positions = np.arange(0, n, 2)
    _same(_taps.gather_along(x, sorted_positions, axis, mode=lax.GatherScatterMode.PROMISE_IN_BOUNDS,
                             sorted_unique=True),
          jnp.take(x, sorted_positions, axis=axis))
    repeated = np.array([n - 1, 0, 0, 1])
    _same(_taps.gather_along(x, repeated, axis, mode=lax.GatherScatterMode.CLIP),
          jnp.take(x, repeated, axis=axis, mode="clip"))


def test_picked_taps_reads_the_chosen_tap_and_transposes_to_it():
    rng = np.random.default_rng(1)
    xw = jnp.asarray(rng.standard_normal((2, 3, 4, 5)), jnp.float32)  # taps in axes 1 and 3
    chosen = jnp.asarray(rng.integers(0, 3 * 5, (2, 4)), jnp.int8)
    expected = jnp.take_along_axis(
        jnp.moveaxis(xw, 1, 2).reshape(2, 4, 15), chosen[..., None].astype(jnp.int32), axis=2)[..., 0]
    _same(_taps.picked_taps(xw, chosen, (1, 3)), expected)
    (grad,) = jax.linear_transpose(lambda t: _taps.picked_taps(t, chosen, (1, 3)), xw)(jnp.ones((2, 4)))
    assert float(grad.sum()) == 8 and set(np.unique(np.asarray(grad))) <= {0.0, 1.0}
