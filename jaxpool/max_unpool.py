"""MaxUnpool: put each value back at the flat in-plane index max pooling recorded."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxpool import _args, _bind


def unpool_output_size(input_spatial, kernel, stride, padding, output_size, op: str) -> tuple:
    """PyTorch's ``_unpool_output_size``.

    The default is ``(in - 1) * stride - 2 * padding + kernel`` per axis.  An explicit
    ``output_size`` may list the spatial sizes or the full ``(N, C, *spatial)`` shape, and each
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
        if len(sizes) == n + 2:
            sizes = sizes[2:]
        if len(sizes) != n:
            raise ValueError(
                f"{op}: output_size must contain {n} or {n + 2} elements, got {len(tuple(output_size))}"
            )
        sizes = _args.int_tuple(sizes, n, "output_size", op)
        for d, (size, base, s) in enumerate(zip(sizes, default, stride)):
            if not base - s < size < base + s:
                raise ValueError(
                    f"{op}: invalid output_size {tuple(output_size)}: dim {d} must be strictly between "
                    f"{base - s} and {base + s} (default {base} +- stride {s})"
                )
    if any(size < 0 for size in sizes):
        raise ValueError(f"{op}: output size must be non-negative, got {sizes}")
    return sizes


def max_unpool(input, indices, kernel_size, stride=None, padding=0, output_size=None, *, ndim: int,
               channels_last: bool = False):
    """Zeros with ``input`` scattered to ``indices``, as ``torch.nn.functional.max_unpool{ndim}d``.

    ``indices`` are flat offsets into each output plane, as returned by
    ``max_pool(..., return_indices=True)``.  The gradient with respect to ``input`` gathers the
    output gradient at ``indices``.  An index outside ``[0, prod(output spatial))`` is a
    ``ValueError`` when the indices are concrete (as PyTorch's "Found an invalid max index");
    under ``jit`` they cannot be checked, and such updates are dropped (nothing is written out
    of bounds, negative indices do not wrap).  If two inputs share an index, which one lands
    is unspecified, in PyTorch as here.
    """
    op = f"max_unpool{ndim}d"
    # torch: an unbatched input may have zero channels (only spatial dims are checked)
    layout = _args.layout_of(input, ndim, op, channels_last,
                             empty_channels=len(getattr(input, "shape", ())) == ndim + 1)
    if np.dtype(input.dtype) != np.bool_:  # torch's max_unpool also takes bool
        _args.check_float_or_int(input, op)
    if not hasattr(indices, "shape") or tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: indices must have the same shape as input {tuple(input.shape)}, "
            f"got {getattr(indices, 'shape', type(indices).__name__)}"
        )
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{op}: indices must have an integer dtype, got {indices.dtype}")
    kernel = _args.positive(_args.int_tuple(kernel_size, ndim, "kernel_size", op), "kernel_size", op)
    stride = _args.stride_or_kernel(stride, kernel, ndim, op)
    padding = _args.non_negative(_args.int_tuple(padding, ndim, "padding", op), "padding", op)
    out_spatial = unpool_output_size(layout.spatial_shape(input), kernel, stride, padding, output_size, op)
    plane = math.prod(out_spatial)
    if plane == 0:  # PyTorch: an empty output, no index is checked (there is nothing to write)
        shape = list(layout.batch_shape(input.shape))
        for axis, size in zip(layout.spatial_axes, out_spatial):
            shape[axis] = size
        return layout.unbatch(jnp.zeros(shape, input.dtype))
    _check_concrete_indices(indices, plane, out_spatial, op)
    # a plane past int32 needs 64-bit indices: a clear error without x64, never a wraparound
    index_dtype = _args.index_dtype(out_spatial, op)

    x, idx = layout.batch(input), layout.batch(indices)
    if channels_last:  # scatter per (N, C) plane, channels-first internally
        x, idx = jnp.moveaxis(x, -1, 1), jnp.moveaxis(idx, -1, 1)
    # One scatter per (N, C) plane, written as a batched scatter (vmap) rather than one scatter
    # into an (N*C, plane) matrix: batch and channels stay separate, parallel dimensions, so an
    # input sharded over either needs no communication.
    lead, cells = x.shape[:2], math.prod(x.shape[2:])
    x = x.reshape(lead + (cells,))
    idx = idx.reshape(lead + (cells,)).astype(index_dtype)
    idx = jnp.where((idx < 0) | (idx >= plane), plane, idx)  # out of range: dropped, never wrapped

    out = _scatter_planes(x, idx, plane)
    out = out.reshape(lead + out_spatial)
    if channels_last:
        out = jnp.moveaxis(out, 1, -1)
    return layout.unbatch(out)


def _scatter_planes(x, idx, plane: int):
    """``out[n, c, idx[n, c, k]] = x[n, c, k]`` with PyTorch's gradient.

    PyTorch's backward gathers the output gradient at every index, so when two inputs share
    an index both receive its gradient (only one of them is visible in the output).  JAX's
    own derivative of a scatter gives it to the visible one only; the custom JVP below uses a
    scatter-*add* tangent, whose transpose is exactly PyTorch's gather.  With distinct
    indices (max pooling's output) the two rules coincide.
    """
    def scatter(values, where, add=False):
        base = jnp.zeros((plane,), values.dtype).at[where]
        return base.add(values, mode="drop") if add else base.set(values, mode="drop")

    @jax.custom_jvp
    def f(x, idx):
        return jax.vmap(jax.vmap(scatter))(x, idx)

    @f.defjvp
    def f_jvp(primals, tangents):
        x, idx = primals
        return f(x, idx), jax.vmap(jax.vmap(lambda v, i: scatter(v, i, add=True)))(tangents[0], idx)

    return f(x, idx)


def _check_concrete_indices(indices, plane: int, out_spatial, op: str):
    if isinstance(indices, jax.core.Tracer):
        return
    values = np.asarray(indices)
    bad = (values < 0) | (values >= plane)
    if bad.any():
        raise ValueError(
            f"{op}: found an invalid max index {values[bad].flat[0]} "
            f"(output planes have {plane} elements, size {out_spatial})"
        )


def _make(n):
    def wrapper(input, indices, kernel_size, stride=None, padding=0, output_size=None, *,
                channels_last=False):
        return max_unpool(input, indices, kernel_size, stride, padding, output_size, ndim=n,
                          channels_last=channels_last)
    return wrapper


max_unpool1d, max_unpool2d, max_unpool3d = _bind.per_dimension(_make, max_unpool, "max_unpool")
