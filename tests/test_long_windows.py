"""Windows of more than ``_taps.MAX_UNROLLED_TAPS`` taps, and the gradient of ``sum(pool(x))``.

Long regular windows are summed in blocks of the stride on XLA:CPU
(:func:`jaxpool._cpu_sum._blocked_sum`), and every window sum's derivative keeps its cotangent a
run-time value (:func:`jaxpool._execute.window_sum`): the cotangent of ``jax.grad(sum)`` is a
constant, and XLA constant-folded the gradient cell by cell.  These check PyTorch's numbers on
both routes and the programs' structure; docs/performance.md has the timings.
"""

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxpool
from jaxpool import config
from jaxpool.testing import compare_with_torch

# (name, shape, jaxpool call, torch call, dtype); the cases cover stride 1 and stride > 1,
# kernel a multiple of the stride or not, padding, ceil_mode windows cut by the input's end,
# the count_include_pad divisor, a long axis next to a short or tiling one, and lp pooling.
CASES = [
    ("avg1d_k40_s3", (2, 3, 130), lambda x: jaxpool.avg_pool1d(x, 40, 3), lambda x: F.avg_pool1d(x, 40, 3), "float32"),
    ("avg1d_k48_s16_p20_ceil", (2, 3, 131), lambda x: jaxpool.avg_pool1d(x, 48, 16, 20, True),
     lambda x: F.avg_pool1d(x, 48, 16, 20, True), "float32"),
    ("avg1d_k33_s1_p16_nopad", (2, 3, 70), lambda x: jaxpool.avg_pool1d(x, 33, 1, 16, False, False),
     lambda x: F.avg_pool1d(x, 33, 1, 16, False, False), "float32"),
    ("avg1d_k25_s30", (2, 3, 100), lambda x: jaxpool.avg_pool1d(x, 25, 30), lambda x: F.avg_pool1d(x, 25, 30), "float32"),
    ("avg2d_k(20,3)_s(4,2)_p(9,1)_ceil", (2, 2, 61, 23), lambda x: jaxpool.avg_pool2d(x, (20, 3), (4, 2), (9, 1), True),
     lambda x: F.avg_pool2d(x, (20, 3), (4, 2), (9, 1), True), "float32"),
    ("avg2d_k(3,33)_s1_p(1,16)_nopad", (2, 2, 20, 40), lambda x: jaxpool.avg_pool2d(x, (3, 33), 1, (1, 16), count_include_pad=False),
     lambda x: F.avg_pool2d(x, (3, 33), 1, (1, 16), count_include_pad=False), "float32"),
    ("avg2d_k(18,4)_s(5,4)_float16", (2, 2, 50, 24), lambda x: jaxpool.avg_pool2d(x, (18, 4), (5, 4)),
     lambda x: F.avg_pool2d(x, (18, 4), (5, 4)), "float16"),
    ("avg3d_k(17,2,2)_s(3,2,2)", (1, 2, 40, 6, 6), lambda x: jaxpool.avg_pool3d(x, (17, 2, 2), (3, 2, 2)),
     lambda x: F.avg_pool3d(x, (17, 2, 2), (3, 2, 2)), "float32"),
    ("adaptive_avg1d_1000to3", (2, 3, 1000), lambda x: jaxpool.adaptive_avg_pool1d(x, 3),
     lambda x: F.adaptive_avg_pool1d(x, 3), "float32"),
    ("lp1d_p2_k24_s5", (2, 3, 90), lambda x: jaxpool.lp_pool1d(x, 2.0, 24, 5), lambda x: F.lp_pool1d(x, 2.0, 24, 5), "float32"),
]


def _input(shape, dtype, special: bool):
    x = np.random.default_rng(0).standard_normal(shape)
    if special:  # one +inf in a plane, +inf and -inf (a NaN window sum) in another, one NaN
        flat, n = x.reshape(-1, shape[-1]), shape[-1]
        flat[0, 5], flat[1, 7 % n], flat[1, 60 % n], flat[-1, 3] = np.inf, np.inf, -np.inf, np.nan
    return x.astype(dtype)


@pytest.mark.parametrize("route", ["auto", "portable"])
@pytest.mark.parametrize("name, shape, fn, torch_fn, dtype", CASES, ids=[c[0] for c in CASES])
def test_long_windows_match_torch(name, shape, fn, torch_fn, dtype, route):
    with config.force_portable() if route == "portable" else contextlib.nullcontext():
        compare_with_torch(fn, torch_fn, _input(shape, dtype, False), grad=True)
        if not name.startswith("lp") and dtype != "float16":
            compare_with_torch(fn, torch_fn, _input(shape, dtype, True), grad=False)
        # the gradient of the sum, as users write it (a constant cotangent)
        x = _input(shape, dtype, False)
        expected = torch.tensor(x, requires_grad=True)
        torch_fn(expected).sum().backward()
        actual = jax.jit(jax.grad(lambda x: fn(x).astype(jnp.float32).sum()))(jnp.asarray(x))
        tol = 2e-3 if dtype == "float16" else 1e-5
        np.testing.assert_allclose(np.asarray(actual, np.float64), expected.grad.double().numpy(), rtol=tol, atol=tol)


def _grad_of_sum(fn, shape, route):
    with config.force_portable() if route == "portable" else contextlib.nullcontext():
        return jax.jit(jax.grad(lambda x: fn(x).sum())).lower(jax.ShapeDtypeStruct(shape, jnp.float32))


@pytest.mark.parametrize("route", ["auto", "portable"])
@pytest.mark.parametrize("name", ["avg1d_k40_s3", "avg2d_k(3,33)_s1_p(1,16)_nopad", "adaptive_avg1d_1000to3", "lp1d_p2_k24_s5"])
def test_sum_gradients_keep_the_cotangent_a_run_time_value(name, route):
    _, shape, fn, _, _ = next(c for c in CASES if c[0] == name)
    assert "stablehlo.optimization_barrier" in _grad_of_sum(fn, shape, route).as_text()


def test_the_run_time_cotangent_check_can_fail(monkeypatch):
    """Without the barrier (the code as it was), the gradient program has none."""
    monkeypatch.setattr(jax.lax, "optimization_barrier", lambda t: t)
    _, shape, fn, _, _ = CASES[0]
    assert "stablehlo.optimization_barrier" not in _grad_of_sum(fn, shape, "auto").as_text()


@pytest.mark.parametrize("name", ["avg1d_k40_s3", "avg1d_k48_s16_p20_ceil", "avg3d_k(17,2,2)_s(3,2,2)"])
def test_long_regular_windows_sum_blocks_on_cpu(name):
    """Values and gradient: no gather, no scatter; the stride-1 window sum over ceil(k/s) - 1
    blocks is the only reduce-window (a tap-by-tap sum would gather out * k cells)."""
    _, shape, fn, _, _ = next(c for c in CASES if c[0] == name)
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    for text in (jax.jit(fn).lower(x).as_text(), _grad_of_sum(fn, shape, "auto").as_text()):
        assert "gather" not in text and "scatter" not in text
        assert "reduce_window" in text
