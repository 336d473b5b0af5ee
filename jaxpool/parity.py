"""The built-in parity sweep: every jaxpool operator against the installed PyTorch.

A :class:`Case` is one call (operator, input shape, arguments, dtype, value pattern, layout).
:func:`cases` enumerates a deterministic sweep, ``"quick"`` (the test suite and
``jaxpool parity``) or ``"full"`` (every per-axis configuration PyTorch accepts), and
:func:`run_case` compares values, indices and input gradients with
:func:`jaxpool.testing.compare_with_torch`.  PyTorch is imported only when a case runs.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

import jaxpool
from jaxpool import windows
from jaxpool.testing import Comparison, compare_with_torch

FIXED = ("max_pool", "avg_pool", "lp_pool", "max_unpool")
ADAPTIVE = ("adaptive_avg_pool", "adaptive_max_pool")
FAMILIES = FIXED + ADAPTIVE
OPS = tuple(f"{family}{n}d" for family in FAMILIES for n in (1, 2, 3))
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
INT_DTYPES = ("int8", "uint8", "int32", "int64")


@dataclasses.dataclass(frozen=True)
class Case:
    """One operator call, identical in jaxpool and PyTorch.

    ``args``/``kwargs`` follow ``torch.nn.functional.<op>`` after the input.  ``values`` is
    ``"normal"``, ``"ties"`` (small integers: many equal maxima) or ``"special"`` (NaN and
    infinities mixed in).  ``channels_last`` runs jaxpool on the transposed input.
    """

    op: str
    shape: tuple[int, ...]
    args: tuple = ()
    kwargs: tuple = ()
    dtype: str = "float32"
    values: str = "normal"
    channels_last: bool = False
    seed: int = 0

    @property
    def family(self) -> str:
        return self.op[:-2]

    @property
    def ndim(self) -> int:
        return int(self.op[-2])

    def __str__(self) -> str:
        kw = ", ".join(f"{k}={v!r}" for k, v in self.kwargs)
        args = ", ".join(map(repr, self.args))
        layout = ", channels_last" if self.channels_last else ""
        return f"{self.op}({self.dtype}{list(self.shape)} {self.values}; {args}{', ' if kw else ''}{kw}{layout})"


def make_input(case: Case) -> np.ndarray:
    """The case's input array (numpy; bfloat16 via ml_dtypes)."""
    rng = np.random.default_rng(case.seed)
    if case.dtype in INT_DTYPES:
        info = np.iinfo(case.dtype)
        lo, hi = (info.min, info.max) if case.values == "special" else (max(info.min, -3), min(info.max, 4))
        return rng.integers(lo, hi, case.shape, endpoint=True).astype(case.dtype)
    if case.values == "ties":
        x = rng.integers(-2, 3, case.shape).astype(np.float64)
    else:
        x = rng.standard_normal(case.shape)
        if case.values == "special":
            pick = rng.random(case.shape)
            x[pick < 0.08] = np.nan
            x[(pick >= 0.08) & (pick < 0.14)] = np.inf
            x[(pick >= 0.14) & (pick < 0.2)] = -np.inf
    if case.family == "lp_pool":
        p = case.args[0]
        if not float(p).is_integer() and not math.isinf(p):
            x = np.abs(x) + 0.25  # fractional powers of negatives are NaN in both; keep it informative
    return x.astype(jnp.dtype(case.dtype))


def _call_torch(case: Case):
    import torch.nn.functional as F

    fn = getattr(F, case.op)
    kwargs = dict(case.kwargs)
    if case.family == "max_unpool":
        return lambda values, indices: fn(values, indices.long(), *case.args, **kwargs)
    if case.op == "max_pool1d" and case.dtype in INT_DTYPES and not kwargs.get("return_indices"):
        # torch's index-free max_pool1d kernel has no integer support; its indices path does
        kwargs["return_indices"] = True
        return lambda x: fn(x, *case.args, **kwargs)[0]
    return lambda x: fn(x, *case.args, **kwargs)


def _call_jax(case: Case):
    fn = getattr(jaxpool, case.op)
    kwargs = dict(case.kwargs)
    if not case.channels_last:
        if case.family == "max_unpool":
            return lambda values, indices: fn(values, indices, *case.args, **kwargs)
        return lambda x: fn(x, *case.args, **kwargs)
    batched = len(case.shape) == case.ndim + 2
    first = 1 if batched else 0
    to_last = lambda a: jnp.moveaxis(a, first, -1)  # noqa: E731
    to_first = lambda a: jnp.moveaxis(a, -1, first)  # noqa: E731

    def channels_last(*inputs):
        out = fn(*map(to_last, inputs), *case.args, channels_last=True, **kwargs)
        return tuple(map(to_first, out)) if isinstance(out, tuple) else to_first(out)

    return channels_last


def run_case(case: Case) -> Comparison:
    """Compare one case; raises :class:`jaxpool.testing.Mismatch` on any disagreement.

    64-bit dtypes run with JAX's x64 mode enabled for the duration of the case only.
    """
    with jax.enable_x64(case.dtype in ("float64", "int64")):
        return _run_case(case)


def _run_case(case: Case) -> Comparison:
    x = make_input(case)
    grad = case.dtype in FLOAT_DTYPES
    if case.family == "max_unpool":
        import torch
        import torch.nn.functional as F

        kernel, stride, padding = case.args[:3]
        pool = getattr(F, f"max_pool{case.ndim}d")
        values, indices = pool(torch.from_numpy(x.astype(np.float32)), kernel, stride, padding,
                               return_indices=True)
        values = values.numpy().astype(x.dtype)
        if _call_torch(case)(torch.from_numpy(values.astype(np.float32)), indices).numel() == 0:
            # an unpool output with a zero-size axis (1 input cell, kernel 2, padding 1): torch
            # returns it, but its backward fails ("index 0 is out of bounds"); compare forward
            grad = False
        return compare_with_torch(_call_jax(case), _call_torch(case), values, indices.numpy(),
                                  grad=grad, seed=case.seed)
    return compare_with_torch(_call_jax(case), _call_torch(case), x, grad=grad, seed=case.seed)


# ----------------------------------------------------------------------------- the sweep

SIZES = {"quick": (1, 2, 3, 5, 8, 13), "full": (1, 2, 3, 4, 5, 6, 7, 8, 11, 13, 16)}
ADAPTIVE_SIZES = {"quick": (1, 2, 3, 5, 7, 10, 33), "full": (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13, 14, 33)}


def fixed_axis_configs(level: str, dilated: bool):
    """Every 1-d ``(size, kernel, stride, padding, dilation, ceil_mode)`` PyTorch accepts."""
    kernels = (1, 2, 3, 4) if level == "quick" else (1, 2, 3, 4, 5)
    dilations = (1, 2, 3) if dilated else (1,)
    for size, k, s, d, ceil in itertools.product(SIZES[level], kernels, (1, 2, 3), dilations, (False, True)):
        for p in range(k // 2 + 1):
            if windows.pooling_output_size(size, k, s, p, d, ceil) >= 1:
                if windows.fixed(size, k, s, p, d, ceil).inside_counts.min() > 0:  # else rejected
                    yield size, k, s, p, d, ceil


def _combine(axis_configs: list, ndim: int, count: int, rng) -> list:
    """All 1-d configs, or ``count`` random per-axis combinations of them for 2-d/3-d."""
    if ndim == 1:
        return [(c,) for c in axis_configs]
    picks = rng.integers(0, len(axis_configs), (count, ndim))
    return [tuple(axis_configs[i] for i in row) for row in picks]


def _shape(rng, ndim: int, spatial: tuple) -> tuple:
    batch = int(rng.integers(1, 3))
    channels = int(rng.integers(1, 4))
    return (batch, channels, *spatial) if rng.random() < 0.75 else (channels, *spatial)


def _variant(rng, family: str, dtypes) -> tuple[str, str, bool]:
    dtype = dtypes[int(rng.integers(0, len(dtypes)))]
    values = ("normal", "ties", "ties", "special")[int(rng.integers(0, 4))]
    if family in ("lp_pool", "avg_pool", "adaptive_avg_pool") and values == "special":
        values = "normal"  # non-finite sums are exercised by the hostile-value tests instead
    return dtype, values, bool(rng.random() < 0.2)


def cases(ops=None, level: str = "quick", dtypes=None, per_op: int | None = None):
    """The deterministic sweep over ``ops`` (default: all).

    ``level="quick"`` samples about ``per_op`` cases per op (default 60); ``"full"`` runs every
    1-d axis configuration and ``per_op`` (default 1500) random 2-d/3-d combinations of them.
    ``dtypes`` restricts the dtypes (default: float32 mostly, every other dtype sampled).
    """
    ops = OPS if ops is None else tuple(ops)
    per_op = per_op or (60 if level == "quick" else 1500)
    for op in ops:
        family, ndim = op[:-2], int(op[-2])
        rng = np.random.default_rng(_stable_seed(op))
        float_dtypes = dtypes or ("float32",) * 5 + FLOAT_DTYPES
        if family == "max_pool" and dtypes is None:
            float_dtypes = float_dtypes + INT_DTYPES
        if family in ADAPTIVE:
            configs = _adaptive_configs(level, ndim, per_op, rng)
        else:
            axis = list(fixed_axis_configs(level, dilated=family == "max_pool"))
            if family == "max_unpool":  # its input comes from a plain (floor-mode) max_pool
                # ... and its output must be able to hold the original size (else torch rejects
                # the pooling indices): default + stride - 1 >= size
                axis = [c for c in axis if not c[5] and _unpool_default(*c[:4]) + c[2] - 1 >= c[0]]
            configs = _combine(axis, ndim, per_op, rng)
        if level == "quick" and len(configs) > per_op:
            configs = [configs[i] for i in sorted(rng.choice(len(configs), per_op, replace=False))]
        for seed, config in enumerate(configs):
            dtype, values, channels_last = _variant(rng, family, float_dtypes)
            yield _build(family, ndim, config, dtype, values, channels_last, seed, rng)


def _unpool_default(size, k, s, p) -> int:
    """max_unpool's default output size after a floor-mode max_pool(k, s, p) of ``size``."""
    return (windows.pooling_output_size(size, k, s, p, 1, False) - 1) * s - 2 * p + k


def _stable_seed(text: str) -> int:
    return int.from_bytes(text.encode(), "little") % (2**32)


def _adaptive_configs(level, ndim, count, rng):
    sizes = ADAPTIVE_SIZES[level]
    pairs = [(i, o) for i in sizes for o in sizes + (None,)]
    if ndim == 1:
        return [(p,) for p in pairs]
    picks = rng.integers(0, len(pairs), (count, ndim))
    return [tuple(pairs[i] for i in row) for row in picks]


def _build(family, ndim, config, dtype, values, channels_last, seed, rng) -> Case:
    op = f"{family}{ndim}d"
    if family in ADAPTIVE:
        spatial = tuple(i for i, _ in config)
        out = tuple(o for _, o in config)
        if ndim == 1 and out[0] is None:  # torch's 1-d adaptive pools take no None
            out = spatial
        output_size = out[0] if ndim == 1 or (len(set(out)) == 1 and rng.random() < 0.3) else out
        kwargs = (("return_indices", bool(rng.random() < 0.7)),) if family == "adaptive_max_pool" else ()
        return Case(op, _shape(rng, ndim, spatial), (output_size,), kwargs, dtype, values, channels_last, seed)
    spatial, k, s, p, d, ceil = (tuple(c[i] for c in config) for i in range(6))
    kernel = k[0] if len(set(k)) == 1 and rng.random() < 0.5 else k
    stride = None if s == k and rng.random() < 0.5 else s
    shape = _shape(rng, ndim, spatial)
    ceil_mode = bool(ceil[0])  # one flag for all axes, as in PyTorch
    if family == "max_pool":
        kwargs = (("return_indices", bool(rng.random() < 0.7)),)
        return Case(op, shape, (kernel, stride, p, d, ceil_mode), kwargs, dtype, values, channels_last, seed)
    if family == "avg_pool":
        kwargs = [("count_include_pad", bool(rng.random() < 0.5))]
        if ndim > 1 and rng.random() < 0.2:
            kwargs.append(("divisor_override", int(rng.integers(1, 7))))
        return Case(op, shape, (kernel, stride, p, ceil_mode), tuple(kwargs), dtype, values, channels_last, seed)
    if family == "lp_pool":
        norm = (1, 2, 3, 1.5, 0.5, float("inf"), -1)[int(rng.integers(0, 7))]
        return Case(op, shape, (norm, kernel, stride, ceil_mode), (), dtype, values, channels_last, seed)
    # max_unpool: the pooled input comes from torch's max_pool on `shape` with these arguments,
    # so the case's shape is the *pooling* input; output_size is sometimes the original size.
    pooled_kernel = k if not isinstance(kernel, int) else kernel
    kwargs = ()
    too_small = any(_unpool_default(i, kk, st, pp) < i for i, kk, st, pp in zip(spatial, k, s, p))
    if too_small or rng.random() < 0.5:
        default = [(o - 1) * st - 2 * pp + kk for o, st, pp, kk in zip(
            (windows.pooling_output_size(i, kk, st, pp, 1, False) for i, kk, st, pp in zip(spatial, k, s, p)),
            s, p, k)]
        wanted = [min(max(i, dflt - st + 1), dflt + st - 1) for i, dflt, st in zip(spatial, default, s)]
        if all(w > 0 for w in wanted):
            kwargs = (("output_size", tuple(wanted)),)
    return Case(op, shape, (pooled_kernel, s, p), kwargs, dtype, values if values != "special" else "normal",
                channels_last, seed)
