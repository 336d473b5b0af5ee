"""``jax.export`` of every operator with a symbolic batch dimension.

Each op is exported once for input shape ``("b", C, *spatial)``, serialised to bytes and
deserialised, and the deserialised artifact must reproduce the jitted op for several batch
sizes (indices exactly, floats to 1e-6 of the output's scale: the exported module is compiled
separately and XLA may fuse ``lp_pool``'s power and root differently by one ulp).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import export

import jaxpool
from jaxpool.testing.exports import EVERY_OP, OPS, PLATFORMS, SPATIAL, example_input, gradient

BATCHES = (1, 5)  # a batch of one (the size XLA may specialise) and a general one


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
# accelerator parts lowered (every primitive has a lowering for each platform); benchmarks/gpu.sh
# runs the CUDA part of artefacts written here (jaxpool.testing.exports) on a GPU.

@pytest.mark.parametrize("kind", ["forward", "gradient"])
@pytest.mark.parametrize("name", EVERY_OP)
def test_export_for_every_platform_runs_on_cpu(name, kind):
    n, fn = EVERY_OP[name]
    f = fn if kind == "forward" else gradient(fn)
    x = example_input(n)
    exported = export.export(jax.jit(f), platforms=PLATFORMS)(jax.ShapeDtypeStruct(x.shape, x.dtype))
    assert exported.platforms == PLATFORMS
    restored = export.deserialize(exported.serialize())
    _assert_close(restored.call(x), jax.jit(f)(x))


def test_saved_artefacts_check_out_and_a_changed_result_is_caught(tmp_path, capsys):
    """The save/check pair that carries artefacts to a GPU machine: what it saves checks out,
    and a saved result that no longer matches is reported, not passed."""
    from jaxpool.testing import exports

    names = ["max_pool2d", "adaptive_avg_pool3d", "fractional_max_pool2d"]
    assert exports.save(str(tmp_path), names) == 2 * len(names)
    assert exports.check(str(tmp_path)) == []
    saved = dict(np.load(tmp_path / "max_pool2d.forward.npz"))
    saved["out1"] = saved["out1"].copy()
    saved["out1"].flat[0] += 1  # one index off
    np.savez(tmp_path / "max_pool2d.forward.npz", **saved)
    assert exports.check(str(tmp_path)) == ["max_pool2d.forward"]
    assert "1 of " in capsys.readouterr().out
    (tmp_path / "max_pool2d.gradient.bin").unlink()  # an artefact missing
    assert exports.MANIFEST in exports.check(str(tmp_path))
    empty = tmp_path / "empty"
    empty.mkdir()
    assert exports.check(str(empty)) == [exports.MANIFEST]
