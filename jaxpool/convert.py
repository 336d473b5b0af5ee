"""``from_torch``: a ``torch.nn`` pooling module instance -> the equivalent pure jaxpool callable.

PyTorch is never imported here; the module's class is recognised by walking its MRO for a class
defined in ``torch.nn`` whose name is one of :data:`jaxpool.layer_specs.LAYERS`, and its
arguments are read from the attributes ``torch.nn`` stores them under (the constructor's names).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np

from jaxpool._typing import ArrayLike, MaybeIndexed
from jaxpool.layer_specs import LAYERS, REQUIRED, LayerSpec

__all__ = ["from_torch", "TorchPooling"]


@dataclasses.dataclass(frozen=True, eq=False)
class TorchPooling:
    """A converted ``torch.nn`` pooling layer: a pure function of its inputs.

    Call it as the PyTorch module's ``forward``: ``f(input)``, or ``f(input, indices,
    output_size=None)`` for ``MaxUnpool``; a randomized layer also takes ``key=`` (and runs in
    the training mode the PyTorch module was in).  Every one accepts ``key=`` and ignores it
    where the layer is not randomized, as Equinox's layers do, so it works in
    ``eqx.nn.Sequential``.  It is a plain Python callable holding static
    arguments, so it works under ``jit``, ``vmap`` and ``grad`` and inside any framework.

    Attributes:
      spec: the layer's :class:`jaxpool.layer_specs.LayerSpec`.
      kwargs: every constructor argument read from the PyTorch module.
      channels_last: the layout the callable takes (default ``False``, PyTorch's).
      training: the PyTorch module's ``training`` flag (used by randomized layers only).
    """

    spec: LayerSpec
    kwargs: Mapping[str, Any]
    channels_last: bool = False
    training: bool = True

    def __call__(self, input: ArrayLike, *args: Any, key: jax.Array | None = None,
                 **kwargs: Any) -> MaybeIndexed:
        # ``key`` is ignored by a layer that is not randomized, as Equinox's layers do, so that
        # a converted module works in ``eqx.nn.Sequential`` (which passes every layer a key)
        if (self.spec.random is not None and key is None
                and self.spec.random.needs_key(self.kwargs, self.training)):
            raise TypeError(f"{self.spec.name} is randomized: call it with key=jax.random.key(...)")
        params = self.spec.call_params
        if len(args) > len(params):
            raise TypeError(f"{self.spec.name} takes {self.spec.call_text()}, got "
                            f"{1 + len(args)} positional arguments")
        call_args: dict[str, Any] = {name: default for name, default in params}
        call_args.update(zip((name for name, _ in params), args))
        unknown = set(kwargs) - set(call_args)
        if unknown:
            raise TypeError(f"{self.spec.name} takes {self.spec.call_text()}, got unexpected "
                            f"keyword arguments {sorted(unknown)}")
        call_args.update(kwargs)
        missing = [name for name, value in call_args.items() if value is REQUIRED]
        if missing:
            raise TypeError(f"{self.spec.name} takes {self.spec.call_text()}: missing {missing}")
        return self.spec.apply(input, self.kwargs, call_args, channels_last=self.channels_last,
                               key=key if self.spec.random is not None else None,
                               training=self.training)

    @property
    def op(self) -> Callable[..., Any]:
        """The jaxpool function that computes it."""
        return self.spec.op

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"from_torch({self.spec.name}({args}), channels_last={self.channels_last})"


def _find_spec(module: Any) -> LayerSpec:
    cls = type(module)
    for base in cls.__mro__:
        if base.__module__.startswith("torch.nn.") and base.__name__ in LAYERS and LAYERS[base.__name__].in_torch:
            if base is not cls and getattr(cls, "forward", None) is not getattr(base, "forward", None):
                raise TypeError(
                    f"from_torch: {cls.__module__}.{cls.__qualname__} overrides forward() of "
                    f"torch.nn.{base.__name__}, so it cannot be converted faithfully")
            return LAYERS[base.__name__]
    supported = ", ".join(sorted(name for name, spec in LAYERS.items() if spec.in_torch))
    raise TypeError(
        f"from_torch: cannot convert {cls.__module__}.{cls.__qualname__}; supported torch.nn "
        f"pooling modules are {supported}")


def _plain(value: Any) -> Any:
    """Torch stores sizes as ints/tuples/lists; tensors (e.g. random samples) become numpy."""
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return np.asarray(value.detach().cpu().numpy())
    return value


def from_torch(module: Any, *, channels_last: bool = False) -> TorchPooling:
    """The jaxpool equivalent of a ``torch.nn`` pooling module instance.

    Supports ``MaxPool``, ``AvgPool``, ``LPPool``, ``AdaptiveAvgPool``, ``AdaptiveMaxPool`` and
    ``MaxUnpool`` (1-d/2-d/3-d) and ``FractionalMaxPool`` (2-d/3-d), carrying every argument
    (``return_indices``, ``ceil_mode``, ``count_include_pad``, ``divisor_override``, ...).
    ``channels_last=True`` makes the callable take ``(N, *spatial, C)`` instead of PyTorch's
    ``(N, C, *spatial)``.

    >>> import jax.numpy as jnp, jaxpool, torch
    >>> pool = jaxpool.from_torch(torch.nn.MaxPool2d(3, 2, 1, return_indices=True))
    >>> values, indices = pool(jnp.arange(16.0).reshape(1, 1, 4, 4))   # == torch's, as jax arrays
    >>> indices.tolist()
    [[[[5, 7], [13, 15]]]]

    Raises:
      TypeError: for any other module (naming its class), or a subclass overriding ``forward``.
    """
    if not isinstance(channels_last, bool):
        raise TypeError(f"from_torch: channels_last must be a bool, got {channels_last!r}")
    spec = _find_spec(module)
    missing = [name for name in spec.param_names if not hasattr(module, name)]
    if missing:
        raise TypeError(f"from_torch: {type(module).__name__} lacks the attributes {missing} that "
                        f"torch.nn.{spec.name} stores its arguments in")
    kwargs = spec.config({name: _plain(getattr(module, name)) for name in spec.param_names})
    return TorchPooling(spec, kwargs, channels_last, bool(getattr(module, "training", True)))
