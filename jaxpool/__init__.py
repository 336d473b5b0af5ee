"""jaxpool: PyTorch's pooling operators as pure, jit-able JAX functions.

Same numbers, same indices, same gradients as ``torch.nn.functional``; the window tables that
produce them are visible in :mod:`jaxpool.windows`.
"""

from jaxpool import _explain, functional, windows
from jaxpool.adaptive import adaptive_avg_pool, adaptive_max_pool
from jaxpool.avg_pool import avg_pool
from jaxpool.convert import from_torch
from jaxpool.fractional import fractional_max_pool
from jaxpool.functional import *  # noqa: F401,F403  (the torch-named operators)
from jaxpool.functional import __all__ as _functional_names
from jaxpool.lp_pool import lp_pool
from jaxpool.max_pool import max_pool
from jaxpool.max_unpool import max_unpool
from jaxpool.stochastic import stochastic_pool

# windows.py is the numpy-only bottom layer; the operator-level lookup, which traces the operator
# and reads its plan, lives above the operators and is offered under its documented name here.
windows.op_windows = _explain.op_windows


def _installed_version() -> str:
    """pyproject.toml holds the version; an uninstalled source tree reports ``0+unknown``."""
    import importlib.metadata

    try:
        return importlib.metadata.version("jaxpool")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _installed_version()

__all__ = [
    "functional", "windows",
    "from_torch",
    "max_pool", "avg_pool", "lp_pool", "max_unpool", "adaptive_avg_pool", "adaptive_max_pool",
    "fractional_max_pool", "stochastic_pool",
    *_functional_names,
]
