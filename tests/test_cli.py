"""The ``jaxpool`` command: parity, explain and bench, run in-process through ``cli.main``."""

import importlib.metadata
import io
import subprocess
import sys
import tomllib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxpool
from jaxpool import _explain, cli, windows
from jaxpool.testing import _run as _parity_run
from jaxpool.testing import sweep as parity

ROOT = Path(__file__).resolve().parent.parent


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- explain

def test_explain_the_seed_question(capsys):
    code, out, err = run(capsys, "explain", "adaptive_avg_pool1d", "--input-size", "5", "--output-size", "3")
    assert code == 0, err
    assert "windows: [0,2) [1,4) [3,5)" in out
    assert "-> output (N, C, 3)" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert rows == [["0", "[0,2)", "2", "0", "1"], ["1", "[1,4)", "3", "0", "1"], ["2", "[3,5)", "2", "0", "-"]]
    assert "equivalent plain pool: none" in out


def test_explain_says_when_adaptive_is_a_plain_pool(capsys):
    code, out, _ = run(capsys, "explain", "adaptive_max_pool2d", "--input-size", "6", "5", "--output-size", "3")
    assert code == 0
    assert "equivalent plain pool: kernel_size=2, stride=2, padding=0" in out  # axis 0: 6 -> 3
    assert "no max_pool2d with a fixed kernel_size/stride reproduces" in out  # axis 1: 5 -> 3
    code, out, _ = run(capsys, "explain", "adaptive_avg_pool2d", "--input-size", "6", "--output-size", "3")
    assert "equals avg_pool2d(kernel_size=(2, 2), stride=(2, 2))" in out


def test_explain_none_output_size_keeps_the_input_size(capsys):
    code, out, _ = run(capsys, "explain", "adaptive_avg_pool2d", "--input-size", "10", "9",
                       "--output-size", "None", "7")
    assert code == 0 and "-> output (N, C, 10, 7)" in out


@pytest.mark.parametrize("size, k, s, p, d, ceil", [
    (7, 3, 2, 1, 2, True), (9, 4, 3, 2, 1, True), (5, 2, 2, 0, 1, False), (8, 3, 1, 1, 3, False),
])
def test_explain_rows_are_torch_windows(size, k, s, p, d, ceil):
    """The cells shown for each max_pool1d window are exactly the ones torch can pick from."""
    (w,) = windows.op_windows("max_pool1d", size, k, s, p, d, ceil)
    rows = _explain.axis_rows(w)
    x = torch.arange(size, dtype=torch.float64).view(1, 1, -1)
    out_hi = F.max_pool1d(x, k, s, p, d, ceil, return_indices=True)[1].view(-1).tolist()
    out_lo = F.max_pool1d(-x, k, s, p, d, ceil, return_indices=True)[1].view(-1).tolist()
    assert len(rows) == len(out_hi)
    assert [int(r["cells"].max()) for r in rows] == out_hi
    assert [int(r["cells"].min()) for r in rows] == out_lo
    for r, nxt in zip(rows, rows[1:]):
        assert r["overlap"] == len(set(r["cells"].tolist()) & set(nxt["cells"].tolist()))


@pytest.mark.parametrize("include_pad", [True, False])
def test_explain_divisor_column_is_torchs_divisor(capsys, include_pad):
    flag = "--count-include-pad" if include_pad else "--no-count-include-pad"
    code, out, _ = run(capsys, "explain", "avg_pool1d", "--input-size", "6", "--kernel-size", "3",
                       "--stride", "2", "--padding", "1", "--ceil-mode", flag)
    assert code == 0
    header = next(line.split("  ") for line in out.splitlines() if "divisor" in line and "out" in line)
    header = [h.strip() for h in header if h.strip()]
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    sizes = np.array([int(r[header.index("size")]) for r in rows])
    divisors = np.array([int(r[header.index("divisor")]) for r in rows])
    ones = torch.ones(1, 1, 6, dtype=torch.float64)
    expected = F.avg_pool1d(ones, 3, 2, 1, True, include_pad).view(-1).numpy()
    np.testing.assert_allclose(sizes / divisors, expected)
    assert "past padding" in out  # the last ceil_mode window (taps 5, 6, 7) hangs past the padding


def test_explain_max_unpool_shows_the_cell_no_index_reaches(capsys):
    """65 -> max_pool k2 -> 32 -> max_unpool(output_size=65): cell 64 is never written."""
    code, out, _ = run(capsys, "explain", "max_unpool1d", "--input-size", "32", "--kernel-size", "2",
                       "--output-size", "65")
    assert code == 0
    assert "-> output (N, C, 65)" in out and "output cells no index can address: 64" in out


@pytest.mark.parametrize("op, size, pos, kwargs", [
    ("max_pool3d", (5, 6, 7), (3, 2, 1, (1, 2, 1), True), {}),
    ("avg_pool2d", (9, 8), (3, 2, 1, True), {"divisor_override": 5}),
    ("lp_pool2d", (9, 8), (2.0, (3, 2), 2, True), {}),
    ("max_unpool2d", (4, 5), ((2, 3), 2, 0), {"output_size": (9, 11)}),
    ("adaptive_avg_pool3d", (5, 6, 7), ((2, None, 9),), {}),
    ("adaptive_max_pool1d", (11,), (4,), {}),
])
def test_op_windows_have_the_operators_output_shape(op, size, pos, kwargs):
    tables = windows.op_windows(op, size, *pos, **kwargs)
    x = jnp.zeros((1, 1, *size))
    if op.startswith("max_unpool"):
        out = getattr(jaxpool, op)(x, jnp.zeros(x.shape, jnp.int32), *pos, **kwargs)
        assert tuple(w.input_size for w in tables) == out.shape[2:]
        assert tuple(w.output_size for w in tables) == size
    else:
        out = jax.eval_shape(lambda v: getattr(jaxpool, op)(v, *pos, **kwargs), x)
        assert tuple(w.output_size for w in tables) == out.shape[2:]


def test_op_windows_raise_the_operators_errors():
    with pytest.raises(ValueError, match=r"max_pool2d: padding must be at most half"):
        windows.op_windows("max_pool2d", (5, 5), 3, 1, 2)
    with pytest.raises(ValueError, match=r"max_unpool1d: invalid output_size"):
        windows.op_windows("max_unpool1d", 32, 2, output_size=(67,))
    with pytest.raises(ValueError, match="unknown operator"):
        windows.op_windows("median_pool1d", 5, 3)


@pytest.mark.parametrize("argv, message", [
    (["max_pool1d", "--input-size", "5", "--kernel-size", "3", "--padding", "2"], "at most half of kernel_size"),
    (["avg_pool2d", "--input-size", "5", "--kernel-size", "3", "--dilation", "2"], "--dilation does not apply"),
    (["max_pool2d", "--input-size", "5"], "needs --kernel-size"),
    (["adaptive_avg_pool1d", "--input-size", "5"], "needs --output-size"),
    (["adaptive_avg_pool2d", "--input-size", "5", "6", "7", "--output-size", "2"], "takes 1 or 2 ints"),
    (["median_pool1d", "--input-size", "5", "--kernel-size", "2"], "unknown operator"),
    (["max_pool1d", "--input-size", "2", "--kernel-size", "3"], "output size is too small"),
])
def test_explain_bad_arguments_exit_2_with_the_rule(capsys, argv, message):
    code, out, err = run(capsys, "explain", *argv)
    assert code == 2 and message in err and out == ""


def test_explain_plot_writes_a_png(capsys, tmp_path):
    path = tmp_path / "windows.png"
    code, out, err = run(capsys, "explain", "max_pool2d", "--input-size", "7", "5", "--kernel-size", "3",
                         "--stride", "2", "--padding", "1", "--dilation", "2", "1", "--ceil-mode",
                         "--plot", str(path))
    assert code == 0, err
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5000
    assert f"plot written to {path}" in out


def test_explain_plot_without_matplotlib_is_a_clear_error(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # `import matplotlib` raises ImportError
    path = tmp_path / "windows.png"
    code, out, err = run(capsys, "explain", "adaptive_avg_pool1d", "--input-size", "5", "--output-size", "3",
                         "--plot", str(path))
    assert code == 2 and out == ""  # checked before anything is computed
    assert "--plot needs matplotlib" in err and ".[plot]" in err and "Traceback" not in err
    assert not path.exists()


# Arguments that make each operator family explainable (the dimension is filled in per op).
EXPLAIN_ARGS = {
    "max_pool": ["--kernel-size", "3", "--stride", "2", "--padding", "1", "--dilation", "2"],
    "avg_pool": ["--kernel-size", "3", "--padding", "1", "--ceil-mode"],
    "lp_pool": ["--norm-type", "3", "--kernel-size", "2"],
    "max_unpool": ["--kernel-size", "2"],
    "adaptive_avg_pool": ["--output-size", "4"],
    "adaptive_max_pool": ["--output-size", "3"],
    "fractional_max_pool": ["--kernel-size", "2", "--output-size", "4", "--seed", "1"],
    "stochastic_pool": ["--kernel-size", "3", "--stride", "2", "--padding", "1"],
}
POOLING_NAMES = [name for name in jaxpool.__all__ if name.removesuffix(name[-2:]) in EXPLAIN_ARGS
                 or name in EXPLAIN_ARGS]


def test_every_pooling_operator_is_covered_here():
    """A new operator in jaxpool.__all__ must be added to EXPLAIN_ARGS (README: explain works for every one)."""
    families = {"functional", "windows", "from_torch"}
    assert sorted(set(jaxpool.__all__) - families) == sorted(POOLING_NAMES)


@pytest.mark.parametrize("name", POOLING_NAMES)
def test_explain_works_for_every_operator(capsys, name):
    family = name[:-2] if name[-2:] in ("1d", "2d", "3d") else name
    n = int(name[-2]) if family != name else 2  # a family name takes its dimension from --input-size
    code, out, err = run(capsys, "explain", name, "--input-size", *["9"] * n, *EXPLAIN_ARGS[family])
    assert code == 0, err
    op = name if family != name else f"{name}{n}d"
    assert out.startswith(f"{op}(") and out.count("\naxis ") == n


def _fractional_torch_windows(size, kernel, out, samples, dtype=torch.float32):
    """torch's own windows: on an input increasing along every axis, each window's max is its last cell."""
    n = len(size)
    x = torch.arange(int(np.prod(size)), dtype=dtype).reshape(1, 1, *size)
    fn = F.fractional_max_pool2d if n == 2 else F.fractional_max_pool3d
    _, idx = fn(x, kernel, output_size=out, return_indices=True,
                _random_samples=torch.tensor(samples, dtype=dtype).reshape(1, 1, n))
    last = np.stack(np.unravel_index(idx.reshape(-1).numpy(), size))  # (n, prod(out))
    return [sorted(set((last[d] - kernel + 1).tolist())) for d in range(n)]


@pytest.mark.parametrize("size, kernel, out, samples", [
    ((10, 9), 2, (5, 4), (0.3, 0.7)),
    ((25, 17), 3, (11, 6), (0.91, 0.05)),
    ((9, 11, 13), 2, (4, 5, 6), (0.2, 0.5, 0.99)),
])
def test_explain_fractional_windows_are_torchs(capsys, size, kernel, out, samples):
    code, text, err = run(capsys, "explain", f"fractional_max_pool{len(size)}d", "--input-size", *map(str, size),
                          "--kernel-size", str(kernel), "--output-size", *map(str, out),
                          "--samples", *map(str, samples))
    assert code == 0, err
    expected = _fractional_torch_windows(size, kernel, out, samples)
    tables = _explain.op_windows(f"fractional_max_pool{len(size)}d", size, kernel, out, samples=samples)
    assert [w.starts.tolist() for w in tables] == expected
    rows = [line.split() for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert [int(r[1][1:].split(",")[0]) for r in rows] == sum(expected, [])
    assert f"u = samples[n, c, 0] = {samples[0]}" in text  # 2-d: the first sample drives the width


def test_explain_fractional_seed_draws_what_the_operator_draws():
    """--seed N: the windows of fractional_max_pool2d(x, key=jax.random.key(N)) on a (1, 1, ...) input."""
    size, out = (12, 10), (5, 7)
    tables = _explain.op_windows("fractional_max_pool2d", size, 2, out, seed=5, dtype="float16")
    x = jnp.arange(120, dtype=jnp.float16).reshape(1, 1, *size)
    _, idx = jaxpool.fractional_max_pool2d(x, 2, out, return_indices=True, key=jax.random.key(5))
    rows, cols = np.unravel_index(np.asarray(idx).reshape(out), size)
    assert tables[0].starts.tolist() == (rows[:, 0] - 1).tolist()
    assert tables[1].starts.tolist() == (cols[0, :] - 1).tolist()


@pytest.mark.parametrize("argv, message", [
    (["fractional_max_pool2d", "--input-size", "9", "--kernel-size", "2", "--output-size", "4"], "--seed N"),
    (["fractional_max_pool2d", "--input-size", "9", "--kernel-size", "2", "--seed", "0"],
     "exactly one of --output-size and --output-ratio"),
    (["fractional_max_pool3d", "--input-size", "9", "--kernel-size", "2", "--output-ratio", "0.5",
      "--samples", "0.1", "0.2"], "--samples takes 3 numbers in [0, 1)"),
    (["fractional_max_pool2d", "--input-size", "9", "--kernel-size", "2", "--output-ratio", "0.5",
      "--samples", "0.1", "1.5"], "in [0, 1)"),
    (["fractional_max_pool2d", "--input-size", "5", "--kernel-size", "3", "--output-size", "4", "--seed", "0"],
     "kernel_size 3 is too large"),
    (["fractional_max_pool1d", "--input-size", "9", "--kernel-size", "2", "--output-size", "4"], "2-d or 3-d"),
    (["max_pool1d", "--input-size", "9", "--kernel-size", "2", "--seed", "3"], "--seed applies to fractional"),
    (["stochastic_pool1d", "--input-size", "9", "--kernel-size", "2", "--dilation", "2"], "--dilation does not apply"),
])
def test_explain_fractional_and_stochastic_bad_arguments(capsys, argv, message):
    code, out, err = run(capsys, "explain", *argv)
    assert code == 2 and message in err and out == ""


def test_explain_fractional_one_and_zero_outputs(capsys):
    code, out, err = run(capsys, "explain", "fractional_max_pool2d", "--input-size", "4", "--kernel-size", "2",
                         "--output-size", "1", "0", "--samples", "0.5", "0.5")
    assert code == 0, err
    assert "the single output reads the last 2 cells" in out and "windows: [2,4)" in out
    assert "no windows (output size 0)" in out


def test_explain_stochastic_windows_are_its_fixed_windows(capsys):
    code, out, _ = run(capsys, "explain", "stochastic_pool1d", "--input-size", "7", "--kernel-size", "3",
                       "--stride", "2", "--padding", "1")
    assert code == 0 and "windows: [0,2) [1,4) [3,6) [5,7)" in out and "probability" in out
    (w,) = _explain.op_windows("stochastic_pool1d", 7, 3, 2, 1)
    assert w.describe() == windows.op_windows("max_pool1d", 7, 3, 2, 1)[0].describe()


def test_explain_huge_inputs_are_summarised_quickly(capsys):
    import time

    start = time.perf_counter()
    code, out, err = run(capsys, "explain", "max_pool1d", "--input-size", "200000", "--kernel-size", "2",
                         "--stride", "3", "--dilation", "2")
    assert code == 0, err
    assert time.perf_counter() - start < 30
    assert "... 66626 more windows ..." in out and len(out.splitlines()) < 60
    read = np.concatenate([np.arange(0, 199998, 3), np.arange(2, 200000, 3)])
    unread = np.setdiff1d(np.arange(200000), read)
    assert unread.size == 66668 and f"({unread.size} cells in 66667 runs)" in out
    assert "\n  66665  [199995,199998)     2  199995,199997        0                  -\n" in out


def test_explain_columns_are_the_tap_by_tap_ones():
    """The vectorized columns against a plain loop over every tap, on awkward windows."""
    for op, size, pos in [("max_pool1d", 17, (4, 3, 2, 3, True)), ("avg_pool1d", 10, (5, 3, 2, True)),
                          ("adaptive_max_pool1d", 7, (12,)), ("max_unpool1d", 6, (3, 2, 1))]:
        (w,) = windows.op_windows(op, size, *pos)
        c = _explain.axis_columns(w)
        pad_end = w.input_size if w.pad_end is None else w.pad_end
        read = set()
        for i in range(w.output_size):
            taps = w.starts[i] + np.arange(w.lengths[i]) * w.dilation
            inside = taps[(taps >= 0) & (taps < w.input_size)]
            read |= set(inside.tolist())
            assert c["size"][i] == inside.size
            assert c["padding"][i] == np.sum((taps < 0) | ((taps >= w.input_size) & (taps < pad_end)))
            assert c["beyond"][i] == np.sum(taps >= pad_end)
            if i + 1 < w.output_size:
                nxt = w.starts[i + 1] + np.arange(w.lengths[i + 1]) * w.dilation
                assert c["overlap"][i] == len(set(inside.tolist()) & set(nxt.tolist()))
        assert _explain.unread_cells(w, c).tolist() == sorted(set(range(w.input_size)) - read)


@pytest.mark.parametrize("argv, message", [
    (["--input-size", "100000", "--plot", "{tmp}/big.png"], "--plot draws at most 200 windows per axis"),
    (["--input-size", "9", "--plot", "/nonexistent/w.png"], "--plot /nonexistent/w.png: directory"),
    (["--input-size", "9", "--plot", "{tmp}/w.xyz"], "matplotlib cannot write .xyz"),
    (["--input-size", "9", "--plot", "{tmp}/w"], "a file without an extension"),
])
def test_explain_plot_problems_are_one_line_errors(capsys, tmp_path, argv, message):
    code, out, err = run(capsys, "explain", "max_pool1d", "--kernel-size", "2",
                         *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2 and out == "" and message in err and len(err.strip().splitlines()) == 1
    assert "--input-size" in err or "--plot" in err
    assert list(tmp_path.iterdir()) == []


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"jaxpool {importlib.metadata.version('jaxpool')}"


# ----------------------------------------------------------------------------- parity

def table_rows(out):
    return {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.split() and (line.split()[0] in parity.OPS or line.startswith("total"))}


def test_parity_green_table(capsys):
    code, out, err = run(capsys, "parity", "--ops", "max_pool1d", "adaptive_avg_pool2d", "--per-op", "3",
                         "--jobs", "1")
    assert code == 0, out + err
    rows = table_rows(out)
    assert set(rows) == {"max_pool1d", "adaptive_avg_pool2d", "total"}
    for op in ("max_pool1d", "adaptive_avg_pool2d"):
        cases, passed, failed, err_tol, _, status = rows[op]
        assert (cases, passed, failed, status) == ("3", "3", "0", "ok")
        assert 0.0 <= float(err_tol) <= 1.0
    assert rows["total"][:3] == ["6", "6", "0"]
    assert "OK: all 6 cases match torch" in out
    assert "[6/6] 100%" in err  # progress (not a terminal here: plain lines)


def test_parity_on_a_torch_before_the_infinite_norm_fix_says_which_rule_it_compares(capsys, monkeypatch):
    """PyTorch 2.11 (seen on the GPU machine's image) gives lp_pool(p=inf) = 1 everywhere; the run
    says so and compares those cases with 2.13's rule, which jaxpool follows."""
    monkeypatch.setattr(parity, "torch_lp_inf_is_max_pool", lambda: False)
    cases = [c for c in parity.cases(["lp_pool1d"], level="quick") if abs(c.args[0]) == float("inf")]
    assert cases
    monkeypatch.setattr(_parity_run, "plan", lambda *a, **k: (cases, []))
    code, out, err = run(capsys, "parity", "--ops", "lp_pool1d", "--jobs", "1")
    assert code == 0, out + err
    assert "by the finite-p formula" in out and "pytorch#183997" in out
    assert f"OK: all {len(cases)} cases match torch" in out


def test_parity_detects_a_wrong_operator(capsys, monkeypatch):
    """A deliberately wrong avg_pool1d (off by 0.01): exit status 1 and a FAIL row."""
    real = jaxpool.avg_pool1d
    monkeypatch.setattr(jaxpool, "avg_pool1d", lambda *a, **k: real(*a, **k) + 0.01)
    code, out, _ = run(capsys, "parity", "--ops", "avg_pool1d", "max_pool1d", "--per-op", "3", "--jobs", "1")
    assert code == 1
    rows = table_rows(out)
    assert rows["avg_pool1d"][:3] == ["3", "0", "3"] and rows["avg_pool1d"][-1] == "FAIL"
    assert rows["max_pool1d"][:3] == ["3", "3", "0"] and rows["max_pool1d"][-1] == "ok"
    assert "FAIL avg_pool1d(" in out and "tolerance" in out
    assert "MISMATCH: 3 of 6 cases differ" in out


def test_parity_counts_exceptions_and_stops_early_with_fail_fast(capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("broken on purpose")

    monkeypatch.setattr(jaxpool, "lp_pool2d", broken)
    code, out, _ = run(capsys, "parity", "--ops", "lp_pool2d", "--per-op", "4", "--jobs", "1", "--fail-fast")
    assert code == 1
    assert table_rows(out)["lp_pool2d"][:3] == ["1", "0", "1"]
    assert "ERROR lp_pool2d(" in out and "ValueError: broken on purpose" in out
    assert "--fail-fast" in out


def test_parity_in_worker_processes(capsys):
    code, out, err = run(capsys, "parity", "--ops", "max_pool2d", "--per-op", "4", "--jobs", "2")
    assert code == 0, out + err
    assert table_rows(out)["max_pool2d"][:3] == ["4", "4", "0"] and "2 workers" in out


def test_parity_without_torch_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, err = run(capsys, "parity", "--ops", "max_pool1d", "--per-op", "1")
    assert code == 2 and "PyTorch is not installed" in err and '.[test]' in err and out == ""


def test_parity_selection(capsys):
    code, out, _ = run(capsys, "parity", "--ops", "max_pool", "--per-op", "2", "--list")
    assert code == 0 and [line.split("(")[0] for line in out.splitlines()] == [
        "max_pool1d", "max_pool1d", "max_pool2d", "max_pool2d", "max_pool3d", "max_pool3d"]
    code, out, err = run(capsys, "parity", "--ops", "avg_pool1d", "max_pool2d", "--dtype", "int8",
                         "--per-op", "3", "--list")
    assert code == 0 and "skipped (no selected dtype applies): avg_pool1d" in err
    assert out.count("max_pool2d(int8") == 3 and len(out.splitlines()) == 3
    code, _, err = run(capsys, "parity", "--ops", "median_pool2d")
    assert code == 2 and "unknown operator" in err
    with pytest.raises(SystemExit):
        cli.main(["parity", "--dtype", "complex64"])


def test_default_parity_run_covers_every_op_and_dtype():
    """What the help promises for the default run (and what the README's main job runs)."""
    cases, skipped = _parity_run.plan(list(parity.OPS), "quick", None, cli.DEFAULT_PER_OP)
    assert not skipped
    per_op = {op: sum(c.op == op for c in cases) for op in parity.OPS}
    assert set(per_op.values()) == {cli.DEFAULT_PER_OP}
    assert set(parity.FLOAT_DTYPES) <= {c.dtype for c in cases}
    assert set(parity.INT_DTYPES) <= {c.dtype for c in cases if c.family == "max_pool"}
    assert {c.values for c in cases} == {"normal", "ties", "special"}
    assert any(c.channels_last for c in cases)


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def _fake_result(op="max_pool1d", status="pass"):
    return _parity_run.Result(parity.Case(op, (1, 1, 4)), status)


def test_progress_one_updating_line_on_a_terminal():
    stream = _Stream(tty=True)
    progress = _parity_run.Progress(stream)
    for done in range(1, 51):
        progress(done, 50, _fake_result(status="fail" if done == 7 else "pass"))
    text = stream.getvalue()
    assert text.count("\r") == 50 and text.count("\n") == 1 and text.endswith("1 failed\n")


def test_progress_periodic_lines_otherwise():
    stream = _Stream(tty=False)
    progress = _parity_run.Progress(stream, interval=1e9)
    for done in range(1, 201):
        progress(done, 200, _fake_result())
    lines = stream.getvalue().splitlines()
    assert 10 <= len(lines) <= 11 and lines[-1].startswith("[200/200] 100%") and "\r" not in stream.getvalue()


def test_progress_shows_a_first_line_at_once_and_no_wild_first_estimate(monkeypatch):
    """The run of the issue: 18 s of worker start-up, then a case every 0.5 s on 2 workers."""
    clock = [100.0]
    monkeypatch.setattr(_parity_run.time, "perf_counter", lambda: clock[0])
    stream = _Stream(tty=False)
    progress = _parity_run.Progress(stream, interval=0, jobs=2)
    progress.begin(60)
    assert stream.getvalue().startswith("[ 0/60]   0%  starting: 2 worker processes import jax and torch")
    clock[0] += 18
    lines = []
    for done in range(1, 61):
        progress(done, 60, _fake_result())
        lines.append(stream.getvalue().splitlines()[-1])
        clock[0] += 0.5
    assert all("estimating time left" in line for line in lines[:5]) and "~" not in "".join(lines[:5])
    assert "0:20 elapsed, ~0:27 left" in lines[5]  # 54 cases left at 0.5 s each: 27 s, not 16 minutes
    assert lines[-1].startswith("[60/60] 100%") and "done, 0 failed" in lines[-1]


def test_parity_table_time_is_wall_time():
    """Two workers ran 10 s of cases in 6 s: the total row says 6 s and the rows add up to it."""
    results = [_parity_run.Result(parity.Case(op, (1, 1, 4)), "pass", seconds=s)
               for op, s in (("max_pool1d", 1.0), ("max_pool1d", 3.0), ("avg_pool1d", 6.0))]
    rows = table_rows(_parity_run.table(results, ["max_pool1d", "avg_pool1d"], wall=6.0))
    assert (rows["max_pool1d"][4], rows["avg_pool1d"][4], rows["total"][4]) == ("2.4s", "3.6s", "6.0s")
    assert table_rows(_parity_run.table(results, ["max_pool1d", "avg_pool1d"]))["total"][4] == "10.0s"


# ----------------------------------------------------------------------------- bench

def test_bench_passes_its_arguments_to_the_benchmark(monkeypatch):
    from jaxpool import _bench

    seen = []
    monkeypatch.setattr(_bench, "main", lambda argv, prog: seen.append((argv, prog)) or 3)
    assert cli.main(["bench", "--device", "gpu", "--quick", "--help"]) == 3
    assert seen == [(["--device", "gpu", "--quick", "--help"], "jaxpool bench")]


def test_bench_help_names_the_command_and_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["bench", "--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: jaxpool bench")
    options = " ".join(out[out.index("options:"):].split())
    for option, words in [("--device {cpu,gpu}", "torch CUDA"), ("--quick", "smoke run"),
                          ("--only NAME [NAME ...]", "workloads whose name"), ("--list", "list the workloads"),
                          ("--repeats N", "median"), ("--threads N", "torch's thread count"),
                          ("--json PATH", "as JSON"), ("--csv PATH", "as CSV"), ("--plot PATH", "bar chart"),
                          ("--warm-allocator", "freed memory")]:
        help_text = options.split(option + " ", 1)[1].split(" --")[0]
        assert words in help_text, option


def test_explain_help_limits_are_the_explainers():
    assert (cli._EXPLAIN_ROWS, cli._EXPLAIN_PLOT) == (_explain.MAX_ROWS, _explain.MAX_PLOT_WINDOWS)


@pytest.mark.parametrize("argv, message", [
    (["--json", "/nonexistent/x.json"], "--json /nonexistent/x.json: directory /nonexistent does not exist"),
    (["--csv", "{tmp}"], "is a directory"),
    (["--plot", "{tmp}/ratios.xyz"], "matplotlib cannot write .xyz"),
    (["--plot", "/nonexistent/ratios.png"], "--plot /nonexistent/ratios.png: directory"),
])
def test_bench_checks_output_paths_before_running(capsys, monkeypatch, tmp_path, argv, message):
    from jaxpool import _bench

    monkeypatch.setattr(_bench, "workloads", lambda: pytest.fail("the benchmark ran"))
    code, out, err = run(capsys, "bench", *(a.format(tmp=tmp_path) for a in argv))
    assert code == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("jaxpool bench: ")


def test_bench_plot_without_matplotlib_exits_2(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "bench", "--quick", "--plot", str(tmp_path / "r.png"))
    assert code == 2 and "--plot needs matplotlib" in err and not (tmp_path / "r.png").exists()


# ----------------------------------------------------------------------------- packaging

def test_console_script_is_declared():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["jaxpool"] == "jaxpool.cli:main"


def test_python_dash_m_jaxpool_smoke():
    proc = subprocess.run(
        [sys.executable, "-m", "jaxpool", "explain", "adaptive_avg_pool1d", "--input-size", "5",
         "--output-size", "3"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "windows: [0,2) [1,4) [3,5)" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "jaxpool", "parity", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "default" in proc.stdout.lower()
