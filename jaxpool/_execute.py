"""The executor stage: run a reduction over the plan's window tables on the right route.

``jax.lax.platform_dependent`` picks, when the program is lowered, the XLA:CPU tactics on CPU
and the portable core on every other platform, so one traced function (or a ``jax.export``
artefact serialised for several platforms) carries the right route for each.
:func:`jaxpool.config.force_portable` (or ``JAXPOOL_ROUTE=portable``) takes the portable core
on CPU too.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from jaxpool import _choices, _cpu_max, _cpu_sum, _eager, _large, _portable, _taps, config
from jaxpool.windows import AxisWindows


def per_platform(cpu, portable, *args):
    """``cpu(*args)`` on XLA:CPU, ``portable(*args)`` elsewhere (everywhere when forced)."""
    if config.portable_forced():
        return portable(*args)
    return lax.platform_dependent(*args, cpu=cpu, default=portable)


def window_sum(x, tables: dict[int, AxisWindows]):
    """Sum of the in-bounds cells of every window (see :func:`jaxpool._portable.window_sum`),
    ``-0.0`` made ``+0.0`` as PyTorch's loops give it (:func:`jaxpool._taps.from_zero`).

    The sum is linear, so it is differentiated as one linear map whose tangent each platform
    computes in its own form (:func:`jaxpool._cpu_sum.window_sum_tangent` on XLA:CPU): reverse
    mode then transposes that one switch instead of linearizing every route, each twice
    (docs/performance.md, "Compile time and the platform switch")."""
    def values(x):
        return per_platform(lambda x: _cpu_sum.window_sum(x, tables), lambda x: _portable.window_sum(x, tables), x)

    def tangent(t):
        # The cotangent of ``jax.grad(sum)`` is a constant, and XLA constant-folds the
        # gradient's window sums of it cell by cell, at a compile-time cost that grows with
        # input and kernel: the barrier keeps the cotangent a run-time value.
        t = per_platform(lambda t: _cpu_sum.window_sum_tangent(t, tables),
                         lambda t: _portable.window_sum_tangent(t, tables), t)
        return lax.optimization_barrier(t)

    if not jnp.issubdtype(x.dtype, jnp.floating):
        return values(x)
    return _taps.from_zero(_taps.linear_as(values, tangent)(x))


def window_max(x, tables: dict[int, AxisWindows], plane_strides: dict[int, int], index_dtype=None):
    """``(max, flat index or None)`` of every window (see :func:`jaxpool._portable.window_max`).

    The values are the platform's route as is.  Their derivative, "the tangent at the chosen
    tap", is attached here once, over the switch: each route is replayed on
    ``stop_gradient(x)`` recording its choices (:mod:`jaxpool._choices`), and the tangent is
    a second switch over the recorded maps, so differentiating never linearizes the routes
    themselves (docs/performance.md, "Compile time and the platform switch")."""
    def cpu(x):
        return _cpu_max.window_max(x, tables, plane_strides, index_dtype)

    def portable(x):
        return _portable.window_max(x, tables, plane_strides, index_dtype)

    def values(x):
        return per_platform(cpu, portable, x)

    if not jnp.issubdtype(x.dtype, jnp.floating) or not _eager.differentiable(x):
        return values(x)  # no derivative: integers, or an eager call
    routes = (portable,) if config.portable_forced() else (cpu, portable)
    if cpu in routes and _cpu_max.differentiates_another_form(
            {a: w.trimmed() for a, w in tables.items()}, x.ndim, index_dtype is not None):
        # Replaying the form CPU differentiates costs far more than its forward: programs
        # that do not differentiate should not carry it, so it is replayed inside the JVP.
        return _choices.differentiated_as(values, lambda x: _replayed_max(x, routes))(x)
    # Replayed next to the forward, not inside the JVP, where jax would partially evaluate
    # the switch of replays.
    best, index, choices, tangent, reread = _replay(lax.stop_gradient(x), routes)
    if not reread:  # the replay computes the forward's own values: one program for both
        return _choices.route_to_chosen(x, best, choices, tangent), index
    # The CPU route reads its values again from its choice where it differentiates (an
    # XLA:CPU tactic, see route_to_chosen): programs that only evaluate keep the forward as
    # is and drop the replay as dead code.
    routed = lambda x, best, index, choices: (_choices.route_to_chosen(x, best, choices, tangent), index)  # noqa: E731
    return _choices.differentiated_as(values, routed)(x, best, index, choices)


def _replayed_max(x, routes):
    """``(max, index)`` by ``routes`` replayed, differentiated by their recorded choices."""
    best, index, choices, tangent, _ = _replay(lax.stop_gradient(x), routes)
    return _choices.route_to_chosen(x, best, choices, tangent), index


def _replay(xs, routes):
    """``routes`` (CPU's and the portable one, or the portable one alone) on ``xs`` with their
    choices recorded: ``(max, index, choices, tangent, reread)``, ``tangent(t, choices)``
    linear in ``t`` (the platform's recorded maps), ``reread`` whether a route's replayed
    values are read again from its choices."""
    recorded = [_choices.Replay(route, xs) for route in routes]
    reread = any(r.tape.reread for r in recorded)
    if len(recorded) == 1:
        return (*recorded[0].run(xs), recorded[0].tangent, reread)

    def forward(k):
        # A switch's branches return the same types: each fills the other route's choices
        # with zeros, which the compiled program (one platform's branch) never reads, and
        # types every choice like the input (under ``shard_map``, a choice the route made
        # without reading the input, such as a one-tap window's, would not vary with it).
        def run(xs):
            best, index, choices = recorded[k].run(xs)
            slots = [choices if j == k else r.zeros() for j, r in enumerate(recorded)]
            return best, index, jax.tree.map(lambda c: c + lax.full_like(xs, 0, c.dtype, c.shape), slots)
        return run

    def tangent_of(k):
        return lambda t, choices: recorded[k].tangent(t, choices[k])

    def tangent(t, choices):
        # Not per_platform: jax traces this rule lazily, maybe under another
        # force_portable() setting, and the branch must be the one the replay above took.
        return lax.platform_dependent(t, choices, cpu=tangent_of(0), default=tangent_of(1))

    return (*lax.platform_dependent(xs, cpu=forward(0), default=forward(1)), tangent, reread)


def routes(reduction: str, tables: dict[int, AxisWindows], ndim: int, indexed: bool,
           floating: bool) -> tuple[tuple[str, str], ...]:
    """``((platform, route in words), ...)`` of a reduction over ``tables``: what
    :func:`window_sum` / :func:`window_max` run on XLA:CPU and on every other platform."""
    if any(w.output_size == 0 for w in tables.values()):
        return (("every platform", "empty output: zeros, nothing is reduced"),)
    if reduction == "sum":
        cpu = "XLA:CPU tactics: " + _cpu_sum.route(tables, ndim, floating)
    elif reduction == "max":
        trimmed = {a: w.trimmed() for a, w in tables.items()}
        tactic = _cpu_max.choose(trimmed, ndim, indexed, floating)
        cpu = "XLA:CPU tactics: " + _cpu_max.ROUTES[tactic]
    else:
        return (("cpu", "blockwise select when kernel == stride and every index lies in its block "
                        "(checked at run time), else the scatter below"),
                ("gpu/tpu", "one scatter per (N, C) plane; gradient a gather at the indices"))
    portable = "portable core: " + _portable.route(tables, reduction)
    if config.portable_forced():
        return (("cpu (forced portable)", portable), ("gpu/tpu", portable))
    return (("cpu", cpu), ("gpu/tpu", portable))


@_eager.compiled_when_eager
def max_of(p, input):
    """Run a max plan (:class:`jaxpool.plan.Plan`) on ``input``: the values, and the indices
    where the plan has an index dtype, with the input's batching."""
    values, indices = window_max(p.layout.batch(input), dict(p.tables), dict(p.plane_strides), p.index_dtype)
    if p.index_dtype is not None:
        return p.layout.unbatch(values), p.layout.unbatch(indices)
    return p.layout.unbatch(values)


@_eager.compiled_when_eager
def mean_of(p, input):
    """Run a sum plan on ``input`` and divide by its divisor rule (``p.divisor``: ``"padded"``
    counts padding cells, ``"inside"`` the input cells, an int overrides both).  Sums of float16
    and bfloat16 accumulate in float32, as PyTorch's ``opmath_type``; integer sums divide with
    truncation, as C++."""
    x = jnp.asarray(p.layout.batch(input))  # numpy float64 becomes float32 here unless x64 is on
    acc = accumulation_dtype(x.dtype)
    total = window_sum(x.astype(acc), dict(p.tables))
    divisor = jnp.asarray(window_divisor(p), acc)
    if jnp.issubdtype(acc, jnp.integer):
        return p.layout.unbatch(lax.div(total, divisor))  # C++ integer division truncates
    return p.layout.unbatch((total / divisor).astype(x.dtype))


def accumulation_dtype(dtype):
    """PyTorch CPU accumulates float16/bfloat16 in float32 (``opmath_type``)."""
    return jnp.float32 if np.dtype(dtype).itemsize < 4 and jnp.issubdtype(dtype, jnp.floating) else dtype


def window_divisor(p):
    """The plan's divisor, broadcastable against the window sums: an int, or the product over
    axes of each window's per-axis cell count (computed on the device for many irregular
    windows, :func:`jaxpool._large.inside_counts_along`)."""
    if not isinstance(p.divisor, str):
        return np.asarray(int(p.divisor))
    ndim = len(p.input_shape)
    divisor = np.ones((), np.int64)
    for axis, w in p.tables.items():
        if p.divisor == "padded":
            divisor = divisor * _taps.along(w.padded_counts, axis, ndim)
        else:
            divisor = divisor * _large.inside_counts_along(w, axis, ndim)
    return divisor
