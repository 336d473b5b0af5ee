"""Validated window tables of the fixed-kernel pools (max, avg, LP), one per spatial axis."""

from __future__ import annotations

import numpy as np

from jaxpool import _args, windows


def fixed_tables(x, layout: _args.Layout, op: str, kernel, stride, padding, dilation, ceil_mode):
    """Check PyTorch's argument rules and return ``{axis: AxisWindows}`` for every spatial axis.

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
    return tables
