"""The derivative of a window max: "the tangent at the chosen tap", attached once per call.

A max route folds ``stop_gradient(x)`` axis by axis and, at each fold, calls
:func:`route_to_chosen` with the taps it chose and ``taps_at(t, chosen)``, the linear map
"``t`` at the chosen taps".  The derivative of the whole max is those maps applied in order.

Called on its own, :func:`route_to_chosen` attaches that derivative as a custom JVP.  The
executor instead replays the routes inside :func:`taping`: a :class:`Tape` keeps each map and
its choice, and :func:`jaxpool._execute.window_max` attaches one custom JVP over the platform
switch, whose tangent is another switch over the recorded maps.  Reverse mode then transposes
one linear switch instead of linearizing every route's custom JVPs, each twice (how jax
differentiates a ``cond``; docs/performance.md, "Compile time and the platform switch").
"""

from __future__ import annotations

import contextlib
import contextvars

import jax
import jax.numpy as jnp
from jax import lax

_TAPE: contextvars.ContextVar[Tape | None] = contextvars.ContextVar("jaxpool_max_tape", default=None)


class Tape:
    """The chosen-tap maps of one max route, in the order its folds ran.

    The folds must form a chain (each one folds the previous fold's result, the first one the
    route's input), so that the derivative is their composition; :meth:`record` checks it.
    """

    def __init__(self, x):
        self.maps = []
        self.choices = []
        self.last = x  # the value the next fold must read
        self.rerouted = False  # whether a fold differentiated another form (differentiated_as)
        self.reread = False  # whether a fold recomputed its values from its choice (``read``)

    def record(self, x, best, chosen, taps_at, read=None):
        if x is not self.last:
            raise AssertionError("jaxpool: a max route's folds are not a chain; its derivative cannot be recorded")
        if read is not None:
            best = read(lax.stop_gradient(x), chosen)
            self.reread = True
        self.maps.append(taps_at)
        self.choices.append(chosen)
        self.last = best
        return best

    def finish(self, best):
        """Check that ``best``, the route's result, is the last fold's."""
        if best is not self.last:
            raise AssertionError("jaxpool: a max route returned a value its recorded folds did not compute")

    def tangent(self, t, choices):
        """Linear in ``t``: the composed chosen-tap maps, with ``choices`` as recorded."""
        for taps_at, chosen in zip(self.maps, choices):
            t = taps_at(t, chosen)
        return t


@contextlib.contextmanager
def taping(x):
    """Within: :func:`route_to_chosen` records on the yielded :class:`Tape` for ``x``."""
    tape = Tape(x)
    token = _TAPE.set(tape)
    try:
        yield tape
    finally:
        _TAPE.reset(token)


def route_to_chosen(x, best, chosen, taps_at, read=None):
    """``best`` (computed from ``stop_gradient(x)``) with the derivative of a max over ``x``.

    The tangent of a window max is the tangent of the chosen tap: ``taps_at(t, chosen)``,
    linear in ``t``.  Written as a custom JVP, reverse mode transposes it to
    ``where(chosen == j, g, 0)`` placed by a pad per tap (or one masked reshape), so the
    gradient reaches exactly the recorded cell (ties and NaN included) at the cost of the
    forward pass, and forward mode works too.  Inside :func:`taping`, the map is recorded
    instead.

    ``read(x, chosen)``, if given, recomputes the values from the choice where the program
    differentiates: the choice then has a second consumer besides the gradient, so XLA
    writes it once instead of redoing the fold inside the gradient's loop for every tap that
    reads it.
    """
    tape = _TAPE.get()
    if tape is not None:
        return tape.record(x, best, chosen, taps_at, read)

    @jax.custom_jvp
    def routed(x, best, chosen):
        return best

    @routed.defjvp
    def routed_jvp(primals, tangents):
        # The primal output is routed(...) again, not ``best``: ``best`` carries no derivative
        # (stop_gradient), and higher-order derivatives differentiate this rule itself.
        x, best, chosen = primals
        if read is not None:
            best = read(lax.stop_gradient(x), chosen)
        return routed(x, best, chosen), taps_at(tangents[0], chosen)

    return routed(x, best, chosen)


def differentiated_as(values, reference):
    """``values``, differentiated as ``reference``, which computes the same numbers another
    way (the fastest forward, the derivative of the form whose gradient is cheapest).
    Called as ``f(x, *operands)``: ``values(x)``, differentiated in ``x`` as
    ``reference(x, *operands)``; the operands carry no derivative (their tangents are
    dropped), so they must not depend differentiably on ``x`` (pass values computed from
    ``stop_gradient(x)``).  Inside :func:`taping`, where only derivatives are
    wanted, simply ``reference``."""
    tape = _TAPE.get()
    if tape is not None:
        tape.rerouted = True
        return reference

    @jax.custom_jvp
    def f(x, *operands):
        return values(x)

    @f.defjvp
    def f_jvp(primals, tangents):
        x, *operands = primals
        return jax.jvp(lambda x: reference(x, *operands), (x,), (tangents[0],))

    return f


class Replay:
    """A max route traced once inside :func:`taping`: :meth:`run` replays it, returning
    ``(best, index, choices)``; :meth:`tangent` is its derivative given those choices.  Both
    are ``jax.jit`` functions, so a switch over routes holds one call per branch, which jax
    differentiates without retracing the route."""

    def __init__(self, route, x):
        def run(x):
            with taping(x) as tape:
                best, index = route(x)
                tape.finish(best)
            self.tape = tape
            return best, index, tape.choices

        self.run = jax.jit(run)
        self._choice_shapes = jax.eval_shape(self.run, x)[2]
        self.tangent = jax.jit(lambda t, choices: self.tape.tangent(t, choices))

    def zeros(self):
        """Zeros in the place of the choices (for a switch branch that is not this route)."""
        return [jnp.zeros(s.shape, s.dtype) for s in self._choice_shapes]

