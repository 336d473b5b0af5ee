"""The ``jaxpool`` command (also ``python -m jaxpool``).

* ``jaxpool parity``: jaxpool against the installed PyTorch over the built-in sweep, one row
  per operator; exit status 1 on any mismatch, 2 when PyTorch is missing.
* ``jaxpool explain OP --input-size ...``: the window table of an operator for one input size.
* ``jaxpool bench ...``: the benchmark table of jaxpool against torch and the JAX peers
  (``jaxpool._bench``, also ``python3 benchmarks/bench.py`` in a checkout); needs the bench extra.
* ``jaxpool --version``.

Output paths (``--plot``, ``--json``, ``--csv``) are checked before any work; a bad one, like a
bad argument, is a one-line error and exit status 2.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

DEFAULT_PER_OP = 20
_EXPLAIN_ROWS = 40  # jaxpool._explain.MAX_ROWS (not imported: --help stays fast)
_EXPLAIN_PLOT = 200  # jaxpool._explain.MAX_PLOT_WINDOWS

PARITY_HELP = f"""\
Run jaxpool against the installed PyTorch and print one row per operator: cases run, passed,
failed, the largest error as a fraction of the dtype's tolerance (values, indices and input
gradients), and time.  Exit status 0 when every case matches, 1 on any mismatch, 2 when
PyTorch is not installed.

Default: the quick sweep, sampled down to {DEFAULT_PER_OP} cases per operator (every operator
and dimension; float32 mostly, every float dtype and, for max pooling, the integer dtypes
sampled; NaN/inf/tie inputs, ceil_mode, padding, dilation, channels_last, unbatched inputs),
run in worker processes: a few minutes on 2 cores.  --per-op 60 runs the quick sweep of the
test suite (about 1060 cases); --level full runs every 1-d configuration PyTorch accepts and
500 random 2-d/3-d combinations per operator (about 9500 cases: about an hour on 2 cores).
"""


def version() -> str:
    """The installed distribution's version (pyproject.toml's, read by importlib.metadata)."""
    from jaxpool import __version__

    return __version__


def _build_parser() -> argparse.ArgumentParser:
    from jaxpool.testing import sweep

    parser = argparse.ArgumentParser(
        prog="jaxpool", description="jaxpool: PyTorch's pooling operators in JAX; check, explain, measure.")
    parser.add_argument("--version", action="version", version=f"jaxpool {version()}")
    sub = parser.add_subparsers(dest="command", metavar="{parity,explain,bench}", required=True)

    p = sub.add_parser("parity", help="check every operator against the installed PyTorch",
                       description=PARITY_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ops", nargs="+", metavar="OP",
                   help=f"operators (e.g. max_pool2d) or families (e.g. max_pool); default: all of "
                        f"{len(sweep.OPS)}")
    p.add_argument("--dtype", nargs="+", metavar="D", dest="dtypes",
                   choices=sweep.FLOAT_DTYPES + sweep.INT_DTYPES,
                   help="only these dtypes (integer dtypes apply to max pooling only)")
    p.add_argument("--level", choices=("quick", "full"), default="quick")
    p.add_argument("--per-op", type=int, metavar="N",
                   help=f"cases per operator (default {DEFAULT_PER_OP} for quick; the full level's own "
                        "default for full)")
    p.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="worker processes (default: the number of CPUs, at most 4; 1 runs in-process)")
    p.add_argument("--fail-fast", action="store_true", help="stop at the first mismatch")
    p.add_argument("--list", action="store_true", help="list the cases and exit")

    e = sub.add_parser(
        "explain", help="print the window table of an operator",
        description="Print, per spatial axis, each output's input range [a,b), its size, padding cells and "
                    "its overlap with the next window, for one operator and input size; say whether an "
                    "adaptive pool equals a plain kernel/stride there.  Fractional max pooling draws its "
                    "windows at random: give one plane's samples (--samples) or a --seed (or --plan alone for the rule).  Tables of more "
                    f"than {_EXPLAIN_ROWS} windows show their first and last rows.  Example: jaxpool explain "
                    "adaptive_avg_pool1d --input-size 5 --output-size 3")
    e.add_argument("op", metavar="OP", help="max_pool, avg_pool, lp_pool, max_unpool, adaptive_avg_pool, "
                                            "adaptive_max_pool or stochastic_pool with 1d, 2d or 3d, or "
                                            "fractional_max_pool with 2d or 3d (e.g. max_pool2d); without "
                                            "the suffix, the dimension is the number of --input-size ints")
    e.add_argument("--input-size", nargs="+", type=int, required=True, metavar="N",
                   help="spatial input size, one int per axis (max_unpool: the pooled size)")
    e.add_argument("--kernel-size", nargs="+", type=int, metavar="K")
    e.add_argument("--stride", nargs="+", type=int, metavar="S")
    e.add_argument("--padding", nargs="+", type=int, metavar="P")
    e.add_argument("--dilation", nargs="+", type=int, metavar="D")
    e.add_argument("--ceil-mode", action="store_true", default=None)
    e.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction, default=None)
    e.add_argument("--divisor-override", type=int, metavar="D")
    e.add_argument("--norm-type", type=float, metavar="P", help="lp_pool's p (default 2; windows do not depend on it)")
    e.add_argument("--output-size", nargs="+", metavar="O",
                   help="adaptive and fractional pools: output size per axis (adaptive: 'None' keeps the "
                        "input size); max_unpool: the unpooled size, e.g. 65 after 65 -> 32")
    e.add_argument("--output-ratio", nargs="+", type=float, metavar="R",
                   help="fractional pools: output size as a fraction of the input, in (0, 1)")
    e.add_argument("--samples", nargs="+", type=float, metavar="U",
                   help="fractional pools: PyTorch's _random_samples of one plane, one number in [0, 1) "
                        "per axis, in PyTorch's order (2-d: width's sample first)")
    e.add_argument("--seed", type=int, metavar="N",
                   help="fractional pools: draw the samples from jax.random.key(N), as "
                        "fractional_max_pool(..., key=key) does for a (1, 1, ...) input")
    e.add_argument("--dtype", choices=("float32", "float64", "float16", "bfloat16"),
                   help="fractional pools: the input's dtype, in which the intervals are computed "
                        "(default float32)")
    e.add_argument("--plan", action="store_true",
                   help="also print the plan the operator executes: validated arguments, output shape, "
                        "divisor, index dtype, and the route on each platform (the XLA:CPU tactics on CPU, "
                        "the portable core elsewhere; JAXPOOL_ROUTE=portable forces it on CPU too)")
    e.add_argument("--plot", metavar="FILE.png",
                   help=f"also draw the windows, at most {_EXPLAIN_PLOT} per axis; the extension picks the "
                        "format (needs matplotlib: the plot extra)")

    b = sub.add_parser(
        "bench", add_help=False, help="time jaxpool against torch and the JAX peers "
                                      "(jaxpool bench --help for its options)",
        description="Run the benchmark; every argument is passed on "
                    "(jaxpool bench --help shows the benchmark's own options).")
    b.set_defaults(bench_args=[])
    return parser


# ----------------------------------------------------------------------------- parity

def _torch_version() -> str | None:
    try:
        import torch
    except ImportError:
        return None
    return torch.__version__


def cmd_parity(args) -> int:
    out, err = sys.stdout, sys.stderr
    from jaxpool.testing import _run as _parity_run
    from jaxpool.testing import sweep

    version = _torch_version()
    if version is None:
        print("jaxpool parity: PyTorch is not installed, so there is nothing to compare against.\n"
              "Install the test extra (a CPU-only torch pinned in pyproject.toml):\n"
              '    python3 -m pip install -e ".[test]"', file=err)
        return 2
    try:
        ops = _parity_run.expand_ops(args.ops)
    except ValueError as e:
        print(f"jaxpool parity: {e}", file=err)
        return 2
    per_op = args.per_op if args.per_op is not None else (DEFAULT_PER_OP if args.level == "quick" else None)
    if per_op is not None and per_op < 1:
        print("jaxpool parity: --per-op must be at least 1", file=err)
        return 2
    cases, skipped = _parity_run.plan(ops, args.level, args.dtypes, per_op)
    if skipped:
        print(f"skipped (no selected dtype applies): {', '.join(skipped)}", file=err)
    if not cases:
        print("jaxpool parity: no cases selected", file=err)
        return 2
    if args.list:
        for case in cases:
            print(case, file=out)
        return 0
    jobs = args.jobs if args.jobs is not None else min(4, os.cpu_count() or 1)
    jobs = max(1, min(jobs, len(cases)))
    import jax

    import jaxpool

    print(f"jaxpool {jaxpool.__version__} (jax {jax.__version__}) against torch {version}: "
          f"{len(cases)} cases, {args.level} sweep, {per_op or 'all'} per operator, {jobs} worker"
          f"{'s' if jobs > 1 else ''}", file=out, flush=True)
    if any(c.family == "lp_pool" and math.isinf(c.args[0]) for c in cases) and not sweep.torch_lp_inf_is_max_pool():
        print(f"note: torch {version} computes lp_pool with norm_type=+-inf by the finite-p formula (1 everywhere); "
              "jaxpool follows torch 2.13's max pool of abs(x) (pytorch#183997), so those cases compare with "
              "that rule run on this torch's max pool", file=out, flush=True)
    progress = _parity_run.Progress(err, jobs=jobs)
    start = time.perf_counter()
    progress.begin(len(cases))
    results = _parity_run.run(cases, jobs, args.fail_fast, progress)
    wall = time.perf_counter() - start
    print(_parity_run.table(results, ops, wall), file=out)
    if jobs > 1:
        print(f"time: wall clock; an operator's share of the {wall:.0f}s follows its cases' time in the "
              f"{jobs} workers", file=out)
    bad = [r for r in results if r.status != "pass"]
    if bad:
        print("\n" + _parity_run.failures(results), file=out)
        stopped = " (stopped at the first, --fail-fast)" if args.fail_fast and len(results) < len(cases) else ""
        print(f"\nMISMATCH: {len(bad)} of {len(results)} cases differ from torch {version}{stopped}; "
              f"{wall:.0f}s", file=out)
        return 1
    print(f"\nOK: all {len(results)} cases match torch {version} (values, indices, gradients); "
          f"{wall:.0f}s", file=out)
    return 0


# ----------------------------------------------------------------------------- explain


def _size_arg(values):
    if values is None:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def _output_size(values, family: str):
    if values is None:
        return None
    sizes = []
    for v in values:
        if v.lower() == "none" and family.startswith("adaptive"):
            sizes.append(None)
            continue
        try:
            sizes.append(int(v))
        except ValueError:
            raise ValueError(f"--output-size takes ints{' or None' if family.startswith('adaptive') else ''}, "
                             f"got {v!r}") from None
    if family == "max_unpool":
        return tuple(sizes)
    return _size_arg(sizes)


def _operator(name: str, input_size: list[int]) -> str:
    """``max_pool2d`` as given; a family name (``max_pool``) takes its dimension from --input-size."""
    from jaxpool.layer_specs import OPS  # the op registry (imported here: --help stays fast)

    families = {spec.family.name for spec in OPS.values()}
    op = f"{name}{len(input_size)}d" if name in families else name
    if op not in OPS:
        hint = " (fractional max pooling is 2-d or 3-d, as in PyTorch)" if op.startswith("fractional") else ""
        raise ValueError(f"unknown operator {name!r}{hint}; try max_pool2d, avg_pool1d, lp_pool2d, max_unpool2d, "
                         "adaptive_avg_pool1d, adaptive_max_pool3d, fractional_max_pool2d, stochastic_pool2d, ...")
    return op


def explain_arguments(args) -> tuple[str, tuple, tuple, dict, tuple]:
    """``(op, input_size, positional args, keyword args, found)`` of the call to explain; ``found``
    is :func:`jaxpool._explain.found_windows`' answer (None for fractional pooling with ``--plan``
    and no plane drawn: only its plan, which holds the windows' rule, is printed).

    The tables are built here, after the operator's own argument checks, so a bad argument is
    reported before anything is printed.
    """
    import inspect

    import jaxpool
    from jaxpool import _explain

    op = _operator(args.op, args.input_size)
    fn = getattr(jaxpool, op)
    family = op[:-2]
    n = int(op[-2])
    if len(args.input_size) not in (1, n):
        raise ValueError(f"--input-size takes 1 or {n} ints for {op}, got {len(args.input_size)}")
    input_size = tuple(args.input_size) * (n if len(args.input_size) == 1 else 1)
    given = {
        "kernel_size": _size_arg(args.kernel_size), "stride": _size_arg(args.stride),
        "padding": _size_arg(args.padding), "dilation": _size_arg(args.dilation),
        "ceil_mode": args.ceil_mode, "count_include_pad": args.count_include_pad,
        "divisor_override": args.divisor_override, "norm_type": args.norm_type,
        "output_size": _output_size(args.output_size, family), "output_ratio": _size_arg(args.output_ratio),
    }
    given = {k: v for k, v in given.items() if v is not None}
    params = inspect.signature(fn).parameters
    for name in given:
        if name not in params:
            raise ValueError(f"--{name.replace('_', '-')} does not apply to {op} "
                             f"(its arguments: {', '.join(p for p in params if p not in ('input', 'indices', 'channels_last'))})")
    extra = {"samples": args.samples, "seed": args.seed, "dtype": args.dtype}
    extra = {k: v for k, v in extra.items() if v is not None}
    if family != "fractional_max_pool" and extra:
        raise ValueError(f"--{next(iter(extra))} applies to fractional_max_pool2d/3d only")
    for name in ("kernel_size", "output_size"):
        if name in params and params[name].default is inspect.Parameter.empty and name not in given:
            raise ValueError(f"{op} needs --{name.replace('_', '-')}")
    if family == "fractional_max_pool" and ("output_size" in given) == ("output_ratio" in given):
        raise ValueError(f"{op} needs exactly one of --output-size and --output-ratio")
    args_ = ()
    if family == "lp_pool":
        args_ = (given.pop("norm_type", 2.0),)
    given.update(extra)
    if family == "fractional_max_pool" and args.plan and not (args.plot or "samples" in extra or "seed" in extra):
        _explain.plan_of(op, input_size, *args_, **given)  # the operator's own checks
        return op, input_size, args_, given, None  # no plane drawn: the plan's rule only
    found = _explain.found_windows(op, input_size, *args_, **given)  # after the operator's own checks
    return op, input_size, args_, given, found


def cmd_explain(args) -> int:
    out, err = sys.stdout, sys.stderr
    from jaxpool import _explain

    problem = args.plot and output_path_error("--plot", args.plot, plot=True)
    if problem:
        print(f"jaxpool explain: {problem}", file=err)
        return 2
    try:
        op, input_size, pos, kw, found = explain_arguments(args)
    except (ValueError, TypeError) as e:
        print(f"jaxpool explain: {e}", file=err)
        return 2
    problem = args.plot and _explain.plot_problem(found[0])
    if problem:
        print(f"jaxpool explain: {problem}", file=err)
        return 2
    if found is None:  # fractional pooling without samples: its windows' rule, from the plan
        print(f"no plane drawn (--samples or --seed show one plane's windows); {op}'s plan when it is "
              "given _random_samples:\n", file=out)
        print(_explain.plan_text(op, input_size, *pos, **kw), file=out)
        return 0
    print(_explain.explain(op, input_size, *pos, found=found, **kw), file=out)
    if args.plan:
        print("\n" + _explain.plan_text(op, input_size, *pos, **kw), file=out)
    if args.plot:
        _explain.plot(args.plot, op, input_size, *pos, found=found, **kw)
        print(f"\nplot written to {args.plot}", file=out)
    return 0


# ----------------------------------------------------------------------------- output paths

def plot_formats() -> list[str]:
    """File extensions matplotlib can write; raises ``ImportError`` without matplotlib."""
    import matplotlib  # noqa: F401  (first: a cached submodule would hide a missing package)
    from matplotlib.backend_bases import FigureCanvasBase

    return sorted(FigureCanvasBase.get_supported_filetypes())


MATPLOTLIB_MISSING = ("needs matplotlib, which is not installed: "
                      'python3 -m pip install -e ".[plot]" from the checkout (or: pip install matplotlib)')


def output_path_error(option: str, path: str, plot: bool = False) -> str | None:
    """Why ``path`` given to ``option`` cannot be written, or None.

    Checked before any work, so that a typo fails at once instead of after the run: the parent
    directory must exist and be writable, the path must not be a directory, and a plot's
    extension must be one matplotlib writes (matplotlib itself must be installed).
    """
    target = Path(path)
    parent = target.parent
    if target.is_dir():
        return f"{option} {path}: is a directory, give a file name"
    if not parent.is_dir():
        return f"{option} {path}: directory {parent} does not exist"
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        return f"{option} {path}: not writable"
    if plot:
        try:
            formats = plot_formats()
        except ImportError:
            return f"{option} {MATPLOTLIB_MISSING}"
        ext = target.suffix[1:].lower()
        if ext not in formats:
            return (f"{option} {path}: matplotlib cannot write {'.' + ext if ext else 'a file without an extension'}; "
                    f"use one of {', '.join('.' + f for f in formats)}")
    return None


# ----------------------------------------------------------------------------- bench

def cmd_bench(argv: list[str]) -> int:
    """Run :func:`jaxpool._bench.main` (shipped in the package, so it works from a wheel)."""
    from jaxpool import _bench

    return int(_bench.main(list(argv), prog="jaxpool bench") or 0)


# ----------------------------------------------------------------------------- entry point

def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``) and return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "bench":  # everything after "bench" belongs to the benchmark's parser
            return cmd_bench(argv[1:])
        args = _build_parser().parse_args(argv)
        if args.command == "parity":
            return cmd_parity(args)
        return cmd_explain(args)
    except BrokenPipeError:  # e.g. `jaxpool explain ... | head`: stop quietly, as other tools do
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (Python would flush into the closed pipe)
        return 1


if __name__ == "__main__":
    sys.exit(main())
