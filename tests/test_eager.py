"""Eager calls (concrete arrays, no transformation) run each executor as one cached jitted
program (jaxpool._eager): the same results as inside ``jit``, one compile per plan and
argument types, and nothing compiled again on a repeated call."""

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import _eager, config, plan

X = np.random.default_rng(0).standard_normal((2, 3, 12, 13)).astype(np.float32)
SAMPLES = np.full((2, 3, 2), 0.37, np.float32)

OPS = {
    "max_pool2d": lambda x: jaxpool.max_pool2d(x, 3, 2, 1),
    "max_pool2d indices": lambda x: jaxpool.max_pool2d(x, 3, 2, 1, return_indices=True),
    "avg_pool2d nopad": lambda x: jaxpool.avg_pool2d(x, 3, 2, 1, count_include_pad=False),
    "lp_pool2d": lambda x: jaxpool.lp_pool2d(x, 2, 3),
    "adaptive_max_pool2d": lambda x: jaxpool.adaptive_max_pool2d(x, 5, return_indices=True),
    "adaptive_avg_pool2d": lambda x: jaxpool.adaptive_avg_pool2d(x, (4, None)),
    "max_unpool2d": lambda x: jaxpool.max_unpool2d(*jaxpool.max_pool2d(x, 2, 2, return_indices=True), 2, 2,
                                                   output_size=x.shape[2:]),
    "fractional_max_pool2d": lambda x: jaxpool.fractional_max_pool2d(x, 2, output_size=5, return_indices=True,
                                                                      _random_samples=SAMPLES),
    "stochastic_pool2d": lambda x: jaxpool.stochastic_pool2d(jnp.abs(x), 2, key=jax.random.key(3)),
    "stochastic_pool2d eval": lambda x: jaxpool.stochastic_pool2d(jnp.abs(x), 2, training=False),
    "max_pool1d int32": lambda x: jaxpool.max_pool1d(jnp.asarray(x[:, :, 0] * 10, jnp.int32), 3, 2),
}


class Compiles:
    """Counts XLA compilations while open."""

    def __enter__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def _listen(self, name, duration, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self._listen)


@pytest.mark.parametrize("name", OPS)
def test_an_eager_call_equals_the_jitted_one_and_compiles_nothing_again(name):
    op = OPS[name]
    eager = op(X)
    if name == "lp_pool2d":  # its power and root run outside the executor, unfused when eager
        np.testing.assert_allclose(eager, jax.jit(op)(X), rtol=1e-6)
    else:
        np.testing.assert_equal(jax.tree.map(np.asarray, eager), jax.tree.map(np.asarray, jax.jit(op)(X)))
    with Compiles() as compiles:
        again = op(X)
    assert compiles.count == 0
    np.testing.assert_equal(jax.tree.map(np.asarray, again), jax.tree.map(np.asarray, eager))


def test_an_eager_max_pool_is_one_program():
    x = X[:, :, :11]  # a shape no other test compiled
    with Compiles() as compiles:
        jax.block_until_ready(jaxpool.max_pool2d(x, 3, 2, 0, 2, True))
    assert compiles.count <= 2  # the program, and at most the input's transfer


def test_programs_are_kept_apart_by_dtype_plan_and_route():
    x16 = jnp.asarray(X, jnp.bfloat16)
    np.testing.assert_equal(np.asarray(jaxpool.avg_pool2d(x16, 3), np.float32),
                            np.asarray(jax.jit(lambda x: jaxpool.avg_pool2d(x, 3))(x16), np.float32))
    assert jaxpool.avg_pool2d(x16, 3).dtype == jnp.bfloat16 and jaxpool.avg_pool2d(X, 3).dtype == jnp.float32
    # same shapes, another divisor rule: another program
    for count_include_pad in (True, False, True):
        op = lambda x: jaxpool.avg_pool2d(x, 3, 2, 1, count_include_pad=count_include_pad)  # noqa: E731
        np.testing.assert_equal(np.asarray(op(X)), np.asarray(jax.jit(op)(X)))
    with config.force_portable():
        portable = jaxpool.max_pool2d(X, 3, 2, 1, return_indices=True)
        with plan.recording() as plans:  # plans are made before the cache is asked, so still recorded
            jaxpool.max_pool2d(X, 3, 2, 1, return_indices=True)
    assert plans and "portable" in plans[0].routes[0][1]
    np.testing.assert_equal(jax.tree.map(np.asarray, portable),
                            jax.tree.map(np.asarray, jaxpool.max_pool2d(X, 3, 2, 1, return_indices=True)))


def test_a_traced_call_is_not_cached_here():
    calls = []
    executor = _eager.compiled_when_eager(lambda p, x: calls.append(p) or x * 2)
    jax.jit(lambda x: executor("plan", x))(jnp.ones(3))
    jax.jit(lambda x: executor("plan", x))(jnp.ones(3))
    assert len(calls) == 2  # inside a trace the executor runs as written, every time


def test_fingerprints_tell_contents_apart():
    a = np.arange(4, dtype=np.int32)
    assert _eager.fingerprint({"t": a}) == _eager.fingerprint({"t": a.copy()})
    assert _eager.fingerprint({"t": a}) != _eager.fingerprint({"t": a.astype(np.int64)})
    assert _eager.fingerprint((1, [2])) != _eager.fingerprint((1, (2,)))
    with pytest.raises(TypeError):
        _eager.fingerprint(object.__new__(type("Unhashable", (), {"__hash__": None})))
