"""mypy --strict on the typed usage file and the public modules (the settings: pyproject.toml).

The cache lives outside the checkout (``/tmp/jaxpool-mypy-cache``): a cold run takes ~30 s on
one core, a warm one ~2 s.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = ["jaxpool/functional.py", "jaxpool/_typing.py", "jaxpool/layer_specs.py", "jaxpool/convert.py",
          "jaxpool/flax/linen.py", "jaxpool/flax/nnx.py", "jaxpool/haiku.py", "jaxpool/equinox.py",
          "jaxpool/keras.py"]


def test_public_api_and_typed_usage_pass_mypy_strict():
    assert (ROOT / "jaxpool" / "py.typed").exists()  # PEP 561: installed jaxpool is typed
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "tests/typed_usage.py", *PUBLIC],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_sees_the_layers_and_the_overloads(tmp_path):
    """What the issue asks a type checker to see, as revealed types (and a rejected argument)."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import jax\n"
        "import jaxpool, jaxpool.flax.linen, jaxpool.equinox, jaxpool.keras\n"
        "x = jax.numpy.ones((1, 1, 4, 4))\n"
        "reveal_type(jaxpool.max_pool2d(x, 2))\n"
        "reveal_type(jaxpool.max_pool2d(x, 2, return_indices=True))\n"
        "reveal_type(jaxpool.flax.linen.MaxPool2d(2))\n"
        "reveal_type(jaxpool.equinox.AdaptiveAvgPool2d(7))\n"
        "reveal_type(jaxpool.keras.MaxPool2d(2))\n"
        "jaxpool.equinox.AdaptiveAvgPool2d(7, bogus=1)\n")
    result = subprocess.run([sys.executable, "-m", "mypy", "--strict", str(probe)], capture_output=True,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = result.stdout
    assert 'Revealed type is "jax._src.basearray.Array"' in out, out
    assert 'Revealed type is "tuple[jax._src.basearray.Array, jax._src.basearray.Array]"' in out, out
    for name in ("jaxpool.flax.linen.MaxPool2d", "jaxpool.equinox.AdaptiveAvgPool2d", "jaxpool.keras.MaxPool2d"):
        assert f'Revealed type is "{name}"' in out, out
    assert 'Unexpected keyword argument "bogus" for "AdaptiveAvgPool2d"' in out, out
