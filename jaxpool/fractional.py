"""Fractional max pooling (Graham, 2015) with PyTorch's exact pseudo-random windows.

Given the same ``_random_samples`` (shape ``(N, C, ndim)``, values in ``[0, 1)``, the input's
dtype), :func:`fractional_max_pool` returns the same values, indices and gradients as
``torch.nn.functional.fractional_max_pool{2,3}d``.  Without samples they are drawn from an
explicit ``key`` with :func:`jax.random.uniform`; there is no hidden global random state.

PyTorch's rules reproduced (aten/src/ATen/native/FractionalMaxPool2d.cpp, FractionalMaxPool3d.cpp,
FractionalMaxPooling.h and ``torch.nn.functional.fractional_max_pool2d``):

* **Windows.**  Along an axis of input size ``in``, output size ``out`` and kernel ``k``, window
  ``i`` covers ``[start_i, start_i + k)`` with (``generate_intervals``)::

      alpha   = T(in - k) / T(out - 1)                      # T: the input's scalar type
      start_i = int((T(i) + u) * alpha) - int(u * alpha)    # i < out - 1; int() truncates
      start_{out-1} = in - k                                # the last window ends at the input's end

  where ``u`` is the plane's sample for that axis and every operation is rounded to ``T``: for
  float16/bfloat16 each sum, product and quotient is rounded to half precision (c10's ``Half`` and
  ``BFloat16`` compute in float and round after every operation; here that is
  ``lax.reduce_precision`` after each float32 op, which XLA cannot fuse away), float32 in float32,
  float64 in float64.  ``out == 1`` gives the single window ``[in - k, in)``.
* **Which sample drives which axis.**  2-d: ``samples[n, c, 0]`` drives the *width* (last) axis and
  ``samples[n, c, 1]`` the height; 3-d: ``samples[n, c, 0/1/2]`` drive T/H/W in order.  An input
  batch of ``N`` uses ``samples[:N]`` (more rows are allowed); an unbatched ``(C, *spatial)``
  input takes samples of shape ``(>= 1, C, ndim)`` and uses row 0, as PyTorch.
* **Output size.**  ``output_size`` directly, or from ``output_ratio`` as
  ``int(input_size * ratio)`` (Python float product, truncated), which may be 0 (empty output, as
  PyTorch).  Fit: 2-d requires ``out + k - 1 <= in``; 3-d requires ``out + k - 1 < in``
  (PyTorch's 3-d check is strict, so a 3-d kernel as large as the input is rejected).
* **Max.**  Each window is scanned in row-major order from ``max = -inf`` with the index of the
  window's first cell, taking a cell when ``val > max || isnan(val)``: the first maximum wins
  ties, the *last* NaN wins, and a window of ``-inf`` reports its first cell.  Indices are flat
  offsets into the input plane (``h * W + w``), int64 under x64 else int32.  The gradient is
  scattered to the indexed cells (summed where windows overlap).

Beyond PyTorch (stricter, documented): exactly one of ``output_size``/``output_ratio`` and a ratio
in ``(0, 1)`` are required, as ``torch.nn.FractionalMaxPool2d`` demands (the functional silently
prefers ``output_size`` and accepts any ratio); ``kernel_size`` must be positive (PyTorch returns
``-inf`` for empty windows); a scalar 2-d ``output_ratio`` is accepted (the functional raises a
``TypeError`` on ``len(float)``).  Samples are traced values, so their range cannot be checked at
trace time: PyTorch reads outside the plane for samples outside ``[0, 1]``; here window starts are
clamped into ``[0, in - k]`` so no read ever leaves the input.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _args, _execute, _taps

# (exponent bits, mantissa bits) of the types whose every operation must be rounded explicitly.
_HALF_PRECISION = {"float16": (5, 10), "bfloat16": (8, 7)}


def sample_axes(ndim: int) -> tuple[int, ...]:
    """Column of ``_random_samples`` that drives each spatial axis (PyTorch: 2-d is (W, H))."""
    return (1, 0) if ndim == 2 else tuple(range(ndim))


def interval_starts(samples, input_size: int, output_size: int, kernel: int, dtype) -> jax.Array:
    """PyTorch's ``generate_intervals`` for every plane at once.

    ``samples``: array of any shape holding one sample per plane (in ``dtype``).  Returns int32
    starts (int64 for an input of 2**31 cells or more, which needs x64) of shape
    ``samples.shape + (output_size,)``, computed in ``dtype`` as PyTorch does and clamped into
    ``[0, input_size - kernel]``.
    """
    dtype = np.dtype(dtype)
    last = input_size - kernel
    shape = tuple(samples.shape)
    int_dtype = _start_dtype(input_size)
    if output_size == 0:
        return jnp.zeros(shape + (0,), int_dtype)
    if output_size == 1:
        return jnp.full(shape + (1,), last, int_dtype)
    half = _HALF_PRECISION.get(dtype.name)
    compute = np.float64 if dtype == np.float64 else np.float32

    def rounded(v):
        return v if half is None else lax.reduce_precision(v, *half)

    # Static parts, rounded to the scalar type exactly as c10 does (numpy's float16 and
    # ml_dtypes' bfloat16 also compute in float32 and round once).
    alpha = np.asarray(last, dtype) / np.asarray(output_size - 1, dtype)
    alpha = np.asarray(alpha, dtype).astype(compute)
    i = np.arange(output_size - 1).astype(dtype).astype(compute)
    u = samples.astype(compute)[..., None]
    scaled = rounded(rounded(i + u) * alpha)
    offset = rounded(u * alpha)
    starts = scaled.astype(int_dtype) - offset.astype(int_dtype)  # C++ int(): truncation
    starts = jnp.concatenate([starts, jnp.full(shape + (1,), last, int_dtype)], axis=-1)
    return jnp.clip(starts, 0, last)


def _start_dtype(input_size: int):
    """int32 while every position along the axis fits, else int64 (int32 wraps negative)."""
    if input_size <= np.iinfo(np.int32).max:
        return jnp.int32
    if not jax.config.jax_enable_x64:
        raise ValueError(f"an axis of {input_size} cells needs 64-bit positions: enable jax_enable_x64")
    return jnp.int64


def fractional_max_pool(input, kernel_size, output_size=None, output_ratio=None,
                        return_indices=False, _random_samples=None, *, ndim: int, key=None,
                        channels_last: bool = False):
    """Fractional max pooling, as ``torch.nn.functional.fractional_max_pool{ndim}d``.

    Args:
      input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, floating; with
        ``channels_last=True``, ``(N, *spatial, C)`` or ``(*spatial, C)``.
      kernel_size: window size, an int or one per spatial axis.
      output_size: output spatial size (int or tuple); or
      output_ratio: output size as a fraction of the input, in ``(0, 1)`` (float or tuple).
      return_indices: also return flat in-plane indices (for ``max_unpool``).
      _random_samples: ``(N', C, ndim)`` samples in ``[0, 1)`` with ``N' >= N`` (``N = 1`` for
        an unbatched input), the input's dtype; PyTorch's argument of the same name.
      key: a :func:`jax.random.key` (or ``PRNGKey``) used to draw the samples, shape
        ``(N, C, ndim)`` with ``jax.random.uniform``, when ``_random_samples`` is not given;
        ignored when it is.  One of the two is required.

    See the module docstring for the window, index, NaN and validation rules.
    """
    op = f"fractional_max_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op)
    # torch's Python fractional_max_pool: kernel_size and output_size an int or exactly ndim ints
    kernel = _args.positive(_args.int_tuple(kernel_size, ndim, "kernel_size", op, one_for_all=False),
                            "kernel_size", op)
    spatial = layout.spatial_shape(input)
    out = _output_size(spatial, output_size, output_ratio, ndim, op)
    for name, i, o, k in zip(_axis_names(ndim), spatial, out, kernel):
        if not (o + k - 1 <= i if ndim == 2 else o + k - 1 < i):
            rule = "output_size + kernel_size - 1 <= input size" if ndim == 2 else \
                "output_size + kernel_size - 1 < input size (PyTorch's 3-d check is strict)"
            raise ValueError(
                f"{op}: kernel_size {k} is too large for input {name} {i} with output size {o}: "
                f"{rule} is required (got {o} + {k} - 1 vs {i})"
            )
    if not isinstance(return_indices, bool):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    x = layout.batch(input)
    batch, channels = x.shape[0], x.shape[layout.channel_axis]
    samples = _samples(_random_samples, key, batch, channels, layout.batched, x.dtype, ndim, op)
    index_dtype = _args.index_dtype(spatial, op, size_too=True)  # the flat gather's bound

    out_shape = list(x.shape)
    for axis, o in zip(layout.spatial_axes, out):
        out_shape[axis] = o
    if 0 in out_shape:
        empty = jnp.zeros(out_shape, x.dtype)
        values, indices = empty, empty.astype(index_dtype)
    else:
        indices = _window_max(x, layout, spatial, samples, kernel, out, index_dtype)[1]
        values = _gather_plane(x, layout, indices)
    if return_indices:
        return layout.unbatch(values), layout.unbatch(indices)
    return layout.unbatch(values)


def _axis_names(ndim: int) -> tuple[str, ...]:
    return ("height", "width") if ndim == 2 else ("time", "height", "width")


def _output_size(spatial, output_size, output_ratio, ndim: int, op: str) -> tuple[int, ...]:
    if (output_size is None) == (output_ratio is None):
        raise ValueError(
            f"{op}: exactly one of output_size and output_ratio must be given, got "
            f"output_size={output_size!r} and output_ratio={output_ratio!r}"
        )
    if output_size is not None:
        sizes = _args.int_tuple(output_size, ndim, "output_size", op, one_for_all=False)
        return _args.non_negative(sizes, "output_size", op)
    sequence = isinstance(output_ratio, Sequence) and not isinstance(output_ratio, str)
    ratios = tuple(output_ratio) if sequence else (output_ratio,) * ndim
    if len(ratios) != ndim:  # torch indexes ndim ratios (its 3-d op ignores any further ones)
        raise ValueError(f"{op}: output_ratio must be a number or a tuple of exactly {ndim} numbers, "
                         f"got {output_ratio!r}")
    for r in ratios:
        if isinstance(r, bool) or not isinstance(r, numbers.Real):
            raise TypeError(f"{op}: output_ratio must contain numbers, got {r!r} in {output_ratio!r}")
        if not 0 < r < 1:
            raise ValueError(f"{op}: output_ratio must be between 0 and 1 (exclusive), got {output_ratio!r}")
    return tuple(int(i * float(r)) for i, r in zip(spatial, ratios))  # PyTorch: int(size * ratio)


def _samples(samples, key, batch: int, channels: int, batched: bool, dtype, ndim: int, op: str):
    """Validated ``(batch, C, ndim)`` samples: the given ones (first rows) or drawn from ``key``."""
    if samples is None:
        if key is None:
            raise ValueError(
                f"{op}: pass either _random_samples (shape (N, C, {ndim}), values in [0, 1)) or "
                "key (a jax.random key) to draw them; jaxpool keeps no global random state"
            )
        if not isinstance(key, jax.Array):
            raise TypeError(f"{op}: key must be a jax.random key array, got {type(key).__name__}")
        return jax.random.uniform(key, (batch, channels, ndim), dtype=dtype)
    _args.check_array(samples, "_random_samples", op)  # a torch tensor: say what to pass
    shape = tuple(samples.shape)
    if np.dtype(samples.dtype) != np.dtype(dtype):
        raise TypeError(
            f"{op}: _random_samples must have the input's dtype {np.dtype(dtype)}, got {np.dtype(samples.dtype)}"
        )
    if len(shape) != 3:
        raise ValueError(f"{op}: _random_samples must have 3 dimensions (N, C, {ndim}), got shape {shape}")
    needed = batch if batched else 1
    if shape[0] < needed:
        raise ValueError(
            f"{op}: _random_samples.shape[0] must be at least the input batch size {needed}, got shape {shape}"
        )
    if shape[1] != channels:
        raise ValueError(
            f"{op}: _random_samples.shape[1] must equal the input's channels {channels}, got shape {shape}"
        )
    if shape[2] != ndim:
        raise ValueError(f"{op}: _random_samples.shape[2] must be {ndim}, got shape {shape}")
    return jnp.asarray(samples)[:batch]


def _place(table: jax.Array, layout: _args.Layout, axis: int, ndim: int) -> jax.Array:
    """Move a ``(N, C, out, ...)`` table so N, C and out sit on the batch, channel and ``axis``."""
    extra = ndim - table.ndim
    table = table.reshape(table.shape + (1,) * extra)
    return jnp.moveaxis(table, (0, 1, 2), (0, layout.channel_axis, axis))


def _window_max(x, layout: _args.Layout, spatial, samples, kernel, out, index_dtype):
    """Max of every window and its flat in-plane index, axis by axis, without gradient.

    The windows are boxes, and PyTorch's row-major scan with ``val > max || isnan(val)`` picks
    the first maximum, or the last NaN; applying the same rule per axis (innermost first) picks
    the same cell (see :mod:`jaxpool._portable`).  Each axis gathers its ``(out, kernel)`` taps at
    the traced window starts and finds the winning tap with the engine's associative form of
    the rule.  The caller reads the values at the index with one gather (:func:`_gather_plane`),
    whose gradient is a single scatter-add, as PyTorch's backward (chaining the per-axis
    gathers' transposes instead was ~10x slower on CPU).
    """
    strides = layout.plane_strides(spatial)
    columns = sample_axes(layout.n)
    values, index = lax.stop_gradient(x), None
    for d in reversed(range(layout.n)):
        axis = layout.spatial_axes[d]
        starts = interval_starts(samples[:, :, columns[d]], spatial[d], out[d], kernel[d], x.dtype)
        positions = starts[..., None] + jnp.arange(kernel[d], dtype=starts.dtype)  # (N, C, out, k)
        flat = _place(positions.reshape(starts.shape[:2] + (-1,)), layout, axis, x.ndim)
        taps = jnp.take_along_axis(values, flat, axis=axis)  # (..., out * k, ...)
        split = taps.shape[:axis] + (out[d], kernel[d]) + taps.shape[axis + 1:]
        taps = taps.reshape(split)
        tap_no = lax.broadcasted_iota(jnp.int32, split, axis + 1)
        _, chosen = lax.reduce(
            (lax.stop_gradient(taps), tap_no), (_taps.lowest(taps.dtype), np.int32(kernel[d])),
            _taps.torch_argmax_combine, (axis + 1,),
        )
        values = jnp.squeeze(jnp.take_along_axis(taps, jnp.expand_dims(chosen, axis + 1), axis=axis + 1), axis + 1)
        if index_dtype is not None:  # input position of the chosen tap, then its flat index
            pos = _place(starts, layout, axis, x.ndim) + chosen
            index_here = pos.astype(index_dtype) * strides[axis]
            index = index_here if index is None else index_here + jnp.take_along_axis(index, pos, axis=axis)
    return values, index


def _gather_plane(x, layout: _args.Layout, index) -> jax.Array:
    """``x`` at flat in-plane ``index``; its gradient is one scatter-add to those cells, as PyTorch."""
    if layout.channels_last:
        flat_x = x.reshape(x.shape[0], -1, x.shape[-1])
        flat_i = index.reshape(index.shape[0], -1, index.shape[-1])
        return jnp.take_along_axis(flat_x, flat_i, axis=1).reshape(index.shape)
    flat_x = x.reshape(x.shape[0], x.shape[1], -1)
    flat_i = index.reshape(index.shape[0], index.shape[1], -1)
    return jnp.take_along_axis(flat_x, flat_i, axis=2).reshape(index.shape)
