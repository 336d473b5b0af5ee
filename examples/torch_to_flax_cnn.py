"""Port a small PyTorch CNN to Flax with jaxpool, copy the weights, and check both agree.

The net: conv -> ReLU -> MaxPool2d(return_indices=True) -> MaxUnpool2d (back to the odd input
size) -> conv -> ReLU -> AdaptiveAvgPool2d((7, 7)) -> flatten -> linear.  The Flax version uses
``jaxpool.flax.linen`` layers in Flax's channels-last layout; PyTorch's weights are copied over,
and the outputs and the gradients with respect to the input are compared::

    python examples/torch_to_flax_cnn.py        # (after `pip install -e ".[test,flax]"`)

``tests/test_examples.py`` imports this file and runs :func:`main`.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import torch

import jaxpool.flax.linen as jpl

RTOL, ATOL = 1e-4, 1e-5  # float32: the convolutions sum in different orders in XLA and PyTorch


class TorchNet(torch.nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(in_channels, 8, 3, padding=1)
        self.pool = torch.nn.MaxPool2d(2, 2, return_indices=True)
        self.unpool = torch.nn.MaxUnpool2d(2, 2)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, padding=1)
        self.head = torch.nn.AdaptiveAvgPool2d((7, 7))
        self.fc = torch.nn.Linear(16 * 7 * 7, num_classes)

    def forward(self, x):                                   # x: (N, C, H, W)
        x = torch.relu(self.conv1(x))
        pooled, indices = self.pool(x)
        x = self.unpool(pooled, indices, output_size=x.shape[-2:])
        x = torch.relu(self.conv2(x))
        x = self.head(x)
        return self.fc(torch.flatten(x, 1))


class FlaxNet(nn.Module):
    num_classes: int = 10

    @nn.compact
    def __call__(self, x):                                  # x: (N, H, W, C), Flax's layout
        x = nn.relu(nn.Conv(8, (3, 3), padding=1, name="conv1")(x))
        pooled, indices = jpl.MaxPool2d(2, 2, return_indices=True)(x)
        x = jpl.MaxUnpool2d(2, 2)(pooled, indices, output_size=x.shape[1:3])
        x = nn.relu(nn.Conv(16, (3, 3), padding=1, name="conv2")(x))
        x = jpl.AdaptiveAvgPool2d((7, 7))(x)
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape(x.shape[0], -1)  # flatten as torch: (C, H, W)
        return nn.Dense(self.num_classes, name="fc")(x)


def torch_to_flax_params(net: TorchNet) -> dict:
    """Conv (O, I, kh, kw) -> (kh, kw, I, O); Linear (out, in) -> (in, out); biases as they are."""
    def array(t):
        return jnp.asarray(t.detach().numpy())

    def conv(m):
        return {"kernel": array(m.weight).transpose(2, 3, 1, 0), "bias": array(m.bias)}

    return {"params": {"conv1": conv(net.conv1), "conv2": conv(net.conv2),
                       "fc": {"kernel": array(net.fc.weight).T, "bias": array(net.fc.bias)}}}


def main(seed: int = 0, batch: int = 2, size: tuple[int, int] = (15, 13), verbose: bool = True) -> dict:
    """Build both nets, compare outputs and input gradients; return the largest errors."""
    torch.manual_seed(seed)
    torch_net = TorchNet().eval()
    flax_net, params = FlaxNet(), torch_to_flax_params(torch_net)

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, 3, *size)).astype(np.float32)   # channels-first, as torch
    w = rng.standard_normal((batch, 10)).astype(np.float32)         # weights of the scalar loss

    tx = torch.from_numpy(x).requires_grad_(True)
    torch_out = torch_net(tx)
    (torch_out * torch.from_numpy(w)).sum().backward()

    def loss(x_last):
        out = flax_net.apply(params, x_last)
        return (out * w).sum(), out

    x_last = jnp.asarray(x.transpose(0, 2, 3, 1))
    (_, flax_out), grad_last = jax.jit(jax.value_and_grad(loss, has_aux=True))(x_last)
    flax_grad = np.asarray(grad_last).transpose(0, 3, 1, 2)           # back to channels-first

    np.testing.assert_allclose(flax_out, torch_out.detach().numpy(), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(flax_grad, tx.grad.numpy(), rtol=RTOL, atol=ATOL)
    errors = {"output": float(np.max(np.abs(flax_out - torch_out.detach().numpy()))),
              "input_grad": float(np.max(np.abs(flax_grad - tx.grad.numpy())))}
    if verbose:
        print(f"input {x.shape}: outputs {tuple(flax_out.shape)} agree (max abs error "
              f"{errors['output']:.2e}); input gradients agree (max abs error {errors['input_grad']:.2e})")
    return errors


if __name__ == "__main__":
    main()
