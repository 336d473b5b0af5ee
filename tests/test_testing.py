"""The parity checker itself: its low-precision references must catch errors, not hide them.

Both rules here came from the full sweep, where a float32 stand-in or torch's own half
rounding made correct jaxpool results look wrong.
"""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxpool
from jaxpool.testing import sweep as parity
from jaxpool.testing import Mismatch, compare_with_torch

# torch adds the gradient of 33 * 8 * 6 windows into some input cells, in float16, one
# rounding each (adaptive upsampling (1, 9, 3) -> (33, 33, 14)).
UPSAMPLING = parity.Case("adaptive_avg_pool3d", (2, 1, 1, 9, 3), ((33, 33, 14),), (), "float16", "ties", seed=176)
# lp_pool3d, p = 0.5: the gradient of ``t ** 2`` times ``prod(kernel) = 125`` overflows float16.
LP_OVERFLOW = [
    parity.Case("lp_pool3d", (2, 7, 6, 11), (0.5, 5, (1, 1, 1), True), (), "float16", "normal", seed=241),
    parity.Case("lp_pool3d", (3, 11, 5, 7), (0.5, (5, 5, 4), (2, 2, 1), False), (), "float16", "ties", seed=405),
]


def _gradients(case):
    """jaxpool's and torch's (float16, and float32-widened) input gradients for ``case``."""
    x = parity.make_input(case)
    out_shape = parity._call_torch(case)(torch.from_numpy(x)).shape
    cot = np.random.default_rng(case.seed).standard_normal(out_shape).astype(np.float32)
    _, vjp = jax.vjp(parity._call_jax(case), jnp.asarray(x))
    (jg,) = vjp(jnp.asarray(cot).astype(x.dtype))
    grads = []
    for dtype in (torch.float16, torch.float32):
        tx = torch.from_numpy(x).to(dtype).requires_grad_(True)
        (tg,) = torch.autograd.grad(parity._call_torch(case)(tx), tx, torch.from_numpy(cot).to(dtype))
        grads.append(tg.float().numpy())
    return np.asarray(jg, np.float32), *grads


def test_half_gradient_accumulated_in_half_by_torch_is_checked_against_float32_torch():
    jax_grad, torch_half, torch_wide = _gradients(UPSAMPLING)
    # torch's half result really is off by more than the half tolerance (4e-3 of the scale) ...
    scale = np.abs(torch_wide).max()
    assert np.abs(torch_half - torch_wide).max() > 4e-3 * scale
    # ... jaxpool is the float32 gradient, rounded once
    np.testing.assert_allclose(jax_grad, torch_wide, rtol=1e-3, atol=1e-3 * scale)
    parity.run_case(UPSAMPLING)


def test_a_wrong_half_gradient_matches_neither_torch_result():
    x = parity.make_input(UPSAMPLING)

    def two_percent_off(x):  # same values, gradient scaled by 1.02
        y = jaxpool.adaptive_avg_pool3d(x, (33, 33, 14))
        return y + np.float16(0.02) * (y - jax.lax.stop_gradient(y))

    with pytest.raises(Mismatch, match="gradient of input 0"):
        compare_with_torch(two_percent_off, lambda t: F.adaptive_avg_pool3d(t, (33, 33, 14)), x,
                           seed=UPSAMPLING.seed)


@pytest.mark.parametrize("case", LP_OVERFLOW, ids=str)
def test_lp_pool3d_half_reference_overflows_where_torch_would(case):
    """torch's CPU has no float16 avg_pool3d; the reference runs torch's lp_pool3d formula in
    float16 around a float32 avg_pool3d, so its gradient overflows as torch's formula does."""
    jax_grad, torch_half, torch_wide = _gradients(case)
    assert np.isinf(torch_half).any() and np.isfinite(torch_wide).all()
    np.testing.assert_array_equal(np.isinf(jax_grad), np.isinf(torch_half))
    parity.run_case(case)


def test_the_widened_avg_pool3d_leaves_torch_as_shipped():
    """The float16 lp_pool3d reference runs torch's own lp_pool3d code with a widened avg_pool3d
    bound in a private copy of its globals: torch.nn.functional never changes, not even during
    the call (another thread calling torch then gets torch's own kernels)."""
    native = F.avg_pool3d
    case = LP_OVERFLOW[0]
    x = torch.from_numpy(parity.make_input(case))
    seen = []

    def spy(v, *a, **kw):
        seen.append(F.avg_pool3d is native)
        return native(v.float(), *a, **kw).to(v.dtype)

    out = parity._lp_pool3d_with(spy)(x, *case.args)
    assert seen == [True] and out.dtype == torch.float16  # torch's code called the spy, in float16
    parity._call_torch(case)(x)
    assert F.avg_pool3d is native and F.lp_pool3d.__globals__["avg_pool3d"] is native
    with pytest.raises(RuntimeError, match="Half"):
        F.avg_pool3d(torch.ones(1, 1, 2, 2, 2, dtype=torch.float16), 2)


def _message(jax_fn, torch_fn, x) -> str:
    with pytest.raises(Mismatch) as caught:
        jaxpool.testing.assert_matches_torch(jax_fn, torch_fn, x)
    return str(caught.value)


X = np.random.default_rng(0).standard_normal((1, 2, 6, 6)).astype(np.float32)


def test_a_value_mismatch_names_the_first_differing_element_in_plain_numbers():
    off = jnp.zeros((1, 2, 3, 3)).at[0, 1, 2, 0].set(0.01).at[0, 1, 2, 2].set(0.02)
    message = _message(lambda x: jaxpool.avg_pool2d(x, 2) + off, lambda t: F.avg_pool2d(t, 2), X)
    e = F.avg_pool2d(torch.from_numpy(X), 2).numpy()[0, 1, 2, 0]
    a = np.asarray(jaxpool.avg_pool2d(X, 2) + off)[0, 1, 2, 0]
    assert message.startswith("output 0: 2 of 18 elements differ from torch's beyond the tolerance "
                              "(rtol=1e-06, atol=1e-06 x scale 1); ")
    assert f"first at index (0, 1, 2, 0): jaxpool {str(a)} vs torch {str(e)}, abs diff 0.01, " in message
    assert f"rel diff {0.01 / abs(float(e)):.3g}, allowed {1e-6 + 1e-6 * abs(float(e)):.3g}" in message
    assert "largest error 1.66e+04x the tolerance at index (0, 1, 2, 2)" in message
    assert "np.float" not in message and "array(" not in message


def test_a_nan_mismatch_names_the_element():
    message = _message(lambda x: jaxpool.avg_pool2d(x, 2).at[0, 0, 0, 1].set(jnp.nan),
                       lambda t: F.avg_pool2d(t, 2), X)
    e = F.avg_pool2d(torch.from_numpy(X), 2).numpy()[0, 0, 0, 1]
    assert "1 of 18 elements differ" in message and f"(0, 0, 0, 1): jaxpool nan vs torch {str(e)}," in message


def test_an_indices_mismatch_names_the_first_differing_index():
    bump = jnp.zeros((1, 2, 3, 3), jnp.int32).at[0, 0, 1, 1].set(1).at[0, 1, 0, 2].set(-1)
    message = _message(lambda x: jaxpool.max_pool2d(x, 2, return_indices=True)[1] + bump,
                       lambda t: F.max_pool2d(t, 2, return_indices=True)[1], X)
    expected = int(F.max_pool2d(torch.from_numpy(X), 2, return_indices=True)[1][0, 0, 1, 1])
    assert message == (f"output 0: 2 of 18 elements differ from torch's (exact match required); "
                       f"first at index (0, 0, 1, 1): jaxpool {expected + 1} vs torch {expected}")


# PyTorch 2.11 ran lp_pool's finite-p formula for p = +-inf (1 everywhere); 2.13 pools abs(x)
# (pytorch#183997).  The sweep compares with 2.13's rule on an older torch: that stand-in must be
# 2.13's own result, values and gradients, so that it cannot hide a real difference.
_LP_INF = [c for c in parity.cases([f"lp_pool{n}d" for n in (1, 2, 3)], level="full")
           if abs(c.args[0]) == float("inf")]
# every half-precision lp_pool3d one (torch's CPU avg_pool3d has none), a sample of the rest, and
# each of those with norm_type=-inf, which the sweep does not draw
LP_INF = [c for k, c in enumerate(_LP_INF) if k % 7 == 0 or (c.ndim == 3 and c.dtype in ("float16", "bfloat16"))]
LP_INF += [dataclasses.replace(c, args=(-c.args[0], *c.args[1:])) for c in LP_INF]


def test_the_installed_torch_pools_abs_for_infinite_norms():
    assert parity.torch_lp_inf_is_max_pool()  # the pinned torch: the stand-in below is unused


@pytest.mark.parametrize("case", LP_INF, ids=str)
def test_the_older_torch_stand_in_for_infinite_norms_is_torch_213s_rule(case):
    assert LP_INF
    x = parity.make_input(case)
    results = []
    for torch_fn in (parity._call_torch(case), parity._lp_inf_as_torch_213(case, dict(case.kwargs))):
        tx = torch.from_numpy(x.astype(np.float32)).to(getattr(torch, case.dtype)).requires_grad_(True)
        out = torch_fn(tx)
        (grad,) = torch.autograd.grad(out.sum(), tx)
        results.append((out.detach().float().numpy(), grad.float().numpy()))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_an_older_torch_takes_the_stand_in_before_the_half_precision_widening(monkeypatch):
    """On torch before 2.13 the widened lp_pool3d (torch's own code, its avg_pool3d in float32)
    would run the finite-p formula for half-precision inputs: the stand-in must come first."""
    monkeypatch.setattr(parity, "torch_lp_inf_is_max_pool", lambda: False)
    half = [c for c in LP_INF if c.ndim == 3 and c.dtype in ("float16", "bfloat16")]
    assert half
    for case in half:
        assert "_lp_inf_as_torch_213" in parity._call_torch(case).__qualname__
