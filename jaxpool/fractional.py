"""Fractional max pooling (Graham, 2015) with PyTorch's exact pseudo-random windows.

Given the same ``_random_samples`` (shape ``(N, C, ndim)``, values in ``[0, 1)``, the input's
dtype), :func:`fractional_max_pool` returns the same values, indices and gradients as
``torch.nn.functional.fractional_max_pool{2,3}d``.  Without samples they are drawn from an
explicit ``key`` with :func:`jax.random.uniform`; there is no hidden global random state.

PyTorch's rules reproduced (aten/src/ATen/native/FractionalMaxPool2d.cpp, FractionalMaxPool3d.cpp,
FractionalMaxPooling.h and ``torch.nn.functional.fractional_max_pool2d``):

* **Windows.**  Along an axis of input size ``in``, output size ``out`` and kernel ``k``, window
  ``i`` covers ``[start_i, start_i + k)`` with (``generate_intervals``)::

      alpha   = T(in - k) / T(out - 1)                      # T: the input's scalar type
      start_i = int((T(i) + u) * alpha) - int(u * alpha)    # i < out - 1; int() truncates
      start_{out-1} = in - k                                # the last window ends at the input's end

  where ``u`` is the plane's sample for that axis and every operation is rounded to ``T``: for
  float16/bfloat16 each sum, product and quotient is rounded to half precision (c10's ``Half`` and
  ``BFloat16`` compute in float and round after every operation; here that is
  ``lax.reduce_precision`` after each float32 op, which XLA cannot fuse away), float32 in float32,
  float64 in float64.  ``out == 1`` gives the single window ``[in - k, in)``.
* **Which sample drives which axis.**  2-d: ``samples[n, c, 0]`` drives the *width* (last) axis and
  ``samples[n, c, 1]`` the height; 3-d: ``samples[n, c, 0/1/2]`` drive T/H/W in order.  An input
  batch of ``N`` uses ``samples[:N]`` (more rows are allowed); an unbatched ``(C, *spatial)``
  input takes samples of shape ``(>= 1, C, ndim)`` and uses row 0, as PyTorch.
* **Output size.**  ``output_size`` directly, or from ``output_ratio`` as
  ``int(input_size * ratio)`` (Python float product, truncated), which may be 0 (empty output, as
  PyTorch).  Fit: 2-d requires ``out + k - 1 <= in``; 3-d requires ``out + k - 1 < in``
  (PyTorch's 3-d check is strict, so a 3-d kernel as large as the input is rejected).
* **Max.**  Each window is scanned in row-major order from ``max = -inf`` with the index of the
  window's first cell, taking a cell when ``val > max || isnan(val)``: the first maximum wins
  ties, the *last* NaN wins, and a window of ``-inf`` reports its first cell.  Indices are flat
  offsets into the input plane (``h * W + w``), int64 under x64 else int32.  The gradient is
  scattered to the indexed cells (summed where windows overlap).

Beyond PyTorch (stricter, documented): exactly one of ``output_size``/``output_ratio`` and a ratio
in ``(0, 1)`` are required, as ``torch.nn.FractionalMaxPool2d`` demands (the functional silently
prefers ``output_size`` and accepts any ratio); ``kernel_size`` must be positive (PyTorch returns
``-inf`` for empty windows); a scalar 2-d ``output_ratio`` is accepted (the functional raises a
``TypeError`` on ``len(float)``).  Samples are traced values, so their range cannot be checked at
trace time: PyTorch reads outside the plane for samples outside ``[0, 1]``; here window starts are
clamped into ``[0, in - k]`` so no read ever leaves the input.
"""

from __future__ import annotations

from jaxpool import _args, _drawn_max, _plan_random
from jaxpool._drawn_max import interval_starts  # noqa: F401  (PyTorch's generate_intervals, public here)
from jaxpool._plan_random import sample_axes  # noqa: F401  (which sample drives which axis, public here)


def fractional_max_pool(input, kernel_size, output_size=None, output_ratio=None,
                        return_indices=False, _random_samples=None, *, ndim: int, key=None,
                        channels_last: bool = False):
    """Fractional max pooling, as ``torch.nn.functional.fractional_max_pool{ndim}d``.

    Args:
      input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``, floating; with
        ``channels_last=True``, ``(N, *spatial, C)`` or ``(*spatial, C)``.
      kernel_size: window size, an int or one per spatial axis.
      output_size: output spatial size (int or tuple); or
      output_ratio: output size as a fraction of the input, in ``(0, 1)`` (float or tuple).
      return_indices: also return flat in-plane indices (for ``max_unpool``).
      _random_samples: ``(N', C, ndim)`` samples in ``[0, 1)`` with ``N' >= N`` (``N = 1`` for
        an unbatched input), the input's dtype; PyTorch's argument of the same name.
      key: a :func:`jax.random.key` (or ``PRNGKey``) used to draw the samples, shape
        ``(N, C, ndim)`` with ``jax.random.uniform``, when ``_random_samples`` is not given;
        ignored when it is.  One of the two is required.

    See the module docstring for the window, index, NaN and validation rules.  The windows are
    data (one set per plane): the plan holds their rule (:class:`jaxpool.windows.DrawnWindows`)
    and the executor (:mod:`jaxpool._drawn_max`) computes them from the samples.
    """
    op = f"fractional_max_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float(input, op)
    p = _plan_random.fractional_max_pool(input, layout, op, kernel_size, output_size, output_ratio,
                                         return_indices, _random_samples, key)
    values, indices = _drawn_max.max_of(p, input, _drawn_max.samples_of(p, _random_samples, key))
    return (values, indices) if return_indices else values
