"""The executor stage: run a reduction over the plan's window tables on the right route.

``jax.lax.platform_dependent`` picks, when the program is lowered, the XLA:CPU tactics on CPU
and the portable core on every other platform, so one traced function (or a ``jax.export``
artefact serialised for several platforms) carries the right route for each.
:func:`jaxpool.config.force_portable` (or ``JAXPOOL_ROUTE=portable``) takes the portable core
on CPU too.
"""

from __future__ import annotations

from jax import lax

from jaxpool import _cpu_max, _cpu_sum, _portable, config
from jaxpool.windows import AxisWindows


def per_platform(cpu, portable, *args):
    """``cpu(*args)`` on XLA:CPU, ``portable(*args)`` elsewhere (everywhere when forced)."""
    if config.portable_forced():
        return portable(*args)
    return lax.platform_dependent(*args, cpu=cpu, default=portable)


def window_sum(x, tables: dict[int, AxisWindows]):
    """Sum of the in-bounds cells of every window (see :func:`jaxpool._portable.window_sum`)."""
    return per_platform(lambda x: _cpu_sum.window_sum(x, tables), lambda x: _portable.window_sum(x, tables), x)


def window_max(x, tables: dict[int, AxisWindows], plane_strides: dict[int, int], index_dtype=None):
    """``(max, flat index or None)`` of every window (see :func:`jaxpool._portable.window_max`)."""
    return per_platform(lambda x: _cpu_max.window_max(x, tables, plane_strides, index_dtype),
                        lambda x: _portable.window_max(x, tables, plane_strides, index_dtype), x)
