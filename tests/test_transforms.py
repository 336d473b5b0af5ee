"""Composition with jit, vmap, grad and checkpoint, and the layout/batching conventions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool

RNG = np.random.default_rng(0)
X = jnp.asarray(RNG.standard_normal((2, 3, 9, 8)), jnp.float32)

OPS = {
    "max_pool2d": lambda x: jaxpool.max_pool2d(x, 3, 2, 1, return_indices=True),
    "avg_pool2d": lambda x: jaxpool.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False),
    "lp_pool2d": lambda x: jaxpool.lp_pool2d(x, 2, 2),
    "adaptive_avg_pool2d": lambda x: jaxpool.adaptive_avg_pool2d(x, (4, 5)),
    "adaptive_max_pool2d": lambda x: jaxpool.adaptive_max_pool2d(x, (4, 5), return_indices=True),
    "unpool": lambda x: jaxpool.max_unpool2d(*jaxpool.max_pool2d(x, 2, return_indices=True), 2,
                                             output_size=x.shape[-2:]),
}


def _first(out):
    return out[0] if isinstance(out, tuple) else out


@pytest.mark.parametrize("name", OPS)
def test_jit_matches_eager(name):
    eager, jitted = OPS[name](X), jax.jit(OPS[name])(X)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


@pytest.mark.parametrize("name", OPS)
def test_vmap_over_an_extra_axis_matches_the_batch(name):
    stacked = jnp.stack([X, 2 * X])
    mapped = jax.vmap(OPS[name])(stacked)
    for i in range(2):
        for a, b in zip(jax.tree.leaves(mapped), jax.tree.leaves(OPS[name](stacked[i]))):
            np.testing.assert_allclose(a[i], b, rtol=1e-6)


@pytest.mark.parametrize("name", OPS)
def test_grad_and_checkpoint_agree(name):
    loss = lambda x: jnp.sum(_first(OPS[name](x)) ** 2)  # noqa: E731
    g = jax.grad(loss)(X)
    g_ckpt = jax.jit(jax.grad(jax.checkpoint(loss)))(X)
    np.testing.assert_allclose(g, g_ckpt, rtol=1e-6)
    assert np.isfinite(np.asarray(g)).all() and np.abs(np.asarray(g)).sum() > 0


@pytest.mark.parametrize("name", OPS)
def test_unbatched_equals_batched(name):
    for a, b in zip(jax.tree.leaves(OPS[name](X[0])), jax.tree.leaves(OPS[name](X[:1]))):
        np.testing.assert_array_equal(a, b[0])


def test_channels_last_equals_transposed_channels_first():
    x_last = jnp.moveaxis(X, 1, -1)
    v, i = jaxpool.max_pool2d(X, 3, 2, 1, return_indices=True)
    v2, i2 = jaxpool.max_pool2d(x_last, 3, 2, 1, return_indices=True, channels_last=True)
    np.testing.assert_array_equal(jnp.moveaxis(v2, -1, 1), v)
    np.testing.assert_array_equal(jnp.moveaxis(i2, -1, 1), i)  # indices keep the per-plane meaning
    up = jaxpool.max_unpool2d(v2, i2, 3, 2, 1, output_size=(9, 8), channels_last=True)
    np.testing.assert_array_equal(jnp.moveaxis(up, -1, 1), jaxpool.max_unpool2d(v, i, 3, 2, 1, output_size=(9, 8)))


def test_index_dtype_follows_x64():
    assert jaxpool.max_pool1d(X[0], 2, return_indices=True)[1].dtype == jnp.int32
    with jax.enable_x64(True):
        assert jaxpool.max_pool1d(X[0], 2, return_indices=True)[1].dtype == jnp.int64


def test_empty_batch_is_allowed_as_in_torch():
    empty = jnp.zeros((0, 3, 9, 8))
    for name, op in OPS.items():
        assert _first(op(empty)).shape[:2] == (0, 3), name


def test_long_windows_take_the_materialised_path_and_agree():
    """Windows wider than the unrolled-tap limit are reduced as an axis; same rule, same result."""
    x = jnp.asarray(RNG.integers(-2, 3, (2, 3, 40)), jnp.float32).at[0, 0, 7].set(jnp.nan)
    v, i = jaxpool.adaptive_max_pool1d(x, 2, return_indices=True)
    ref = np.asarray(x).reshape(2, 3, 2, 20)
    expect_i = np.argmax(ref, axis=-1) + np.array([0, 20])
    expect_i[0, 0, 0] = 7  # the NaN
    np.testing.assert_array_equal(i, expect_i)
    g = jax.grad(lambda a: jnp.sum(jaxpool.adaptive_max_pool1d(a, 2)))(x)
    assert float(g.sum()) == 12 and float(g[0, 0, 7]) == 1
