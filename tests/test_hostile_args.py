"""Hostile size arguments: every operator x every size argument x {0, -1, 2**31, 2**40, 2**63,
10**400, 2.5, True, np.int64(3), None}, beside torch, each family in a child process with a
memory cap and a timeout (tests/hostile_worker.py), so that a hang or a blow-up fails the test
instead of the run.

Every case must end in one of three ways: a clear error (``ValueError``/``TypeError`` naming
the operator and the argument), torch's result, or a difference listed in DIFFERENCES with the
place where the documentation states it.  Never a wrong result, another exception type, a
crash, or a call slower than SLOW_S.

The tuple arguments (every operator x every tuple argument x empty, too short, too long, list)
are checked in-process and by tracing only: where torch refuses, jaxpool raises a clear error;
where it accepts, jaxpool accepts with the same meaning (TUPLE_DIFFERENCES lists the documented
exceptions).
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).with_name("hostile_worker.py")
MEMORY = 4 * 2**30  # the child's address-space cap: far above any honest case here
TIMEOUT_S = 400     # a whole family, three dimensionalities, ~100 cases each
SLOW_S = 20.0       # one case, compile included, on a loaded 2-core machine
VALUES = 10         # hostile values per argument (hostile_worker.VALUES)
ARGS = {"max_pool": 4, "avg_pool": 3, "lp_pool": 3, "max_unpool": 4, "adaptive_avg_pool": 1,
        "adaptive_max_pool": 1, "fractional_max_pool": 3, "stochastic_pool": 3}

# (family, argument, value, who accepts) -> where the difference is documented
RULES = "docs/rules.md, 'Where jaxpool deliberately differs'"
DIFFERENCES = {
    **{(f, "output_size", "np.int64(3)", "jax"): f"numpy integer sizes ({RULES})"
       for f in ("adaptive_avg_pool", "adaptive_max_pool")},
    **{("max_unpool", a, "np.int64(3)", "jax"): f"numpy integer sizes ({RULES})"
       for a in ("kernel_size", "stride", "padding")},
    **{(f, "stride", v, "jax"): f"strides beyond 2**31 - 1 ({RULES})"
       for f in ("max_pool", "avg_pool", "lp_pool") for v in ("2**31", "2**40")},
    **{("max_unpool", a, "-1", "torch"): "README, 'Further deliberate differences found by the fuzzer'"
       for a in ("stride", "padding")},
    ("lp_pool", "norm_type", "True", "torch"): f"a bool norm_type ({RULES})",
    **{("max_unpool", a, "2.5", "torch"): f"float sizes ({RULES})" for a in ("kernel_size", "stride")},
    **{("fractional_max_pool", "kernel_size", v, "torch"): f"fractional kernel_size <= 0 ({RULES})"
       for v in ("0", "-1")},
    ("fractional_max_pool", "output_ratio", "0", "torch"): f"3-d output_ratio <= 0 ({RULES})",
}


FULL = os.environ.get("JAXPOOL_FULL") == "1"


def run_family(family: str) -> list[dict]:
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    dims = "all" if FULL else "rotate"  # rotate: each (argument, value) once, in 1-d, 2-d or 3-d
    proc = subprocess.run([sys.executable, str(WORKER), family, str(MEMORY), dims], capture_output=True,
                          text=True, timeout=TIMEOUT_S, env=env)
    assert proc.returncode == 0, f"the {family} worker died ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def classify(case: dict) -> str:
    family = case["op"][:-2]
    if case["jax"] == "error":
        kind, _, message = case["jax_error"].partition(": ")
        # max_unpool checks its indices against the plane the arguments give: naming them is
        # naming the cause
        names = (case["arg"], "index") if family == "max_unpool" else (case["arg"],)
        if kind not in ("ValueError", "TypeError") or case["op"] not in message or not any(
                name in message for name in names):
            return "unclear error"
        if case["torch"] == "ok":
            return "documented difference" if (family, case["arg"], case["value"], "torch") in DIFFERENCES \
                else "undocumented difference"
        return "clear error"
    if case["torch"] == "absent":
        return "computed (no torch op)"
    if case["torch"] == "error":
        return "documented difference" if (family, case["arg"], case["value"], "jax") in DIFFERENCES \
            else "undocumented difference"
    return "correct" if case["agree"] else "WRONG"


@pytest.mark.parametrize("family", sorted(ARGS))
def test_hostile_size_arguments_get_a_clear_error_or_torchs_result(family):
    cases = run_family(family)
    dims = 2 if family == "fractional_max_pool" else 3
    assert len(cases) == (dims if FULL else 1) * ARGS[family] * VALUES  # none was skipped
    if not FULL:  # the rotation meets every operator of the family
        assert len({c["op"] for c in cases}) == dims
    outcomes = collections.Counter(classify(c) for c in cases)
    print(f"\n{family}: {dict(outcomes)}")
    bad = [c for c in cases if classify(c) in ("unclear error", "undocumented difference", "WRONG")]
    assert not bad, "\n".join(json.dumps(c) for c in bad)
    slow = [c for c in cases if c["seconds"] > SLOW_S]
    assert not slow, "\n".join(json.dumps(c) for c in slow)


# ------------------------------------------------------------------ tuple and list arguments

# family: (arguments of a valid call, the tuple arguments to vary one at a time); no indices: the
# arguments are the point, and tracing the index computation would only add seconds
TUPLE_FAMILIES = {
    "max_pool": (dict(kernel_size=2, stride=1, padding=1, dilation=1),
                 ("kernel_size", "stride", "padding", "dilation")),
    "avg_pool": (dict(kernel_size=2, stride=1, padding=1), ("kernel_size", "stride", "padding")),
    "lp_pool": (dict(norm_type=2.0, kernel_size=2, stride=1), ("kernel_size", "stride")),
    "lp_pool+inf": (dict(norm_type=float("inf"), kernel_size=2, stride=1), ("kernel_size",)),
    "max_unpool": (dict(kernel_size=2, stride=2, padding=0), ("kernel_size", "stride", "padding", "output_size")),
    "adaptive_avg_pool": (dict(output_size=3), ("output_size",)),
    "adaptive_max_pool": (dict(output_size=3), ("output_size",)),
    "fractional_max_pool": (dict(kernel_size=2, output_size=3), ("kernel_size", "output_size", "output_ratio")),
}
TUPLE_SHAPES = {1: (2, 3, 7), 2: (2, 3, 7, 6), 3: (1, 2, 7, 6, 5)}
# torch's Python reads the first n values and ignores the rest; jaxpool refuses (docs/rules.md)
TUPLE_DIFFERENCES = {("max_unpool", "stride", "n+1", 1), ("max_unpool", "stride", "n+1", 2),
                     ("max_unpool", "padding", "n+1", 1), ("max_unpool", "padding", "n+1", 2),
                     ("fractional_max_pool", "output_ratio", "n+1", 3)}


def _tuple_variants(full: tuple, with_shape: bool) -> dict:
    """The spellings of an n-tuple argument: empty, too short, too long, as a list."""
    variants = {"()": (), "[]": [], "1-tuple": full[:1], "1-list": list(full[:1]), "list": list(full),
                "tuple": full, "n+1": full + full[:1]}
    if len(full) > 1:
        variants["n-1"] = full[:-1]
    if with_shape:  # max_unpool's output_size may be the full (N, C, *spatial) shape
        variants["n+2"] = (2, 3) + full
    return variants


def _meaning(value, n: int):
    """What torch reads an accepted spelling as: None (the default) or an n-tuple."""
    if len(value) == 0:
        return None
    value = tuple(value)
    return value * n if len(value) == 1 else value[-n:]


def _tuple_cases(family: str):
    base, names = TUPLE_FAMILIES[family]
    op_family = family.split("+")[0]  # lp_pool+inf: lp_pool with norm_type=inf
    dims = (2, 3) if op_family == "fractional_max_pool" else (1, 2, 3)
    for a, name in enumerate(names):
        for n in dims:
            full = {"output_ratio": (0.5,) * n, "output_size": (3,) * n}.get(name, (base.get(name),) * n)
            if op_family == "max_unpool" and name == "output_size":
                full = TUPLE_SHAPES[n][2:]
            variants = _tuple_variants(full, op_family == "max_unpool" and name == "output_size")
            for v, (label, value) in enumerate(variants.items()):
                if FULL or (a + v) % len(dims) == dims.index(n):
                    yield op_family, n, name, label, value


def _tuple_inputs(op_family: str, n: int):
    import numpy as np
    import torch
    import torch.nn.functional as F

    x = np.random.default_rng(n).standard_normal(TUPLE_SHAPES[n]).astype(np.float32)
    kwargs = {"jax": {}, "torch": {}}
    if op_family == "max_unpool":
        pooled, indices = getattr(F, f"max_pool{n}d")(torch.from_numpy(x), 2, 2, return_indices=True)
        kwargs["jax"]["output_size"] = kwargs["torch"]["output_size"] = x.shape[2:]
        return (pooled.numpy(), indices.numpy().astype(np.int32)), (pooled, indices), kwargs
    if op_family == "fractional_max_pool":
        samples = np.random.default_rng(0).uniform(size=(x.shape[0], x.shape[1], n)).astype(np.float32)
        kwargs["jax"]["_random_samples"], kwargs["torch"]["_random_samples"] = samples, torch.from_numpy(samples)
    return (x,), (torch.from_numpy(x),), kwargs


@pytest.mark.parametrize("family", sorted(TUPLE_FAMILIES))
def test_tuple_arguments_are_accepted_and_refused_as_torch(family):
    """Every operator x every tuple argument x {(), [], 1 value, n values as a list or tuple,
    n - 1, n + 1 (and unpool's full shape)}: where torch refuses (any exception), jaxpool
    raises a ValueError/TypeError naming the operator and the argument; where torch accepts,
    jaxpool accepts and means the same: torch's result equals torch's for the spelling's
    meaning (None or an n-tuple), and jaxpool's traced program equals its program for that
    meaning (whose values the parity sweep checks against torch).  Tracing only: no compile.
    The default run turns the dimensionality from case to case; JAXPOOL_FULL=1 runs all."""
    import jax
    import torch
    import torch.nn.functional as F

    import jaxpool
    import jaxpool.config

    base, _ = TUPLE_FAMILIES[family]
    programs, seen, bad = {}, collections.Counter(), []
    for op_family, n, name, label, value in _tuple_cases(family):
        op = f"{op_family}{n}d"
        jax_in, torch_in, extra = _tuple_inputs(op_family, n)

        def kwargs(v, side):
            kw = {**base, **extra[side], name: v}
            if name == "output_ratio":
                kw["output_size"] = None
            return kw

        def program(v):
            key = (op, name, repr(v))  # the argument too: stride=() and padding=() differ
            if key not in programs:
                fn = getattr(jaxpool, op)
                with jaxpool.config.force_portable():  # one route to trace: the arguments are the point
                    programs[key] = str(jax.make_jaxpr(lambda *a: fn(*a, **kwargs(v, "jax")))(*jax_in))
            return programs[key]

        try:
            program(value)
            jax_error = None
        except Exception as e:  # noqa: BLE001  (the kind of error is checked below)
            jax_error = e
        try:
            with torch.no_grad():
                got = getattr(F, op)(*torch_in, **kwargs(value, "torch"))
            torch_error = None
        except Exception as e:  # noqa: BLE001  torch refuses with IndexError, ValueError, RuntimeError...
            torch_error = e
        case = f"{op}({name}={value!r})"
        if jax_error is not None:
            clear = isinstance(jax_error, (ValueError, TypeError)) and op in str(jax_error) and name in str(jax_error)
            if not clear:
                bad.append(f"{case}: unclear error {jax_error!r}")
            elif torch_error is None and (op_family, name, label, n) not in TUPLE_DIFFERENCES:
                bad.append(f"{case}: jaxpool refuses ({jax_error}) but torch accepts")
            seen["refused" if torch_error is not None else "documented difference"] += 1
            continue
        if torch_error is not None:
            bad.append(f"{case}: torch refuses ({type(torch_error).__name__}: {torch_error}) but jaxpool accepts")
            continue
        meaning = _meaning(value, n)
        with torch.no_grad():
            expected = getattr(F, op)(*torch_in, **kwargs(meaning, "torch"))
        same_in_torch = all(torch.equal(a, b) for a, b in zip(*(r if isinstance(r, tuple) else (r,)
                                                                 for r in (got, expected))))
        assert same_in_torch, f"{case}: the test's reading {meaning!r} is not torch's"
        if program(value) != program(meaning):
            bad.append(f"{case}: jaxpool computes something else than for {name}={meaning!r}")
        seen["accepted"] += 1
    print(f"\n{family}: {dict(seen)}")
    assert not bad, "\n".join(bad)
    assert seen["accepted"] and seen["refused"], seen  # the table meets both sides
