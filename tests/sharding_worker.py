"""Run every operator on inputs sharded over 8 host CPU devices; print one JSON report.

Spawned by ``tests/test_sharding.py`` in a fresh interpreter, because
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` must be set before JAX initialises and
the other test modules run on the default single device.  For every (operator, split) it
reports whether the sharded jitted result equals the unsharded one bit for bit, and which
collective operations the compiled HLO contains.

``python tests/sharding_worker.py`` prints the report; ``--hlo OP SPLIT`` prints one program.
"""

from __future__ import annotations

import json
import os
import re
import sys

if __name__ == "__main__":  # before jax is imported anywhere
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

import jaxpool  # noqa: E402

COLLECTIVES = ("all-gather", "all-to-all", "collective-permute", "all-reduce", "reduce-scatter")


def _unpool(n, k, s, p):
    pool = getattr(jaxpool, f"max_pool{n}d")
    unpool = getattr(jaxpool, f"max_unpool{n}d")
    return lambda x: unpool(*pool(x, k, s, p, return_indices=True), k, s, p, output_size=x.shape[2:])


def _ops(n):
    """One representative call of every operator for ``n`` spatial dims (overlapping windows,
    padding, dilation where the op has it)."""
    j = jaxpool
    return {
        f"max_pool{n}d": lambda x: getattr(j, f"max_pool{n}d")(x, 3, 2, 1, 2 if n == 1 else 1, True, True),
        f"avg_pool{n}d": lambda x: getattr(j, f"avg_pool{n}d")(x, 3, 2, 1, True, False),
        f"lp_pool{n}d": lambda x: getattr(j, f"lp_pool{n}d")(x, 2, 3, 2),
        f"max_unpool{n}d": _unpool(n, 2, 2, 0),
        f"adaptive_avg_pool{n}d": lambda x: getattr(j, f"adaptive_avg_pool{n}d")(x, 5),
        f"adaptive_max_pool{n}d": lambda x: getattr(j, f"adaptive_max_pool{n}d")(x, 5, True),
        # a window longer than 16 taps: the engine's materialised-window path
        f"long_adaptive_max_pool{n}d": lambda x: getattr(j, f"adaptive_max_pool{n}d")(x, 1, True),
    }


SPATIAL = {1: (40,), 2: (24, 20), 3: (16, 12, 10)}
# split name -> (mesh shape, axis names, partition spec of an (N, C, *spatial) input)
SPLITS = {
    "batch": ((8,), ("b",), lambda n: P("b")),
    "channels": ((8,), ("c",), lambda n: P(None, "c")),
    "batch+channels": ((2, 4), ("b", "c"), lambda n: P("b", "c")),
    "spatial": ((8,), ("s",), lambda n: P(None, None, "s")),  # first spatial axis (depth in 3-d)
}
# the splits with no data dependence across devices: no collective is allowed
LOCAL = ("batch", "channels", "batch+channels")


# The default test run's share: every split in 2-d; in 1-d and 3-d the combined batch+channels
# split (both local axes at once) and the spatial split.  JAXPOOL_FULL=1 runs every split.
QUICK_SPLITS_OUTSIDE_2D = ("batch+channels", "spatial")


def cases():
    """Every (operator, split); ``SHARDING_DIMS`` / ``SHARDING_SPLITS`` (comma-separated) narrow
    it, and ``JAXPOOL_FULL`` other than ``1`` keeps :data:`QUICK_SPLITS_OUTSIDE_2D` in 1-d and 3-d."""
    dims = [int(d) for d in os.environ.get("SHARDING_DIMS", "1,2,3").split(",")]
    splits = os.environ.get("SHARDING_SPLITS", ",".join(SPLITS)).split(",")
    quick = os.environ.get("JAXPOOL_FULL") != "1"
    for n in dims:
        for name, fn in _ops(n).items():
            for split in splits:
                if not quick or n == 2 or split in QUICK_SPLITS_OUTSIDE_2D:
                    yield name, n, fn, split


def _input(n):
    rng = np.random.default_rng(n)
    return rng.standard_normal((8, 8) + SPATIAL[n]).astype(np.float32)


def _predicate_all_reduce(line: str) -> bool:
    """An all-reduce of one boolean: a global branch predicate, no data moves."""
    return re.search(r"= pred\[\] all-reduce(-start)?\(", line) is not None


def collectives(hlo: str) -> list[str]:
    """Collectives in the program, except all-reduces of a single boolean (see below)."""
    lines = [line for line in hlo.splitlines() if not _predicate_all_reduce(line)]
    text = "\n".join(lines)
    return sorted({c for c in COLLECTIVES if re.search(rf"\b{c}(-start)?\(", text) or f" {c}(" in text or f"{c}-start" in text})


def predicate_all_reduces(hlo: str) -> int:
    """max_unpool's blockwise fast path is taken when *all* indices lie in their own blocks:
    one boolean reduced over every device, the only communication it adds."""
    return sum(_predicate_all_reduce(line) for line in hlo.splitlines())


def run_one(fn, n, split):
    shape, names, spec = SPLITS[split]
    mesh = jax.sharding.Mesh(np.array(jax.devices()).reshape(shape), names)
    x = _input(n)
    xs = jax.device_put(x, NamedSharding(mesh, spec(n)))
    jitted = jax.jit(fn)
    hlo = jitted.lower(xs).compile().as_text()
    got = jitted(xs)
    want = jax.jit(fn)(jnp.asarray(x))  # single device
    pairs = [(np.asarray(a), np.asarray(b)) for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want))]
    equal = all(a.shape == b.shape and np.array_equal(a, b, equal_nan=True) for a, b in pairs)
    # largest error relative to the output's scale (float outputs; indices must be exact)
    error = max(float(np.max(np.abs(a.astype(np.float64) - b) / max(1.0, np.abs(b).max())))
                if a.dtype.kind == "f" else float(not np.array_equal(a, b)) for a, b in pairs)
    return {"equal": equal, "error": error, "collectives": collectives(hlo),
            "predicate_all_reduces": predicate_all_reduces(hlo), "hlo": hlo}


def data_parallel_step():
    """The README's example: a data-parallel training step with pooling inside ``shard_map``.

    Each device pools its slice of the batch; the loss is averaged over devices with ``pmean``
    (the gradient of the replicated parameters is then summed over devices by ``shard_map``'s
    transpose rules, so it is the global mean gradient).  Returns the largest difference from
    the same step computed on one device, and the collectives.
    """
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("data",))
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 3, 32, 32)), jnp.float32)
    y = jnp.asarray(rng.standard_normal((16, 3, 4, 4)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 1, 1)), jnp.float32)

    def loss(w, x, y):
        h = jaxpool.max_pool2d(x * w, 3, 2, 1)
        return jnp.mean((jaxpool.adaptive_avg_pool2d(h, 4) - y) ** 2)

    def step(w, x, y):
        return jax.value_and_grad(lambda w: jax.lax.pmean(loss(w, x, y), "data"))(w)

    sharded = jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P("data"), P("data")),
                                out_specs=(P(), P())))
    value, grad = sharded(w, x, y)
    ref_value, ref_grad = jax.jit(jax.value_and_grad(loss))(w, x, y)
    hlo = sharded.lower(w, x, y).compile().as_text()
    return {"error": float(max(abs(value - ref_value), jnp.max(jnp.abs(grad - ref_grad)))),
            "collectives": collectives(hlo)}


def main():
    assert jax.device_count() == 8, jax.devices()
    if len(sys.argv) > 1 and sys.argv[1] == "--hlo":
        op, split = sys.argv[2], sys.argv[3]
        for name, n, fn, s in cases():
            if name == op and s == split:
                print(run_one(fn, n, split)["hlo"])
        return
    report = []
    for name, n, fn, split in cases():
        r = run_one(fn, n, split)
        report.append({key: r[key] for key in ("equal", "error", "collectives", "predicate_all_reduces")}
                      | {"op": name, "split": split})
    print(json.dumps({"ops": report, "data_parallel": data_parallel_step()}))


if __name__ == "__main__":
    main()
