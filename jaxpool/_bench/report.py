"""The benchmark's outputs: the printed table and its summary, CSV, the plot, the environment."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import platform
import signal
import threading

import numpy as np

from .cases import PEER_LIBRARIES, keras_status

FORM_TITLES = {"fwd": "fwd", "fwdbwd": "f+b", "gradsum": "grad(sum)", "gradmean": "grad(mean)"}
_SHORT = {"fwd": "fwd", "fwdbwd": "f+b", "gradsum": "sum", "gradmean": "mean"}  # the run table's titles

# (row key, title, format) of each table's columns; a table is printed when a row has its data.
RUN_COLUMNS = [
    ("workload", "workload", "{}"),
    *(column for form, title in _SHORT.items() for column in (
        (f"jaxpool_{form}_ms", f"jax {title} ms", "{:.3f}"),
        (f"torch_{form}_ms", f"torch {title} ms", "{:.3f}"),
        (f"ratio_{form}", f"ratio {title}", "{:.2f}"))),
    ("roofline_fwd", "roofline", "{:.0%}"),
]
PEER_COLUMNS = [
    ("workload", "workload", "{}"),
    ("jaxpool_fwd_ms", "jax fwd ms", "{:.3f}"),
    ("jaxpool_fwdbwd_ms", "jax f+b ms", "{:.3f}"),
    *((f"{lib}_{when}_ms", f"{lib} {title} ms", "{:.3f}") for lib in PEER_LIBRARIES
      for when, title in (("fwd", "fwd"), ("fwdbwd", "f+b"))),
]
COMPILE_COLUMNS = [
    ("workload", "workload", "{}"),
    ("jaxpool_compile_s", "compile s jaxpool", "{:.2f}"),
    ("reduce_window_compile_s", "compile s reduce_window", "{:.2f}"),
    ("ratio_compile", "ratio", "{:.2f}"),
    ("jaxpool_stablehlo_ops", "StableHLO ops jaxpool", "{}"),
    ("reduce_window_stablehlo_ops", "StableHLO ops reduce_window", "{}"),
]
LEGEND = ("forward+backward: f+b = jax.vjp with a run-time ones cotangent, torch out.backward(ones_like(out)); "
          "sum = jax.jit(jax.grad(lambda x: pool(x).sum())), torch pool(x).sum().backward(); mean = the same with "
          ".mean(); ratio = jaxpool / torch")
COMPILE_LEGEND = ("compile s: jax.jit(jax.grad(lambda x: pool(x).sum())).lower(x).compile(), trace + lower + "
                  "XLA compile, jax's caches cleared before each, no persistent cache, best of {repeats}; "
                  "reduce_window: the same op written with lax.reduce_window; ratio = jaxpool / reduce_window; "
                  "StableHLO ops: the lowered program's ops that produce a value")
# Marks a peer's time whose forward output is not torch's (see cases.agreement and peer_notes).
DIFFERS_MARK = "!"
NOT_EXPRESSIBLE = "n/a"  # the compile table's reduce_window cells where reduce_window cannot express the op


class Stopped(Exception):
    """SIGTERM arrived (``timeout``'s signal): the run stops and reports what it finished."""


def _stop(signum, frame):
    raise Stopped


@contextlib.contextmanager
def stoppable():
    """Let SIGTERM stop a run with :class:`Stopped`, so that a run cut short by a time limit, as
    on a leased GPU, still prints and saves the rows it finished.  Ctrl-C still aborts (and
    writes nothing); outside the main thread, where Python cannot take signals, this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_until_stopped(items, run_one) -> tuple[list, str | None]:
    """``(rows, note)``: ``run_one(k, item)`` for each of ``items`` (``k`` from 1) under
    :func:`stoppable`; ``note`` is None when all ran, else says how many did (printed too)."""
    rows: list = []
    try:
        with stoppable():
            for k, item in enumerate(items, 1):
                rows.append(run_one(k, item))
    except Stopped:
        note = f"INCOMPLETE: stopped after {len(rows)} of {len(items)}; the rows below are the ones finished"
        print(note, flush=True)
        return rows, note
    return rows, None


def geomean(values) -> float | None:
    values = [v for v in values if v and v > 0]
    return math.exp(sum(map(math.log, values)) / len(values)) if values else None


def _largest(pairs) -> dict | None:
    """``{"ratio": largest, "workload": its workload}`` of ``(ratio, workload)`` pairs."""
    found = max(pairs, default=None)
    return None if found is None else {"ratio": found[0], "workload": found[1]}


def summary(rows) -> dict:
    """Geomean and largest ratio of every form; ``geomean_ratio`` is over forward and the
    run-time-cotangent forward+backward, as in the tables before the gradient forms."""
    ok = [r for r in rows if r.get("status") == "ok"]
    ratios = {form: [(r[f"ratio_{form}"], r["workload"]) for r in ok if f"ratio_{form}" in r] for form in FORM_TITLES}
    worst = max(((ratio, workload, f"ratio_{form}") for form, pairs in ratios.items() for ratio, workload in pairs),
                default=None)
    result = {
        "geomean_ratio": geomean([ratio for form in ("fwd", "fwdbwd") for ratio, _ in ratios[form]]),
        "geomean_ratio_all_forms": geomean([ratio for pairs in ratios.values() for ratio, _ in pairs]),
        **{f"geomean_ratio_{form}": geomean([ratio for ratio, _ in pairs]) for form, pairs in ratios.items()},
        "max_ratio": {form: _largest(pairs) for form, pairs in ratios.items()},
        "worst": None if worst is None else {"ratio": worst[0], "workload": worst[1], "pass": worst[2]},
        "measured": len(ok),
        "not_available": [r["workload"] for r in rows if r.get("status") != "ok"],
    }
    compiled = [r for r in ok if "jaxpool_compile_s" in r]
    if compiled:
        compared = [(r["ratio_compile"], r["workload"]) for r in compiled if "ratio_compile" in r]
        slowest = max((r["jaxpool_compile_s"], r["workload"]) for r in compiled)
        result["compile"] = {
            "max_s": {"seconds": slowest[0], "workload": slowest[1]},
            "geomean_ratio_reduce_window": geomean([ratio for ratio, _ in compared]),
            "max_ratio_reduce_window": _largest(compared),
            "compared": len(compared),
        }
    return result


def summary_lines(summ) -> list[str]:
    """The printed summary under the tables."""
    if summ["geomean_ratio"] is None:
        return []
    lines = [f"geomean ratio jaxpool/torch: {summ['geomean_ratio']:.2f} over fwd and f+b (as in earlier tables), "
             f"{summ['geomean_ratio_all_forms']:.2f} over all four forms"]
    for form, title in FORM_TITLES.items():
        largest = summ["max_ratio"][form]
        if largest:
            lines.append(f"  {title:10s} geomean {summ[f'geomean_ratio_{form}']:.2f}, "
                         f"max {largest['ratio']:.2f} ({largest['workload']})")
    w = summ["worst"]
    lines.append(f"worst {w['ratio']:.2f} ({w['workload']}, {w['pass']})")
    c = summ.get("compile")
    if c:
        line = f"compile (forward+backward): max {c['max_s']['seconds']:.2f} s ({c['max_s']['workload']})"
        if c["compared"]:
            largest = c["max_ratio_reduce_window"]
            line += (f"; against lax.reduce_window on the {c['compared']} workloads it expresses: geomean "
                     f"{c['geomean_ratio_reduce_window']:.2f}x, max {largest['ratio']:.2f}x ({largest['workload']})")
        lines.append(line)
    return lines


def _cell(row, key: str, fmt: str) -> str:
    if key not in row:
        compile_reference = key.startswith("reduce_window_") or key == "ratio_compile"
        return NOT_EXPRESSIBLE if compile_reference and "jaxpool_compile_s" in row else "-"
    library = key.split("_")[0]
    differs = library in PEER_LIBRARIES and row.get(f"{library}_matches_torch") is False
    return fmt.format(row[key]) + (DIFFERS_MARK if differs else "")


def peer_notes(rows) -> list[str]:
    """One line per peer whose forward output is not torch's."""
    return [f"{DIFFERS_MARK} {r[lib + '_call']} differs from torch on {r['workload']}: {r[lib + '_differs']}"
            for r in rows for lib in PEER_LIBRARIES if r.get(f"{lib}_matches_torch") is False]


def reduce_window_notes(rows) -> list[str]:
    """What each compile reference is, or why there is none."""
    return [f"  {r['workload']}: {r['reduce_window_call']}" for r in rows
            if "jaxpool_compile_s" in r and "reduce_window_call" in r]


def _grid(rows, columns, cell=None) -> list[str]:
    """``columns`` (key, title, format) of ``rows`` as aligned text lines, a rule under the
    titles; ``cell(row, key, fmt)`` renders one value (this table's :func:`_cell` by default)."""
    cell = cell or _cell
    cells = [[title for _, title, _ in columns]]
    cells += [[cell(r, key, fmt) for key, _, fmt in columns] for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(c, widths)))
             for c in cells]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def format_table(rows, compile_repeats: int = 3) -> str:
    """The run-time table, then the peers' and the compile-time tables where there are data."""
    ok = [r for r in rows if r.get("status") == "ok"]
    lines = _grid(ok, RUN_COLUMNS)
    width = max(len(r["workload"]) for r in rows) if rows else 0
    lines += [f"{r['workload'].ljust(width)}  {r.get('status')}" for r in rows if r not in ok]
    lines.append(LEGEND)
    with_peers = [r for r in ok if any(f"{lib}_fwd_ms" in r for lib in PEER_LIBRARIES)]
    if with_peers:
        lines += ["", "JAX peers (forward, and forward+backward with the run-time cotangent):"]
        lines += _grid(with_peers, PEER_COLUMNS)
    compiled = [r for r in ok if "jaxpool_compile_s" in r]
    if compiled:
        lines += ["", "compile time, forward+backward:"]
        lines += _grid(compiled, COMPILE_COLUMNS)
        lines.append(COMPILE_LEGEND.format(repeats=compile_repeats))
        lines += ["reduce_window formulations:", *reduce_window_notes(compiled)]
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
    """Bar chart of the ratios of every form and, where measured, of the compile times (needs
    matplotlib: ``main`` checks for it before the run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if r.get("status") == "ok"]
    compiled = any("jaxpool_compile_s" in r for r in ok)
    fig, axes = plt.subplots(1, 2 if compiled else 1, squeeze=False, sharey=True,
                             figsize=(15 if compiled else 10, 0.6 * len(ok) + 1.5))
    y = np.arange(len(ok))
    ax = axes[0, 0]
    height = 0.8 / len(FORM_TITLES)
    for k, (form, title) in enumerate(FORM_TITLES.items()):
        ax.barh(y - 0.4 + (k + 0.5) * height, [r.get(f"ratio_{form}", 0) for r in ok], height, label=title)
    ax.axvline(1.0, color="k", lw=1)
    ax.set_yticks(y, [r["workload"] for r in ok])
    ax.invert_yaxis()
    ax.set_xlabel("time jaxpool / time torch (lower is better)")
    ax.legend()
    if compiled:
        ax = axes[0, 1]
        for k, (key, label) in enumerate((("jaxpool_compile_s", "jaxpool"),
                                          ("reduce_window_compile_s", "lax.reduce_window"))):
            ax.barh(y - 0.2 + 0.4 * k, [r.get(key, 0) for r in ok], 0.4, label=label)
        ax.set_xlabel("compile s, forward+backward (missing bar: reduce_window cannot express the op)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def environment(device: str, torch_threads: int) -> dict:
    import jax
    import torch

    import jaxpool
    from jaxpool import config

    return {
        "device": device,
        "jaxpool": jaxpool.__version__,
        "route": ROUTE_FORCED if config.portable_forced() else ROUTE_PER_PLATFORM,
        "jax": jax.__version__,
        "torch": torch.__version__,
        "jax_devices": [str(d) for d in jax.devices("gpu" if device == "gpu" else "cpu")],
        "cpu_count": os.cpu_count(),
        "jax_threads": cpu_cores(),
        "torch_threads": torch_threads,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "flax": _version("flax"),
        "keras": keras_status() or _version("keras"),
    }


# The jaxpool route the benchmark measured (docs/architecture.md, "Two routes").
ROUTE_PER_PLATFORM = "per platform (XLA:CPU tactics on CPU, the portable core elsewhere)"
ROUTE_FORCED = "portable core everywhere (JAXPOOL_ROUTE=portable)"


def _version(module: str) -> str:
    try:
        return __import__(module).__version__
    except ImportError:
        return "not installed"


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS)
        return os.cpu_count() or 1
