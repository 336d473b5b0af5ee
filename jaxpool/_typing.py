"""Type aliases of the public signatures (``jaxpool.functional`` and the layer modules).

Sizes are what PyTorch takes: an int for every spatial axis, or one per axis (a tuple or a list).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Union

import jax
from jax.typing import ArrayLike

__all__ = ["ArrayLike", "Size", "OutputSize", "Ratio", "Indexed", "MaybeIndexed"]

Size = Union[int, Sequence[int]]
"""``kernel_size``, ``stride``, ``padding``, ``dilation``: an int or one int per spatial axis."""

OutputSize = Union[int, Sequence[Union[int, None]]]
"""An adaptive/fractional ``output_size``: ``None`` entries keep the input's size (2-d/3-d)."""

Ratio = Union[float, Sequence[float]]
"""``output_ratio`` of fractional max pooling: one float, or one per spatial axis."""

Indexed = tuple[jax.Array, jax.Array]
"""``(values, indices)``, what an operator returns with ``return_indices=True``."""

MaybeIndexed = Union[jax.Array, Indexed]
"""What an operator returns when ``return_indices`` is not known statically (a layer's field)."""
