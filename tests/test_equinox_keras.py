"""Equinox and Keras layers in their frameworks' own machinery.

Equinox: ``eqx.nn.Sequential`` (which passes ``key=`` to every layer), ``eqx.filter_jit``,
``eqx.filter_vmap``.  Keras: a model using the layers builds, trains one step, and round-trips
``model.save``/``keras.models.load_model`` with equal outputs.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (as jaxpool.keras does)

import equinox as eqx
import jax
import jax.numpy as jnp
import keras
import numpy as np
import torch

import jaxpool.equinox as jpe
import jaxpool.keras as jpk

X = np.random.default_rng(5).standard_normal((2, 3, 14, 14)).astype(np.float32)


def test_equinox_sequential_filter_jit_and_filter_vmap_match_torch():
    model = eqx.nn.Sequential([jpe.MaxPool2d(3, stride=2, padding=1), jpe.AdaptiveAvgPool2d(7),
                               jpe.StochasticPool2d(2, inference=True)])
    forward = eqx.filter_jit(eqx.filter_vmap(lambda m, x, k: m(x, key=k), in_axes=(None, 0, 0)))
    got = forward(model, jnp.asarray(X), jax.random.split(jax.random.key(0), 2))
    t = torch.nn.AdaptiveAvgPool2d(7)(torch.nn.MaxPool2d(3, 2, 1)(torch.from_numpy(X)))
    np.testing.assert_allclose(got, jax.vmap(lambda a: jpe.StochasticPool2d(2)(a, inference=True))(
        jnp.asarray(t.numpy())), rtol=1e-5, atol=1e-6)


def test_keras_model_builds_trains_and_round_trips_save_load(tmp_path):
    inputs = keras.Input((14, 14, 3))
    y, indices = jpk.MaxPool2d(2, return_indices=True, data_format="channels_last")(inputs)
    y = jpk.MaxUnpool2d(2, data_format="channels_last")(y, indices)
    y = jpk.AdaptiveAvgPool2d(7, data_format="channels_last")(y)   # Keras's own: NaN for 14 -> 7
    y = jpk.StochasticPool2d(2, data_format="channels_last", seed=0)(y)
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(y))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="sgd", loss="mse")
    x = np.moveaxis(X, 1, -1)
    before = model.predict(x, verbose=0)
    loss = model.train_on_batch(x, np.zeros((2, 2), np.float32))
    assert np.isfinite(loss)
    after = model.predict(x, verbose=0)
    assert not np.allclose(before, after)  # the Dense layer trained through the pooling layers
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), after)
    config = loaded.layers[1].get_config()
    assert loaded.layers[1].__class__ is jpk.MaxPool2d and config["return_indices"] is True
    assert config["data_format"] == "channels_last"


def test_keras_config_round_trip_keeps_fractional_samples():
    samples = np.random.default_rng(6).random((2, 3, 2)).astype(np.float32)
    layer = jpk.FractionalMaxPool2d(2, output_size=(4, 5), return_indices=True,
                                    _random_samples=samples, data_format="channels_first")
    config = layer.get_config()
    assert config["output_size"] == [4, 5] and isinstance(config["_random_samples"], list)
    again = jpk.FractionalMaxPool2d.from_config(config)
    torch_out = torch.nn.FractionalMaxPool2d(2, output_size=(4, 5), return_indices=True,
                                             _random_samples=torch.from_numpy(samples))(torch.from_numpy(X))
    for got in (layer(X), again(X)):
        np.testing.assert_array_equal(got[0], torch_out[0].numpy())
        np.testing.assert_array_equal(got[1], torch_out[1].numpy())
