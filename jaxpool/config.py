"""Which executor runs: the XLA:CPU tactics on CPU and the portable core elsewhere, or the
portable core everywhere.

Every operator picks its executor per platform with ``jax.lax.platform_dependent``: on XLA:CPU
the tactics of :mod:`jaxpool._cpu_sum` / :mod:`jaxpool._cpu_max` (fusion barriers, products as
sums, thresholds measured on CPU), on every other platform the portable core
(:mod:`jaxpool._portable`).  Both give PyTorch's numbers, indices and gradients.  To run (and
test, or time) the portable core on CPU, force it, for the calls traced inside a block:

>>> import jax.numpy as jnp, jaxpool
>>> from jaxpool import config
>>> with config.force_portable():
...     y = jaxpool.max_pool2d(jnp.ones((1, 1, 4, 4)), 2)
>>> y.shape
(1, 1, 2, 2)

or for a whole process with the environment variable ``JAXPOOL_ROUTE=portable``.  The choice is
read when an operator is *traced*: a function jitted before the switch keeps the route it was
traced with (``jax.jit`` caches the program), so switch before the first call.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["force_portable", "portable_forced", "ROUTE_ENV"]

ROUTE_ENV = "JAXPOOL_ROUTE"
_ROUTES = ("auto", "portable")
_state = threading.local()


def portable_forced() -> bool:
    """Whether operators traced now take the portable core on every platform (CPU included).

    True inside :func:`force_portable` or when ``JAXPOOL_ROUTE=portable``; ``JAXPOOL_ROUTE``
    unset or ``auto`` is the per-platform choice.  Any other value is a ``ValueError``.
    """
    if getattr(_state, "depth", 0):
        return True
    route = os.environ.get(ROUTE_ENV, "auto") or "auto"
    if route not in _ROUTES:
        raise ValueError(f"{ROUTE_ENV} must be one of {', '.join(_ROUTES)}, got {route!r}")
    return route == "portable"


@contextlib.contextmanager
def force_portable():
    """Trace operators with the portable core on every platform inside this block (this thread)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
