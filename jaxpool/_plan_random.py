"""The plan stage of the randomized families: fractional max pooling and stochastic pooling.

Their arguments are checked and their plans built here, beside :mod:`jaxpool.plan` (which they
use: one :class:`~jaxpool.plan.Plan` type, one :func:`~jaxpool.plan.recording`), so that
``jaxpool explain --plan`` and :func:`jaxpool.windows.op_windows` read them as they read every
other operator's.  What is random is data at run time: fractional pooling's windows (one set
per plane, drawn from its samples: the plan holds their rule,
:class:`~jaxpool.windows.DrawnWindows`) and stochastic pooling's pick inside each fixed window.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import jax
import numpy as np

from jaxpool import _args, plan
from jaxpool.windows import DrawnWindows

__all__ = ["fractional_max_pool", "stochastic_pool", "sample_axes", "fractional_output_size"]

# One route each, on every platform: the windows (fractional) or the pick (stochastic) are data,
# so there is no static table for a platform's tactic to specialise on.
FRACTIONAL_ROUTE = ("one route, as the windows are data; per axis: the window starts computed from the "
                    "samples (traced), the taps gathered at them and folded by PyTorch's scan rule "
                    "(val > max or isnan(val)); the values read at the chosen flat index with one gather, "
                    "whose gradient is one scatter-add")
SAMPLING_ROUTE = ("one route, as the pick is data: taps as strided slices of the padded input; per window "
                  "one uniform draw inverted through the row-major running sum of max(a, 0) (1 per cell "
                  "when none is positive); the gradient goes to the picked cell")


def sample_axes(ndim: int) -> tuple[int, ...]:
    """Column of ``_random_samples`` that drives each spatial axis (PyTorch: 2-d is (W, H))."""
    return (1, 0) if ndim == 2 else tuple(range(ndim))


def fractional_max_pool(x, layout: _args.Layout, op: str, kernel_size, output_size, output_ratio,
                        return_indices, samples, key) -> plan.Plan:
    """Plan of ``fractional_max_pool{2,3}d`` (rules in :mod:`jaxpool.fractional`).

    PyTorch's checks: ``kernel_size`` positive; the output size given or ``int(in * ratio)``;
    2-d: ``out + k - 1 <= in``, 3-d: ``out + k - 1 < in`` (its check is strict);
    ``_random_samples`` of shape ``(>= N, C, ndim)`` in the input's dtype, or a ``key``.  The
    flat gather reads the plane by index, so the plane size must fit the index type.
    """
    n = layout.n
    # torch's Python fractional_max_pool: kernel_size and output_size an int or exactly n ints
    kernel = _args.positive(_args.int_tuple(kernel_size, n, "kernel_size", op, one_for_all=False),
                            "kernel_size", op)
    spatial = layout.spatial_shape(x)
    out = fractional_output_size(spatial, output_size, output_ratio, n, op)
    names = ("height", "width") if n == 2 else ("time", "height", "width")
    for name, i, o, k in zip(names, spatial, out, kernel):
        if not (o + k - 1 <= i if n == 2 else o + k - 1 < i):
            rule = "output_size + kernel_size - 1 <= input size" if n == 2 else \
                "output_size + kernel_size - 1 < input size (PyTorch's 3-d check is strict)"
            raise ValueError(
                f"{op}: kernel_size {k} is too large for input {name} {i} with output size {o}: "
                f"{rule} is required (got {o} + {k} - 1 vs {i})"
            )
    if not isinstance(return_indices, bool):
        raise TypeError(f"{op}: return_indices must be a bool, got {return_indices!r}")
    shape = layout.batch_shape(x.shape)
    _check_samples(samples, key, shape[0], shape[layout.channel_axis], layout.batched, x.dtype, n, op)
    index_dtype = _args.index_dtype(spatial, op, size_too=True)  # the flat gather's bound
    dtype = np.dtype(x.dtype).name
    tables = {a: DrawnWindows(i, o, k, c, dtype)
              for a, i, o, k, c in zip(layout.spatial_axes, spatial, out, kernel, sample_axes(n))}
    arguments = {"kernel_size": kernel, "output_size": out}
    if output_ratio is not None:
        arguments["output_ratio"] = output_ratio
    arguments["return_indices"] = return_indices
    source = ("_random_samples[:N], as given" if samples is not None else
              f"jax.random.uniform(key, (N, C, {n}), {dtype})")
    empty = 0 in out or 0 in shape  # an empty output size or batch
    routes = (("every platform", "empty output: zeros, nothing is reduced" if empty else FRACTIONAL_ROUTE),)
    return plan.make(op, "max", x, layout, tables, index_dtype=index_dtype, arguments=arguments,
                     routes=routes, rule=f"windows drawn per (N, C) plane from its samples: {source}")


def fractional_output_size(spatial, output_size, output_ratio, ndim: int, op: str) -> tuple[int, ...]:
    """``output_size``, or ``int(in * ratio)`` per axis (Python's float product, truncated; may
    be 0).  Beyond the functional, as ``torch.nn.FractionalMaxPool2d``: exactly one of the two,
    and every ratio in ``(0, 1)``."""
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


def _check_samples(samples, key, batch: int, channels: int, batched: bool, dtype, ndim: int, op: str):
    """``_random_samples`` of shape ``(>= batch, C, ndim)`` (row 0 for an unbatched input) in
    the input's dtype, or, without them, a ``key`` to draw them from."""
    if samples is None:
        if key is None:
            raise ValueError(
                f"{op}: pass either _random_samples (shape (N, C, {ndim}), values in [0, 1)) or "
                "key (a jax.random key) to draw them; jaxpool keeps no global random state"
            )
        _check_key(key, op)
        return
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


def _check_key(key, op: str) -> None:
    if not isinstance(key, jax.Array):
        raise TypeError(f"{op}: key must be a jax.random key array, got {type(key).__name__}")


def stochastic_pool(x, layout: _args.Layout, op: str, kernel_size, stride, padding, training,
                    key) -> plan.Plan:
    """Plan of ``stochastic_pool`` (rules in :mod:`jaxpool.stochastic`): ``max_pool``'s windows
    without dilation or ``ceil_mode``.  Training samples one tap per window (``reduction
    "sample"``, a ``key`` required); evaluation is three window sums on the routes of
    ``avg_pool`` (``reduction "sum"``)."""
    tables, arguments = plan.fixed_windows(x, layout, op, kernel_size, stride, padding, 1, False)
    del arguments["dilation"], arguments["ceil_mode"]
    if not isinstance(training, bool):
        raise TypeError(f"{op}: training must be a bool, got {training!r}")
    arguments["training"] = training
    if not training:
        return plan.make(op, "sum", x, layout, tables, arguments=arguments,
                         rule="expectation of the pick: sum(w**2) / sum(w) with w = max(a, 0), the mean of "
                              "the window's input cells where no cell is positive, NaN where sum(w) is not "
                              "finite; the three window sums (w, w**2, a) on the routes below")
    if key is None:
        raise ValueError(f"{op}: training=True needs key= (a jax.random key); jaxpool keeps no global random state")
    _check_key(key, op)
    out = [w.output_size for w in tables.values()]
    return plan.make(op, "sample", x, layout, tables, arguments=arguments,
                     routes=(("every platform", SAMPLING_ROUTE),),
                     rule=f"one cell per window, picked with probability max(a, 0) / sum(max(a, 0)) by "
                          f"jax.random.uniform(key, (N, C, {', '.join(map(str, out))})), in (N, C, ...) "
                          "order whatever the layout")
