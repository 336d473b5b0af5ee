"""Static window tables: which input cells every pooling output reads, per axis.

PyTorch's pooling operators are all *separable*: the window of an N-d output cell is the
Cartesian product of one 1-d window per spatial axis.  This module computes those 1-d windows
with numpy, from shapes and arguments alone, so they are constants at trace time and can be
printed, plotted and compared.  Every operator in jaxpool is "build tables here, then reduce
over them" (see :mod:`jaxpool._engine`).

A window is described by *taps*: output ``i`` reads input positions
``starts[i] + j * dilation`` for ``j < lengths[i]``.  A tap is *valid* when its position lies
inside ``[0, input_size)``; invalid taps stand for padding and never contribute.

>>> from jaxpool import windows
>>> w = windows.adaptive(5, 3)
>>> w.starts.tolist(), w.lengths.tolist()
([0, 1, 3], [2, 3, 2])
>>> windows.equivalent_fixed(5, 3) is None      # no kernel/stride reproduces 5 -> 3
True
>>> windows.equivalent_fixed(6, 3)              # 6 -> 3 is kernel 2, stride 2
(2, 2)
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

__all__ = [
    "AxisWindows",
    "pooling_output_size",
    "fixed",
    "adaptive",
    "adaptive_start",
    "adaptive_end",
    "equivalent_fixed",
]


@dataclasses.dataclass(frozen=True, eq=False)
class AxisWindows:
    """The windows of one spatial axis.

    Attributes:
      input_size: length of the input along this axis.
      starts: ``(out,)`` int64, position of each window's first tap (negative inside left padding).
      lengths: ``(out,)`` int64, number of taps of each window (padding taps included).
      dilation: distance between consecutive taps.
      padding: left padding (used only for ``count_include_pad`` divisors).
      pad_end: position where the right padding ends (``input_size + padding`` for fixed pools).
    """

    input_size: int
    starts: np.ndarray
    lengths: np.ndarray
    dilation: int = 1
    padding: int = 0
    pad_end: int | None = None

    @property
    def output_size(self) -> int:
        return int(self.starts.shape[0])

    @property
    def max_length(self) -> int:
        """Number of taps the widest window has (the loop bound of a tap-wise reduction)."""
        return int(self.lengths.max()) if self.output_size else 0

    @functools.cached_property
    def positions(self) -> np.ndarray:
        """``(out, max_length)`` input position of every tap (may lie outside the input)."""
        taps = np.arange(self.max_length, dtype=np.int64)
        return self.starts[:, None] + taps[None, :] * self.dilation

    @functools.cached_property
    def valid(self) -> np.ndarray:
        """``(out, max_length)`` True where the tap exists and lies inside the input."""
        taps = np.arange(self.max_length, dtype=np.int64)
        pos = self.positions
        return (taps[None, :] < self.lengths[:, None]) & (pos >= 0) & (pos < self.input_size)

    @functools.cached_property
    def inside_counts(self) -> np.ndarray:
        """``(out,)`` number of valid taps of each window."""
        return self.valid.sum(axis=1).astype(np.int64)

    @functools.cached_property
    def padded_counts(self) -> np.ndarray:
        """``(out,)`` window size counted up to the end of the right padding.

        PyTorch's ``count_include_pad`` divisor: ``min(start + kernel, input + padding) - start``.
        A ``ceil_mode`` window that hangs past the right padding is cut there.
        """
        end = self.starts + self.lengths * self.dilation
        pad_end = self.input_size if self.pad_end is None else self.pad_end
        return (np.minimum(end, pad_end) - self.starts).astype(np.int64)

    def uniform_stride(self) -> int | None:
        """The stride if all windows have the same length and evenly spaced starts, else None."""
        n = self.output_size
        if n == 0 or np.any(self.lengths != self.lengths[0]):
            return None
        if n == 1:
            return 1
        steps = np.diff(self.starts)
        return int(steps[0]) if np.all(steps == steps[0]) and steps[0] > 0 else None

    def describe(self) -> list[tuple[int, int]]:
        """``[(first, stop), ...]``: each window's input range, clipped to the input."""
        first = np.maximum(self.starts, 0)
        stop = np.minimum(self.starts + (self.lengths - 1) * self.dilation + 1, self.input_size)
        return [(int(a), int(b)) for a, b in zip(first, stop)]


def pooling_output_size(
    input_size: int, kernel_size: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's ``pooling_output_shape`` (aten/src/ATen/native/Pool.h).

    ``out = floor_or_ceil((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1``; in ``ceil_mode``
    the last window is dropped if it would start inside the right padding, i.e. every window
    must start inside the input or the left padding.
    """
    span = input_size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # // rounds down, as div_rtn
    if ceil_mode and (out - 1) * stride >= input_size + padding:
        out -= 1
    return int(out)


@functools.lru_cache(maxsize=4096)
def fixed(
    input_size: int,
    kernel_size: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> AxisWindows:
    """Windows of max/avg/LP pooling along one axis: output ``i`` starts at ``i*stride - padding``."""
    out = max(pooling_output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode), 0)
    starts = np.arange(out, dtype=np.int64) * stride - padding
    lengths = np.full(out, kernel_size, dtype=np.int64)
    return _frozen(AxisWindows(input_size, starts, lengths, dilation, padding, input_size + padding))


def adaptive_start(i, input_size: int, output_size: int):
    """PyTorch's ``start_index``: ``floor(i * in / out)`` (aten/src/ATen/native/AdaptivePooling.h)."""
    return (np.asarray(i, dtype=np.int64) * input_size) // output_size


def adaptive_end(i, input_size: int, output_size: int):
    """PyTorch's ``end_index``: ``ceil((i + 1) * in / out)``."""
    return -((-(np.asarray(i, dtype=np.int64) + 1) * input_size) // output_size)


@functools.lru_cache(maxsize=4096)
def adaptive(input_size: int, output_size: int) -> AxisWindows:
    """Windows of adaptive pooling: ``[floor(i*in/out), ceil((i+1)*in/out))``.

    Windows vary in length and overlap when ``in`` is not a multiple of ``out``; when
    ``out > in`` each input cell is read by several outputs (upsampling).
    """
    i = np.arange(output_size, dtype=np.int64)
    starts = adaptive_start(i, input_size, output_size)
    lengths = adaptive_end(i, input_size, output_size) - starts
    return _frozen(AxisWindows(input_size, starts, lengths))


def equivalent_fixed(input_size: int, output_size: int) -> tuple[int, int] | None:
    """``(kernel_size, stride)`` of a plain pool (no padding) with the same windows, or None.

    This answers "is AdaptiveAvgPool(out) just AvgPool(kernel, stride) here?": it is exactly
    when all adaptive windows have one length and evenly spaced starts, e.g. whenever ``in`` is
    a multiple of ``out`` (kernel = stride = in // out).
    """
    w = adaptive(input_size, output_size)
    stride = w.uniform_stride()
    if stride is None:
        return None
    return int(w.lengths[0]), stride


def _frozen(w: AxisWindows) -> AxisWindows:
    """Make the cached table's arrays read-only, so no caller can corrupt the cache."""
    w.starts.setflags(write=False)
    w.lengths.setflags(write=False)
    return w
