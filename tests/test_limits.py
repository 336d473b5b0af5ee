"""Cost bounded by the data, read-only cached tables, checked window arguments (issue 22,
items 4, 5 and 7).

Every heavy case runs in a child process with an address-space cap (``RLIMIT_AS``) and a
timeout, so a hang or a blow-up fails its test instead of the run.  Each case either matches
torch (values, indices, and where cheap the gradient) or raises a ``ValueError`` naming the
operator and the argument.  The default run keeps to a few children; ``JAXPOOL_FULL=1`` adds
10**8 adaptive outputs, long stride-1 windows and many irregular windows.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import jaxpool
from jaxpool import windows

FULL = os.environ.get("JAXPOOL_FULL") == "1"
MEMORY_CAP = 4 << 30  # bytes of address space for a child (jax, torch and the case)
TIMEOUT = 90  # seconds per child, imports included (a case itself takes a few seconds)

PRELUDE = """
import resource, time
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
import numpy as np, torch, torch.nn.functional as F, jax, jax.numpy as jnp
import jaxpool

def rn(*shape):
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)

def same(name, got, want, tol):
    got, want = np.asarray(got), want.detach().numpy()
    assert got.shape == want.shape, (name, got.shape, want.shape)
    if got.dtype.kind in "iu":
        assert (got == want).all(), (name, "indices differ")
    else:
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol, equal_nan=True, err_msg=name)

def case(name, op, x, *args, tol=1e-5, grad=False, budget=30.0, **kwargs):
    jf, tf = getattr(jaxpool, op), getattr(F, op)
    start = time.perf_counter()
    run = jax.jit(lambda a: jf(a, *args, **kwargs)).lower(x).compile()  # trace + compile alone
    compiled = time.perf_counter() - start
    assert compiled < budget, (name, "trace+compile took", compiled)
    got = run(x)
    want = tf(torch.tensor(x), *args, **kwargs)
    for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
        same(name, g, w, tol)
    if grad:
        first = lambda a: jf(a, *args, **kwargs)
        first_out = lambda a: first(a)[0] if isinstance(got, tuple) else first(a)
        g = jax.jit(jax.grad(lambda a: first_out(a).astype(jnp.float32).sum()))(jnp.asarray(x))
        t = torch.tensor(x, requires_grad=True)
        out = tf(t, *args, **kwargs)
        (out[0] if isinstance(out, tuple) else out).sum().backward()
        same(name + " grad", g, t.grad, tol)
    print(f"{{name}}: compile {{compiled:.2f}} s, total {{time.perf_counter() - start:.2f}} s", flush=True)

def refused(name, words, fn):
    start = time.perf_counter()
    try:
        fn()
    except ValueError as e:
        assert all(w in str(e) for w in words), (name, str(e))
        assert time.perf_counter() - start < 10, (name, "slow refusal")
        print(f"{{name}}: refused: {{e}}", flush=True)
        return
    raise AssertionError(name + ": no ValueError")
"""


def _run(body: str):
    """Run ``body`` after PRELUDE in a capped child; fail on any error, hang or blow-up."""
    code = PRELUDE.format(cap=MEMORY_CAP) + textwrap.dedent(body)
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT,
                              env={**os.environ, "JAX_PLATFORMS": "cpu"})
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"child timed out after {TIMEOUT} s; output so far:\n{e.stdout}\n{e.stderr}")
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


def test_huge_kernels_with_padding_keep_only_in_bounds_taps():
    """Windows of 2**20..2**27 taps over a few cells: PyTorch's loops visit only in-bounds cells."""
    _run("""
    case("max_pool1d 2**27", "max_pool1d", rn(1, 1, 4), 2**27, 1, 2**26, return_indices=True, grad=True)
    case("avg_pool1d 2**24", "avg_pool1d", rn(1, 1, 4), 2**24, 1, 2**23, grad=True)
    case("avg_pool1d 2**20 no pad count", "avg_pool1d", rn(1, 1, 4), 2**20, 1, 2**19, count_include_pad=False)
    case("avg_pool1d 2**20 ceil", "avg_pool1d", rn(2, 3, 5), 2**20, 3, 2**19, True)
    case("max_pool2d 2**20", "max_pool2d", rn(1, 2, 3, 4), 2**20, 1, 2**19, return_indices=True, grad=True)
    case("avg_pool2d 2**20", "avg_pool2d", rn(1, 2, 3, 4), (2**20, 3), 1, (2**19, 1), grad=True)
    case("avg_pool2d divisor", "avg_pool2d", rn(1, 2, 3, 4), 2**20, 2**18, 2**19, False, True, 7)
    case("max_pool3d 2**12", "max_pool3d", rn(1, 1, 2, 3, 4), 2**12, 1, 2**11, return_indices=True, grad=True)
    case("max_pool1d dilated", "max_pool1d", rn(1, 1, 9), 2**20, 1, 2**19, 1, return_indices=True)
    case("lp_pool1d whole", "lp_pool1d", rn(1, 1, 4096), 2.0, 4096, 2**30, grad=True, tol=1e-4)
    case("lp_pool2d whole", "lp_pool2d", rn(1, 1, 64, 64), 3.0, 64, 2**30, True, tol=1e-4)
    case("lp_pool3d inf", "lp_pool3d", rn(1, 1, 8, 8, 8), float("inf"), 8, 2**30)
    # PyTorch's 3-d average needs input >= kernel: both refuse
    refused("avg_pool3d 2**20", ["avg_pool3d", "kernel_size"],
            lambda: jaxpool.avg_pool3d(rn(1, 1, 2, 3, 4), 2**20, 1, 2**19))
    """)


def test_global_windows_over_ten_million_cells_are_one_reduction():
    x = "rn(1, 1, 10**7)"
    _run(f"""
    x = {x}
    x[0, 0, 123] = x[0, 0, 9_000_000] = np.nan  # last NaN wins
    case("adaptive_max_pool1d global nan", "adaptive_max_pool1d", x, 1, True)
    x = {x}
    case("adaptive_max_pool1d global", "adaptive_max_pool1d", x, 1, True, grad=True)
    case("max_pool1d global", "max_pool1d", x, 10**7, return_indices=True)
    case("adaptive_avg_pool1d global", "adaptive_avg_pool1d", x, 1, tol=1e-4, grad=True)
    case("avg_pool1d global", "avg_pool1d", x, 10**7, tol=1e-4)
    case("adaptive_max_pool1d 3", "adaptive_max_pool1d", x, 3, True, grad=True)
    ties = np.zeros((1, 1, 10**7), np.float32); ties[0, 0, 5::7] = 1
    case("adaptive_max_pool1d ties", "adaptive_max_pool1d", ties, 3, True)
    case("adaptive_max_pool2d global", "adaptive_max_pool2d", rn(1, 1, 1000, 10**4), 1, True)
    """)


def test_ten_million_cells_in_small_windows_trace_in_seconds():
    """Trace time scales with the data: nothing loops in Python over millions of windows."""
    _run("""
    x = rn(1, 1, 10**7)
    case("max_pool1d k3s2p1", "max_pool1d", x, 3, 2, 1, return_indices=True, budget=15.0)
    case("avg_pool1d k3s2p1", "avg_pool1d", x, 3, 2, 1, tol=1e-5, budget=15.0)
    """)


def test_huge_adaptive_output_sizes_are_computed_or_refused_by_name():
    _run("""
    refused("adaptive_avg_pool1d 10**9", ["adaptive_avg_pool1d", "output_size"],
            lambda: jaxpool.adaptive_avg_pool1d(rn(1, 1, 5), 10**9))
    refused("adaptive_max_pool2d 10**9", ["adaptive_max_pool2d", "output_size"],
            lambda: jaxpool.adaptive_max_pool2d(rn(1, 1, 5, 5), (10**9, 1)))
    refused("max_pool1d 2**40 windows", ["max_pool1d", "input_size"],
            lambda: jax.eval_shape(lambda a: jaxpool.max_pool1d(a, 1),
                                   jax.ShapeDtypeStruct((1, 1, 2**40), jnp.float32)))
    case("adaptive_avg_pool1d 5 -> 10**7", "adaptive_avg_pool1d", rn(1, 1, 5), 10**7)
    case("adaptive_max_pool1d 5 -> 10**7", "adaptive_max_pool1d", rn(1, 1, 5), 10**7, True)
    case("adaptive_avg_pool2d 7 -> 2**17", "adaptive_avg_pool2d", rn(1, 2, 7, 3), (2**17, 2), grad=True)
    """)


@pytest.mark.skipif(not FULL, reason="exhaustive: JAXPOOL_FULL=1")
def test_full_sweep_of_large_cases():
    _run("""
    case("adaptive_avg_pool1d 5 -> 10**8", "adaptive_avg_pool1d", rn(1, 1, 5), 10**8)
    case("adaptive_avg_pool1d 10**7 -> 10**7 - 1", "adaptive_avg_pool1d", rn(1, 1, 10**7), 10**7 - 1, tol=1e-4)
    case("adaptive_max_pool1d 10**7 -> 10**7 - 1", "adaptive_max_pool1d", rn(1, 1, 10**7), 10**7 - 1, True)
    case("max_pool1d 5e4 / 1", "max_pool1d", rn(1, 1, 10**5), 5 * 10**4, 1, return_indices=True, grad=True)
    case("avg_pool1d 5e4 / 1", "avg_pool1d", rn(1, 1, 10**5), 5 * 10**4, 1, tol=1e-4, grad=True)
    case("adaptive_max_pool1d 10**5 -> 7", "adaptive_max_pool1d", rn(2, 3, 10**5), 7, True, grad=True)
    case("max_pool2d 2**20 on 300x300", "max_pool2d", rn(1, 1, 300, 300), 2**20, 1, 2**19, return_indices=True)
    """)


# ------------------------------------------------------------------ in-process, cheap

def _arrays(w):
    names = ("starts", "lengths", "positions", "valid", "first_taps", "last_taps", "inside_counts",
             "padded_counts")
    return {n: getattr(w, n) for n in names}


@pytest.mark.parametrize("table", [lambda: windows.fixed(8, 2, 2, 0, 1, False), lambda: windows.adaptive(33, 7),
                                   lambda: windows.fixed(5, 5, 1, 2, 1, False).trimmed()])
def test_every_cached_array_is_read_only(table):
    w = table()
    for name, a in _arrays(w).items():
        assert not a.flags.writeable, name
        with pytest.raises(ValueError):
            a[...] = 0


def test_a_caller_cannot_poison_later_averages():
    w = windows.fixed(8, 2, 2, 0, 1, False)
    for a in (w.valid, w.inside_counts):
        with pytest.raises(ValueError):
            a[:] = 1
    x = np.arange(8, dtype=np.float32).reshape(1, 1, 8)
    assert np.asarray(jaxpool.avg_pool1d(x, 2, 2, count_include_pad=False)).tolist() == [[[0.5, 2.5, 4.5, 6.5]]]


@pytest.mark.parametrize("call, error, words", [
    (lambda: windows.fixed(5, 2, 0), ValueError, ["windows.fixed", "stride"]),
    (lambda: windows.fixed(5, 0, 1), ValueError, ["kernel_size"]),
    (lambda: windows.fixed(5, 2, 1, -1), ValueError, ["padding"]),
    (lambda: windows.fixed(5, 2, 1, 0, 0), ValueError, ["dilation"]),
    (lambda: windows.fixed(-5, 2, 1), ValueError, ["input_size"]),
    (lambda: windows.fixed(5, 2.5, 1), TypeError, ["kernel_size"]),
    (lambda: windows.fixed(5, True, 1), TypeError, ["kernel_size"]),
    (lambda: windows.fixed(5, 2, 1, 0, 1, "yes"), TypeError, ["ceil_mode"]),
    (lambda: windows.fixed(2**63, 2, 1), ValueError, ["input_size"]),
    (lambda: windows.fixed(10**12, 1, 1), ValueError, ["windows.fixed", "input_size"]),
    (lambda: windows.pooling_output_size(5, 2, 0, 0, 1, False), ValueError, ["pooling_output_size", "stride"]),
    (lambda: windows.pooling_output_size(5, None, 1, 0, 1, False), TypeError, ["kernel_size"]),
    (lambda: windows.adaptive(5, -1), ValueError, ["windows.adaptive", "output_size"]),
    (lambda: windows.adaptive(5, 1.5), TypeError, ["output_size"]),
    (lambda: windows.adaptive(5, 10**9), ValueError, ["output_size"]),
    (lambda: windows.adaptive(-1, 3), ValueError, ["input_size"]),
])
def test_public_window_functions_check_their_arguments(call, error, words):
    with pytest.raises(error) as e:
        call()
    assert all(w in str(e.value) for w in words), str(e.value)


def test_counts_are_closed_forms_of_the_tap_table():
    """first/last in-bounds taps and counts, derived in O(out), equal the (out, taps) table's."""
    for args in [(9, 4, 1, 2, 1, False), (9, 3, 2, 1, 3, True), (1, 5, 1, 2, 1, False), (12, 4, 3, 2, 2, True)]:
        for w in (windows.fixed(*args), windows.adaptive(args[0], args[1])):
            valid = (w.positions >= 0) & (w.positions < w.input_size) & (
                np.arange(w.max_length)[None, :] < w.lengths[:, None])
            assert (w.valid == valid).all() and (w.inside_counts == valid.sum(1)).all()
            reads = valid.any(1)
            assert (w.first_taps[reads] == valid.argmax(1)[reads]).all()
            t = w.trimmed()
            assert (t.inside_counts == w.inside_counts).all()
            assert [tuple(r) for r in t.describe()] == [tuple(r) for r in w.describe()]


def test_trimming_keeps_ordinary_tables_as_they_are():
    for w in (windows.fixed(112, 3, 2, 1, 1, False), windows.fixed(8, 2, 2), windows.adaptive(33, 7)):
        assert w.trimmed() is w
    w = windows.fixed(4, 2**27, 1, 2**26)
    t = w.trimmed()  # taps in bounds in some window: at most input + outputs - 1 of them
    assert t.max_length == 4 + 5 - 1 and t.output_size == w.output_size == 5
