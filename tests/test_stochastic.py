"""Stochastic pooling: pick frequencies (chi-square), exact inference, gradients, safety, transforms.

The statistical tests use fixed keys, so they are deterministic: they cannot flake.  Each
compares counts with ``n * p`` by Pearson's chi-square and fails above the critical value at
significance 1e-4 (a correct sampler fails a fresh key with probability 1e-4; a sampler off by
a few percent on any cell fails with near certainty at these sample sizes).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch  # noqa: F401  (the suite's rule: torch is imported by every test module)

import jaxpool

# Critical values of chi-square at significance 1e-4, by degrees of freedom (scipy.stats.chi2.isf).
CHI2_CRITICAL = {1: 15.137, 2: 18.421, 3: 21.108, 4: 23.513, 5: 25.745, 6: 27.856, 7: 29.878, 8: 31.828}
DRAWS = 40000


def chi_square(counts: np.ndarray, probabilities: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic over the cells of non-zero probability, and its degrees of freedom."""
    keep = probabilities > 0
    expected = counts.sum() * probabilities[keep]
    assert counts[~keep].sum() == 0, "a cell of probability 0 was picked"
    return float(((counts[keep] - expected) ** 2 / expected).sum()), int(keep.sum()) - 1


def pick_counts(window: np.ndarray, key, draws: int = DRAWS) -> np.ndarray:
    """How often each cell of one window is picked over ``draws`` independent windows.

    The window is tiled into a batch of ``draws`` identical planes pooled by one kernel-sized
    window each (one key: every window gets its own draw).  Cells carry distinct positive
    markers through the gradient: the training gradient is one-hot on the picked cell.
    """
    ndim = window.ndim
    x = jnp.broadcast_to(jnp.asarray(window, jnp.float32), (draws, 1) + window.shape)
    pool = getattr(jaxpool, f"stochastic_pool{ndim}d")
    grad = jax.jit(jax.grad(lambda x: pool(x, window.shape, key=key).sum()))(x)
    picks = np.asarray(grad).reshape(draws, -1)
    assert np.all(picks.sum(axis=1) == 1) and set(np.unique(picks)) <= {0.0, 1.0}
    return picks.sum(axis=0)


WINDOWS = [
    np.array([1.0, 2.0, 3.0, 0.5]),                              # 1-d
    np.array([[1.0, 2.0], [3.0, 4.0]]),                          # 2-d, k=2
    np.array([[0.0, 5.0, 1.0], [2.0, 0.0, 0.25], [1.0, 1.0, 3.0]]),  # zeros never picked
    np.array([[[1.0, 2.0], [0.5, 4.0]], [[3.0, 1.5], [0.1, 2.0]]]),  # 3-d
    np.array([[-1.0, 2.0], [3.0, -4.0]]),                        # negatives have probability 0
]


@pytest.mark.parametrize("window", WINDOWS, ids=lambda w: f"{w.ndim}d{list(w.shape)}")
def test_pick_frequencies_match_a_over_sum(window):
    w = np.maximum(window, 0).ravel()
    counts = pick_counts(window, jax.random.key(20130116))
    stat, dof = chi_square(counts, w / w.sum())
    assert stat < CHI2_CRITICAL[dof], (stat, dof, counts / counts.sum(), w / w.sum())


def test_all_zero_and_all_negative_windows_pick_uniformly():
    for window in (np.zeros((2, 3)), np.array([[-1.0, -2.0], [-0.5, -3.0]]), np.array([0.0, -1.0, 0.0])):
        counts = pick_counts(window, jax.random.key(7))
        stat, dof = chi_square(counts, np.full(window.size, 1 / window.size))
        assert stat < CHI2_CRITICAL[dof], (window, counts)


def test_padding_cells_are_not_part_of_the_window():
    # 1-d input [a, b] with kernel 3 and padding 1: the first window is [pad, a, b].
    x = jnp.broadcast_to(jnp.asarray([1.0, 3.0]), (DRAWS, 1, 2))
    grad = jax.grad(lambda x: jaxpool.stochastic_pool1d(x, 3, 2, 1, key=jax.random.key(3)).sum())(x)
    counts = np.asarray(grad).reshape(DRAWS, 2).sum(axis=0)
    stat, dof = chi_square(counts, np.array([0.25, 0.75]))
    assert stat < CHI2_CRITICAL[dof]
    # all-zero window with padding: uniform over the two real cells only
    z = jnp.zeros((DRAWS, 1, 2))
    grad = jax.grad(lambda x: jaxpool.stochastic_pool1d(x, 3, 2, 1, key=jax.random.key(4)).sum())(z)
    counts = np.asarray(grad).reshape(DRAWS, 2).sum(axis=0)
    assert chi_square(counts, np.array([0.5, 0.5]))[0] < CHI2_CRITICAL[1]


def test_overlapping_windows_draw_independently():
    """Windows [a, b] and [b, c] (stride 1) share b; their picks are independent."""
    x = jnp.broadcast_to(jnp.asarray([1.0, 2.0, 3.0]), (DRAWS, 1, 3))
    y = np.asarray(jaxpool.stochastic_pool1d(x, 2, 1, key=jax.random.key(5)))[:, 0]
    joint = np.array([np.sum((y[:, 0] == a) & (y[:, 1] == b)) for a in (1.0, 2.0) for b in (2.0, 3.0)])
    p = np.outer([1 / 3, 2 / 3], [2 / 5, 3 / 5]).ravel()
    stat, dof = chi_square(joint, p)
    assert stat < CHI2_CRITICAL[dof], joint / DRAWS


def test_chi_square_detects_a_wrong_distribution():
    """The test can fail: the picks of one window are tested against a wrong distribution."""
    counts = pick_counts(np.array([1.0, 2.0, 3.0, 0.5]), jax.random.key(1))
    assert chi_square(counts, np.array([0.25, 0.25, 0.25, 0.25]))[0] > CHI2_CRITICAL[3]
    # probabilities off by 1.5 percentage points on two cells
    assert chi_square(counts, np.array([1.1, 2, 3, 0.4]) / 6.5)[0] > CHI2_CRITICAL[3]


# ------------------------------------------------------------------------------- inference


def reference(x: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """The seed's per-window loop, in numpy float64, returning the expectation sum(p * a)."""
    n = len(kernel)
    spatial = x.shape[2:]
    out = [(s + 2 * p - k) // st + 1 for s, k, st, p in zip(spatial, kernel, stride, padding)]
    y = np.zeros(x.shape[:2] + tuple(out))
    for b, c in itertools.product(range(x.shape[0]), range(x.shape[1])):
        for o in itertools.product(*map(range, out)):
            lo = [i * st - p for i, st, p in zip(o, stride, padding)]
            sl = tuple(slice(max(l_, 0), min(l_ + k, s)) for l_, k, s in zip(lo, kernel, spatial))
            cells = x[(b, c) + sl].astype(np.float64).ravel()
            w = np.maximum(cells, 0)
            y[(b, c) + o] = (w * cells).sum() / w.sum() if w.sum() > 0 else cells.mean()
    assert n == x.ndim - 2
    return y


INFERENCE = [
    ((2, 3, 9), (3,), (2,), (1,)),
    ((2, 2, 7, 8), (2, 3), (2, 1), (1, 0)),
    ((1, 2, 6, 5), (2, 2), (2, 2), (0, 0)),
    ((1, 2, 5, 6, 4), (2, 3, 2), (1, 2, 2), (1, 1, 0)),
]


@pytest.mark.parametrize("shape, kernel, stride, padding", INFERENCE)
def test_inference_matches_the_numpy_reference(shape, kernel, stride, padding):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    x[x < -1] = 0.0  # exact zeros too; some windows end up all non-positive
    x[..., :1] = -np.abs(x[..., :1])
    pool = getattr(jaxpool, f"stochastic_pool{len(kernel)}d")
    with jax.enable_x64(True):
        y = pool(jnp.asarray(x), kernel, stride, padding, training=False)
        np.testing.assert_allclose(np.asarray(y), reference(x, kernel, stride, padding), rtol=1e-13, atol=1e-13)
    y32 = pool(jnp.asarray(x, jnp.float32), kernel, stride, padding, training=False)
    np.testing.assert_allclose(np.asarray(y32), reference(x, kernel, stride, padding), rtol=2e-6, atol=2e-6)


def test_inference_is_the_mean_of_training_outputs():
    x = jnp.abs(jnp.asarray(np.random.default_rng(1).standard_normal((1, 2, 4, 4)), jnp.float32))
    keys = jax.random.split(jax.random.key(11), 20000)
    samples = jax.vmap(lambda k: jaxpool.stochastic_pool2d(x, 2, key=k))(keys)
    expected = jaxpool.stochastic_pool2d(x, 2, training=False)
    np.testing.assert_allclose(np.asarray(samples.mean(0)), np.asarray(expected), rtol=0.03)


def test_inference_gradient_is_exact():
    """jax.grad of the op equals jax.grad of the formula and central finite differences (float64)."""
    rng = np.random.default_rng(2)
    with jax.enable_x64(True):
        x = jnp.asarray(np.abs(rng.standard_normal((1, 2, 6, 6))) + 0.1)
        x = x.at[0, 0, 0, 0].set(-0.7)  # a negative cell: weight 0, gradient 0
        x = x.at[0, 1, :2, :2].set(-1.0)  # an all-negative window: the mean, gradient 1/4
        cot = jnp.asarray(rng.standard_normal((1, 2, 3, 3)))
        f = lambda x: jnp.sum(cot * jaxpool.stochastic_pool2d(x, 2, training=False))  # noqa: E731

        def formula(x):
            win = x.reshape(1, 2, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(1, 2, 3, 3, 4)
            w = jnp.maximum(win, 0)
            s = w.sum(-1)
            out = jnp.where(s > 0, (w * w).sum(-1) / jnp.where(s > 0, s, 1), win.mean(-1))
            return jnp.sum(cot * out)

        g = jax.grad(f)(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(jax.grad(formula)(x)), rtol=1e-12, atol=1e-12)
        eps = 1e-6
        basis = np.eye(x.size).reshape((x.size,) + x.shape)
        fd = np.array([(f(x + eps * e) - f(x - eps * e)) / (2 * eps) for e in basis]).reshape(x.shape)
        np.testing.assert_allclose(np.asarray(g), fd, rtol=1e-6, atol=1e-8)
        assert float(g[0, 0, 0, 0]) == 0.0
        np.testing.assert_allclose(np.asarray(g[0, 1, :2, :2]), np.full((2, 2), float(cot[0, 1, 0, 0]) / 4))


# ------------------------------------------------------------------------------- training


def test_training_gradient_is_one_hot_on_the_picked_cell():
    x = jnp.asarray(np.random.default_rng(3).permutation(2 * 3 * 8 * 8).reshape(2, 3, 8, 8) + 1.0, jnp.float32)
    key = jax.random.key(12)
    y = jaxpool.stochastic_pool2d(x, 2, key=key)
    g = jax.grad(lambda x: jnp.sum(jaxpool.stochastic_pool2d(x, 2, key=key)))(x)
    windows = np.asarray(x).reshape(2, 3, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 4, 4)
    grads = np.asarray(g).reshape(2, 3, 4, 2, 4, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 4, 4, 4)
    assert np.all(grads.sum(-1) == 1) and set(np.unique(grads)) == {0.0, 1.0}
    np.testing.assert_array_equal((windows * grads).sum(-1), np.asarray(y))  # values are distinct


def test_no_nan_for_negative_and_zero_windows_in_both_modes():
    x = jnp.asarray([[[-1.0, -2.0, 0.0, 0.0, -3.0, 5.0, 0.0, -0.5]]])
    for training in (True, False):
        f = lambda x: jaxpool.stochastic_pool1d(x, 2, key=jax.random.key(0), training=training)  # noqa: B023,E731
        y, g = f(x), jax.grad(lambda x: f(x).sum())(x)
        assert bool(jnp.isfinite(y).all()) and bool(jnp.isfinite(g).all())
        assert float(y[0, 0, 1]) == 0.0 and float(y[0, 0, 2]) == 5.0
        if training:
            assert float(y[0, 0, 0]) in (-1.0, -2.0) and float(y[0, 0, 3]) in (0.0, -0.5)
        else:
            np.testing.assert_allclose(np.asarray(y), [[[-1.5, 0.0, 5.0, -0.25]]])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_windows_give_nan_only_there(bad):
    x = jnp.asarray([[[1.0, bad, 2.0, 3.0, 0.0, 0.0]]])
    for training in (True, False):
        y = jaxpool.stochastic_pool1d(x, 2, key=jax.random.key(1), training=training)
        assert bool(jnp.isnan(y[0, 0, 0])) and bool(jnp.isfinite(y[0, 0, 1:]).all())


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_low_precision_dtypes(dtype):
    x = jnp.abs(jnp.asarray(np.random.default_rng(4).standard_normal((2, 3, 6, 6)), dtype))
    y = jaxpool.stochastic_pool2d(x, 2, key=jax.random.key(2))
    assert y.dtype == jnp.dtype(dtype)
    windows = np.asarray(x.astype(jnp.float32)).reshape(2, 3, 3, 2, 3, 2).transpose(0, 1, 2, 4, 3, 5).reshape(2, 3, 3, 3, 4)
    assert np.all((windows == np.asarray(y.astype(jnp.float32))[..., None]).any(-1))  # a window cell
    z = jaxpool.stochastic_pool2d(x, 2, training=False)
    ref = reference(np.asarray(x.astype(jnp.float32)), (2, 2), (2, 2), (0, 0))
    tol = {"float16": 1e-3, "bfloat16": 8e-3, "float32": 1e-6}[dtype]
    np.testing.assert_allclose(np.asarray(z.astype(jnp.float32)), ref, rtol=tol, atol=tol)


def test_same_key_same_result_jit_vmap_and_layouts():
    x = jnp.abs(jnp.asarray(np.random.default_rng(5).standard_normal((2, 3, 10, 10)), jnp.float32))
    k = jax.random.key(3)
    a = jaxpool.stochastic_pool2d(x, 3, 2, 1, key=k)
    b = jax.jit(lambda x, k: jaxpool.stochastic_pool2d(x, 3, 2, 1, key=k))(x, k)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(jaxpool.stochastic_pool2d(x, 3, 2, 1, key=jax.random.key(4))))
    keys = jax.random.split(k, 3)
    many = jax.vmap(lambda k: jaxpool.stochastic_pool2d(x, 3, 2, 1, key=k))(keys)
    for kk, m in zip(keys, many):
        np.testing.assert_array_equal(np.asarray(m), np.asarray(jaxpool.stochastic_pool2d(x, 3, 2, 1, key=kk)))
    over_x = jax.vmap(lambda xi: jaxpool.stochastic_pool2d(xi, 3, 2, 1, key=k))(x)  # unbatched inside vmap
    np.testing.assert_array_equal(np.asarray(over_x[0]), np.asarray(jaxpool.stochastic_pool2d(x[0], 3, 2, 1, key=k)))
    last = jaxpool.stochastic_pool2d(jnp.moveaxis(x, 1, -1), 3, 2, 1, key=k, channels_last=True)
    np.testing.assert_array_equal(np.asarray(jnp.moveaxis(last, -1, 1)), np.asarray(a))
    single = jaxpool.stochastic_pool2d(x[:1], 3, 2, 1, key=k)
    np.testing.assert_array_equal(np.asarray(jaxpool.stochastic_pool2d(x[0], 3, 2, 1, key=k)), np.asarray(single[0]))
    legacy = jaxpool.stochastic_pool2d(x, 3, 2, 1, key=jax.random.PRNGKey(3))
    assert legacy.shape == a.shape


def test_errors():
    x = jnp.ones((1, 2, 6, 6))
    with pytest.raises(ValueError, match="key"):
        jaxpool.stochastic_pool2d(x, 2)
    with pytest.raises(TypeError, match="key"):
        jaxpool.stochastic_pool2d(x, 2, key=3)
    with pytest.raises(TypeError, match="dtype"):
        jaxpool.stochastic_pool2d(x.astype(jnp.int32), 2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="padding"):
        jaxpool.stochastic_pool2d(x, 2, padding=2, key=jax.random.key(0))
    with pytest.raises(ValueError, match="kernel_size"):
        jaxpool.stochastic_pool2d(x, 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="output size"):
        jaxpool.stochastic_pool2d(x, 7, key=jax.random.key(0))
    with pytest.raises(ValueError, match="dimensions"):
        jaxpool.stochastic_pool3d(x[0, 0], 2, key=jax.random.key(0))
    with pytest.raises(TypeError, match="training"):
        jaxpool.stochastic_pool2d(x, 2, key=jax.random.key(0), training=1)
    assert jaxpool.stochastic_pool2d(x, 2, training=False).shape == (1, 2, 3, 3)  # no key needed
