"""Hypothesis-random configurations against torch, per op family.

Default: 10 examples per family (derandomized, so CI cannot flake).  ``JAXPOOL_FULL=1`` runs
500 (``JAXPOOL_HYPOTHESIS_EXAMPLES`` overrides).
"""

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxpool import config, windows
from jaxpool.testing import sweep as parity

FULL = os.environ.get("JAXPOOL_FULL") == "1"

FLOATS = st.sampled_from(parity.FLOAT_DTYPES)
VALUES = st.sampled_from(("normal", "ties", "special"))


@st.composite
def fixed_axis(draw, dilated: bool):
    k = draw(st.integers(1, 5))
    p = draw(st.integers(0, k // 2))
    s = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3)) if dilated else 1
    ceil = draw(st.booleans())
    low = max(1, d * (k - 1) + 1 - 2 * p)
    size = draw(st.integers(low, 17))
    w = windows.fixed(size, k, s, p, d, ceil)
    if w.output_size < 1 or w.inside_counts.min() == 0:
        size = size + d * (k - 1) + 1  # grow until every window touches the input
    return size, k, s, p, d, ceil


@st.composite
def case(draw, family: str):
    ndim = draw(st.integers(1, 3))
    batched = draw(st.booleans())
    lead = (draw(st.integers(1, 2)), draw(st.integers(1, 3))) if batched else (draw(st.integers(1, 3)),)
    seed = draw(st.integers(0, 2**16))
    channels_last = draw(st.booleans())
    op = f"{family}{ndim}d"
    if family.startswith("adaptive"):
        ins = [draw(st.integers(1, 20)) for _ in range(ndim)]
        outs = [draw(st.one_of(st.none(), st.integers(1, 24))) for _ in range(ndim)]
        args = (tuple(outs),) if ndim > 1 else (outs[0] if outs[0] is not None else ins[0],)
        if family == "adaptive_max_pool":
            args += (draw(st.booleans()),)
        dtype = draw(FLOATS)
        values = draw(VALUES) if family == "adaptive_max_pool" else "normal"
        return parity.Case(op, lead + tuple(ins), args, (), dtype, values, channels_last, seed)
    axes = [draw(fixed_axis(dilated=family == "max_pool")) for _ in range(ndim)]
    size, k, s, p, d, _ = (tuple(a[i] for a in axes) for i in range(6))
    ceil = axes[0][5]
    # ceil_mode applies to every axis: re-check the axes that were drawn with the other flag.
    for i in range(ndim):
        w = windows.fixed(size[i], k[i], s[i], p[i], d[i], ceil)
        if w.output_size < 1 or w.inside_counts.min() == 0:
            ceil = False
    shape = lead + size
    if family == "max_pool":
        dtype = draw(st.sampled_from(parity.FLOAT_DTYPES + parity.INT_DTYPES))
        return parity.Case(op, shape, (k, s, p, d, ceil), (("return_indices", draw(st.booleans())),),
                           dtype, draw(VALUES), channels_last, seed)
    if family == "avg_pool":
        if ndim == 3:  # torch's avg_pool3d: every input size >= kernel, padding not counted
            shape = lead + tuple(max(n, kk) for n, kk in zip(size, k))
        kwargs = (("count_include_pad", draw(st.booleans())),)
        if ndim > 1 and draw(st.booleans()):
            kwargs += (("divisor_override", draw(st.integers(1, 9))),)
        return parity.Case(op, shape, (k, s, p, ceil), kwargs, draw(FLOATS), "normal", channels_last, seed)
    if family == "lp_pool":
        norm = draw(st.sampled_from((1, 2, 3, 1.5, 0.5, float("inf"), float("-inf"), -1)))
        shape = lead + tuple(max(n, kk) for n, kk in zip(size, k))
        kernel = k[0] if ndim == 1 else k  # torch's lp_pool1d multiplies by an int kernel_size
        return parity.Case(op, shape, (norm, kernel, s, ceil), (), draw(FLOATS), "normal", channels_last, seed)
    # max_unpool: pooled by torch's max_pool (floor mode, no dilation), then unpooled back to
    # the pooled input's size; where padding/stride make that size unreachable, stride = kernel
    # without padding always reaches it.
    spatial = tuple(max(n, kk) for n, kk in zip(size, k))
    if not all(parity._fits("max_unpool", ndim, *axis, 1, False) for axis in zip(spatial, k, s, p)):
        s, p = k, (0,) * ndim
    return parity.Case(op, lead + spatial, (k, s, p), (("output_size", spatial),), draw(FLOATS), "normal",
                       channels_last, seed)


@pytest.mark.parametrize("family", parity.FAMILIES)
def test_random_configurations_match_torch(family):
    @given(case(family))
    def check(c):
        parity.run_case(c)

    check()


@pytest.mark.parametrize("family", parity.FAMILIES)
def test_random_configurations_on_the_portable_core(family):
    """The same strategies on the portable core (GPU/TPU's route) forced on CPU: 3 examples
    per family by default, the profile's count under JAXPOOL_FULL."""
    examples = None if FULL else 3

    @settings(max_examples=examples) if examples else (lambda f: f)
    @given(case(family))
    def check(c):
        with config.force_portable():
            parity.run_case(c)

    check()
