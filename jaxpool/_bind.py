"""Make ``op1d``/``op2d``/``op3d`` from one N-d implementation, keeping PyTorch's signature."""

from __future__ import annotations


def per_dimension(make, generic, name: str):
    """``make(n)`` returns the wrapper for ``n`` spatial dims; name and document it."""
    variants = []
    for n in (1, 2, 3):
        fn = make(n)
        fn.__name__ = fn.__qualname__ = f"{name}{n}d"
        fn.__module__ = generic.__module__
        fn.__doc__ = (
            f"{n}-d :func:`{generic.__module__}.{generic.__name__}`: PyTorch's "
            f"``torch.nn.functional.{name}{n}d`` with the same arguments, plus the keyword "
            f"``channels_last``.\n\n{generic.__doc__}"
        )
        variants.append(fn)
    return tuple(variants)
