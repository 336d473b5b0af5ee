"""The examples in examples/ run and check what they claim (they assert their own agreement)."""

import importlib.util
import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "torch_to_flax_cnn.py"


def _load(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses (flax.linen modules) look their module up
    spec.loader.exec_module(module)
    return module


def test_torch_to_flax_cnn_agrees_with_pytorch():
    example = _load(EXAMPLE)
    errors = example.main(seed=1, batch=3, size=(17, 14), verbose=False)
    assert set(errors) == {"output", "input_grad"}
    assert errors["output"] < 1e-4 and errors["input_grad"] < 1e-4


def test_torch_to_flax_cnn_runs_as_a_script():
    result = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert "outputs (2, 10) agree" in result.stdout and "input gradients agree" in result.stdout
