"""One workload measured: its data, every contender's callables, the interleaved timings, the
roofline, the peers' agreement with torch and the compile times, as one result row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .cases import Peer, Workload, agreement, keras_status
from .compiling import compile_seconds
from .timing import (FORMS, IDLE_GAP_S, first, interleaved, jax_callables, loss, nbytes, torch_callables,
                     torch_output)


def run_workload(w: Workload, *, quick: bool, device: str, repeats: int, target: float,
                 compile_repeats: int = 0, seed: int = 0):
    """Measure one workload; returns a result row (dict).  ``compile_repeats`` tries per compile
    time (:func:`compile_times`; 0: none)."""
    import jax
    import jax.numpy as jnp
    import jaxpool

    shape = w.quick_shape if quick else w.shape
    row: dict[str, Any] = {"workload": w.name, "shape": list(shape), "dtype": "float32"}
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
    fns: dict[str, dict[str, Callable]] = {form: {} for form in FORMS}  # form -> contender -> call
    for contender, calls in (("jaxpool", jax_callables(w.jax_fn, x, extra)),
                             ("torch", torch_callables(w.torch_fn, x_np, extra_np, device))):
        for form, call in calls.items():
            fns[form][contender] = call
    fns["fwd"]["copy"] = copy_in_place
    peers = [p for p in w.peers if p.library != "keras" or keras_status() is None]
    if peers or compile_repeats:  # what the peers and the reduce_window reference must compute
        reference = torch_output(w.torch_fn, x_np, extra_np)
    if any(p.channels_last for p in peers):
        x_last = jax.device_put(jnp.moveaxis(x, 1, -1), jdev)
    for p in peers:  # timed forward and with the run-time cotangent, as before the gradient forms
        peer_x = x_last if p.channels_last else x
        calls = jax_callables(p.fn, peer_x, (), forms=("fwd", "fwdbwd"))
        fns["fwd"][p.library], fns["fwdbwd"][p.library] = calls["fwd"], calls["fwdbwd"]
        out = np.asarray(first(calls["fwd"]()))  # the timed program's own output
        row.update({f"{p.library}_call": p.call,
                    **agreement(p.library, np.moveaxis(out, -1, 1) if p.channels_last else out, reference)})
    gap = 0.0 if quick else IDLE_GAP_S  # a smoke run times nothing worth the wait
    seconds = {form: interleaved(calls, repeats, target, gap) for form, calls in fns.items()}
    row["status"] = "ok"
    for form, t in seconds.items():
        row.update({f"jaxpool_{form}_ms": t["jaxpool"] * 1e3, f"torch_{form}_ms": t["torch"] * 1e3,
                    f"ratio_{form}": t["jaxpool"] / t["torch"]})
    fwd = seconds["fwd"]
    bandwidth = 2 * nbytes(x) / fwd["copy"]
    row.update(
        copy_ms=fwd["copy"] * 1e3,
        copy_GBps=bandwidth / 1e9,
        roofline_fwd=moved / bandwidth / fwd["jaxpool"],
        torch_roofline_fwd=moved / bandwidth / fwd["torch"],
    )
    for p in peers:
        row.update({f"{p.library}_{form}_ms": seconds[form][p.library] * 1e3 for form in ("fwd", "fwdbwd")})
    if compile_repeats:  # last: it clears jax's caches, so every program above compiled already
        row.update(compile_times(w, x, extra, reference, compile_repeats))
    return row


def compile_times(w: Workload, x, extra, reference: np.ndarray, repeats: int) -> dict:
    """Compile seconds and StableHLO op counts of ``jax.jit(jax.grad(sum of the op))``, for jaxpool
    and for ``w.reduce_window`` where it expresses the op and jax can differentiate it; the
    latter's forward output is first compared with torch's (``reduce_window_matches_torch``), so
    the reference is the same op."""
    import jax

    seconds, ops = compile_seconds(lambda: jax.jit(jax.grad(loss(w.jax_fn))), (x, *extra), repeats)
    row: dict[str, Any] = {"jaxpool_compile_s": seconds, "jaxpool_stablehlo_ops": ops}
    rw = w.reduce_window
    if not isinstance(rw, Peer):
        row["reduce_window_call"] = f"n/a: {rw or 'not stated'}"
        return row
    row.update(agreement("reduce_window", np.asarray(jax.jit(rw.fn)(x)), reference))
    try:
        seconds, ops = compile_seconds(lambda: jax.jit(jax.grad(loss(rw.fn))), (x,), repeats)
    except NotImplementedError as e:  # jax has no VJP of a dilated max reduce_window
        row["reduce_window_call"] = f"n/a: {rw.call}: jax cannot differentiate it ({str(e).split(',')[0]})"
        return row
    row.update(reduce_window_call=rw.call, reduce_window_compile_s=seconds, reduce_window_stablehlo_ops=ops,
               ratio_compile=row["jaxpool_compile_s"] / seconds)
    if not row["reduce_window_matches_torch"]:
        row["reduce_window_call"] += f" (its output is not torch's: {row['reduce_window_differs']})"
    return row
