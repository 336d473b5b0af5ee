"""Flax layers for every PyTorch pooling layer: :mod:`jaxpool.flax.linen` and :mod:`jaxpool.flax.nnx`.

Both default to channels-last inputs ``(N, *spatial, C)``, Flax's convention; pass
``channels_last=False`` for PyTorch's ``(N, C, *spatial)``.  Importing either submodule needs the
``flax`` extra (``pip install 'jaxpool[flax]'``); this package itself imports nothing from Flax.
"""
