"""The plan stage: an operator's arguments, checked, turned into one frozen, printable plan.

Every operator follows one pipeline, and this module is its middle::

    arguments --(op module: preconditions)--> plan (here) --(jaxpool._execute)--> result

A :class:`Plan` holds what the executor needs and nothing it must recompute: the validated
arguments, the layout, one :class:`~jaxpool.windows.AxisWindows` table per spatial axis, the
divisor rule, the index dtype, the output shape, and the route each platform takes with the
reason.  It is built here, by one module that owns PyTorch's argument rules and table
construction for every family (fixed windows, adaptive windows, MaxUnpool's blocks; the randomized
families, fractional max pooling's drawn windows and stochastic pooling, in the small module
beside it, :mod:`jaxpool._plan_random`); tables cost
O(outputs + in-bounds taps), and an axis with more windows than the budget is refused before a
table exists.  ``jaxpool explain --plan`` and :func:`jaxpool.windows.op_windows` trace the
operator and read the plan it executes (:func:`recording`), so they cannot drift from it.

>>> import jax, jax.numpy as jnp, jaxpool
>>> from jaxpool import plan
>>> with plan.recording() as plans:
...     _ = jax.eval_shape(lambda x: jaxpool.max_pool2d(x, 3, 2, 1), jax.ShapeDtypeStruct((1, 3, 9, 8), jnp.float32))
>>> plans[0].output_shape, plans[0].tables[2].describe()[:2]
((1, 3, 5, 4), [(0, 2), (1, 4)])
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import numbers
import threading
import types
from collections.abc import Mapping, Sequence

import jax.numpy as jnp
import numpy as np

from jaxpool import _args, _execute, _taps, windows

__all__ = ["Plan", "max_pool", "avg_pool", "adaptive_pool", "max_unpool", "fixed_tables",
           "fixed_windows", "adaptive_tables", "unpool_tables", "unpool_output_size", "make", "recording"]


@dataclasses.dataclass(frozen=True, eq=False)
class Plan:
    """What one operator call computes, decided at trace time from shapes and arguments.

    Attributes:
      op: the operator, e.g. ``"max_pool2d"`` (errors name it).
      reduction: ``"sum"``, ``"max"``, ``"unpool"`` or ``"sample"`` (stochastic pooling's
        training pick): the executor's kind.
      layout: where the spatial axes are (:class:`jaxpool._args.Layout`).
      input_shape, output_shape: batched shapes (an unbatched input gets a batch axis of 1).
      tables: ``{axis: AxisWindows}`` per spatial axis of the batched input, read-only; for
        fractional max pooling, whose windows are drawn per plane, ``{axis: DrawnWindows}``
        (the rule and the static sizes; the executor computes the starts).
      plane_strides: ``{axis: flat-index stride within one plane}``.
      divisor: the averaging rule: ``"padded"`` (count padding cells, ``count_include_pad``),
        ``"inside"`` (cells inside the input), an int (``divisor_override``), or None.
      index_dtype: the dtype of PyTorch's indices where the call computes them, else None.
      arguments: the validated arguments, ``(name, value)`` pairs.
      routes: ``(platform, route)`` pairs: what XLA:CPU and every other platform execute.
      rule: what the randomized families do beyond the tables (where the samples come from,
        how a pick or an expectation is made), else None.
    """

    op: str
    reduction: str
    layout: _args.Layout
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    tables: Mapping[int, windows.AxisWindows | windows.DrawnWindows]
    plane_strides: Mapping[int, int]
    divisor: str | int | None
    index_dtype: np.dtype | None
    arguments: tuple[tuple[str, object], ...]
    routes: tuple[tuple[str, str], ...]
    rule: str | None = None

    def __str__(self) -> str:
        kind = "channels-last" if self.layout.channels_last else "channels-first"
        lines = [f"plan of {self.op}: {self.reduction} over {len(self.tables)} spatial axes ({kind})",
                 f"  input {self.input_shape} -> output {self.output_shape}"]
        if self.arguments:
            lines.append("  arguments: " + ", ".join(f"{k}={v!r}" for k, v in self.arguments))
        if self.divisor is not None:
            lines.append("  divisor: " + {
                "padded": "window size up to the end of the padding (count_include_pad=True)",
                "inside": "number of input cells in the window"}.get(self.divisor, f"{self.divisor} (divisor_override)"))
        if self.rule is not None:
            lines.append(f"  rule: {self.rule}")
        if self.index_dtype is not None:
            lines.append(f"  indices: {np.dtype(self.index_dtype).name}, flat offsets into each plane")
        for axis, w in self.tables.items():
            if isinstance(w, windows.DrawnWindows):
                lines.append(f"  axis {axis}: {w.describe()}")
                continue
            step = w.uniform_stride()
            lines.append(f"  axis {axis}: {w.input_size} -> {w.output_size} windows, "
                         + (f"stride {step}, {w.max_length} taps" if step else
                            f"irregular, {int(w.lengths.min()) if w.output_size else 0}-{w.max_length} taps")
                         + (f", dilation {w.dilation}" if w.dilation != 1 else "")
                         + (f", padding {w.padding}" if w.padding else ""))
        for platform, route in self.routes:
            lines.append(f"  route on {platform}: {route}")
        return "\n".join(lines)


def make(op: str, reduction: str, x, layout: _args.Layout, tables: dict, *, divisor=None,
         index_dtype=None, arguments: dict | None = None, routes=None, output_spatial=None,
         rule: str | None = None) -> Plan:
    """A :class:`Plan` over validated ``tables`` of the input ``x`` (anything with a shape and a
    dtype), handed to every open :func:`recording`."""
    shape = tuple(layout.batch_shape(x.shape))
    out = list(shape)
    sizes = output_spatial or [w.output_size for w in tables.values()]
    for axis, size in zip(tables, sizes):
        out[axis] = size
    spatial = tuple(shape[a] for a in layout.spatial_axes)
    if routes is None:
        floating = jnp.issubdtype(x.dtype, jnp.floating)
        routes = _execute.routes(reduction, tables, len(shape), index_dtype is not None, floating)
    return record(Plan(op, reduction, layout, shape, tuple(out), types.MappingProxyType(dict(tables)),
                types.MappingProxyType(layout.plane_strides(spatial)), divisor,
                None if index_dtype is None else np.dtype(index_dtype),
                tuple((arguments or {}).items()), tuple(routes), rule))


# ----------------------------------------------------------------------------- per family

def max_pool(x, layout: _args.Layout, op: str, kernel_size, stride, padding, dilation, ceil_mode,
             return_indices) -> Plan:
    """Plan of ``max_pool`` (and of ``lp_pool`` with ``p = +-inf``, whose errors name ``op``)."""
    tables, arguments = fixed_windows(x, layout, op, kernel_size, stride, padding, dilation, ceil_mode)
    _args.flag(return_indices, "return_indices", op)
    index_dtype = _args.index_dtype(layout.spatial_shape(x), op) if return_indices else None
    return make(op, "max", x, layout, tables, index_dtype=index_dtype, arguments=arguments)


def avg_pool(x, layout: _args.Layout, op: str, kernel_size, stride, padding, ceil_mode,
             count_include_pad, divisor_override) -> Plan:
    """Plan of ``avg_pool`` (and ``lp_pool``): windows without dilation, zero padding, and the
    divisor (PyTorch's ``avg_pool2d`` CPU kernel), per axis and multiplied over axes:
    ``count_include_pad=True``: ``min(start + kernel, in + padding) - start`` (padding cells
    count, a ``ceil_mode`` window is cut where the right padding ends); ``False``: the cells
    inside the input; ``divisor_override=d``: ``d``.  PyTorch's 3-d kernel alone also requires
    input >= kernel on every axis, padding not counted."""
    tables, arguments = fixed_windows(x, layout, op, kernel_size, stride, padding, 1, ceil_mode)
    del arguments["dilation"]
    if layout.n == 3:
        spatial = layout.spatial_shape(x)
        if any(i < k for i, k in zip(spatial, arguments["kernel_size"])):
            raise ValueError(f"{op}: input size {spatial} is smaller than kernel_size {arguments['kernel_size']}; "
                             "PyTorch's 3-d average pooling requires input >= kernel on every axis, "
                             "padding not counted")
    if not isinstance(count_include_pad, bool):
        raise TypeError(f"{op}: count_include_pad must be a bool, got {count_include_pad!r}")
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not isinstance(divisor_override, numbers.Integral):
            raise TypeError(f"{op}: divisor_override must be an int or None, got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be non-zero")
        if not -2**63 <= int(divisor_override) < 2**63:
            raise ValueError(f"{op}: divisor_override must fit in a 64-bit integer, got {divisor_override}")
        divisor = int(divisor_override)
    else:
        divisor = "padded" if count_include_pad else "inside"
    arguments.update(count_include_pad=count_include_pad, divisor_override=divisor_override)
    return make(op, "sum", x, layout, tables, divisor=divisor, arguments=arguments)


def adaptive_pool(x, layout: _args.Layout, op: str, output_size, reduction: str,
                  return_indices: bool = False) -> Plan:
    """Plan of ``adaptive_avg_pool`` (``reduction="sum"``, divided by the cells inside each
    window) or ``adaptive_max_pool`` (``"max"``).  Irregular windows route the max's gradient by
    the flat index, so the plane size must fit the index type there too."""
    tables = adaptive_tables(x, layout, output_size, op)
    arguments = {"output_size": tuple(w.output_size for w in tables.values())}
    if reduction == "sum":
        return make(op, "sum", x, layout, tables, divisor="inside", arguments=arguments)
    index_dtype = None
    if return_indices:
        irregular = not all(_taps.is_regular(w) for w in tables.values())
        index_dtype = _args.index_dtype(layout.spatial_shape(x), op, size_too=irregular)
    return make(op, "max", x, layout, tables, index_dtype=index_dtype, arguments=arguments)


def max_unpool(x, layout: _args.Layout, op: str, kernel_size, stride, padding, output_size,
               channels_last: bool) -> Plan:
    """Plan of ``max_unpool``: the output plane (PyTorch's ``_unpool_output_size``) and, per
    axis, the cells each input position's index can address (:func:`unpool_tables`).  The
    index dtype holds the plane size too: it marks dropped updates."""
    n = layout.n
    # torch's Python max_unpool indexes n elements of each: an int or exactly n (no 1-tuple for
    # n > 1, no empty stride); the extra elements of a longer stride or padding, which its 1-d
    # and 2-d ops ignore, are refused here (docs/rules.md, "Where jaxpool deliberately differs")
    kernel = _args.positive(_args.int_tuple(kernel_size, n, "kernel_size", op, one_for_all=False),
                            "kernel_size", op)
    stride = _args.stride_or_kernel(stride, kernel, n, op, python_side=True)
    padding = _args.non_negative(_args.int_tuple(padding, n, "padding", op, one_for_all=False), "padding", op)
    spatial = layout.spatial_shape(x)
    out = unpool_output_size(spatial, kernel, stride, padding, output_size, op, channels_last)
    index_dtype = _args.index_dtype(out, op, size_too=True) if math.prod(out) else None
    arguments = {"kernel_size": kernel, "stride": stride, "padding": padding, "output_size": out}
    return make(op, "unpool", x, layout, unpool_tables(layout, spatial, out, kernel, stride, padding),
                index_dtype=index_dtype, arguments=arguments, output_spatial=out)


# ----------------------------------------------------------------------------- recording

_recorders = threading.local()


@contextlib.contextmanager
def recording():
    """Collect, in a list, the plans of the operator calls traced inside the block."""
    plans: list[Plan] = []
    stack = getattr(_recorders, "stack", [])
    _recorders.stack = [*stack, plans]
    try:
        yield plans
    finally:
        _recorders.stack = stack


def record(p: Plan) -> Plan:
    """Hand ``p`` to every open :func:`recording` (:func:`make` does, for every plan)."""
    for plans in getattr(_recorders, "stack", ()):
        plans.append(p)
    return p


# ----------------------------------------------------------------------------- tables

def fixed_tables(x, layout: _args.Layout, op: str, kernel, stride, padding, dilation, ceil_mode):
    """Check PyTorch's argument rules and return ``{axis: AxisWindows}`` for every spatial axis
    (see :func:`fixed_windows`)."""
    return fixed_windows(x, layout, op, kernel, stride, padding, dilation, ceil_mode)[0]


def fixed_windows(x, layout: _args.Layout, op: str, kernel, stride, padding, dilation, ceil_mode):
    """``(tables, validated arguments)`` of a fixed-kernel pool (max, avg, LP, stochastic).

    Rules (aten/src/ATen/native/Pool.h, ``pool2d_shape_check``): kernel, stride and dilation
    positive; padding non-negative and at most half the kernel (``pad <= kernel // 2``, the
    *undilated* kernel); every output size at least 1.  Beyond PyTorch: a dilated window whose
    taps all miss the input is rejected (PyTorch accepts it and reports an index outside the
    plane, then corrupts memory in backward).
    """
    n = layout.n
    kernel = _args.positive(_args.int_tuple(kernel, n, "kernel_size", op), "kernel_size", op)
    stride = _args.stride_or_kernel(stride, kernel, n, op)
    padding = _args.non_negative(_args.int_tuple(padding, n, "padding", op), "padding", op)
    dilation = _args.positive(_args.int_tuple(dilation, n, "dilation", op), "dilation", op)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"{op}: ceil_mode must be a bool, got {ceil_mode!r}")
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        raise ValueError(
            f"{op}: padding must be at most half of kernel_size (padding <= kernel_size // 2), "
            f"got padding={padding} and kernel_size={kernel}"
        )
    spatial = layout.spatial_shape(x)
    for size, k, s, p, d in zip(spatial, kernel, stride, padding, dilation):
        # before any table exists: an axis of more windows than the budget is refused here
        windows.check_window_budget(op, "input_size with kernel_size and stride",
                                    windows.pooling_output_size(size, k, s, p, d, ceil_mode))
    tables = {
        axis: windows.fixed(size, k, s, p, d, ceil_mode)
        for axis, size, k, s, p, d in zip(layout.spatial_axes, spatial, kernel, stride, padding, dilation)
    }
    out = tuple(w.output_size for w in tables.values())
    if any(o < 1 for o in out):
        sizes = tuple(
            windows.pooling_output_size(i, k, s, p, d, ceil_mode)
            for i, k, s, p, d in zip(spatial, kernel, stride, padding, dilation)
        )
        raise ValueError(
            f"{op}: output size is too small: input size {spatial} with kernel_size={kernel}, "
            f"stride={stride}, padding={padding}, dilation={dilation} gives output size {sizes}"
        )
    for axis, w in tables.items():  # O(out): inside_counts is a closed form (windows.AxisWindows)
        empty = np.flatnonzero(w.inside_counts == 0)
        if empty.size:
            raise ValueError(
                f"{op}: window {int(empty[0])} along spatial dim {axis - min(tables)} reads no input "
                f"cell (every tap falls in padding or between cells with dilation={dilation}); "
                "PyTorch returns an out-of-range index there and its backward writes out of bounds"
            )
    arguments = {"kernel_size": kernel, "stride": stride, "padding": padding, "dilation": dilation,
                 "ceil_mode": ceil_mode}
    return tables, arguments


def adaptive_tables(x, layout: _args.Layout, output_size, op: str):
    """``{axis: windows.adaptive(in, out)}`` after PyTorch's checks; ``None`` keeps a size."""
    n = layout.n
    if isinstance(output_size, Sequence) and len(output_size) != n:  # torch: no 1-tuple here
        raise ValueError(f"{op}: output_size must be an int or a tuple of {n} sizes, got {output_size!r}")
    # torch's 1-d adaptive pools take ints only; 2-d/3-d accept None ("keep this size")
    sizes = _args.int_tuple(output_size, n, "output_size", op, allow_none=n > 1)
    spatial = layout.spatial_shape(x)
    sizes = tuple(i if o is None else o for i, o in zip(spatial, sizes))
    if any(o < 0 for o in sizes):
        raise ValueError(f"{op}: output_size must be non-negative, got {sizes}")
    for o in sizes:  # before any table exists (docs/rules.md, "Table budget")
        windows.check_window_budget(op, "output_size", o)
    return {a: windows.adaptive(i, o) for a, i, o in zip(layout.spatial_axes, spatial, sizes)}


def unpool_tables(layout: _args.Layout, spatial, out_spatial, kernel, stride, padding) -> dict:
    """MaxUnpool's windows, indexed by *unpool input* position ``i``: the cells of the unpooled
    plane that ``i``'s index can address when the indices come from ``max_pool`` with the same
    kernel, stride and padding, ``[i*stride - padding, +kernel)``."""
    return {
        a: windows.AxisWindows(o, np.arange(i, dtype=np.int64) * s - p, np.full(i, k, np.int64), 1, p, o + p)
        for a, i, o, k, s, p in zip(layout.spatial_axes, spatial, out_spatial, kernel, stride, padding)
    }
def unpool_output_size(input_spatial, kernel, stride, padding, output_size, op: str,
                       channels_last: bool = False) -> tuple:
    """PyTorch's ``_unpool_output_size``.

    The default is ``(in - 1) * stride - 2 * padding + kernel`` per axis.  An explicit
    ``output_size`` may list the spatial sizes or the full ``(N, C, *spatial)`` shape
    (``(N, *spatial, C)`` with ``channels_last``), and each
    size must lie strictly between ``default - stride`` and ``default + stride``; that is how
    an odd size is recovered (65 -> max_pool k2 -> 32 -> unpool -> 65).  A size may be 0 (e.g.
    one input cell, kernel 2, padding 1): PyTorch then returns an empty output and checks no
    index; a negative size is an error.
    """
    n = len(kernel)
    default = tuple((i - 1) * s - 2 * p + k for i, k, s, p in zip(input_spatial, kernel, stride, padding))
    if output_size is None:
        sizes = default
    else:
        if isinstance(output_size, int) or not hasattr(output_size, "__len__"):
            raise TypeError(f"{op}: output_size must be a sequence of {n} or {n + 2} ints, got {output_size!r}")
        sizes = tuple(output_size)
        if len(sizes) == n + 2:  # a full shape: keep its spatial part
            sizes = sizes[1:-1] if channels_last else sizes[2:]
        if len(sizes) != n:
            raise ValueError(
                f"{op}: output_size must contain {n} or {n + 2} elements, got {len(tuple(output_size))}"
            )
        sizes = _args.int_tuple(sizes, n, "output_size", op)
        for d, (size, base, s) in enumerate(zip(sizes, default, stride)):
            if not base - s < size < base + s:
                raise ValueError(
                    f"{op}: invalid output_size {tuple(output_size)}: dim {d} must be strictly between "
                    f"{base - s} and {base + s} (the default (in - 1) * stride - 2 * padding + "
                    f"kernel_size = {base}, +- stride {s}; kernel_size={kernel}, stride={stride}, "
                    f"padding={padding})"
                )
    if any(size < 0 for size in sizes):
        raise ValueError(
            f"{op}: output size must be non-negative, got {sizes} (the default is (in - 1) * stride - "
            f"2 * padding + kernel_size with kernel_size={kernel}, stride={stride}, padding={padding})")
    return sizes
