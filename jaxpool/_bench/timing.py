"""How a call is timed: calibrated samples, interleaved round-robin, and the callables that run
each side's forward and forward+backward."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np


def calibrate(fn, target: float) -> int:
    """Calls per sample so that one sample takes about ``target`` seconds."""
    fn()
    t0 = time.perf_counter()
    fn()
    dt = max(time.perf_counter() - t0, 1e-7)
    return max(1, min(1000, int(target / dt)))


# Idle time before each sample, not timed.  torch's OpenMP workers (libgomp) spin after every
# parallel region for up to ~20 ms on this 2-core VM; a sample that starts inside that spin runs
# on one core.  jaxpool's forward+backward of adaptive_max 33->5 measured 22.4 ms right after a
# torch call, 18.7 ms after 50 ms idle, 19.3 ms right after torch under OMP_WAIT_POLICY=PASSIVE.
# XLA's worker threads spin too, briefly.  The gap keeps each contender's idle threads out of
# the other's sample; within a sample the calls follow one another as in a training loop.
IDLE_GAP_S = 0.05


def interleaved(fns: dict[str, Callable], repeats: int, target: float,
                 gap: float = IDLE_GAP_S) -> dict[str, float]:
    """Median seconds per call of each function, sampled round-robin so noise hits all alike,
    each sample after ``gap`` idle seconds (see ``IDLE_GAP_S``)."""
    loops = {k: calibrate(f, target) for k, f in fns.items()}
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            n = loops[k]
            time.sleep(gap)
            t0 = time.perf_counter()
            for _ in range(n):
                f()
            samples[k].append((time.perf_counter() - t0) / n)
    return {k: statistics.median(v) for k, v in samples.items()}


def first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def nbytes(tree) -> int:
    import jax

    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(tree))


def jax_callables(fn, x, extra, device):
    import jax
    import jax.numpy as jnp

    fwd = jax.jit(lambda x, *e: fn(x, *e))

    def value_and_grad(x, cotangent, *e):
        def diff(x):
            out = fn(x, *e)
            return first(out), out

        out, vjp, full = jax.vjp(diff, x, has_aux=True)
        (grad,) = vjp(cotangent)
        return full, grad

    # The ones cotangent is an argument, not a constant inside the program: XLA would fold the
    # whole gradient of a linear op (an average) into a literal and time a copy.
    out = first(jax.eval_shape(fn, x, *extra))
    cotangent = jax.device_put(jnp.ones(out.shape, out.dtype), x.sharding)
    bwd = jax.jit(value_and_grad)
    return (lambda: jax.block_until_ready(fwd(x, *extra)),
            lambda: jax.block_until_ready(bwd(x, cotangent, *extra)))


def torch_callables(fn, x_np, extra_np, device):
    import torch

    dev = "cuda" if device == "gpu" else "cpu"
    x = torch.from_numpy(x_np).to(dev)
    extra = tuple(torch.from_numpy(e).to(dev) for e in extra_np)
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    xg = x.clone().requires_grad_(True)

    def fwd():
        with torch.no_grad():
            fn(x, *extra)
        sync()

    def bwd():
        xg.grad = None
        out = first(fn(xg, *extra))
        out.backward(torch.ones_like(out))
        sync()

    return fwd, bwd


def torch_output(fn, x_np, extra_np) -> np.ndarray:
    """torch's forward output on the CPU: what a peer must reproduce."""
    import torch

    with torch.no_grad():
        out = first(fn(torch.from_numpy(x_np), *(torch.from_numpy(e) for e in extra_np)))
    return out.numpy()
