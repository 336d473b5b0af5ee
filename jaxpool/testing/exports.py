"""Every operator as a ``jax.export`` artefact for several platforms, and the check that one runs.

``lax.platform_dependent`` lowers the XLA:CPU tactics for ``"cpu"`` and the portable core for
every other platform into one module.  ``tests/test_export.py`` runs the CPU part of each
artefact here.  The accelerator parts can only be run where there is an accelerator, so this
module can also write the artefacts, with the CPU route's results as the reference, to a folder
(:func:`save`) that a machine with a GPU reads and runs (:func:`check`)::

    python3 -m jaxpool.testing.exports save exported/    # here: artefacts + CPU results
    python3 -m jaxpool.testing.exports check exported/   # on the GPU machine: run them there

The artefact then crosses machines and jax versions, as a user's exported model does.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator

import jax
import jax.numpy as jnp
import numpy as np

import jaxpool

__all__ = ["EVERY_OP", "MANIFEST", "OPS", "PLATFORMS", "SPATIAL", "check", "example_input", "gradient", "save"]

PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
MANIFEST = "manifest.json"  # what save wrote: the artefact count, jax and jaxpool versions
SPATIAL = {1: (11,), 2: (9, 8), 3: (5, 6, 7)}


def _unpool(n: int) -> Callable:
    pool, unpool = getattr(jaxpool, f"max_pool{n}d"), getattr(jaxpool, f"max_unpool{n}d")
    return lambda x: unpool(*pool(x, 2, 2, 1, return_indices=True), 2, 2, 1, output_size=SPATIAL[n])


def _ops() -> Iterator[tuple[str, int, Callable]]:
    for n in (1, 2, 3):
        yield f"max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"max_pool{n}d")(x, 3, 2, 1, 2, True, True)
        yield f"avg_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"avg_pool{n}d")(x, 3, 2, 1, True, False)
        yield f"lp_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"lp_pool{n}d")(x, 2, 2, 2, True)
        yield f"max_unpool{n}d", n, _unpool(n)
        yield f"adaptive_avg_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_avg_pool{n}d")(x, 4)
        yield f"adaptive_max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_max_pool{n}d")(x, 4, True)
        # > 16 taps per window: the long-window routes
        yield f"long_adaptive_max_pool{n}d", n, lambda x, n=n: getattr(jaxpool, f"adaptive_max_pool{n}d")(
            jnp.concatenate([x] * 3, axis=2), 1, True)
    yield "max_pool2d_channels_last", 2, lambda x: jaxpool.max_pool2d(
        jnp.moveaxis(x, 1, -1), 3, 2, 1, return_indices=True, channels_last=True)
    yield "max_unpool2d_channels_last", 2, lambda x: jaxpool.max_unpool2d(
        *jaxpool.max_pool2d(jnp.moveaxis(x, 1, -1), 2, return_indices=True, channels_last=True), 2,
        channels_last=True)


#: name -> (spatial dims, op of the input alone): the deterministic operators.
OPS = {name: (n, fn) for name, n, fn in _ops()}


def _every_op(full: bool) -> Iterator[tuple[str, tuple[int, Callable]]]:
    """:data:`OPS` and the random ones (one code path for every ndim: 2-d unless ``full``)."""
    yield from OPS.items()
    dims = (1, 2, 3) if full else (2,)
    for n in (2, 3) if full else dims:
        samples = jnp.asarray(np.random.default_rng(n).uniform(size=(2, 3, n)), jnp.float32)
        yield f"fractional_max_pool{n}d", (n, lambda x, n=n, s=samples: getattr(jaxpool, f"fractional_max_pool{n}d")(
            x, 2, output_size=(3,) * n, return_indices=True, _random_samples=s))
    for n in dims:
        yield f"stochastic_pool{n}d", (n, lambda x, n=n: getattr(jaxpool, f"stochastic_pool{n}d")(
            x, 2, key=jax.random.key(0)))
        yield f"stochastic_pool{n}d_eval", (n, lambda x, n=n: getattr(jaxpool, f"stochastic_pool{n}d")(
            x, 3, 2, 1, training=False))


#: Every operator, the random ones included (all dims under ``JAXPOOL_FULL=1``).
EVERY_OP = dict(_every_op(os.environ.get("JAXPOOL_FULL") == "1"))


def gradient(fn: Callable) -> Callable:
    """The gradient of a weighted sum of the op's floating outputs (indices carry none)."""
    def loss(x):
        leaves = [a for a in jax.tree.leaves(fn(x)) if jnp.issubdtype(a.dtype, jnp.floating)]
        return sum(jnp.sum(a * jnp.linspace(0.5, 1.5, a.size).reshape(a.shape)) for a in leaves)
    return jax.grad(loss)


def example_input(n: int) -> jax.Array:
    return jnp.asarray(np.random.default_rng(3).standard_normal((2, 3, *SPATIAL[n])), jnp.float32)


def save(folder: str, names: list[str] | None = None) -> int:
    """Write each op's (all of :data:`EVERY_OP` by default) forward and gradient as a serialised
    artefact for :data:`PLATFORMS`, with its input and this machine's results; returns the
    number written."""
    os.makedirs(folder, exist_ok=True)
    count = 0
    for name in names or EVERY_OP:
        n, fn = EVERY_OP[name]
        for kind, f in (("forward", fn), ("gradient", gradient(fn))):
            x = example_input(n)
            exported = jax.export.export(jax.jit(f), platforms=PLATFORMS)(jax.ShapeDtypeStruct(x.shape, x.dtype))
            with open(os.path.join(folder, f"{name}.{kind}.bin"), "wb") as out:
                out.write(exported.serialize())
            leaves = jax.tree.leaves(exported.call(x))
            np.savez(os.path.join(folder, f"{name}.{kind}.npz"), x=np.asarray(x),
                     **{f"out{k}": np.asarray(a) for k, a in enumerate(leaves)})
            count += 1
    with open(os.path.join(folder, MANIFEST), "w") as f:
        json.dump({"artefacts": count, "jax": jax.__version__, "jaxpool": jaxpool.__version__,
                   "platforms": list(PLATFORMS)}, f)
    return count


def check(folder: str) -> list[str]:
    """Run every artefact of ``folder`` on jax's default device and compare with the saved
    results: integers exactly, floats to 1e-6 of the output's scale.  Prints one line per
    artefact; returns the names that differ or fail (the manifest's, when the folder does not
    hold the artefacts :func:`save` wrote, or none)."""
    bad = []
    device = jax.devices()[0]
    names = sorted(f[:-4] for f in os.listdir(folder) if f.endswith(".bin"))
    manifest = os.path.join(folder, MANIFEST)
    saved = {}
    if os.path.exists(manifest):
        with open(manifest) as f:
            saved = json.load(f)
    print(f"{folder}: {saved or 'no ' + MANIFEST}")
    if not names or saved.get("artefacts") != len(names):
        print(f"FAIL  {len(names)} artefacts where {MANIFEST} says {saved.get('artefacts')}")
        bad.append(MANIFEST)
    for name in names:
        try:
            with open(os.path.join(folder, f"{name}.bin"), "rb") as f:
                exported = jax.export.deserialize(bytearray(f.read()))
            saved = np.load(os.path.join(folder, f"{name}.npz"))
            got = [np.asarray(a) for a in jax.tree.leaves(exported.call(jax.device_put(saved["x"], device)))]
            want = [saved[f"out{k}"] for k in range(len(saved.files) - 1)]
            worst = 0.0
            for a, b in zip(got, want, strict=True):
                if a.shape != b.shape or a.dtype != b.dtype:
                    raise AssertionError(f"{a.dtype}{list(a.shape)} where {b.dtype}{list(b.shape)} was saved")
                if a.dtype.kind == "f":
                    scale = max(1.0, float(np.abs(b).max(initial=0)))
                    worst = max(worst, float(np.abs(a - b).max(initial=0)) / scale)
                    if not np.allclose(a, b, rtol=1e-6, atol=1e-6 * scale, equal_nan=True):
                        raise AssertionError(f"floats differ: largest difference {worst:.3g} of the scale")
                elif not np.array_equal(a, b):
                    raise AssertionError(f"{int((a != b).sum())} of {a.size} integers differ")
            print(f"ok    {name:45s} largest difference {worst:.2g} of the scale, on {device.platform}")
        except Exception as e:  # noqa: BLE001  (reported, never hidden)
            bad.append(name)
            print(f"FAIL  {name:45s} {type(e).__name__}: {e}")
    print(f"{len(names) - len(bad)} of {len(names)} artefacts match on {device} (jax {jax.__version__})")
    return bad


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("save", "check"):
        sys.exit("usage: python3 -m jaxpool.testing.exports save|check FOLDER")
    if sys.argv[1] == "save":
        print(f"wrote {save(sys.argv[2])} artefacts for {', '.join(PLATFORMS)} to {sys.argv[2]}")
    else:
        sys.exit(1 if check(sys.argv[2]) else 0)
