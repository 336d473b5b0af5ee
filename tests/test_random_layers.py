"""The randomized layers (FractionalMaxPool2d/3d, StochasticPool1d..3d) in every framework.

Fractional layers given ``_random_samples`` equal torch.nn.FractionalMaxPool*d exactly; without
samples they draw from the framework's 'pooling' rng.  Stochastic layers equal the functional op:
the expectation when deterministic / not training, a key-dependent pick when training.
"""

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxpool
import jaxpool.flax.linen as jlinen
import jaxpool.flax.nnx as jnnx
import jaxpool.haiku as jhaiku

RNG = np.random.default_rng(3)
X2 = RNG.standard_normal((2, 3, 11, 9)).astype(np.float32)            # channels-first
X3 = RNG.standard_normal((1, 2, 7, 8, 9)).astype(np.float32)
SAMPLES2 = RNG.random((2, 3, 2)).astype(np.float32)
SAMPLES3 = RNG.random((1, 2, 3)).astype(np.float32)
POS = np.abs(X2)                                                        # stochastic pooling input


def _run(framework, cls_name, kwargs, x, *, key=None, training=None):
    """Build the layer in ``framework`` (channels-first) and call it on ``x``."""
    if framework == "linen":
        layer = getattr(jlinen, cls_name)(**kwargs, channels_last=False)
        extra = {} if training is None else {"deterministic": not training}
        rngs = {} if key is None else {"rngs": {"pooling": key}}
        return layer.apply({}, jnp.asarray(x), **extra, **rngs)
    if framework == "nnx":
        rngs = None if key is None else nnx.Rngs(pooling=key)
        layer = getattr(jnnx, cls_name)(**kwargs, channels_last=False, rngs=rngs)
        extra = {} if training is None else {"deterministic": not training}
        return layer(jnp.asarray(x), **extra)
    extra = {} if training is None else {"is_training": training}
    forward = hk.transform(lambda a: getattr(jhaiku, cls_name)(**kwargs, channels_last=False)(a, **extra))
    return forward.apply({}, key, jnp.asarray(x))


FRAMEWORKS = ("linen", "nnx", "haiku")


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("ndim", (2, 3))
def test_fractional_layer_with_samples_equals_torch(framework, ndim):
    x, samples = (X2, SAMPLES2) if ndim == 2 else (X3, SAMPLES3)
    kwargs = dict(kernel_size=2, output_size=(4,) * ndim, return_indices=True)
    torch_layer = getattr(torch.nn, f"FractionalMaxPool{ndim}d")(
        **kwargs, _random_samples=torch.from_numpy(samples))
    expected, expected_idx = torch_layer(torch.from_numpy(x))
    got, idx = _run(framework, f"FractionalMaxPool{ndim}d", dict(kwargs, _random_samples=samples), x)
    np.testing.assert_array_equal(got, expected.numpy())
    np.testing.assert_array_equal(idx, expected_idx.numpy())
    # from_torch carries the samples too
    converted = jaxpool.from_torch(torch_layer)
    np.testing.assert_array_equal(converted(jnp.asarray(x))[0], expected.numpy())


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_fractional_layer_draws_from_the_pooling_rng(framework):
    kwargs = dict(kernel_size=2, output_ratio=0.5)  # alpha = 9/4, 7/3: windows depend on samples
    a = _run(framework, "FractionalMaxPool2d", kwargs, X2, key=jax.random.key(0))
    again = _run(framework, "FractionalMaxPool2d", kwargs, X2, key=jax.random.key(0))
    b = _run(framework, "FractionalMaxPool2d", kwargs, X2, key=jax.random.key(1))
    assert a.shape == (2, 3, 5, 4)
    np.testing.assert_array_equal(a, again)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("ndim", (1, 2, 3))
def test_stochastic_layer_inference_is_the_functional_expectation(framework, ndim):
    x = POS[(0,) * (3 - ndim)] if ndim < 3 else np.abs(X3)
    expected = getattr(jaxpool, f"stochastic_pool{ndim}d")(jnp.asarray(x), 2, training=False)
    got = _run(framework, f"StochasticPool{ndim}d", dict(kernel_size=2), x, training=False)
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_stochastic_layer_training_picks_window_cells(framework):
    picks = _run(framework, "StochasticPool2d", dict(kernel_size=2), POS, key=jax.random.key(0), training=True)
    again = _run(framework, "StochasticPool2d", dict(kernel_size=2), POS, key=jax.random.key(0), training=True)
    np.testing.assert_array_equal(picks, again)
    windows = POS[:, :, :10, :8].reshape(2, 3, 5, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 5, 4, 4)
    assert (np.asarray(picks)[..., None] == windows).any(-1).all()  # every output is a cell of its window
    assert not np.array_equal(picks, _run(framework, "StochasticPool2d", dict(kernel_size=2), POS,
                                          key=jax.random.key(1), training=True))
