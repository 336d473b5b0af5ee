"""The randomized layers (FractionalMaxPool2d/3d, StochasticPool1d..3d) in every framework.

Fractional layers given ``_random_samples`` equal torch.nn.FractionalMaxPool*d exactly; without
samples they draw from the framework's rng (linen/nnx/haiku 'pooling', Equinox ``key=``, Keras
``seed``).  Stochastic layers equal the functional op: the expectation when deterministic / not
training / inference, a key-dependent pick when training.  Then each framework's own idiom:
nnx's stream and ``model.eval()``, Haiku's positional ``is_training``, Equinox's ``inference``
and ``eqx.nn.inference_mode``.
"""

import inspect
import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (as jaxpool.keras does)

import equinox as eqx
import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import jaxpool
import jaxpool.equinox as jequinox
import jaxpool.flax.linen as jlinen
import jaxpool.flax.nnx as jnnx
import jaxpool.haiku as jhaiku
import jaxpool.keras as jkeras

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
    if framework == "equinox":
        return _run_equinox(cls_name, kwargs, x, key, training)
    if framework == "keras":
        seed = None if key is None else int(jax.random.randint(key, (), 0, 2**30))
        extra = {} if training is None else {"training": training}
        layer = getattr(jkeras, cls_name)(**kwargs, data_format="channels_first", seed=seed)
        return layer(jnp.asarray(x), **extra)
    extra = {} if training is None else {"is_training": training}
    forward = hk.transform(lambda a: getattr(jhaiku, cls_name)(**kwargs, channels_last=False)(a, **extra))
    return forward.apply({}, key, jnp.asarray(x))


def _run_equinox(cls_name, kwargs, x, key, training):
    """Unbatched layers: one example, one key (and one row of samples) per call, stacked."""
    extra = {} if training is None else {"inference": not training}
    if x.ndim == int(cls_name[-2]) + 1:  # already one unbatched example
        return getattr(jequinox, cls_name)(**kwargs)(jnp.asarray(x), key=key, **extra)
    keys = [None] * len(x) if key is None else list(jax.random.split(key, len(x)))
    outputs = []
    for i, (example, k) in enumerate(zip(x, keys)):
        layer_kwargs = dict(kwargs)
        if layer_kwargs.get("_random_samples") is not None:
            layer_kwargs["_random_samples"] = layer_kwargs["_random_samples"][i:i + 1]
        out = getattr(jequinox, cls_name)(**layer_kwargs)(jnp.asarray(example), key=k, **extra)
        outputs.append(out if isinstance(out, tuple) else (out,))
    stacked = tuple(np.stack(parts) for parts in zip(*outputs))
    return stacked if len(stacked) > 1 else stacked[0]


FRAMEWORKS = ("linen", "nnx", "haiku", "equinox", "keras")


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


# -- each framework's idiom ----------------------------------------------------------------------

def test_nnx_stream_advances_and_eval_switches_to_inference():
    layer = jnnx.StochasticPool2d(2, channels_last=False, rngs=nnx.Rngs(pooling=0))
    run = nnx.jit(lambda m, x: m(x))
    first, second = run(layer, POS), run(layer, POS)
    assert not np.array_equal(first, second)  # the stream advances between calls, as nnx.Dropout
    layer.eval()
    assert layer.deterministic is True
    expected = jaxpool.stochastic_pool2d(jnp.asarray(POS), 2, training=False)
    np.testing.assert_allclose(run(layer, POS), expected, rtol=1e-6)
    layer.train()
    assert layer.deterministic is False
    with pytest.raises(ValueError, match="StochasticPool2d needs a key"):
        jnnx.StochasticPool2d(2, channels_last=False)(POS)


def test_haiku_is_training_is_positional_and_required():
    cls = jhaiku.StochasticPool2d
    assert inspect.signature(cls.__call__).parameters["is_training"].default is inspect.Parameter.empty
    expected = jaxpool.stochastic_pool2d(jnp.asarray(POS), 2, training=False)
    positional = hk.transform(lambda x: cls(2, channels_last=False)(x, False))
    keyword = hk.transform(lambda x: cls(2, channels_last=False)(x, is_training=False))
    np.testing.assert_allclose(positional.apply({}, None, POS), expected, rtol=1e-6)
    np.testing.assert_allclose(keyword.apply({}, None, POS), expected, rtol=1e-6)
    with pytest.raises(TypeError, match="is_training"):  # a forgotten flag is an error, not sampling
        hk.transform(lambda x: cls(2, channels_last=False)(x)).apply({}, None, POS)
    with pytest.raises(TypeError, match="is_training must be a bool"):
        hk.transform(lambda x: cls(2, channels_last=False)(x, 1)).apply({}, None, POS)
    sampled = jax.jit(hk.transform(lambda x: cls(2, channels_last=False)(x, True)).apply)(
        {}, jax.random.key(0), POS)
    assert not np.allclose(sampled, expected)


def test_equinox_inference_flag_and_inference_mode():
    layer = jequinox.StochasticPool2d(2)
    expected = jaxpool.stochastic_pool2d(jnp.asarray(POS[0]), 2, training=False)
    with pytest.raises(ValueError, match="StochasticPool2d is randomized: call it with key="):
        layer(POS[0])
    np.testing.assert_allclose(layer(POS[0], inference=True), expected, rtol=1e-6)
    frozen = eqx.nn.inference_mode(eqx.nn.Sequential([jequinox.MaxPool2d(1), layer]))
    assert frozen.layers[1].inference is True
    np.testing.assert_allclose(frozen(POS[0]), expected, rtol=1e-6)
    np.testing.assert_allclose(eqx.tree_inference(layer, True)(POS[0]), expected, rtol=1e-6)
    sampled = layer(POS[0], key=jax.random.key(0))
    assert not np.allclose(sampled, expected)
    np.testing.assert_array_equal(sampled, jaxpool.stochastic_pool2d(jnp.asarray(POS[0]), 2,
                                                                     key=jax.random.key(0)))
    with pytest.raises(ValueError, match="unbatched example"):
        layer(POS, key=jax.random.key(0))   # a batch: vmap it, as Equinox's own layers


def test_keras_training_flag_and_seed():
    layer = jkeras.StochasticPool2d(2, data_format="channels_first", seed=3)
    expected = jaxpool.stochastic_pool2d(jnp.asarray(POS), 2, training=False)
    np.testing.assert_allclose(layer(POS), expected, rtol=1e-6)            # None: not training
    np.testing.assert_allclose(layer(POS, training=False), expected, rtol=1e-6)
    first, second = layer(POS, training=True), layer(POS, training=True)
    assert not np.array_equal(first, second)  # the seed generator advances
    again = jkeras.StochasticPool2d(2, data_format="channels_first", seed=3)(POS, training=True)
    np.testing.assert_array_equal(first, again)  # same seed, same draws


def test_linen_deterministic_merges_field_and_call_argument():
    expected = jaxpool.stochastic_pool2d(jnp.asarray(POS), 2, training=False)
    layer = jlinen.StochasticPool2d(2, channels_last=False)
    np.testing.assert_allclose(layer.apply({}, POS, deterministic=True), expected, rtol=1e-6)
    np.testing.assert_allclose(jlinen.StochasticPool2d(2, channels_last=False, deterministic=True)
                               .apply({}, POS), expected, rtol=1e-6)     # no rng needed
    with pytest.raises(Exception, match="deterministic"):  # nn.merge_param: must be given somewhere
        layer.apply({}, POS, rngs={"pooling": jax.random.key(0)})
    with pytest.raises(Exception, match="pooling"):
        layer.apply({}, POS, deterministic=False)
