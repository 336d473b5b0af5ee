"""The pipeline's shape: one frozen plan per call (every operator of the registry, the
randomized ones included), read by explain; a numpy-only windows module; no import cycle; the
route switch."""

import ast
import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import _explain, cli, config, plan, windows

PACKAGE = pathlib.Path(jaxpool.__file__).parent


def _imports(path: pathlib.Path) -> set[str]:
    """The jaxpool modules ``path`` imports at module level (function-level imports excluded)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxpool"):
            if node.module == "jaxpool":
                found |= {f"jaxpool.{a.name}" for a in node.names}
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jaxpool")}
    return found


def test_windows_is_a_leaf():
    source = (PACKAGE / "windows.py").read_text()
    assert "jaxpool" not in {n.split(".")[0] for n in _module_names(source)}


def _module_names(source):
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names)


def test_no_import_cycle():
    graph = {f"jaxpool.{p.stem}": {m for m in _imports(p) if "." in m and (PACKAGE / (m.split(".", 1)[1].replace(".", "/") + ".py")).exists()}
             for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    done, path = set(), []

    def visit(m):
        if m in path:
            raise AssertionError(" -> ".join(path[path.index(m):] + [m]))
        if m in done or m not in graph:
            return
        path.append(m)
        for n in graph[m]:
            visit(n)
        path.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_the_plan_is_frozen_and_is_what_the_op_ran():
    x = jax.ShapeDtypeStruct((2, 3, 9, 8), jnp.float32)
    with plan.recording() as plans:
        out = jax.eval_shape(lambda v: jaxpool.max_pool2d(v, 3, 2, 1, return_indices=True), x)
    (p,) = plans
    assert p.output_shape == out[0].shape == (2, 3, 5, 4) and p.index_dtype == np.int32
    assert dict(p.arguments)["padding"] == (1, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.op = "avg_pool2d"
    with pytest.raises(TypeError):
        p.tables[2] = None
    assert [w.describe() for w in windows.op_windows("max_pool2d", (9, 8), 3, 2, 1)] == [
        p.tables[2].describe(), p.tables[3].describe()]


def test_explain_plan_prints_the_route_per_platform(capsys):
    assert cli.main(["explain", "avg_pool2d", "--input-size", "9", "8", "--kernel-size", "3",
                     "--stride", "2", "--padding", "1", "--plan"]) == 0
    text = capsys.readouterr().out
    assert "plan of avg_pool2d" in text and "route on cpu: XLA:CPU tactics" in text
    assert "route on gpu/tpu: portable core" in text and "count_include_pad=True" in text


def test_route_switch(monkeypatch):
    assert not config.portable_forced()
    with config.force_portable():
        assert config.portable_forced()
    monkeypatch.setenv(config.ROUTE_ENV, "portable")
    assert config.portable_forced()
    assert dict(_explain.plan_of("max_pool1d", 8, 2).routes).keys() == {"cpu (forced portable)", "gpu/tpu"}
    monkeypatch.setenv(config.ROUTE_ENV, "gpu")
    with pytest.raises(ValueError, match="JAXPOOL_ROUTE must be one of auto, portable"):
        config.portable_forced()


def test_forced_portable_program_differs_and_agrees():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 17, 16)), jnp.float32)
    def make():
        return lambda x: jax.grad(lambda x: jnp.sum(jaxpool.max_pool2d(x, 3, 2, 1) ** 2))(x)
    cpu = jax.jit(make()).lower(x).as_text()
    with config.force_portable():
        portable = jax.jit(make()).lower(x).as_text()
        got = jax.jit(make())(x)
    assert "remainder" in cpu and "remainder" not in portable
    np.testing.assert_array_equal(got, jax.jit(make())(x))


def test_fractional_plan_holds_the_rule_the_op_runs_and_explain_reads():
    x = jax.ShapeDtypeStruct((2, 3, 10, 9), jnp.float16)
    s = jax.ShapeDtypeStruct((2, 3, 2), jnp.float16)
    with plan.recording() as plans:
        out = jax.eval_shape(lambda v, s: jaxpool.fractional_max_pool2d(v, 2, (5, 4), _random_samples=s), x, s)
    (p,) = plans
    assert p.output_shape == out.shape == (2, 3, 5, 4) and p.index_dtype == np.int32
    assert p.tables[2] == windows.DrawnWindows(10, 5, 2, 1, "float16")  # 2-d: sample 1 drives the height
    assert p.tables[3] == windows.DrawnWindows(9, 4, 2, 0, "float16")
    text = str(p)
    assert "alpha = (10 - 2) / (5 - 1) in float16" in text and "_random_samples[:N], as given" in text
    assert "route on every platform" in text
    # op_windows without samples: the recorded rule; with samples: one plane's windows from it
    assert windows.op_windows("fractional_max_pool2d", (10, 9), 2, (5, 4), dtype="float16") == (p.tables[2], p.tables[3])
    h, w = windows.op_windows("fractional_max_pool2d", (10, 9), 2, (5, 4), samples=[0.3, 0.7])
    assert h.describe() == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)] and w.describe()[-1] == (7, 9)


def test_stochastic_plans_training_and_evaluation():
    x = jax.ShapeDtypeStruct((1, 2, 9, 8), jnp.float32)
    key = jax.random.key(0)
    with plan.recording() as plans:
        jax.eval_shape(lambda v: jaxpool.stochastic_pool2d(v, 3, 2, 1, key=key), x)
        jax.eval_shape(lambda v: jaxpool.stochastic_pool2d(v, 3, 2, 1, training=False), x)
    sample, expectation = plans
    assert (sample.reduction, expectation.reduction) == ("sample", "sum")
    assert dict(sample.routes).keys() == {"every platform"}
    assert dict(expectation.routes).keys() == {"cpu", "gpu/tpu"}  # the window sums' routes
    assert [t.describe() for t in windows.op_windows("stochastic_pool2d", (9, 8), 3, 2, 1)] == [
        sample.tables[2].describe(), sample.tables[3].describe()]


@pytest.mark.parametrize("argv, expected", [
    (["fractional_max_pool2d", "--input-size", "10", "9", "--kernel-size", "2", "--output-size", "5", "4",
      "--samples", "0.3", "0.7"], ["plan of fractional_max_pool2d", "u = samples[n, c, 1]", "as given"]),
    (["fractional_max_pool3d", "--input-size", "9", "--kernel-size", "2", "--output-ratio", "0.5", "--seed", "1"],
     ["plan of fractional_max_pool3d", "jax.random.uniform(key, (N, C, 3), float32)", "output_ratio=0.5"]),
    (["fractional_max_pool2d", "--input-size", "9", "--kernel-size", "2", "--output-size", "4"],
     ["no plane drawn", "alpha = (9 - 2) / (4 - 1) in float32"]),
    (["stochastic_pool1d", "--input-size", "9", "--kernel-size", "3", "--stride", "2"],
     ["sample over 1 spatial axes", "training=True", "sum over 1 spatial axes", "training=False"]),
])
def test_explain_plan_for_the_randomized_families(capsys, argv, expected):
    assert cli.main(["explain", *argv, "--plan"]) == 0
    text = capsys.readouterr().out
    assert all(e in text for e in expected), text


def test_every_registered_operator_has_a_plan():
    from jaxpool.layer_specs import OPS

    extra = {"lp_pool": (2.0, 2), "max_unpool": (2,), "adaptive_avg_pool": (2,), "adaptive_max_pool": (2,),
             "fractional_max_pool": (2, 2)}
    for op, spec in OPS.items():
        p = _explain.plan_of(op, 6, *extra.get(spec.family.name, (2,)))
        assert p.op == op and len(p.tables) == spec.ndim
