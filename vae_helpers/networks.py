"""The networks inside a VAE: the maps from x to q(z|x)'s parameters and from z to p(x|z)'s.

A network only computes numbers; the distributions are made from them elsewhere (the encoder's output
becomes q in ``VAE.encode``, the decoder's becomes p(x|z) in a likelihood from ``likelihoods``). Part I
uses one kind, the multilayer perceptron of the PyTorch examples' VAE (``mlp``); lesson 10 adds a
convolutional pair (``ConvEncoder``, ``ConvDecoder``), which sees x as an image rather than a list of pixels.
"""
from __future__ import annotations

import math

from torch import nn

from . import checks

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus}


def mlp(sizes, activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last).

    ``mlp([784, 400, 4])`` maps (..., 784) to (..., 4): the course's encoder for D = 2, whose 2D outputs
    are [mu, logvar].
    """
    sizes = checks.sizes("sizes", sizes, "(784, 400, 4)")
    if len(sizes) < 2:
        raise ValueError(f"sizes must list at least two positive integers (input and output), got {sizes!r}")
    checks.choice("activation", activation, ACTIVATIONS)
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers[:-1])


class ConvEncoder(nn.Module):
    """Two stride-2 convolutions and a linear layer: images -> the 2 d_z numbers [mu, logvar] of q(z|x).

    Shapes, for the default ``channels=(16, 32)`` and 28 x 28 images:

        x (B, 784) or (B, 1, 28, 28) -> (B, 16, 14, 14) -> (B, 32, 7, 7) -> flatten (B, 1568) -> (B, 2 d_z)

    Each convolution has a 4 x 4 kernel, stride 2 and padding 1, so it halves the height and the width. The
    ``VAE`` flattens x before calling its encoder, so a flat (B, C*H*W) input is reshaped to the image here.
    """

    def __init__(self, latent_dim: int, channels=(16, 32), input_shape=(1, 28, 28), activation: str = "relu"):
        super().__init__()
        latent_dim = checks.integer("latent_dim", latent_dim)
        channels = checks.sizes("channels", channels, "(16, 32)")
        self.input_shape = _image_shape(input_shape, len(channels))
        checks.choice("activation", activation, ACTIVATIONS)
        layers, n_in = [], self.input_shape[0]
        for n_out in channels:
            layers += [nn.Conv2d(n_in, n_out, kernel_size=4, stride=2, padding=1), ACTIVATIONS[activation]()]
            n_in = n_out
        h, w = (side // 2 ** len(channels) for side in self.input_shape[1:])
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(n_in * h * w, 2 * latent_dim)

    def forward(self, x):
        # (B, C*H*W) or (B, C, H, W) -> (B, C, H, W): the convolutions need the image's layout back
        return self.out(self.features(x.reshape(len(x), *self.input_shape)))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: codes z -> the 784 logits of p(x|z), one per pixel.

    Shapes, for the default ``channels=(32, 16)`` and 28 x 28 images:

        z (..., d_z) -> linear (N, 32 * 7 * 7) -> (N, 32, 7, 7) -> (N, 16, 14, 14) -> (N, 1, 28, 28) -> (..., 784)

    where N is the product of the leading dimensions (k draws of B codes, (k, B, d_z), say: importance
    sampling decodes them all at once). Each transposed convolution (4 x 4 kernel, stride 2, padding 1)
    doubles the height and the width; the last has no activation, since its outputs are logits.
    """

    def __init__(self, latent_dim: int, channels=(32, 16), input_shape=(1, 28, 28), activation: str = "relu"):
        super().__init__()
        latent_dim = checks.integer("latent_dim", latent_dim)
        channels = checks.sizes("channels", channels, "(32, 16)")
        self.input_shape = _image_shape(input_shape, len(channels))
        checks.choice("activation", activation, ACTIVATIONS)
        self.start = (channels[0], *(side // 2 ** len(channels) for side in self.input_shape[1:]))
        self.latent_dim = latent_dim
        layers = [nn.Linear(latent_dim, math.prod(self.start)), ACTIVATIONS[activation](), nn.Unflatten(1, self.start)]
        for n_in, n_out in zip(channels, (*channels[1:], self.input_shape[0])):
            layers += [nn.ConvTranspose2d(n_in, n_out, kernel_size=4, stride=2, padding=1), ACTIVATIONS[activation]()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, z):
        # the convolutions take one batch dimension: fold the leading ones (k, B, ...) into it and back
        lead = z.shape[:-1]
        return self.net(z.reshape(-1, self.latent_dim)).reshape(*lead, math.prod(self.input_shape))


def _image_shape(input_shape, n_halvings: int) -> tuple[int, int, int]:
    """(C, H, W), with H and W divisible by 2 ** n_halvings (each stride-2 layer halves them exactly)."""
    shape = checks.sizes("input_shape", input_shape, "(1, 28, 28)")
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (channels, height, width) such as (1, 28, 28), got {shape!r}")
    if any(side % 2 ** n_halvings for side in shape[1:]):
        raise ValueError(f"input_shape's height and width must be divisible by 2 ** {n_halvings} = "
                         f"{2 ** n_halvings} (one halving per entry of channels), got {shape!r}")
    return shape
