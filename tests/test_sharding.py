"""Every operator on inputs sharded over a mesh of 8 host devices equals the unsharded result;
splitting batch or channels compiles to a program without any collective.

The sharded programs run in a subprocess (``tests/sharding_worker.py``): the 8 CPU devices
need ``XLA_FLAGS=--xla_force_host_platform_device_count=8`` before JAX initialises, and this
process keeps the single device the other test modules use.  The worker runs once per test
session and reports, per (operator, split), bit-equality, the error and the collectives found
in ``jax.jit(f).lower(x).compile().as_text()``.
"""

import json
import os
import subprocess
import sys

import pytest

import sharding_worker as worker

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = [(name, split) for name, _, _, split in worker.cases()]


@pytest.fixture(scope="module")
def report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, os.path.join(HERE, "sharding_worker.py")], env=env,
                          capture_output=True, text=True, timeout=900, cwd=os.path.dirname(HERE))
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["by_case"] = {(r["op"], r["split"]): r for r in result["ops"]}
    return result


def test_every_operator_and_split_ran(report):
    assert set(report["by_case"]) == set(CASES)
    ops = {name for name, _ in CASES}
    for family in ("max_pool", "avg_pool", "lp_pool", "max_unpool", "adaptive_avg_pool", "adaptive_max_pool"):
        assert {f"{family}{n}d" for n in (1, 2, 3)} <= ops


@pytest.mark.parametrize("op, split", [c for c in CASES if c[1] in worker.LOCAL])
def test_batch_or_channel_split_is_exact_and_communication_free(report, op, split):
    """Max values, indices and unpooling are bit-exact.  Sums (avg, LP, adaptive avg) may differ
    in the last bit: XLA picks its float summation order per shape, and each device holds a
    smaller shape; they are compared to 1e-6 of the output scale.  No collective moves data.
    One op reduces one boolean over the devices, a branch predicate checked at run time:
    max_unpool (its blockwise fast path applies when every index lies in its own block)."""
    r = report["by_case"][(op, split)]
    if any(family in op for family in ("avg_pool", "lp_pool")):
        assert r["error"] <= 1e-6, f"{op} split over {split}: error {r['error']}"
    else:
        assert r["equal"], f"{op} split over {split}: differs from unsharded by {r['error']}"
    assert r["collectives"] == [], f"{op} split over {split} communicates: {r['collectives']}"
    if "max_unpool" in op:  # (once per mesh axis at most)
        assert r["predicate_all_reduces"] <= 2, r["predicate_all_reduces"]
    else:
        assert r["predicate_all_reduces"] == 0, r["predicate_all_reduces"]


@pytest.mark.parametrize("op", [name for name, split in CASES if split == "spatial"])
def test_spatial_split_stays_correct(report, op):
    """Splitting a spatial axis needs halo exchange; XLA inserts it, results stay correct.

    Indices are exact; float values may differ in the last bit (XLA fuses the halo'd program
    differently: lp_pool's power and root), so they are compared to 1e-6 of the output scale.
    """
    r = report["by_case"][(op, "spatial")]
    assert r["error"] <= 1e-6, f"{op} with a split spatial axis: error {r['error']}"
    assert r["collectives"], f"{op}: a split spatial axis without communication is suspicious"


def test_data_parallel_shard_map_step_matches_one_device(report):
    """README example: pooling inside a shard_map data-parallel step (loss and gradient)."""
    dp = report["data_parallel"]
    assert dp["error"] < 1e-5, dp
    assert dp["collectives"] == ["all-reduce"], dp  # the loss/gradient mean, nothing else


# The portable core (GPU/TPU's route) forced on CPU: batch and channel splits stay exact and
# communication-free.  2-d by default; JAXPOOL_FULL=1 runs every dimension.
PORTABLE_ENV = {"JAXPOOL_ROUTE": "portable", "SHARDING_SPLITS": "batch,channels",
                "SHARDING_DIMS": "1,2,3" if os.environ.get("JAXPOOL_FULL") == "1" else "2"}


@pytest.fixture(scope="module")
def portable_report():
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8", JAX_PLATFORMS="cpu",
               **PORTABLE_ENV)
    done = subprocess.run([sys.executable, os.path.join(HERE, "sharding_worker.py")], env=env,
                          capture_output=True, text=True, timeout=900, cwd=os.path.dirname(HERE))
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_portable_core_batch_or_channel_split_is_exact_and_communication_free(portable_report):
    ops = portable_report["ops"]
    assert {r["op"] for r in ops} >= {"max_pool2d", "avg_pool2d", "adaptive_max_pool2d", "max_unpool2d"}
    for r in ops:
        if any(family in r["op"] for family in ("avg_pool", "lp_pool")):
            assert r["error"] <= 1e-6, r
        else:
            assert r["equal"], r
        assert r["collectives"] == [] and r["predicate_all_reduces"] == 0, r
