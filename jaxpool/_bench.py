"""jaxpool against PyTorch, side by side, in one process on the same data.

For every workload (``--list``) this measures, interleaving the contenders so that machine noise
hits them alike (each sample after 50 ms idle, so one side's spinning worker threads do not
run into the other's sample; see ``IDLE_GAP_S``):

* the median time of jaxpool under ``jax.jit`` (warmed up, ``block_until_ready``) and of the
  same ``torch.nn.functional`` call in eager mode, forward (torch under ``no_grad``) and
  forward+backward (``jax.vjp`` / ``.backward`` with a ones cotangent, passed to the jitted
  program as an argument; both return the forward output and the input gradient, so neither
  side can drop or constant-fold work);
* the ratio jaxpool / torch (below 1 means jaxpool is faster);
* the achieved fraction of the memory roofline of the forward pass: the bytes it must move
  (input read once, every output written once) divided by the bandwidth of a jitted elementwise
  copy of the same input (``2 * input bytes / copy time``), over the measured time;
* the JAX peers where one exists (:class:`Peer`): ``flax.linen.max_pool``/``avg_pool`` (on the
  channels-last copy of the input, their layout), including adaptive cases whose windows are
  exactly a fixed pool (``jaxpool.windows.equivalent_fixed``), and Keras 3's
  ``keras.ops.adaptive_average_pool``/``adaptive_max_pool`` on the JAX backend (the ``bench``
  extra installs Keras; without it those columns say so).  Every peer's forward output is
  compared with torch's first: a peer that computes other numbers is timed all the same and
  flagged in the table, since a user porting a model would get those numbers.

Threads: XLA's CPU client uses one intra-op thread per core it may run on; torch is set to the
same count with ``torch.set_num_threads`` (``--threads`` overrides torch's count only).

Run ``jaxpool bench`` (all workloads, CPU), or ``python3 benchmarks/bench.py`` from a checkout;
``--quick`` is a seconds-long smoke run on small shapes; ``--only NAME...`` picks workloads
(substring match); ``--json``/``--csv`` write the table; ``--plot`` draws the ratios (needs
matplotlib); ``--device gpu`` runs jax on the GPU against torch CUDA.  :func:`main` is the entry
point of both.  The module ships in the package, so that ``jaxpool bench`` runs from an
installed wheel; it imports torch and the peers only when it runs, never at ``import jaxpool``.

Allocator: every buffer either side allocates per call is fresh memory, and on a VM faulting it
in costs about 0.3 ms per MiB, so forward+backward times of large gradients move by 2x between
runs with glibc's adaptive thresholds.  ``--warm-allocator`` reruns the process with glibc
keeping freed memory (``WARM_ALLOCATOR``) for both sides: the table then compares computation.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import functools
import importlib.util
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass(frozen=True)
class Peer:
    """Another JAX library's version of a workload's op, timed beside jaxpool.

    ``library`` names the table's column group (``PEER_LIBRARIES``), ``call`` what is called;
    ``fn`` takes the input in its own layout: channels-last (``(N, *spatial, C)``) when
    ``channels_last``, else the workload's NCHW input.
    """

    library: str
    call: str
    fn: Callable
    channels_last: bool


PEER_LIBRARIES = ("flax", "keras")


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmark case.

    ``jax_fn``/``torch_fn`` take the NCHW input and return the output, or a tuple whose first
    element is the differentiable output.  ``peers`` are other JAX libraries' versions of the
    op (:class:`Peer`).  ``extra`` makes extra constant arguments (shared random
    samples) from a numpy generator; they are passed after the input to both sides.
    """

    name: str
    shape: tuple[int, ...]
    quick_shape: tuple[int, ...]
    jax_fn: Callable
    torch_fn: Callable
    peers: tuple[Peer, ...] = ()
    extra: Callable | None = None  # (rng, shape) -> tuple of numpy arrays passed to both sides
    requires: str | None = None  # jaxpool attribute that must exist


def _flax_pool(call: str, kind: str, window, strides, padding="VALID", **kw) -> Peer:
    def fn(x):
        from flax import linen as nn

        pool = nn.max_pool if kind == "max" else nn.avg_pool
        return pool(x, window, strides=strides, padding=padding, **kw)
    return Peer("flax", call, fn, channels_last=True)


@functools.cache
def keras_status() -> str | None:
    """None when Keras 3 runs on the JAX backend here, else why its peers are not timed.

    ``KERAS_BACKEND`` is read once, at Keras' import: this process asks for JAX unless the
    caller chose a backend."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    try:
        import keras
    except ImportError:
        return "not installed (pip install -e '.[bench]')"
    if keras.backend.backend() != "jax":
        return f"runs on the {keras.backend.backend()} backend, not jax (set KERAS_BACKEND=jax)"
    if not hasattr(keras.ops, "adaptive_average_pool"):
        return f"keras {keras.__version__} has no keras.ops.adaptive_average_pool"
    return None


def _keras_adaptive(kind: str, output_size) -> Peer:
    name = "adaptive_average_pool" if kind == "avg" else "adaptive_max_pool"

    def fn(x):
        import keras

        return getattr(keras.ops, name)(x, output_size, data_format="channels_first")
    return Peer("keras", f"keras.ops.{name}", fn, channels_last=False)


def workloads() -> list[Workload]:
    import jaxpool
    import torch.nn.functional as F

    def frac_jax(x, samples):
        return jaxpool.fractional_max_pool2d(x, 3, output_ratio=0.5, _random_samples=samples)

    def frac_torch(x, samples):
        return F.fractional_max_pool2d(x, 3, output_ratio=(0.5, 0.5), _random_samples=samples)  # torch takes len()

    def frac_samples(rng, shape):
        return (rng.random((shape[0], shape[1], 2)).astype(np.float32),)

    return [
        Workload("max_pool2d_k3s2p1_resnet", (16, 64, 112, 112), (2, 8, 32, 32),
                 lambda x: jaxpool.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1),
                 (_flax_pool("flax.linen.max_pool", "max", (3, 3), (2, 2), ((1, 1), (1, 1))),)),
        Workload("max_pool2d_k2s2_indices_unpool_segnet", (16, 64, 64, 64), (2, 8, 16, 16),
                 lambda x: jaxpool.max_unpool2d(*jaxpool.max_pool2d(x, 2, 2, return_indices=True), 2, 2),
                 lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, 2, return_indices=True), 2, 2)),
        Workload("max_pool2d_k3s2d2_ceil", (16, 64, 57, 57), (2, 8, 17, 17),
                 lambda x: jaxpool.max_pool2d(x, 3, 2, 0, 2, True),
                 lambda x: F.max_pool2d(x, 3, 2, 0, 2, True)),
        Workload("avg_pool2d_k3s1p1_nopad", (16, 192, 28, 28), (2, 8, 14, 14),
                 lambda x: jaxpool.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                 lambda x: F.avg_pool2d(x, 3, 1, 1, count_include_pad=False),
                 (_flax_pool("flax.linen.avg_pool", "avg", (3, 3), (1, 1), ((1, 1), (1, 1)),
                             count_include_pad=False),)),
        Workload("lp_pool2d_p2_k3s2", (16, 64, 56, 56), (2, 8, 16, 16),
                 lambda x: jaxpool.lp_pool2d(x, 2, 3, 2), lambda x: F.lp_pool2d(x, 2, 3, 2)),
        Workload("adaptive_avg_pool2d_14to7", (32, 512, 14, 14), (2, 8, 14, 14),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 7), lambda x: F.adaptive_avg_pool2d(x, 7),
                 (_flax_pool("flax.linen.avg_pool (k2 s2, same windows)", "avg", (2, 2), (2, 2)),
                  _keras_adaptive("avg", 7))),
        Workload("adaptive_avg_pool2d_33to7", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 7), lambda x: F.adaptive_avg_pool2d(x, 7),
                 (_keras_adaptive("avg", 7),)),
        Workload("adaptive_avg_pool2d_global", (64, 2048, 7, 7), (2, 16, 7, 7),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, 1), lambda x: F.adaptive_avg_pool2d(x, 1),
                 (_flax_pool("flax.linen.avg_pool (k7, same window)", "avg", (7, 7), (7, 7)),
                  _keras_adaptive("avg", 1))),
        Workload("adaptive_avg_pool2d_10x9to80x60", (8, 64, 10, 9), (2, 8, 10, 9),
                 lambda x: jaxpool.adaptive_avg_pool2d(x, (80, 60)),
                 lambda x: F.adaptive_avg_pool2d(x, (80, 60)), (_keras_adaptive("avg", (80, 60)),)),
        Workload("adaptive_max_pool2d_33to5", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_max_pool2d(x, 5), lambda x: F.adaptive_max_pool2d(x, 5),
                 (_keras_adaptive("max", 5),)),
        Workload("adaptive_max_pool2d_33to5_indices", (32, 256, 33, 33), (2, 8, 33, 33),
                 lambda x: jaxpool.adaptive_max_pool2d(x, 5, True),
                 lambda x: F.adaptive_max_pool2d(x, 5, True)),
        Workload("adaptive_max_pool1d_1000to100", (64, 256, 1000), (2, 8, 1000),
                 lambda x: jaxpool.adaptive_max_pool1d(x, 100), lambda x: F.adaptive_max_pool1d(x, 100),
                 (_flax_pool("flax.linen.max_pool (k10 s10, same windows)", "max", (10,), (10,)),
                  _keras_adaptive("max", 100))),
        Workload("max_pool3d_k2s2", (4, 32, 32, 64, 64), (1, 4, 8, 16, 16),
                 lambda x: jaxpool.max_pool3d(x, 2, 2), lambda x: F.max_pool3d(x, 2, 2),
                 (_flax_pool("flax.linen.max_pool", "max", (2, 2, 2), (2, 2, 2)),)),
        Workload("adaptive_avg_pool3d_17to4", (4, 64, 17, 17, 17), (1, 4, 17, 17, 17),
                 lambda x: jaxpool.adaptive_avg_pool3d(x, 4), lambda x: F.adaptive_avg_pool3d(x, 4),
                 (_keras_adaptive("avg", 4),)),
        Workload("fractional_max_pool2d_k3_r0.5", (8, 64, 64, 64), (2, 4, 16, 16),
                 frac_jax, frac_torch, extra=frac_samples, requires="fractional_max_pool2d"),
    ]


# ------------------------------------------------------------------------------------ timing


def _calibrate(fn, target: float) -> int:
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


def _interleaved(fns: dict[str, Callable], repeats: int, target: float,
                 gap: float = IDLE_GAP_S) -> dict[str, float]:
    """Median seconds per call of each function, sampled round-robin so noise hits all alike,
    each sample after ``gap`` idle seconds (see ``IDLE_GAP_S``)."""
    loops = {k: _calibrate(f, target) for k, f in fns.items()}
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


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _nbytes(tree) -> int:
    import jax

    return sum(int(np.prod(a.shape)) * a.dtype.itemsize for a in jax.tree.leaves(tree))


def _jax_callables(fn, x, extra, device):
    import jax
    import jax.numpy as jnp

    fwd = jax.jit(lambda x, *e: fn(x, *e))

    def value_and_grad(x, cotangent, *e):
        def diff(x):
            out = fn(x, *e)
            return _first(out), out

        out, vjp, full = jax.vjp(diff, x, has_aux=True)
        (grad,) = vjp(cotangent)
        return full, grad

    # The ones cotangent is an argument, not a constant inside the program: XLA would fold the
    # whole gradient of a linear op (an average) into a literal and time a copy.
    out = _first(jax.eval_shape(fn, x, *extra))
    cotangent = jax.device_put(jnp.ones(out.shape, out.dtype), x.sharding)
    bwd = jax.jit(value_and_grad)
    return (lambda: jax.block_until_ready(fwd(x, *extra)),
            lambda: jax.block_until_ready(bwd(x, cotangent, *extra)))


def _torch_callables(fn, x_np, extra_np, device):
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
        out = _first(fn(xg, *extra))
        out.backward(torch.ones_like(out))
        sync()

    return fwd, bwd


def _torch_output(fn, x_np, extra_np) -> np.ndarray:
    """torch's forward output on the CPU: what a peer must reproduce."""
    import torch

    with torch.no_grad():
        out = _first(fn(torch.from_numpy(x_np), *(torch.from_numpy(e) for e in extra_np)))
    return out.numpy()


# A peer agrees with torch when every output is within float32 summation noise of torch's.
PEER_RTOL, PEER_ATOL = 1e-4, 1e-5


def _agreement(library: str, out: np.ndarray, reference: np.ndarray) -> dict:
    """Whether a peer's forward output is torch's: ``{library}_matches_torch`` and, where it is
    not, how many outputs differ, how many of them are NaN, and the table's footnote."""
    if out.shape != reference.shape:
        return {f"{library}_matches_torch": False, f"{library}_differs": f"shape {out.shape}, torch {reference.shape}"}
    close = np.isclose(out, reference, rtol=PEER_RTOL, atol=PEER_ATOL, equal_nan=True)
    wrong = int(np.count_nonzero(~close))
    error = np.abs(out.astype(np.float64) - reference)
    finite = error[np.isfinite(error)]
    result = {f"{library}_matches_torch": wrong == 0}
    if wrong:
        nan = int(np.count_nonzero(np.isnan(out) & ~np.isnan(reference)))
        result.update({f"{library}_wrong_outputs": wrong, f"{library}_nan_outputs": nan,
                       f"{library}_differs": f"{wrong} of {out.size} outputs, {nan} of them NaN, largest "
                                             f"finite error {finite.max() if finite.size else float('nan'):.3g}"})
    return result


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
    moved = _nbytes(x) + _nbytes(out)
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
    fns_fwd["jaxpool"], fns_bwd["jaxpool"] = _jax_callables(w.jax_fn, x, extra, device)
    fns_fwd["torch"], fns_bwd["torch"] = _torch_callables(w.torch_fn, x_np, extra_np, device)
    fns_fwd["copy"] = copy_in_place
    peers = [p for p in w.peers if p.library != "keras" or keras_status() is None]
    if peers:
        reference = _torch_output(w.torch_fn, x_np, extra_np)
    if any(p.channels_last for p in peers):
        x_last = jax.device_put(jnp.moveaxis(x, 1, -1), jdev)
    for p in peers:
        peer_x = x_last if p.channels_last else x
        fns_fwd[p.library], fns_bwd[p.library] = _jax_callables(p.fn, peer_x, (), device)
        out = np.asarray(_first(fns_fwd[p.library]()))  # the timed program's own output
        row.update({f"{p.library}_call": p.call,
                    **_agreement(p.library, np.moveaxis(out, -1, 1) if p.channels_last else out, reference)})
    gap = 0.0 if quick else IDLE_GAP_S  # a smoke run times nothing worth the wait
    fwd = _interleaved(fns_fwd, repeats, target, gap)
    bwd = _interleaved(fns_bwd, repeats, target, gap)
    bandwidth = 2 * _nbytes(x) / fwd["copy"]
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


# ------------------------------------------------------------------------------------ output

COLUMNS = [
    ("workload", "workload", "{}"),
    ("jaxpool_fwd_ms", "jax fwd ms", "{:.3f}"),
    ("torch_fwd_ms", "torch fwd ms", "{:.3f}"),
    ("ratio_fwd", "ratio fwd", "{:.2f}"),
    ("jaxpool_fwdbwd_ms", "jax f+b ms", "{:.3f}"),
    ("torch_fwdbwd_ms", "torch f+b ms", "{:.3f}"),
    ("ratio_fwdbwd", "ratio f+b", "{:.2f}"),
    ("roofline_fwd", "roofline", "{:.0%}"),
    *((f"{lib}_{when}_ms", f"{lib} {title} ms", "{:.3f}") for lib in PEER_LIBRARIES
      for when, title in (("fwd", "fwd"), ("fwdbwd", "f+b"))),
]
# Marks a peer's time whose forward output is not torch's (see _agreement and peer_notes).
DIFFERS_MARK = "!"


def geomean(values) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def summary(rows) -> dict:
    ok = [r for r in rows if r.get("status") == "ok"]
    ratios = [r["ratio_fwd"] for r in ok] + [r["ratio_fwdbwd"] for r in ok]
    worst = max(((r[k], r["workload"], k) for r in ok for k in ("ratio_fwd", "ratio_fwdbwd")), default=None)
    return {
        "geomean_ratio": geomean(ratios),
        "geomean_ratio_fwd": geomean([r["ratio_fwd"] for r in ok]),
        "geomean_ratio_fwdbwd": geomean([r["ratio_fwdbwd"] for r in ok]),
        "worst": None if worst is None else {"ratio": worst[0], "workload": worst[1], "pass": worst[2]},
        "measured": len(ok),
        "not_available": [r["workload"] for r in rows if r.get("status") != "ok"],
    }


def _cell(row, key: str, fmt: str) -> str:
    if key not in row:
        return "-"
    library = key.split("_")[0]
    differs = library in PEER_LIBRARIES and row.get(f"{library}_matches_torch") is False
    return fmt.format(row[key]) + (DIFFERS_MARK if differs else "")


def peer_notes(rows) -> list[str]:
    """One line per peer whose forward output is not torch's."""
    return [f"{DIFFERS_MARK} {r[lib + '_call']} differs from torch on {r['workload']}: {r[lib + '_differs']}"
            for r in rows for lib in PEER_LIBRARIES if r.get(f"{lib}_matches_torch") is False]


def format_table(rows) -> str:
    ok = [r for r in rows if r.get("status") == "ok"]
    cells = [[title for _, title, _ in COLUMNS]]
    cells += [[_cell(r, key, fmt) for key, _, fmt in COLUMNS] for r in ok]
    widths = [max(len(c[i]) for c in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    lines += [f"{r['workload'].ljust(widths[0])}  {r.get('status')}" for r in rows if r not in ok]
    return "\n".join(lines)


def write_csv(path: str, rows) -> None:
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: ("x".join(map(str, v)) if isinstance(v, list) else v) for k, v in r.items()})


def plot(path: str, rows) -> None:
    """Bar chart of the ratios (needs matplotlib: ``main`` checks for it before the run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("status") == "ok"]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(ok) + 1.5))
    y = np.arange(len(ok))
    ax.barh(y - 0.2, [r["ratio_fwd"] for r in ok], 0.4, label="forward")
    ax.barh(y + 0.2, [r["ratio_fwdbwd"] for r in ok], 0.4, label="forward+backward")
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, [r["workload"] for r in ok])
    ax.invert_yaxis()
    ax.set_xlabel("time jaxpool / time torch (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def environment(device: str, torch_threads: int) -> dict:
    import jax
    import torch

    return {
        "device": device,
        "jax": jax.__version__,
        "torch": torch.__version__,
        "jax_devices": [str(d) for d in jax.devices("gpu" if device == "gpu" else "cpu")],
        "cpu_count": os.cpu_count(),
        "jax_threads": _cpu_cores(),
        "torch_threads": torch_threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "flax": _version("flax"),
        "keras": keras_status() or _version("keras"),
    }


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def _cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1


# ------------------------------------------------------------------------------------ main


def parse_args(argv, prog: str | None = None):
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0] + "  Prints one row per workload: median "
        "times of jaxpool (jax.jit) and torch (eager), forward and forward+backward, the ratio "
        "jaxpool/torch (below 1: jaxpool is faster), the fraction of the memory roofline, and the "
        "JAX peers (Flax, Keras 3) where they have the op.  Progress goes to stderr.")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (default): jax and torch on the CPU, same thread count; gpu: jax on the "
                        "GPU against torch CUDA (needs GPU builds of both)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small shapes, 3 samples, no idle gap; shows that every workload runs, "
                        "its figures mean nothing as measurements")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="run only the workloads whose name contains one of NAME (see --list)")
    p.add_argument("--list", action="store_true", help="list the workloads and their shapes, and exit")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed samples per contender; the median is reported (default 15, --quick 3)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="torch's thread count (default: the cores XLA uses, so both sides get the same)")
    p.add_argument("--json", metavar="PATH",
                   help="also write the environment, every row and the summary as JSON to PATH")
    p.add_argument("--csv", metavar="PATH", help="also write one row per workload as CSV to PATH")
    p.add_argument("--plot", metavar="PATH",
                   help="also draw the ratios as a bar chart; the extension picks the format (.png, .pdf, "
                        ".svg, ...; needs matplotlib)")
    p.add_argument("--warm-allocator", action="store_true",
                   help="rerun with glibc's malloc keeping freed memory (no fresh pages per call, "
                        "for jaxpool and torch alike)")
    return p.parse_args(argv)


def quick_warning(repeats: int) -> str:
    return (f"WARNING: --quick is a smoke run (small shapes, {repeats} samples, no idle gap): its times, "
            "ratios and roofline figures are not comparable with a full run or with another quick run, "
            "and mean nothing as measurements.")


def output_errors(args) -> list[str]:
    """Problems with the --json/--csv/--plot paths, found before the run instead of after it."""
    from jaxpool.cli import output_path_error

    found = [output_path_error(f"--{name}", getattr(args, name), plot=name == "plot")
             for name in ("json", "csv", "plot") if getattr(args, name)]
    return [e for e in found if e]


# glibc reads these when the process starts: large blocks come from (and go back to) the heap
# instead of fresh mappings, and the heap is not trimmed, so no call faults new pages in.
WARM_ALLOCATOR = {"MALLOC_MMAP_THRESHOLD_": str(2**32), "MALLOC_TRIM_THRESHOLD_": str(2**33),
                  "MALLOC_TOP_PAD_": str(2**28)}


def _allocator_is_warm() -> bool:
    return all(os.environ.get(k) == v for k, v in WARM_ALLOCATOR.items())


def _rerun_with_warm_allocator(argv: list[str] | None) -> None:
    """Replace this process with ``python -m jaxpool bench ARGS`` under WARM_ALLOCATOR.

    The new process imports the jaxpool this one runs (its folder goes first on PYTHONPATH,
    unless that folder is a site-packages the interpreter reads anyway).
    """
    import site

    import jaxpool

    args = sys.argv[1:] if argv is None else argv
    env = {**os.environ, **WARM_ALLOCATOR}
    root = os.path.dirname(os.path.dirname(os.path.realpath(jaxpool.__file__)))
    if root not in {os.path.realpath(p) for p in site.getsitepackages()}:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))
    os.execve(sys.executable, [sys.executable, "-m", "jaxpool", "bench", *args], env)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark with command line ``argv``; ``prog`` names the command in usage lines."""
    args = parse_args(argv, prog)
    name = prog or "bench"
    if args.device == "cpu":
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
    errors = output_errors(args)
    for e in errors:
        print(f"{name}: {e}", file=sys.stderr)
    if errors:
        return 2
    if importlib.util.find_spec("torch") is None:
        print(f"{name}: needs PyTorch, the baseline it times jaxpool against: "
              "python3 -m pip install 'jaxpool[bench]' (torch, the JAX peers, matplotlib)", file=sys.stderr)
        return 2
    if args.warm_allocator and not _allocator_is_warm():
        _rerun_with_warm_allocator(argv)
    import jax
    import torch

    all_workloads = workloads()
    if args.list:
        for w in all_workloads:
            print(f"{w.name:45s} {w.shape}")
        return 0
    selected = all_workloads
    if args.only:
        selected = [w for w in all_workloads if any(s in w.name for s in args.only)]
        if not selected:
            print(f"{name}: no workload matches {args.only}; try --list", file=sys.stderr)
            return 2
    if args.device == "gpu":
        try:
            jax.devices("gpu")
        except RuntimeError as e:
            print(f"{name}: --device gpu needs a GPU build of jax: {e}", file=sys.stderr)
            return 2
        if not torch.cuda.is_available():
            print(f"{name}: --device gpu needs torch with CUDA", file=sys.stderr)
            return 2
    threads = args.threads or _cpu_cores()
    torch.set_num_threads(threads)
    repeats = args.repeats or (3 if args.quick else 15)
    target = 0.002 if args.quick else 0.05
    env = environment(args.device, threads)
    env["allocator"] = "warm (glibc keeps freed memory)" if _allocator_is_warm() else "default"
    print(f"allocator: {env['allocator']}", flush=True)
    print(f"jaxpool benchmark on {args.device}: jax {env['jax']} ({env['jax_threads']} cores), "
          f"torch {env['torch']} ({threads} threads); median of {repeats} interleaved samples; "
          "ratio = jaxpool / torch; roofline = bytes moved / copy bandwidth / time", flush=True)
    if args.quick:
        print(quick_warning(repeats), file=sys.stderr, flush=True)
    rows = []
    start = time.perf_counter()
    for k, w in enumerate(selected, 1):
        elapsed = int(time.perf_counter() - start)
        print(f"[{k}/{len(selected)}] {w.name} ({elapsed // 60}:{elapsed % 60:02d} elapsed)",
              file=sys.stderr, flush=True)
        rows.append(run_workload(w, quick=args.quick, device=args.device, repeats=repeats, target=target))
    summ = summary(rows)
    print(format_table(rows))
    if summ["geomean_ratio"] is not None:
        w = summ["worst"]
        print(f"geomean ratio (fwd and f+b): {summ['geomean_ratio']:.2f} "
              f"(fwd {summ['geomean_ratio_fwd']:.2f}, f+b {summ['geomean_ratio_fwdbwd']:.2f}); "
              f"worst {w['ratio']:.2f} ({w['workload']}, {w['pass']})")
    for line in peer_notes(rows):
        print(line)
    keras = keras_status()
    print("peers: flax.linen pools where they compute the same windows (channels-last input); "
          + (f"Keras 3 adaptive pools not timed: Keras {keras}" if keras else
             f"keras.ops adaptive pools, Keras {env['keras']} on jax")
          + f"; {DIFFERS_MARK} = the peer's output is not torch's")
    result = {"environment": env, "quick": args.quick, "repeats": repeats, "rows": rows, "summary": summ}
    if args.quick:
        print(quick_warning(repeats))
        result["warning"] = quick_warning(repeats)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.csv:
        write_csv(args.csv, rows)
    if args.plot:
        plot(args.plot, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
