"""The likelihood p(x|z): how a decoder's output (..., C*H*W) becomes a distribution over images.

    Bernoulli:  p(x|z) = prod_pixels sigmoid(l)^x (1 - sigmoid(l))^(1-x), with the decoder's output as
                the logits l; for binary (or grey, in [0, 1]) images.
    Gaussian:   p(x|z) = prod_pixels N(x; m, sigma^2), with the decoder's output as the mean m and one
                sigma for all pixels, learned (``x_logvar``) unless fixed.

Each returns a distribution with the decoder's batch shape and event shape ``input_shape``, so
``log_prob(x)`` sums over the pixels and ``.mean`` is an image.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal

from . import checks

class BernoulliLikelihood(nn.Module):
    """p(x|z) = prod_pixels Bernoulli(x; logits = decoder output); images must lie in [0, 1]."""

    unit_interval = True

    def __init__(self, input_shape):
        super().__init__()
        self.input_shape = tuple(input_shape)

    def forward(self, out: torch.Tensor) -> Independent:
        logits = out.view(*out.shape[:-1], *self.input_shape)
        # logits, not probabilities: log-sigmoid stays finite where sigmoid would round to 0 or 1.
        # No argument validation here: a NaN reaches the loss check, which names the step and the term.
        return Independent(Bernoulli(logits=logits, validate_args=False), len(self.input_shape))


class GaussianLikelihood(nn.Module):
    """p(x|z) = N(x; decoder output, sigma^2 I) with sigma^2 = exp(x_logvar), learned unless ``std`` is given."""

    unit_interval = False

    def __init__(self, input_shape, std: float | None = None):
        super().__init__()
        if std is not None and not ((checks.is_int(std) or isinstance(std, (float, np.floating)))
                                    and math.isfinite(std) and std > 0):
            raise ValueError(f"gaussian_std must be None (learned) or a positive finite number, got {std!r}")
        self.input_shape = tuple(input_shape)
        x_logvar = torch.tensor(2 * math.log(std) if std else 0.0)
        self.x_logvar = nn.Parameter(x_logvar, requires_grad=std is None)

    def forward(self, out: torch.Tensor) -> Independent:
        mean = out.view(*out.shape[:-1], *self.input_shape)
        return Independent(Normal(mean, torch.exp(0.5 * self.x_logvar), validate_args=False), len(self.input_shape))


LIKELIHOODS = {"bernoulli": BernoulliLikelihood, "gaussian": GaussianLikelihood}
