"""The networks inside a VAE: the maps from x to q(z|x)'s parameters and from z to p(x|z)'s.

A network only computes numbers; the distributions are made from them elsewhere (the encoder's output
becomes q in ``VAE.encode``, the decoder's becomes p(x|z) in a likelihood from ``likelihoods``). Part I
uses one kind, the multilayer perceptron of the PyTorch examples' VAE.
"""
from __future__ import annotations

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
