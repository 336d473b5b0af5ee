"""Every operator under ``torch.nn.functional``'s name, signature and defaults.

Each also takes the keyword-only ``channels_last`` (default False: PyTorch's ``(N, C, ...)``).
The randomized ones take a keyword-only ``key`` (a ``jax.random`` key); ``stochastic_pool*``
has no PyTorch counterpart.
"""

from jaxpool.adaptive import (
    adaptive_avg_pool1d, adaptive_avg_pool2d, adaptive_avg_pool3d,
    adaptive_max_pool1d, adaptive_max_pool2d, adaptive_max_pool3d,
)
from jaxpool.avg_pool import avg_pool1d, avg_pool2d, avg_pool3d
from jaxpool.fractional import fractional_max_pool2d, fractional_max_pool3d
from jaxpool.lp_pool import lp_pool1d, lp_pool2d, lp_pool3d
from jaxpool.max_pool import max_pool1d, max_pool2d, max_pool3d
from jaxpool.max_unpool import max_unpool1d, max_unpool2d, max_unpool3d
from jaxpool.stochastic import stochastic_pool1d, stochastic_pool2d, stochastic_pool3d

__all__ = [
    "max_pool1d", "max_pool2d", "max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d",
    "lp_pool1d", "lp_pool2d", "lp_pool3d",
    "max_unpool1d", "max_unpool2d", "max_unpool3d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
    "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
    "fractional_max_pool2d", "fractional_max_pool3d",
    "stochastic_pool1d", "stochastic_pool2d", "stochastic_pool3d",  # not in PyTorch (Zeiler & Fergus)
]
