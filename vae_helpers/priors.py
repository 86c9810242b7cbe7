"""The prior p(z) of a latent-variable model, as a module whose ``forward()`` returns the distribution.

A module rather than a fixed distribution, so that a prior with parameters (a learned mixture, the
VampPrior) plugs into the same ``VAE`` and trains with it; it moves with the model between devices.
"""
from __future__ import annotations

import torch
from torch import nn

from . import checks
from .divergences import DiagonalNormal


class StandardNormal(nn.Module):
    """p(z) = N(0, I_D), the prior of the standard VAE: a distribution over z of shape (D,)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        latent_dim = checks.integer("latent_dim", latent_dim)
        # mu = 0 and logvar = 0; a buffer, so it follows the model to its device and dtype
        self.register_buffer("zeros", torch.zeros(latent_dim), persistent=False)

    def forward(self) -> DiagonalNormal:
        # no argument validation: a NaN z (a diverged encoder) reaches the loss check, which names the step
        # and the term, instead of torch's complaint about the value's support
        return DiagonalNormal(self.zeros, self.zeros, validate_args=False)
