"""PyTorch's pooling layers as ``flax.nnx`` modules: ``MaxPool2d``, ``AvgPool2d``, ... .

One ``flax.nnx.Module`` per ``torch.nn`` pooling layer, with ``torch.nn``'s name, constructor
arguments and defaults, computing exactly what the PyTorch layer computes through the matching
:mod:`jaxpool` function::

    import jaxpool.flax.nnx as jpn
    pool = jpn.MaxPool2d(3, stride=2, padding=1, return_indices=True)
    y, indices = pool(x)                     # x: (N, H, W, C)

**Layout: channels-last by default** (Flax's convention): the keyword-only argument
``channels_last=True`` takes ``(N, *spatial, C)`` (or unbatched ``(*spatial, C)``);
``channels_last=False`` takes PyTorch's ``(N, C, *spatial)``.  Indices keep PyTorch's per-plane
meaning in both layouts.  ``MaxUnpool*`` layers are called like torch's:
``layer(input, indices, output_size=None)``.

The layers hold no state; their arguments are static attributes, so they work under
``nnx.jit``.  Randomized layers take ``rngs=nnx.Rngs(pooling=...)`` (stream ``'pooling'``,
changeable with ``rng_collection``) at construction or call time and, when the op has a training
mode, ``deterministic`` (honouring ``model.eval()``/``nnx.view``) like ``nnx.Dropout``.

The classes below the generated-source line are written by ``scripts/gen_layers.py`` from
:data:`jaxpool.layer_specs.LAYERS`.  Needs the ``flax`` extra: ``pip install 'jaxpool[flax]'``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax

from jaxpool import _args
from jaxpool._typing import ArrayLike, MaybeIndexed, OutputSize, Ratio, Size
from jaxpool.layer_specs import LAYERS, RNG_STREAM, ClassSignature, LayerSpec

try:
    from flax import nnx
except ImportError as error:
    raise ImportError("jaxpool.flax.nnx needs 'flax', which is not installed; install the "
                      "extra with `pip install 'jaxpool[flax]'`") from error

CHANNELS_LAST_DEFAULT = True

_HEAD_ALL = ["Layer", "TrainingLayer", "CHANNELS_LAST_DEFAULT"]


def _first(*values: Any, what: str) -> Any:
    for value in values:
        if value is not None:
            return value
    raise ValueError(what)


def _key(rngs: Any, collection: str, layer: str) -> jax.Array:
    if isinstance(rngs, nnx.Rngs):
        return rngs[collection]()
    if isinstance(rngs, nnx.RngStream):
        return rngs()
    if isinstance(rngs, jax.Array):
        return rngs
    raise TypeError(
        f"{layer}: rngs must be an nnx.Rngs, an nnx.RngStream or a key, got {type(rngs)}")


class Layer(nnx.Module):
    """Base of the layers below: the constructor's arguments become static attributes, and a
    call runs ``_spec``'s op on them.

    A randomized layer keeps a fork of its ``rngs`` stream (or none) and draws a key from the
    call's ``rngs`` or that stream when the op needs one.
    """

    _spec: ClassVar[LayerSpec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):  # inspect.signature(cls): the constructor, not the metaclass's
            setattr(cls, "__signature__", ClassSignature(cls.__init__))

    def _setup(self, config: Mapping[str, Any], *, channels_last: bool,
               deterministic: bool | None = False, rng_collection: str = RNG_STREAM,
               rngs: Any = None) -> None:
        spec = self._spec
        for name, value in spec.config(config).items():
            setattr(self, name, value)
        self.channels_last = channels_last
        if spec.random is None:
            return
        self.rng_collection = rng_collection
        if spec.random.training_arg is not None:
            if deterministic is not None:
                _args.flag(deterministic, "deterministic", spec.name)
            self.deterministic = deterministic
        if isinstance(rngs, nnx.Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, nnx.RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = nnx.data(None)
        else:
            raise TypeError(f"{spec.name}: rngs must be an nnx.Rngs, an nnx.RngStream or None, "
                            f"got {type(rngs)}")

    def _pool(self, input: ArrayLike, call_args: Mapping[str, Any] | None = None,
              deterministic: bool | None = None, rngs: Any = None) -> Any:
        spec = self._spec
        config = spec.config({name: getattr(self, name) for name in spec.param_names})
        training, key = True, None
        random = spec.random
        if random is not None and random.training_arg is not None:
            training = not _args.flag(_first(deterministic, getattr(self, "deterministic"), what=(
                f"{spec.name}: no `deterministic` given; pass it to the constructor or the call, "
                f"or use model.eval()/model.train()")), "deterministic", spec.name)
        if random is not None and random.needs_key(config, training):
            stream = getattr(self, "rng_collection")
            source = _first(rngs, getattr(self, "rngs"), what=(
                f"{spec.name} needs a key: pass rngs=nnx.Rngs({stream}=...) to the constructor "
                f"or the call"))
            key = _key(source, getattr(self, "rng_collection"), spec.name)
        return spec.apply(input, config, call_args, channels_last=self.channels_last, key=key,
                          training=training)


class TrainingLayer(Layer):
    """Base of the randomized layers with a training mode: ``model.eval()``/``model.train()``
    (``nnx.view``) set their ``deterministic`` attribute, as ``nnx.Dropout``'s."""

    def set_view(self, deterministic: bool | None = None) -> None:
        """Used by ``nnx.view``/``model.eval()``: set ``deterministic``."""
        if deterministic is not None:
            self.deterministic = _args.flag(deterministic, "deterministic", self._spec.name)



# ---- Generated by scripts/gen_layers.py from jaxpool/layer_specs.py: do not edit below this line. ----

__all__ = [
    *_HEAD_ALL,
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
    "StochasticPool1d",
    "StochasticPool2d",
    "StochasticPool3d",
]


class MaxPool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxPool1d`` computes.

    Calls :func:`jaxpool.max_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool1d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            return_indices=return_indices, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.MaxPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class MaxPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxPool2d`` computes.

    Calls :func:`jaxpool.max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            return_indices=return_indices, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.MaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class MaxPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxPool3d`` computes.

    Calls :func:`jaxpool.max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation,
            return_indices=return_indices, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.MaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AvgPool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AvgPool1d`` computes.

    Calls :func:`jaxpool.avg_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool1d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
            count_include_pad=count_include_pad
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AvgPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AvgPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AvgPool2d`` computes.

    Calls :func:`jaxpool.avg_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      divisor_override: divide every window's sum by this instead. (default ``None``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True,
            divisor_override: int | None = None, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
            count_include_pad=count_include_pad, divisor_override=divisor_override
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AvgPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AvgPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AvgPool3d`` computes.

    Calls :func:`jaxpool.avg_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      divisor_override: divide every window's sum by this instead. (default ``None``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True,
            divisor_override: int | None = None, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode,
            count_include_pad=count_include_pad, divisor_override=divisor_override
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AvgPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class LPPool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.LPPool1d`` computes.

    Calls :func:`jaxpool.lp_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool1d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool1d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.LPPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class LPPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.LPPool2d`` computes.

    Calls :func:`jaxpool.lp_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool2d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool2d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.LPPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class LPPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.LPPool3d`` computes.

    Calls :func:`jaxpool.lp_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool3d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool3d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(
            norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode
        )
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.LPPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class MaxUnpool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxUnpool1d`` computes.

    Calls :func:`jaxpool.max_unpool1d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool1d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(config, channels_last=channels_last)

    def __call__(
            self, input: ArrayLike, indices: ArrayLike, output_size: Sequence[int] | None = None
    ) -> jax.Array:
        """Apply ``torch.nn.MaxUnpool1d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


class MaxUnpool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxUnpool2d`` computes.

    Calls :func:`jaxpool.max_unpool2d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool2d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(config, channels_last=channels_last)

    def __call__(
            self, input: ArrayLike, indices: ArrayLike, output_size: Sequence[int] | None = None
    ) -> jax.Array:
        """Apply ``torch.nn.MaxUnpool2d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


class MaxUnpool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.MaxUnpool3d`` computes.

    Calls :func:`jaxpool.max_unpool3d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool3d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(config, channels_last=channels_last)

    def __call__(
            self, input: ArrayLike, indices: ArrayLike, output_size: Sequence[int] | None = None
    ) -> jax.Array:
        """Apply ``torch.nn.MaxUnpool3d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


class AdaptiveAvgPool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveAvgPool1d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool1d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool1d"]

    def __init__(
            self, output_size: OutputSize, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AdaptiveAvgPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AdaptiveAvgPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveAvgPool2d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool2d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool2d"]

    def __init__(
            self, output_size: OutputSize, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AdaptiveAvgPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AdaptiveAvgPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveAvgPool3d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool3d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool3d"]

    def __init__(
            self, output_size: OutputSize, *, channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> jax.Array:
        """Apply ``torch.nn.AdaptiveAvgPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AdaptiveMaxPool1d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveMaxPool1d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool1d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool1d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size, return_indices=return_indices)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.AdaptiveMaxPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AdaptiveMaxPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveMaxPool2d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool2d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool2d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size, return_indices=return_indices)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.AdaptiveMaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class AdaptiveMaxPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.AdaptiveMaxPool3d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool3d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool3d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT
    ) -> None:
        config = dict(output_size=output_size, return_indices=return_indices)
        self._setup(config, channels_last=channels_last)

    def __call__(self, input: ArrayLike) -> MaybeIndexed:
        """Apply ``torch.nn.AdaptiveMaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


class FractionalMaxPool2d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.FractionalMaxPool2d`` computes.

    Calls :func:`jaxpool.fractional_max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.FractionalMaxPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      output_size: target spatial size; ``None`` entries keep the input's size. (default ``None``)
      output_ratio: output size as a fraction of the input. (default ``None``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      _random_samples: fixed samples in [0, 1) instead of drawing them (as in PyTorch). (default
        ``None``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.

    Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
    key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
    precedence over the constructor's.
    """

    _spec = LAYERS["FractionalMaxPool2d"]

    def __init__(
            self, kernel_size: Size, output_size: OutputSize | None = None,
            output_ratio: Ratio | None = None, return_indices: bool = False,
            _random_samples: ArrayLike | None = None, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT, rng_collection: str = RNG_STREAM,
            rngs: nnx.Rngs | nnx.RngStream | None = None
    ) -> None:
        config = dict(
            kernel_size=kernel_size, output_size=output_size, output_ratio=output_ratio,
            return_indices=return_indices, _random_samples=_random_samples
        )
        self._setup(config, channels_last=channels_last, rng_collection=rng_collection, rngs=rngs)

    def __call__(
            self, input: ArrayLike, *, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> MaybeIndexed:
        """Apply ``torch.nn.FractionalMaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input, rngs=rngs)


class FractionalMaxPool3d(Layer):
    """Flax NNX layer computing exactly what ``torch.nn.FractionalMaxPool3d`` computes.

    Calls :func:`jaxpool.fractional_max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.FractionalMaxPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      output_size: target spatial size; ``None`` entries keep the input's size. (default ``None``)
      output_ratio: output size as a fraction of the input. (default ``None``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      _random_samples: fixed samples in [0, 1) instead of drawing them (as in PyTorch). (default
        ``None``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.

    Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
    key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
    precedence over the constructor's.
    """

    _spec = LAYERS["FractionalMaxPool3d"]

    def __init__(
            self, kernel_size: Size, output_size: OutputSize | None = None,
            output_ratio: Ratio | None = None, return_indices: bool = False,
            _random_samples: ArrayLike | None = None, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT, rng_collection: str = RNG_STREAM,
            rngs: nnx.Rngs | nnx.RngStream | None = None
    ) -> None:
        config = dict(
            kernel_size=kernel_size, output_size=output_size, output_ratio=output_ratio,
            return_indices=return_indices, _random_samples=_random_samples
        )
        self._setup(config, channels_last=channels_last, rng_collection=rng_collection, rngs=rngs)

    def __call__(
            self, input: ArrayLike, *, rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> MaybeIndexed:
        """Apply ``torch.nn.FractionalMaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input, rngs=rngs)


class StochasticPool1d(TrainingLayer):
    """Flax NNX layer for :func:`jaxpool.stochastic_pool1d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool1d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.

    Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
    key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
    precedence over the constructor's.  With ``deterministic=True`` (constructor, ``model.eval()``,
    or call argument which takes precedence, as ``nnx.Dropout``) the op runs in its non-training
    mode and no key is drawn.
    """

    _spec = LAYERS["StochasticPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT, deterministic: bool | None = False,
            rng_collection: str = RNG_STREAM, rngs: nnx.Rngs | nnx.RngStream | None = None
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(
            config, channels_last=channels_last, deterministic=deterministic,
            rng_collection=rng_collection, rngs=rngs
        )

    def __call__(
            self, input: ArrayLike, *, deterministic: bool | None = None,
            rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> jax.Array:
        """Apply :func:`jaxpool.stochastic_pool1d`'s pooling: ``layer(input)``."""
        return self._pool(input, deterministic=deterministic, rngs=rngs)


class StochasticPool2d(TrainingLayer):
    """Flax NNX layer for :func:`jaxpool.stochastic_pool2d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool2d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.

    Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
    key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
    precedence over the constructor's.  With ``deterministic=True`` (constructor, ``model.eval()``,
    or call argument which takes precedence, as ``nnx.Dropout``) the op runs in its non-training
    mode and no key is drawn.
    """

    _spec = LAYERS["StochasticPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT, deterministic: bool | None = False,
            rng_collection: str = RNG_STREAM, rngs: nnx.Rngs | nnx.RngStream | None = None
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(
            config, channels_last=channels_last, deterministic=deterministic,
            rng_collection=rng_collection, rngs=rngs
        )

    def __call__(
            self, input: ArrayLike, *, deterministic: bool | None = None,
            rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> jax.Array:
        """Apply :func:`jaxpool.stochastic_pool2d`'s pooling: ``layer(input)``."""
        return self._pool(input, deterministic=deterministic, rngs=rngs)


class StochasticPool3d(TrainingLayer):
    """Flax NNX layer for :func:`jaxpool.stochastic_pool3d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool3d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      channels_last: keyword-only, default ``True`` (channels-last, Flax's convention).  ``True``:
        inputs are ``(N, *spatial, C)`` or unbatched ``(*spatial, C)``; ``False``: PyTorch's
        ``(N, C, *spatial)`` or ``(C, *spatial)``.  Outputs use the same layout; indices keep
        PyTorch's per-plane meaning in both.

    Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
    key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
    precedence over the constructor's.  With ``deterministic=True`` (constructor, ``model.eval()``,
    or call argument which takes precedence, as ``nnx.Dropout``) the op runs in its non-training
    mode and no key is drawn.
    """

    _spec = LAYERS["StochasticPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            channels_last: bool = CHANNELS_LAST_DEFAULT, deterministic: bool | None = False,
            rng_collection: str = RNG_STREAM, rngs: nnx.Rngs | nnx.RngStream | None = None
    ) -> None:
        config = dict(kernel_size=kernel_size, stride=stride, padding=padding)
        self._setup(
            config, channels_last=channels_last, deterministic=deterministic,
            rng_collection=rng_collection, rngs=rngs
        )

    def __call__(
            self, input: ArrayLike, *, deterministic: bool | None = None,
            rngs: nnx.Rngs | nnx.RngStream | jax.Array | None = None
    ) -> jax.Array:
        """Apply :func:`jaxpool.stochastic_pool3d`'s pooling: ``layer(input)``."""
        return self._pool(input, deterministic=deterministic, rngs=rngs)
