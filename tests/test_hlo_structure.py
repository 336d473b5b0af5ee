"""The backward passes stay scatter-free (XLA:CPU scatters are an order of magnitude slower),
except one scatter-add of the output-sized cotangent for irregular adaptive max pooling, and
strided windows' gradients are assembled per stride phase, without interior pads.

These pin the structural performance properties of the engine (docs/performance.md) on small
shapes: they inspect the lowered program, never a timing.
"""

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxpool
from jaxpool import config

X2 = jnp.asarray(np.random.default_rng(0).standard_normal((2, 3, 33, 31)), jnp.float32)
X1 = jnp.asarray(np.random.default_rng(1).standard_normal((2, 3, 40)), jnp.float32)

OPS = {
    "max_pool2d_k3s2p1": (X2, lambda x: jaxpool.max_pool2d(x, 3, 2, 1)),
    "max_pool2d_indices": (X2, lambda x: jaxpool.max_pool2d(x, 3, 2, 1, return_indices=True)[0]),
    "max_pool2d_dilated_ceil": (X2, lambda x: jaxpool.max_pool2d(x, 3, 2, 0, 2, True)),
    "avg_pool2d": (X2, lambda x: jaxpool.avg_pool2d(x, 3, 1, 1, count_include_pad=False)),
    "lp_pool2d": (X2, lambda x: jaxpool.lp_pool2d(x, 2, 3, 2)),
    "adaptive_avg_pool2d_33to7": (X2, lambda x: jaxpool.adaptive_avg_pool2d(x, 7)),
    "adaptive_avg_pool2d_up": (X2, lambda x: jaxpool.adaptive_avg_pool2d(x, (80, 60))),
    "adaptive_max_pool2d_33to5": (X2, lambda x: jaxpool.adaptive_max_pool2d(x, 5, True)[0]),
    "adaptive_max_pool2d_33to5_values": (X2, lambda x: jaxpool.adaptive_max_pool2d(x, 5)),
    "adaptive_max_pool2d_up": (X2, lambda x: jaxpool.adaptive_max_pool2d(x, (40, 50), True)[0]),
    "adaptive_max_pool1d_long": (X1, lambda x: jaxpool.adaptive_max_pool1d(x, 2)),
    "adaptive_max_pool1d_ragged": (X1, lambda x: jaxpool.adaptive_max_pool1d(x, 7)),
}


def _backward_hlo(x, fn):
    return jax.jit(jax.grad(lambda x: jnp.sum(fn(x) * 1.5))).lower(x).as_text()


# irregular adaptive max: the gradient scatters each window's cotangent to its chosen cell
# (output-sized updates, as PyTorch's backward), plane by plane (_cpu_max_adaptive._at_flat_index):
# (gradient, indices, updates) types
SCATTERS_ONE_UPDATE_PER_WINDOW = {
    "adaptive_max_pool2d_33to5": "tensor<2x3x1023xf32>, tensor<2x3x25x1xi32>, tensor<2x3x25xf32>",
    "adaptive_max_pool2d_33to5_values": "tensor<2x3x1023xf32>, tensor<2x3x25x1xi32>, tensor<2x3x25xf32>",
    "adaptive_max_pool2d_up": "tensor<2x3x1023xf32>, tensor<2x3x2000x1xi32>, tensor<2x3x2000xf32>",
    "adaptive_max_pool1d_ragged": "tensor<2x3x40xf32>, tensor<2x3x7x1xi32>, tensor<2x3x7xf32>",
}


@pytest.mark.parametrize("name", OPS)
def test_backward_has_no_scatter(name):
    x, fn = OPS[name]
    text = _backward_hlo(x, fn)
    if name not in SCATTERS_ONE_UPDATE_PER_WINDOW:
        assert "scatter" not in text
        return
    signatures = re.findall(r'"stablehlo\.scatter".*?\}\) : \(([^)]*)\) ->', text, re.DOTALL)
    assert signatures == [SCATTERS_ONE_UPDATE_PER_WINDOW[name]], signatures


def test_the_check_can_fail():
    """A gather's gradient is a scatter: the assertion above would catch one."""
    idx = jnp.asarray([0, 5, 9, 3])
    assert "scatter" in _backward_hlo(X1, lambda x: jnp.take(x, idx, axis=-1))


def test_tiled_unpool_has_a_scatter_free_branch():
    """SegNet's unpool runs the blockwise branch when every index lies in its own block."""
    v, i = jaxpool.max_pool2d(X2[..., :32, :30], 2, 2, return_indices=True)
    text = jax.jit(lambda v: jaxpool.max_unpool2d(v, i, 2, 2)).lower(v).as_text()
    assert "case" in text or "if" in text  # lax.cond: blockwise branch or the general scatter


def test_irregular_adaptive_average_sums_taps_forward_and_multiplies_backward():
    """33 -> 7 windows are irregular: the values are summed tap by tap (no product, so no
    0 * inf, and no run-time branch), the gradient multiplies by the 0/1 window matrices
    (XLA:CPU's matrix kernels), never gather or scatter."""
    fn = OPS["adaptive_avg_pool2d_33to7"][1]
    forward = jax.jit(fn).lower(X2).as_text()
    backward = _backward_hlo(X2, fn)
    assert "dot_general" not in forward
    assert "conditional" not in jax.jit(fn).lower(X2).compile().as_text()
    assert backward.count("dot_general") >= 2
    assert "scatter" not in backward and "gather" not in backward




# Windows that tile the input (kernel == stride, adaptive with out | in) are summed as strided
# slices, one per tap, and global windows by a product with ones: XLA:CPU reduces a
# reshape's small minor axes with a scalar loop (14 -> 7: 8-10 ms against 0.5-2.5 ms).  The
# gradient stays a broadcast of the cotangent, no interior pad per tap.
TILED_SUMS = {
    "adaptive_avg_pool2d_14to7": ((2, 3, 14, 14), lambda x: jaxpool.adaptive_avg_pool2d(x, 7)),
    "avg_pool2d_k2s2": ((2, 3, 16, 12), lambda x: jaxpool.avg_pool2d(x, 2)),
    "avg_pool3d_k2s2": ((2, 3, 8, 8, 6), lambda x: jaxpool.avg_pool3d(x, 2)),
    "lp_pool2d_k2s2": ((2, 3, 16, 12), lambda x: jaxpool.lp_pool2d(x, 2, 2)),
    "adaptive_avg_pool1d_12to3": ((2, 3, 12), lambda x: jaxpool.adaptive_avg_pool1d(x, 3)),
}


@pytest.mark.parametrize("name", TILED_SUMS)
def test_tiled_sums_are_slices_forward_and_a_broadcast_backward(name):
    shape, fn = TILED_SUMS[name]
    x = jnp.ones(shape, jnp.float32)
    forward = jax.jit(fn).lower(x).as_text()
    assert "stablehlo.reduce" not in forward
    assert _interior_pads(_backward_hlo(x, fn)) == []


def test_global_average_is_one_product_with_ones():
    x = jnp.ones((2, 3, 7, 7), jnp.float32)
    forward = jax.jit(lambda x: jaxpool.adaptive_avg_pool2d(x, 1)).lower(x).as_text()
    assert forward.count("stablehlo.dot_general") == 1 and "stablehlo.reduce" not in forward


X3 = jnp.asarray(np.random.default_rng(2).standard_normal((1, 2, 17, 17, 17)), jnp.float32)

# Strided regular windows: the gradient is built per stride phase of the input
# (_taps.phase_taps), never as one interior pad per tap (a strided slice's transpose).
STRIDED = {
    "max_pool2d_k3s2p1": (X2, OPS["max_pool2d_k3s2p1"][1]),
    "max_pool2d_indices": (X2, OPS["max_pool2d_indices"][1]),
    "max_pool2d_dilated_ceil": (X2, OPS["max_pool2d_dilated_ceil"][1]),
    "max_pool1d_k3s2p1": (X1, lambda x: jaxpool.max_pool1d(x, 3, 2, 1)),
    "lp_pool2d": (X2, OPS["lp_pool2d"][1]),
    "avg_pool2d_k3s2p1": (X2, lambda x: jaxpool.avg_pool2d(x, 3, 2, 1)),
    "adaptive_avg_pool3d_17to4": (X3, lambda x: jaxpool.adaptive_avg_pool3d(x, 4)),
}


def _interior_pads(text):
    return [m for m in re.findall(r"interior = \[([^\]]*)\]", text) if set(m.split(", ")) != {"0"}]


@pytest.mark.parametrize("name", STRIDED)
def test_strided_windows_backward_has_no_interior_pad(name):
    x, fn = STRIDED[name]
    assert _interior_pads(_backward_hlo(x, fn)) == []


def test_the_interior_pad_check_can_fail():
    """A strided slice's gradient is an interior pad: the assertion above would catch one."""
    assert _interior_pads(_backward_hlo(X1, lambda x: x[..., 1::2]))


# Fixed windows with padding or a ceil_mode window (ResNet's 3x3/2, padding 1): the N-d
# fold behind the derivative, and the read of its values, run block by block over windows
# with the same in-bounds taps (_cpu_max_direct._by_blocks), so the forward+backward program writes
# no padded tap and no padded input: its only temporary is the choice, one byte (int8) per
# window (_cpu_barriers.materialised).  In 1-d the values of the interior block are a temporary
# too (4 bytes per window: XLA:CPU writes the block, then concatenates the end windows to
# it); the choice shares a buffer with the outputs there.
# Compiled only (ShapeDtypeStruct), never run: shapes large enough that XLA fuses as it does
# on real inputs.  The last number is the allowed temporary bytes per output cell.
PADDED = {
    "max_pool1d_k3s2p1": ((16, 64, 4096), lambda x: jaxpool.max_pool1d(x, 3, 2, 1), 4),
    "max_pool2d_k3s2p1": ((4, 64, 112, 112), lambda x: jaxpool.max_pool2d(x, 3, 2, 1), 1),
    "max_pool2d_k3s2p1_ceil": ((4, 64, 111, 111), lambda x: jaxpool.max_pool2d(x, 3, 2, 1, ceil_mode=True), 1),
    "max_pool3d_k2s2p1": ((2, 16, 32, 32, 32), lambda x: jaxpool.max_pool3d(x, 2, 2, 1), 1),
}


def _compiled_forward_backward(shape, fn):
    """The compiled forward+backward of ``fn`` at a float32 ``shape``, and its output shape."""
    def both(x, g):
        out, vjp = jax.vjp(fn, x)
        return out, vjp(g)[0]

    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    out = jax.eval_shape(fn, x).shape
    return jax.jit(both).lower(x, jax.ShapeDtypeStruct(out, jnp.float32)).compile(), out


def _forward_backward_temp_ratio(shape, fn):
    """Temporary bytes of the jitted forward+backward per output cell."""
    compiled, out = _compiled_forward_backward(shape, fn)
    return compiled.memory_analysis().temp_size_in_bytes / math.prod(out)


@pytest.mark.parametrize("name", PADDED)
def test_padded_max_writes_only_its_choice(name):
    shape, fn, allowed = PADDED[name]
    assert _forward_backward_temp_ratio(shape, fn) <= allowed * 1.01


def test_the_temporaries_check_can_fail():
    """Padding the taps, as the engine did before _by_blocks, leaves padded taps written out."""
    def padded_max(x):
        xp = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-jnp.inf)
        taps = [xp[:, :, i:i + 111:2, j:j + 111:2] for i in range(3) for j in range(3)]
        best, chosen = taps[0], jnp.zeros(taps[0].shape, jnp.int32)
        for t, tap in enumerate(taps[1:], 1):
            take = tap > best
            best, chosen = jnp.where(take, tap, best), jnp.where(take, t, chosen)
        return best + chosen.astype(x.dtype)
    assert _forward_backward_temp_ratio((4, 64, 112, 112), padded_max) > 1.01


def test_irregular_adaptive_max_forward_gathers_only_the_result():
    """33 -> 5 with indices: every fold takes its taps as slices of whole windows
    (_cpu_max_adaptive._per_window); the one gather reads each window's value at its flat index."""
    forward = jax.jit(lambda x: jaxpool.adaptive_max_pool2d(x, 5, True)).lower(X2).as_text()
    gathers = re.findall(r'"stablehlo\.gather".*?\}> : \(([^)]*)\) ->', forward, re.DOTALL)
    assert gathers == ["tensor<2x3x1023xf32>, tensor<2x3x25x1xi32>"], gathers


# Stride-1 window sums padded along the minor axis (Inception's 3x3/1/1 average): the values
# read plain slices of one padded copy of the input (_cpu_sum.padded_once), so the forward's
# only temporary is that copy.  Tap by tap, XLA:CPU wrote every padded tap of the minor axis
# out (2 input-sized temporaries for 3x3, 4 for 5x5 and for 3x3x3) before summing the next axis.
PADDED_SUMS = {
    "avg_pool2d_k3s1p1_nopad": ((4, 64, 56, 56), lambda x: jaxpool.avg_pool2d(x, 3, 1, 1, count_include_pad=False), (1, 1)),
    "avg_pool2d_k5s1p2": ((4, 64, 56, 56), lambda x: jaxpool.avg_pool2d(x, 5, 1, 2), (2, 2)),
    "avg_pool3d_k3s1p1": ((2, 16, 16, 16, 16), lambda x: jaxpool.avg_pool3d(x, 3, 1, 1), (1, 1, 1)),
    "lp_pool2d_k1x3s1_unpadded": ((4, 64, 56, 55), lambda x: jaxpool.lp_pool2d(x, 1, (1, 3), 1), (0, 0)),
    "avg_pool1d_k3s1p1": ((16, 64, 4096), lambda x: jaxpool.avg_pool1d(x, 3, 1, 1), (0,)),
    "avg_pool2d_k3s1_major_padding": ((4, 64, 56, 56), lambda x: jaxpool.avg_pool2d(x, 3, 1, (1, 0)), (0, 0)),
}


@pytest.mark.parametrize("name", PADDED_SUMS)
def test_padded_sums_write_one_padded_copy_or_nothing(name):
    """Padded along the minor axis with another axis after it: exactly the padded copy.
    Not padded there (or 1-d, where tap by tap is faster): no temporary at all."""
    shape, fn, padding = PADDED_SUMS[name]
    compiled = jax.jit(fn).lower(jax.ShapeDtypeStruct(shape, jnp.float32)).compile()
    spatial = shape[len(shape) - len(padding):]
    copy = math.prod(shape[:len(shape) - len(padding)]) * math.prod(s + 2 * p for s, p in zip(spatial, padding))
    expected = 4 * copy if any(padding) else 0
    assert compiled.memory_analysis().temp_size_in_bytes == expected


# Stride-1 max windows padded along the minor axis (Inception's 3x3/1/1 max pool): the fold
# reads one lowest-filled padded copy of the input (_cpu_max_direct._fold_padded), so no block of
# windows is concatenated to another, and the forward+backward's temporaries are that copy
# and the choice (one byte per window).  Block by block, XLA:CPU wrote each block out and
# then copied it (the previous engine: 8, 26 and 4 concatenations in these programs).
STRIDE_ONE_MAX = {
    "max_pool2d_k3s1p1": ((4, 64, 56, 56), lambda x: jaxpool.max_pool2d(x, 3, 1, 1), (1, 1)),
    "max_pool2d_k2s1p1": ((4, 64, 64, 64), lambda x: jaxpool.max_pool2d(x, 2, 1, 1), (1, 1)),
    "max_pool3d_k2s1p1": ((2, 16, 16, 16, 16), lambda x: jaxpool.max_pool3d(x, 2, 1, 1), (1, 1, 1)),
    "max_pool2d_k3s1p1_indices": ((4, 64, 56, 56),
                                  lambda x: jaxpool.max_pool2d(x, 3, 1, 1, return_indices=True)[1].astype(x.dtype),
                                  None),
}


@pytest.mark.parametrize("name", STRIDE_ONE_MAX)
def test_stride_one_padded_max_concatenates_nothing(name):
    shape, fn, padding = STRIDE_ONE_MAX[name]
    compiled, windows = _compiled_forward_backward(shape, fn)
    assert not re.findall(r"= \S+ concatenate\(", compiled.as_text())
    if padding is not None:
        lead = shape[:len(shape) - len(padding)]
        spatial = shape[len(shape) - len(padding):]
        copy = math.prod(lead) * math.prod(n + 2 * p for n, p in zip(spatial, padding))
        # the padded copy and the int8 tap choices, plus the choices' one-byte max where it
        # is not packed into another buffer's alignment (_cpu_barriers.read_twice)
        assert compiled.memory_analysis().temp_size_in_bytes - (4 * copy + math.prod(windows)) in (0, 1)


# The portable core (forced on CPU here): no fusion barrier (an integer remainder), and its
# backward passes have no scatter either, except upsampling adaptive max, whose gradient adds
# each window's cotangent at its chosen tap, (N, C, rows, out * taps) updates, and irregular
# adaptive sums, whose gradient puts each window's cotangent at its start, one per length and
# axis (_portable._sum_by_length): distinct cells, so marked unique (no atomics on a GPU).
PORTABLE_SCATTERS = {"adaptive_max_pool2d_up": None, "adaptive_avg_pool2d_33to7": 4}


@pytest.mark.parametrize("name", OPS)
def test_portable_core_has_no_barrier_and_no_scatter_backward(name):
    x, fn = OPS[name]
    with config.force_portable():
        text = _backward_hlo(x, fn)
    assert "remainder" not in text
    assert ("scatter" in text) == (name in PORTABLE_SCATTERS)
    if PORTABLE_SCATTERS.get(name):
        scatters = re.findall(r'"stablehlo\.scatter"\(.*?\}\)', text, re.DOTALL)
        assert len(scatters) == PORTABLE_SCATTERS[name]
        assert all("unique_indices = true" in s for s in scatters)


def test_plans_name_the_route_each_platform_runs():
    """The plan's routes are the executors' own choice (:func:`jaxpool._cpu_max.choose`)."""
    from jaxpool._explain import plan_of

    routes = dict(plan_of("max_pool2d", (33, 31), 3, 2, 1).routes)
    assert "every N-d tap folded at once" in routes["cpu"] and "portable core" in routes["gpu/tpu"]
    routes = dict(plan_of("adaptive_max_pool2d", (33, 31), 5, True).routes)
    assert "major axes first" in routes["cpu"]
    with config.force_portable():
        routes = dict(plan_of("avg_pool2d", (33, 31), 3, 2, 1).routes)
    assert routes["cpu (forced portable)"] == routes["gpu/tpu"]


# ``jax.grad(lambda x: pool(x).sum())``: the forward output is dead, so the tap choices' only
# consumer would be the gradient, and XLA:CPU fused the whole fold into the gradient's loop,
# where every input cell redid it for each window covering it (the dilated ceil_mode pool's
# grad(sum) was 3-4x its forward+backward with a live output).  _cpu_barriers.read_twice
# keeps a second consumer, so the program's root (the gradient) never holds the fold.
DEAD_FORWARD = {
    "max_pool1d_k3s1p1": ((2, 8, 33), lambda x: jaxpool.max_pool1d(x, 3, 1, 1)),
    "max_pool2d_dilated_ceil": ((2, 8, 33, 33), lambda x: jaxpool.max_pool2d(x, 3, 2, 0, 2, True)),
    "max_pool2d_k5s3p2_indices": ((2, 8, 33, 33), lambda x: jaxpool.max_pool2d(x, 5, 3, 2, return_indices=True)[0]),
    "max_pool3d_k3s2p1": ((2, 8, 17, 17, 17), lambda x: jaxpool.max_pool3d(x, 3, 2, 1)),
}


def _root_computation(compiled_text: str) -> str:
    entry = compiled_text[compiled_text.index("ENTRY"):]
    root = next(line for line in entry.splitlines() if "ROOT" in line)
    called = re.search(r"calls=(%[\w.\-]+)", root)
    if called is None:
        return root
    body = re.search(rf"^{re.escape(called.group(1))} .*?\{{\n(.*?)^\}}", compiled_text, re.M | re.S)
    return body.group(1)


@pytest.mark.parametrize("reduce_output", [jnp.sum, jnp.mean])
@pytest.mark.parametrize("name", DEAD_FORWARD)
def test_grad_of_a_sum_keeps_the_fold_out_of_the_gradient_loop(name, reduce_output):
    shape, fn = DEAD_FORWARD[name]
    grad = jax.jit(jax.grad(lambda x: reduce_output(fn(x))))
    root = _root_computation(grad.lower(jax.ShapeDtypeStruct(shape, jnp.float32)).compile().as_text())
    assert "remainder(" not in root  # the tap choices (_cpu_barriers.materialised) are an input
    assert root.count(" compare(") <= 30  # per-window fold comparisons are not redone here


def test_the_dead_forward_check_can_fail(monkeypatch):
    """Without the second consumer (the tactic as it was), the root holds the fold."""
    from jaxpool import _cpu_barriers

    monkeypatch.setattr(_cpu_barriers, "read_twice", lambda taps_at, taps: taps_at)
    shape, fn = DEAD_FORWARD["max_pool2d_dilated_ceil"]
    grad = jax.jit(jax.grad(lambda x: jnp.sum(fn(x))))
    root = _root_computation(grad.lower(jax.ShapeDtypeStruct(shape, jnp.float32)).compile().as_text())
    assert "remainder(" in root
