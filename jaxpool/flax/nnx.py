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

Needs the ``flax`` extra: ``pip install 'jaxpool[flax]'``.
"""

from __future__ import annotations

from jaxpool import _args, _generate
from jaxpool.layer_specs import RNG_STREAM, LayerSpec, layer_doc

_flax_nnx = _generate.require("flax.nnx", "flax", __name__)
Module, Rngs, RngStream = _flax_nnx.Module, _flax_nnx.Rngs, _flax_nnx.RngStream

CHANNELS_LAST_DEFAULT = True

_RANDOM_DOC = """
Randomness: ``rngs`` (an ``nnx.Rngs``, an ``nnx.RngStream`` or, at call time, a key) gives the
key, from the ``rng_collection`` stream (default ``'pooling'``); the call argument takes
precedence over the constructor's.{deterministic}
"""
_DETERMINISTIC_DOC = """  With ``deterministic=True`` (constructor, ``model.eval()``, or call
argument which takes precedence, as ``nnx.Dropout``) the op runs in its non-training mode and
no key is drawn."""


def _first(*values, what: str):
    for value in values:
        if value is not None:
            return value
    raise ValueError(what)


def _key(rngs, collection: str, layer: str):
    import jax

    if isinstance(rngs, Rngs):
        return rngs[collection]()
    if isinstance(rngs, RngStream):
        return rngs()
    if isinstance(rngs, jax.Array):
        return rngs
    raise TypeError(f"{layer}: rngs must be an nnx.Rngs, an nnx.RngStream or a key, got {type(rngs)}")


def layer_class(spec: LayerSpec) -> type:
    """The ``flax.nnx.Module`` for ``spec``; every layer of this module is made by it."""
    random = spec.random
    has_flag = random is not None and random.training_arg is not None
    kwonly = _generate.kwonly
    init_params = spec.init_parameters() + [kwonly("channels_last", CHANNELS_LAST_DEFAULT, "bool")]
    call_params = spec.call_parameters()
    if has_flag:
        init_params.append(kwonly("deterministic", False, "bool | None"))
        call_params.append(kwonly("deterministic", None, "bool | None"))
    if random is not None:
        init_params += [kwonly("rng_collection", RNG_STREAM, "str"),
                        kwonly("rngs", None, "nnx.Rngs | nnx.RngStream | None")]
        call_params.append(kwonly("rngs", None, "nnx.Rngs | nnx.RngStream | jax.Array | None"))

    def init(self, channels_last, deterministic=False, rng_collection=RNG_STREAM, rngs=None, **config):
        for name, value in spec.config(config).items():
            setattr(self, name, value)
        self.channels_last = channels_last
        if random is None:
            return
        self.rng_collection = rng_collection
        if has_flag:
            if deterministic is not None:
                _args.flag(deterministic, "deterministic", spec.name)
            self.deterministic = deterministic
        if isinstance(rngs, Rngs):
            self.rngs = rngs[rng_collection].fork()
        elif isinstance(rngs, RngStream):
            self.rngs = rngs.fork()
        elif rngs is None:
            self.rngs = _flax_nnx.data(None)
        else:
            raise TypeError(f"{spec.name}: rngs must be an nnx.Rngs, an nnx.RngStream or None, "
                            f"got {type(rngs)}")

    def call(self, input, deterministic=None, rngs=None, **call_args):
        config = spec.config({name: getattr(self, name) for name in spec.param_names})
        training, key = True, None
        if has_flag:
            training = not _args.flag(_first(deterministic, self.deterministic, what=(
                f"{spec.name}: no `deterministic` given; pass it to the constructor or the call, "
                f"or use model.eval()/model.train()")), "deterministic", spec.name)
        if random is not None and random.needs_key(config, training):
            source = _first(rngs, self.rngs, what=(
                f"{spec.name} needs a key: pass rngs=nnx.Rngs({self.rng_collection}=...) to the "
                f"constructor or the call"))
            key = _key(source, self.rng_collection, spec.name)
        return spec.apply(input, config, call_args, channels_last=self.channels_last, key=key,
                          training=training)

    namespace = {
        "__init__": _generate.method(spec.name, "__init__", init_params, init),
        "__call__": _generate.method(
            spec.name, "__call__", call_params, call,
            f"Apply {spec.reference}'s pooling: ``layer{spec.call_text()}``."),
    }
    if has_flag:
        def set_view(self, deterministic: bool | None = None):
            """Used by ``nnx.view``/``model.eval()``: set ``deterministic``."""
            if deterministic is not None:
                self.deterministic = _args.flag(deterministic, "deterministic", spec.name)
        set_view.__qualname__ = f"{spec.name}.set_view"
        namespace["set_view"] = set_view
    extra = ""
    if random is not None:
        extra = _RANDOM_DOC.format(deterministic=_DETERMINISTIC_DOC if has_flag else "")
    return _generate.new_class(spec.name, Module, __name__,
                               layer_doc(spec, "Flax NNX", CHANNELS_LAST_DEFAULT, extra), namespace)


__all__ = ["layer_class", "CHANNELS_LAST_DEFAULT", *_generate.define_layers(globals(), layer_class)]
