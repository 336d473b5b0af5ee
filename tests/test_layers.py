"""Flax linen, Flax NNX and Haiku layers against their torch.nn counterparts.

Every layer in every framework, both layouts, under each framework's jit (``jax.jit`` of
``Module.apply`` for linen, ``nnx.jit`` for NNX, ``jax.jit`` of ``hk.transform``'s apply for
Haiku); constructor and call signatures against ``inspect.signature`` of the torch.nn class; the
generated classes' introspection; the rng hook of randomized layers with a test-local random op;
and the ImportError naming the extra when a framework is missing.
"""

import dataclasses
import importlib
import inspect
import sys

import flax.linen as nn
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
from jaxpool import layer_specs
from jaxpool.layer_specs import LAYERS, REQUIRED, RandomSpec
from layer_cases import CASES, assert_same, to_layout, torch_outputs

FRAMEWORKS = {"linen": jlinen, "nnx": jnnx, "haiku": jhaiku}


def framework_extras(framework: str, spec) -> tuple[list, list]:
    """What each framework adds after torch's arguments: (constructor, call) parameter names."""
    random, flag = spec.random is not None, spec.random is not None and spec.random.training_arg
    if framework == "linen":
        return (["parent", "name", "channels_last"] + ["rng_collection"] * random
                + ["deterministic"] * bool(flag)), ["deterministic"] * bool(flag)
    if framework == "nnx":
        return (["channels_last"] + ["deterministic"] * bool(flag) + ["rng_collection", "rngs"] * random,
                ["deterministic"] * bool(flag) + ["rngs"] * random)
    return ["channels_last", "name"], ["is_training"] * bool(flag)


def run_linen(cls, case, channels_last, inputs):
    layer = cls(*case.args, **case.kwargs, channels_last=channels_last)
    return jax.jit(lambda *a: layer.apply({}, *a, **case.call_kwargs))(*inputs)


def run_nnx(cls, case, channels_last, inputs):
    layer = cls(*case.args, **case.kwargs, channels_last=channels_last)
    return nnx.jit(lambda m, *a: m(*a, **case.call_kwargs))(layer, *inputs)


def run_haiku(cls, case, channels_last, inputs):
    def forward(*a):
        return cls(*case.args, **case.kwargs, channels_last=channels_last)(*a, **case.call_kwargs)
    transformed = hk.without_apply_rng(hk.transform(forward))
    assert jax.eval_shape(transformed.init, None, *inputs) == {}  # no parameters (traced, not run)
    return jax.jit(transformed.apply)({}, *inputs)


RUNNERS = {"linen": run_linen, "nnx": run_nnx, "haiku": run_haiku}


@pytest.mark.parametrize("channels_last", [False, True], ids=["NC", "NC_last"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_layer_matches_torch(case, framework, channels_last):
    inputs = case.inputs()
    want = torch_outputs(case, inputs)
    cls = getattr(FRAMEWORKS[framework], case.layer)
    arrays = [jnp.asarray(to_layout(a, channels_last)) for a in inputs]
    got = RUNNERS[framework](cls, case, channels_last, arrays)
    assert_same(got, want, channels_last)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_layers_default_to_channels_last(framework):
    case = next(c for c in CASES if c.id == "AvgPool2d-custom")
    inputs = [jnp.asarray(to_layout(a, True)) for a in case.inputs()]
    cls = getattr(FRAMEWORKS[framework], case.layer)
    assert inspect.signature(cls).parameters["channels_last"].default is True
    if framework == "linen":
        got = cls(*case.args, **case.kwargs).apply({}, *inputs)
    elif framework == "nnx":
        got = cls(*case.args, **case.kwargs)(*inputs)
    else:
        got = hk.transform(lambda x: cls(*case.args, **case.kwargs)(x)).apply({}, None, *inputs)
    assert_same(got, torch_outputs(case, case.inputs()), channels_last=True)


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

    def net(x):
        y, i = mod.MaxPool2d(2, return_indices=True, ceil_mode=True, channels_last=False)(x)
        return (mod.MaxUnpool2d(2, channels_last=False)(y, i, output_size=(8, 7)) * w).sum()

    if framework == "linen":
        class Net(nn.Module):
            @nn.compact
            def __call__(self, x):
                return net(x)
        loss = lambda x: Net().apply({}, x)  # noqa: E731
    elif framework == "nnx":
        loss = net
    else:
        loss = lambda x: hk.transform(net).apply({}, None, x)  # noqa: E731
    grad = jax.jit(jax.grad(loss))(jnp.asarray(x))
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
@pytest.mark.parametrize("name", TORCH_BACKED)
def test_layer_signatures_match_torch(name, framework):
    cls = getattr(FRAMEWORKS[framework], name)
    params = inspect.signature(cls).parameters
    torch_params = _torch_init_params(name)
    assert list(params)[:len(torch_params)] == [n for n, _ in torch_params]
    init_extras, call_extras = framework_extras(framework, LAYERS[name])
    assert list(params)[len(torch_params):] == init_extras
    for pname, default in torch_params:
        assert params[pname].default == default or (params[pname].default is default is REQUIRED)
        assert params[pname].kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert params["channels_last"].kind == inspect.Parameter.KEYWORD_ONLY
    assert params["channels_last"].default is True
    call = list(inspect.signature(cls.__call__).parameters.values())[1:]
    forward = list(inspect.signature(getattr(torch.nn, name).forward).parameters.values())[1:]
    assert [(p.name, p.default) for p in call] == [(p.name, p.default) for p in forward] + [
        (extra, True if extra == "is_training" else None) for extra in call_extras]


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("name", TORCH_BACKED)
def test_generated_classes_are_real_classes(name, framework):
    module = FRAMEWORKS[framework]
    cls = getattr(module, name)
    base = {"linen": nn.Module, "nnx": nnx.Module, "haiku": hk.Module}[framework]
    assert isinstance(cls, type) and issubclass(cls, base)
    assert (cls.__name__, cls.__qualname__, cls.__module__) == (name, name, module.__name__)
    assert name in module.__all__
    assert f"torch.nn.{name}" in cls.__doc__ and "channels_last" in cls.__doc__
    assert LAYERS[name].op_name in cls.__doc__
    for pname, _ in LAYERS[name].params:
        assert f"  {pname}:" in cls.__doc__
    assert cls.__call__.__qualname__.endswith(f"{name}.__call__")
    if framework == "linen":
        fields = [f.name for f in dataclasses.fields(cls)]
        assert fields[:len(LAYERS[name].params)] == list(LAYERS[name].param_names)


@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_constructor_errors_name_the_layer(framework):
    cls = FRAMEWORKS[framework].MaxPool2d
    with pytest.raises(TypeError, match="kernel_size"):
        if framework == "haiku":
            hk.transform(lambda: cls()).init(None)
        else:
            cls()
    if framework != "linen":  # linen's dataclass constructor is Python's own
        with pytest.raises(TypeError, match="unexpected keyword argument .bogus"):
            if framework == "haiku":
                hk.transform(lambda: cls(2, bogus=1)).init(None)
            else:
                cls(2, bogus=1)


def test_nnx_layers_hold_only_static_state():
    layer = jnnx.MaxPool2d([3, 3], stride=(2, 2))
    assert layer.kernel_size == (3, 3)  # lists frozen to tuples: hashable static attributes
    assert jax.tree.leaves(nnx.state(layer)) == []


def test_haiku_layers_expose_torch_attribute_names():
    def forward():
        layer = jhaiku.AvgPool2d(3, 2, count_include_pad=False, name="pool")
        return layer.kernel_size, layer.stride, layer.count_include_pad, layer.module_name
    assert hk.transform(forward).apply({}, None) == (3, 2, False, "pool")


# -- the rng hook of randomized layers, with a test-local random op ----------------------------

def noisy_max_pool2d(input, kernel_size, stride=None, fixed_noise=None, *, key, training=True,
                     channels_last=False):
    """max_pool2d plus uniform noise when training; returns (pooled, noise, key was given)."""
    pooled = jaxpool.max_pool2d(input, kernel_size, stride, channels_last=channels_last)
    if not training:
        noise = jnp.zeros_like(pooled)
    elif fixed_noise is not None:
        noise = jnp.full_like(pooled, fixed_noise)
    else:
        noise = jax.random.uniform(key, pooled.shape)
    return pooled, noise, key is not None


def always_noisy_pool2d(input, kernel_size, *, key, channels_last=False):
    pooled = jaxpool.max_pool2d(input, kernel_size, channels_last=channels_last)
    return pooled, jax.random.uniform(key, pooled.shape), key is not None


NOISY = layer_specs.spec(
    "NoisyPool2d", noisy_max_pool2d,
    [("kernel_size", REQUIRED), ("stride", None), ("fixed_noise", None)],
    random=RandomSpec(training_arg="training", key_optional_when=("fixed_noise",)))
ALWAYS = layer_specs.spec("AlwaysNoisyPool2d", always_noisy_pool2d, [("kernel_size", REQUIRED)],
                          random=RandomSpec())
X = jnp.asarray(np.random.default_rng(2).standard_normal((2, 6, 6, 3)), jnp.float32)
POOLED = jaxpool.max_pool2d(X, 2, channels_last=True)


def _check_noise(outputs):
    """outputs: {seed: (pooled, noise, had_key)} for two runs with seed 0 and one with seed 1."""
    for pooled, noise, had_key in outputs.values():
        np.testing.assert_array_equal(pooled, POOLED)
        assert had_key and noise.shape == POOLED.shape
        assert float(noise.min()) >= 0 and float(noise.max()) < 1 and float(noise.std()) > 0.1
    np.testing.assert_array_equal(outputs["0"][1], outputs["0again"][1])  # reproducible
    assert not np.array_equal(outputs["0"][1], outputs["1"][1])          # key-dependent


def _check_off(out, noise_value=0.0):
    pooled, noise, had_key = out
    np.testing.assert_array_equal(pooled, POOLED)
    np.testing.assert_array_equal(noise, jnp.full_like(POOLED, noise_value))
    assert not had_key  # no key drawn: no rng needed


def test_random_layer_linen():
    Noisy, Always = jlinen.layer_class(NOISY), jlinen.layer_class(ALWAYS)
    assert [f.name for f in dataclasses.fields(Noisy)] == [
        "kernel_size", "stride", "fixed_noise", "channels_last", "rng_collection", "deterministic",
        "parent", "name"]
    layer = Noisy(2)
    apply = jax.jit(lambda x, key: layer.apply({}, x, deterministic=False, rngs={"pooling": key}))
    _check_noise({s: apply(X, jax.random.key(int(s[0]))) for s in ("0", "0again", "1")})
    _check_off(layer.apply({}, X, deterministic=True))
    _check_off(Noisy(2, deterministic=True).apply({}, X))
    _check_off(Noisy(2, fixed_noise=0.5, deterministic=False).apply({}, X), 0.5)
    with pytest.raises(Exception, match="deterministic"):  # nn.merge_param: must be given somewhere
        layer.apply({}, X, rngs={"pooling": jax.random.key(0)})
    with pytest.raises(Exception, match="pooling"):
        layer.apply({}, X, deterministic=False)
    assert "deterministic" not in inspect.signature(Always).parameters
    _check_noise({s: Always(2).apply({}, X, rngs={"pooling": jax.random.key(int(s[0]))})
                  for s in ("0", "0again", "1")})


def test_random_layer_nnx():
    Noisy, Always = jnnx.layer_class(NOISY), jnnx.layer_class(ALWAYS)
    assert list(inspect.signature(Noisy).parameters)[-4:] == [
        "channels_last", "deterministic", "rng_collection", "rngs"]
    run = nnx.jit(lambda m, x: m(x))
    _check_noise({s: run(Noisy(2, rngs=nnx.Rngs(pooling=int(s[0]))), X) for s in ("0", "0again", "1")})
    layer = Noisy(2, rngs=nnx.Rngs(pooling=0))
    first, second = run(layer, X)[1], run(layer, X)[1]
    assert not np.array_equal(first, second)  # the stream advances between calls, as nnx.Dropout
    layer.eval()
    assert layer.deterministic is True
    _check_off(run(layer, X))
    layer.train()
    assert not np.array_equal(run(layer, X)[1], 0)
    _check_off(Noisy(2)(X, deterministic=True))
    _check_off(Noisy(2, fixed_noise=0.25)(X), 0.25)
    out = Noisy(2)(X, rngs=nnx.Rngs(pooling=3))  # call-time rngs
    np.testing.assert_array_equal(out[1], Noisy(2)(X, rngs=nnx.Rngs(pooling=3))[1])
    np.testing.assert_array_equal(Noisy(2)(X, rngs=jax.random.key(5))[1],
                                  jax.random.uniform(jax.random.key(5), POOLED.shape))
    with pytest.raises(ValueError, match="NoisyPool2d needs a key"):
        Noisy(2)(X)
    with pytest.raises(TypeError, match="rngs must be"):
        Noisy(2, rngs=3)
    _check_noise({s: Always(2, rngs=nnx.Rngs(pooling=int(s[0])))(X) for s in ("0", "0again", "1")})


def test_random_layer_haiku():
    Noisy, Always = jhaiku.layer_class(NOISY), jhaiku.layer_class(ALWAYS)
    forward = hk.transform(lambda x, is_training: Noisy(2)(x, is_training=is_training))
    apply = jax.jit(forward.apply, static_argnums=3)
    _check_noise({s: apply({}, jax.random.key(int(s[0])), X, True) for s in ("0", "0again", "1")})
    _check_off(apply({}, None, X, False))
    _check_off(hk.transform(lambda x: Noisy(2, fixed_noise=0.5)(x)).apply({}, None, X), 0.5)
    with pytest.raises(ValueError, match="PRNGKey"):
        apply({}, None, X, True)
    assert "is_training" not in inspect.signature(Always.__call__).parameters
    always = hk.transform(lambda x: Always(2)(x))
    _check_noise({s: always.apply({}, jax.random.key(int(s[0])), X) for s in ("0", "0again", "1")})


# -- optional extras -----------------------------------------------------------------------------

@pytest.mark.parametrize("module, missing, extra", [
    ("jaxpool.flax.linen", "flax", "flax"),
    ("jaxpool.flax.nnx", "flax", "flax"),
    ("jaxpool.haiku", "haiku", "haiku"),
])
def test_missing_framework_names_the_extra(monkeypatch, module, missing, extra):
    for name in list(sys.modules):
        if name == missing or name.startswith(missing + "."):
            monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails
    monkeypatch.setitem(sys.modules, missing, None)
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(ImportError, match=rf"pip install 'jaxpool\[{extra}\]'"):
        importlib.import_module(module)


@pytest.mark.parametrize("framework", FRAMEWORKS)
@pytest.mark.parametrize("spec", [NOISY, ALWAYS], ids=lambda s: s.name)
def test_random_layer_signatures(spec, framework):
    cls = FRAMEWORKS[framework].layer_class(spec)
    init_extras, call_extras = framework_extras(framework, spec)
    assert list(inspect.signature(cls).parameters) == list(spec.param_names) + init_extras
    assert list(inspect.signature(cls.__call__).parameters) == ["self", "input"] + call_extras
    assert (cls.__name__, cls.__module__) == (spec.name, FRAMEWORKS[framework].__name__)
    assert "Randomness" in cls.__doc__
