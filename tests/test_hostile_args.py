"""Hostile size arguments: every operator x every size argument x {0, -1, 2**31, 2**40, 2**63,
10**400, 2.5, True, np.int64(3), None}, beside torch, each family in a child process with a
memory cap and a timeout (tests/hostile_worker.py), so that a hang or a blow-up fails the test
instead of the run.

Every case must end in one of three ways: a clear error (``ValueError``/``TypeError`` naming
the operator and the argument), torch's result, or a difference listed in DIFFERENCES with the
place where the documentation states it.  Never a wrong result, another exception type, a
crash, or a call slower than SLOW_S.
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
