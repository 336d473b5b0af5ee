"""Power-average (LP) pooling, PyTorch's formula and gradients."""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp

from jaxpool import _args, _bind
from jaxpool.avg_pool import avg_pool
from jaxpool.max_pool import max_pool


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
    ``p=-inf`` is ``-max_pool(-abs(x))``.  ``p=0`` is rejected.
    """
    op = f"lp_pool{ndim}d"
    if isinstance(norm_type, bool) or not isinstance(norm_type, numbers.Real):
        raise TypeError(f"{op}: norm_type must be a real number, got {norm_type!r}")
    if norm_type == 0:
        raise ValueError(f"{op}: norm_type must be non-zero (the result is x ** (1 / norm_type))")
    _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op)
    common = dict(ndim=ndim, channels_last=channels_last)
    if math.isinf(norm_type):
        sign = 1 if norm_type > 0 else -1
        return sign * max_pool(sign * torch_abs(input), kernel_size, stride, 0, 1, ceil_mode, **common)
    kernel = _args.int_tuple(kernel_size, ndim, "kernel_size", op)
    powered = jnp.power(input, int(norm_type) if float(norm_type).is_integer() else norm_type)
    out = avg_pool(powered, kernel_size, stride, 0, ceil_mode, **common)
    # torch's relu is threshold(x, 0, 0): ``x <= 0 ? 0 : x``, gradient ``x <= 0 ? 0 : g``, so
    # a NaN window passes its (NaN) gradient on; jax.nn.relu's ``x > 0`` test would zero it
    magnitude = jnp.abs(out)
    out = jnp.sign(out) * jnp.where(magnitude <= 0, jnp.zeros((), out.dtype), magnitude) * math.prod(kernel)
    return jnp.power(out, 1.0 / norm_type)


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


def _make(n):
    def wrapper(input, norm_type, kernel_size, stride=None, ceil_mode=False, *, channels_last=False):
        return lp_pool(input, norm_type, kernel_size, stride, ceil_mode, ndim=n,
                       channels_last=channels_last)
    return wrapper


lp_pool1d, lp_pool2d, lp_pool3d = _bind.per_dimension(_make, lp_pool, "lp_pool")
