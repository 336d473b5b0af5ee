"""The op registry: every pooling operator family and its layer, written once, as data.

:data:`FAMILIES` is the single table.  Each :class:`Family` names the generic N-d function
(``jaxpool.max_pool.max_pool``), the spatial dimensions it exists for, its arguments in
``torch.nn.functional``'s order with their defaults and types, whether it is randomized, and its
``torch.nn`` layer (constructor arguments in ``torch.nn``'s order, call-time arguments).  From it:

* :data:`OPS`: every per-dimension operator (``max_pool2d``, ...), from which
  ``scripts/gen_layers.py`` writes :mod:`jaxpool.functional` (typed, one function per dimension);
* :data:`LAYERS`: every layer (``MaxPool2d``, ...), from which the same script writes the layer
  modules (:mod:`jaxpool.flax.linen`, :mod:`jaxpool.flax.nnx`, :mod:`jaxpool.haiku`,
  :mod:`jaxpool.equinox`, :mod:`jaxpool.keras`) as checked-in source, and from which
  :func:`jaxpool.from_torch` recognises ``torch.nn`` modules.

Adding an operator is one :class:`Family` entry, then ``python scripts/gen_layers.py``; a test
regenerates the files and fails on any difference.  The tests also check every layer's
arguments against ``inspect.signature`` of its ``torch.nn`` class.

A :class:`LayerSpec` says, for one layer:

* ``params``: the constructor arguments, in ``torch.nn``'s order, with ``torch.nn``'s defaults
  (``REQUIRED`` for none);
* ``call_params``: the arguments a layer takes at call time after ``input`` (``MaxUnpool`` takes
  ``indices`` and ``output_size=None``, as ``torch.nn.MaxUnpool2d.forward`` does);
* ``op``: the :mod:`jaxpool.functional` operator that computes it, called as
  ``op(input, **call_args, **constructor_args, channels_last=...)`` (plus the random keywords);
* ``random``: for randomized layers only, a :class:`RandomSpec` telling the frameworks how to
  hand the op a PRNG key (linen ``make_rng``, nnx ``Rngs``, haiku ``hk.next_rng_key()``, all
  from the ``'pooling'`` stream; Equinox's ``key=``; Keras's ``SeedGenerator``) and which op
  keyword turns the randomness off.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["REQUIRED", "Param", "RandomSpec", "Family", "OpSpec", "LayerSpec", "ClassSignature",
           "FAMILIES", "OPS", "LAYERS", "PARAM_DOCS", "RNG_STREAM", "layer_doc"]

REQUIRED = inspect.Parameter.empty
"""Marks an argument without a default (e.g. ``kernel_size``)."""

RNG_STREAM = "pooling"
"""The rng stream/collection randomized layers draw their key from in every framework."""


@dataclasses.dataclass(frozen=True)
class Param:
    """One argument of an operator.

    Attributes:
      name: the argument's name (``torch.nn.functional``'s).
      default: its default, or :data:`REQUIRED`.
      type: its annotation as source text (names from :mod:`jaxpool._typing`).
      dims: the spatial dimensions that have it (``divisor_override``: not ``avg_pool1d``).
    """

    name: str
    default: Any = REQUIRED
    type: str = "Any"
    dims: tuple[int, ...] = (1, 2, 3)


@dataclasses.dataclass(frozen=True)
class RandomSpec:
    """How a randomized op gets its key and how it is switched off.

    Attributes:
      key_arg: the op's keyword for the PRNG key.
      training_arg: the op's keyword that switches randomness off when False (e.g.
        ``stochastic_pool2d(..., training=...)``), or ``None`` if the op is random in every
        mode (then the layers have no deterministic/training flag, as in PyTorch).
      key_optional_when: constructor arguments that, when not ``None``, make the op need no key
        (``FractionalMaxPool``'s ``_random_samples``); the layer then draws none.
    """

    key_arg: str = "key"
    training_arg: str | None = None
    key_optional_when: tuple[str, ...] = ()

    def needs_key(self, config: Mapping[str, Any], training: bool) -> bool:
        if self.training_arg is not None and not training:
            return False
        return not any(config.get(name) is not None for name in self.key_optional_when)

    def op_kwargs(self, key: Any, training: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {self.key_arg: key}
        if self.training_arg is not None:
            kwargs[self.training_arg] = training
        return kwargs


@dataclasses.dataclass(frozen=True)
class Family:
    """One operator family, e.g. max pooling in 1-d, 2-d and 3-d (see the module docs).

    Attributes:
      name: the generic function's name; the operators are ``f"{name}{n}d"``.
      module: the module defining the generic function ``name(input, ..., *, ndim, ...)``.
      dims: the spatial dimensions the family exists for.
      params: the arguments after ``input``, in ``torch.nn.functional``'s order.
      keywords: keyword-only arguments before ``channels_last`` (``key``, ``training``).
      layer: the ``torch.nn`` class prefix (``"MaxPool"`` -> ``MaxPool2d``).
      layer_params: the constructor's arguments (names from ``params``), ``torch.nn``'s order.
      layer_call: the layer's call-time arguments after ``input`` (names from ``params``).
      random: for randomized families, how the layers hand the op a key.
      in_torch: False for jaxpool's own operators (stochastic pooling).
      windows: how its windows are made: ``"fixed"`` (kernel, stride, padding), ``"adaptive"``
        (input and output sizes), ``"fractional"`` (pseudo-random), or ``"unpool"`` (the fixed
        windows of the max pool whose indices it takes); for the parity sweep and ``explain``.
    """

    name: str
    module: str
    dims: tuple[int, ...]
    params: tuple[Param, ...]
    keywords: tuple[Param, ...] = ()
    layer: str = ""
    layer_params: tuple[str, ...] = ()
    layer_call: tuple[str, ...] = ()
    random: RandomSpec | None = None
    in_torch: bool = True
    windows: str = "fixed"

    @property
    def generic(self) -> Callable[..., Any]:
        """The generic N-d function (imported on first use)."""
        fn: Callable[..., Any] = getattr(importlib.import_module(self.module), self.name)
        return fn

    @property
    def returns_indices(self) -> bool:
        return any(p.name == "return_indices" for p in self.params)


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One per-dimension operator of :mod:`jaxpool.functional` (``max_pool2d``)."""

    family: Family
    ndim: int

    @property
    def name(self) -> str:
        return f"{self.family.name}{self.ndim}d"

    @property
    def params(self) -> tuple[Param, ...]:
        return tuple(p for p in self.family.params if self.ndim in p.dims)

    @property
    def fn(self) -> Callable[..., Any]:
        """The :mod:`jaxpool.functional` function (imported on first use)."""
        fn: Callable[..., Any] = getattr(importlib.import_module("jaxpool.functional"), self.name)
        return fn


_SIZE = "Size"
_OPTIONAL_SIZE = "Size | None"
_K = Param("kernel_size", REQUIRED, _SIZE)
_STRIDE = Param("stride", None, _OPTIONAL_SIZE)
_PADDING = Param("padding", 0, _SIZE)
_CEIL = Param("ceil_mode", False, "bool")
_INDICES = Param("return_indices", False, "bool")
_KEY = Param("key", None, "jax.Array | None")

FAMILIES: tuple[Family, ...] = (
    Family("max_pool", "jaxpool.max_pool", (1, 2, 3),
           (_K, _STRIDE, _PADDING, Param("dilation", 1, _SIZE), _CEIL, _INDICES),
           layer="MaxPool",
           layer_params=("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode")),
    Family("avg_pool", "jaxpool.avg_pool", (1, 2, 3),
           (_K, _STRIDE, _PADDING, _CEIL, Param("count_include_pad", True, "bool"),
            Param("divisor_override", None, "int | None", dims=(2, 3))),  # torch's 1-d has none
           layer="AvgPool",
           layer_params=("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                         "divisor_override")),
    Family("lp_pool", "jaxpool.lp_pool", (1, 2, 3),
           (Param("norm_type", REQUIRED, "float"), _K, _STRIDE, _CEIL),
           layer="LPPool", layer_params=("norm_type", "kernel_size", "stride", "ceil_mode")),
    Family("max_unpool", "jaxpool.max_unpool", (1, 2, 3),
           (Param("indices", REQUIRED, "ArrayLike"), _K, _STRIDE, _PADDING,
            Param("output_size", None, "Sequence[int] | None")),
           layer="MaxUnpool", layer_params=("kernel_size", "stride", "padding"),
           layer_call=("indices", "output_size"), windows="unpool"),
    Family("adaptive_avg_pool", "jaxpool.adaptive", (1, 2, 3),
           (Param("output_size", REQUIRED, "OutputSize"),),
           layer="AdaptiveAvgPool", layer_params=("output_size",), windows="adaptive"),
    Family("adaptive_max_pool", "jaxpool.adaptive", (1, 2, 3),
           (Param("output_size", REQUIRED, "OutputSize"), _INDICES),
           layer="AdaptiveMaxPool", layer_params=("output_size", "return_indices"),
           windows="adaptive"),
    # Randomized: fractional pooling is random in every mode (as in PyTorch) unless given
    # ``_random_samples``; stochastic pooling (not in torch.nn) samples only when training.
    Family("fractional_max_pool", "jaxpool.fractional", (2, 3),
           (_K, Param("output_size", None, "OutputSize | None"),
            Param("output_ratio", None, "Ratio | None"), _INDICES,
            Param("_random_samples", None, "ArrayLike | None")),
           keywords=(_KEY,),
           layer="FractionalMaxPool",
           layer_params=("kernel_size", "output_size", "output_ratio", "return_indices",
                         "_random_samples"),
           random=RandomSpec(key_optional_when=("_random_samples",)), windows="fractional"),
    Family("stochastic_pool", "jaxpool.stochastic", (1, 2, 3), (_K, _STRIDE, _PADDING),
           keywords=(_KEY, Param("training", True, "bool")),
           layer="StochasticPool", layer_params=("kernel_size", "stride", "padding"),
           random=RandomSpec(training_arg="training"), in_torch=False),
)

OPS: dict[str, OpSpec] = {op.name: op for op in (OpSpec(f, n) for f in FAMILIES for n in f.dims)}
"""Every operator of :mod:`jaxpool.functional`, by name, in the registry's order."""

# Annotation (source text, :mod:`jaxpool._typing` names) and description of every layer argument.
PARAM_DOCS: dict[str, tuple[str, str]] = {
    "kernel_size": ("Size", "window size: an int, or one int per spatial axis."),
    "stride": ("Size | None", "window step; ``None`` means ``kernel_size``."),
    "padding": ("Size", "implicit padding on both sides of each spatial axis."),
    "dilation": ("Size", "distance between window taps."),
    "return_indices": ("bool", "also return PyTorch's flat in-plane indices of the maxima."),
    "ceil_mode": ("bool", "round the output size up instead of down."),
    "count_include_pad": ("bool", "count padding cells in the average's divisor."),
    "divisor_override": ("int | None", "divide every window's sum by this instead."),
    "norm_type": ("float", "the power ``p`` of the power-average."),
    "output_size": ("OutputSize | None",
                    "target spatial size; ``None`` entries keep the input's size."),
    "output_ratio": ("Ratio | None", "output size as a fraction of the input."),
    "_random_samples": ("ArrayLike | None",
                        "fixed samples in [0, 1) instead of drawing them (as in PyTorch)."),
    "indices": ("ArrayLike", "the indices returned by the matching max pooling layer."),
}


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer: its ``torch.nn`` name, the jaxpool op and the arguments (see module docs)."""

    name: str
    op_name: str
    params: tuple[tuple[str, Any], ...]
    call_params: tuple[tuple[str, Any], ...] = ()
    random: RandomSpec | None = None
    in_torch: bool = True  # False: jaxpool's own layer (stochastic pooling), no torch.nn twin
    types: tuple[tuple[str, str], ...] = ()   # argument name -> annotation (source text)
    returns_indices: bool = False

    @property
    def op(self) -> Callable[..., Any]:
        """The :mod:`jaxpool.functional` operator (imported on first use)."""
        fn: Callable[..., Any] = getattr(importlib.import_module("jaxpool.functional"), self.op_name)
        return fn

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    @property
    def ndim(self) -> int:
        return int(self.name[-2])

    @property
    def reference(self) -> str:
        """What the layer reproduces, for docstrings: its ``torch.nn`` module, else its op."""
        return f"``torch.nn.{self.name}``" if self.in_torch else f":func:`jaxpool.{self.op_name}`"

    def type_of(self, name: str) -> str:
        return dict(self.types)[name]

    def config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``{param: value}`` for the constructor arguments, lists frozen to tuples."""
        return {name: _freeze(values[name]) for name in self.param_names}

    def apply(self, input: Any, config: Mapping[str, Any],
              call_args: Mapping[str, Any] | None = None, *, channels_last: bool, key: Any = None,
              training: bool = True) -> Any:
        """Run the op: ``op(input, **call_args, **config, channels_last=...)`` (+ key, training)."""
        kwargs = dict(config)
        kwargs.update(call_args or {})
        if self.random is not None:
            kwargs.update(self.random.op_kwargs(key, training))
        return self.op(input, **kwargs, channels_last=channels_last)

    def describe_params(self, indent: str = "  ") -> str:
        lines = []
        for name, default in self.params:
            text = PARAM_DOCS.get(name, ("", f"as in ``torch.nn.{self.name}``."))[1]
            shown = "required" if default is REQUIRED else f"default ``{default!r}``"
            lines.append(f"{indent}{name}: {text} ({shown})")
        return "\n".join(lines)

    def call_text(self) -> str:
        names = ", ".join(["input"] + [n if d is REQUIRED else f"{n}={d!r}" for n, d in self.call_params])
        return f"({names})"


def _freeze(value: Any) -> Any:
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def _layer(op: OpSpec) -> LayerSpec:
    family = op.family
    by_name = {p.name: p for p in op.params}
    return LayerSpec(
        name=f"{family.layer}{op.ndim}d", op_name=op.name,
        params=tuple((n, by_name[n].default) for n in family.layer_params if n in by_name),
        call_params=tuple((n, by_name[n].default) for n in family.layer_call),
        random=family.random, in_torch=family.in_torch,
        types=tuple((p.name, p.type) for p in op.params), returns_indices=family.returns_indices)


LAYERS: dict[str, LayerSpec] = {layer.name: layer for layer in map(_layer, OPS.values())}
"""Every layer, by its ``torch.nn`` name, in the registry's order."""


def layer_doc(spec: LayerSpec, framework: str, layout: str, extra: str = "") -> str:
    """The docstring of a generated layer class; ``layout`` documents its layout argument."""
    if spec.in_torch:
        what = (f"{framework} layer computing exactly what ``torch.nn.{spec.name}`` computes.\n\n"
                f"Calls :func:`jaxpool.{spec.op_name}`.  Constructor arguments and defaults are "
                f"``torch.nn.{spec.name}``'s")
    else:
        what = (f"{framework} layer for :func:`jaxpool.{spec.op_name}` (Zeiler & Fergus, 2013; "
                f"``torch.nn`` has no such module).\n\nConstructor arguments and defaults are "
                f"those of :func:`jaxpool.{spec.op_name}`")
    return (f"{what}; call it as ``layer{spec.call_text()}``.\n\n"
            f"Args:\n{spec.describe_params()}\n{layout}\n{extra}")


class ClassSignature:
    """``cls.__signature__``: what ``inspect.signature(cls)`` reports, invisible on instances.

    Framework metaclasses (nnx, Haiku) define ``__call__(*args, **kwargs)``, which ``inspect``
    would report for the class; instances must keep reporting their own ``__call__``.
    """

    def __init__(self, init: Callable[..., Any]):
        self.signature = inspect.signature(init).replace(
            parameters=list(inspect.signature(init).parameters.values())[1:],
            return_annotation=inspect.Signature.empty)

    def __get__(self, instance: object, owner: type | None = None) -> inspect.Signature:
        if instance is not None:
            raise AttributeError("__signature__")
        return self.signature
