"""The generated source (scripts/gen_layers.py) is up to date with the registry, and complete."""

import importlib.util
import sys
from pathlib import Path

import jaxpool
from jaxpool import functional
from jaxpool.layer_specs import LAYERS, OPS

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen_layers", ROOT / "scripts" / "gen_layers.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_layers", module)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_up_to_date(capsys):
    """As docs/api.md: after editing jaxpool/layer_specs.py, run python scripts/gen_layers.py."""
    assert _generator().main(["--check"]) == 0, capsys.readouterr().err


def test_a_changed_registry_is_detected(monkeypatch, capsys):
    generator = _generator()
    spec = LAYERS["MaxPool2d"]
    monkeypatch.setitem(LAYERS, "MaxPool2d", type(spec)(**{**spec.__dict__, "params": spec.params[:-1]}))
    assert generator.main(["--check"]) == 1
    assert "jaxpool/flax/linen.py" in capsys.readouterr().err


def test_every_registry_entry_is_public():
    assert functional.__all__ == list(OPS)
    for name, op in OPS.items():
        fn = getattr(jaxpool, name)
        assert fn is getattr(functional, name) and fn.__module__ == "jaxpool.functional"
        assert fn.__doc__ and op.family.generic.__doc__.split("\n")[0] in fn.__doc__


def test_the_parity_sweep_covers_the_registry():
    """The parity sweep's op list comes from the registry: every operator with a torch twin."""
    from jaxpool.testing import sweep as parity

    assert set(parity.OPS) == {name for name, op in OPS.items() if op.family.in_torch}
