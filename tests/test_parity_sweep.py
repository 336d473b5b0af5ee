"""jaxpool against torch over the built-in sweep: values, indices and input gradients.

The quick sweep runs by default; ``JAXPOOL_FULL=1`` runs every per-axis configuration PyTorch
accepts (1-d) and 500 random 2-d/3-d combinations per operator.
"""

import collections
import os

import pytest

from jaxpool import config
from jaxpool.testing import sweep as parity

FULL = os.environ.get("JAXPOOL_FULL") == "1"

LEVEL = "full" if FULL else "quick"
PER_OP = None if FULL else 15  # the default run's share of the 15-minute budget; every op and dtype
CASES = list(parity.cases(level=LEVEL, per_op=PER_OP))


def test_sweep_covers_every_op_and_dtype():
    """A sweep that silently shrank would pass vacuously: pin its coverage."""
    per_op = collections.Counter(c.op for c in CASES)
    assert set(per_op) == set(parity.OPS)
    assert min(per_op.values()) >= (PER_OP or 40)
    dtypes = {c.dtype for c in CASES}
    assert set(parity.FLOAT_DTYPES) <= dtypes and set(parity.INT_DTYPES) <= dtypes
    assert {c.values for c in CASES} == {"normal", "ties", "special"}
    assert any(c.channels_last for c in CASES) and any(len(c.shape) == c.ndim + 1 for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matches_torch(case):
    parity.run_case(case)


DTYPE_CASES = [
    parity.Case(op, shape, args, kwargs, dtype, "ties" if dtype in parity.INT_DTYPES else "normal", seed=7)
    for op, shape, args, kwargs in [
        ("max_pool1d", (2, 3, 11), (3, 2, 1, 2, True), (("return_indices", True),)),
        ("max_pool2d", (2, 3, 9, 8), (3, 2, 1, 1, True), (("return_indices", True),)),
        ("max_pool3d", (1, 2, 5, 6, 7), (2, 2, 1, 2, False), (("return_indices", True),)),
        ("avg_pool1d", (2, 3, 11), (3, 2, 1, True, False), ()),
        ("avg_pool2d", (2, 3, 9, 8), (3, 2, 1, True, True), ()),
        ("avg_pool3d", (1, 2, 5, 6, 7), (3, 2, 1, False, False, 5), ()),
        ("lp_pool1d", (2, 3, 11), (2, 3, 2, True), ()),
        ("lp_pool2d", (2, 3, 9, 8), (3, 2, 2, False), ()),
        ("lp_pool3d", (1, 2, 5, 6, 7), (1.5, 2, 2, True), ()),
        ("max_unpool1d", (2, 3, 11), (2, 2, 0), (("output_size", (11,)),)),
        ("max_unpool2d", (2, 3, 9, 8), (3, 2, 1), (("output_size", (9, 8)),)),
        ("max_unpool3d", (1, 2, 5, 6, 7), (2, 2, 0), (("output_size", (5, 6, 7)),)),
        ("adaptive_avg_pool1d", (2, 3, 11), (4,), ()),
        ("adaptive_avg_pool2d", (2, 3, 9, 8), ((5, None),), ()),
        ("adaptive_avg_pool3d", (1, 2, 5, 6, 7), ((2, 9, 3),), ()),
        ("adaptive_max_pool1d", (2, 3, 11), (4, True), ()),
        ("adaptive_max_pool2d", (2, 3, 9, 8), ((5, 11), True), ()),
        ("adaptive_max_pool3d", (1, 2, 5, 6, 7), ((None, 4, 3), True), ()),
    ]
    for dtype in parity.FLOAT_DTYPES + (parity.INT_DTYPES if op.startswith("max_pool") else ())
]


# The default run takes the (op, dtype) pairs the quick sweep does not meet, and every
# half-precision case (where each op rounds on its own); JAXPOOL_FULL=1 runs them all.
_SWEPT = {(c.op, c.dtype) for c in CASES}
DEFAULT_DTYPE_CASES = DTYPE_CASES if FULL else [
    c for c in DTYPE_CASES if (c.op, c.dtype) not in _SWEPT or c.dtype in ("float16", "bfloat16")]


def test_every_op_meets_every_dtype_in_the_default_run():
    assert {(c.op, c.dtype) for c in DTYPE_CASES} <= _SWEPT | {(c.op, c.dtype) for c in DEFAULT_DTYPE_CASES}


@pytest.mark.parametrize("case", DEFAULT_DTYPE_CASES, ids=str)
def test_every_dtype(case):
    parity.run_case(case)


# Stride-1 max windows padded along the minor axis fold from one lowest-filled padded copy
# (_cpu_max_direct._fold_padded), up to MAX_PADDED_FOLD_TAPS taps: 3x3 and 5x5 in 2-d, 3x3x3 in 3-d,
# dilated, with a strided major axis, channels-last and unbatched; values, indices, gradients.
# The default run turns through the (dtype, values) kinds, three per configuration, so that
# every kind meets two configurations; JAXPOOL_FULL=1 runs every pair.
PADDED_FOLD_KINDS = [("float32", "normal"), ("float32", "ties"), ("float32", "special"),
                     ("float16", "special"), ("bfloat16", "ties"), ("float64", "special"),
                     ("int8", "ties"), ("uint8", "ties"), ("int64", "ties")]
PADDED_FOLD_CASES = [
    parity.Case(op, shape, args, (("return_indices", True),), dtype, values, channels_last, seed=11)
    for k, (op, shape, args, channels_last) in enumerate([
        ("max_pool2d", (2, 3, 9, 8), (3, 1, 1), False),
        ("max_pool2d", (2, 3, 9, 8), (5, 1, 2), True),
        ("max_pool2d", (3, 10, 9), ((3, 5), (2, 1), (1, 2), (1, 2), True), False),
        ("max_pool2d", (2, 2, 11, 10), (9, 1, 4), False),
        ("max_pool3d", (1, 2, 5, 6, 7), (3, 1, 1), False),
        ("max_pool3d", (1, 2, 5, 6, 7), ((2, 3, 3), 1, 1, (2, 1, 1)), True),
    ])
    for j, (dtype, values) in enumerate(PADDED_FOLD_KINDS)
    if FULL or (j - 3 * k) % len(PADDED_FOLD_KINDS) < 3
]


def test_padded_folds_meet_every_kind():
    assert {(c.dtype, c.values) for c in PADDED_FOLD_CASES} == set(PADDED_FOLD_KINDS)


@pytest.mark.parametrize("case", PADDED_FOLD_CASES, ids=str)
def test_padded_folds(case):
    parity.run_case(case)


# The portable core (every platform but XLA:CPU) forced on CPU.  The default run takes every
# eighth quick case, a quarter of the dtype cases and two padded folds (fractional pooling has
# one route on every platform, so it is left out); JAXPOOL_FULL=1 runs the whole sweep on it.
ROUTED_OPS = {op for op in parity.OPS if not op.startswith("fractional")}
PORTABLE_CASES = CASES if FULL else [c for c in CASES[::8] if c.op in ROUTED_OPS] + DTYPE_CASES[::4] + [
    c for c in PADDED_FOLD_CASES if c.dtype == "float32" and c.values == "special"]


def test_portable_sweep_covers_every_routed_op():
    assert ROUTED_OPS <= {c.op for c in PORTABLE_CASES}


@pytest.mark.parametrize("case", PORTABLE_CASES, ids=str)
def test_portable_route_matches_torch(case):
    with config.force_portable():
        parity.run_case(case)
