"""Flax linen, Flax NNX, Haiku, Equinox and Keras layers against their torch.nn counterparts.

Every layer in every framework, both layouts, on the shared layer cases: one ``jax.jit`` program
per case and layout runs all five frameworks' layers (``Module.apply`` for linen, the NNX module,
``hk.transform``'s apply, ``jax.vmap`` of the unbatched Equinox layer, the Keras layer), so the
five share one compilation.  Gradients through a pool/unpool pair in every framework; constructor
and call signatures against ``inspect.signature`` of the torch.nn class; the generated classes'
introspection; and the ImportError naming the extra when a framework is missing.
(Randomized layers: tests/test_random_layers.py; each framework's own jit: there and in
tests/test_equinox_keras.py.)
"""

import dataclasses
import importlib
import inspect
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")  # before keras is imported (as jaxpool.keras does)

import equinox as eqx
import flax.linen as nn
import haiku as hk
import jax
import jax.numpy as jnp
import keras
import numpy as np
import pytest
import torch
from flax import nnx

import jaxpool.equinox as jequinox
import jaxpool.flax.linen as jlinen
import jaxpool.flax.nnx as jnnx
import jaxpool.haiku as jhaiku
import jaxpool.keras as jkeras
from jaxpool.layer_specs import LAYERS, REQUIRED
from layer_cases import CASES, assert_same, to_layout, torch_outputs

FRAMEWORKS = {"linen": jlinen, "nnx": jnnx, "haiku": jhaiku, "equinox": jequinox, "keras": jkeras}
BASES = {"linen": nn.Module, "nnx": nnx.Module, "haiku": hk.Module, "equinox": eqx.Module,
         "keras": keras.layers.Layer}


def layout_kwargs(framework: str, channels_last: bool) -> dict:
    if framework == "keras":
        return {"data_format": "channels_last" if channels_last else "channels_first"}
    return {"channels_last": channels_last}


def framework_extras(framework: str, spec) -> tuple[list, list]:
    """What each framework adds after torch's arguments: (constructor, call) parameter names."""
    random, flag = spec.random is not None, spec.random is not None and spec.random.training_arg
    if framework == "linen":
        return (["channels_last"] + ["rng_collection"] * random + ["deterministic"] * bool(flag)
                + ["parent", "name"]), ["deterministic"] * bool(flag)
    if framework == "nnx":
        return (["channels_last"] + ["deterministic"] * bool(flag) + ["rng_collection", "rngs"] * random,
                ["deterministic"] * bool(flag) + ["rngs"] * random)
    if framework == "equinox":
        return ["channels_last"] + ["inference"] * bool(flag), ["key"] + ["inference"] * bool(flag)
    if framework == "keras":
        return ["data_format"] + ["seed"] * random + ["kwargs"], ["training"] * bool(flag)
    return ["channels_last", "name"], ["is_training"] * bool(flag)


def call_method(framework: str, cls):
    return cls.call if framework == "keras" else cls.__call__


def every_framework(case, channels_last):
    """A function of the case's inputs returning ``{framework: the layer's output}``."""
    name, args, kwargs, call_kwargs = case.layer, case.args, case.kwargs, case.call_kwargs

    def make(framework):
        return getattr(FRAMEWORKS[framework], name)(*args, **kwargs,
                                                    **layout_kwargs(framework, channels_last))

    def run(*inputs):
        haiku = hk.without_apply_rng(hk.transform(lambda *a: make("haiku")(*a, **call_kwargs)))
        assert jax.eval_shape(haiku.init, None, *inputs) == {}  # no parameters (traced, not run)
        equinox = make("equinox")
        return {
            "linen": make("linen").apply({}, *inputs, **call_kwargs),
            "nnx": make("nnx")(*inputs, **call_kwargs),
            "haiku": haiku.apply({}, *inputs),
            "equinox": jax.vmap(lambda *a: equinox(*a, **call_kwargs))(*inputs),  # unbatched layer
            "keras": make("keras")(*inputs, **call_kwargs),
        }
    return run


@pytest.mark.parametrize("channels_last", [False, True], ids=["NC", "NC_last"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_layers_match_torch(case, channels_last):
    inputs = case.inputs()
    want = torch_outputs(case, inputs)
    arrays = [jnp.asarray(to_layout(a, channels_last)) for a in inputs]
    got = jax.jit(every_framework(case, channels_last))(*arrays)
    assert set(got) == set(FRAMEWORKS)
    for framework, out in got.items():
        try:
            assert_same(out, want, channels_last)
        except AssertionError as error:
            raise AssertionError(f"{framework}: {error}") from None


def test_layers_default_layout():
    """Flax and Haiku default to channels-last, Equinox to channels-first (unbatched), Keras to
    keras.config.image_data_format()."""
    case = next(c for c in CASES if c.id == "AvgPool2d-custom")
    want = torch_outputs(case, case.inputs())
    last = [jnp.asarray(to_layout(a, True)) for a in case.inputs()]
    for framework in FRAMEWORKS:
        cls = getattr(FRAMEWORKS[framework], case.layer)
        layout = inspect.signature(cls).parameters["data_format" if framework == "keras" else "channels_last"]
        assert layout.default is {"equinox": False, "keras": None}.get(framework, True), framework
    assert_same(jlinen.AvgPool2d(*case.args, **case.kwargs).apply({}, *last), want, True)
    assert_same(jnnx.AvgPool2d(*case.args, **case.kwargs)(*last), want, True)
    haiku = hk.transform(lambda x: jhaiku.AvgPool2d(*case.args, **case.kwargs)(x))
    assert_same(haiku.apply({}, None, *last), want, True)
    first = jnp.asarray(case.inputs()[0])
    assert_same(jax.vmap(jequinox.AvgPool2d(*case.args, **case.kwargs))(first), want, False)
    data_format = keras.config.image_data_format()
    try:
        for value, x in [("channels_first", first), ("channels_last", last[0])]:
            keras.config.set_image_data_format(value)
            assert_same(jkeras.AvgPool2d(*case.args, **case.kwargs)(x), want, value == "channels_last")
    finally:
        keras.config.set_image_data_format(data_format)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_gradients_through_layers_match_torch(framework):
    """Input gradient of sum(unpool(pool(x)) * w) through a max pool with indices and an unpool.

    Non-overlapping windows: with overlapping ones, indices repeat and jaxpool's max_unpool
    gradient currently differs from torch's (reported to the core; not a layer matter).
    """
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    w = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    tx = torch.from_numpy(x).requires_grad_(True)
    y, i = torch.nn.MaxPool2d(2, return_indices=True, ceil_mode=True)(tx)
    (torch.nn.MaxUnpool2d(2)(y, i, output_size=(8, 7)) * torch.from_numpy(w)).sum().backward()
    mod = FRAMEWORKS[framework]
    layout = layout_kwargs(framework, False)

    def net(x):
        y, i = mod.MaxPool2d(2, return_indices=True, ceil_mode=True, **layout)(x)
        return mod.MaxUnpool2d(2, **layout)(y, i, output_size=(8, 7))

    if framework == "linen":
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return net(x)
        forward = lambda x: Net().apply({}, x)  # noqa: E731
    elif framework == "haiku":
        forward = lambda x: hk.transform(net).apply({}, None, x)  # noqa: E731
    elif framework == "equinox":
        forward = jax.vmap(net)
    else:
        forward = net
    grad = jax.jit(jax.grad(lambda x: (forward(x) * w).sum()))(jnp.asarray(x))
    np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-6, atol=1e-6)


# -- signatures and introspection ----------------------------------------------------------------

TORCH_BACKED = [name for name in LAYERS if hasattr(torch.nn, name)]


def _torch_init_params(name):
    params = list(inspect.signature(getattr(torch.nn, name).__init__).parameters.values())[1:]
    return [(p.name, p.default) for p in params]


def test_every_torch_pooling_layer_has_a_spec():
    families = ("MaxPool", "AvgPool", "LPPool", "AdaptiveAvgPool", "AdaptiveMaxPool", "MaxUnpool")
    wanted = {f"{f}{n}d" for f in families for n in (1, 2, 3)}
    assert wanted <= set(LAYERS)
    for name, spec in LAYERS.items():  # a layer torch lacks must be a randomized jaxpool extra
        assert hasattr(torch.nn, name) or spec.random is not None, name


@pytest.mark.parametrize("name", TORCH_BACKED)
def test_spec_matches_torch_signature(name):
    spec = LAYERS[name]
    assert list(spec.params) == _torch_init_params(name)
    forward = list(inspect.signature(getattr(torch.nn, name).forward).parameters.values())[2:]
    assert list(spec.call_params) == [(p.name, p.default) for p in forward]


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_layer_signatures_match_torch(framework):
    for name, spec in LAYERS.items():
        cls = getattr(FRAMEWORKS[framework], name)
        params = inspect.signature(cls).parameters
        init_extras, call_extras = framework_extras(framework, spec)
        assert list(params) == list(spec.param_names) + init_extras, name
        for pname, default in spec.params:
            assert params[pname].default == default or (params[pname].default is default is REQUIRED)
            assert params[pname].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
        layout = params["data_format" if framework == "keras" else "channels_last"]
        assert layout.kind == inspect.Parameter.KEYWORD_ONLY
        call = list(inspect.signature(call_method(framework, cls)).parameters.values())[1:]
        want = [("input", REQUIRED), *spec.call_params]
        if hasattr(torch.nn, name):  # spec.call_params are torch's (test_spec_matches_torch_signature)
            forward = list(inspect.signature(getattr(torch.nn, name).forward).parameters.values())[1:]
            assert want == [(p.name, p.default) for p in forward]
        extras = [(extra, REQUIRED if extra == "is_training" else None) for extra in call_extras]
        assert [(p.name, p.default) for p in call] == want + extras, name


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_generated_classes_are_real_classes(framework):
    module = FRAMEWORKS[framework]
    for name, spec in LAYERS.items():
        cls = getattr(module, name)
        assert isinstance(cls, type) and issubclass(cls, BASES[framework]) and issubclass(cls, module.Layer)
        assert (cls.__name__, cls.__qualname__, cls.__module__) == (name, name, module.__name__)
        assert name in module.__all__
        assert spec.reference.strip(":func").strip("`") in cls.__doc__
        assert ("data_format" if framework == "keras" else "channels_last") in cls.__doc__
        assert f"jaxpool.{spec.op_name}" in cls.__doc__
        for pname, _ in spec.params:
            assert f"  {pname}:" in cls.__doc__
        method = call_method(framework, cls)
        assert method.__qualname__ == f"{name}.{method.__name__}" and method.__doc__
        if framework in ("linen", "equinox"):  # dataclass fields in torch's order
            fields = [f.name for f in dataclasses.fields(cls)]
            assert fields[:len(spec.params)] == list(spec.param_names)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_constructor_errors_name_the_layer(framework):
    cls = FRAMEWORKS[framework].MaxPool2d
    with pytest.raises(TypeError, match="kernel_size"):
        if framework == "haiku":
            hk.transform(lambda: cls()).init(None)
        else:
            cls()
    with pytest.raises((TypeError, ValueError), match="bogus"):
        if framework == "haiku":
            hk.transform(lambda: cls(2, bogus=1)).init(None)
        else:
            cls(2, bogus=1)


def test_nnx_layers_hold_only_static_state():
    layer = jnnx.MaxPool2d([3, 3], stride=(2, 2))
    assert layer.kernel_size == (3, 3)  # lists frozen to tuples: hashable static attributes
    assert jax.tree.leaves(nnx.state(layer)) == []


def test_equinox_layers_hold_only_static_fields():
    layer = jequinox.MaxPool2d([3, 3], stride=[2, 2])
    assert layer.kernel_size == (3, 3) and layer.stride == (2, 2)  # hashable static fields
    assert jax.tree.leaves(layer) == []
    hash(layer)


def test_haiku_layers_expose_torch_attribute_names():
    def forward():
        layer = jhaiku.AvgPool2d(3, 2, count_include_pad=False, name="pool")
        return layer.kernel_size, layer.stride, layer.count_include_pad, layer.module_name
    assert hk.transform(forward).apply({}, None) == (3, 2, False, "pool")


# -- optional extras -----------------------------------------------------------------------------

@pytest.mark.parametrize("module, missing, extra", [
    ("jaxpool.flax.linen", "flax", "flax"),
    ("jaxpool.flax.nnx", "flax", "flax"),
    ("jaxpool.haiku", "haiku", "haiku"),
    ("jaxpool.equinox", "equinox", "equinox"),
    ("jaxpool.keras", "keras", "keras"),
])
def test_missing_framework_names_the_extra(monkeypatch, module, missing, extra):
    for name in list(sys.modules):
        if name == missing or name.startswith(missing + "."):
            monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError, match=rf"pip install 'jaxpool\[{extra}\]'"):
        importlib.import_module(module)
