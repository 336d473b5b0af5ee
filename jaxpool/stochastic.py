"""Stochastic pooling (Zeiler & Fergus, 2013), vectorized, with explicit JAX PRNG keys.

PyTorch has no stochastic pooling; this follows the paper.  Windows are those of
``max_pool``/``avg_pool`` (``kernel_size``, ``stride`` defaulting to the kernel, ``padding`` at
most half the kernel; no dilation, no ``ceil_mode``); padding cells are not part of a window.

**Weights.**  A window's cells get weights ``w_i = max(a_i, 0)``: the method assumes
non-negative activations (e.g. after ReLU), and a negative activation is treated as having
probability zero.  A window whose cells are all ``<= 0`` has no positive weight; it picks one of
its (in-bounds) cells *uniformly*, i.e. ``w_i = 1``.

**Training** (``training=True``): each window outputs the value ``a_k`` of one cell ``k`` drawn
with probability ``p_k = w_k / sum(w)``, independently per window (one uniform draw per window,
inverted through the running sum of the weights in row-major order).  The gradient is one-hot on
the picked cell (summed where windows overlap).  If a window has positive weights, the picked
cell is positive, so the output is ``>= 0``; an all-non-positive window returns the value of a
uniformly picked cell (0 for ReLU outputs, possibly negative otherwise).

**Inference** (``training=False``): the expectation of the training output,
``sum_i p_i * a_i``.  With positive weights that is ``sum(w_i**2) / sum(w_i)`` (negative cells
contribute nothing); for an all-non-positive window it is the mean of its cells.  It is
deterministic (no key needed) and differentiable with its exact gradient.

**Non-finite input.**  A window containing NaN or ``+inf`` (or whose weight sum overflows) has
no well-defined distribution; its output is NaN in both modes.  ``-inf`` has weight zero.

Weights, sums and draws are computed in float32 (float64 for float64 input); the training output
is the picked input value itself, in the input's dtype.  Same key, same result; the draws do not
depend on the layout (``channels_last`` gives the transposed result) or on whether the input is
batched.
"""

from __future__ import annotations

from jaxpool import _args, _plan_random, _sampled_taps


def stochastic_pool(input, kernel_size, stride=None, padding=0, *, ndim: int, key=None,
                    training: bool = True, channels_last: bool = False):
    """Stochastic pooling over ``ndim`` spatial axes (see the module docstring for the rules).

    Args:
      input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, floating; with
        ``channels_last=True``, ``(N, *spatial, C)`` or ``(*spatial, C)``.
      kernel_size, stride, padding: as ``max_pool`` (``stride=None`` means the kernel size).
      key: a :func:`jax.random.key` (or ``PRNGKey``); required when ``training=True``, unused
        otherwise.  One uniform number per window is drawn from it.
      training: sample (True) or return the expectation (False).

    The plan (:func:`jaxpool._plan_random.stochastic_pool`) holds the fixed windows; the
    executor (:mod:`jaxpool._sampled_taps`) draws the picks, or sums the windows on the routes
    of ``avg_pool`` for the expectation.
    """
    op = f"stochastic_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op)
    p = _plan_random.stochastic_pool(input, layout, op, kernel_size, stride, padding, training, key)
    if training:
        return _sampled_taps.sample_of(p, input, key)
    return _sampled_taps.expectation_of(p, input)
