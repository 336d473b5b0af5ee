"""The derivative of a window max attached once over the platform switch (jaxpool._choices).

Each route is replayed recording its chosen-tap maps, and the executor differentiates the
replay (whose values are the forward's, or are replaced by the forward's where a program does
not differentiate).  What must hold: the replay's folds form a chain (else the recorded
derivative would be wrong, so recording refuses), and the executor knows in advance which
CPU routes differentiate another form than their forward (it replays those inside the JVP).
"""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import _choices, _cpu_max, _portable, plan

CASES = [
    *[(f"adaptive_max_pool{d}d {size}->{out} indices={i}",
       lambda x, d=d, out=out, i=i: getattr(jaxpool, f"adaptive_max_pool{d}d")(x, out, return_indices=i), (1, 2) + (size,) * d)
      for d, (size, out), i in itertools.product((1, 2, 3), ((33, 5), (14, 7), (10, 4), (5, 9), (40, 2), (3000, 7), (70000, 69999)), (False, True))
      if size ** d <= 10**5 or d == 1],
    *[(f"max_pool{d}d k{k} s{s} indices={i}",
       lambda x, d=d, k=k, s=s, i=i: getattr(jaxpool, f"max_pool{d}d")(x, k, s, return_indices=i), (1, 2) + (n,) * d)
      for d, (n, k, s), i in itertools.product((1, 2), ((9, 3, 2), (40, 20, 3), (8, 2, 2)), (False, True))],
]


@pytest.mark.parametrize("name,op,shape", CASES, ids=[c[0] for c in CASES])
def test_the_executor_knows_which_cpu_routes_differentiate_another_form(name, op, shape):
    with plan.recording() as plans:
        jax.eval_shape(op, jax.ShapeDtypeStruct(shape, jnp.float32))
    (p,) = plans
    tables = {a: w.trimmed() for a, w in p.tables.items()}
    x = jax.ShapeDtypeStruct(p.layout.batch(jnp.zeros(shape)).shape, jnp.float32)
    replay = _choices.Replay(lambda x: _cpu_max.window_max(x, dict(p.tables), dict(p.plane_strides), p.index_dtype), x)
    assert replay.tape.rerouted == _cpu_max.differentiates_another_form(tables, len(x.shape), p.index_dtype is not None)


def test_a_route_whose_folds_are_not_a_chain_cannot_be_recorded():
    x = jnp.arange(6.0)

    def broken(x):
        best = _choices.route_to_chosen(x, x[:3], jnp.zeros(3, jnp.int32), lambda t, c: t[:3])
        return _choices.route_to_chosen(x, best, jnp.zeros(3, jnp.int32), lambda t, c: t[:3]), None  # reads x again

    with pytest.raises(AssertionError, match="not a chain"):
        _choices.Replay(broken, x)


def test_a_route_returning_values_it_did_not_record_cannot_be_recorded():
    x = jnp.arange(6.0)

    def broken(x):
        _choices.route_to_chosen(x, x[:3], jnp.zeros(3, jnp.int32), lambda t, c: t[:3])
        return x[3:], None

    with pytest.raises(AssertionError, match="did not compute"):
        _choices.Replay(broken, x)


def test_the_recorded_tangent_is_the_composition_of_the_folds():
    """A 2-d max pool folds two axes; the replay's tangent must equal the routes' own JVP."""
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 9, 11)), jnp.float32)
    t = jnp.asarray(np.random.default_rng(1).standard_normal(x.shape), jnp.float32)
    with plan.recording() as plans:
        jaxpool.max_pool2d(x, 3, 2, 1)
    (p,) = plans
    route = lambda x: _portable.window_max(x, dict(p.tables), dict(p.plane_strides), None)  # noqa: E731
    replay = _choices.Replay(route, x)
    assert len(replay.tape.maps) == 2
    best, _, choices = replay.run(x)
    expected = jax.jvp(lambda x: route(x)[0], (x,), (t,))[1]
    np.testing.assert_array_equal(replay.tangent(t, choices), expected)



@pytest.mark.parametrize("op", [
    lambda x: jaxpool.max_pool2d(x, 3, 2, 1),
    lambda x: jaxpool.adaptive_max_pool2d(x, 5, return_indices=True)[0],
    lambda x: jaxpool.adaptive_max_pool2d(x, 5),
], ids=["max_pool2d", "adaptive indices", "adaptive values"])
def test_a_derivative_traced_under_another_route_setting_follows_the_forward(op):
    """jax traces a custom JVP rule lazily: a function jitted without force_portable() and
    differentiated under it must still route the tangent by the choices its forward made."""
    from jaxpool import config

    x = jnp.asarray(np.random.default_rng(2).standard_normal((2, 3, 15, 16)), jnp.float32)
    def loss(x):
        y = op(x)
        return (y * jnp.arange(y.size, dtype=y.dtype).reshape(y.shape)).sum()  # a distinct weight per window

    expected = jax.grad(loss)(x)
    jitted = jax.jit(loss)
    jitted(x)
    with config.force_portable():
        got = jax.grad(jitted)(x)
    np.testing.assert_array_equal(got, expected)
