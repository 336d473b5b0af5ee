"""Smoke test of the benchmark (jaxpool._bench, run by ``jaxpool bench`` and benchmarks/bench.py):
structure of the table, JSON and CSV, never the timings."""

import csv
import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest
import torch  # noqa: F401  (the benchmark compares against torch: a missing torch is a failure)

import jaxpool
from jaxpool import _bench as bench
from jaxpool._bench import cases, report

ROOT = pathlib.Path(__file__).resolve().parents[1]

TIMED = ("jaxpool_fwd_ms", "torch_fwd_ms", "ratio_fwd", "jaxpool_fwdbwd_ms", "torch_fwdbwd_ms",
         "ratio_fwdbwd", "copy_ms", "roofline_fwd")


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
    rows = result["rows"]
    assert [r["workload"] for r in rows] == only
    for row in rows:
        assert row["status"] == "ok"
        assert row["workload"] in printed
        for key in TIMED:
            assert isinstance(row[key], float) and row[key] > 0, key
        assert row["bytes_moved"] > 0
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
    assert result["summary"]["measured"] == 2 and result["summary"]["geomean_ratio"] > 0
    assert result["warning"] == warning
    with open(out_csv) as f:
        table = list(csv.DictReader(f))
    assert [r["workload"] for r in table] == only and float(table[0]["ratio_fwd"]) > 0
    assert out_png.stat().st_size > 0


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
    assert bench.main(["--quick", "--repeats", "1", "--only", "fractional", "--json", str(out_json)]) == 0
    (row,) = json.loads(out_json.read_text())["rows"]
    if hasattr(jaxpool, "fractional_max_pool2d"):
        assert row["status"] == "ok" and row["ratio_fwd"] > 0
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
                           "--warm-allocator", "--only", "adaptive_avg_pool2d_14to7", "--json", str(out)],
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
