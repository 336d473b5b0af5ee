"""Compile time of a forward+backward program, from scratch, and the size of what XLA compiles.

A user's first step pays tracing, lowering to StableHLO and XLA's compilation; all three are
timed, with jax's in-memory caches cleared before each try (``jax.clear_caches``) and no
persistent compilation cache (``main`` turns it off for the run; :func:`compile_seconds`
refuses to time while one is on), so no try reuses an earlier one's work.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

# An op of the lowered module that produces a value (``%0 = stablehlo.add ...`` or, in the
# generic form, ``%3 = "stablehlo.case"(...)``), in regions too (the bodies of reductions, cases
# and loops); region terminators (``stablehlo.return``) and function plumbing are not counted.
_VALUE_OP = re.compile(r'= "?(?:stablehlo|chlo)\.')


def stablehlo_ops(text: str) -> int:
    """How many value-producing StableHLO (and CHLO) ops ``lowered.as_text()`` holds."""
    return sum(1 for line in text.splitlines() if _VALUE_OP.search(line))


def persistent_cache_on() -> bool:
    """Whether jax would read and write a persistent compilation cache."""
    import jax

    return bool(jax.config.jax_compilation_cache_dir) and bool(jax.config.jax_enable_compilation_cache)


def compile_seconds(make: Callable, args: tuple, repeats: int) -> tuple[float, int]:
    """Best of ``repeats`` wall seconds of ``make().lower(*args).compile()``, each from scratch,
    and the StableHLO op count of the lowered program.

    Args:
      make: returns a fresh ``jax.jit`` of the function, e.g.
        ``lambda: jax.jit(jax.grad(loss))``.
      args: the arguments it is lowered for.
      repeats: tries; the best is the one least disturbed by other load.

    Returns:
      ``(seconds, ops)``.
    """
    import jax

    if persistent_cache_on():
        raise RuntimeError("a persistent compilation cache is on (jax_compilation_cache_dir): compile times "
                           "would measure cache reads; turn it off (jax_enable_compilation_cache=False)")
    best = math.inf
    for _ in range(repeats):
        jax.clear_caches()
        t0 = time.perf_counter()
        lowered = make().lower(*args)
        lowered.compile()
        best = min(best, time.perf_counter() - t0)
    return best, stablehlo_ops(lowered.as_text())
