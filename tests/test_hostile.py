"""Hostile values and sizes, against torch: non-finite values, ties, integer extremes, tiny and
huge kernels, int32 index overflow, empty batches, bad unpool indices.

(The argument rules and the basic unpool index errors are in tests/test_errors.py.)
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxpool
from jaxpool.testing import assert_matches_torch

RNG = np.random.default_rng(7)
SPATIAL = {1: (9,), 2: (7, 6), 3: (5, 4, 6)}


def _calls(n):
    """(name, jaxpool fn, torch fn) with overlapping, padded windows for every op family."""
    def both(name, *args, **kwargs):
        return (name, lambda x: getattr(jaxpool, name)(x, *args, **kwargs),
                lambda x: getattr(F, name)(x, *args, **kwargs))
    return [
        both(f"max_pool{n}d", 3, 2, 1, 1, True, True),
        both(f"max_pool{n}d", 2, 1, 0, 2, False, True),
        both(f"max_pool{n}d", 3, 1, 1, 1, False, True),  # stride 1, padded: _cpu_max_direct._fold_padded
        both(f"avg_pool{n}d", 3, 2, 1, True, False),
        both(f"avg_pool{n}d", 3, 2, 1, False, True),
        both(f"lp_pool{n}d", 2, 2, 1),
        both(f"lp_pool{n}d", float("inf"), 3, 2, True),
        both(f"adaptive_avg_pool{n}d", 4),
        both(f"adaptive_max_pool{n}d", 4, True),
    ]


CALLS = [c for n in (1, 2, 3) for c in _calls(n)]
IDS = [f"{c[0]}-{k}" for k, c in enumerate(CALLS)]


def _ndim(name):
    return int(name[-2])


def _special(shape, fill=None):
    if fill is not None:
        return np.full(shape, fill, np.float32)
    x = RNG.standard_normal(shape).astype(np.float32)
    pick = RNG.random(shape)
    x[pick < 0.15] = np.nan
    x[(pick >= 0.15) & (pick < 0.3)] = np.inf
    x[(pick >= 0.3) & (pick < 0.45)] = -np.inf
    return x


@pytest.mark.parametrize("fill", [None, np.nan, np.inf, -np.inf], ids=["mixed", "nan", "inf", "-inf"])
@pytest.mark.parametrize("name, jax_fn, torch_fn", CALLS, ids=IDS)
def test_non_finite_values_and_indices_match_torch(name, jax_fn, torch_fn, fill):
    """NaN/inf inputs: values, indices (last NaN, first max; -inf windows report their first
    in-bounds cell) and input gradients as torch."""
    x = _special((2, 3) + SPATIAL[_ndim(name)], fill)
    assert_matches_torch(jax_fn, torch_fn, x)


def test_non_finite_unpool_matches_torch():
    for n in (1, 2, 3):
        x = _special((2, 3) + SPATIAL[n])
        values, indices = getattr(F, f"max_pool{n}d")(torch.from_numpy(x), 2, return_indices=True)
        assert_matches_torch(lambda v, i: getattr(jaxpool, f"max_unpool{n}d")(v, i, 2, output_size=SPATIAL[n]),
                             lambda v, i: getattr(F, f"max_unpool{n}d")(v, i, 2, output_size=SPATIAL[n]),
                             values.numpy(), indices.numpy())


@pytest.mark.parametrize("name, jax_fn, torch_fn", CALLS, ids=IDS)
def test_all_equal_windows_match_torch(name, jax_fn, torch_fn):
    """Every window a tie: the first cell (in row-major order) wins and takes the gradient."""
    x = np.full((2, 3) + SPATIAL[_ndim(name)], 1.5, np.float32)
    assert_matches_torch(jax_fn, torch_fn, x)


SUMS = [c for c in CALLS if "max" not in c[0] and "inf" not in repr(c)] + [
    (name, lambda x, name=name, a=a: getattr(jaxpool, name)(x, *a), lambda x, name=name, a=a: getattr(F, name)(x, *a))
    for name, a in [("avg_pool2d", (2,)), ("avg_pool3d", (2, 2, 0, False, False)), ("lp_pool2d", (1, 2)),
                    ("adaptive_avg_pool2d", (1,)), ("adaptive_avg_pool2d", (3,)), ("adaptive_avg_pool1d", (3,))]]


@pytest.mark.parametrize("name, jax_fn, torch_fn", SUMS, ids=[f"{c[0]}-{k}" for k, c in enumerate(SUMS)])
def test_windows_of_negative_zeros_average_to_positive_zero_as_torch(name, jax_fn, torch_fn):
    """PyTorch sums from 0, so a window of -0.0 gives +0.0; tiled, global, irregular and
    padded windows alike (assert_matches_torch compares values, which cannot see the sign)."""
    shape = {1: (2, 3, 12), 2: (2, 3, 12, 6), 3: (2, 3, 6, 4, 6)}[_ndim(name)]
    x = np.full(shape, -0.0, np.float32)
    ours = np.asarray(jax.jit(jax_fn)(jnp.asarray(x)))
    theirs = torch_fn(torch.from_numpy(x)).numpy()
    assert ours.shape == theirs.shape
    assert np.array_equal(np.signbit(ours), np.signbit(theirs)) and not np.signbit(theirs).any()


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "int64"])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_integer_max_pool_extremes_match_torch(dtype, n):
    """Integer extremes: min never loses to padding, max and ties as torch (int64 under x64)."""
    info = np.iinfo(dtype)
    shape = (2, 3) + SPATIAL[n]
    x = RNG.choice(np.array([info.min, info.min + 1, 0, info.max - 1, info.max], dtype), shape)
    x[0, 0] = info.min  # a plane of the lowest value only: padding must not win
    x[0, 1] = info.max
    with jax.enable_x64(dtype == "int64"):
        for args in [(3, 2, 1, 1, True), (2, 1, 0, 2, False), (3, 1, 1, 1, False), (SPATIAL[n], 1, 0, 1, False)]:
            assert_matches_torch(lambda a: getattr(jaxpool, f"max_pool{n}d")(a, *args, return_indices=True),
                                 lambda a: getattr(F, f"max_pool{n}d")(a, *args, return_indices=True), x)
        assert getattr(jaxpool, f"max_pool{n}d")(jnp.asarray(x), 3, 1, 1).dtype == jnp.dtype(dtype)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_size_one_and_whole_input_kernels_match_torch(n):
    x = _special((2, 3) + SPATIAL[n])
    whole = SPATIAL[n]
    for name, args in [("max_pool", (1,)), ("max_pool", (whole,)), ("avg_pool", (1,)), ("avg_pool", (whole,)),
                       ("lp_pool", (2, 1)), ("lp_pool", (1, whole[0] if n == 1 else whole))]:
        kwargs = {"return_indices": True} if name == "max_pool" else {}
        data = np.nan_to_num(x, nan=0.5, posinf=3.0, neginf=-3.0) if name != "max_pool" else x
        assert_matches_torch(lambda a: getattr(jaxpool, f"{name}{n}d")(a, *args, **kwargs),
                             lambda a: getattr(F, f"{name}{n}d")(a, *args, **kwargs), data)


@pytest.mark.parametrize("case", ["max_pool1d", "max_pool2d", "adaptive_max_pool1d", "adaptive_max_pool3d",
                                  "avg_pool2d", "adaptive_avg_pool2d"])
def test_huge_kernels_take_the_materialised_path_and_match_torch(case):
    """Windows with more than 16 taps are reduced as a materialised axis: same rules."""
    calls = {
        "max_pool1d": ((2, 3, 40), (20, 3, 10, 1, True), {"return_indices": True}),
        "max_pool2d": ((1, 2, 17, 18), ((17, 18),), {"return_indices": True}),
        "adaptive_max_pool1d": ((2, 3, 50), (2, True), {}),
        "adaptive_max_pool3d": ((1, 2, 20, 3, 19), ((1, 2, 1), True), {}),
        "avg_pool2d": ((1, 2, 20, 20), (19, 1, 9), {}),
        "adaptive_avg_pool2d": ((1, 2, 40, 3), ((2, 1),), {}),
    }
    shape, args, kwargs = calls[case]
    x = _special(shape) if "max" in case else RNG.standard_normal(shape).astype(np.float32)
    if "max" in case:  # ties too: small integers with the NaN/inf mix
        x = np.where(np.isfinite(x), np.round(x), x).astype(np.float32)
    assert_matches_torch(lambda a: getattr(jaxpool, case)(a, *args, **kwargs),
                         lambda a: getattr(F, case)(a, *args, **kwargs), x)


# ----------------------------------------------------------------------- int32 flat indices

BIG = [
    ("max_pool3d", (1, 1, 2**11, 2**11, 2**9 + 1), lambda a: jaxpool.max_pool3d(a, 2, return_indices=True)),
    # (no 1-d case: a 2**31-cell axis makes numpy window tables of that order at trace time)
    ("adaptive_max_pool2d", (1, 1, 2**16, 2**15 + 1), lambda a: jaxpool.adaptive_max_pool2d(a, 2, True)),
]


@pytest.mark.parametrize("name, shape, fn", BIG, ids=[b[0] for b in BIG])
def test_planes_past_int32_need_x64_not_wraparound(name, shape, fn):
    """Shape-only (eval_shape): nothing this large is allocated."""
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    with pytest.raises(ValueError, match=f"{name}.*int32.*jax_enable_x64"):
        jax.eval_shape(fn, x)
    with jax.enable_x64(True):
        out = jax.eval_shape(fn, x)
        assert out[1].dtype == jnp.int64


def test_unpool_to_a_plane_past_int32_needs_x64():
    values = jax.ShapeDtypeStruct((1, 1, 2**15, 2**15), jnp.float32)
    indices = jax.ShapeDtypeStruct((1, 1, 2**15, 2**15), jnp.int32)
    unpool = lambda v, i: jaxpool.max_unpool2d(v, i, 2)  # noqa: E731  -> a 2**32-cell plane
    with pytest.raises(ValueError, match="max_unpool2d.*int32"):
        jax.eval_shape(unpool, values, indices)
    with jax.enable_x64(True):
        assert jax.eval_shape(unpool, values, indices).shape == (1, 1, 2**16, 2**16)


def test_largest_int32_plane_still_indexes_its_last_cell():
    """Indices up to 2**31 - 1 are representable: the boundary is exact, not off by one."""
    x = jax.ShapeDtypeStruct((1, 1, 2**16, 2**15), jnp.float32)  # 2**31 cells: last index 2**31 - 1
    out = jax.eval_shape(lambda a: jaxpool.max_pool2d(a, 2, return_indices=True), x)
    assert out[1].dtype == jnp.int32


# ----------------------------------------------------------------------- empty batch (N=0)

def _empty_batch_calls():
    for n in (1, 2, 3):
        for name, jax_fn, torch_fn in _calls(n):
            yield name, jax_fn, torch_fn
        yield (f"max_unpool{n}d",
               lambda x, n=n: getattr(jaxpool, f"max_unpool{n}d")(x, jnp.zeros(x.shape, jnp.int32), 2),
               lambda x, n=n: getattr(F, f"max_unpool{n}d")(x, torch.zeros(x.shape, dtype=torch.long), 2))


EMPTY = list(_empty_batch_calls())


@pytest.mark.parametrize("name, jax_fn, torch_fn", EMPTY, ids=[f"{c[0]}-{k}" for k, c in enumerate(EMPTY)])
def test_empty_batch_matches_torch(name, jax_fn, torch_fn):
    x = np.zeros((0, 3) + SPATIAL[_ndim(name)], np.float32)
    expected = torch_fn(torch.from_numpy(x))
    got = jax.jit(jax_fn)(jnp.asarray(x))
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = got if isinstance(got, tuple) else (got,)
    assert [tuple(e.shape) for e in expected] == [g.shape for g in got]
    grad = jax.jit(jax.grad(lambda a: jnp.sum(jax.tree.leaves(jax_fn(a))[0])))(jnp.asarray(x))
    assert grad.shape == x.shape


@pytest.mark.parametrize("shape, n, output_size", [
    ((1, 0, 4, 1), 2, 1), ((1, 0, 4, 1), 2, (1, 2)), ((1, 0, 4), 1, 1), ((1, 0, 4), 1, 2), ((0, 4, 3), 2, 1)])
def test_empty_integer_adaptive_average_is_accepted_or_rejected_as_torch(shape, n, output_size):
    """Empty integer input: torch's 1-d/2-d kernel returns before checking the dtype, except
    for an output of all ones, which it computes with ``mean()`` (found by the fuzzer)."""
    x = np.zeros(shape, np.int8)
    try:
        expected = getattr(F, f"adaptive_avg_pool{n}d")(torch.from_numpy(x), output_size)
    except RuntimeError:
        with pytest.raises(TypeError, match="floating"):
            getattr(jaxpool, f"adaptive_avg_pool{n}d")(x, output_size)
    else:
        assert getattr(jaxpool, f"adaptive_avg_pool{n}d")(x, output_size).shape == tuple(expected.shape)


# ----------------------------------------------------------------------- max_unpool indices

@pytest.mark.parametrize("bad", [-1, -7, 24, 25, 10**6])
def test_unpool_bad_index_eagerly_is_an_error_naming_it(bad):
    values = jnp.ones((1, 2, 2, 3))
    indices = jnp.zeros((1, 2, 2, 3), jnp.int32).at[0, 1, 1, 2].set(bad)
    with pytest.raises(ValueError, match=f"max_unpool2d: found an invalid max index {bad}"):
        jaxpool.max_unpool2d(values, indices, 2, output_size=(4, 6))
    with pytest.raises(RuntimeError, match="invalid max index"):  # torch agrees
        F.max_unpool2d(torch.ones(1, 2, 2, 3), torch.from_numpy(np.asarray(indices, np.int64)), 2,
                       output_size=(4, 6))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_unpool_bad_indices_under_jit_are_dropped_without_touching_other_planes(n, channels_last):
    """Documented behaviour under jit (indices cannot be checked): an index outside
    ``[0, plane)`` writes nothing: it neither wraps (negative) nor spills into the next plane
    (``plane + k``); every valid index still lands."""
    spatial = (4,) * n
    plane = 4**n
    pooled = (2,) * n
    cells = 2**n
    rng = np.random.default_rng(n)
    idx = np.stack([rng.choice(plane, cells, replace=False) for _ in range(6)]).reshape((2, 3) + pooled)
    values = (np.arange(6 * cells, dtype=np.float32).reshape(idx.shape) + 1)
    bad = idx.copy()
    bad[0, 0].flat[0] = -1            # would wrap to the plane's end
    bad[0, 1].flat[0] = plane          # would spill into plane (0, 2)
    bad[1, 2].flat[-1] = plane + 3     # past the last plane of the array
    bad[1, 0].flat[1] = -plane         # would land in the previous plane
    expected = np.zeros((2, 3, plane), np.float32)
    for b in range(2):
        for c in range(3):
            for v, i in zip(values[b, c].ravel(), bad[b, c].ravel()):
                if 0 <= i < plane:
                    expected[b, c, i] = v
    expected = expected.reshape((2, 3) + spatial)
    fn = jax.jit(lambda v, i: getattr(jaxpool, f"max_unpool{n}d")(v, i, 2, channels_last=channels_last))
    if channels_last:
        out = jnp.moveaxis(fn(jnp.moveaxis(values, 1, -1), jnp.moveaxis(bad, 1, -1)), -1, 1)
    else:
        out = fn(values, bad)
    np.testing.assert_array_equal(out, expected)
    # gradient: valid positions gather the cotangent, dropped ones get zero
    g = jax.grad(lambda v: jnp.sum(fn(v, bad if not channels_last else jnp.moveaxis(bad, 1, -1)) ** 2))(
        values if not channels_last else jnp.moveaxis(values, 1, -1))
    g = np.asarray(g if not channels_last else jnp.moveaxis(g, -1, 1))
    dropped = (bad < 0) | (bad >= plane)
    np.testing.assert_array_equal(g[dropped], 0)
    np.testing.assert_array_equal(g[~dropped], 2 * values[~dropped])


def test_one_non_finite_cell_in_a_large_irregular_adaptive_average_matches_torch():
    """Irregular adaptive averages are differentiated as matrix products, where one inf
    (0 * inf = NaN) would spoil a whole plane; their values are summed tap by tap, as torch
    sums, so a non-finite cell reaches exactly its windows."""
    x = RNG.standard_normal((2, 3, 33, 31)).astype(np.float32)
    x[0, 1, 17, 4] = np.inf
    x[1, 2, 3, 30] = np.nan
    assert_matches_torch(lambda a: jaxpool.adaptive_avg_pool2d(a, (7, 5)),
                         lambda a: F.adaptive_avg_pool2d(a, (7, 5)), x)


def test_non_finite_cotangent_of_irregular_adaptive_average_spreads_over_its_plane():
    """Documented difference (docs/rules.md): the gradient of an irregular adaptive average is a
    matrix product per irregular axis, so an inf in the cotangent makes its plane's gradient
    non-finite (9 -> 5 and 8 -> 3 are both irregular) where torch keeps it to the window's
    cells; other planes are untouched and equal torch's."""
    x = RNG.standard_normal((1, 2, 9, 8)).astype(np.float32)
    g = np.ones((1, 2, 5, 3), np.float32)
    g[0, 0, 1, 1] = np.inf
    _, vjp = jax.vjp(lambda a: jaxpool.adaptive_avg_pool2d(a, (5, 3)), jnp.asarray(x))
    (ours,) = vjp(jnp.asarray(g))
    xt = torch.from_numpy(x).requires_grad_()
    (theirs,) = torch.autograd.grad(F.adaptive_avg_pool2d(xt, (5, 3)), xt, torch.from_numpy(g))
    ours, theirs = np.asarray(ours), theirs.numpy()
    assert not np.isfinite(ours[0, 0]).any()
    assert 0 < np.isfinite(theirs[0, 0]).sum() < theirs[0, 0].size
    np.testing.assert_allclose(ours[0, 1], theirs[0, 1], rtol=1e-6)
