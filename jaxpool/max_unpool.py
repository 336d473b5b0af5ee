"""MaxUnpool: put each value back at the flat in-plane index max pooling recorded."""

from __future__ import annotations

import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _args, _eager, _execute, plan


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

    The input must be float16, bfloat16, float32 or float64, as PyTorch's kernels; an empty
    input or output takes any dtype and gives zeros (PyTorch returns before its dtype dispatch).
    """
    op = f"max_unpool{_args.check_ndim(ndim, 'max_unpool')}d"
    # torch: an unbatched input may have zero channels (only spatial dims are checked)
    layout = _args.layout_of(input, ndim, op, channels_last,
                             empty_channels=len(getattr(input, "shape", ())) == ndim + 1)
    if hasattr(indices, "dtype"):  # torch tensors, ShapeDtypeStructs, 64-bit values without x64
        _args.check_array(indices, "indices", op)
    if not hasattr(indices, "shape") or tuple(indices.shape) != tuple(input.shape):
        raise ValueError(
            f"{op}: indices must have the same shape as input {tuple(input.shape)}, "
            f"got {getattr(indices, 'shape', type(indices).__name__)}"
        )
    if not jnp.issubdtype(indices.dtype, jnp.integer):
        raise TypeError(f"{op}: indices must have an integer dtype, got {indices.dtype}")
    p = plan.max_unpool(input, layout, op, kernel_size, stride, padding, output_size, channels_last)
    out_spatial = dict(p.arguments)["output_size"]
    plane = math.prod(out_spatial)
    if plane == 0 or math.prod(input.shape) == 0:
        # PyTorch: an empty result, before the dtype dispatch and with no index checked
        return layout.unbatch(jnp.zeros(p.output_shape, input.dtype))
    _args.check_float(input, op)
    _check_concrete_indices(indices, plane, out_spatial, op)
    return _unpool_of(p, input, indices)


@_eager.compiled_when_eager
def _unpool_of(p, input, indices):
    """The executor: ``input`` scattered to ``indices`` in zero planes of the plan's output
    size, with the input's batching and layout."""
    arguments = dict(p.arguments)
    kernel, stride, padding, out_spatial = (arguments[k] for k in ("kernel_size", "stride", "padding", "output_size"))
    layout = p.layout
    # a plane past int32 needs 64-bit indices (p.index_dtype): a clear error without x64
    x, idx = layout.batch(input), layout.batch(indices).astype(p.index_dtype)  # holds any plane index
    if layout.channels_last:  # scatter per (N, C) plane, channels-first internally
        x, idx = jnp.moveaxis(x, -1, 1), jnp.moveaxis(idx, -1, 1)
    scatter = functools.partial(_unpool_scatter, out_spatial=out_spatial)
    if kernel == stride and not any(padding) and math.prod(out_spatial) <= _TILED_MAX_PLANE:
        # XLA:CPU's scatters are an order of magnitude slower than its selects and pads
        tiled = functools.partial(_unpool_tiled, kernel=kernel, out_spatial=out_spatial)
        out = _execute.per_platform(tiled, scatter, x, idx)
    else:
        out = scatter(x, idx)
    if layout.channels_last:
        out = jnp.moveaxis(out, 1, -1)
    return layout.unbatch(out)


# The blockwise path builds a numpy table of one output plane at trace time; beyond this many
# cells (64 MiB of int64) the scatter is used instead.
_TILED_MAX_PLANE = 2**23


def _unpool_scatter(x, idx, out_spatial):
    """The general case: scatter every (N, C) plane's values to its indices.

    Batch and channels stay two separate leading axes (never merged by a reshape), so an input
    sharded over either needs no communication.
    """
    lead, cells = x.shape[:2], math.prod(x.shape[2:])
    plane = math.prod(out_spatial)
    x = x.reshape(lead + (cells,))
    idx = idx.reshape(lead + (cells,))
    idx = jnp.where((idx < 0) | (idx >= plane), plane, idx)  # out of range: dropped, never wrapped
    return _scatter_planes(x, idx, plane).reshape(lead + out_spatial)


def _unpool_tiled(x, idx, kernel, out_spatial):
    """``kernel == stride``, no padding (SegNet): disjoint blocks, no scatter when possible.

    Input cell ``i`` of a plane owns the output block ``i * kernel + [0, kernel)``.  When every
    index lies in its cell's block (always so for indices from ``max_pool`` with the same
    kernel), the output is ``where(index == position, value, 0)`` over each block, a reshape
    and a crop or zero pad: elementwise, and so is its gradient.  The blocks are disjoint, so
    no two inputs can meet.  Indices are data, so whether they all lie in their blocks is
    checked at run time and any other index set takes the general scatter (``lax.cond``; under
    ``vmap`` both run and the right one is selected): the result is exact for every index.
    """
    n = len(kernel)
    spatial = x.shape[2:]
    out_strides = np.cumprod((1,) + tuple(out_spatial[::-1]))[:-1][::-1]
    # Flat output position of tap (a_1..a_n) of cell (i_1..i_n), -1 past the output's end.
    pos = np.zeros([d for s, k in zip(spatial, kernel) for d in (s, k)], np.int64)
    inside = np.ones(pos.shape, bool)
    for d, (s, k, size, stride) in enumerate(zip(spatial, kernel, out_spatial, out_strides)):
        coord = (np.arange(s)[:, None] * k + np.arange(k)[None, :])
        shape = [1] * (2 * n)
        shape[2 * d], shape[2 * d + 1] = s, k
        pos = pos + (coord * int(stride)).reshape(shape)
        inside = inside & (coord < size).reshape(shape)
    pos = np.where(inside, pos, -1).astype(np.dtype(idx.dtype))
    # Where each index lands, as a block coordinate per axis: must equal its own cell.
    in_block = (idx >= 0) & (idx < math.prod(out_spatial))
    for d, (k, size, stride) in enumerate(zip(kernel, out_spatial, out_strides)):
        coord = (idx // int(stride)) % size
        cell = np.arange(spatial[d]).reshape([1, 1] + [spatial[d] if e == d else 1 for e in range(n)])
        in_block = in_block & (coord // k == cell)

    def blocks(x, idx):
        dense = _blocks(x, _per_tap(idx) == pos)
        config = [(0, 0, 0)] * 2 + [(0, o - s * k, 0) for s, k, o in zip(spatial, kernel, out_spatial)]
        return lax.pad(dense, jnp.zeros((), x.dtype), config)  # negative high padding crops

    return lax.cond(jnp.all(in_block), blocks, lambda x, idx: _unpool_scatter(x, idx, out_spatial), x, idx)


@jax.custom_jvp
def _blocks(x, hit):
    """``where(hit, x, 0)`` over every cell's output block, as one array of the blocks' size.

    ``hit`` is ``(N, C, s_1, k_1, ..., s_n, k_n)``: whether tap ``a`` of cell ``i`` is the
    cell's index.  The values are one select and a reshape; the derivative (:func:`_block_taps`)
    places each tap by an interior pad, whose transpose, the gradient, reads the output
    gradient as one strided slice per tap.  The transpose of the reshape form reduced the
    blocks' size-2 minor axes, which XLA:CPU does slowly (docs/performance.md, item 15).
    """
    n = (hit.ndim - 2) // 2
    dense = jnp.where(hit, _per_tap(x), jnp.zeros((), x.dtype))
    return dense.reshape(x.shape[:2] + tuple(hit.shape[2 + 2 * d] * hit.shape[3 + 2 * d] for d in range(n)))


def _per_tap(a):
    """``(N, C, s_1, ..., s_n)`` as ``(N, C, s_1, 1, ..., s_n, 1)``, to broadcast over each
    cell's block taps."""
    n = a.ndim - 2
    return a[(slice(None), slice(None)) + tuple(e for _ in range(n) for e in (slice(None), None))]


def _block_taps(t, hit):
    """Linear in ``t``: :func:`_blocks` as a sum of one interior pad per tap."""
    n = (hit.ndim - 2) // 2
    kernel = hit.shape[3::2]
    total = None
    for taps in itertools.product(*(range(k) for k in kernel)):
        where = [slice(None), slice(None)] + [a for tap in taps for a in (slice(None), tap)]
        placed = jnp.where(hit[tuple(where)], t, jnp.zeros((), t.dtype))
        config = [(0, 0, 0)] * 2 + [(a, k - 1 - a, k - 1) for a, k in zip(taps, kernel)]
        placed = lax.pad(placed, jnp.zeros((), t.dtype), config)
        total = placed if total is None else total + placed
    return total


@_blocks.defjvp
def _blocks_jvp(primals, tangents):
    x, hit = primals
    return _blocks(x, hit), _block_taps(tangents[0], hit)


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _scatter_planes(x, idx, plane: int):
    """``out[n, c, idx[n, c, k]] = x[n, c, k]`` into zero planes; ``idx == plane`` is dropped.

    PyTorch's backward gathers the output gradient at every index, so when two inputs share an
    index (overlapping max-pool windows) both receive it, though only one is visible in the
    output.  JAX's own derivative of a scatter-*set* credits the visible one only; this JVP
    uses a scatter-*add* tangent instead, whose transpose is exactly PyTorch's gather.
    """
    return jax.vmap(jax.vmap(functools.partial(_scatter_plane, plane=plane)))(x, idx)


def _scatter_plane(values, where, *, plane, add=False):
    base = jnp.zeros((plane,), values.dtype).at[where]
    return base.add(values, mode="drop") if add else base.set(values, mode="drop")


@_scatter_planes.defjvp
def _scatter_planes_jvp(plane, primals, tangents):
    x, idx = primals
    add = functools.partial(_scatter_plane, plane=plane, add=True)
    return _scatter_planes(x, idx, plane), jax.vmap(jax.vmap(add))(tangents[0], idx)


def _check_concrete_indices(indices, plane: int, out_spatial, op: str):
    """PyTorch's "found an invalid max index", for indices whose values are known: concrete
    arrays, also inside ``jax.vmap`` without ``jit`` (a vmap tracer wraps the concrete batch).
    Under ``jit`` (or ``grad``/``scan``...) the values are unknown and out-of-range updates are
    dropped instead."""
    indices = _concrete(indices)
    if indices is None:
        return
    values = np.asarray(indices)
    bad = (values < 0) | (values >= plane)
    if bad.any():
        raise ValueError(
            f"{op}: found an invalid max index {values[bad].flat[0]} "
            f"(output planes have {plane} elements, size {out_spatial})"
        )


def _concrete(x):
    """``x`` itself, or the concrete array a chain of ``vmap`` tracers holds; None if traced."""
    while isinstance(x, jax.core.Tracer):
        if type(x).__name__ != "BatchTracer":
            return None
        x = getattr(x, "val", None)  # the batched values (a vmap tracer's payload)
    return x
