"""Power-average (LP) pooling, PyTorch's formula and gradients."""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _args, _execute, plan


def lp_pool(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, ndim: int,
            channels_last: bool = False):
    """``(sum over the window of x**p) ** (1/p)``, as ``torch.nn.functional.lp_pool{ndim}d``.

    Computed exactly as PyTorch does, so values and gradients agree:
    ``out = avg_pool(x**p, kernel, stride, padding=0, ceil_mode)`` then
    ``(sign(out) * relu(abs(out)) * prod(kernel)) ** (1/p)``.

    Consequences worth knowing: ``p=1`` is the window *sum* (not the mean) and keeps its sign;
    a ``ceil_mode`` window hanging past the input is scaled up by ``kernel / cells inside``;
    a negative window sum raised to ``1/p`` is NaN unless ``1/p`` is an integer; a zero window
    sum has a NaN gradient for ``p > 1``, as in PyTorch; ``p=inf`` is ``max_pool(abs(x))`` and
    ``p=-inf`` is ``-max_pool(-abs(x))``, as in PyTorch 2.13 (pytorch#183997; PyTorch 2.11 ran
    the finite-p formula there, which gives 1 everywhere).  ``p=0`` is rejected.

    Integer and bool input as PyTorch's ``input.pow(p)`` decides: a float ``p`` computes in
    float32 (torch's default dtype); an int ``p > 0`` takes int64 or bool input only (``x ** p``
    and the average in int64, truncating, then ``** (1/p)`` in float32; without x64 in int32
    when a concrete input shows no overflow); ``p = +-inf`` is an integer max pool of
    ``abs(x)`` (int8..int64, uint8).  Everything else torch rejects is a ``TypeError``.
    """
    op = f"lp_pool{ndim}d"
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"{op}: norm_type must be a real number, got {norm_type!r}")
    if norm_type == 0:
        raise ValueError(f"{op}: norm_type must be non-zero (the result is x ** (1 / norm_type))")
    try:
        float(norm_type)
    except OverflowError:
        raise ValueError(f"{op}: norm_type {norm_type} is too large for a float") from None
    layout = _args.layout_of(input, ndim, op, channels_last)
    _check_kernel_form(kernel_size, ndim, norm_type, op)
    dtype = np.dtype(input.dtype)
    if math.isinf(norm_type):
        if jnp.issubdtype(dtype, jnp.integer) and dtype.name not in _ABS_INTEGERS:
            raise TypeError(f"{op}: input dtype {dtype} is not supported with norm_type={norm_type}: "
                            "PyTorch computes max_pool(abs(x)) and has no abs for it")
        _args.check_float_or_int(input, op)
        _check_abs_fits_int32(input, norm_type, op)
        sign = 1 if norm_type > 0 else -1
        magnitude = sign * torch_abs(input)
        p = plan.max_pool(magnitude, layout, op, kernel_size, stride, 0, 1, ceil_mode, False)
        return sign * _execute.max_of(p, magnitude)
    # torch's pow specialises integral exponents (x * x for 2.0) in floating point
    exponent = int(norm_type) if float(norm_type).is_integer() else norm_type
    if jnp.issubdtype(dtype, jnp.floating):
        _args.check_float(input, op)
    elif dtype.kind not in "biu":
        raise TypeError(f"{op}: input dtype {dtype} is not supported: input dtype must be floating, "
                        "integer or bool")
    elif not isinstance(norm_type, numbers.Integral):  # torch: x.pow(float) is float32
        input = jnp.asarray(input).astype(jnp.float32)
    else:  # torch: x.pow(int) stays integer, then int64 average pooling, then .pow(1/p): float32
        return _integer_lp(input, layout, op, int(norm_type), kernel_size, stride, ceil_mode)
    kernel = _args.int_tuple(kernel_size, ndim, "kernel_size", op)
    powered = jnp.power(input, exponent)
    out = _execute.mean_of(plan.avg_pool(powered, layout, op, kernel_size, stride, 0, ceil_mode, True, None),
                           powered)
    # torch's relu is threshold(x, 0, 0): ``x <= 0 ? 0 : x``, gradient ``x <= 0 ? 0 : g``, so
    # a NaN window passes its (NaN) gradient on; jax.nn.relu's ``x > 0`` test would zero it
    magnitude = jnp.abs(out)
    out = jnp.sign(out) * jnp.where(magnitude <= 0, jnp.zeros((), out.dtype), magnitude) * math.prod(kernel)
    return jnp.power(out, 1.0 / norm_type)


def _check_kernel_form(kernel_size, ndim: int, norm_type, op: str):
    """PyTorch's Python ``lp_pool`` uses ``kernel_size`` itself: the 2-d/3-d ops unpack it into
    ``ndim`` sizes first (an int or exactly ``ndim``, no 1-element tuple); the 1-d op multiplies
    its result by it, so a finite ``norm_type`` needs an int (``p = +-inf`` is ``max_pool1d``,
    which takes a 1-element tuple too)."""
    if ndim > 1:
        _args.int_tuple(kernel_size, ndim, "kernel_size", op, one_for_all=False)
    elif not math.isinf(norm_type) and np.ndim(kernel_size) != 0:
        raise ValueError(f"{op}: kernel_size must be an int for a finite norm_type (PyTorch multiplies "
                         f"the window average by it), got {kernel_size!r}")


# torch's abs (lp_pool with p = +-inf) has integer kernels for these; not bool or uint16..64
_ABS_INTEGERS = frozenset(["uint8", "int8", "int16", "int32", "int64"])


def _integer_lp(input, layout, op: str, p: int, kernel_size, stride, ceil_mode):
    """Integer ``norm_type`` on integer input, as torch: ``x ** p`` in int64 (bool becomes
    int64), int64 average pooling (truncating division), times the kernel size, then
    ``** (1/p)`` in float32.  torch has int64 average pooling only, so other integer types are
    rejected, and negative integer powers of integers are an error in torch."""
    dtype = np.dtype(input.dtype)
    if dtype.name not in ("int64", "bool"):
        hint = (" (without 64-bit mode JAX makes int64 arrays int32: enable jax_enable_x64)"
                if dtype.name == "int32" else "")
        raise TypeError(
            f"{op}: input dtype {dtype} with an integer norm_type={p} is not supported: PyTorch "
            f"computes x ** p in the input's integer type and average-pools only int64 (and bool, "
            f"which becomes int64); pass a float norm_type (e.g. {float(p)}) for a float32 result{hint}"
        )
    if p < 0:
        raise ValueError(f"{op}: norm_type={p}: integers to negative integer powers are not allowed "
                         "(as in PyTorch); pass a float norm_type")
    ndim = layout.n
    kernel = _args.int_tuple(kernel_size, ndim, "kernel_size", op)
    acc = jnp.int64 if jax.config.jax_enable_x64 else jnp.int32
    if acc == jnp.int32 and dtype.name == "int64":
        _check_int32_powers(input, layout, kernel, p, op)
    powered = lax.integer_pow(jnp.asarray(input).astype(acc), p) if p != 1 else jnp.asarray(input).astype(acc)
    out = _execute.mean_of(plan.avg_pool(powered, layout, op, kernel_size, stride, 0, ceil_mode, True, None),
                           powered)
    out = jnp.sign(out) * jnp.maximum(jnp.abs(out), 0) * acc(math.prod(kernel))
    return jnp.power(out.astype(jnp.float32), np.float32(1.0 / p))


def _check_abs_fits_int32(input, norm_type, op: str):
    """Without x64 an int64 input computes in int32, where ``abs(-2**31)`` wraps to itself;
    PyTorch's int64 ``abs`` does not, so a concrete input holding -2**31 is refused."""
    if (np.dtype(input.dtype) == np.int64 and not jax.config.jax_enable_x64
            and isinstance(input, (np.ndarray, np.generic)) and np.size(input)
            and int(np.min(input)) == np.iinfo(np.int32).min):
        raise ValueError(
            f"{op}: int64 input holding -2**31 with norm_type={norm_type}: PyTorch's abs gives 2**31, "
            "which int32 (JAX's int64 without 64-bit mode) cannot hold: enable jax_enable_x64 "
            "(jax.config.update('jax_enable_x64', True))")


def _check_int32_powers(input, layout, kernel, p: int, op: str):
    """Without x64 the int64 arithmetic runs in int32: exact only while every window sum of
    ``x ** p`` (times the kernel size) fits, which a concrete input must show."""
    limit = np.iinfo(np.int32).max
    if isinstance(input, (np.ndarray, np.generic)):
        values = np.asarray(input)
        largest = max(abs(int(values.min())), abs(int(values.max()))) if values.size else 0
        if largest ** p * math.prod(kernel) <= limit:
            return
    raise ValueError(
        f"{op}: int64 input with norm_type={p} is computed in int64 by PyTorch; without 64-bit mode "
        "the powers and window sums could leave int32: enable jax_enable_x64 "
        "(jax.config.update('jax_enable_x64', True)) or pass a float norm_type"
    )


@jax.custom_jvp
def torch_abs(x):
    """``abs`` with PyTorch's derivative ``sgn(x)``: 0 at 0 and at NaN (JAX's ``abs`` has slope 1
    at 0 and NaN at NaN)."""
    return jnp.abs(x)


@torch_abs.defjvp
def _torch_abs_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    slope = jnp.where(jnp.isnan(x), jnp.zeros((), x.dtype), jnp.sign(x))
    return jnp.abs(x), slope * t
