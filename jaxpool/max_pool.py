"""Max pooling with PyTorch's windows, indices, tie and NaN rules."""

from __future__ import annotations

from jaxpool import _args, _execute, plan


def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
             return_indices=False, *, ndim: int, channels_last: bool = False):
    """Max over each window of an ``ndim``-d input, as ``torch.nn.functional.max_pool{ndim}d``.

    PyTorch's rules reproduced:

    * windows start at ``i*stride - padding`` and read ``kernel_size`` cells ``dilation`` apart;
      padding is ``-inf`` (it never wins) and may be at most half the kernel;
    * output size ``floor((in + 2*pad - dilation*(k-1) - 1) / stride) + 1``; with ``ceil_mode``
      rounded up, dropping a last window that would start in the right padding;
    * indices are flat offsets into each input plane (``h*W + w`` for 2-d), int64 under x64
      else int32; ties pick the first maximum in row-major order; if a window holds NaN the
      result is NaN and the index is the *last* NaN (PyTorch CPU's ``val > max || isnan(val)``);
    * the gradient goes to the indexed cell only; integer dtypes are supported.

    Args:
      input: ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; with ``channels_last=True``,
        ``(N, *spatial, C)`` or ``(*spatial, C)``.
      return_indices: also return the indices (same shape as the output).
    """
    op = f"max_pool{ndim}d"
    layout = _args.layout_of(input, ndim, op, channels_last)
    _args.check_float_or_int(input, op)
    p = plan.max_pool(input, layout, op, kernel_size, stride, padding, dilation, ceil_mode, return_indices)
    return _execute.max_of(p, input)
