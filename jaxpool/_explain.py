"""``jaxpool explain``: an operator's per-axis window table as text, and optionally as a plot.

The windows shown are the tables of the plan the operator records when it is traced
(:func:`plan_of`), so they are the ones it runs; for ``fractional_max_pool``, whose plan holds
the rule of windows drawn per plane, its executor computes one plane's windows from the
samples given (or drawn from a seed).  Every column is computed with numpy over whole axes, and long tables are
summarised (first and last rows), so the cost stays in seconds for any input size.
"""

from __future__ import annotations

import numpy as np

from jaxpool import windows

# Tables longer than this print their first and last MAX_ROWS // 2 rows.
MAX_ROWS = 40
# A plot draws at most this many windows per axis, and at most MAX_PLOT_TAPS dilated taps.
MAX_PLOT_WINDOWS = 200
MAX_PLOT_TAPS = 20_000
# "input cells read by no window" needs a mask of the axis; above this size it is not computed.
MAX_COVERAGE_CELLS = 10**7

FRACTIONAL_DTYPES = ("float32", "float64", "float16", "bfloat16")


# ----------------------------------------------------------------------------- tables

def op_windows(op: str, input_size, *args, **kwargs):
    """The windows of ``jaxpool.<op>`` on an input of spatial size ``input_size``, one
    :class:`~jaxpool.windows.AxisWindows` per axis, read from the plan the operator executes
    (:func:`plan_of`), e.g. ``op_windows("max_pool2d", (9, 8), 3, 2, 1)``.

    For ``max_unpool{n}d`` the table is indexed by *unpool input* position ``i`` and covers the
    cells of the unpooled plane that ``i``'s index can address when the indices come from
    ``max_pool`` with the same kernel, stride and padding: ``[i*stride - padding, +kernel)``.

    >>> from jaxpool import windows
    >>> [w.describe() for w in windows.op_windows("adaptive_avg_pool1d", 5, 3)]
    [[(0, 2), (1, 4), (3, 5)]]

    ``fractional_max_pool{2,3}d`` draws its windows per plane: given ``samples`` (PyTorch's
    ``_random_samples`` of one plane, ``ndim`` numbers in ``[0, 1)``) or ``seed`` (drawn as the
    operator draws them from ``jax.random.key(seed)`` for a ``(1, 1, ...)`` input), and
    ``dtype``, the windows of that plane; without either, the plan's rule of each axis
    (:class:`~jaxpool.windows.DrawnWindows`).
    """
    if op[:-2] == "fractional_max_pool" and kwargs.get("samples") is None and kwargs.get("seed") is None:
        p = plan_of(op, input_size, *args, **kwargs)
        return tuple(p.tables[a] for a in p.layout.spatial_axes)
    return found_windows(op, input_size, *args, **kwargs)[0]


def found_windows(op: str, input_size, *args, samples=None, seed=None, **kwargs):
    """``(tables, used)``: :func:`op_windows`' tables and, for fractional pools, each axis' sample
    (see :func:`_fractional`; None otherwise).  :func:`explain` and :func:`plot` take it as
    ``found=`` so that a caller who checked the tables first does not build them twice."""
    if op[:-2] == "fractional_max_pool":
        return _fractional(op, input_size, *args, samples=samples, seed=seed, **kwargs)
    p = plan_of(op, input_size, *args, samples=samples, seed=seed, **kwargs)
    return tuple(p.tables[a] for a in p.layout.spatial_axes), None


def plan_text(op: str, input_size, *args, **kwargs) -> str:
    """What ``jaxpool explain --plan`` prints: the operator's :class:`~jaxpool.plan.Plan`
    (stochastic pooling: its training plan and its evaluation plan)."""
    if op[:-2] == "stochastic_pool" and "training" not in kwargs:
        return "\n\n".join(str(plan_of(op, input_size, *args, training=t, **kwargs)) for t in (True, False))
    return str(plan_of(op, input_size, *args, **kwargs))


def plan_of(op: str, input_size, *args, samples=None, seed=None, dtype="float32", **kwargs):
    """The :class:`jaxpool.plan.Plan` that ``jaxpool.<op>`` executes on an input of spatial size
    ``input_size`` (batch and channels 1), with the operator's own arguments after the input
    (after the input and the indices for ``max_unpool``).  The operator is traced abstractly
    (``jax.eval_shape``: nothing is computed) and its plan recorded, so bad arguments raise the
    operator's own ``ValueError``/``TypeError`` and the plan is the one it runs.

    Every operator of the registry (:data:`jaxpool.layer_specs.OPS`) has one.  A randomized
    operator is traced with a key (``jax.random.key(seed)``, seed 0 by default) where it needs
    one; ``fractional_max_pool`` with abstract ``_random_samples`` of ``dtype`` unless ``seed``
    is given (``samples`` only say that the samples are given).  ``channels_last`` is accepted
    and ignored: the layout does not change the windows.
    """
    import jax
    import jax.numpy as jnp

    from jaxpool import _args, plan
    from jaxpool.layer_specs import FAMILIES, OPS

    kwargs = {k: v for k, v in kwargs.items() if k != "channels_last"}
    spec = OPS.get(op)
    if spec is None:
        names = ", ".join(f"{f.name}{{{','.join(map(str, f.dims))}}}d" for f in FAMILIES)
        raise ValueError(f"op_windows: unknown operator {op!r}; known: {names}")
    family, n = spec.family, spec.ndim
    fractional = family.windows == "fractional"
    if not fractional and (samples is not None or seed is not None):
        raise ValueError(f"samples and seed apply to fractional_max_pool2d/3d only, not to {op}")
    if fractional and dtype not in FRACTIONAL_DTYPES:
        raise ValueError(f"{op}: dtype must be one of {', '.join(FRACTIONAL_DTYPES)}, got {dtype!r}")
    spatial = _args.positive(_args.int_tuple(input_size, n, "input_size", op), "input_size", op)
    x = jax.ShapeDtypeStruct((1, 1, *spatial), dtype if fractional else jnp.float32)
    lead = [jax.ShapeDtypeStruct(x.shape, jnp.int32)] if family.windows == "unpool" else []  # indices
    traced = {}  # abstract keyword arrays
    if fractional and seed is None:
        traced["_random_samples"] = jax.ShapeDtypeStruct((1, 1, n), dtype)
    random = family.random
    if random is not None and "_random_samples" not in traced and kwargs.get(random.training_arg, True):
        kwargs[random.key_arg] = jax.random.key(seed or 0)
    fn = spec.fn
    with plan.recording() as plans:
        jax.eval_shape(lambda v, i, t: fn(v, *i, *args, **t, **kwargs), x, lead, traced)
    return plans[-1]


def _fractional(op: str, input_size, *args, samples=None, seed=None, dtype="float32", **kwargs):
    """``(tables, used)``: the windows fractional_max_pool draws for one plane, computed by its
    executor from the plan it records, and per axis the column of the samples that drives it
    and its value."""
    import jax
    import jax.numpy as jnp

    from jaxpool import _drawn_max

    n = int(op[-2])
    names = " ".join(f"U{k + 1}" for k in range(n))
    if (samples is None) == (seed is None):
        raise ValueError(f"{op} draws its windows at random: give --samples {names} (PyTorch's "
                         "_random_samples of one plane, in [0, 1)) or --seed N (drawn with jax.random); "
                         "--plan alone prints the windows' rule")
    if samples is not None and (len(samples) != n or not all(0 <= float(u) < 1 for u in samples)):
        raise ValueError(f"--samples takes {n} numbers in [0, 1) for {op} ({names}: PyTorch's "
                         f"_random_samples[n, c, :]), got {' '.join(map(str, samples))}")
    p = plan_of(op, input_size, *args, samples=samples, seed=seed, dtype=dtype, **kwargs)
    if samples is not None:
        drawn = jnp.asarray(np.asarray(samples, np.float64).reshape(1, 1, n), dtype)
    else:
        drawn = _drawn_max.samples_of(p, None, jax.random.key(seed))  # what the operator draws
    rules = [p.tables[a] for a in p.layout.spatial_axes]
    used = [(r.sample, str(np.asarray(drawn[0, 0, r.sample]))) for r in rules]  # the dtype's shortest form
    return _drawn_max.plane_windows(p, drawn[0, 0]), used


# ----------------------------------------------------------------------------- columns

def _below(starts, lengths, d: int, bound) -> np.ndarray:
    """Per window, the number of taps ``start + j*d`` (``j < length``) that lie below ``bound``."""
    return np.clip(-((starts - bound) // d), 0, lengths)


def axis_columns(w: windows.AxisWindows) -> dict:
    """Per-window arrays, computed over the whole axis at once (no Python loop over windows).

    ``lo``/``hi``: the input range ``[lo, hi)`` shown; ``first``/``size``: first in-bounds tap
    and the number of in-bounds taps; ``padding``: taps in the padding; ``beyond``: taps past
    the right padding (``ceil_mode``); ``overlap``: cells shared with the next window (-1: none
    follows).
    """
    s, n, d = w.starts, w.lengths, w.dilation
    pad_end = w.input_size if w.pad_end is None else w.pad_end
    below_in, below_zero, below_end = (_below(s, n, d, b) for b in (w.input_size, 0, pad_end))
    size = below_in - below_zero
    first = s + below_zero * d
    last = first + (size - 1) * d
    overlap = np.full(w.output_size, -1, np.int64)
    if w.output_size > 1:
        lo = np.maximum(first[:-1], first[1:])
        hi = np.minimum(last[:-1], last[1:])
        aligned = (first[:-1] - first[1:]) % d == 0
        both = (size[:-1] > 0) & (size[1:] > 0) & aligned & (hi >= lo)
        overlap[:-1] = np.where(both, (hi - lo) // d + 1, 0)
    return {
        "lo": np.maximum(s, 0), "hi": np.minimum(s + (n - 1) * d + 1, w.input_size),
        "first": first, "size": size, "padding": below_zero + below_end - below_in,
        "beyond": n - below_end, "overlap": overlap,
    }


def axis_rows(w: windows.AxisWindows, which=None) -> list[dict]:
    """One dict per output position (all, or those in ``which``): range, cells read, padding
    taps, taps past the padding, overlap with the next window (None for the last)."""
    c = axis_columns(w)
    rows = []
    for i in range(w.output_size) if which is None else which:
        rows.append({
            "out": int(i), "range": f"[{c['lo'][i]},{c['hi'][i]})",
            "cells": c["first"][i] + np.arange(c["size"][i], dtype=np.int64) * w.dilation,
            "size": int(c["size"][i]), "padding": int(c["padding"][i]), "beyond": int(c["beyond"][i]),
            "overlap": None if c["overlap"][i] < 0 else int(c["overlap"][i]),
        })
    return rows


def unread_cells(w: windows.AxisWindows, columns: dict) -> np.ndarray | None:
    """Sorted input positions no window reads (None above MAX_COVERAGE_CELLS cells).

    One difference array per residue modulo the dilation marks every window's in-bounds taps
    in O(outputs + input), however long the windows are.
    """
    if w.input_size > MAX_COVERAGE_CELLS:
        return None
    d = w.dilation
    rows = -(-w.input_size // d) + 1
    size, first = columns["size"], columns["first"]
    keep = size > 0
    first, last = first[keep], first[keep] + (size[keep] - 1) * d
    diff = np.zeros((d, rows), np.int64)
    np.add.at(diff, (first % d, first // d), 1)
    np.add.at(diff, (first % d, last // d + 1), -1)
    covered = np.cumsum(diff, axis=1)[:, :-1] > 0  # covered[r, q]: position q*d + r
    positions = np.arange(rows - 1)[None, :] * d + np.arange(d)[:, None]
    unread = positions[~covered & (positions < w.input_size)]
    return np.sort(unread)


def _runs(cells, limit: int = 12) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``; more than ``limit`` runs end in a count."""
    cells = np.asarray(cells, np.int64)
    if cells.size == 0:
        return ""
    breaks = np.flatnonzero(np.diff(cells) != 1)
    starts = np.concatenate([cells[:1], cells[breaks + 1]])
    stops = np.concatenate([cells[breaks], cells[-1:]])
    parts = [str(a) if a == b else f"{a}-{b}" for a, b in zip(starts[:limit], stops[:limit])]
    if len(starts) > limit:
        parts.append(f"... ({cells.size} cells in {len(starts)} runs)")
    return ", ".join(parts)


def _cells_text(cells: np.ndarray, d: int) -> str:
    if cells.size <= 8:
        return ",".join(map(str, cells.tolist()))
    return f"{cells[0]},{cells[1]},...,{cells[-1]} ({cells.size} cells, every {d})"


def _shown(count: int) -> list[int] | None:
    """Rows to print: all, or the first and last MAX_ROWS // 2 (None marks the gap)."""
    if count <= MAX_ROWS:
        return list(range(count))
    half = MAX_ROWS // 2
    return [*range(half), None, *range(count - half, count)]


# ----------------------------------------------------------------------------- text

def _format_table(header: list[str], rows: list[list[str] | str]) -> list[str]:
    """Right-aligned columns; a plain string row (a summary line) is printed as it is."""
    cells = [r for r in rows if not isinstance(r, str)]
    widths = [max(len(h), *(len(r[k]) for r in cells)) if cells else len(h) for k, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(n) for c, n in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), *(r if isinstance(r, str) else line(r) for r in rows)]


def _call(op: str, args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _rule(op: str, w: windows.AxisWindows, sample=None) -> str:
    family = op[:-2]
    if family.startswith("adaptive"):
        return (f"adaptive windows: output i reads [floor(i*{w.input_size}/{w.output_size}), "
                f"ceil((i+1)*{w.input_size}/{w.output_size}))")
    kernel = int(w.lengths[0]) if w.output_size else 0
    if family == "fractional_max_pool":
        column, u = sample
        if w.output_size < 2:
            return (f"u = samples[n, c, {column}] = {u}, unused: " +
                    ("no windows (output size 0)" if w.output_size == 0 else
                     f"the single output reads the last {kernel} cells"))
        return (f"u = samples[n, c, {column}] = {u}; alpha = ({w.input_size} - {kernel}) / ({w.output_size} - 1); "
                f"output i < {w.output_size - 1} reads {kernel} cells from int((i + u) * alpha) - int(u * alpha), "
                f"the last output from {w.input_size} - {kernel}")
    start = f"i*{int(w.starts[1] - w.starts[0])}" if w.output_size > 1 else "0"
    start += f" - {w.padding}" if w.padding else ""
    if family == "max_unpool":
        return (f"input i's index may address [{start}, +{kernel}) of the {w.input_size} unpooled "
                "cells (the windows of the max_pool that made the indices)")
    taps = f"{kernel} taps {w.dilation} apart" if w.dilation > 1 else f"{kernel} cells"
    rule = f"output i reads {taps} starting at {start}"
    if family == "stochastic_pool":
        rule += " (padding cells are not part of a window)"
    return rule


def _windows_line(columns: dict) -> str:
    ranges = [f"[{a},{b})" for a, b in zip(columns["lo"][:5].tolist(), columns["hi"][:5].tolist())]
    count = len(columns["lo"])
    if count > 10:
        tail = [f"[{a},{b})" for a, b in zip(columns["lo"][-5:].tolist(), columns["hi"][-5:].tolist())]
        return f"windows: {' '.join(ranges)} ... {' '.join(tail)} ({count} windows)"
    ranges = [f"[{a},{b})" for a, b in zip(columns["lo"].tolist(), columns["hi"].tolist())]
    return "windows: " + " ".join(ranges)


def _head(op: str, tables, args, kwargs, extra: dict) -> str:
    family = op[:-2]
    spatial = tuple(w.input_size for w in tables)
    outputs = ", ".join(str(w.output_size) for w in tables)
    if family == "max_unpool":
        inputs = tuple(w.output_size for w in tables)
        return (f"{op}(input (N, C, {', '.join(map(str, inputs))}), indices, {_call(op, args, kwargs)})"
                f" -> output (N, C, {', '.join(map(str, spatial))})")
    if family == "fractional_max_pool":
        if extra.get("samples") is not None:
            kwargs = {**kwargs, "_random_samples": [[list(map(float, extra["samples"]))]]}
            given = ""
        else:
            given = f", key=jax.random.key({extra['seed']})"
        return (f"{op}(input (1, 1, {', '.join(map(str, spatial))}) {extra.get('dtype', 'float32')}, "
                f"{_call(op, args, kwargs)}{given}) -> output (1, 1, {outputs})")
    return f"{op}(input (N, C, {', '.join(map(str, spatial))}), {_call(op, args, kwargs)}) -> output (N, C, {outputs})"


def explain(op: str, input_size, *args, found=None, **kwargs) -> str:
    """The text that ``jaxpool explain`` prints: per axis, every output's window.

    Tables of more than MAX_ROWS windows show their first and last rows and a count.
    """
    family = op[:-2]
    extra = {k: kwargs.pop(k) for k in ("samples", "seed", "dtype") if k in kwargs}
    tables, samples = found or found_windows(op, input_size, *args, **extra, **kwargs)
    samples = samples or [None] * len(tables)
    lines = [_head(op, tables, args, kwargs, extra)]
    if family == "fractional_max_pool" and extra.get("seed") is not None:
        lines.append(f"samples drawn for plane (0, 0): [{', '.join(u for _, u in sorted(samples))}] "
                     "(jax.random.uniform(key, (1, 1, ndim)); another (N, C) draws other samples)")
    avg = family == "avg_pool"
    override = kwargs.get("divisor_override") if avg else None
    include_pad = kwargs.get("count_include_pad", True) if avg else None
    for axis, w in enumerate(tables):
        c = axis_columns(w)
        sizes = (f"input size {w.output_size} (pooled), unpooled output size {w.input_size}"
                 if family == "max_unpool" else f"input size {w.input_size}, output size {w.output_size}")
        lines += ["", f"axis {axis}: {sizes}", "  " + _rule(op, w, samples[axis]), "  " + _windows_line(c)]
        header = ["in", "output range", "size"] if family == "max_unpool" else ["out", "input range", "size"]
        dilated = w.dilation > 1
        if dilated:
            header.append("cells read")
        header.append("padding")
        beyond = bool(np.any(c["beyond"]))
        if beyond:
            header.append("past padding")
        if avg and override is None:
            header.append("divisor")
        header.append("overlap with next")
        divisors = (w.padded_counts if include_pad else c["size"]) if avg else None
        shown = _shown(w.output_size)
        rows = {r["out"]: r for r in axis_rows(w, [i for i in shown if i is not None])}
        body = []
        for i in shown:
            if i is None:
                body.append(f"  ... {w.output_size - MAX_ROWS} more windows ...")
                continue
            r = rows[i]
            cells = [str(i), r["range"], str(r["size"])]
            if dilated:
                cells.append(_cells_text(r["cells"], w.dilation))
            cells.append(str(r["padding"]))
            if beyond:
                cells.append(str(r["beyond"]))
            if avg and override is None:
                cells.append(str(int(divisors[i])))
            cells.append("-" if r["overlap"] is None else str(r["overlap"]))
            body.append(cells)
        lines += ["  " + line for line in _format_table(header, body)]
        noun = "output cells no index can address" if family == "max_unpool" else "input cells read by no window"
        unread = unread_cells(w, c)
        if unread is None:
            lines.append(f"  {noun}: not computed (more than {MAX_COVERAGE_CELLS} cells)")
        elif unread.size:
            lines.append(f"  {noun}: {_runs(unread)}")
        if beyond:
            lines.append("  (ceil_mode: the last window hangs past the right padding; those taps read nothing"
                         + (" and do not count in the divisor)" if avg else ")"))
        if family.startswith("adaptive"):
            equal = windows.equivalent_fixed(w.input_size, w.output_size)
            if equal is None:
                sizes = np.unique(w.lengths)
                why = (f"window sizes {', '.join(map(str, sizes[:10].tolist()))} differ" if len(sizes) > 1
                       else "window starts are not evenly spaced")
                lines.append(f"  equivalent plain pool: none ({why}); no kernel_size/stride reproduces it")
            else:
                lines.append(f"  equivalent plain pool: kernel_size={equal[0]}, stride={equal[1]}, padding=0")
    if avg:
        lines.append("")
        if override is not None:
            lines.append(f"divisor: divisor_override={override} for every window")
        else:
            rule = "cells up to the end of the padding" if include_pad else "cells inside the input"
            lines.append(f"divisor of a window: product over axes of the per-axis divisor ({rule})")
    if family.startswith("adaptive"):
        equal = [windows.equivalent_fixed(w.input_size, w.output_size) for w in tables]
        lines.append("")
        plain = family.replace("adaptive_", "") + op[-2:]
        if all(f is not None for f in equal):
            k = tuple(f[0] for f in equal)
            s = tuple(f[1] for f in equal)
            k, s = (k[0], s[0]) if len(k) == 1 else (k, s)
            lines.append(f"this {op} equals {plain}(kernel_size={k}, stride={s}) on this input size")
        else:
            lines.append(f"no {plain} with a fixed kernel_size/stride reproduces this {op}: "
                         "its windows vary in size or spacing")
    if family == "stochastic_pool":
        lines += ["", "training: each window outputs one of its cells, picked with probability "
                      "max(a, 0) / sum(max(a, 0)) (uniformly when no cell is positive); inference "
                      "(training=False): the expectation of that pick"]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- plot

def plot_problem(tables) -> str | None:
    """Why these windows are too many to draw (None when they are not): a plot is for reading.

    At most MAX_PLOT_WINDOWS windows per axis and MAX_PLOT_TAPS dilated taps in all, so that
    drawing takes seconds whatever the input size.
    """
    for axis, w in enumerate(tables):
        if w.output_size > MAX_PLOT_WINDOWS:
            return (f"--plot draws at most {MAX_PLOT_WINDOWS} windows per axis, and this --input-size gives "
                    f"{w.output_size} on axis {axis}: leave out --plot (the table is summarised) or give "
                    "a smaller --input-size")
    taps = sum(int(axis_columns(w)["size"].sum()) for w in tables if w.dilation > 1)
    if taps > MAX_PLOT_TAPS:
        return (f"--plot draws at most {MAX_PLOT_TAPS} dilated taps, and these windows have {taps}: leave "
                "out --plot or give a smaller --input-size or --kernel-size")
    return None


def plot(path, op: str, input_size, *args, found=None, **kwargs) -> None:
    """Draw each axis's windows over the input positions and save the figure to ``path``.

    Needs matplotlib (the ``plot`` extra); raises ``ImportError`` without it, and
    ``ValueError`` when :func:`plot_problem` finds too many windows to draw.
    """
    tables = (found or found_windows(op, input_size, *args, **kwargs))[0]
    problem = plot_problem(tables)
    if problem:
        raise ValueError(problem)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(tables), 1, squeeze=False,
                             figsize=(8, sum(1.2 + 0.25 * min(w.output_size, 60) for w in tables)))
    for axis, (ax, w) in enumerate(zip(axes[:, 0], tables)):
        c = axis_columns(w)
        pad_end = w.input_size if w.pad_end is None else w.pad_end
        for i in range(w.output_size):
            start, end = int(w.starts[i]), int(w.starts[i] + (w.lengths[i] - 1) * w.dilation + 1)
            if w.dilation > 1:  # one bar per tap
                taps = w.starts[i] + np.arange(w.lengths[i]) * w.dilation
                inside = [(t, 0.9) for t in taps[(taps >= 0) & (taps < w.input_size)]]
                padding = [(t, 0.9) for t in taps[(taps < 0) | ((taps >= w.input_size) & (taps < pad_end))]]
                beyond = [(t, 0.9) for t in taps[taps >= pad_end]]
            else:  # one bar per kind of cell
                inside = [(int(c["lo"][i]), int(c["size"][i]) - 0.1)] if c["size"][i] else []
                padding = [(start, -start - 0.1)] if start < 0 else []
                if end > w.input_size and pad_end > w.input_size:
                    padding.append((w.input_size, min(end, pad_end) - w.input_size - 0.1))
                beyond = [(pad_end, end - pad_end - 0.1)] if end > pad_end else []
            ax.broken_barh(inside, (i - 0.4, 0.8), facecolor="tab:blue")
            ax.broken_barh(padding, (i - 0.4, 0.8), facecolor="none", edgecolor="tab:gray", hatch="///")
            ax.broken_barh(beyond, (i - 0.4, 0.8), facecolor="none", edgecolor="tab:red", linestyle=":")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.axvline(w.input_size, color="black", linewidth=0.8)
        ax.set_ylim(w.output_size - 0.5, -0.5)
        ax.set_xlabel(f"{'unpooled output' if op.startswith('max_unpool') else 'input'} position, axis {axis}")
        ax.set_ylabel("output" if not op.startswith("max_unpool") else "input")
        ax.set_title(f"{op}: axis {axis}, {w.input_size} -> {w.output_size}", fontsize=10)
    axes[0, 0].legend(handles=[Patch(facecolor="tab:blue", label="input cell read"),
                               Patch(facecolor="none", edgecolor="tab:gray", hatch="///", label="padding"),
                               Patch(facecolor="none", edgecolor="tab:red", linestyle=":", label="past padding")],
                      loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
