"""Smoke test of the model benchmark (benchmarks/models.py): the steps run and learn, the jaxpool
model computes what its PyTorch twin computes from the same weights, the table has every row.
Never the timings."""

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import torch  # noqa: F401  (the benchmark compares against torch: a missing torch is a failure)

ROOT = pathlib.Path(__file__).resolve().parents[1]
FULL = os.environ.get("JAXPOOL_FULL") == "1"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"jaxpool_bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


models = _load("models")  # puts benchmarks/ on sys.path, so model_zoo imports as the script does
import model_zoo  # noqa: E402


def _check_learns_and_matches_torch(row, impls):
    for impl in impls:
        assert row[f"{impl}_ms"] > 0
        losses = row[f"{impl}_losses"]
        assert len(losses) == 3 and losses[2] < losses[0], (row["model"], impl, losses)  # it learns
    # same weights, data and optimizer: torch's losses are jaxpool's, step after step
    assert row["torch_loss_diff"] < 1e-4, row
    assert row["ratio_jaxpool_torch"] > 0 and row["jaxpool_pool_share"] < 1


def test_quick_run_learns_matches_torch_and_tabulates(tmp_path, capsys):
    """The cheapest model (the 3-D net: MaxPool3d, AdaptiveAvgPool3d(1)) with every
    implementation, three steps each from the same weights."""
    out_json, out_csv = tmp_path / "m.json", tmp_path / "m.csv"
    rc = models.main(["--quick", "--threads", "1", "--only", "net3d", "--json", str(out_json), "--csv", str(out_csv)])
    assert rc == 0
    printed = capsys.readouterr().out
    (row,) = json.loads(out_json.read_text())["rows"]
    _check_learns_and_matches_torch(row, ("jaxpool", "flax", "slice", "torch", "torch.slice"))
    assert row["flax_loss_diff"] < 1e-5  # Flax's own max/avg pools compute the same numbers here
    assert row["torch.slice_loss_diff"] < 1e-4  # the two no-pool models are twins too
    assert {"jaxpool_pool_ms", "torch_pool_ms", "torch_pool_share"} <= set(row)
    assert row["ratio_jaxpool_flax"] > 0 and -10 < row["flax_pool_share"] < 1
    assert all(row[f"{kit}_compile_s"] > 0 for kit in ("jaxpool", "flax", "slice"))
    assert row["torch.compile_ms"] == "n/a: not run (--quick)"
    step_table = printed.split("step time")[1].split("compile time")[0]
    assert [line.split()[0] for line in step_table.splitlines()[3:] if line.strip()] == ["net3d"]
    assert "torch.compile: n/a: not run (--quick)" in printed
    assert printed.rstrip().endswith(models.quick_warning(3))
    assert out_csv.read_text().splitlines()[0].startswith("model,")


def test_every_model_has_a_row(capsys):
    """All four models (torch steps only: no XLA compile), n/a where Flax cannot express one."""
    assert models.main(["--quick", "--threads", "1", "--impls", "torch"]) == 0
    printed = capsys.readouterr().out
    step_table = printed.split("step time")[1].split("compile time")[0].splitlines()
    rows = {line.split()[0]: line for line in step_table[3:] if line.strip()}
    assert list(rows) == [m.name for m in model_zoo.MODELS]
    assert " n/a " in rows["vgg11"] and " n/a " in rows["segnet"]
    assert "segnet: SegNet style" in printed and "flax: n/a: Flax has no pool indices" in printed


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="about a minute of XLA compiles: JAXPOOL_FULL=1")
def test_every_model_learns_and_matches_torch(tmp_path):
    out_json = tmp_path / "m.json"
    assert models.main(["--quick", "--threads", "1", "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["rows"]
    assert [r["model"] for r in rows] == [m.name for m in model_zoo.MODELS]
    for row in rows:
        _check_learns_and_matches_torch(row, ("jaxpool", "slice", "torch"))


@pytest.mark.parametrize("model", model_zoo.MODELS, ids=lambda m: m.name)
def test_every_model_is_its_torch_twin(model):
    """Forward pass of every model (its quick shape) with ported weights: the same numbers as
    torch's, for jaxpool's pools and, where Flax can express the model, Flax's own; the
    no-pool stand-in keeps the parameter shapes."""
    import jax

    x = np.random.default_rng(0).standard_normal(model.quick_shape).astype(np.float32)
    module = model.flax("jaxpool", True)
    params = model_zoo.init_params(module, x)
    twin = model.torch(x.shape[-1], True)
    model_zoo.port_to_torch(params, twin)
    with torch.no_grad():
        expected = twin(torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 1)))).numpy()
    if model.per_pixel:
        expected = np.moveaxis(expected, 1, -1)
    kits = ["jaxpool"] + (["flax"] if model.name not in model_zoo.FLAX_CANNOT else [])
    for kit in kits:
        got = jax.jit(model.flax(kit, True).apply)({"params": params}, x)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=kit)
    stand_in = model_zoo.init_params(model.flax("slice", True), x)
    assert jax.tree.map(np.shape, stand_in) == jax.tree.map(np.shape, params)


def test_port_refuses_a_mismatched_twin():
    import jax

    model = model_zoo.MODELS[3]
    x = np.zeros(model.quick_shape, np.float32)
    params = model_zoo.init_params(model.flax("jaxpool", True), x)
    with pytest.raises(ValueError, match="port_to_torch: conv0.kernel has shape"):
        model_zoo.port_to_torch(params, model.torch(2, True))  # 2 input channels, not 1


def test_help_and_bad_model(capsys):
    with pytest.raises(SystemExit):
        models.main(["--help"])
    assert "--quick" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        models.main(["--only", "alexnet"])


@pytest.mark.parametrize("model", model_zoo.MODELS, ids=lambda m: m.name)
def test_torch_without_pools_leaves_no_pool_and_keeps_every_shape(model):
    """torch's pools' share is only that if every pool module is replaced, by a stand-in of
    the same output shape as the JAX slice kit's."""
    import torch

    net = model.torch(model.quick_shape[-1], True)
    x = torch.zeros((model.quick_shape[0], model.quick_shape[-1], *model.quick_shape[1:-1]))
    pooled = net(x).shape
    model_zoo.torch_without_pools(net)
    pools = (torch.nn.MaxPool2d, torch.nn.MaxPool3d, torch.nn.MaxUnpool2d, torch.nn.AdaptiveAvgPool2d,
             torch.nn.AdaptiveAvgPool3d)
    assert not [m for m in net.modules() if isinstance(m, pools)]
    assert net(x).shape == pooled
