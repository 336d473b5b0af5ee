"""Check a JAX function against its PyTorch counterpart: values, integer outputs, gradients.

For users verifying their own ports, and used by jaxpool's own tests and ``jaxpool parity``::

    from jaxpool.testing import assert_matches_torch
    assert_matches_torch(
        lambda x: jaxpool.max_pool2d(x, 3, 2, 1, return_indices=True),
        lambda x: torch.nn.functional.max_pool2d(x, 3, 2, 1, return_indices=True),
        np.random.randn(2, 3, 9, 9).astype(np.float32),
    )

PyTorch is imported only when these functions run.  The rest of jaxpool's parity tooling lives
beside this module, out of the operators' import path: :mod:`jaxpool.testing.sweep` (every
operator's cases, and the PyTorch references they run) and ``jaxpool.testing._run`` (the runner
and report of ``jaxpool parity``).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Mismatch", "compare_with_torch", "assert_matches_torch", "tolerance"]

# (rtol, atol) of values and of gradients, relative to the output's scale.
_TOLERANCES = {
    "float64": (1e-12, 1e-12),
    "float32": (1e-6, 1e-6),
    "float16": (2e-3, 2e-3),
    "bfloat16": (1.6e-2, 1.6e-2),
}
_GRAD_TOLERANCES = {"float64": 1e-12, "float32": 1e-5, "float16": 4e-3, "bfloat16": 3.2e-2}


def tolerance(dtype) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing values of this dtype (0, 0 for integers: exact)."""
    return _TOLERANCES.get(np.dtype(dtype).name, (0.0, 0.0))


class Mismatch(AssertionError):
    """jaxpool and PyTorch disagree; the message says which output and by how much."""


@dataclasses.dataclass
class Comparison:
    """What :func:`compare_with_torch` measured: the largest scaled error of any output."""

    max_error: float = 0.0
    outputs: int = 0


def _to_torch(a: np.ndarray, requires_grad: bool):
    import torch

    if a.dtype.name == "bfloat16":
        t = torch.from_numpy(a.astype(np.float32)).to(torch.bfloat16)
    else:
        t = torch.from_numpy(np.ascontiguousarray(a))
    if requires_grad:
        t.requires_grad_(True)
    return t


def _to_numpy(t) -> np.ndarray:
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy()
    return t.numpy()


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _differentiable(a) -> bool:
    return np.issubdtype(np.asarray(a).dtype, np.floating) or np.asarray(a).dtype.name == "bfloat16"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i[0]) for i in np.nonzero(mask)) if mask.ndim else ()


def _error(expected: np.ndarray, actual: np.ndarray, rtol: float, atol: float, what: str) -> float:
    """Largest ``|a - e| / (atol * scale + rtol * |e|)`` (``scale``: the largest finite ``|e|``, at
    least 1); raises :class:`Mismatch` on a shape difference, an element beyond the tolerance or a
    non-finite element that differs, naming the first such element (see :func:`_mismatch`)."""
    shown_expected, shown_actual = np.asarray(expected), np.asarray(actual)
    floating = expected.dtype.kind == "f" or expected.dtype.name == "bfloat16"
    expected = np.asarray(expected, np.float64) if floating else np.asarray(expected)
    actual = np.asarray(actual, expected.dtype)
    if expected.shape != actual.shape:
        raise Mismatch(f"{what}: shape {actual.shape} != torch's {expected.shape}")
    if not floating or (rtol == 0 and atol == 0):
        bad = expected != actual
        if floating:
            bad &= ~(np.isnan(expected) & np.isnan(actual))
        if bad.any():
            raise _mismatch(what, bad, shown_actual, shown_expected, None)
        return 0.0
    finite = np.isfinite(expected) & np.isfinite(actual)
    same_special = (np.isnan(expected) & np.isnan(actual)) | (expected == actual)
    scale = max(float(np.max(np.abs(expected[finite]))), 1.0) if finite.any() else 1.0
    allowed = atol * scale + rtol * np.abs(expected)
    diff = np.abs(np.subtract(actual, expected, where=finite, out=np.zeros(expected.shape)))
    err = np.divide(diff, allowed, where=finite & (allowed > 0), out=np.where(diff > 0, np.inf, 0.0))
    bad = (~finite & ~same_special) | (err > 1)
    if bad.any():
        raise _mismatch(what, bad, shown_actual, shown_expected, (rtol, atol, scale, err))
    return float(err.max()) if err.size else 0.0


def _mismatch(what: str, bad: np.ndarray, actual: np.ndarray, expected: np.ndarray, tolerance) -> Mismatch:
    """The first differing element in plain numbers: its index, both values, the absolute and
    relative difference and the tolerance, and how many elements differ in all."""
    where = _first(bad)
    a, e = actual[where], expected[where]
    count = f"{int(bad.sum())} of {bad.size} elements differ from torch's"
    first = f"first at index {where}: jaxpool {str(a)} vs torch {str(e)}"  # str: numpy's shortest form
    if tolerance is None:  # integers (indices): exact
        return Mismatch(f"{what}: {count} (exact match required); {first}")
    rtol, atol, scale, err = tolerance
    with np.errstate(invalid="ignore", divide="ignore"):
        d = abs(float(a) - float(e))
        rel = d / abs(float(e)) if float(e) != 0 else (0.0 if d == 0 else float("inf"))
    allowed = atol * scale + rtol * abs(float(e))
    message = (f"{what}: {count} beyond the tolerance (rtol={rtol:g}, atol={atol:g} x scale {scale:g}); "
               f"{first}, abs diff {d:.3g}, rel diff {rel:.3g}, allowed {allowed:.3g}")
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(np.where(np.isfinite(err), err, 0))), err.shape))
    if err[worst] > 1 and worst != where:
        message += f"; largest error {float(err[worst]):.3g}x the tolerance at index {worst}"
    return Mismatch(message)


def compare_with_torch(jax_fn, torch_fn, *inputs, grad: bool = True, seed: int = 0,
                       rtol: float | None = None, atol: float | None = None) -> Comparison:
    """Run both functions on the same numpy ``inputs`` and compare everything they return.

    Floating outputs are compared within the dtype's tolerance (NaN must match NaN, infinities
    must match exactly), integer outputs (indices) exactly.  With ``grad=True`` the gradient of
    ``sum(cotangent * first_output)`` with respect to every floating input is compared too
    (``jax.vjp`` against ``torch.autograd.grad``, one shared random cotangent).  A float16 or
    bfloat16 gradient may match torch's float32 gradient instead (see :func:`_widened_gradients`).

    Returns the largest error as a fraction of the tolerance; raises :class:`Mismatch`.
    """
    import torch

    inputs = tuple(np.asarray(a) for a in inputs)
    diff_mask = [grad and _differentiable(a) for a in inputs]
    t_inputs = [_to_torch(a, g) for a, g in zip(inputs, diff_mask)]
    t_out = _as_tuple(torch_fn(*t_inputs))
    j_inputs = [jnp.asarray(a) for a in inputs]
    jax_fn = jax.jit(jax_fn)
    j_out = _as_tuple(jax_fn(*j_inputs))
    if len(t_out) != len(j_out):
        raise Mismatch(f"jaxpool returned {len(j_out)} outputs, torch {len(t_out)}")

    result = Comparison()
    for k, (t, j) in enumerate(zip(t_out, j_out)):
        expected, actual = _to_numpy(t), np.asarray(j.astype(jnp.float32) if j.dtype == jnp.bfloat16 else j)
        if str(j.dtype) != str(t.dtype).replace("torch.", "") and not (
            expected.dtype.kind == "i" and actual.dtype.kind == "i"  # indices: int32 without x64
        ):
            raise Mismatch(f"output {k}: dtype {j.dtype} != torch's {t.dtype}")
        rt, at = tolerance(j.dtype)
        result.max_error = max(result.max_error, _error(expected, actual, rtol or rt, atol or at, f"output {k}"))
        result.outputs += 1

    if any(diff_mask) and t_out[0].requires_grad:
        rng = np.random.default_rng(seed)
        cot = rng.standard_normal(t_out[0].shape).astype(np.float32)
        t_cot = torch.from_numpy(cot).to(t_out[0].dtype)
        wrt = [t for t, g in zip(t_inputs, diff_mask) if g]
        t_grads = torch.autograd.grad(t_out[0], wrt, t_cot, allow_unused=True)

        def first_output(*diff_args):
            it = iter(diff_args)
            args = [next(it) if g else a for a, g in zip(j_inputs, diff_mask)]
            return _as_tuple(jax_fn(*args))[0]

        @jax.jit  # one program: an eager vjp of jax_fn compiles its forward and backward apart
        def gradients(diff_args, cotangent):
            return jax.vjp(first_output, *diff_args)[1](cotangent)

        j_grads = gradients([a for a, g in zip(j_inputs, diff_mask) if g],
                            jnp.asarray(cot).astype(j_out[0].dtype))
        widened = None
        for k, (tg, jg) in enumerate(zip(t_grads, j_grads)):
            expected = np.zeros(jg.shape, np.float32) if tg is None else _to_numpy(tg)
            actual = np.asarray(jg.astype(jnp.float32) if jg.dtype == jnp.bfloat16 else jg)
            tol = _GRAD_TOLERANCES.get(str(jg.dtype), 1e-5)
            what = f"gradient of input {k}"
            try:
                error = _error(expected, actual, rtol or tol, atol or tol, what)
            except Mismatch as low_precision_mismatch:
                if str(jg.dtype) not in _LOW_PRECISION:
                    raise
                if widened is None:
                    widened = _widened_gradients(torch_fn, inputs, diff_mask, t_cot)
                try:
                    error = _error(widened[k], actual, rtol or tol, atol or tol, what + " (float32 torch)")
                except Mismatch:
                    raise low_precision_mismatch from None
            result.max_error = max(result.max_error, error)
    return result


_LOW_PRECISION = ("float16", "bfloat16")


def _widened_gradients(torch_fn, inputs, diff_mask, t_cot):
    """torch's input gradients with the low-precision inputs and cotangent widened to float32.

    PyTorch's CPU backward kernels for average pooling add every output's share into the input
    gradient in the tensor's own dtype (``grad_input[i] += grad_output[o] / count``), so a
    float16 cell fed by hundreds of windows (adaptive upsampling) carries hundreds of roundings;
    jaxpool accumulates in float32 and rounds once.  A low-precision gradient is therefore
    accepted when it matches either torch's low-precision result or torch's float32 result, at
    the same tolerance: one of torch's two answers, never a looser one.
    """
    import torch

    wide = [_to_torch(a.astype(np.float32) if str(a.dtype) in _LOW_PRECISION else a, g)
            for a, g in zip(inputs, diff_mask)]
    wrt = [t for t, g in zip(wide, diff_mask) if g]
    grads = torch.autograd.grad(_as_tuple(torch_fn(*wide))[0], wrt, t_cot.float(), allow_unused=True)
    return [np.zeros(t.shape, np.float32) if g is None else _to_numpy(g) for t, g in zip(wrt, grads)]


def assert_matches_torch(jax_fn, torch_fn, *inputs, grad: bool = True, seed: int = 0,
                         rtol: float | None = None, atol: float | None = None) -> None:
    """Assert that ``jax_fn`` and ``torch_fn`` agree on ``inputs``; see :func:`compare_with_torch`."""
    compare_with_torch(jax_fn, torch_fn, *inputs, grad=grad, seed=seed, rtol=rtol, atol=atol)
