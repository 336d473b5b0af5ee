"""How a call is timed: calibrated samples, interleaved round-robin, and the callables that run
each side's forward and forward+backward in every form of :data:`FORMS`."""

from __future__ import annotations

import functools
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


# The passes timed, in the table's order: a row's keys are ``{contender}_{form}_ms`` and
# ``ratio_{form}``.  The gradient forms are what users write: a constant cotangent, so XLA
# sees (and may fold or fuse differently) the whole gradient, and the forward output is dead.
FORMS = {
    "fwd": "forward (torch under no_grad)",
    "fwdbwd": "forward+backward with a run-time ones cotangent: jax.vjp, torch out.backward(ones)",
    "gradsum": "jax.jit(jax.grad(lambda x: pool(x).sum())), torch pool(x).sum().backward()",
    "gradmean": "jax.jit(jax.grad(lambda x: pool(x).mean())), torch pool(x).mean().backward()",
}
GRAD_FORMS = {"gradsum": "sum", "gradmean": "mean"}  # form -> the reduction differentiated


def loss(fn, reduce: str = "sum"):
    """``(x, *extra) -> fn(x, *extra).sum()`` (or ``.mean()``), the scalar users differentiate;
    of an op returning (values, indices), the values'.  The extra inputs are closed over by
    ``jax.grad``, which differentiates the input only."""
    import jax.numpy as jnp

    reduction = getattr(jnp, reduce)
    return lambda x, *e: reduction(first(fn(x, *e)))


def jax_callables(fn, x, extra, forms=tuple(FORMS)) -> dict[str, Callable]:
    """One call per form in ``forms``, each running a jitted program to ``block_until_ready``."""
    import jax
    import jax.numpy as jnp

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
    programs = {"fwd": (jax.jit(lambda x, *e: fn(x, *e)), (x, *extra)),
                "fwdbwd": (jax.jit(value_and_grad), (x, cotangent, *extra))}
    for form, reduce in GRAD_FORMS.items():
        programs[form] = (jax.jit(jax.grad(loss(fn, reduce))), (x, *extra))
    return {form: functools.partial(_run_jax, *programs[form]) for form in forms}


def _run_jax(program, args):
    import jax

    return jax.block_until_ready(program(*args))


def torch_callables(fn, x_np, extra_np, device) -> dict[str, Callable]:
    """One call per form of :data:`FORMS`; the backward ones on the same leaf, its ``.grad``
    cleared first, so every call computes a fresh gradient."""
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

    def grad_of(reduce: str):
        def call():
            xg.grad = None
            getattr(first(fn(xg, *extra)), reduce)().backward()
            sync()
        return call

    return {"fwd": fwd, "fwdbwd": bwd, **{form: grad_of(r) for form, r in GRAD_FORMS.items()}}


def torch_output(fn, x_np, extra_np) -> np.ndarray:
    """torch's forward output on the CPU: what a peer must reproduce."""
    import torch

    with torch.no_grad():
        out = first(fn(torch.from_numpy(x_np), *(torch.from_numpy(e) for e in extra_np)))
    return out.numpy()
