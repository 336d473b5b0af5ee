"""The pooling layers, defined once as data: ``torch.nn`` class name -> functional op + arguments.

Every framework module (:mod:`jaxpool.flax.linen`, :mod:`jaxpool.flax.nnx`, :mod:`jaxpool.haiku`)
and :func:`jaxpool.from_torch` are generated from :data:`LAYERS`.  A :class:`LayerSpec` says:

* ``params``: the constructor arguments, in ``torch.nn``'s order, with ``torch.nn``'s defaults
  (``REQUIRED`` for none).  The tests check them against ``inspect.signature`` of the
  ``torch.nn`` class, so a layer cannot drift from PyTorch's constructor.
* ``call_params``: the arguments a layer takes at call time after ``input`` (``MaxUnpool`` takes
  ``indices`` and ``output_size=None``, as ``torch.nn.MaxUnpool2d.forward`` does).
* ``op``: the :mod:`jaxpool` function that computes it, called as
  ``op(input, **call_args, **constructor_args, channels_last=...)`` (plus the random keywords).
* ``random``: for randomized layers only, a :class:`RandomSpec` telling the frameworks how to
  hand the op a PRNG key (linen ``make_rng``, nnx ``Rngs``, haiku ``hk.next_rng_key()``, all
  from the ``'pooling'`` stream) and which op keyword turns the randomness off.

Adding a layer is one :func:`spec` entry in :data:`LAYERS`; every framework picks it up.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from typing import Any

from jaxpool import functional as F

__all__ = ["REQUIRED", "RandomSpec", "LayerSpec", "spec", "LAYERS", "PARAM_DOCS", "RNG_STREAM"]

REQUIRED = inspect.Parameter.empty
"""Marks a constructor argument without a default (e.g. ``kernel_size``)."""

RNG_STREAM = "pooling"
"""The rng stream/collection randomized layers draw their key from in every framework."""

# Annotation and one-line description of every argument name the layers use.
PARAM_DOCS: dict[str, tuple[Any, str]] = {
    "kernel_size": ("int | tuple[int, ...]", "window size: an int, or one int per spatial axis."),
    "stride": ("int | tuple[int, ...] | None", "window step; ``None`` means ``kernel_size``."),
    "padding": ("int | tuple[int, ...]", "implicit padding on both sides of each spatial axis."),
    "dilation": ("int | tuple[int, ...]", "distance between window taps."),
    "return_indices": ("bool", "also return PyTorch's flat in-plane indices of the maxima."),
    "ceil_mode": ("bool", "round the output size up instead of down."),
    "count_include_pad": ("bool", "count padding cells in the average's divisor."),
    "divisor_override": ("int | None", "divide every window's sum by this instead."),
    "norm_type": ("float", "the power ``p`` of the power-average."),
    "output_size": ("int | tuple[int | None, ...] | None",
                    "target spatial size; ``None`` entries keep the input's size."),
    "output_ratio": ("float | tuple[float, ...] | None", "output size as a fraction of the input."),
    "_random_samples": ("Any", "fixed samples in [0, 1) instead of drawing them (as in PyTorch)."),
    "indices": ("jax.Array", "the indices returned by the matching max pooling layer."),
}

# Call-time arguments whose type differs from the constructor argument of the same name.
CALL_ANNOTATIONS = {"output_size": "Sequence[int] | None"}  # MaxUnpool: spatial or full shape


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

    def op_kwargs(self, key, training: bool) -> dict:
        kwargs = {self.key_arg: key}
        if self.training_arg is not None:
            kwargs[self.training_arg] = training
        return kwargs


@dataclasses.dataclass(frozen=True)
class LayerSpec:
    """One layer: its ``torch.nn`` name, the jaxpool op and the arguments (see module docs)."""

    name: str
    op: Callable
    params: tuple[tuple[str, Any], ...]
    call_params: tuple[tuple[str, Any], ...] = ()
    random: RandomSpec | None = None
    in_torch: bool = True  # False: jaxpool's own layer (stochastic pooling), no torch.nn twin

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.params)

    @property
    def op_name(self) -> str:
        return f"jaxpool.{self.op.__name__}"

    @property
    def reference(self) -> str:
        """What the layer reproduces, for docstrings: its ``torch.nn`` module, else its op."""
        return f"``torch.nn.{self.name}``" if self.in_torch else f":func:`{self.op_name}`"

    def config(self, values: Mapping[str, Any]) -> dict:
        """``{param: value}`` for the constructor arguments, lists frozen to tuples."""
        return {name: _freeze(values[name]) for name in self.param_names}

    def apply(self, input, config: Mapping[str, Any], call_args: Mapping[str, Any] | None = None, *,
              channels_last: bool, key=None, training: bool = True):
        """Run the op: ``op(input, **call_args, **config, channels_last=...)`` (+ key, training)."""
        kwargs = dict(config)
        kwargs.update(call_args or {})
        if self.random is not None:
            kwargs.update(self.random.op_kwargs(key, training))
        return self.op(input, **kwargs, channels_last=channels_last)

    # -- generated signatures and docs, shared by the framework modules ----------------------

    def init_parameters(self, kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) -> list[inspect.Parameter]:
        return [inspect.Parameter(name, kind, default=default,
                                  annotation=PARAM_DOCS.get(name, ("Any",))[0])
                for name, default in self.params]

    def call_parameters(self) -> list[inspect.Parameter]:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return [inspect.Parameter("input", kind, annotation="jax.Array")] + [
            inspect.Parameter(name, kind, default=default,
                              annotation=CALL_ANNOTATIONS.get(name, PARAM_DOCS.get(name, ("Any",))[0]))
            for name, default in self.call_params]

    def describe_params(self, indent: str = "  ") -> str:
        lines = []
        for name, default in self.params:
            text = PARAM_DOCS.get(name, (None, f"as in ``torch.nn.{self.name}``."))[1]
            shown = "required" if default is REQUIRED else f"default ``{default!r}``"
            lines.append(f"{indent}{name}: {text} ({shown})")
        return "\n".join(lines)

    def call_text(self) -> str:
        names = ", ".join(["input"] + [n if d is REQUIRED else f"{n}={d!r}" for n, d in self.call_params])
        return f"({names})"


def _freeze(value):
    return tuple(_freeze(v) for v in value) if isinstance(value, list) else value


def spec(name: str, op: Callable, params, call_params=(), random: RandomSpec | None = None,
         in_torch: bool = True) -> LayerSpec:
    return LayerSpec(name, op, tuple(params), tuple(call_params), random, in_torch)


_K = ("kernel_size", REQUIRED)


def _dims(fn):
    return [fn(n) for n in (1, 2, 3)]


LAYERS: dict[str, LayerSpec] = {s.name: s for s in [
    *_dims(lambda n: spec(f"MaxPool{n}d", getattr(F, f"max_pool{n}d"), [
        _K, ("stride", None), ("padding", 0), ("dilation", 1), ("return_indices", False),
        ("ceil_mode", False)])),
    *_dims(lambda n: spec(f"AvgPool{n}d", getattr(F, f"avg_pool{n}d"), [
        _K, ("stride", None), ("padding", 0), ("ceil_mode", False), ("count_include_pad", True),
        *([("divisor_override", None)] if n > 1 else [])])),   # torch's AvgPool1d has none
    *_dims(lambda n: spec(f"LPPool{n}d", getattr(F, f"lp_pool{n}d"), [
        ("norm_type", REQUIRED), _K, ("stride", None), ("ceil_mode", False)])),
    *_dims(lambda n: spec(f"AdaptiveAvgPool{n}d", getattr(F, f"adaptive_avg_pool{n}d"), [
        ("output_size", REQUIRED)])),
    *_dims(lambda n: spec(f"AdaptiveMaxPool{n}d", getattr(F, f"adaptive_max_pool{n}d"), [
        ("output_size", REQUIRED), ("return_indices", False)])),
    *_dims(lambda n: spec(f"MaxUnpool{n}d", getattr(F, f"max_unpool{n}d"), [
        _K, ("stride", None), ("padding", 0)],
        call_params=[("indices", REQUIRED), ("output_size", None)])),
    # Randomized: fractional pooling is random in every mode (as in PyTorch) unless given
    # ``_random_samples``; stochastic pooling (not in torch.nn) samples only when training.
    *[spec(f"FractionalMaxPool{n}d", getattr(F, f"fractional_max_pool{n}d"), [
        _K, ("output_size", None), ("output_ratio", None), ("return_indices", False),
        ("_random_samples", None)],
        random=RandomSpec(key_optional_when=("_random_samples",))) for n in (2, 3)],
    *_dims(lambda n: spec(f"StochasticPool{n}d", getattr(F, f"stochastic_pool{n}d"), [
        _K, ("stride", None), ("padding", 0)], random=RandomSpec(training_arg="training"),
        in_torch=False)),
]}


def layer_doc(spec: LayerSpec, framework: str, default_channels_last: bool, extra: str = "") -> str:
    """The docstring of a generated layer class."""
    default = "channels-last" if default_channels_last else "channels-first"
    if spec.in_torch:
        what = (f"{framework} layer computing exactly what ``torch.nn.{spec.name}`` computes.\n\n"
                f"Calls :func:`{spec.op_name}`.  Constructor arguments and defaults are "
                f"``torch.nn.{spec.name}``'s")
    else:
        what = (f"{framework} layer for :func:`{spec.op_name}` (Zeiler & Fergus, 2013; "
                f"``torch.nn`` has no such module).\n\nConstructor arguments and defaults are "
                f"those of :func:`{spec.op_name}`")
    return (
        f"{what}; call it as ``layer{spec.call_text()}``.\n\n"
        f"Args:\n{spec.describe_params()}\n"
        f"  channels_last: keyword-only, default ``{default_channels_last}`` ({default}, "
        f"{framework}'s convention).  ``True``: inputs are ``(N, *spatial, C)`` or unbatched "
        f"``(*spatial, C)``; ``False``: PyTorch's ``(N, C, *spatial)`` or ``(C, *spatial)``.  "
        f"Outputs use the same layout; indices keep PyTorch's per-plane meaning in both.\n{extra}"
    )
