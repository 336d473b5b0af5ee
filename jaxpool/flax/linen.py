"""PyTorch's pooling layers as ``flax.linen`` modules: ``MaxPool2d``, ``AvgPool2d``, ... .

One ``flax.linen.Module`` per ``torch.nn`` pooling layer, with ``torch.nn``'s name, constructor
arguments and defaults (dataclass fields in torch's order), computing exactly what the PyTorch
layer computes through the matching :mod:`jaxpool` function::

    import jaxpool.flax.linen as jpl
    pool = jpl.MaxPool2d(3, stride=2, padding=1, return_indices=True)
    y, indices = pool.apply({}, x)          # x: (N, H, W, C)

**Layout: channels-last by default** (Flax's convention): the keyword-only field
``channels_last=True`` takes ``(N, *spatial, C)`` (or unbatched ``(*spatial, C)``);
``channels_last=False`` takes PyTorch's ``(N, C, *spatial)``.  Indices keep PyTorch's per-plane
meaning in both layouts, so they feed ``MaxUnpool*`` unchanged.  ``MaxUnpool*`` layers are called
like torch's: ``layer(input, indices, output_size=None)``.

Layers have no parameters.  Randomized layers draw their key with
``self.make_rng('pooling')`` (pass ``rngs={'pooling': key}`` to ``apply``) and, when the op has
a training mode, take ``deterministic`` as a field or call argument like ``nn.Dropout``.

Needs the ``flax`` extra: ``pip install 'jaxpool[flax]'``.
"""

from __future__ import annotations

import dataclasses

from jaxpool import _args, _generate
from jaxpool.layer_specs import PARAM_DOCS, REQUIRED, RNG_STREAM, LayerSpec, layer_doc

nn = _generate.require("flax.linen", "flax", __name__)

CHANNELS_LAST_DEFAULT = True

_RANDOM_DOC = """
Randomness: the key comes from ``self.make_rng(rng_collection)`` (field, default ``'pooling'``);
pass ``rngs={{'pooling': key}}`` to ``apply``.{deterministic}
"""
_DETERMINISTIC_DOC = """  With ``deterministic=True`` (field, or call argument which takes
precedence, as ``nn.Dropout``) the op runs in its non-training mode and no key is drawn."""


def layer_class(spec: LayerSpec) -> type:
    """The ``flax.linen.Module`` for ``spec``; every layer of this module is made by it."""
    random = spec.random
    has_flag = random is not None and random.training_arg is not None
    annotations, namespace = {}, {}
    for name, default in spec.params:
        annotations[name] = PARAM_DOCS.get(name, ("Any",))[0]
        if default is not REQUIRED:
            namespace[name] = default
    annotations["channels_last"] = "bool"
    namespace["channels_last"] = dataclasses.field(default=CHANNELS_LAST_DEFAULT, kw_only=True)
    call_params = spec.call_parameters()
    if random is not None:
        annotations["rng_collection"] = "str"
        namespace["rng_collection"] = dataclasses.field(default=RNG_STREAM, kw_only=True)
    if has_flag:
        annotations["deterministic"] = "bool | None"
        namespace["deterministic"] = dataclasses.field(default=None, kw_only=True)
        call_params.append(_generate.kwonly("deterministic", None, "bool | None"))

    def call(self, input, deterministic=None, **call_args):
        config = spec.config({name: getattr(self, name) for name in spec.param_names})
        training, key = True, None
        if has_flag:
            training = not _args.flag(nn.merge_param("deterministic", self.deterministic, deterministic),
                                      "deterministic", spec.name)
        if random is not None and random.needs_key(config, training):
            key = self.make_rng(self.rng_collection)
        return spec.apply(input, config, call_args, channels_last=self.channels_last, key=key,
                          training=training)

    extra = ""
    if random is not None:
        extra = _RANDOM_DOC.format(deterministic=_DETERMINISTIC_DOC if has_flag else "")
    namespace["__annotations__"] = annotations
    namespace["__call__"] = _generate.method(
        spec.name, "__call__", call_params, call,
        f"Apply {spec.reference}'s pooling: ``layer{spec.call_text()}``.")
    return _generate.new_class(spec.name, nn.Module, __name__,
                               layer_doc(spec, "Flax linen", CHANNELS_LAST_DEFAULT, extra), namespace)


__all__ = ["layer_class", "CHANNELS_LAST_DEFAULT", *_generate.define_layers(globals(), layer_class)]
