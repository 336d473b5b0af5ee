"""PyTorch's pooling layers as Keras 3 layers (JAX backend): ``MaxPool2d``, ``AvgPool2d``, ... .

One ``keras.layers.Layer`` per ``torch.nn`` pooling layer, with ``torch.nn``'s name, constructor
arguments and defaults, computing exactly what the PyTorch layer computes through the matching
:mod:`jaxpool` function (Keras's own adaptive pools do not: they return NaN for 14 -> 7)::

    import keras
    import jaxpool.keras as jpk

    model = keras.Sequential([keras.Input((28, 28, 3)), jpk.MaxPool2d(3, stride=2, padding=1),
                              jpk.AdaptiveAvgPool2d(7), keras.layers.Flatten(), keras.layers.Dense(10)])

**Layout**: Keras's ``data_format``, ``"channels_last"`` (``(N, *spatial, C)``) or
``"channels_first"`` (PyTorch's ``(N, C, *spatial)``), default
``keras.config.image_data_format()``.  Indices keep PyTorch's per-plane meaning in both, so they
feed ``MaxUnpool*`` (called like torch's: ``layer(input, indices, output_size=None)``) unchanged.

Every layer has ``get_config``/``from_config`` and is registered for serialization (package
``"jaxpool"``), so models using them round-trip ``model.save``/``keras.models.load_model``.
Randomized layers draw their keys from a ``keras.random.SeedGenerator`` (constructor argument
``seed``); ``StochasticPool*`` samples only when called with ``training=True`` (as in ``fit``),
like ``keras.layers.Dropout``.

Importing this module selects the JAX backend when ``KERAS_BACKEND`` is unset; another backend is
an ``ImportError`` (the layers run jaxpool's JAX functions).  The classes below the
generated-source line are written by ``scripts/gen_layers.py`` from
:data:`jaxpool.layer_specs.LAYERS`.  Needs the ``keras`` extra: ``pip install 'jaxpool[keras]'``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from jaxpool._typing import ArrayLike, MaybeIndexed, OutputSize, Ratio, Size
from jaxpool.layer_specs import LAYERS, LayerSpec

os.environ.setdefault("KERAS_BACKEND", "jax")  # read once, when keras is first imported
try:
    import keras
except ImportError as error:
    raise ImportError("jaxpool.keras needs 'keras', which is not installed; install the extra "
                      "with `pip install 'jaxpool[keras]'`") from error
if keras.backend.backend() != "jax":
    raise ImportError(f"jaxpool.keras needs Keras's JAX backend, but Keras runs on "
                      f"{keras.backend.backend()!r}: set KERAS_BACKEND=jax before importing keras")

_HEAD_ALL = ["Layer"]


class Layer(keras.layers.Layer):
    """Base of the layers below: keeps the constructor's arguments (``pool_config``), runs
    ``_spec``'s op on them, and serializes them in ``get_config``."""

    _spec: ClassVar[LayerSpec]

    def _setup(self, config: Mapping[str, Any], data_format: str | None, seed: int | None = None) -> None:
        spec = self._spec
        config = dict(config)
        samples = config.get("_random_samples")
        if isinstance(samples, (list, tuple)):  # from get_config: JSON lists
            config["_random_samples"] = np.asarray(samples, self.compute_dtype)
        self.pool_config = spec.config(config)
        if data_format is None:
            data_format = keras.config.image_data_format()
        if data_format not in ("channels_first", "channels_last"):
            raise ValueError(f"{spec.name}: data_format must be 'channels_first' or 'channels_last', "
                             f"got {data_format!r}")
        self.data_format = data_format
        self.seed = seed
        if spec.random is not None:
            self.seed_generator = keras.random.SeedGenerator(seed)

    def _pool(self, input: Any, call_args: Mapping[str, Any] | None = None,
              training: bool | None = None) -> Any:
        spec = self._spec
        random = spec.random
        sampling = True
        if random is not None and random.training_arg is not None:
            sampling = bool(training)  # Keras: None (predict, plain calls) is not training
        key = None
        if random is not None and random.needs_key(self.pool_config, sampling):
            key = jax.random.wrap_key_data(jnp.asarray(self.seed_generator.next(), jnp.uint32))
        return spec.apply(input, self.pool_config, call_args,
                          channels_last=self.data_format == "channels_last", key=key, training=sampling)

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self.pool_config, "data_format": self.data_format}
        for name, value in self.pool_config.items():
            if isinstance(value, tuple):
                config[name] = list(value)
            elif hasattr(value, "shape"):  # _random_samples
                config[name] = np.asarray(value).tolist()
        if self._spec.random is not None:
            config["seed"] = self.seed
        return config


# Names the generated classes' annotations use (strings under ``from __future__ import annotations``).
_ANNOTATION_NAMES = (Sequence, ArrayLike, MaybeIndexed, OutputSize, Ratio, Size, LAYERS)

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


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxPool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxPool1d`` computes.

    Calls :func:`jaxpool.max_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool1d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, return_indices=return_indices, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.MaxPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxPool2d`` computes.

    Calls :func:`jaxpool.max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, return_indices=return_indices, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.MaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxPool3d`` computes.

    Calls :func:`jaxpool.max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.MaxPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      dilation: distance between window taps. (default ``1``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            dilation: Size = 1, return_indices: bool = False, ceil_mode: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, return_indices=return_indices, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.MaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AvgPool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AvgPool1d`` computes.

    Calls :func:`jaxpool.avg_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool1d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AvgPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AvgPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AvgPool2d`` computes.

    Calls :func:`jaxpool.avg_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      divisor_override: divide every window's sum by this instead. (default ``None``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True,
            divisor_override: int | None = None, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AvgPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AvgPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AvgPool3d`` computes.

    Calls :func:`jaxpool.avg_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AvgPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      count_include_pad: count padding cells in the average's divisor. (default ``True``)
      divisor_override: divide every window's sum by this instead. (default ``None``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AvgPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0,
            ceil_mode: bool = False, count_include_pad: bool = True,
            divisor_override: int | None = None, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad, divisor_override=divisor_override),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AvgPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class LPPool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.LPPool1d`` computes.

    Calls :func:`jaxpool.lp_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool1d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool1d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.LPPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class LPPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.LPPool2d`` computes.

    Calls :func:`jaxpool.lp_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool2d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool2d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.LPPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class LPPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.LPPool3d`` computes.

    Calls :func:`jaxpool.lp_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.LPPool3d``'s; call it as ``layer(input)``.

    Args:
      norm_type: the power ``p`` of the power-average. (required)
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      ceil_mode: round the output size up instead of down. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["LPPool3d"]

    def __init__(
            self, norm_type: float, kernel_size: Size, stride: Size | None = None,
            ceil_mode: bool = False, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(norm_type=norm_type, kernel_size=kernel_size, stride=stride, ceil_mode=ceil_mode),
            data_format
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.LPPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxUnpool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxUnpool1d`` computes.

    Calls :func:`jaxpool.max_unpool1d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool1d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format)

    def call(self, input: Any, indices: ArrayLike, output_size: Sequence[int] | None = None) -> Any:
        """Apply ``torch.nn.MaxUnpool1d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxUnpool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxUnpool2d`` computes.

    Calls :func:`jaxpool.max_unpool2d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool2d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format)

    def call(self, input: Any, indices: ArrayLike, output_size: Sequence[int] | None = None) -> Any:
        """Apply ``torch.nn.MaxUnpool2d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


@keras.saving.register_keras_serializable(package="jaxpool")
class MaxUnpool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.MaxUnpool3d`` computes.

    Calls :func:`jaxpool.max_unpool3d`.  Constructor arguments and defaults are
    ``torch.nn.MaxUnpool3d``'s; call it as ``layer(input, indices, output_size=None)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["MaxUnpool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format)

    def call(self, input: Any, indices: ArrayLike, output_size: Sequence[int] | None = None) -> Any:
        """Apply ``torch.nn.MaxUnpool3d``'s pooling: ``layer(input, indices, output_size=None)``."""
        return self._pool(input, {"indices": indices, "output_size": output_size})


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveAvgPool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveAvgPool1d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool1d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool1d"]

    def __init__(
            self, output_size: OutputSize, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveAvgPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveAvgPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveAvgPool2d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool2d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool2d"]

    def __init__(
            self, output_size: OutputSize, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveAvgPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveAvgPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveAvgPool3d`` computes.

    Calls :func:`jaxpool.adaptive_avg_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveAvgPool3d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveAvgPool3d"]

    def __init__(
            self, output_size: OutputSize, *, data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveAvgPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveMaxPool1d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveMaxPool1d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool1d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool1d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool1d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size, return_indices=return_indices), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveMaxPool1d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveMaxPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveMaxPool2d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool2d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool2d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size, return_indices=return_indices), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveMaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class AdaptiveMaxPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.AdaptiveMaxPool3d`` computes.

    Calls :func:`jaxpool.adaptive_max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.AdaptiveMaxPool3d``'s; call it as ``layer(input)``.

    Args:
      output_size: target spatial size; ``None`` entries keep the input's size. (required)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.
    """

    _spec = LAYERS["AdaptiveMaxPool3d"]

    def __init__(
            self, output_size: OutputSize, return_indices: bool = False, *,
            data_format: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(dict(output_size=output_size, return_indices=return_indices), data_format)

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.AdaptiveMaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class FractionalMaxPool2d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.FractionalMaxPool2d`` computes.

    Calls :func:`jaxpool.fractional_max_pool2d`.  Constructor arguments and defaults are
    ``torch.nn.FractionalMaxPool2d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      output_size: target spatial size; ``None`` entries keep the input's size. (default ``None``)
      output_ratio: output size as a fraction of the input. (default ``None``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      _random_samples: fixed samples in [0, 1) instead of drawing them (as in PyTorch). (default
        ``None``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.

    Randomness: keys come from the layer's ``keras.random.SeedGenerator`` (constructor argument
    ``seed``).
    """

    _spec = LAYERS["FractionalMaxPool2d"]

    def __init__(
            self, kernel_size: Size, output_size: OutputSize | None = None,
            output_ratio: Ratio | None = None, return_indices: bool = False,
            _random_samples: ArrayLike | None = None, *, data_format: str | None = None,
            seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, output_size=output_size, output_ratio=output_ratio, return_indices=return_indices, _random_samples=_random_samples),
            data_format, seed=seed
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.FractionalMaxPool2d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class FractionalMaxPool3d(Layer):
    """Keras 3 layer computing exactly what ``torch.nn.FractionalMaxPool3d`` computes.

    Calls :func:`jaxpool.fractional_max_pool3d`.  Constructor arguments and defaults are
    ``torch.nn.FractionalMaxPool3d``'s; call it as ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      output_size: target spatial size; ``None`` entries keep the input's size. (default ``None``)
      output_ratio: output size as a fraction of the input. (default ``None``)
      return_indices: also return PyTorch's flat in-plane indices of the maxima. (default ``False``)
      _random_samples: fixed samples in [0, 1) instead of drawing them (as in PyTorch). (default
        ``None``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.

    Randomness: keys come from the layer's ``keras.random.SeedGenerator`` (constructor argument
    ``seed``).
    """

    _spec = LAYERS["FractionalMaxPool3d"]

    def __init__(
            self, kernel_size: Size, output_size: OutputSize | None = None,
            output_ratio: Ratio | None = None, return_indices: bool = False,
            _random_samples: ArrayLike | None = None, *, data_format: str | None = None,
            seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, output_size=output_size, output_ratio=output_ratio, return_indices=return_indices, _random_samples=_random_samples),
            data_format, seed=seed
        )

    def call(self, input: Any) -> Any:
        """Apply ``torch.nn.FractionalMaxPool3d``'s pooling: ``layer(input)``."""
        return self._pool(input)


@keras.saving.register_keras_serializable(package="jaxpool")
class StochasticPool1d(Layer):
    """Keras 3 layer for :func:`jaxpool.stochastic_pool1d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool1d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.

    Randomness: keys come from the layer's ``keras.random.SeedGenerator`` (constructor argument
    ``seed``).  Keras's ``training`` call argument: only ``training=True`` (as in ``fit``) samples;
    ``False`` or ``None`` (``predict``, plain calls) runs the non-training mode.
    """

    _spec = LAYERS["StochasticPool1d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format, seed=seed
        )

    def call(self, input: Any, training: bool | None = None) -> Any:
        """Apply :func:`jaxpool.stochastic_pool1d`'s pooling: ``layer(input)``."""
        return self._pool(input, training=training)


@keras.saving.register_keras_serializable(package="jaxpool")
class StochasticPool2d(Layer):
    """Keras 3 layer for :func:`jaxpool.stochastic_pool2d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool2d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.

    Randomness: keys come from the layer's ``keras.random.SeedGenerator`` (constructor argument
    ``seed``).  Keras's ``training`` call argument: only ``training=True`` (as in ``fit``) samples;
    ``False`` or ``None`` (``predict``, plain calls) runs the non-training mode.
    """

    _spec = LAYERS["StochasticPool2d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format, seed=seed
        )

    def call(self, input: Any, training: bool | None = None) -> Any:
        """Apply :func:`jaxpool.stochastic_pool2d`'s pooling: ``layer(input)``."""
        return self._pool(input, training=training)


@keras.saving.register_keras_serializable(package="jaxpool")
class StochasticPool3d(Layer):
    """Keras 3 layer for :func:`jaxpool.stochastic_pool3d` (Zeiler & Fergus, 2013; ``torch.nn`` has no such module).

    Constructor arguments and defaults are those of :func:`jaxpool.stochastic_pool3d`; call it as
    ``layer(input)``.

    Args:
      kernel_size: window size: an int, or one int per spatial axis. (required)
      stride: window step; ``None`` means ``kernel_size``. (default ``None``)
      padding: implicit padding on both sides of each spatial axis. (default ``0``)
      data_format: keyword-only, ``"channels_last"`` (``(N, *spatial, C)``) or ``"channels_first"``
        (PyTorch's ``(N, C, *spatial)``); default ``keras.config.image_data_format()``.  Outputs use
        the same layout; indices keep PyTorch's per-plane meaning in both.

    Randomness: keys come from the layer's ``keras.random.SeedGenerator`` (constructor argument
    ``seed``).  Keras's ``training`` call argument: only ``training=True`` (as in ``fit``) samples;
    ``False`` or ``None`` (``predict``, plain calls) runs the non-training mode.
    """

    _spec = LAYERS["StochasticPool3d"]

    def __init__(
            self, kernel_size: Size, stride: Size | None = None, padding: Size = 0, *,
            data_format: str | None = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._setup(
            dict(kernel_size=kernel_size, stride=stride, padding=padding), data_format, seed=seed
        )

    def call(self, input: Any, training: bool | None = None) -> Any:
        """Apply :func:`jaxpool.stochastic_pool3d`'s pooling: ``layer(input)``."""
        return self._pool(input, training=training)
