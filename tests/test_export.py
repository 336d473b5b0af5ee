"""``jax.export`` of every operator with a symbolic batch dimension.

Each op is exported once for input shape ``("b", C, *spatial)``, serialised to bytes and
deserialised, and the deserialised artifact must reproduce the jitted op for several batch
sizes (indices exactly, floats to 1e-6 of the output's scale: the exported module is compiled
separately and XLA may fuse ``lp_pool``'s power and root differently by one ulp).
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jaxpool

SPATIAL = {1: (11,), 2: (9, 8), 3: (5, 6, 7)}
BATCHES = (1, 5)  # a batch of one (the size XLA may specialise) and a general one


def _unpool(n):
    pool, unpool = getattr(jaxpool, f"max_pool{n}d"), getattr(jaxpool, f"max_unpool{n}d")
    return lambda x: unpool(*pool(x, 2, 2, 1, return_indices=True), 2, 2, 1, output_size=SPATIAL[n])


def _ops():
    for n in (1, 2, 3):
        yield f"max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"max_pool{n}d")(x, 3, 2, 1, 2, True, True)
        yield f"avg_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"avg_pool{n}d")(x, 3, 2, 1, True, False)
        yield f"lp_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"lp_pool{n}d")(x, 2, 2, 2, True)
        yield f"max_unpool{n}d", n, _unpool(n)
        yield f"adaptive_avg_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_avg_pool{n}d")(x, 4)
        yield f"adaptive_max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_max_pool{n}d")(x, 4, True)
        # > 16 taps per window: the engine's materialised-window path
        yield f"long_adaptive_max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_max_pool{n}d")(
            jnp.concatenate([x] * 3, axis=2), 1, True)
    yield "max_pool2d_channels_last", 2, lambda x: jaxpool.max_pool2d(
        jnp.moveaxis(x, 1, -1), 3, 2, 1, return_indices=True, channels_last=True)
    yield "max_unpool2d_channels_last", 2, lambda x: jaxpool.max_unpool2d(
        *jaxpool.max_pool2d(jnp.moveaxis(x, 1, -1), 2, return_indices=True, channels_last=True), 2,
        channels_last=True)


OPS = {name: (n, fn) for name, n, fn in _ops()}


def _assert_close(got, want):
    got, want = jax.tree.leaves(got), jax.tree.leaves(want)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        a, b = np.asarray(a), np.asarray(b)
        assert a.shape == b.shape and a.dtype == b.dtype
        if a.dtype.kind == "f":
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6 * max(1.0, float(np.abs(b).max(initial=0))))
        else:
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", OPS)
def test_export_with_symbolic_batch_round_trips(name):
    n, fn = OPS[name]
    shape = export.symbolic_shape(f"b, 3, {', '.join(map(str, SPATIAL[n]))}")
    exported = export.export(jax.jit(fn))(jax.ShapeDtypeStruct(shape, jnp.float32))
    assert str(exported.in_avals[0].shape[0]) == "b"
    restored = export.deserialize(exported.serialize())
    assert str(restored.in_avals) == str(exported.in_avals) and str(restored.out_avals) == str(exported.out_avals)
    rng = np.random.default_rng(0)
    for batch in BATCHES:
        x = jnp.asarray(rng.standard_normal((batch, 3, *SPATIAL[n])), jnp.float32)
        _assert_close(restored.call(x), jax.jit(fn)(x))


def test_exported_output_shapes_are_symbolic_in_the_batch_only():
    n, fn = OPS["max_pool2d"]
    exported = export.export(jax.jit(fn))(jax.ShapeDtypeStruct(export.symbolic_shape("b, 3, 9, 8"), jnp.float32))
    concrete = jax.eval_shape(fn, jax.ShapeDtypeStruct((7, 3, 9, 8), jnp.float32))
    assert len(exported.out_avals) == len(concrete) == 2
    for aval, want in zip(exported.out_avals, concrete):
        assert str(aval.shape[0]) == "b" and aval.shape[1:] == want.shape[1:] == (3, 4, 4)


def test_exported_float64_under_x64():
    with jax.enable_x64(True):
        fn = lambda x: jaxpool.max_pool2d(x, 2, return_indices=True)  # noqa: E731
        exported = export.export(jax.jit(fn))(jax.ShapeDtypeStruct(export.symbolic_shape("b, 2, 6, 6"), jnp.float64))
        restored = export.deserialize(exported.serialize())
        x = jnp.asarray(np.random.default_rng(1).standard_normal((4, 2, 6, 6)))
        values, indices = restored.call(x)
        assert values.dtype == jnp.float64 and indices.dtype == jnp.int64
        _assert_close((values, indices), fn(x))


# ------------------------------------------------------------------ several platforms at once
#
# One artefact for CPU, CUDA, ROCm and TPU: lax.platform_dependent lowers the XLA:CPU tactics
# for "cpu" and the portable core for the others into the same module.  Only the CPU part can
# run here; it must match the jitted op, forward and gradient.  Serialising proves the
# accelerator parts lowered (every primitive has a lowering for each platform).
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")


def _every_op():
    """Every operator; the random ones (one code path for every ndim) in 2-d by default."""
    yield from OPS.items()
    dims = (1, 2, 3) if os.environ.get("JAXPOOL_FULL") == "1" else (2,)
    for n in (2, 3) if len(dims) == 3 else dims:
        samples = jnp.asarray(np.random.default_rng(n).uniform(size=(2, 3, n)), jnp.float32)
        yield f"fractional_max_pool{n}d", (n, lambda x, n=n, s=samples: getattr(jaxpool, f"fractional_max_pool{n}d")(
            x, 2, output_size=(3,) * n, return_indices=True, _random_samples=s))
    for n in dims:
        yield f"stochastic_pool{n}d", (n, lambda x, n=n: getattr(jaxpool, f"stochastic_pool{n}d")(
            x, 2, key=jax.random.key(0)))
        yield f"stochastic_pool{n}d_eval", (n, lambda x, n=n: getattr(jaxpool, f"stochastic_pool{n}d")(
            x, 3, 2, 1, training=False))


EVERY_OP = dict(_every_op())


def _gradient(fn):
    """The gradient of a weighted sum of the op's floating outputs (indices carry none)."""
    def loss(x):
        leaves = [a for a in jax.tree.leaves(fn(x)) if jnp.issubdtype(a.dtype, jnp.floating)]
        return sum(jnp.sum(a * jnp.linspace(0.5, 1.5, a.size).reshape(a.shape)) for a in leaves)
    return jax.grad(loss)


@pytest.mark.parametrize("kind", ["forward", "gradient"])
@pytest.mark.parametrize("name", EVERY_OP)
def test_export_for_every_platform_runs_on_cpu(name, kind):
    n, fn = EVERY_OP[name]
    f = fn if kind == "forward" else _gradient(fn)
    x = jnp.asarray(np.random.default_rng(3).standard_normal((2, 3, *SPATIAL[n])), jnp.float32)
    exported = export.export(jax.jit(f), platforms=PLATFORMS)(jax.ShapeDtypeStruct(x.shape, x.dtype))
    assert exported.platforms == PLATFORMS
    restored = export.deserialize(exported.serialize())
    _assert_close(restored.call(x), jax.jit(f)(x))
