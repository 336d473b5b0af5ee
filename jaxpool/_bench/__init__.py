"""jaxpool against PyTorch, side by side, in one process on the same data.

For every workload (``--list``) this measures, interleaving the contenders so that machine noise
hits them alike (each sample after 50 ms idle, so one side's spinning worker threads do not
run into the other's sample; see ``timing.IDLE_GAP_S``):

* the median time of jaxpool under ``jax.jit`` (warmed up, ``block_until_ready``) and of the
  same ``torch.nn.functional`` call in eager mode, forward (torch under ``no_grad``) and
  forward+backward in three forms (``timing.FORMS``): ``jax.vjp`` / ``.backward`` with a ones
  cotangent passed to the jitted program as an argument (both return the forward output and
  the input gradient, so neither side can drop or constant-fold work), and the gradients as
  users write them, ``jax.jit(jax.grad(lambda x: pool(x).sum()))`` against
  ``pool(x).sum().backward()``, and the same with ``.mean()``;
* the ratio jaxpool / torch (below 1 means jaxpool is faster) of each;
* the achieved fraction of the memory roofline of the forward pass: the bytes it must move
  (input read once, every output written once) divided by the bandwidth of a jitted elementwise
  copy of the same input (``2 * input bytes / copy time``), over the measured time;
* the JAX peers where one exists (:class:`Peer`): ``flax.linen.max_pool``/``avg_pool`` (on the
  channels-last copy of the input, their layout), including adaptive cases whose windows are
  exactly a fixed pool (``jaxpool.windows.equivalent_fixed``), and Keras 3's
  ``keras.ops.adaptive_average_pool``/``adaptive_max_pool`` on the JAX backend (the ``bench``
  extra installs Keras; without it those columns say so).  Every peer's forward output is
  compared with torch's first: a peer that computes other numbers is timed all the same and
  flagged in the table, since a user porting a model would get those numbers;
* the compile time of the forward+backward (``jax.grad`` of the sum: trace, lower, compile,
  from scratch, best of 3; see :mod:`.compiling`) and its StableHLO op count, for jaxpool and
  for the op written as one ``lax.reduce_window`` where that can express it
  (``Workload.reduce_window``); ``--no-compile-times`` skips them.

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
import importlib.util
import json
import os
import sys
import time

from .cases import PEER_LIBRARIES, Peer, Workload, keras_status, workloads
from .measure import run_workload
from .report import (DIFFERS_MARK, cpu_cores, environment, format_table, peer_notes, plot, run_until_stopped, summary,
                     summary_lines, write_csv)

__all__ = ["PEER_LIBRARIES", "Peer", "Workload", "keras_status", "main", "workloads"]


def parse_args(argv, prog: str | None = None):
    p = argparse.ArgumentParser(
        prog=prog, description=__doc__.split("\n\n")[0] + "  Prints one row per workload: median "
        "times of jaxpool (jax.jit) and torch (eager), forward and forward+backward (with a run-time "
        "cotangent, and as the gradient of the sum and of the mean), the ratio jaxpool/torch (below 1: "
        "jaxpool is faster), the fraction of the memory roofline; the JAX peers (Flax, Keras 3) where "
        "they have the op; and the forward+backward compile time of jaxpool and of lax.reduce_window "
        "where it expresses the op.  Progress goes to stderr.")
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                   help="cpu (default): jax and torch on the CPU, same thread count; gpu: jax on the "
                        "GPU against torch CUDA (needs GPU builds of both)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small shapes, 3 samples, no idle gap, one compile per compile time; shows "
                        "that every workload runs, its figures mean nothing as measurements")
    p.add_argument("--only", nargs="+", metavar="NAME",
                   help="run only the workloads whose name contains one of NAME (see --list)")
    p.add_argument("--list", action="store_true", help="list the workloads and their shapes, and exit")
    p.add_argument("--repeats", type=int, metavar="N",
                   help="timed samples per contender; the median is reported (default 15, --quick 3)")
    p.add_argument("--no-compile-times", action="store_true",
                   help="skip the compile times (each is the best of 3 compiles from scratch, 1 with --quick)")
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
    threads = args.threads or cpu_cores()
    torch.set_num_threads(threads)
    repeats = args.repeats or (3 if args.quick else 15)
    target = 0.002 if args.quick else 0.05
    compile_repeats = 0 if args.no_compile_times else 1 if args.quick else 3
    env = environment(args.device, threads)
    env["allocator"] = "warm (glibc keeps freed memory)" if _allocator_is_warm() else "default"
    env["compile_repeats"] = compile_repeats
    env["persistent_compilation_cache"] = "off for the run"
    print(f"allocator: {env['allocator']}; jaxpool route: {env['route']}", flush=True)
    print(f"jaxpool benchmark on {args.device}: jax {env['jax']} ({env['jax_threads']} cores), "
          f"torch {env['torch']} ({threads} threads); median of {repeats} interleaved samples; "
          "ratio = jaxpool / torch; roofline = bytes moved / copy bandwidth / time", flush=True)
    if args.quick:
        print(quick_warning(repeats), file=sys.stderr, flush=True)
    start = time.perf_counter()

    def run_one(k, w):
        elapsed = int(time.perf_counter() - start)
        print(f"[{k}/{len(selected)}] {w.name} ({elapsed // 60}:{elapsed % 60:02d} elapsed)", file=sys.stderr,
              flush=True)
        return run_workload(w, quick=args.quick, device=args.device, repeats=repeats, target=target,
                            compile_repeats=compile_repeats)

    persistent_cache = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)  # compile times from scratch (compiling.py)
    try:
        rows, stopped = run_until_stopped(selected, run_one)
    finally:
        jax.config.update("jax_enable_compilation_cache", persistent_cache)
    summ = summary(rows)
    print(format_table(rows, compile_repeats))
    for line in summary_lines(summ):
        print(line)
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
    if stopped:
        result["incomplete"] = stopped
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    if args.csv:
        write_csv(args.csv, rows)
    if args.plot:
        plot(args.plot, rows)
    return 1 if stopped else 0


if __name__ == "__main__":
    sys.exit(main())
