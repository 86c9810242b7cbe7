"""A normalizing flow for the encoding q_phi(z|x): affine coupling layers (Dinh et al., 2017).

Affine coupling, because its inverse is as exact and as cheap as its forward pass, so q_phi(z|x) has a
``log_prob`` at any z, not only at its own draws (a planar flow has no inverse in closed form; an
inverse autoregressive flow inverts one coordinate at a time).

A draw from q_phi(z|x) starts as the encoder's diagonal Gaussian, z_0 = mu + sigma * eps, and passes
through L layers z_l = f_l(z_{l-1}). Each layer keeps the coordinates where its mask m is 1 and scales
and shifts the others by amounts computed from the kept ones and from h, the encoder's output for x:

    f(z) = m * z + (1 - m) * (z * exp(s) + t),      (s, t) = NN([m * z, h]),  both (..., D), zero where m = 1.

Its Jacobian is triangular once the kept coordinates are listed first, with 1 on the diagonal where m = 1
and exp(s_j) where m = 0, so

    log |det df/dz| = sum_j s_j,     and by the change of variables
    log q_phi(z_L|x) = log N(z_0; mu, diag sigma^2) - sum_l log |det df_l/dz_{l-1}|.

The inverse needs the same s and t, which depend only on the kept coordinates m * z = m * f(z):
z = m * y + (1 - m) * (y - t) * exp(-s). The masks alternate between layers, so every coordinate is
changed by every second layer.

The flow is amortized: s and t depend on x through h, so each image gets its own bending of its
Gaussian, as the shape of p_theta(z|x) differs from one x to the next; a global flow (one f for every x)
would bend every encoding alike.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import TransformedDistribution, constraints
from torch.distributions.transforms import Transform

from . import checks
from .divergences import DiagonalNormal
from .networks import mlp


class AffineCoupling(Transform):
    """One coupling layer f(z) = m * z + (1 - m) * (z * exp(s) + t), (s, t) = conditioner([m * z, h]).

    ``mask`` (D,) of 0s and 1s; ``conditioner`` maps (..., D + C) to (..., 2D) = [raw s, t]; ``context``
    h (..., C), broadcast against the leading dimensions of z (a sample dimension in front of the batch).
    ``cache_size=1``: the inverse of the value just computed is the input that gave it, exactly.
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, mask: torch.Tensor, conditioner: nn.Module, context: torch.Tensor, cache_size: int = 1):
        super().__init__(cache_size=cache_size)
        self.mask, self.conditioner, self.context = mask, conditioner, context

    def scale_shift(self, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(s, t), each (..., D) and 0 where the mask is 1, from the kept coordinates m * z (..., D)."""
        h = self.context.expand(*kept.shape[:-1], self.context.shape[-1])
        raw_s, t = self.conditioner(torch.cat([kept, h], dim=-1)).chunk(2, dim=-1)
        changed = 1 - self.mask
        # tanh keeps each layer's log-scale in (-1, 1): one layer can stretch or shrink a coordinate by at
        # most a factor e, so a few untrained layers cannot send q's scale to 0 or infinity
        return changed * torch.tanh(raw_s), changed * t

    def _call(self, z: torch.Tensor) -> torch.Tensor:
        s, t = self.scale_shift(self.mask * z)
        return z * torch.exp(s) + t  # s = t = 0 where m = 1: those coordinates pass unchanged

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self.scale_shift(self.mask * y)  # m * y = m * z: the same s and t as on the way forward
        return (y - t) * torch.exp(-s)

    def log_abs_det_jacobian(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        s, _ = self.scale_shift(self.mask * z)
        return s.sum(-1)


def alternating_masks(latent_dim: int, num_layers: int) -> torch.Tensor:
    """(L, D) masks: layer l keeps the coordinates j with j + l even, so consecutive layers swap roles."""
    j, layer = torch.arange(latent_dim), torch.arange(num_layers).unsqueeze(1)
    return ((j + layer) % 2 == 0).float()


class FlowEncoding(nn.Module):
    """The encoder's output h (B, C) -> q_phi(z|x), a ``TransformedDistribution``: the diagonal Gaussian
    N(mu, diag exp(logvar)), [mu, logvar] = h[:, :2D], through ``num_layers`` affine coupling layers
    whose scales and shifts see h. Batch shape (B,), event shape (D,); ``rsample`` and ``log_prob``.

    ``context_dim`` C is the encoder's output width: 2D for the course's encoder (h is then [mu, logvar]),
    more for an encoder that passes extra features of x to the flow. Each layer's conditioner is an MLP
    (D + C, *hidden, 2D) whose last layer starts at zero, so every layer starts as the identity and q
    starts as the encoder's diagonal Gaussian.
    """

    def __init__(self, latent_dim: int, num_layers: int = 4, hidden=(64,), context_dim: int | None = None,
                 activation: str = "tanh"):
        super().__init__()
        self.latent_dim = checks.integer("latent_dim", latent_dim, minimum=2)  # a layer keeps half of z fixed
        num_layers = checks.integer("num_layers", num_layers)
        hidden = checks.sizes("hidden", hidden, "(64,)", allow_empty=True)
        if context_dim is None:
            context_dim = 2 * latent_dim
        self.context_dim = checks.integer("context_dim", context_dim, minimum=2 * latent_dim)
        self.conditioners = nn.ModuleList(mlp([latent_dim + context_dim, *hidden, 2 * latent_dim], activation)
                                          for _ in range(num_layers))
        for net in self.conditioners:
            nn.init.zeros_(net[-1].weight)
            nn.init.zeros_(net[-1].bias)
        self.register_buffer("masks", alternating_masks(latent_dim, num_layers), persistent=False)

    def transforms(self, h: torch.Tensor) -> list[AffineCoupling]:
        """The coupling layers for context h (..., C), in the order a draw passes through them."""
        return [AffineCoupling(mask, net, h) for mask, net in zip(self.masks, self.conditioners)]

    def forward(self, h: torch.Tensor) -> TransformedDistribution:
        checks.tensor("h", h, f"(B, {self.context_dim})", min_dim=1)
        if h.shape[-1] != self.context_dim:
            raise ValueError(f"h, the encoder's output, must have shape (B, {self.context_dim}) = [mu, logvar"
                             f"{', features' if self.context_dim > 2 * self.latent_dim else ''}], "
                             f"got {tuple(h.shape)}")
        d = self.latent_dim
        # no argument validation, as in VAE.encode: a NaN scale reaches the loss check, which names the term
        base = DiagonalNormal(h[..., :d], h[..., d:2 * d], validate_args=False)
        return TransformedDistribution(base, self.transforms(h), validate_args=False)
