"""jaxpool.from_torch: every torch.nn pooling module -> an equivalent pure jaxpool callable."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jaxpool
from jaxpool.convert import TorchPooling
from jaxpool.layer_specs import LAYERS
from layer_cases import CASES, assert_same, to_layout, torch_outputs


@pytest.mark.parametrize("channels_last", [False, True], ids=["NC", "NC_last"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_converted_module_matches_torch(case, channels_last):
    inputs = case.inputs()
    module = case.torch_module()
    fn = jaxpool.from_torch(module, channels_last=channels_last)
    assert isinstance(fn, TorchPooling) and fn.op is LAYERS[case.layer].op
    got = jax.jit(lambda *a: fn(*a, **case.call_kwargs))(*[jnp.asarray(to_layout(a, channels_last))
                                                          for a in inputs])
    assert_same(got, torch_outputs(case, inputs), channels_last)


@pytest.mark.parametrize("case", [c for c in CASES if c.label == "custom"], ids=lambda c: c.id)
def test_every_argument_is_carried(case):
    module = case.torch_module()
    fn = jaxpool.from_torch(module)
    assert list(fn.kwargs) == list(LAYERS[case.layer].param_names)
    for name, value in fn.kwargs.items():
        stored = getattr(module, name)
        assert value == (tuple(stored) if isinstance(stored, list) else stored), name
    assert fn.channels_last is False
    assert case.layer in repr(fn)


def test_max_unpool_takes_output_size_positionally_like_torch():
    x = torch.randn(1, 2, 9, 9)
    y, i = torch.nn.MaxPool2d(2, return_indices=True)(x)
    want = torch.nn.MaxUnpool2d(2)(y, i, (9, 9)).numpy()
    got = jaxpool.from_torch(torch.nn.MaxUnpool2d(2))(jnp.asarray(y.numpy()), jnp.asarray(i.numpy()), (9, 9))
    np.testing.assert_array_equal(got, want)


def test_gradients_match_torch():
    x = np.random.default_rng(3).standard_normal((2, 3, 9, 8)).astype(np.float32)
    modules = [torch.nn.MaxPool2d(3, 2, 1, ceil_mode=True), torch.nn.AvgPool2d(3, 2, 1, True, False, 7),
               torch.nn.LPPool2d(2, 3, 2), torch.nn.AdaptiveMaxPool2d((4, 5))]
    for module in modules:
        t = torch.from_numpy(x).requires_grad_(True)
        module(t).pow(2).sum().backward()
        fn = jaxpool.from_torch(module)
        grad = jax.grad(lambda x: (fn(x) ** 2).sum())(jnp.asarray(x))
        np.testing.assert_allclose(grad, t.grad.numpy(), rtol=1e-5, atol=1e-5, err_msg=repr(module))


def test_subclass_keeping_forward_converts():
    class MyPool(torch.nn.AvgPool2d):
        pass
    fn = jaxpool.from_torch(MyPool(3, 2, 1, divisor_override=2))
    assert fn.spec.name == "AvgPool2d" and fn.kwargs["divisor_override"] == 2


def test_subclass_overriding_forward_is_refused():
    class Doubled(torch.nn.MaxPool2d):
        def forward(self, x):
            return 2 * super().forward(x)
    with pytest.raises(TypeError, match="Doubled overrides forward.*torch.nn.MaxPool2d"):
        jaxpool.from_torch(Doubled(2))


@pytest.mark.parametrize("module", [torch.nn.ReLU(), torch.nn.Conv2d(1, 1, 3), torch.nn.Sequential(),
                                    torch.nn.PixelShuffle(2), "MaxPool2d"],
                         ids=lambda m: type(m).__name__)
def test_unknown_modules_raise_a_type_error_naming_the_class(module):
    with pytest.raises(TypeError, match=rf"cannot convert .*{type(module).__qualname__}; supported"):
        jaxpool.from_torch(module)


def test_call_errors():
    pool = jaxpool.from_torch(torch.nn.MaxPool2d(2))
    x = jnp.ones((1, 1, 4, 4))
    with pytest.raises(TypeError, match=r"MaxPool2d takes \(input\)"):
        pool(x, 3)
    with pytest.raises(TypeError, match="unexpected keyword"):
        pool(x, output_size=(4, 4))
    np.testing.assert_array_equal(pool(x, key=jax.random.key(0)), pool(x))  # ignored, as Equinox
    unpool = jaxpool.from_torch(torch.nn.MaxUnpool2d(2))
    with pytest.raises(TypeError, match=r"missing \['indices'\]"):
        unpool(x)
    with pytest.raises(TypeError, match="channels_last must be a bool"):
        jaxpool.from_torch(torch.nn.MaxPool2d(2), channels_last="yes")


def test_converted_modules_work_in_equinox_sequential():
    """eqx.nn.Sequential passes every layer a key: converted modules take and ignore it."""
    import equinox as eqx

    x = np.random.default_rng(4).standard_normal((3, 9, 8)).astype(np.float32)   # unbatched
    modules = [torch.nn.MaxPool2d(2, ceil_mode=True), torch.nn.AdaptiveAvgPool2d((2, 3))]
    model = eqx.nn.Sequential([jaxpool.from_torch(m) for m in modules])
    got = eqx.filter_jit(model)(jnp.asarray(x), key=jax.random.key(0))
    want = torch.nn.Sequential(*modules)(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_importing_jaxpool_needs_no_torch_flax_or_haiku():
    """``import jaxpool`` (from_torch included) neither imports nor needs the optional packages
    (torch, Flax, Haiku, Equinox, Keras)."""
    code = (
        "import sys, json\n"
        "loaded = {}\n"
        "import jaxpool, jaxpool.convert, jaxpool.layer_specs, jaxpool.flax\n"
        "loaded['file'] = jaxpool.__file__\n"
        "optional = ('torch', 'flax', 'haiku', 'equinox', 'keras')\n"
        "loaded['plain'] = sorted(m for m in optional if m in sys.modules)\n"
        "for m in optional: sys.modules[m] = None\n"  # now simulate them missing
        "import importlib; [importlib.reload(m) for m in (jaxpool.convert, jaxpool)]\n"
        "import jax.numpy as jnp\n"
        "loaded['works'] = jaxpool.max_pool2d(jnp.ones((1, 1, 2, 2)), 2).shape == (1, 1, 1, 1)\n"
        "print(json.dumps(loaded))\n"
    )
    root = pathlib.Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=root, env={**os.environ, "PYTHONPATH": str(root)})
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded.pop("file") == str(root / "jaxpool" / "__init__.py")  # this checkout's jaxpool
    assert loaded == {"plain": [], "works": True}
