"""PyTorch's pooling layers as Haiku modules: ``MaxPool2d``, ``AvgPool2d``, ... .

One ``hk.Module`` per ``torch.nn`` pooling layer, with ``torch.nn``'s name, constructor
arguments and defaults (plus Haiku's ``name``), computing exactly what the PyTorch layer computes
through the matching :mod:`jaxpool` function; use them inside ``hk.transform`` as usual::

    import haiku as hk
    import jaxpool.haiku as jph

    forward = hk.transform(lambda x: jph.AdaptiveAvgPool2d((7, 7))(x))
    y = forward.apply(forward.init(None, x), None, x)        # x: (N, H, W, C)

**Layout: channels-last by default** (Haiku's convention): the keyword-only argument
``channels_last=True`` takes ``(N, *spatial, C)`` (or unbatched ``(*spatial, C)``);
``channels_last=False`` takes PyTorch's ``(N, C, *spatial)``.  Indices keep PyTorch's per-plane
meaning in both layouts.  ``MaxUnpool*`` layers are called like torch's:
``layer(input, indices, output_size=None)``.

Randomized layers draw their key with ``hk.next_rng_key()`` and, when the op has a training
mode, take Haiku's ``is_training`` call argument (default ``True``).

Needs the ``haiku`` extra: ``pip install 'jaxpool[haiku]'``.
"""

from __future__ import annotations

from jaxpool import _args, _generate
from jaxpool.layer_specs import LayerSpec, layer_doc

hk = _generate.require("haiku", "haiku", __name__)

CHANNELS_LAST_DEFAULT = True

_RANDOM_DOC = """
Randomness: the key comes from ``hk.next_rng_key()`` (give ``apply`` an rng).{training}
"""
_TRAINING_DOC = """  With ``is_training=False`` (call argument, default ``True``) the op runs
in its non-training mode and no key is drawn."""


def layer_class(spec: LayerSpec) -> type:
    """The ``hk.Module`` for ``spec``; every layer of this module is made by it."""
    random = spec.random
    has_flag = random is not None and random.training_arg is not None
    kwonly = _generate.kwonly
    init_params = spec.init_parameters() + [kwonly("channels_last", CHANNELS_LAST_DEFAULT, "bool"),
                                            kwonly("name", None, "str | None")]
    call_params = spec.call_parameters()
    if has_flag:
        call_params.append(kwonly("is_training", True, "bool"))

    def init(self, channels_last, name, **config):
        hk.Module.__init__(self, name=name)
        self.config = spec.config(config)
        self.channels_last = channels_last

    def call(self, input, is_training=True, **call_args):
        if has_flag:
            _args.flag(is_training, "is_training", spec.name)
        key = None
        if random is not None and random.needs_key(self.config, is_training):
            key = hk.next_rng_key()
        return spec.apply(input, self.config, call_args, channels_last=self.channels_last, key=key,
                          training=is_training)

    extra = ""
    if random is not None:
        extra = _RANDOM_DOC.format(training=_TRAINING_DOC if has_flag else "")
    namespace = {
        "__init__": _generate.method(spec.name, "__init__", init_params, init),
        "__call__": _generate.method(
            spec.name, "__call__", call_params, call,
            f"Apply {spec.reference}'s pooling: ``layer{spec.call_text()}``."),
    }
    for param in spec.param_names:  # torch's attribute names, read-only
        namespace[param] = property(lambda self, _p=param: self.config[_p],
                                    doc=f"The constructor's ``{param}``.")
    return _generate.new_class(spec.name, hk.Module, __name__,
                               layer_doc(spec, "Haiku", CHANNELS_LAST_DEFAULT, extra), namespace)


__all__ = ["layer_class", "CHANNELS_LAST_DEFAULT", *_generate.define_layers(globals(), layer_class)]
