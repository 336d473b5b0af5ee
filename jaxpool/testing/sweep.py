"""The built-in parity sweep: every jaxpool operator against the installed PyTorch.

A :class:`Case` is one call (operator, input shape, arguments, dtype, value pattern, layout).
:func:`cases` enumerates a deterministic sweep, ``"quick"`` (the test suite and
``jaxpool parity``) or ``"full"`` (every per-axis configuration PyTorch accepts), and
:func:`run_case` compares values, indices and input gradients with
:func:`jaxpool.testing.compare_with_torch`.  PyTorch is imported only when a case runs.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np

import jaxpool
from jaxpool import windows
from jaxpool.layer_specs import OPS as REGISTRY
from jaxpool.testing import Comparison, compare_with_torch

# Every operator with a torch twin, from the op registry; how a family's windows are made
# decides its cases.  Fractional max pooling: both sides get the same `_random_samples`.
OPS = tuple(name for name, spec in REGISTRY.items() if spec.family.in_torch)
_WINDOWS = {name: spec.family.windows for name, spec in REGISTRY.items()}
FIXED = tuple(dict.fromkeys(n[:-2] for n in OPS if _WINDOWS[n] in ("fixed", "unpool")))
ADAPTIVE = tuple(dict.fromkeys(n[:-2] for n in OPS if _WINDOWS[n] == "adaptive"))
FAMILIES = FIXED + ADAPTIVE
FRACTIONAL_OPS = tuple(n for n in OPS if _WINDOWS[n] == "fractional")
FLOAT_DTYPES = ("float32", "float64", "float16", "bfloat16")
# (op, dtype) that PyTorch's CPU build does not implement: its avg_pool3d kernel has no float16
# or bfloat16 version.  The reference computes that kernel in float32 and rounds its result (and,
# through autograd, its gradient) to the low-precision dtype, as torch's CUDA kernel does; the
# rest of lp_pool3d's formula runs in the low precision, as torch's Python code would.
TORCH_CPU_MISSING = {(op, d) for op in ("avg_pool3d", "lp_pool3d") for d in ("float16", "bfloat16")}
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
        if not math.isinf(p) and p not in (1, 2):
            # fractional powers of negatives are NaN in both, and odd or negative powers of mixed
            # signs cancel catastrophically before the 1/p root; positive inputs keep these
            # cases well-conditioned and informative
            x = np.abs(x) + 0.25
    return x.astype(jnp.dtype(case.dtype))


def _call_torch(case: Case, extra: dict | None = None):
    import torch.nn.functional as F

    fn = getattr(F, case.op)
    kwargs = dict(case.kwargs, **(extra or {}))
    if case.family == "lp_pool" and math.isinf(case.args[0]) and not torch_lp_inf_is_max_pool():
        return _lp_inf_as_torch_213(case, kwargs)  # before the half-precision widening: no avg_pool3d
    if (case.op, case.dtype) in TORCH_CPU_MISSING:
        return lambda x: _with_widened_avg_pool3d(case.op, x, *case.args, **kwargs)
    if case.family == "max_unpool":
        return lambda values, indices: fn(values, indices.long(), *case.args, **kwargs)
    if case.op == "max_pool1d" and case.dtype in INT_DTYPES and not kwargs.get("return_indices"):
        # torch's index-free max_pool1d kernel has no integer support; its indices path does
        kwargs["return_indices"] = True
        return lambda x: fn(x, *case.args, **kwargs)[0]
    return lambda x: fn(x, *case.args, **kwargs)


@functools.cache
def torch_lp_inf_is_max_pool() -> bool:
    """Whether the installed PyTorch computes ``lp_pool`` with ``p = inf`` as a max pool of
    ``abs(x)``, as 2.13 does (pytorch#183997); 2.11 ran the finite-p formula, 1 everywhere."""
    import torch
    import torch.nn.functional as F

    return float(F.lp_pool1d(torch.full((1, 1, 1), 2.0), float("inf"), 1)) == 2.0


def _lp_inf_as_torch_213(case: Case, kwargs: dict):
    """PyTorch 2.13's own ``lp_pool`` code for ``p = +-inf``, run with the installed PyTorch's max
    pool, where that PyTorch predates it: jaxpool follows the pinned release."""
    import torch.nn.functional as F

    def lp_pool(x, norm_type, kernel_size, stride=None, ceil_mode=False):
        pool = getattr(F, f"max_pool{case.ndim}d")
        if norm_type > 0:
            return pool(x.abs(), kernel_size, stride, 0, 1, ceil_mode)
        return -pool(-x.abs(), kernel_size, stride, 0, 1, ceil_mode)
    return lambda x: lp_pool(x, *case.args, **kwargs)


def _with_widened_avg_pool3d(op, x, *args, **kwargs):
    """``torch.nn.functional.<op>(x, ...)`` in ``x``'s low precision, its ``avg_pool3d`` in float32.

    ``torch.nn.functional.lp_pool3d`` is Python calling the module's ``avg_pool3d``; running
    that same code with a widened ``avg_pool3d`` keeps every other step of torch's formula
    (``pow``, ``mul(prod(kernel))``, their gradients) in the low precision, where it can
    overflow exactly as torch's would: a float32 reference cannot show that overflow.
    torch's module is left as it is (see :func:`_lp_pool3d_with`).
    """
    import torch.nn.functional as F

    native = F.avg_pool3d

    def widened(v, *a, **kw):
        return native(v.float(), *a, **kw).to(v.dtype)

    fn = widened if op == "avg_pool3d" else _lp_pool3d_with(widened)
    return fn(x, *args, **kwargs)


def _lp_pool3d_with(avg_pool3d):
    """torch's own ``lp_pool3d`` code, its global name ``avg_pool3d`` bound to ``avg_pool3d``.

    A new function object over ``lp_pool3d``'s code and a copy of its module's globals: nothing
    in ``torch.nn.functional`` changes, so other threads and later calls see torch as shipped.
    """
    import types

    import torch.nn.functional as F

    native = F.lp_pool3d
    if "avg_pool3d" not in native.__code__.co_names or native.__closure__:
        raise RuntimeError("torch.nn.functional.lp_pool3d no longer calls the module's avg_pool3d; "
                           "the float16/bfloat16 lp_pool3d reference needs a new way to widen it")
    scope = dict(native.__globals__, avg_pool3d=avg_pool3d)
    fn = types.FunctionType(native.__code__, scope, native.__name__, native.__defaults__)
    fn.__kwdefaults__ = native.__kwdefaults__
    return fn


def _call_jax(case: Case, extra: dict | None = None):
    fn = getattr(jaxpool, case.op)
    kwargs = dict(case.kwargs, **(extra or {}))
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
    if case.op in FRACTIONAL_OPS:
        import torch

        samples = fractional_samples(case)
        wide = samples.astype(np.float32) if case.dtype == "bfloat16" else samples  # exact either way
        t_samples = torch.from_numpy(wide).to(getattr(torch, case.dtype))
        return compare_with_torch(_call_jax(case, {"_random_samples": jnp.asarray(samples)}),
                                  _call_torch(case, {"_random_samples": t_samples}), x,
                                  grad=grad, seed=case.seed)
    return compare_with_torch(_call_jax(case), _call_torch(case), x, grad=grad, seed=case.seed)


def fractional_samples(case: Case) -> np.ndarray:
    """``(N', C, ndim)`` samples in ``[0, 1)`` in the case's dtype, sometimes with extra rows.

    A few are exactly 0 or the largest value below 1 of the dtype (the interval rule's ends).
    """
    rng = np.random.default_rng(case.seed + 1000)
    batched = len(case.shape) == case.ndim + 2
    channels = case.shape[1] if batched else case.shape[0]
    rows = (case.shape[0] if batched else 1) + int(rng.integers(0, 2))
    u = rng.random((rows, channels, case.ndim))
    below_one = float(np.nextafter(np.asarray(1, case.dtype), np.asarray(0, case.dtype)))
    pick = rng.random(u.shape)
    u[pick < 0.1] = 0.0
    u[pick > 0.9] = below_one
    samples = u.astype(jnp.dtype(case.dtype))
    return np.minimum(samples, np.asarray(below_one, samples.dtype))  # rounding may reach 1


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
    """All 1-d configs, or ``count`` random per-axis combinations of them for 2-d/3-d.

    ``ceil_mode`` is one flag for all axes, so a combination draws every axis from the
    configurations valid under the same flag.
    """
    if ndim == 1:
        return [(c,) for c in axis_configs]
    by_flag = {flag: [c for c in axis_configs if c[5] == flag] for flag in (False, True)}
    combos = []
    for _ in range(count):
        pool = by_flag[bool(rng.random() < 0.5)] or axis_configs
        combos.append(tuple(pool[i] for i in rng.integers(0, len(pool), ndim)))
    return combos


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
    1-d axis configuration and ``per_op`` (default 500) random 2-d/3-d combinations of them.
    ``dtypes`` restricts the dtypes (default: float32 mostly, every other dtype sampled).
    Fractional max pooling gets ``per_op`` (default 40 quick, 500 full) random configurations
    PyTorch accepts, each run with shared ``_random_samples`` (:func:`fractional_samples`).
    """
    ops = OPS if ops is None else tuple(ops)
    fractional_count = per_op or (40 if level == "quick" else 500)
    per_op = per_op or (60 if level == "quick" else 500)
    for op in ops:
        family, ndim = op[:-2], int(op[-2])
        rng = np.random.default_rng(_stable_seed(op))
        float_dtypes = dtypes or ("float32",) * 5 + FLOAT_DTYPES
        if op in FRACTIONAL_OPS:
            for seed in range(fractional_count):
                yield _fractional_case(op, ndim, rng, float_dtypes, seed)
            continue
        if family == "max_pool" and dtypes is None:
            float_dtypes = float_dtypes + INT_DTYPES
        if family in ADAPTIVE:
            configs = _adaptive_configs(level, ndim, per_op, rng)
        else:
            axis = [c for c in fixed_axis_configs(level, dilated=family == "max_pool")
                    if _fits(family, ndim, *c)]
            configs = _combine(axis, ndim, per_op, rng)
        if level == "quick" and len(configs) > per_op:
            configs = [configs[i] for i in sorted(rng.choice(len(configs), per_op, replace=False))]
        for seed, config in enumerate(configs):
            dtype, values, channels_last = _variant(rng, family, float_dtypes)
            yield _build(family, ndim, config, dtype, values, channels_last, seed, rng)


def _fits(family: str, ndim: int, size, k, s, p, d, ceil) -> bool:
    """Per-axis rules of an op beyond the generic fixed-window ones."""
    if family == "lp_pool":  # LP pools without padding
        return windows.pooling_output_size(size, k, s, 0, 1, ceil) >= 1 and (ndim < 3 or size >= k)
    if family == "avg_pool" and ndim == 3:  # torch's avg_pool3d: input >= kernel
        return size >= k
    if family == "max_unpool":  # input from a floor-mode max_pool; unpooled back to `size`
        default = (windows.pooling_output_size(size, k, s, p, 1, False) - 1) * s - 2 * p + k
        return not ceil and default - s < size < default + s
    return True


def _fractional_case(op, ndim, rng, dtypes, seed) -> Case:
    """A random fractional case that PyTorch accepts: ``out + k - 1 <= in`` (2-d) or ``< in`` (3-d)."""
    strict = ndim == 3
    kernel, spatial, out = [], [], []
    for _ in range(ndim):
        k = int(rng.integers(1, 5))
        size = int(rng.integers(k + strict, k + strict + 14))
        kernel.append(k)
        spatial.append(size)
        out.append(int(rng.integers(1, size - k + 2 - strict)))
    kwargs = [("return_indices", bool(rng.random() < 0.7))]
    if rng.random() < 0.3:  # output_ratio; its int(size * ratio) must fit as well
        ratio = tuple(float(rng.choice((0.2, 0.25, 0.3, 0.5, 0.7, 0.75))) for _ in range(ndim))
        if all(int(i * r) + k - 1 < i + (not strict) for i, r, k in zip(spatial, ratio, kernel)):
            # torch's 2-d functional takes len() of the ratio, so a scalar only in 3-d
            kwargs.insert(0, ("output_ratio", ratio[0] if ndim == 3 and len(set(ratio)) == 1 else ratio))
    if len(kwargs) == 1:
        kwargs.insert(0, ("output_size", out[0] if len(set(out)) == 1 else tuple(out)))
    k = kernel[0] if len(set(kernel)) == 1 else tuple(kernel)
    dtype, values, channels_last = _variant(rng, "fractional_max_pool", dtypes)
    return Case(op, _shape(rng, ndim, tuple(spatial)), (k,), tuple(kwargs), dtype, values, channels_last, seed)


def _stable_seed(text: str) -> int:
    return int.from_bytes(text.encode(), "little") % (2**32)


def _adaptive_configs(level, ndim, count, rng):
    sizes = ADAPTIVE_SIZES[level]
    pairs = [(i, o) for i in sizes for o in sizes + ((None,) if ndim > 1 else ())]
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
        # an int stands for equal sizes; None only inside a tuple (torch: TypeError for bare None)
        single = len(set(out)) == 1 and out[0] is not None and rng.random() < 0.3
        output_size = out[0] if ndim == 1 or single else out
        kwargs = (("return_indices", bool(rng.random() < 0.7)),) if family == "adaptive_max_pool" else ()
        return Case(op, _shape(rng, ndim, spatial), (output_size,), kwargs, dtype, values, channels_last, seed)
    spatial, k, s, p, d, ceil = (tuple(c[i] for c in config) for i in range(6))
    kernel = k[0] if len(set(k)) == 1 and (rng.random() < 0.5 or family == "lp_pool" and ndim == 1) else k
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
    # so the case's shape is the *pooling* input; unpooling restores that size, explicitly or
    # (when it is the default) implicitly.
    default = tuple((windows.pooling_output_size(i, kk, st, pp, 1, False) - 1) * st - 2 * pp + kk
                    for i, kk, st, pp in zip(spatial, k, s, p))
    kwargs = ()
    if default != spatial or rng.random() < 0.5:
        full = len(shape) == ndim + 2 and not channels_last and rng.random() < 0.3
        kwargs = (("output_size", shape if full else spatial),)
    return Case(op, shape, (kernel, s, p), kwargs, dtype, values if values != "special" else "normal",
                channels_last, seed)
