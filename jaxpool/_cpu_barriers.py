"""XLA:CPU fusion barriers: integer identities that XLA's fusion cost model will not duplicate.

XLA fuses a cheap producer into every consumer, so a value read by two consumers (the output
and the gradient) or per tap of the next axis is recomputed there.  On XLA:CPU, an integer
remainder is costed as expensive and never duplicated; each function here is the identity
written as one, so its operand is computed once and written.  On GPU/TPU these would be extra
passes over memory, so only the CPU tactics use them (docs/performance.md, items 2, 7, 9, 13, 18).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import lax


# Stride-1 max windows padded along the minor axis fold up to this many N-d taps at once from
# one padded copy (_cpu_max_direct._fold_padded; Inception's and SPP's 3x3 to 9x9, 3-D 3x3x3), where
# axis by axis XLA:CPU writes every padded tap out and refolds the earlier axes per tap
# (docs/performance.md, item 14).  The tap choice stays int8 (choice_dtype).
MAX_PADDED_FOLD_TAPS = 100


def stored(y):
    """``y`` itself (floating point), computed by a loop of its own and written once.

    When a result has two consumers (the output and, in a backward pass, the next op's
    derivative), XLA duplicates cheap producers into both and writes their operands out
    instead: every gathered tap of a window sum became an input-sized buffer.  An integer
    remainder is never duplicated, so the sum is written once.  The remainder by the largest
    unsigned value is the identity except on the all-ones bit pattern, a NaN, so NaNs are
    made canonical first (PyTorch's NaN payloads are not part of its results).
    """
    unsigned = {2: np.uint16, 4: np.uint32, 8: np.uint64}[np.dtype(y.dtype).itemsize]
    y = jnp.where(jnp.isnan(y), np.array(np.nan, y.dtype), y)
    bits = lax.bitcast_convert_type(y, unsigned)
    bits = lax.rem(bits, np.array(np.iinfo(unsigned).max, unsigned))
    return lax.bitcast_convert_type(bits, y.dtype)


def materialised(chosen, taps: int):
    """``chosen`` itself, behind an op XLA will not duplicate into its consumers.

    XLA fuses a cheap producer into every consumer that reads it, so a gradient loop that reads
    a window's choice once per input cell would redo the whole tap fold per cell.  An integer
    remainder (the identity here: ``0 <= chosen < taps``) counts as expensive, which keeps the
    fold in its own loop that writes the choices once.

    The choice is stored as ``int8`` when the tap count allows (every unrolled fold does): it
    is the only temporary of a fixed max pool's forward+backward, and a fresh buffer costs its
    page faults on every call (item 13; the consumers widen it inside their own loops).
    """
    divisor = taps + 1
    while divisor & (divisor - 1) == 0:  # XLA rewrites a power-of-two remainder as a cheap `and`
        divisor += 1
    dtype = choice_dtype(taps)
    return lax.rem(chosen.astype(dtype), dtype(divisor))


def read_twice(taps_at, taps: int):
    """``taps_at`` (the tangent at the chosen tap, linear in ``t``), with the choices read a
    second time by a reduction that the backward pass depends on.

    :func:`materialised` keeps the fold in a loop of its own only while the choices have a
    consumer besides the gradient; with ``jax.grad(lambda x: pool(x).sum())`` the forward
    output is dead, and XLA fuses the fold into the gradient's loop, where every input cell
    redoes it for every window that covers it (docs/performance.md, item 18).  The
    cotangent is masked by ``max(chosen) < taps``, always true, so the choices always have
    that second consumer.
    """

    def at(t, chosen):
        # lax's reduction, unlike jnp.max, accepts an empty batch (its identity is the
        # type's minimum).
        always = lax.reduce_max(chosen, tuple(range(chosen.ndim))) < np.asarray(taps, chosen.dtype)
        return jnp.where(always, taps_at(t, chosen), jnp.zeros((), t.dtype))

    return at


def choice_dtype(taps: int):
    """The integer type of a tap number below ``taps`` (and of :func:`materialised`'s
    divisor, at most ``taps + 2``): ``int8`` up to ``MAX_PADDED_FOLD_TAPS`` (100) taps, which
    every unrolled fold is."""
    return np.int8 if taps <= MAX_PADDED_FOLD_TAPS else np.int32


def kept(a):
    """``a`` itself, computed once: split into 16-bit halves behind an integer remainder.

    Like :func:`materialised`: the next axis gathers its taps from this axis' result, and
    XLA would otherwise fuse (and redo) this axis' whole fold inside each of those gathers.
    """
    if np.dtype(a.dtype).itemsize != 4:  # 32-bit values and indices (the common case) only
        return a
    u = lax.bitcast_convert_type(a, np.uint32)
    hi = lax.rem(lax.shift_right_logical(u, np.uint32(16)), np.uint32(65537))
    lo = lax.rem(u & np.uint32(0xFFFF), np.uint32(65537))
    return lax.bitcast_convert_type(lax.shift_left(hi, np.uint32(16)) | lo, a.dtype)
