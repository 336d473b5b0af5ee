"""``jax.test_util.check_grads`` on every differentiable operator, in float64 (x64 mode), on
inputs without ties (distinct values, so every max is differentiable).

Order 1 and 2 in forward and reverse mode; the default run takes order 2 in 2-d only (each op's
second derivative has one code path for every dimension) and order 1 in 1-d and 3-d,
``JAXPOOL_FULL`` order 2 everywhere.  Max-type ops are piecewise linear (second
derivative 0 away from ties); avg pools are linear; lp_pool (p=2, 3) is smooth where the
window sums are positive (inputs are positive here); max_unpool is linear in its values.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

import jaxpool

FULL = os.environ.get("JAXPOOL_FULL") == "1"
SPATIAL = {1: (10,), 2: (7, 6), 3: (5, 4, 6)}


def _ops(n):
    j = lambda name: getattr(jaxpool, f"{name}{n}d")  # noqa: E731
    return {
        f"max_pool{n}d": lambda x: j("max_pool")(x, 3, 2, 1, 1, True),
        f"max_pool{n}d_dilated": lambda x: j("max_pool")(x, 2, 1, 1, 2),
        f"avg_pool{n}d": lambda x: j("avg_pool")(x, 3, 2, 1, True, False),
        f"avg_pool{n}d_include_pad": lambda x: j("avg_pool")(x, 2, 1, 1),
        f"lp_pool{n}d_p2": lambda x: j("lp_pool")(x, 2, 2, 1),
        f"lp_pool{n}d_p3_ceil": lambda x: j("lp_pool")(x, 3, 3, 2, True),
        f"lp_pool{n}d_pinf": lambda x: j("lp_pool")(x, float("inf"), 2),
        f"adaptive_avg_pool{n}d": lambda x: j("adaptive_avg_pool")(x, 3),
        f"adaptive_max_pool{n}d": lambda x: j("adaptive_max_pool")(x, 3),
        f"adaptive_max_pool{n}d_long": lambda x: j("adaptive_max_pool")(jnp.concatenate([x] * 4, 2), 1),
        f"max_unpool{n}d": lambda x: j("max_unpool")(x, _UNPOOL_INDICES[n], 2, output_size=SPATIAL[n]),
    }


def _distinct(shape, seed):
    """Distinct positive values, well separated (gaps >> the finite-difference step)."""
    rng = np.random.default_rng(seed)
    values = rng.permutation(int(np.prod(shape))).reshape(shape)
    return 0.5 + values / values.size + 0.0  # in [0.5, 1.5), gaps 1/size


def _unpool_indices(n):
    with jax.enable_x64(True):
        _, idx = getattr(jaxpool, f"max_pool{n}d")(jnp.asarray(_distinct((2, 2) + SPATIAL[n], 99)), 2,
                                                    return_indices=True)
    return np.asarray(idx)


_UNPOOL_INDICES = {n: _unpool_indices(n) for n in (1, 2, 3)}
CASES = [(name, n) for n in (1, 2, 3) for name in _ops(n)]


@pytest.mark.parametrize("name, n", CASES, ids=[c[0] for c in CASES])
def test_check_grads_fwd_and_rev(name, n):
    with jax.enable_x64(True):
        fn = _ops(n)[name]
        shape = (2, 2) + (tuple(s // 2 for s in SPATIAL[n]) if "unpool" in name else SPATIAL[n])
        x = jnp.asarray(_distinct(shape, hash(name) % 2**16))
        assert x.dtype == jnp.float64
        # jitted: one program per derivative instead of an eager dispatch per primitive
        order = 2 if FULL or n == 2 else 1
        check_grads(jax.jit(fn), (x,), order=order, modes=("fwd", "rev"), eps=1e-4, atol=1e-6, rtol=1e-6)
