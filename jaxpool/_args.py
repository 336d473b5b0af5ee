"""Argument checking and input layout, shared by every operator.

All checks run at trace time on static Python values and shapes, and raise ``TypeError`` (wrong
kind of value) or ``ValueError`` (wrong value) naming the operator, the argument and the rule.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np


def int_tuple(value, n: int, name: str, op: str, *, allow_none: bool = False,
              one_for_all: bool = True) -> tuple:
    """An int or a sequence of 1 or ``n`` ints, as a tuple of ``n`` Python ints.

    ``one_for_all=False``: a sequence must hold exactly ``n`` ints.  PyTorch's C++ pools repeat a
    1-element tuple over every spatial dim; its Python-side ops (``max_unpool``, ``lp_pool``,
    ``fractional_max_pool``) unpack or index ``n`` elements and refuse a shorter sequence.
    """
    scalar = False
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        items, scalar = (value,), True
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = tuple(value)
    elif isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) <= 1:
        if isinstance(value, jax.core.Tracer):
            raise TypeError(f"{op}: {name} must be static Python ints, not a traced array")
        items, scalar = tuple(np.atleast_1d(np.asarray(value)).tolist()), np.ndim(value) == 0
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {n} ints, got {value!r}")
    if len(items) == 1 and (scalar or one_for_all or n == 1):
        items = items * n
    if len(items) != n:
        rule = f"a single int or a tuple of {n} ints" if one_for_all else f"an int or a tuple of exactly {n} ints"
        if not one_for_all and len(items) == 1:
            rule += f" (PyTorch's {op} does not repeat a 1-element tuple over the {n} spatial dims)"
        raise ValueError(f"{op}: {name} must be {rule}, got {len(items)} values {value!r}")
    for item in items:
        if item is None and allow_none:
            continue
        if isinstance(item, bool) or not isinstance(item, numbers.Integral):
            raise TypeError(f"{op}: {name} must contain ints, got {item!r} in {value!r}")
        if not -2**63 <= int(item) < 2**63:  # numpy's tables would raise OverflowError later
            raise ValueError(f"{op}: {name} must fit in a 64-bit integer, got {int(item)} in {value!r}")
    return tuple(None if i is None else int(i) for i in items)


def flag(value, name: str, op: str) -> bool:
    """A static Python bool (``1``, ``'no'`` or a numpy bool are not taken for one)."""
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a bool (True or False), got {value!r}")
    return value


def check_ndim(ndim, op: str) -> int:
    """The generic ops' ``ndim``: 1, 2 or 3 spatial dimensions."""
    if isinstance(ndim, bool) or not isinstance(ndim, numbers.Integral) or ndim not in (1, 2, 3):
        raise ValueError(f"{op}: ndim must be 1, 2 or 3 (the number of spatial dimensions), got {ndim!r}")
    return int(ndim)


def positive(values: tuple, name: str, op: str) -> tuple:
    if any(v <= 0 for v in values):
        raise ValueError(f"{op}: {name} must be greater than zero, got {values}")
    return values


def non_negative(values: tuple, name: str, op: str) -> tuple:
    if any(v < 0 for v in values):
        raise ValueError(f"{op}: {name} must be non-negative, got {values}")
    return values


def stride_or_kernel(stride, kernel: tuple, n: int, op: str, *, python_side: bool = False) -> tuple:
    """PyTorch's default: ``stride=None`` means ``stride = kernel_size``; so does an empty sequence
    for the C++ pools (max, avg, LP).  ``python_side``: ``max_unpool``'s Python code indexes the
    stride, so an empty or 1-element sequence (``n > 1``) is refused there
    (:func:`int_tuple`'s ``one_for_all=False``)."""
    if stride is None or (not python_side and isinstance(stride, Sequence) and len(stride) == 0):
        return kernel
    return positive(int_tuple(stride, n, "stride", op, one_for_all=not python_side), "stride", op)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the spatial axes of a (batched) input are, and how to undo the batching.

    ``channels_last=False`` is PyTorch's ``(N, C, *spatial)``; ``True`` is ``(N, *spatial, C)``,
    the Flax/Haiku convention.  Unbatched inputs (``(C, *spatial)`` / ``(*spatial, C)``) get a
    leading batch axis of 1 that :meth:`unbatch` removes again.
    """

    n: int
    channels_last: bool
    batched: bool

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        first = 1 if self.channels_last else 2
        return tuple(range(first, first + self.n))

    @property
    def channel_axis(self) -> int:
        return self.n + 1 if self.channels_last else 1

    def batch(self, x):
        return x if self.batched else x[None]

    def unbatch(self, x):
        return x if (self.batched or x is None) else x[0]

    def spatial_shape(self, x) -> tuple[int, ...]:
        """Spatial sizes of an input given as the user passed it (batched or not)."""
        shape = self.batch_shape(x.shape)
        return tuple(shape[a] for a in self.spatial_axes)

    def batch_shape(self, shape) -> tuple[int, ...]:
        return tuple(shape) if self.batched else (1, *shape)

    def plane_strides(self, spatial: tuple[int, ...]) -> dict[int, int]:
        """Flat-index stride of each spatial axis inside one plane (row-major over spatial)."""
        strides = np.cumprod((1,) + tuple(spatial[::-1]))[:-1][::-1]
        return {a: int(s) for a, s in zip(self.spatial_axes, strides)}


def layout_of(x, n: int, op: str, channels_last: bool = False, *, empty_channels: bool = False) -> Layout:
    """Check the rank and sizes of ``x`` for an ``n``-d pooling op and describe its layout.

    The batch may be empty (N=0), as in PyTorch; spatial sizes may not.  PyTorch's adaptive
    pools also accept zero channels (``empty_channels=True``); its fixed-window pools do not.
    """
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n not in (1, 2, 3):
        check_ndim(n, op.removesuffix(f"{n}d"))
    check_array(x, "input", op)
    if not isinstance(channels_last, bool):
        raise TypeError(f"{op}: channels_last must be a bool, got {channels_last!r}")
    rank = len(x.shape)
    if rank not in (n + 1, n + 2):
        kind = "(N, *spatial, C) or (*spatial, C)" if channels_last else "(N, C, *spatial) or (C, *spatial)"
        raise ValueError(
            f"{op}: input must have {n + 1} (unbatched) or {n + 2} (batched) dimensions {kind}, "
            f"got shape {tuple(x.shape)}"
        )
    layout = Layout(n, channels_last, rank == n + 2)
    shape = layout.batch_shape(x.shape)
    checked = [shape[a] for a in layout.spatial_axes]
    if not all(isinstance(s, (int, np.integer)) for s in checked):
        raise ValueError(
            f"{op}: spatial sizes must be static ints (the windows are computed from them at trace "
            f"time), got shape {tuple(x.shape)}; only the batch and channel dimensions may be "
            "symbolic under jax.export"
        )
    if not empty_channels:
        checked.append(shape[layout.channel_axis])
    if any(s == 0 for s in checked):
        raise ValueError(
            f"{op}: input must have non-zero size in every non-batch dimension, got shape {tuple(x.shape)}"
        )
    return layout


def check_array(x, name: str, op: str):
    """``x`` is an array jaxpool can take as it is, and converting it to JAX loses nothing.

    Without x64, JAX converts a numpy int64/uint64/float64 array to 32 bits (wrapping
    integers).  A concrete one whose values do not survive that is an error; under ``jit`` the
    conversion happens at the jit boundary, before jaxpool sees the data.
    """
    module = type(x).__module__ or ""
    if module == "torch" or module.startswith("torch."):
        raise TypeError(
            f"{op}: {name} is a {module}.{type(x).__name__}; jaxpool takes JAX or numpy arrays: "
            f"pass {name}.numpy() (or jnp.asarray({name}.numpy()))"
        )
    if isinstance(x, jax.ShapeDtypeStruct):
        raise TypeError(
            f"{op}: {name} is a jax.ShapeDtypeStruct (a shape, not data); to compute only the "
            f"output's shape, call the op through jax.eval_shape"
        )
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(f"{op}: {name} must be an array, got {type(x).__name__}")
    if not jax.config.jax_enable_x64 and isinstance(x, (np.ndarray, np.generic)):
        _check_fits_32_bits(np.asarray(x), name, op)


def _check_fits_32_bits(values: np.ndarray, name: str, op: str):
    dtype = values.dtype
    if dtype.itemsize != 8 or dtype.kind not in "iuf" or values.size == 0:
        return
    fix = "enable 64-bit mode (jax.config.update('jax_enable_x64', True)) or convert it yourself"
    if dtype.kind in "iu":
        target = np.iinfo(np.int32 if dtype.kind == "i" else np.uint32)
        low, high = int(values.min()), int(values.max())
        if low < target.min or high > target.max:
            bad = low if low < target.min else high
            raise ValueError(
                f"{op}: {name} is {dtype} holding {bad}, which does not fit {target.dtype}; without "
                f"64-bit mode JAX converts it to {target.dtype} and the values wrap: {fix}"
            )
    else:
        finite = np.isfinite(values)
        low = float(np.min(values, initial=np.inf, where=finite))
        high = float(np.max(values, initial=-np.inf, where=finite))
        largest = max(-low, high)
        if largest > float(np.finfo(np.float32).max):
            raise ValueError(
                f"{op}: {name} is float64 holding {low if -low > high else high!r}, beyond float32's "
                f"range; without 64-bit mode JAX converts it to float32 (inf): {fix}"
            )


def index_dtype(spatial: tuple[int, ...], op: str, *, size_too: bool = False):
    """int64 under x64, else int32; a plane too large for int32 indices is an error, not a wrap.

    ``size_too``: the plane size itself must fit as well, where it is a value of the index
    type (``max_unpool``'s drop marker, the irregular adaptive max fold's mirror base, the
    bound of fractional pooling's flat gather); a plane of exactly 2**31 cells needs x64 there.
    """
    dtype = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    size = int(np.prod(spatial, dtype=np.int64))
    if size - (not size_too) > jnp.iinfo(dtype).max:
        raise ValueError(
            f"{op}: a plane of {size} elements is too large for int32 indices; enable 64-bit mode "
            "(jax.config.update('jax_enable_x64', True)) for indices this large"
        )
    return dtype


# The floating types PyTorch's pooling kernels implement; float8/float6/float4 have none.
TORCH_FLOATS = frozenset(["float16", "bfloat16", "float32", "float64"])


def _unsupported(dtype: np.dtype, op: str, allowed: str) -> TypeError:
    if jnp.issubdtype(dtype, jnp.floating) and dtype.name not in TORCH_FLOATS:
        why = (f"PyTorch has no {dtype.name} pooling kernel and jaxpool does not compute one; "
               "cast to float32, bfloat16 or float16 first")
    elif jnp.issubdtype(dtype, jnp.integer) and jnp.iinfo(dtype).bits < 8:
        why = f"sub-byte integers have no PyTorch pooling kernel; cast to int8/uint8 first"
    else:
        why = f"input dtype must be {allowed}"
    return TypeError(f"{op}: input dtype {dtype} is not supported: {why}")


def check_float_or_int(x, op: str):
    """Max pooling: float16/bfloat16/float32/float64 and integers of 8 bits or more (PyTorch
    takes int8..int64 and uint8; unsigned 16-64-bit are computed too).  Bool, complex, float8
    and sub-byte integers are rejected."""
    dtype = np.dtype(x.dtype)
    if dtype.name in TORCH_FLOATS or (jnp.issubdtype(dtype, jnp.integer) and jnp.iinfo(dtype).bits >= 8):
        return
    raise _unsupported(dtype, op, "floating or integer")


def check_float(x, op: str, *, allow_int64: bool = False):
    """Averaging ops: float16/bfloat16/float32/float64 (PyTorch's CPU avg_pool also takes int64)."""
    dtype = np.dtype(x.dtype)
    if dtype.name in TORCH_FLOATS or (allow_int64 and dtype == np.int64):
        return
    raise _unsupported(dtype, op, "floating (or int64)" if allow_int64 else "floating")
