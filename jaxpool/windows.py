"""Static window tables: which input cells every pooling output reads, per axis.

PyTorch's pooling operators are all *separable*: the window of an N-d output cell is the
Cartesian product of one 1-d window per spatial axis.  This module computes those 1-d windows
with numpy, from shapes and arguments alone, so they are constants at trace time and can be
printed, plotted and compared.  Every operator in jaxpool is "build tables here, then reduce
over them" (see docs/architecture.md).  This module is the bottom layer: numpy only, it
imports nothing of jaxpool.

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
import numbers

import numpy as np

__all__ = [
    "AxisWindows",
    "DrawnWindows",
    "pooling_output_size",
    "fixed",
    "adaptive",
    "adaptive_start",
    "adaptive_end",
    "equivalent_fixed",
    "op_windows",  # installed by jaxpool/__init__.py from jaxpool._explain (it traces the operator)
    "MAX_WINDOWS",
    "check_window_budget",
]

# The most windows one axis may have.  A table costs a few bytes per window (starts and lengths,
# int32 where they fit, and the per-window counts derived from them), and the engine's
# per-window work is of that order too: 2**28 windows are a few GiB of tables beside a 1 GiB
# float32 output per plane, which a 24 GiB machine holds.  Beyond it an operator raises a
# ValueError naming the argument before anything of that size is allocated.
MAX_WINDOWS = 2**28
# Sizes, kernels, strides, paddings and dilations are kept below this: every position and
# product of them is then exact in int64.
_MAX_ARGUMENT = 2**62


@dataclasses.dataclass(frozen=True, eq=False)
class AxisWindows:
    """The windows of one spatial axis.

    Attributes:
      input_size: length of the input along this axis.
      starts: ``(out,)`` position of each window's first tap (negative inside left padding);
        int32 when every value fits, else int64 (widen before arithmetic).
      lengths: ``(out,)`` number of taps of each window (padding taps included), int32 or int64.
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
        """``(out, max_length)`` input position of every tap (may lie outside the input).

        This table costs ``out * max_length``: the engine asks for it only on tables
        :meth:`trimmed` to the taps that some window has in bounds, and only for routes
        whose tap count is bounded (see :mod:`jaxpool._portable`).
        """
        taps = np.arange(self.max_length, dtype=np.int64)
        return _read_only(self.starts.astype(np.int64)[:, None] + taps[None, :] * self.dilation)

    @functools.cached_property
    def valid(self) -> np.ndarray:
        """``(out, max_length)`` True where the tap exists and lies inside the input."""
        taps = np.arange(self.max_length, dtype=np.int64)
        inside = (taps[None, :] >= self.first_taps[:, None]) & (taps[None, :] <= self.last_taps[:, None])
        return _read_only(inside)

    @functools.cached_property
    def first_taps(self) -> np.ndarray:
        """``(out,)`` int64: number of each window's first in-bounds tap, in closed form.

        Tap ``j`` lies at ``start + j * dilation``; it is in bounds from
        ``j = ceil(-start / dilation)`` on (0 for a window starting inside the input).  A
        window with no in-bounds tap (:attr:`inside_counts` 0) has ``first > last``.
        """
        starts = self.starts.astype(np.int64)
        return _read_only(np.maximum(0, -(starts // self.dilation)))

    @functools.cached_property
    def last_taps(self) -> np.ndarray:
        """``(out,)`` int64: number of each window's last in-bounds tap (``-1`` or less, or
        below :attr:`first_taps`, when the window has none): the window's last tap, or
        ``floor((input_size - 1 - start) / dilation)`` where the input ends first."""
        starts = self.starts.astype(np.int64)
        last = np.minimum(self.lengths.astype(np.int64) - 1, (self.input_size - 1 - starts) // self.dilation)
        return _read_only(last)

    @functools.cached_property
    def inside_counts(self) -> np.ndarray:
        """``(out,)`` number of valid taps of each window: O(out), from :attr:`first_taps`
        and :attr:`last_taps`, never from the ``(out, max_length)`` tables."""
        return _read_only(np.maximum(self.last_taps - self.first_taps + 1, 0))

    @functools.cached_property
    def padded_counts(self) -> np.ndarray:
        """``(out,)`` window size counted up to the end of the right padding.

        PyTorch's ``count_include_pad`` divisor: ``min(start + kernel, input + padding) - start``.
        A ``ceil_mode`` window that hangs past the right padding is cut there.
        """
        starts = self.starts.astype(np.int64)
        end = starts + self.lengths.astype(np.int64) * self.dilation
        pad_end = self.input_size if self.pad_end is None else self.pad_end
        return _read_only(np.minimum(end, pad_end) - starts)

    def trimmed(self) -> AxisWindows:
        """The same windows without the taps that are out of bounds in *every* window.

        Such a tap carries nothing: padding never wins a max (every window takes its first
        in-bounds cell first) and adds zero to a sum.  The tables keep ``starts + j * dilation``
        as the position of tap ``j``, so the starts move to the first useful tap and the
        lengths stop after the last one; indices derived from them are unchanged.  A window
        of ``2**27`` taps over 4 cells keeps 4 taps, as PyTorch's loops visit only in-bounds
        cells.  ``count_include_pad`` divisors come from the untrimmed table
        (:attr:`padded_counts`); the trimmed one is for the engine.  Returns ``self`` when no
        tap can be dropped, so routes and caches keyed on the table are unchanged.
        """
        return self._trimmed

    @functools.cached_property
    def _trimmed(self) -> AxisWindows:
        reads = self.inside_counts > 0
        if self.output_size == 0 or not reads.any():
            return self
        first = int(self.first_taps[reads].min())
        stop = int(self.last_taps[reads].max()) + 1
        if first == 0 and stop >= self.max_length:
            return self
        starts = self.starts.astype(np.int64) + first * self.dilation
        lengths = np.clip(np.minimum(self.lengths.astype(np.int64), stop) - first, 0, None)
        return _frozen(AxisWindows(self.input_size, _compact(starts), _compact(lengths), self.dilation,
                                   self.padding, self.pad_end))

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
        starts = self.starts.astype(np.int64)
        first = np.maximum(starts, 0)
        stop = np.minimum(starts + (self.lengths.astype(np.int64) - 1) * self.dilation + 1, self.input_size)
        return [(int(a), int(b)) for a, b in zip(first, stop)]


@dataclasses.dataclass(frozen=True)
class DrawnWindows:
    """The rule of one axis of fractional max pooling, whose windows are drawn per plane.

    PyTorch's ``generate_intervals`` (aten/src/ATen/native/FractionalMaxPool2d.cpp): with the
    plane's sample ``u`` for this axis, window ``i < out - 1`` covers ``kernel`` cells from
    ``int((i + u) * alpha) - int(u * alpha)``, ``alpha = (in - kernel) / (out - 1)``, every
    operation rounded to ``dtype``; the last window starts at ``in - kernel``.  The starts are
    data (one ``u`` per plane), so the plan holds this rule and the static sizes; the executor
    (:mod:`jaxpool._drawn_max`) computes the starts from the samples, and :meth:`table` turns
    one plane's starts into its :class:`AxisWindows`.

    Attributes:
      input_size, output_size, kernel: the axis' sizes (``out + kernel - 1 <= in``).
      sample: the column of ``_random_samples`` (``samples[n, c, sample]``) that drives the axis.
      dtype: the scalar type the rule is computed in (the input's).
    """

    input_size: int
    output_size: int
    kernel: int
    sample: int
    dtype: str

    @property
    def last_start(self) -> int:
        """Where the last window starts (``in - kernel``), the bound every start is clamped to."""
        return self.input_size - self.kernel

    def table(self, starts) -> AxisWindows:
        """One plane's windows: ``kernel`` cells from each of ``starts``."""
        starts = np.asarray(starts, np.int64).reshape(self.output_size)
        return _frozen(AxisWindows(self.input_size, _compact(starts),
                                   _compact(np.full(self.output_size, self.kernel, np.int64))))

    def describe(self) -> str:
        """The rule in one line, with this axis' numbers."""
        head = f"{self.input_size} -> {self.output_size} windows of {self.kernel} taps"
        if self.output_size < 2:
            return head + (": none" if self.output_size == 0 else f" from {self.last_start} (the last cells)")
        return (f"{head} drawn per plane from u = samples[n, c, {self.sample}]: window i < {self.output_size - 1} "
                f"from int((i + u) * alpha) - int(u * alpha), alpha = ({self.input_size} - {self.kernel}) / "
                f"({self.output_size} - 1) in {self.dtype}; the last from {self.last_start}")


def pooling_output_size(
    input_size: int, kernel_size: int, stride: int, padding: int, dilation: int, ceil_mode: bool
) -> int:
    """PyTorch's ``pooling_output_shape`` (aten/src/ATen/native/Pool.h).

    ``out = floor_or_ceil((in + 2*pad - dilation*(kernel-1) - 1) / stride) + 1``; in ``ceil_mode``
    the last window is dropped if it would start inside the right padding, i.e. every window
    must start inside the input or the left padding.  Arguments are checked as by
    :func:`fixed` (``TypeError``/``ValueError`` naming the argument).
    """
    input_size, kernel_size, stride, padding, dilation, ceil_mode = _fixed_arguments(
        "pooling_output_size", input_size, kernel_size, stride, padding, dilation, ceil_mode)
    return _output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode)


def _output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode) -> int:
    span = input_size + 2 * padding - dilation * (kernel_size - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1  # // rounds down, as div_rtn
    if ceil_mode and (out - 1) * stride >= input_size + padding:
        out -= 1
    return int(out)


def _integer(value, name: str, where: str, low: int) -> int:
    """``value`` as a Python int in ``[low, 2**62)``, else a TypeError/ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{where}: {name} must be an int, got {value!r}")
    value = int(value)
    if value < low:
        rule = "greater than zero" if low == 1 else "non-negative"
        raise ValueError(f"{where}: {name} must be {rule}, got {value}")
    if value >= _MAX_ARGUMENT:
        raise ValueError(f"{where}: {name} must be below 2**62, got {value}")
    return value


def _fixed_arguments(where, input_size, kernel_size, stride, padding, dilation, ceil_mode):
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"{where}: ceil_mode must be a bool, got {ceil_mode!r}")
    return (_integer(input_size, "input_size", where, 0), _integer(kernel_size, "kernel_size", where, 1),
            _integer(stride, "stride", where, 1), _integer(padding, "padding", where, 0),
            _integer(dilation, "dilation", where, 1), bool(ceil_mode))


def check_window_budget(op: str, name: str, output_size: int) -> None:
    """Refuse, before any table is built, an axis with more than :data:`MAX_WINDOWS` windows.

    ``name`` is the argument that sets the size (``output_size`` for adaptive pools; the
    input size and kernel arguments for the fixed ones).
    """
    if output_size > MAX_WINDOWS:
        raise ValueError(
            f"{op}: {name} gives {output_size} windows along one axis, more than jaxpool's table "
            f"budget of {MAX_WINDOWS} (2**28) per axis; the window tables alone would need "
            f"gigabytes (docs/rules.md, 'Table budget')"
        )


def fixed(
    input_size: int,
    kernel_size: int,
    stride: int,
    padding: int = 0,
    dilation: int = 1,
    ceil_mode: bool = False,
) -> AxisWindows:
    """Windows of max/avg/LP pooling along one axis: output ``i`` starts at ``i*stride - padding``.

    Arguments are ints (``kernel_size``, ``stride``, ``dilation`` positive; ``input_size``,
    ``padding`` non-negative), else a ``TypeError``/``ValueError`` naming the argument; an
    axis of more than :data:`MAX_WINDOWS` windows is a ``ValueError``.  Tables are cached and
    read-only.
    """
    args = _fixed_arguments("windows.fixed", input_size, kernel_size, stride, padding, dilation, ceil_mode)
    check_window_budget("windows.fixed", "input_size", _output_size(*args))
    return _fixed_cached(*args)


@functools.lru_cache(maxsize=4096)
def _fixed_cached(input_size, kernel_size, stride, padding, dilation, ceil_mode) -> AxisWindows:
    out = max(_output_size(input_size, kernel_size, stride, padding, dilation, ceil_mode), 0)
    starts = np.arange(out, dtype=np.int64) * stride - padding
    lengths = np.full(out, kernel_size, dtype=np.int64)
    return _frozen(AxisWindows(input_size, _compact(starts), _compact(lengths), dilation, padding,
                               input_size + padding))


def adaptive_start(i, input_size: int, output_size: int):
    """PyTorch's ``start_index``: ``floor(i * in / out)`` (aten/src/ATen/native/AdaptivePooling.h)."""
    return (np.asarray(i, dtype=np.int64) * input_size) // output_size


def adaptive_end(i, input_size: int, output_size: int):
    """PyTorch's ``end_index``: ``ceil((i + 1) * in / out)``."""
    return -((-(np.asarray(i, dtype=np.int64) + 1) * input_size) // output_size)


def adaptive(input_size: int, output_size: int) -> AxisWindows:
    """Windows of adaptive pooling: ``[floor(i*in/out), ceil((i+1)*in/out))``.

    Windows vary in length and overlap when ``in`` is not a multiple of ``out``; when
    ``out > in`` each input cell is read by several outputs (upsampling).  Both sizes are
    non-negative ints (else a ``TypeError``/``ValueError`` naming the argument), and
    ``output_size`` is at most :data:`MAX_WINDOWS`.  Tables are cached and read-only.
    """
    input_size = _integer(input_size, "input_size", "windows.adaptive", 0)
    output_size = _integer(output_size, "output_size", "windows.adaptive", 0)
    check_window_budget("windows.adaptive", "output_size", output_size)
    return _adaptive_cached(input_size, output_size)


@functools.lru_cache(maxsize=4096)
def _adaptive_cached(input_size: int, output_size: int) -> AxisWindows:
    i = np.arange(output_size, dtype=np.int64)
    starts = adaptive_start(i, input_size, output_size)
    lengths = adaptive_end(i, input_size, output_size) - starts
    return _frozen(AxisWindows(input_size, _compact(starts), _compact(lengths)))


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
    """Make the cached table's arrays read-only, so no caller can corrupt the cache (the derived
    tables are read-only too, see :func:`_read_only`)."""
    w.starts.setflags(write=False)
    w.lengths.setflags(write=False)
    return w


def _read_only(a: np.ndarray) -> np.ndarray:
    """``a``, made read-only: every derived table is cached on its (cached) AxisWindows."""
    a.setflags(write=False)
    return a


def _compact(a: np.ndarray) -> np.ndarray:
    """``a`` as int32 where every value fits (half the memory of a huge table), else int64.

    Arithmetic on the tables widens to int64 first (see the properties of AxisWindows)."""
    if a.size == 0 or (int(a.min()) >= -(2**31) and int(a.max()) < 2**31):
        return a.astype(np.int32)
    return a
