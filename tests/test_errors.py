"""Every argument rule: jaxpool raises ValueError/TypeError naming the argument, and torch
rejects the same call (except where jaxpool is deliberately stricter, marked below)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import jaxpool

X = np.zeros((1, 2, 6, 6), np.float32)  # 1-d rules use x[0], shape (2, 6, 6): N=2, C=6, L=6

# (name, call(module, x), torch rejects too? (None: torch accepts), jaxpool's exception, message)
RULES = [
    ("rank too low", lambda m, x: m.max_pool2d(x[0, 0], 2), "", ValueError, "dimensions"),
    ("rank too high", lambda m, x: m.avg_pool2d(x[None], 2), "", ValueError, "dimensions"),
    ("zero spatial size", lambda m, x: m.max_pool2d(x[:, :, :0], 1), "", ValueError, "non-zero size"),
    ("zero channels", lambda m, x: m.max_pool2d(x[:, :0], 2), "", ValueError, "non-zero size"),
    ("kernel zero", lambda m, x: m.max_pool2d(x, 0), "", ValueError, "kernel_size"),
    ("kernel negative", lambda m, x: m.avg_pool2d(x, -2), "", ValueError, "kernel_size"),
    ("stride zero", lambda m, x: m.max_pool2d(x, 2, 0), "", ValueError, "stride"),
    ("padding negative", lambda m, x: m.max_pool2d(x, 2, 1, -1), "", ValueError, "padding"),
    ("padding over half kernel", lambda m, x: m.max_pool2d(x, 3, 1, 2), "", ValueError, "half of kernel_size"),
    ("avg padding over half kernel", lambda m, x: m.avg_pool2d(x, 2, 1, 2), "", ValueError, "half of kernel_size"),
    ("dilated kernel does not relax padding", lambda m, x: m.max_pool1d(x[0], 3, 1, 2, 2), "", ValueError, "half"),
    ("dilation zero", lambda m, x: m.max_pool2d(x, 2, 1, 0, 0), "", ValueError, "dilation"),
    ("output too small", lambda m, x: m.max_pool2d(x, 7), "", ValueError, "output size is too small"),
    ("lp output too small", lambda m, x: m.lp_pool2d(x, 2, 7), "", ValueError, "output size is too small"),
    ("kernel float", lambda m, x: m.max_pool2d(x, 2.0), "", TypeError, "kernel_size"),
    ("stride float", lambda m, x: m.avg_pool2d(x, 2, 1.5), "", TypeError, "stride"),
    ("kernel wrong length", lambda m, x: m.max_pool2d(x, (2, 2, 2)), "", ValueError, "kernel_size"),
    ("divisor_override zero", lambda m, x: m.avg_pool2d(x, 2, divisor_override=0), "", ValueError, "divisor_override"),
    ("lp norm_type zero", lambda m, x: m.lp_pool2d(x, 0, 2), "", ValueError, "norm_type"),
    ("adaptive negative size", lambda m, x: m.adaptive_avg_pool2d(x, -1), "", ValueError, "output_size"),
    ("adaptive wrong length", lambda m, x: m.adaptive_max_pool2d(x, (2, 2, 2)), "", ValueError, "output_size"),
    ("adaptive float size", lambda m, x: m.adaptive_avg_pool2d(x, 2.5), "", TypeError, "output_size"),
    ("adaptive 1-tuple size", lambda m, x: m.adaptive_avg_pool2d(x, (3,)), "", ValueError, "output_size"),
    ("adaptive bare None", lambda m, x: m.adaptive_max_pool2d(x, None), "", TypeError, "output_size"),
    ("adaptive 3-d bare None", lambda m, x: m.adaptive_avg_pool3d(x[None], None), "", TypeError, "output_size"),
    ("adaptive zero input", lambda m, x: m.adaptive_avg_pool2d(x[:, :, :0], 2), "", ValueError, "non-zero size"),
    ("avg on bool", lambda m, x: m.avg_pool2d(x > 0, 2), "", TypeError, "dtype"),
    ("max on bool", lambda m, x: m.max_pool2d(x > 0, 2), "", TypeError, "dtype"),
    ("adaptive max on int", lambda m, x: m.adaptive_max_pool2d(x.astype(np.int32), 2), "", TypeError, "dtype"),
    ("unpool indices shape", lambda m, x: m.max_unpool2d(x, np.zeros((1, 2, 3, 6), np.int64), 2), "", ValueError, "indices"),
    ("unpool output_size too big", lambda m, x: m.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, output_size=(14, 14)), "", ValueError, "output_size"),
    ("unpool output_size too small", lambda m, x: m.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, output_size=(10, 10)), "", ValueError, "output_size"),
    ("unpool output_size length", lambda m, x: m.max_unpool2d(x, np.zeros(x.shape, np.int64), 2, output_size=(12,)), "", ValueError, "output_size"),
    ("unpool index out of range", lambda m, x: m.max_unpool2d(x, np.full(x.shape, 144, np.int64), 2), "", ValueError, "invalid max index"),
    ("unpool negative index", lambda m, x: m.max_unpool2d(x, np.full(x.shape, -1, np.int64), 2), "", ValueError, "invalid max index"),
    ("unpool float indices", lambda m, x: m.max_unpool2d(x, x, 2), "", TypeError, "indices"),
    # Stricter than torch: torch accepts this and returns index 2 for a 2-cell plane, then its
    # backward writes out of bounds (heap corruption); jaxpool rejects the configuration.
    ("dilated window reads no cell", lambda m, x: m.max_pool1d(x[0, :, :, :2], 2, 3, 1, 3), None, ValueError, "reads no input"),
]


def _torch_module():
    class Torchified:
        def __getattr__(self, name):
            fn = getattr(F, name)

            def call(*args, **kwargs):
                args = [torch.from_numpy(a) if isinstance(a, np.ndarray) else a for a in args]
                return fn(*args, **kwargs)

            return call

    return Torchified()


@pytest.mark.parametrize("name, call, torch_rejects, error, fragment", RULES, ids=[r[0] for r in RULES])
def test_rule(name, call, torch_rejects, error, fragment):
    with pytest.raises(error, match=fragment):
        call(jaxpool, jnp.asarray(X))
    if torch_rejects is not None:
        with pytest.raises(Exception):
            call(_torch_module(), X)


def test_errors_are_raised_at_trace_time():
    """Rules depend on static shapes and arguments only: jit raises before running anything."""
    with pytest.raises(ValueError, match="half of kernel_size"):
        jax.jit(lambda x: jaxpool.max_pool2d(x, 3, 1, 2)).lower(jnp.zeros((1, 1, 6, 6)))


def test_indices_too_large_for_int32_is_an_error_not_a_wrap():
    x = jax.ShapeDtypeStruct((1, 1, 2**16, 2**15 + 1), jnp.float32)
    with pytest.raises(ValueError, match="int32"):
        jax.eval_shape(lambda a: jaxpool.max_pool2d(a, 2, return_indices=True), x)
    jax.eval_shape(lambda a: jaxpool.max_pool2d(a, 2), x)  # without indices there is no limit


def test_unpool_out_of_range_under_jit_writes_nothing_out_of_bounds():
    values = jnp.asarray([[[1.0, 2.0, 3.0]]])
    indices = jnp.asarray([[[1, 99, -1]]])
    out = jax.jit(lambda v, i: jaxpool.max_unpool1d(v, i, 2))(values, indices)
    np.testing.assert_array_equal(out, [[[0, 1, 0, 0, 0, 0]]])  # -1 does not wrap to the end
