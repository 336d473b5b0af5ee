"""One workload measured: its data, every contender's callables, the interleaved timings, the
roofline and the peers' agreement with torch, as one result row."""

from __future__ import annotations

import numpy as np

from .timing import IDLE_GAP_S, first, interleaved, jax_callables, nbytes, torch_callables, torch_output
from .cases import Workload, agreement, keras_status


def run_workload(w: Workload, *, quick: bool, device: str, repeats: int, target: float, seed: int = 0):
    """Measure one workload; returns a result row (dict)."""
    import jax
    import jax.numpy as jnp
    import jaxpool

    shape = w.quick_shape if quick else w.shape
    row = {"workload": w.name, "shape": list(shape), "dtype": "float32"}
    if w.requires and not hasattr(jaxpool, w.requires):
        row["status"] = f"not available (jaxpool.{w.requires} does not exist in this checkout)"
        return row
    rng = np.random.default_rng(seed)
    x_np = rng.standard_normal(shape).astype(np.float32)
    extra_np = w.extra(rng, shape) if w.extra else ()
    jdev = jax.devices("gpu" if device == "gpu" else "cpu")[0]
    x = jax.device_put(jnp.asarray(x_np), jdev)
    extra = tuple(jax.device_put(jnp.asarray(e), jdev) for e in extra_np)

    out = jax.jit(lambda x, *e: w.jax_fn(x, *e))(x, *extra)
    moved = nbytes(x) + nbytes(out)
    row["bytes_moved"] = moved
    # The copy runs in place (its input buffer donated, its output fed back), so it measures
    # streaming bandwidth and not the page faults of a fresh input-sized output buffer, which
    # XLA:CPU and the OS charge to every call whose output is larger than malloc's mmap
    # threshold (32 MiB): a fresh-buffer copy made the roofline exceed 100%.
    copy = jax.jit(lambda x: x + 1, donate_argnums=0)
    copied = [jnp.array(x, copy=True)]

    def copy_in_place():
        copied[0] = copy(copied[0])
        copied[0].block_until_ready()
    fns_fwd = {}
    fns_bwd = {}
    fns_fwd["jaxpool"], fns_bwd["jaxpool"] = jax_callables(w.jax_fn, x, extra, device)
    fns_fwd["torch"], fns_bwd["torch"] = torch_callables(w.torch_fn, x_np, extra_np, device)
    fns_fwd["copy"] = copy_in_place
    peers = [p for p in w.peers if p.library != "keras" or keras_status() is None]
    if peers:
        reference = torch_output(w.torch_fn, x_np, extra_np)
    if any(p.channels_last for p in peers):
        x_last = jax.device_put(jnp.moveaxis(x, 1, -1), jdev)
    for p in peers:
        peer_x = x_last if p.channels_last else x
        fns_fwd[p.library], fns_bwd[p.library] = jax_callables(p.fn, peer_x, (), device)
        out = np.asarray(first(fns_fwd[p.library]()))  # the timed program's own output
        row.update({f"{p.library}_call": p.call,
                    **agreement(p.library, np.moveaxis(out, -1, 1) if p.channels_last else out, reference)})
    gap = 0.0 if quick else IDLE_GAP_S  # a smoke run times nothing worth the wait
    fwd = interleaved(fns_fwd, repeats, target, gap)
    bwd = interleaved(fns_bwd, repeats, target, gap)
    bandwidth = 2 * nbytes(x) / fwd["copy"]
    row.update(
        status="ok",
        jaxpool_fwd_ms=fwd["jaxpool"] * 1e3,
        torch_fwd_ms=fwd["torch"] * 1e3,
        ratio_fwd=fwd["jaxpool"] / fwd["torch"],
        jaxpool_fwdbwd_ms=bwd["jaxpool"] * 1e3,
        torch_fwdbwd_ms=bwd["torch"] * 1e3,
        ratio_fwdbwd=bwd["jaxpool"] / bwd["torch"],
        copy_ms=fwd["copy"] * 1e3,
        copy_GBps=bandwidth / 1e9,
        roofline_fwd=moved / bandwidth / fwd["jaxpool"],
        torch_roofline_fwd=moved / bandwidth / fwd["torch"],
    )
    for p in peers:
        row.update({f"{p.library}_fwd_ms": fwd[p.library] * 1e3, f"{p.library}_fwdbwd_ms": bwd[p.library] * 1e3})
    return row
