"""Small layer configurations shared by test_layers.py and test_convert.py.

For every torch.nn pooling layer: one construction with only the required arguments (the
defaults must agree) and one setting every argument to a non-default value (every argument must
be carried), on small channels-first inputs.  Functional parity is swept elsewhere; these check
the plumbing.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from jaxpool.layer_specs import LAYERS

SPATIAL = {1: (7,), 2: (7, 6), 3: (5, 6, 4)}


@dataclasses.dataclass(frozen=True)
class LayerCase:
    layer: str                 # torch.nn name == jaxpool layer name
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    call_kwargs: dict = dataclasses.field(default_factory=dict)   # MaxUnpool's output_size
    positive: bool = False     # LPPool with a fractional p needs non-negative input
    label: str = "custom"      # "required": only required arguments; "custom": every argument set

    @property
    def ndim(self) -> int:
        return int(self.layer[-2])

    @property
    def id(self) -> str:
        return f"{self.layer}-{self.label}"

    def torch_module(self):
        return getattr(torch.nn, self.layer)(*self.args, **self.kwargs)

    def inputs(self, seed: int = 0) -> list[np.ndarray]:
        """Channels-first numpy inputs: ``[x]`` or, for MaxUnpool, ``[pooled, indices]``."""
        rng = np.random.default_rng(seed)
        n = self.ndim
        if self.layer.startswith("MaxUnpool"):
            spatial = self.call_kwargs.get("output_size", (4,) * n)
            x = torch.from_numpy(rng.standard_normal((2, 3, *spatial)).astype(np.float32))
            pool = getattr(torch.nn, f"MaxPool{n}d")(*self.args, **self.kwargs, return_indices=True)
            pooled, indices = pool(x)
            return [pooled.numpy(), indices.numpy()]
        x = rng.standard_normal((2, 3, *SPATIAL[n])).astype(np.float32)
        return [np.abs(x) + 0.1 if self.positive else x]


def _cases_for(n: int) -> list[LayerCase]:
    required = dict(label="required")
    return [
        LayerCase(f"MaxPool{n}d", (2,), **required),
        LayerCase(f"MaxPool{n}d", (3,), dict(stride=2, padding=1, dilation=2 if n < 3 else 1,
                                             return_indices=True, ceil_mode=True)),
        LayerCase(f"AvgPool{n}d", (2,), **required),
        LayerCase(f"AvgPool{n}d", (3,), dict(stride=2, padding=1, ceil_mode=True, count_include_pad=False,
                                             **({"divisor_override": 5} if n > 1 else {}))),
        LayerCase(f"LPPool{n}d", (2, 2), **required),
        LayerCase(f"LPPool{n}d", (1.5, 3), dict(stride=2, ceil_mode=True), positive=True),
        LayerCase(f"AdaptiveAvgPool{n}d", (3,), **required),
        LayerCase(f"AdaptiveAvgPool{n}d", ((3, None, 2)[:n] if n > 1 else 5,)),
        LayerCase(f"AdaptiveMaxPool{n}d", (3,), **required),
        LayerCase(f"AdaptiveMaxPool{n}d", ((2, None, 3)[:n] if n > 1 else 4,), dict(return_indices=True)),
        LayerCase(f"MaxUnpool{n}d", (2,), **required),
        LayerCase(f"MaxUnpool{n}d", (3,), dict(stride=2, padding=1),
                  call_kwargs=dict(output_size=(5, 6, 4)[:n])),
    ]


CASES = [case for n in (1, 2, 3) for case in _cases_for(n)]

# Every deterministic torch-backed layer has both of its cases (randomized ones are tested apart).
assert {c.layer for c in CASES} == {
    name for name, spec in LAYERS.items() if hasattr(torch.nn, name) and spec.random is None}


def to_layout(a, channels_last: bool):
    return np.moveaxis(np.asarray(a), 1, -1) if channels_last else np.asarray(a)


def from_layout(a, channels_last: bool):
    return np.moveaxis(np.asarray(a), -1, 1) if channels_last else np.asarray(a)


def torch_outputs(case: LayerCase, inputs) -> list[np.ndarray]:
    out = case.torch_module()(*[torch.from_numpy(a) for a in inputs], **case.call_kwargs)
    return [t.detach().numpy() for t in (out if isinstance(out, tuple) else (out,))]


def assert_same(jax_out, torch_out, channels_last: bool):
    """Outputs in ``channels_last`` layout equal torch's channels-first ones (indices exactly)."""
    jax_out = list(jax_out) if isinstance(jax_out, tuple) else [jax_out]
    assert len(jax_out) == len(torch_out), (len(jax_out), len(torch_out))
    for got, want in zip(jax_out, torch_out):
        got = from_layout(got, channels_last)
        assert got.shape == want.shape, (got.shape, want.shape)
        if np.issubdtype(want.dtype, np.integer):
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
