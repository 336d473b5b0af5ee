"""Smoke test of the benchmark (jaxpool._bench, run by ``jaxpool bench`` and benchmarks/bench.py):
structure of the table, JSON and CSV, never the timings."""

import csv
import importlib.util
import json
import math
import pathlib
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (the benchmark compares against torch: a missing torch is a failure)

import jaxpool
from jaxpool import _bench as bench
from jaxpool._bench import cases, compiling, report, timing

ROOT = pathlib.Path(__file__).resolve().parents[1]

FORMS = ("fwd", "fwdbwd", "gradsum", "gradmean")
TIMED = (*(f"{side}_{form}_ms" for form in FORMS for side in ("jaxpool", "torch")),
         *(f"ratio_{form}" for form in FORMS), "copy_ms", "roofline_fwd", "jaxpool_compile_s")
REDUCE_WINDOW = ("reduce_window_compile_s", "ratio_compile")


def test_every_issue_workload_is_listed():
    names = [w.name for w in bench.workloads()]
    assert len(names) == len(set(names)) == 15
    for part in ("resnet", "segnet", "d2_ceil", "nopad", "lp_pool2d", "14to7", "33to7", "global",
                 "10x9to80x60", "33to5", "33to5_indices", "1000to100", "max_pool3d", "17to4",
                 "fractional"):
        assert any(part in n for n in names), part


def test_quick_run_writes_table_json_csv_and_plot(tmp_path, capsys):
    out_json, out_csv, out_png = tmp_path / "b.json", tmp_path / "b.csv", tmp_path / "b.png"
    only = ["max_pool2d_k2s2_indices_unpool_segnet", "adaptive_avg_pool2d_14to7"]  # table order
    rc = bench.main(["--quick", "--repeats", "2", "--only", *only, "--json", str(out_json),
                     "--csv", str(out_csv), "--plot", str(out_png)])
    assert rc == 0
    printed, progress = capsys.readouterr()
    assert "ratio fwd" in printed and "geomean" in printed
    # progress on stderr, workload by workload; a smoke run says its figures mean nothing
    assert f"[1/2] {only[0]}" in progress and f"[2/2] {only[1]}" in progress
    warning = bench.quick_warning(2)
    assert "not comparable" in warning and "mean nothing" in warning
    assert warning in progress and printed.rstrip().endswith(warning)
    result = json.loads(out_json.read_text())
    # the route measured is recorded and printed: the tactics on CPU, unless forced portable
    from jaxpool import config
    from jaxpool._bench.report import ROUTE_FORCED, ROUTE_PER_PLATFORM

    route = ROUTE_FORCED if config.portable_forced() else ROUTE_PER_PLATFORM
    assert result["environment"]["route"] == route and f"jaxpool route: {route}" in printed
    assert result["environment"]["jaxpool"] == jaxpool.__version__
    rows = result["rows"]
    assert [r["workload"] for r in rows] == only
    for row in rows:
        assert row["status"] == "ok"
        assert row["workload"] in printed
        for key in TIMED:
            assert isinstance(row[key], float) and math.isfinite(row[key]) and row[key] > 0, key
        assert row["bytes_moved"] > 0
        assert isinstance(row["jaxpool_stablehlo_ops"], int) and row["jaxpool_stablehlo_ops"] > 0
    # segnet's indices and unpool have no reduce_window form; 14 -> 7 is reduce_window k2 s2
    assert rows[0]["reduce_window_call"].startswith("n/a: ") and not any(k in rows[0] for k in REDUCE_WINDOW)
    assert rows[1]["reduce_window_call"].startswith("lax.reduce_window avg k2 s2")
    assert rows[1]["reduce_window_matches_torch"] is True
    for key in REDUCE_WINDOW:
        assert isinstance(rows[1][key], float) and math.isfinite(rows[1][key]) and rows[1][key] > 0, key
    assert rows[1]["reduce_window_stablehlo_ops"] > 0
    compile_table = printed[printed.index("compile time, forward+backward"):]
    assert "compile s jaxpool" in compile_table and "compile s reduce_window" in compile_table
    segnet_line = next(line for line in compile_table.splitlines() if line.startswith(only[0]))
    assert segnet_line.split()[2:4] == ["n/a", "n/a"]
    for title in ("ratio f+b", "ratio sum", "ratio mean"):
        assert title in printed
    adaptive = rows[1]
    assert adaptive["flax_call"].startswith("flax.linen.avg_pool") and adaptive["flax_fwd_ms"] > 0
    assert adaptive["flax_matches_torch"] is True  # 14 -> 7 is k2 s2: Flax computes torch's windows
    assert adaptive["keras_call"] == "keras.ops.adaptive_average_pool"
    assert adaptive["keras_fwd_ms"] > 0 and adaptive["keras_fwdbwd_ms"] > 0
    assert isinstance(adaptive["keras_matches_torch"], bool)
    if not adaptive["keras_matches_torch"]:  # Keras 3.15's 14 -> 7 windows are not torch's
        assert f"keras.ops.adaptive_average_pool differs from torch on {only[1]}" in printed
    assert not any(k.startswith(bench.PEER_LIBRARIES) for k in rows[0])  # no JAX peer has max_unpool
    assert result["environment"]["keras"][0].isdigit()  # Keras' version: its peers ran
    assert result["environment"]["torch_threads"] >= 1 and result["quick"] is True
    summ = result["summary"]
    assert summ["measured"] == 2 and summ["geomean_ratio"] > 0 and summ["geomean_ratio_all_forms"] > 0
    for form in FORMS:
        assert summ[f"geomean_ratio_{form}"] > 0 and summ["max_ratio"][form]["workload"] in only
        assert summ["max_ratio"][form]["ratio"] == max(r[f"ratio_{form}"] for r in rows)
    assert summ["compile"]["compared"] == 1
    assert summ["compile"]["max_ratio_reduce_window"] == {"ratio": rows[1]["ratio_compile"], "workload": only[1]}
    assert result["environment"]["compile_repeats"] == 1  # --quick: one compile each
    assert result["warning"] == warning
    with open(out_csv) as f:
        table = list(csv.DictReader(f))
    assert [r["workload"] for r in table] == only
    for key in TIMED:
        assert all(math.isfinite(float(r[key])) and float(r[key]) > 0 for r in table), key
    assert float(table[1]["ratio_compile"]) > 0 and table[0]["ratio_compile"] == ""
    assert out_png.stat().st_size > 0


def test_every_workload_states_its_reduce_window_form_and_it_computes_torchs_numbers():
    """The compile-time reference is the same op: forward output equal to torch's (quick shapes)."""
    import jax

    expressed = 0
    for w in bench.workloads():
        assert isinstance(w.reduce_window, (bench.Peer, str)) and w.reduce_window, w.name
        if isinstance(w.reduce_window, str):
            continue
        expressed += 1
        x = np.random.default_rng(0).standard_normal(w.quick_shape).astype(np.float32)
        reference = timing.torch_output(w.torch_fn, x, ())
        out = np.asarray(jax.jit(w.reduce_window.fn)(x))
        assert cases.agreement("lax", out, reference) == {"lax_matches_torch": True}, w.name
    assert expressed == 9  # max 3/2/1, dilated ceil, avg nopad, lp2, 14 -> 7, global, 1000 -> 100, 3-d 2/2, 17 -> 4


@pytest.mark.parametrize("size", [15, 16, 17, 18])
def test_reduce_window_padding_gives_torchs_ceil_mode_output_size(size):
    import jax

    peer = cases._reduce_window("max", 3, 2, 1, 2, ceil_mode=True)
    expected = torch.nn.functional.max_pool1d(torch.zeros(1, 1, size), 3, 2, 1, 2, ceil_mode=True).shape
    assert jax.eval_shape(peer.fn, jax.ShapeDtypeStruct((1, 1, size), np.float32)).shape == tuple(expected)


def test_stablehlo_ops_counts_the_ops_that_produce_values():
    text = """func.func public @main(%arg0: tensor<4xf32>) -> (tensor<f32>) {
    %cst = stablehlo.constant dense<0.0> : tensor<f32>
    %0 = stablehlo.reduce(%arg0 init: %cst) across dimensions = [0] : (tensor<4xf32>, tensor<f32>) -> tensor<f32>
     reducer(%a: tensor<f32>, %b: tensor<f32>)  {
      %2 = stablehlo.add %a, %b : tensor<f32>
      stablehlo.return %2 : tensor<f32>
    }
    %1 = "stablehlo.case"(%c) ({
      stablehlo.return %0 : tensor<f32>
    }) : (tensor<i32>) -> tensor<f32>
    %3 = chlo.erf %1 : tensor<f32> -> tensor<f32>
    return %3 : tensor<f32>
  }"""
    assert compiling.stablehlo_ops(text) == 5  # constant, reduce, add, case, erf


def test_compile_times_refuse_a_persistent_cache(tmp_path):
    """No compile time is a cache read: with a cache directory set and the cache on, it refuses."""
    import jax

    dir_before, on_before = jax.config.jax_compilation_cache_dir, jax.config.jax_enable_compilation_cache
    try:
        jax.config.update("jax_compilation_cache_dir", str(tmp_path))
        jax.config.update("jax_enable_compilation_cache", True)
        assert compiling.persistent_cache_on()
        with pytest.raises(RuntimeError, match="persistent compilation cache"):
            compiling.compile_seconds(lambda: jax.jit(lambda x: x), (np.ones(2),), 1)
        jax.config.update("jax_enable_compilation_cache", False)  # what main does for the run
        assert not compiling.persistent_cache_on()
    finally:
        jax.config.update("jax_compilation_cache_dir", dir_before)
        jax.config.update("jax_enable_compilation_cache", on_before)
    assert list(tmp_path.iterdir()) == []  # nothing was compiled into it


def test_keras_peers_run_here():
    """The test extra installs Keras 3, so its adaptive pools really are timed (not skipped)."""
    assert bench.keras_status() is None


def test_peer_agreement_counts_what_differs_from_torch():
    reference = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
    assert cases.agreement("keras", reference + 1e-7, reference) == {"keras_matches_torch": True}
    wrong = reference.copy()
    wrong[0, 1], wrong[1, 1] = np.nan, 4.5
    found = cases.agreement("keras", wrong, reference)
    assert found["keras_matches_torch"] is False
    assert (found["keras_wrong_outputs"], found["keras_nan_outputs"]) == (2, 1)
    assert found["keras_differs"] == "2 of 4 outputs, 1 of them NaN, largest finite error 0.5"
    shaped = cases.agreement("flax", reference[:1], reference)
    assert shaped["flax_matches_torch"] is False and "shape (1, 2)" in shaped["flax_differs"]
    row = {"workload": "w", "keras_call": "keras.ops.f", **found, "keras_fwd_ms": 1.0}
    assert report._cell(row, "keras_fwd_ms", "{:.3f}") == "1.000" + report.DIFFERS_MARK
    assert report.peer_notes([row]) == [f"{report.DIFFERS_MARK} keras.ops.f differs from torch on w: {found['keras_differs']}"]


def test_fractional_workload_runs_or_says_not_available(tmp_path):
    out_json = tmp_path / "f.json"
    assert bench.main(["--quick", "--repeats", "1", "--only", "fractional", "--no-compile-times",
                       "--json", str(out_json)]) == 0
    (row,) = json.loads(out_json.read_text())["rows"]
    if hasattr(jaxpool, "fractional_max_pool2d"):
        assert row["status"] == "ok" and row["ratio_fwd"] > 0
        assert row["ratio_gradsum"] > 0 and row["ratio_gradmean"] > 0  # the samples closed over by grad
        assert not any("compile" in key for key in row)  # --no-compile-times
    else:
        assert row["status"].startswith("not available")


def test_unknown_workload_is_an_error(capsys):
    assert bench.main(["--only", "no_such_workload"]) == 2
    assert "no workload matches" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--device", "tpu"], ["--frobnicate"]])
def test_bad_arguments_exit_like_argparse(argv):
    with pytest.raises(SystemExit):
        bench.main(argv)


def test_without_torch_it_says_what_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    assert bench.main(["--list"], prog="jaxpool bench") == 2
    err = capsys.readouterr().err
    assert err.startswith("jaxpool bench: needs PyTorch") and "jaxpool[bench]" in err


def test_warm_allocator_reruns_the_process_with_glibc_keeping_memory(tmp_path):
    """Also the checkout's script, benchmarks/bench.py: it reruns itself as ``jaxpool bench``."""
    import subprocess

    out = tmp_path / "warm.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--quick", "--repeats", "1",
                           "--warm-allocator", "--only", "adaptive_avg_pool2d_14to7", "--no-compile-times",
                           "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["environment"]["allocator"].startswith("warm")
    assert "allocator: warm" in proc.stdout


def _load_peer_parity():
    spec = importlib.util.spec_from_file_location("jaxpool_peer_parity", ROOT / "benchmarks" / "peer_parity.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jaxpool_avg(x, output_size):
    return (jaxpool.adaptive_avg_pool1d if x.ndim == 3 else jaxpool.adaptive_avg_pool2d)(x, output_size)


def _raises_when_upsampling(x, output_size):
    if np.any(np.asarray(output_size) > np.asarray(x.shape[2:])):
        raise ValueError("no upsampling")
    return _jaxpool_avg(x, output_size)


def _last_output_nan(x, output_size):
    return _jaxpool_avg(x, output_size).at[..., -1].set(np.nan)


def test_peer_parity_sweep_counts_every_case():
    """The counts of a sweep over stand-in peers whose differences are known."""
    peer_parity = _load_peer_parity()
    torch_fns = {3: torch.nn.functional.adaptive_avg_pool1d, 4: torch.nn.functional.adaptive_avg_pool2d}
    ops = {name: (fn, torch_fns) for name, fn in (("same", _jaxpool_avg), ("raises", _raises_when_upsampling),
                                                  ("nan", _last_output_nan))}
    same, raises, nan = peer_parity.sweep(max_size=4, ops=ops)
    assert (same["op"], same["cases"], same["wrong"], same["first_wrong"]) == ("same", 16, 0, [])
    assert all(same["models"].values())
    upsampling = ["1->2", "1->3", "1->4", "2->3", "2->4", "3->4"]
    assert (raises["wrong"], raises["raised"], raises["with_nan"], raises["first_wrong"]) == (6, 6, 0, upsampling)
    assert raises["models"] == {"14x14->7x7": True, "7x7->7x7": True, "13x13->7x7": True, "10x9->80x60": False}
    assert (nan["wrong"], nan["with_nan"], nan["raised"]) == (16, 16, 0) and not any(nan["models"].values())
    assert "raises: 6 of 16 1-d cases differ from torch (0 with NaN, 6 raised); first: 1->2" in \
        peer_parity.format_rows([raises])


def test_peer_parity_runs_the_installed_peers(capsys):
    """Keras 3 and Equinox are in the test extra: both are swept, none is left out."""
    peer_parity = _load_peer_parity()
    assert list(peer_parity.peer_ops()) == ["keras.ops.adaptive_average_pool", "keras.ops.adaptive_max_pool",
                                            "eqx.nn.AdaptiveAvgPool1d/2d", "eqx.nn.AdaptiveMaxPool1d/2d"]
    assert peer_parity.main(["--max-size", "2"]) == 0
    assert capsys.readouterr().out.count("of 4 1-d cases differ from torch") == 4


def test_a_time_limit_stops_a_run_but_ctrl_c_still_aborts():
    """SIGTERM (``timeout``) inside ``stoppable`` raises ``Stopped``, which the runners catch
    (``run_until_stopped``) to print and save the rows they finished; SIGINT stays Ctrl-C, and the handler is restored.
    Outside the main thread, where Python takes no signals, it stands aside."""
    import os
    import signal
    import threading
    import time

    from jaxpool._bench.report import Stopped, run_until_stopped, stoppable

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Stopped), stoppable():
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # interrupted at once
    assert signal.getsignal(signal.SIGTERM) is before
    with pytest.raises(KeyboardInterrupt), stoppable():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # interrupted at once

    def run_one(k, item):
        if k == 3:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # interrupted at once
        return item * 10
    assert run_until_stopped([1, 2, 3, 4], run_one) == ([10, 20], "INCOMPLETE: stopped after 2 of 4; "
                                                                   "the rows below are the ones finished")
    assert run_until_stopped([1, 2], run_one) == ([10, 20], None)
    errors = []

    def in_thread():
        try:
            with stoppable():
                pass
        except Exception as e:  # noqa: BLE001
            errors.append(e)
    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()
    assert errors == []
