"""Fractional max pooling against torch: interval rule, values, indices, vjp, validation, keys.

Both sides always get the same ``_random_samples``.  The built-in sweep (jaxpool.testing.sweep, run by
test_parity_sweep.py) covers random configurations; here: every half-precision sample value
through the interval rule, a hand-picked dtype x configuration grid, edge cases and errors.
``JAXPOOL_FULL=1`` also runs the full random fractional sweep.
"""

import os

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import jaxpool
from jaxpool.testing import sweep as parity
from jaxpool.fractional import interval_starts
from jaxpool.testing import compare_with_torch

FULL = os.environ.get("JAXPOOL_FULL") == "1"
TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
                "float64": torch.float64}


def _unit_values(dtype: str, rng) -> np.ndarray:
    """Every value in [0, 1) of a 16-bit float type; 20000 random ones for wider types."""
    if dtype in ("float16", "bfloat16"):
        view = np.float16 if dtype == "float16" else ml_dtypes.bfloat16
        every = np.arange(2**16, dtype=np.uint16).view(view)
        f = every.astype(np.float32)
        return every[(f >= 0) & (f < 1)]
    u = rng.random(20000).astype(dtype)
    u[:2] = [0.0, np.nextafter(np.asarray(1, dtype), np.asarray(0, dtype))]
    return u


# (input size, output size, kernel): output 1, kernel 1, kernel == input - out + 1, many outputs
INTERVAL_CONFIGS = [(10, 5, 2), (37, 17, 3), (200, 101, 2), (255, 60, 5), (100, 100, 1), (64, 31, 3),
                    (250, 3, 2), (9, 1, 4), (7, 2, 6)]


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_interval_rule_matches_torch_for_every_half_sample(dtype):
    """generate_intervals, rounded in the input's type, for every float16/bfloat16 sample.

    torch's windows are read back through its indices: on a strictly increasing row the maximum
    of a window is its last cell, so ``start = index - (k - 1)``.  (Computing the float16 rule in
    float32 without per-operation rounding fails this on thousands of samples.)
    """
    u = _unit_values(dtype, np.random.default_rng(0))
    channels = len(u)
    with jax.enable_x64(dtype == "float64"):
        for size, out, k in INTERVAL_CONFIGS:
            row = torch.arange(size, dtype=torch.float32).to(TORCH_DTYPES[dtype])
            x = row.reshape(1, 1, 1, size).expand(1, channels, 1, size).contiguous()
            samples = torch.zeros(1, channels, 2, dtype=TORCH_DTYPES[dtype])
            samples[0, :, 0] = torch.from_numpy(u.astype(np.float64)).to(TORCH_DTYPES[dtype])
            _, idx = F.fractional_max_pool2d(x, (1, k), output_size=(1, out), _random_samples=samples,
                                             return_indices=True)
            expected = idx[0, :, 0, :].numpy() - (k - 1)
            got = np.asarray(jax.jit(lambda s: interval_starts(s, size, out, k, dtype))(jnp.asarray(u)))
            bad = np.flatnonzero((expected != got).any(axis=1))
            assert bad.size == 0, (size, out, k, u[bad[:5]].astype(np.float64), got[bad[0]], expected[bad[0]])


def _case(op, shape, kernel, dtype, *, size=None, ratio=None, indices=True, values="normal",
          channels_last=False, seed=0):
    kwargs = (("output_size", size),) if size is not None else (("output_ratio", ratio),)
    return parity.Case(op, shape, (kernel,), kwargs + (("return_indices", indices),), dtype, values,
                       channels_last, seed)


GRID = [
    # 2-d: plain, tuple kernel, output 1, kernel == input (2-d allows out + k - 1 == in), ratios
    ("fractional_max_pool2d", (2, 3, 11, 9), 2, dict(size=(5, 4))),
    ("fractional_max_pool2d", (3, 12, 10), (3, 2), dict(size=(6, 7))),
    ("fractional_max_pool2d", (2, 2, 7, 6), (7, 6), dict(size=1)),
    ("fractional_max_pool2d", (1, 2, 9, 9), 3, dict(size=(1, 7))),
    ("fractional_max_pool2d", (2, 3, 16, 13), 3, dict(ratio=(0.5, 0.5))),
    ("fractional_max_pool2d", (4, 10, 7), 2, dict(ratio=(0.7, 0.29))),
    ("fractional_max_pool2d", (2, 2, 8, 8), 1, dict(size=8)),
    ("fractional_max_pool2d", (1, 3, 5, 40), (2, 5), dict(size=(4, 17)), "ties"),
    ("fractional_max_pool2d", (2, 3, 9, 8), 2, dict(size=(4, 5)), "special"),
    # 3-d: plain, tuple kernel, output 1, the strict fit edge out + k - 1 == in - 1, ratios
    ("fractional_max_pool3d", (2, 2, 7, 8, 9), 2, dict(size=(3, 4, 5))),
    ("fractional_max_pool3d", (3, 6, 7, 8), (3, 2, 1), dict(size=(2, 5, 7))),
    ("fractional_max_pool3d", (1, 2, 5, 6, 7), (4, 5, 6), dict(size=1)),
    ("fractional_max_pool3d", (2, 2, 9, 8, 7), (3, 2, 2), dict(size=(6, 6, 5))),
    ("fractional_max_pool3d", (1, 2, 10, 9, 12), 2, dict(ratio=0.5)),
    ("fractional_max_pool3d", (2, 6, 9, 7), 2, dict(ratio=(0.25, 0.75, 0.5)), "ties"),
    ("fractional_max_pool3d", (1, 2, 6, 7, 5), 2, dict(size=(3, 2, 3)), "special"),
]


# Every entry in every float dtype under JAXPOOL_FULL; by default each entry in one dtype, the
# dtypes taken in turn, so every entry and every dtype still meets torch.
GRID_CASES = [(entry, dtype) for i, entry in enumerate(GRID) for j, dtype in enumerate(parity.FLOAT_DTYPES)
              if FULL or j == i % len(parity.FLOAT_DTYPES)]


@pytest.mark.parametrize("entry, dtype", GRID_CASES,
                         ids=[f"{e[0]}{list(e[1])}k{e[2]}{e[3]}-{d}" for e, d in GRID_CASES])
def test_grid_matches_torch(entry, dtype):
    """Values, indices and vjp with shared samples (float64 runs under x64)."""
    op, shape, kernel, out, *values = entry
    case = _case(op, shape, kernel, dtype, values=values[0] if values else "normal", seed=len(shape), **out)
    parity.run_case(case)
    parity.run_case(_case(op, shape, kernel, dtype, indices=False, channels_last=True, seed=3, **out))


def test_ratio_rounding_is_pythons_int_of_the_product():
    # 0.29 * 100 = 28.999999999999996 -> 28, 0.7 * 10 = 7.000000000000001 -> 7
    x = np.random.default_rng(1).standard_normal((1, 1, 100, 10)).astype(np.float32)
    s = np.full((1, 1, 2), 0.5, np.float32)
    y = jaxpool.fractional_max_pool2d(jnp.asarray(x), 2, output_ratio=(0.29, 0.7), _random_samples=jnp.asarray(s))
    t = F.fractional_max_pool2d(torch.from_numpy(x), 2, output_ratio=(0.29, 0.7), _random_samples=torch.from_numpy(s))
    assert y.shape == tuple(t.shape) == (1, 1, 28, 7)
    np.testing.assert_array_equal(np.asarray(y), t.numpy())


def test_ratio_can_round_to_an_empty_output_as_in_torch():
    x = np.ones((2, 3, 9, 4), np.float32)
    s = np.full((2, 3, 2), 0.25, np.float32)
    t, ti = F.fractional_max_pool2d(torch.from_numpy(x), 2, output_ratio=(0.5, 0.2),
                                    _random_samples=torch.from_numpy(s), return_indices=True)
    y, yi = jaxpool.fractional_max_pool2d(jnp.asarray(x), 2, output_ratio=(0.5, 0.2),
                                          _random_samples=jnp.asarray(s), return_indices=True)
    assert y.shape == yi.shape == tuple(t.shape) == tuple(ti.shape) == (2, 3, 4, 0)


@pytest.mark.parametrize("fill, expected_index", [(-np.inf, "first"), (np.nan, "last")])
def test_all_minus_inf_and_all_nan_windows(fill, expected_index):
    """-inf everywhere: the window's first cell (maxIndex starts there); NaN: the last NaN."""
    x = np.full((1, 2, 6, 5), fill, np.float32)
    s = np.random.default_rng(2).random((1, 2, 2)).astype(np.float32)
    t, ti = F.fractional_max_pool2d(torch.from_numpy(x), 3, output_size=(3, 2), return_indices=True,
                                    _random_samples=torch.from_numpy(s))
    y, yi = jaxpool.fractional_max_pool2d(jnp.asarray(x), 3, output_size=(3, 2), return_indices=True,
                                          _random_samples=jnp.asarray(s))
    np.testing.assert_array_equal(np.asarray(yi), ti.numpy())
    np.testing.assert_array_equal(np.asarray(y), t.numpy())
    starts_w = np.asarray(interval_starts(jnp.asarray(s[0, :, 0]), 5, 2, 3, "float32"))
    starts_h = np.asarray(interval_starts(jnp.asarray(s[0, :, 1]), 6, 3, 3, "float32"))
    off = 0 if expected_index == "first" else 2
    np.testing.assert_array_equal(np.asarray(yi)[0], (starts_h[:, :, None] + off) * 5 + starts_w[:, None, :] + off)


def test_gradient_routes_to_the_index_under_jit():
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 3, 10, 10)).astype(np.float32))
    s = jax.random.uniform(jax.random.key(0), (2, 3, 2))
    f = jax.jit(lambda x: jaxpool.fractional_max_pool2d(x, 3, output_size=6, _random_samples=s).sum())
    g = jax.grad(f)(x)
    _, idx = jaxpool.fractional_max_pool2d(x, 3, output_size=6, _random_samples=s, return_indices=True)
    expected = np.zeros((2, 3, 100), np.float32)
    for n in range(2):
        for c in range(3):
            np.add.at(expected[n, c], np.asarray(idx[n, c]).ravel(), 1.0)
    np.testing.assert_array_equal(np.asarray(g).reshape(2, 3, 100), expected)


def test_unbatched_takes_row_zero_of_samples_like_torch():
    x = np.random.default_rng(4).standard_normal((3, 9, 8)).astype(np.float32)
    s = np.random.default_rng(5).random((4, 3, 2)).astype(np.float32)  # extra rows are allowed
    compare_with_torch(
        lambda x: jaxpool.fractional_max_pool2d(x, 2, output_size=(4, 5), return_indices=True,
                                                _random_samples=jnp.asarray(s)),
        lambda x: F.fractional_max_pool2d(x, 2, output_size=(4, 5), return_indices=True,
                                          _random_samples=torch.from_numpy(s)),
        x)


# ------------------------------------------------------------------------------- keys


def test_key_draws_uniform_samples_of_shape_n_c_ndim():
    x = jnp.asarray(np.random.default_rng(6).standard_normal((2, 3, 7, 8, 9)).astype(np.float32))
    key = jax.random.key(42)
    drawn = jax.random.uniform(key, (2, 3, 3), jnp.float32)
    a = jaxpool.fractional_max_pool3d(x, 2, output_size=(3, 4, 5), return_indices=True, key=key)
    b = jaxpool.fractional_max_pool3d(x, 2, output_size=(3, 4, 5), return_indices=True, _random_samples=drawn)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


def test_same_key_same_result_other_key_other_windows_jit_and_vmap():
    x = jnp.asarray(np.random.default_rng(7).standard_normal((2, 4, 21, 21)).astype(np.float32))
    pool = jax.jit(lambda x, k: jaxpool.fractional_max_pool2d(x, 2, output_ratio=0.4, return_indices=True, key=k))
    i1 = np.asarray(pool(x, jax.random.key(1))[1])
    i1b = np.asarray(pool(x, jax.random.key(1))[1])
    i2 = np.asarray(pool(x, jax.random.key(2))[1])
    np.testing.assert_array_equal(i1, i1b)
    assert (i1 != i2).any()
    keys = jax.random.split(jax.random.key(3), 5)
    batched = jax.vmap(lambda k: pool(x, k)[1])(keys)
    for k, got in zip(keys, batched):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(pool(x, k)[1]))
    assert len({np.asarray(b).tobytes() for b in batched}) == 5


def test_key_works_for_every_float_dtype_and_unbatched_input():
    for dtype in ("float16", "bfloat16", "float32"):
        x = jnp.ones((3, 10, 10), dtype)
        y = jaxpool.fractional_max_pool2d(x, 2, output_size=4, key=jax.random.key(0))
        assert y.shape == (3, 4, 4) and y.dtype == jnp.dtype(dtype)


def test_unbatched_key_path_equals_batched_of_one():
    x = jnp.asarray(np.random.default_rng(8).standard_normal((3, 12, 11)).astype(np.float32))
    k = jax.random.key(9)
    a = jaxpool.fractional_max_pool2d(x, 3, output_size=5, key=k)
    b = jaxpool.fractional_max_pool2d(x[None], 3, output_size=5, key=k)[0]
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# ------------------------------------------------------------------------------- errors

X2 = np.random.default_rng(10).standard_normal((2, 3, 7, 6)).astype(np.float32)
S2 = np.random.default_rng(11).random((2, 3, 2)).astype(np.float32)
X3 = np.random.default_rng(12).standard_normal((2, 3, 5, 6, 7)).astype(np.float32)
S3 = np.random.default_rng(13).random((2, 3, 3)).astype(np.float32)

# (name, ndim, x, kwargs, samples, expected jaxpool error, message fragment); torch rejects too
REJECTED = [
    ("kernel too large for height", 2, X2, dict(kernel_size=4, output_size=(5, 2)), S2, ValueError, "too large"),
    ("kernel too large for width", 2, X2, dict(kernel_size=(2, 3), output_size=(2, 5)), S2, ValueError, "too large"),
    ("3d kernel == input (strict)", 3, X3, dict(kernel_size=(5, 6, 7), output_size=1), S3, ValueError, "strict"),
    ("3d out + k - 1 == in", 3, X3, dict(kernel_size=2, output_size=(4, 4, 4)), S3, ValueError, "too large"),
    ("3d ratio too large", 3, X3, dict(kernel_size=2, output_ratio=(0.9, 0.5, 0.5)), S3, ValueError, "too large"),
    ("samples dtype", 2, X2, dict(kernel_size=2, output_size=2), S2.astype(np.float16), TypeError, "dtype"),
    ("samples 2 dims", 2, X2, dict(kernel_size=2, output_size=2), S2[0], ValueError, "3 dimensions"),
    ("samples batch too small", 2, X2, dict(kernel_size=2, output_size=2), S2[:1], ValueError, "batch size"),
    ("samples channels", 2, X2, dict(kernel_size=2, output_size=2), np.zeros((2, 4, 2), np.float32), ValueError, "channels"),
    ("samples last dim", 2, X2, dict(kernel_size=2, output_size=2), np.zeros((2, 3, 3), np.float32), ValueError, "must be 2"),
    ("3d samples last dim", 3, X3, dict(kernel_size=2, output_size=2), S2, ValueError, "must be 3"),
    ("unbatched 2-d samples", 2, X2[0], dict(kernel_size=2, output_size=2), S2[0], ValueError, "3 dimensions"),
    ("neither size nor ratio", 2, X2, dict(kernel_size=2), S2, ValueError, "exactly one"),
    ("integer input", 2, X2.astype(np.int32), dict(kernel_size=2, output_size=2), S2.astype(np.int32), TypeError, "dtype"),
    ("rank", 2, X2[0, 0], dict(kernel_size=2, output_size=2), S2, ValueError, "dimensions"),
    ("negative output size", 2, X2, dict(kernel_size=2, output_size=(-1, 2)), S2, ValueError, "non-negative"),
    ("zero channels", 2, X2[:, :0], dict(kernel_size=2, output_size=2), S2[:, :0], ValueError, "non-zero"),
]


@pytest.mark.parametrize("name, ndim, x, kwargs, samples, error, fragment", REJECTED, ids=[r[0] for r in REJECTED])
def test_rejected_by_both(name, ndim, x, kwargs, samples, error, fragment):
    t_fn = F.fractional_max_pool2d if ndim == 2 else F.fractional_max_pool3d
    j_fn = jaxpool.fractional_max_pool2d if ndim == 2 else jaxpool.fractional_max_pool3d
    with pytest.raises((RuntimeError, ValueError, TypeError, NotImplementedError)):
        t_fn(torch.from_numpy(x), _random_samples=torch.from_numpy(samples), **kwargs)
    with pytest.raises(error, match=fragment):
        j_fn(jnp.asarray(x), _random_samples=jnp.asarray(samples), **kwargs)


@pytest.mark.parametrize("kwargs", [dict(output_size=2, output_ratio=0.5), dict(output_ratio=0.0),
                                    dict(output_ratio=1.0), dict(output_ratio=(0.5, 1.5))])
def test_module_rules_on_size_and_ratio(kwargs):
    """torch.nn.FractionalMaxPool2d's rules (the functional skips them): one of the two, ratio in (0, 1)."""
    with pytest.raises(ValueError):
        nn.FractionalMaxPool2d(2, **kwargs)
    with pytest.raises(ValueError, match="output_ratio"):
        jaxpool.fractional_max_pool2d(jnp.asarray(X2), 2, _random_samples=jnp.asarray(S2), **kwargs)


def test_beyond_torch_checks():
    x, s = jnp.asarray(X2), jnp.asarray(S2)
    with pytest.raises(ValueError, match="key"):  # no hidden global RNG
        jaxpool.fractional_max_pool2d(x, 2, output_size=2)
    with pytest.raises(TypeError, match="key"):
        jaxpool.fractional_max_pool2d(x, 2, output_size=2, key=0)
    with pytest.raises(ValueError, match="kernel_size"):  # torch returns -inf for empty windows
        jaxpool.fractional_max_pool2d(x, (0, 2), output_size=2, _random_samples=s)
    with pytest.raises(ValueError, match="output_ratio"):
        jaxpool.fractional_max_pool2d(x, 2, output_ratio=(0.5, 0.5, 0.5), _random_samples=s)
    with pytest.raises(TypeError, match="return_indices"):
        jaxpool.fractional_max_pool2d(x, 2, output_size=2, return_indices=1, _random_samples=s)


def test_out_of_range_samples_stay_inside_the_input():
    """torch reads outside the plane for samples outside [0, 1]; jaxpool clamps the starts."""
    x = jnp.asarray(X2)
    for value in (-0.5, 1.5, 7.0, np.nan):
        s = jnp.full((2, 3, 2), value, jnp.float32)
        y, i = jaxpool.fractional_max_pool2d(x, 2, output_size=3, _random_samples=s, return_indices=True)
        assert int(i.min()) >= 0 and int(i.max()) < 42 and bool(jnp.isfinite(y).all())


if FULL:  # defined only then, so the default run neither skips nor pretends to have run it
    @pytest.mark.parametrize("case", list(parity.cases(ops=parity.FRACTIONAL_OPS, level="full")), ids=str)
    def test_full_random_sweep(case):
        parity.run_case(case)
