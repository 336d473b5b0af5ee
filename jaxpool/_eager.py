"""Eager calls run as one compiled program.

Called on concrete arrays outside any transformation, an executor would dispatch every
operation of its (often unrolled) program on its own, and jax compiles each distinct one, for
every new shape again (docs/performance.md, "Eager calls").  :func:`compiled_when_eager` jits
the executor instead, one program per plan and argument types, kept in a bounded cache; when
any argument is a tracer (inside ``jit``, ``grad``, ``vmap``...) the executor runs as written,
as part of the caller's program.  A program traced for an eager call is never differentiated
(its arguments are concrete), so executors skip what only derivatives need while
:func:`differentiable` says so.
"""

from __future__ import annotations

import collections
import contextvars
import dataclasses
import functools
from collections.abc import Mapping

import jax
import numpy as np

from jaxpool import config

# Compiled programs kept for eager calls (least recently used dropped first).
MAX_EAGER_PROGRAMS = 256

_TRACING_EAGER_CALL = contextvars.ContextVar("jaxpool_tracing_eager_call", default=False)


def differentiable(x) -> bool:
    """Whether a derivative may be taken of ``x``: a tracer outside the trace of an eager call's
    program (a concrete array never is differentiated)."""
    return isinstance(x, jax.core.Tracer) and not _TRACING_EAGER_CALL.get()


def _traced_for_eager_call(executor, p, *arrays):
    token = _TRACING_EAGER_CALL.set(True)
    try:
        return executor(p, *arrays)
    finally:
        _TRACING_EAGER_CALL.reset(token)


def compiled_when_eager(executor):
    """``executor(plan, *arrays)``; on concrete arrays, through ``jax.jit`` cached by the plan.

    The cache key holds everything the traced program depends on: the plan's whole content
    (:func:`fingerprint`; tables included, so two calls share a program only when they would
    trace the same one), the arguments' shapes, dtypes and weak types, 64-bit mode and the
    forced portable route.
    """
    programs: collections.OrderedDict = collections.OrderedDict()

    @functools.wraps(executor)
    def run(p, *arrays):
        leaves = jax.tree.leaves(arrays)
        if any(isinstance(a, jax.core.Tracer) for a in leaves):
            return executor(p, *arrays)
        avals = tuple((np.shape(a), str(jax.typeof(a).dtype), getattr(jax.typeof(a), "weak_type", False)) for a in leaves)
        key = (fingerprint(p), jax.tree.structure(arrays), avals, bool(jax.config.jax_enable_x64), config.portable_forced())
        program = programs.pop(key, None)  # then put back last: the most recently used
        if program is None:
            program = jax.jit(functools.partial(_traced_for_eager_call, executor, p))
        programs[key] = program
        while len(programs) > MAX_EAGER_PROGRAMS:
            programs.popitem(last=False)
        return program(*arrays)

    return run


def fingerprint(value):
    """A hashable value equal for equal contents: dataclasses by their fields, numpy arrays by
    dtype, shape and bytes, mappings by their sorted items."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__qualname__,) + tuple(fingerprint(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, np.ndarray):
        return ("ndarray", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, Mapping):
        return ("mapping",) + tuple(sorted((k, fingerprint(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__,) + tuple(fingerprint(v) for v in value)
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return ("dtype", np.dtype(value).str)
    hash(value)  # anything else must be hashable as it is (an unhashable one is a bug here)
    return (type(value).__qualname__, value)
