"""Fuzzing against PyTorch: random operator, shape, arguments and dtype, valid or not.

For every generated call, jaxpool and torch must either both accept it with equal values,
indices and gradients (:func:`jaxpool.testing.sweep.run_case` / :func:`jaxpool.testing.compare_with_torch`)
or both reject it (jaxpool with ``ValueError``/``TypeError``).  Arguments are drawn from ranges
that include what torch rejects: zero and negative sizes, padding over half the kernel, wrong
tuple lengths, wrong ranks, empty dims, output sizes below 1, bad ``max_unpool`` indices and
``output_size``, unsupported dtypes.

Deliberate differences (README "Where jaxpool deliberately differs") are counted, not failed:

* ``empty dilated window``: a dilated max-pool window whose taps all miss the input; jaxpool
  rejects it, torch accepts it with an out-of-plane index.  torch is only run *forward* on
  it: its backward writes out of bounds and corrupts the heap.
* ``unpool arguments``: ``max_unpool`` with a non-positive kernel_size/stride or a negative
  padding, or a 1-d/2-d stride or padding with more values than spatial dims; torch does not
  check them (only the resulting output size; its Python ignores the extra values), jaxpool
  rejects them.
* ``integer lp_pool`` (bool too): torch's lp_pool is Python over ``input.pow(p)`` and avg_pool;
  jaxpool computes the same for the integer dtypes and ``p`` torch accepts (tests/test_dtypes.py),
  and a case is counted here only where the two still part (e.g. an int ``p`` without x64).
* ``torch's global adaptive_avg_pool skips its rank check``: output size 1 is computed by
  ``input.mean()`` before torch checks the rank; jaxpool rejects the wrong rank.
* integer ``max_pool1d`` without indices: torch's index-free kernel lacks integer support;
  the comparison takes torch's values from its indices path (:mod:`jaxpool.testing.sweep`).

torch is run forward only, and only after jaxpool, on every configuration jaxpool rejects.

Default: 40 examples.  ``JAXPOOL_FULL=1`` runs ``JAXPOOL_FUZZ_EXAMPLES`` (default 10,000);
``JAXPOOL_FUZZ_SEED`` picks the generator seed (split a long run over processes) and
``JAXPOOL_FUZZ_REPORT=path`` writes the counts as JSON.
"""

from __future__ import annotations

import collections
import json
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import jaxpool
from jaxpool.testing import sweep as parity
from jaxpool.testing import Mismatch, _to_torch, compare_with_torch

FULL = os.environ.get("JAXPOOL_FULL") == "1"
EXAMPLES = int(os.environ.get("JAXPOOL_FUZZ_EXAMPLES", 10_000)) if FULL else 40
SEED = int(os.environ.get("JAXPOOL_FUZZ_SEED", 0))
REPORT = os.environ.get("JAXPOOL_FUZZ_REPORT")

FLOATS = parity.FLOAT_DTYPES
DTYPES = FLOATS * 3 + parity.INT_DTYPES + ("bool",)


# ------------------------------------------------------------------------------- strategies

def sizes(n: int, lo: int, hi: int, none: bool = False):
    """An int, or a tuple of usually ``n`` (sometimes n-1 or n+1) ints, in ``[lo, hi]``."""
    item = st.one_of(st.none(), st.integers(lo, hi)) if none else st.integers(lo, hi)
    lengths = st.sampled_from((n,) * 6 + (n - 1, n + 1))
    return st.one_of(st.integers(lo, hi), lengths.flatmap(lambda k: st.tuples(*[item] * k)))


@st.composite
def input_shape(draw, n: int, bad: bool):
    """A valid rank with small sizes; when ``bad``, sometimes a wrong rank or an empty dim."""
    rank = draw(st.sampled_from((n + 2,) * 8 + (n + 1,) * 3 + ((n, n + 3) if bad else ())))
    spatial = [draw(st.integers(1, 9)) for _ in range(n)]
    if bad and draw(st.integers(0, 5)) == 0:
        spatial[draw(st.integers(0, n - 1))] = 0
    lead = [draw(st.sampled_from((0, 1, 1, 2, 3) if bad else (1, 1, 2, 3))),
            draw(st.sampled_from((0, 1, 2, 2, 3) if bad else (1, 2, 3)))]
    full = lead + spatial
    if rank == n + 2:
        return tuple(full)
    if rank == n + 1:
        return tuple(full[1:])
    if rank == n:
        return tuple(spatial)
    return (2,) + tuple(full)


@st.composite
def fuzz_case(draw):
    """Half the examples draw every argument from a range torch accepts ("plausible"), half
    from ranges that include what it rejects ("hostile")."""
    bad = draw(st.booleans())
    family = draw(st.sampled_from(parity.FAMILIES))
    n = draw(st.integers(1, 3))
    op = f"{family}{n}d"
    shape = draw(input_shape(n, bad))
    if bad:
        dtype = draw(st.sampled_from(DTYPES))
    elif family == "max_pool":
        dtype = draw(st.sampled_from(FLOATS * 2 + parity.INT_DTYPES))
    else:
        dtype = draw(st.sampled_from(FLOATS))
    values = "normal"
    if family in ("max_pool", "adaptive_max_pool"):
        values = draw(st.sampled_from(("normal", "ties", "special")))
    elif draw(st.booleans()):
        values = "ties"
    channels_last = draw(st.integers(0, 4)) == 0
    s = draw(st.integers(0, 2**16))
    if bad:
        kernel = draw(sizes(n, -1, 6))
        stride = draw(st.one_of(st.none(), sizes(n, -1, 4)))
        padding = draw(sizes(n, -1, 3))
        dilation = draw(sizes(n, 0, 3))
    else:
        k = [draw(st.integers(1, 4)) for _ in range(n)]
        kernel = k[0] if len(set(k)) == 1 and draw(st.booleans()) else tuple(k)
        stride = draw(st.one_of(st.none(), st.integers(1, 3), st.tuples(*[st.integers(1, 3)] * n)))
        padding = tuple(draw(st.integers(0, kk // 2)) for kk in k)
        dilation = draw(st.one_of(st.just(1), st.integers(1, 2), st.tuples(*[st.integers(1, 3)] * n)))
    if family == "max_pool":
        args = (kernel, stride, padding, dilation, draw(st.booleans()))
        kwargs = (("return_indices", draw(st.booleans())),)
    elif family == "avg_pool":
        args = (kernel, stride, padding, draw(st.booleans()), draw(st.booleans()))
        if n > 1:
            args += (draw(st.sampled_from((None,) * 4 + ((-2, 0, 1, 3, 7) if bad else (1, 3, 7)))),)
        kwargs = ()
    elif family == "lp_pool":
        norms = (1, 2, 3, 1.5, 0.5, float("inf"), float("-inf"), -1) + ((0,) if bad else ())
        args, kwargs = (draw(st.sampled_from(norms)), kernel, stride, draw(st.booleans())), ()
    elif family == "max_unpool":
        if bad:
            output = draw(st.one_of(st.none(), st.just("near"),
                                    sizes(n, -1, 12).filter(lambda v: not isinstance(v, int)),
                                    st.tuples(*[st.integers(0, 12)] * (n + 2))))
        else:
            output = draw(st.sampled_from((None, "near")))
        args, kwargs = (kernel, stride, padding), (("output_size", output),)
        values = draw(st.sampled_from(("valid",) * 3 + (("out of range",) if bad else ())))
    else:
        args = (draw(sizes(n, -2, 8, none=n > 1)) if bad else
                draw(st.one_of(st.integers(1, 8), st.tuples(*[st.integers(1, 8)] * n)) if n > 1
                     else st.integers(1, 8)),)
        if family == "adaptive_max_pool":
            args += (draw(st.booleans()),)
        kwargs = ()
    return parity.Case(op, shape, args, kwargs, dtype, values, channels_last, s)


# ------------------------------------------------------------------------------- one example

def _x64(case):
    return jax.enable_x64(case.dtype in ("float64", "int64"))


def _input(case) -> np.ndarray:
    if case.dtype == "bool":
        return np.random.default_rng(case.seed).random(case.shape) < 0.5
    if case.family == "max_unpool":
        return parity.make_input(dataclasses_replace(case, values="normal"))
    return parity.make_input(case)


def dataclasses_replace(case, **changes):
    import dataclasses
    return dataclasses.replace(case, **changes)


def _unpool_inputs(case):
    """Values, indices and the concrete ``output_size`` of a fuzzed ``max_unpool`` case.

    ``output_size="near"`` becomes a size within ``default +- (stride - 1)`` (how odd sizes
    are restored).  Indices are distinct within each plane where the plane is large enough
    (which value lands on a shared index is unspecified, in torch as here); otherwise every
    value of a plane is equal.  "out of range" cases put one index at ``plane`` or ``-1``.
    """
    values = _input(case)
    n = case.ndim
    rng = np.random.default_rng(case.seed)
    output = dict(case.kwargs)["output_size"]
    if output == "near":
        output = _near_default(case, values.shape, rng)
    plane = _torch_plane(case, values, output)
    if plane is None:  # torch rejects the arguments; any indices will do
        plane = 4
    lead = values.shape[: values.ndim - n] if values.ndim >= n else ()
    cells = math.prod(values.shape[values.ndim - n:]) if values.ndim >= n else 1
    planes = math.prod(lead)
    if plane and cells <= plane:
        idx = np.stack([rng.choice(plane, cells, replace=False) for _ in range(planes)]) if planes else \
            np.zeros((0, cells), np.int64)
    else:
        idx = rng.integers(0, max(plane, 1), (planes, cells))
        first = values.reshape(planes, cells)[:, :1]
        values = np.broadcast_to(first, (planes, cells)).reshape(values.shape).copy()
    if case.values == "out of range" and idx.size:
        idx.flat[rng.integers(0, idx.size)] = plane if rng.random() < 0.5 else -1
    return values, idx.reshape(values.shape).astype(np.int64), output


def _near_default(case, shape, rng):
    from jaxpool import _args

    n = case.ndim
    try:
        kernel = _args.int_tuple(case.args[0], n, "k", "fuzz")
        stride = kernel if case.args[1] is None else _args.int_tuple(case.args[1], n, "s", "fuzz")
        padding = _args.int_tuple(case.args[2], n, "p", "fuzz")
    except (TypeError, ValueError):
        return None
    spatial = shape[len(shape) - n:]
    return tuple(int((i - 1) * s - 2 * p + k + rng.integers(-abs(s) + 1, abs(s))) if s else int(i)
                 for i, k, s, p in zip(spatial, kernel, stride, padding))


def _torch_plane(case, values, output):
    """torch's output plane size for these arguments (None when torch rejects them)."""
    n = case.ndim
    if values.ndim not in (n + 1, n + 2):
        return None
    try:
        fn = getattr(F, f"max_unpool{n}d")
        res = fn(torch.zeros(values.shape), torch.zeros(values.shape, dtype=torch.long), *case.args, output)
        return math.prod(res.shape[res.ndim - n:])
    except Exception:  # noqa: BLE001
        return None


def _all_ones(output_size) -> bool:
    sizes = output_size if isinstance(output_size, tuple) else (output_size,)
    return all(s == 1 for s in sizes)


def _compare_upcast(jax_out, torch_fn, inputs):
    """jaxpool's outputs against torch run on float64 values, rounded to jaxpool's dtype."""
    from jaxpool.testing import _error, tolerance

    up = [a.astype(np.float64) if k == 0 else a for k, a in enumerate(inputs)]
    with torch.no_grad():
        t_out = torch_fn(*[torch.from_numpy(np.ascontiguousarray(a)) for a in up])
    t_out = t_out if isinstance(t_out, tuple) else (t_out,)
    j_out = jax_out if isinstance(jax_out, tuple) else (jax_out,)
    assert len(t_out) == len(j_out)
    for k, (t, j) in enumerate(zip(t_out, j_out)):
        a = np.asarray(j)
        if a.dtype.kind == "f" or a.dtype.name == "bfloat16":
            expected, actual = t.numpy().astype(a.dtype).astype(np.float64), a.astype(np.float64)
        else:
            expected, actual = t.numpy().astype(a.dtype), a
        _error(expected, actual, *tolerance(a.dtype), f"output {k} (torch in float64)")


def _channels_last_fn(fn, case, ndim):
    batched = len(case.shape) == ndim + 2
    first = 1 if batched else 0

    def call(*inputs, **kw):
        moved = [jnp.moveaxis(a, first, -1) for a in inputs]
        out = fn(*moved, channels_last=True, **kw)
        back = lambda a: jnp.moveaxis(a, -1, first)  # noqa: E731
        return tuple(map(back, out)) if isinstance(out, tuple) else back(out)

    return call


def classify(case) -> str:
    """Run one fuzzed case; return its outcome, raise Mismatch on a disagreement."""
    with _x64(case):
        return _classify(case)


def _layout_ok(case):
    return len(case.shape) in (case.ndim + 1, case.ndim + 2)


def _classify(case) -> str:
    kwargs = dict(case.kwargs)
    if case.family == "max_unpool":
        values, indices, output = _unpool_inputs(case)
        kwargs["output_size"] = output
        inputs = (values, indices)
        jax_fn = getattr(jaxpool, case.op)
        torch_fn = lambda v, i: getattr(F, case.op)(v, i.long(), *case.args, **kwargs)  # noqa: E731
        jax_call = lambda v, i: jax_fn(v, i, *case.args, **kwargs)  # noqa: E731
    else:
        inputs = (_input(case),)
        if case.dtype == "bool" or case.op == "max_pool1d" and case.dtype in parity.INT_DTYPES:
            torch_fn = parity._call_torch(dataclasses_replace(case, dtype="int32")) if case.dtype != "bool" \
                else (lambda x: getattr(F, case.op)(x, *case.args, **kwargs))
        else:
            torch_fn = parity._call_torch(case)
        jax_fn = getattr(jaxpool, case.op)
        jax_call = lambda x: jax_fn(x, *case.args, **kwargs)  # noqa: E731
    if case.channels_last and _layout_ok(case) and all(s > 0 for s in case.shape):
        jax_call = _channels_last_fn(
            lambda *a, channels_last: getattr(jaxpool, case.op)(*a, *case.args, channels_last=True, **kwargs),
            case, case.ndim)

    # jaxpool first, eagerly: the error must be ValueError/TypeError, raised before running.
    try:
        jax.eval_shape(jax_call, *map(jnp.asarray, inputs))
        jax_out = jax_call(*map(jnp.asarray, inputs))  # eager: concrete unpool indices are checked
        jax_error = None
    except (ValueError, TypeError) as e:
        jax_error = e
    # torch forward only (never backward on what jaxpool rejected: heap corruption)
    try:
        with torch.no_grad():
            torch_fn(*[_to_torch(a, False) for a in inputs])
        torch_error = None
    except Exception as e:  # noqa: BLE001  torch raises RuntimeError/ValueError/TypeError/IndexError
        torch_error = e

    if jax_error is not None and torch_error is not None:
        return "both rejected"
    if jax_error is not None:
        msg = str(jax_error)
        if "reads no input" in msg:
            return "known: empty dilated window"
        if case.family == "max_unpool" and (any(w in msg for w in ("must be greater than zero", "must be non-negative"))
                                            or any(f"{w} must be an int or a tuple of exactly" in msg
                                                   for w in ("stride", "padding"))):
            return "known: unpool arguments"
        if case.op.startswith("adaptive_avg") and "non-zero size" in msg and _all_ones(case.args[0]):
            return "known: adaptive_avg to size 1 of an empty input"
        if case.family == "lp_pool" and case.dtype in parity.INT_DTYPES + ("bool",) and "dtype" in msg:
            return "known: integer lp_pool"
        if case.op in ("adaptive_avg_pool2d", "adaptive_avg_pool3d") and "dimensions" in msg \
                and _all_ones(case.args[0]):
            # aten's adaptive_avg_pool2d/3d turn output size 1 into input.mean(-1, -2[, -3])
            # before checking the rank, so torch accepts a 2-d (resp. 3-d) input there
            return "known: torch's global adaptive_avg_pool skips its rank check"
        raise Mismatch(f"{case}: jaxpool rejects ({type(jax_error).__name__}: {msg}) but torch accepts")
    if torch_error is not None and "not implemented for" in str(torch_error):
        # torch's CPU kernel lacks this dtype (e.g. unbatched avg_pool3d/lp_pool3d in bfloat16,
        # uint16+ max_pool); jaxpool supports it: check it against torch on float64 input.
        _compare_upcast(jax_out, torch_fn, inputs)
        return "known: dtype torch's kernel lacks (equal to torch in float64)"
    if torch_error is not None:
        raise Mismatch(f"{case}: torch rejects ({type(torch_error).__name__}: {torch_error}) "
                       f"but jaxpool accepts, output {jax.tree.map(jnp.shape, jax_out)}")
    grad = case.dtype in FLOATS
    try:
        compare_with_torch(jax_call, torch_fn, *inputs, grad=grad, seed=case.seed)
    except RuntimeError as e:
        # torch's pooling backward kernels reject an output with an empty non-batch dim
        # ("Expected grad_output to have non-zero size ..."; unpool: "index 0 is out of
        # bounds"), although the forward returns it.  Compare the forward only.
        empty = any(d == 0 for out in jax.tree.leaves(jax_out) for d in jnp.shape(out))
        if not (grad and empty and ("grad_output" in str(e) or "out of bounds" in str(e))):
            raise
        compare_with_torch(jax_call, torch_fn, *inputs, grad=False, seed=case.seed)
        return "accepted equal (forward; torch's backward rejects the empty output)"
    if case.op == "max_pool1d" and case.dtype in parity.INT_DTYPES and not kwargs.get("return_indices"):
        return "accepted equal (integer max_pool1d via torch's indices path)"
    return "accepted equal"


# ------------------------------------------------------------------------------- the test

def _write_report(counts, disagreements) -> dict:
    summary = {"seed": SEED, "examples": sum(counts.values()), **dict(sorted(counts.items())),
               "disagreements": disagreements[:50]}
    if REPORT:
        with open(REPORT, "w") as f:
            json.dump(summary, f, indent=1)
    return summary


def test_fuzz_against_torch():
    counts = collections.Counter()
    disagreements = []

    @seed(SEED)
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=False, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(fuzz_case())
    def check(case):
        try:
            counts[classify(case)] += 1
        except Exception as e:  # noqa: BLE001  recorded, and the test fails at the end
            counts["disagreement"] += 1
            disagreements.append(f"{case}: {type(e).__name__}: {str(e)[:500]}")
        if REPORT and sum(counts.values()) % 25 == 0:  # a long run reports as it goes
            _write_report(counts, disagreements)

    check()
    summary = _write_report(counts, disagreements)
    print(json.dumps(summary, indent=1))
    assert not disagreements, "\n".join(disagreements[:20])
    # the generator must exercise both sides of the contract
    assert counts["accepted equal"] > EXAMPLES // 20 and counts["both rejected"] > EXAMPLES // 10, counts
