"""``jaxpool explain``: an operator's per-axis window table as text, and optionally as a plot.

Everything shown comes from :func:`jaxpool.windows.op_windows`, i.e. the very tables the
operator reduces over, built after the operator's own argument checks.
"""

from __future__ import annotations

import numpy as np

from jaxpool import windows


def _taps(w: windows.AxisWindows, i: int) -> np.ndarray:
    return w.starts[i] + np.arange(w.lengths[i], dtype=np.int64) * w.dilation


def _runs(cells) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2, 5"``."""
    cells = sorted(int(c) for c in cells)
    parts, start = [], None
    for k, c in enumerate(cells):
        if start is None:
            start = c
        if k + 1 == len(cells) or cells[k + 1] != c + 1:
            parts.append(str(start) if start == c else f"{start}-{c}")
            start = None
    return ", ".join(parts)


def axis_rows(w: windows.AxisWindows) -> list[dict]:
    """One dict per output position: range, cells read, padding taps, overlap with the next."""
    pad_end = w.input_size if w.pad_end is None else w.pad_end
    rows = []
    for i, (first, stop) in enumerate(w.describe()):
        taps = _taps(w, i)
        inside = taps[(taps >= 0) & (taps < w.input_size)]
        rows.append({
            "out": i,
            "range": f"[{first},{stop})",
            "cells": inside,
            "size": int(inside.size),
            "padding": int(np.sum((taps < 0) | ((taps >= w.input_size) & (taps < pad_end)))),
            "beyond": int(np.sum(taps >= pad_end)),
        })
    for row, nxt in zip(rows, rows[1:] + [None]):
        row["overlap"] = None if nxt is None else int(np.intersect1d(row["cells"], nxt["cells"]).size)
    return rows


def _format_table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[k]) for r in rows)) if rows else len(h) for k, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(n) for c, n in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(header), *(line(r) for r in rows)]


def _call(op: str, args: tuple, kwargs: dict) -> str:
    parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return ", ".join(parts)


def _rule(op: str, w: windows.AxisWindows) -> str:
    family = op[:-2]
    if family.startswith("adaptive"):
        return (f"adaptive windows: output i reads [floor(i*{w.input_size}/{w.output_size}), "
                f"ceil((i+1)*{w.input_size}/{w.output_size}))")
    kernel = int(w.lengths[0]) if w.output_size else 0
    start = f"i*{int(w.starts[1] - w.starts[0])}" if w.output_size > 1 else "0"
    start += f" - {w.padding}" if w.padding else ""
    if family == "max_unpool":
        return (f"input i's index may address [{start}, +{kernel}) of the {w.input_size} unpooled "
                "cells (the windows of the max_pool that made the indices)")
    taps = f"{kernel} taps {w.dilation} apart" if w.dilation > 1 else f"{kernel} cells"
    return f"output i reads {taps} starting at {start}"


def explain(op: str, input_size, *args, **kwargs) -> str:
    """The text that ``jaxpool explain`` prints: per axis, every output's window."""
    tables = windows.op_windows(op, input_size, *args, **kwargs)
    family = op[:-2]
    spatial = tuple(w.input_size for w in tables)
    if family == "max_unpool":
        inputs = tuple(w.output_size for w in tables)
        head = f"{op}(input (N, C, {', '.join(map(str, inputs))}), indices, {_call(op, args, kwargs)})"
        head += f" -> output (N, C, {', '.join(map(str, spatial))})"
    else:
        head = f"{op}(input (N, C, {', '.join(map(str, spatial))}), {_call(op, args, kwargs)})"
        head += f" -> output (N, C, {', '.join(str(w.output_size) for w in tables)})"
    lines = [head]
    avg = family == "avg_pool"
    override = kwargs.get("divisor_override") if avg else None
    include_pad = kwargs.get("count_include_pad", True) if avg else None
    for axis, w in enumerate(tables):
        rows = axis_rows(w)
        sizes = (f"input size {w.output_size} (pooled), unpooled output size {w.input_size}"
                 if family == "max_unpool" else f"input size {w.input_size}, output size {w.output_size}")
        lines += ["", f"axis {axis}: {sizes}",
                  "  " + _rule(op, w)]
        lines.append("  windows: " + " ".join(r["range"] for r in rows))
        header = ["in", "output range", "size"] if family == "max_unpool" else ["out", "input range", "size"]
        dilated = w.dilation > 1
        if dilated:
            header.append("cells read")
        header.append("padding")
        beyond = any(r["beyond"] for r in rows)
        if beyond:
            header.append("past padding")
        if avg and override is None:
            header.append("divisor")
        header.append("overlap with next")
        divisors = (w.padded_counts if include_pad else w.inside_counts) if avg else None
        body = []
        for r in rows:
            cells = [str(r["out"]), r["range"], str(r["size"])]
            if dilated:
                cells.append(",".join(map(str, r["cells"].tolist())))
            cells.append(str(r["padding"]))
            if beyond:
                cells.append(str(r["beyond"]))
            if avg and override is None:
                cells.append(str(int(divisors[r["out"]])))
            cells.append("-" if r["overlap"] is None else str(r["overlap"]))
            body.append(cells)
        lines += ["  " + line for line in _format_table(header, body)]
        read = set()
        for r in rows:
            read.update(r["cells"].tolist())
        unread = sorted(set(range(w.input_size)) - read)
        if unread:
            noun = "output cells no index can address" if family == "max_unpool" else "input cells read by no window"
            lines.append(f"  {noun}: {_runs(unread)}")
        if beyond:
            lines.append("  (ceil_mode: the last window hangs past the right padding; those taps read nothing"
                         + (" and do not count in the divisor)" if avg else ")"))
        if family.startswith("adaptive"):
            found = windows.equivalent_fixed(w.input_size, w.output_size)
            if found is None:
                sizes = sorted({int(n) for n in w.lengths})
                why = (f"window sizes {', '.join(map(str, sizes))} differ" if len(sizes) > 1
                       else "window starts are not evenly spaced")
                lines.append(f"  equivalent plain pool: none ({why}); no kernel_size/stride reproduces it")
            else:
                lines.append(f"  equivalent plain pool: kernel_size={found[0]}, stride={found[1]}, padding=0")
    if avg:
        lines.append("")
        if override is not None:
            lines.append(f"divisor: divisor_override={override} for every window")
        else:
            rule = "cells up to the end of the padding" if include_pad else "cells inside the input"
            lines.append(f"divisor of a window: product over axes of the per-axis divisor ({rule})")
    if family.startswith("adaptive"):
        found = [windows.equivalent_fixed(w.input_size, w.output_size) for w in tables]
        lines.append("")
        plain = family.replace("adaptive_", "") + op[-2:]
        if all(f is not None for f in found):
            k = tuple(f[0] for f in found)
            s = tuple(f[1] for f in found)
            k, s = (k[0], s[0]) if len(k) == 1 else (k, s)
            lines.append(f"this {op} equals {plain}(kernel_size={k}, stride={s}) on this input size")
        else:
            lines.append(f"no {plain} with a fixed kernel_size/stride reproduces this {op}: "
                         "its windows vary in size or spacing")
    return "\n".join(lines)


def plot(path, op: str, input_size, *args, **kwargs) -> None:
    """Draw each axis's windows over the input positions and save the figure to ``path``.

    Needs matplotlib (the ``plot`` extra); raises ``ImportError`` without it.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    tables = windows.op_windows(op, input_size, *args, **kwargs)
    fig, axes = plt.subplots(len(tables), 1, squeeze=False,
                             figsize=(8, sum(1.2 + 0.25 * min(w.output_size, 60) for w in tables)))
    for axis, (ax, w) in enumerate(zip(axes[:, 0], tables)):
        pad_end = w.input_size if w.pad_end is None else w.pad_end
        for i in range(w.output_size):
            taps = _taps(w, i)
            inside = taps[(taps >= 0) & (taps < w.input_size)]
            padding = taps[(taps < 0) | ((taps >= w.input_size) & (taps < pad_end))]
            beyond = taps[taps >= pad_end]
            ax.broken_barh([(t, 0.9) for t in inside], (i - 0.4, 0.8), facecolor="tab:blue")
            ax.broken_barh([(t, 0.9) for t in padding], (i - 0.4, 0.8), facecolor="none",
                           edgecolor="tab:gray", hatch="///")
            ax.broken_barh([(t, 0.9) for t in beyond], (i - 0.4, 0.8), facecolor="none",
                           edgecolor="tab:red", linestyle=":")
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
