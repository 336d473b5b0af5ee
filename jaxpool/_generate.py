"""Build real classes and methods from :mod:`jaxpool.layer_specs`, for the framework modules.

The methods have explicit ``inspect.Signature``s (so ``help()``, ``inspect.signature`` and IDEs
show torch's arguments) and bind their arguments against them, which gives Python's own
``TypeError`` for a missing or unexpected argument, prefixed with the layer's name.
"""

from __future__ import annotations

import importlib
import inspect
import types

SELF = inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)
KW = inspect.Parameter.KEYWORD_ONLY


def require(framework: str, extra: str, module: str):
    """Import ``framework`` or raise an ImportError naming the extra that provides it."""
    try:
        return importlib.import_module(framework)
    except ImportError as error:
        raise ImportError(
            f"{module} needs {framework!r}, which is not installed; install the extra with "
            f"`pip install 'jaxpool[{extra}]'`"
        ) from error


def kwonly(name: str, default, annotation="Any") -> inspect.Parameter:
    return inspect.Parameter(name, KW, default=default, annotation=annotation)


def method(owner: str, name: str, params: list[inspect.Parameter], body, doc: str | None = None):
    """``def name(self, <params>)`` calling ``body(self, **arguments)`` with defaults applied."""
    signature = inspect.Signature([SELF, *params])

    def fn(self, *args, **kwargs):
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as error:
            raise TypeError(f"{owner}.{name}: {error}") from None
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        del arguments["self"]
        return body(self, **arguments)

    fn.__signature__ = signature
    fn.__name__ = name
    fn.__qualname__ = f"{owner}.{name}"
    fn.__doc__ = doc
    return fn


class _ClassSignature:
    """``cls.__signature__`` for ``inspect.signature(cls)``, invisible on instances.

    Framework metaclasses define ``__call__(*args, **kwargs)``, which ``inspect`` would report;
    instances must keep reporting their own ``__call__``'s signature.
    """

    def __init__(self, init):
        params = list(init.__signature__.parameters.values())[1:]
        self.signature = inspect.Signature(params)

    def __get__(self, instance, owner=None):
        if instance is not None:
            raise AttributeError("__signature__")
        return self.signature


def new_class(name: str, base: type, module: str, doc: str, namespace: dict) -> type:
    """A class made through ``base``'s metaclass, as if written in ``module``.

    A generated ``__init__`` in ``namespace`` also becomes the class's ``inspect.signature``.
    """
    body = {"__module__": module, "__qualname__": name, "__doc__": doc, **namespace}
    if "__init__" in namespace:
        body["__signature__"] = _ClassSignature(namespace["__init__"])
    cls = types.new_class(name, (base,), {}, lambda ns: ns.update(body))
    for value in namespace.values():  # methods report the class they belong to
        if isinstance(value, types.FunctionType):
            value.__module__ = module
    return cls


def define_layers(namespace: dict, layer_class) -> list[str]:
    """Put one class per :data:`jaxpool.layer_specs.LAYERS` entry into a framework module's
    namespace (made by that module's ``layer_class``); returns their names for ``__all__``."""
    from jaxpool.layer_specs import LAYERS

    for spec in LAYERS.values():
        namespace[spec.name] = layer_class(spec)
    return list(LAYERS)
