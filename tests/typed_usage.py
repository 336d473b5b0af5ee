"""Typed use of jaxpool's public API: ``mypy --strict`` must pass on this file (tests/test_typing.py).

It is never run; it states what a type checker must see: the per-dimension operators with
``return_indices`` typed through ``@overload``, and the layer classes of every framework module
with their constructor signatures.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

import jaxpool
import jaxpool.equinox as jpe
import jaxpool.flax.linen as jpl
import jaxpool.flax.nnx as jpn
import jaxpool.haiku as jph
import jaxpool.keras as jpk
from jaxpool import functional as F


def operators(x: jax.Array) -> jax.Array:
    pooled: jax.Array = jaxpool.max_pool2d(x, 2)
    values, indices = jaxpool.max_pool2d(x, 2, return_indices=True)
    values2, indices2 = F.max_pool2d(x, 3, 2, 1, 1, False, True, channels_last=True)
    unpooled: jax.Array = jaxpool.max_unpool2d(values, indices, 2)
    adaptive: jax.Array = jaxpool.adaptive_avg_pool2d(x, (7, None))
    am, am_indices = jaxpool.adaptive_max_pool3d(x, 2, return_indices=True)
    fractional: jax.Array = jaxpool.fractional_max_pool2d(x, 2, output_ratio=0.5,
                                                          key=jax.random.key(0))
    stochastic: jax.Array = jaxpool.stochastic_pool1d(x, 2, training=False)
    lp: jax.Array = F.lp_pool2d(x, 2.0, (2, 3), ceil_mode=True)
    average: jax.Array = F.avg_pool3d(x, [2, 2, 2], divisor_override=3)
    return (pooled + values + indices + values2 + indices2 + unpooled + adaptive + am + am_indices
            + fractional + stochastic + lp + average)


def layers(x: jax.Array) -> jax.Array:
    linen = jpl.MaxPool2d(3, stride=2, padding=1)
    linen_out = linen.apply({}, x)
    eqx_layer = jpe.AdaptiveAvgPool2d((7, 7))
    eqx_out = eqx_layer(x[0], key=jax.random.key(0))
    nnx_out = jpn.AvgPool2d(2, count_include_pad=False)(x)
    keras_layer = jpk.MaxPool2d(2, data_format="channels_first")
    haiku_layer = jph.StochasticPool2d
    assert haiku_layer.__name__ == "StochasticPool2d"
    assert keras_layer.name
    return jnp.sum(eqx_out) + jnp.sum(nnx_out) + jnp.sum(jnp.asarray(linen_out))
