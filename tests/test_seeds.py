"""The examples of the seed documents (../shared/seeds/) reproduce their printed tensors."""

import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import windows


def test_maxpool2d_indices_feed_maxunpool2d():
    """001: MaxPool2d(2, 2, return_indices=True) on 1..16, then MaxUnpool2d(2, 2)."""
    data = jnp.arange(1, 17, dtype=jnp.float32).reshape(1, 1, 4, 4)
    pool_out, indices = jaxpool.max_pool2d(data, kernel_size=2, stride=2, return_indices=True)
    unpool_out = jaxpool.max_unpool2d(pool_out, indices, kernel_size=2, stride=2)
    np.testing.assert_array_equal(pool_out, [[[[6, 8], [14, 16]]]])
    np.testing.assert_array_equal(indices, [[[[5, 7], [13, 15]]]])
    np.testing.assert_array_equal(
        unpool_out, [[[[0, 0, 0, 0], [0, 6, 0, 8], [0, 0, 0, 0], [0, 14, 0, 16]]]]
    )


def test_odd_size_round_trip_65_32_65():
    """001: a 65x65 map pools to 32x32; output_size recovers 65 (SegNet/U-Net alignment)."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((1, 2, 65, 65)), jnp.float32)
    pooled, idx = jaxpool.max_pool2d(x, 2, 2, return_indices=True)
    assert pooled.shape == (1, 2, 32, 32)
    with pytest.raises(ValueError, match="invalid max index"):  # indices address a 65-wide plane
        jaxpool.max_unpool2d(pooled, idx, 2, 2)  # default size 64x64, as torch also refuses
    restored = jaxpool.max_unpool2d(pooled, idx, 2, 2, output_size=(65, 65))
    assert restored.shape == (1, 2, 65, 65)
    flat = np.asarray(x).reshape(1, 2, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, np.asarray(idx).reshape(1, 2, -1), 2),
                                  np.asarray(pooled).reshape(1, 2, -1))


def test_adaptive_avg_1_to_6_into_8():
    """000: AdaptiveAvgPool1d(8) on 1..6."""
    x = jnp.asarray([[[1, 2, 3, 4, 5, 6]]], jnp.float32)
    np.testing.assert_allclose(jaxpool.adaptive_avg_pool1d(x, 8),
                               [[[1.0, 1.5, 2.5, 3.0, 4.0, 4.5, 5.5, 6.0]]])


def test_adaptive_avg_0_to_4_into_3_and_its_windows():
    """000/004: 0..4 -> 3 pools (0, 1), (1, 2, 3), (3, 4); no kernel/stride does that."""
    x = jnp.arange(5, dtype=jnp.float32).reshape(1, 1, 5)
    np.testing.assert_allclose(jaxpool.adaptive_avg_pool1d(x, 3), [[[0.5, 2.0, 3.5]]])
    np.testing.assert_allclose(jaxpool.avg_pool1d(x, 3, 1), [[[1.0, 2.0, 3.0]]])  # the "equivalent" guess
    w = windows.adaptive(5, 3)
    assert w.starts.tolist() == [0, 1, 3] and w.lengths.tolist() == [2, 3, 2]
    assert w.describe() == [(0, 2), (1, 4), (3, 5)]
    assert windows.equivalent_fixed(5, 3) is None


def test_adaptive_equals_fixed_when_divisible():
    """004: 6 -> 3 is kernel 2 stride 2, and the outputs agree; 5 -> 3 is not."""
    assert windows.equivalent_fixed(6, 3) == (2, 2)
    x = jnp.asarray([[[1, 0, 0, 0, 0, 0]]], jnp.float32)
    np.testing.assert_allclose(jaxpool.adaptive_avg_pool1d(x, 3), jaxpool.avg_pool1d(x, 2, 2))
    np.testing.assert_allclose(jaxpool.adaptive_avg_pool1d(x[..., :5], 3), [[[0.5, 0.0, 0.0]]])


def test_adaptive_shapes_of_seed_003():
    """003: (5, 7), 7, (None, 7) and upsampling (80, 60) from (1, 64, 10, 9) or (1, 64, 8, 9)."""
    x = jnp.zeros((1, 64, 8, 9))
    assert jaxpool.adaptive_avg_pool2d(x, (5, 7)).shape == (1, 64, 5, 7)
    y = jnp.zeros((1, 64, 10, 9))
    assert jaxpool.adaptive_avg_pool2d(y, 7).shape == (1, 64, 7, 7)
    assert jaxpool.adaptive_max_pool2d(y, (None, 7)).shape == (1, 64, 10, 7)
    assert jaxpool.adaptive_max_pool2d(y, (80, 60)).shape == (1, 64, 80, 60)


def test_lp_pool_p1_is_a_sum_and_p_inf_is_max():
    """002 says p=1 is average pooling; PyTorch's formula makes it the window *sum*."""
    x = jnp.asarray([[[0.5, 2.0, -3.0, 0.1]]], jnp.float32)
    np.testing.assert_allclose(jaxpool.lp_pool1d(x, 1, 2), [[[2.5, -2.9]]], rtol=1e-6)
    np.testing.assert_allclose(jaxpool.lp_pool1d(x, float("inf"), 2), [[[2.0, 3.0]]])
