"""Bayes' rule by enumeration: a latent-variable model small enough to write out as tables.

A latent z takes one of K values and an observation x one of M values. The model is two tables,

    prior        p(z)      a vector of K probabilities
    likelihood   p(x|z)    a (K, M) table whose row z is a distribution over x,

and everything else follows by sums over z (Bayes, 1763; Laplace, 1774):

    joint        p(z, x) = p(z) p(x|z)                         (K, M)
    evidence     p(x)    = sum_z p(z) p(x|z)                   (M,)
    posterior    p(z|x)  = p(z) p(x|z) / p(x)                  (K,) for each x

It has the same ``prior``/``decode``/``sample`` interface as
:class:`~vae_helpers.linear_gaussian.LinearGaussian` and the VAE, with ``torch.distributions.Categorical``
in place of Gaussians.
"""
from __future__ import annotations

import torch
from torch.distributions import Categorical


def _check_probabilities(name: str, t, dim: int) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.dim() != dim:
        shape = "(K,)" if dim == 1 else "(K, M)"
        got = f"shape {tuple(t.shape)}, dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
        raise ValueError(f"{name} must be a floating-point tensor of shape {shape}, got {got}")
    if (t < 0).any() or not torch.isfinite(t).all():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    sums = t.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        what = "its entries" if dim == 1 else "each row (a distribution over x for one z)"
        raise ValueError(f"{name}: {what} must sum to 1, got sums {sums.tolist()}")
    return t


class DiscreteLatentModel:
    """p(z) = Categorical(``prior_probs``), p(x|z) = Categorical(``likelihood[z]``).

    Args:
        prior_probs: (K,) probabilities of the K values of z.
        likelihood: (K, M) table, ``likelihood[z, x]`` = p(x|z); each row sums to 1.
    """

    def __init__(self, prior_probs: torch.Tensor, likelihood: torch.Tensor):
        _check_probabilities("prior_probs", prior_probs, 1)
        _check_probabilities("likelihood", likelihood, 2)
        if likelihood.shape[0] != prior_probs.shape[0]:
            raise ValueError(f"likelihood must have one row per value of z ({prior_probs.shape[0]}), "
                             f"got {likelihood.shape[0]} rows")
        self.prior_probs, self.likelihood = prior_probs, likelihood.to(prior_probs.dtype)
        self.z_size, self.x_size = likelihood.shape

    def _check_x(self, x) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.is_floating_point() or x.dtype == torch.bool or (x < 0).any() or (x >= self.x_size).any():
            raise ValueError(f"x must hold integers in 0..{self.x_size - 1}, got {x.tolist()}")
        return x

    @property
    def prior(self) -> Categorical:
        """p(z)."""
        return Categorical(probs=self.prior_probs)

    def decode(self, z) -> Categorical:
        """The likelihood p(x|z) for integer z of any shape: a Categorical with batch shape z.shape."""
        z = torch.as_tensor(z)
        if z.is_floating_point() or (z < 0).any() or (z >= self.z_size).any():
            raise ValueError(f"z must hold integers in 0..{self.z_size - 1}, got {z.tolist()}")
        return Categorical(probs=self.likelihood[z])

    def joint(self) -> torch.Tensor:
        """p(z, x) = p(z) p(x|z) for every pair: (K, M), summing to 1."""
        return self.prior_probs.unsqueeze(-1) * self.likelihood

    def evidence(self) -> torch.Tensor:
        """p(x) = sum_z p(z, x) for every x: (M,)."""
        return self.joint().sum(0)

    def log_evidence(self, x) -> torch.Tensor:
        """log p(x) for integer x of any shape."""
        return self.evidence().log()[self._check_x(x)]

    def posterior(self, x) -> Categorical:
        """p(z|x) = p(z, x) / p(x) for integer x of any shape: a Categorical over z, batch shape x.shape."""
        x = self._check_x(x)
        evidence = self.evidence()[x]
        if (evidence == 0).any():
            raise ValueError("x includes a value with p(x) = 0, for which p(z|x) is undefined")
        return Categorical(probs=self.joint()[:, x].movedim(0, -1) / evidence.unsqueeze(-1))

    def sample(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The generative story, n times: z ~ p(z), then x ~ p(x|z). Returns (z (n,), x (n,)), integers."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.multinomial(self.prior_probs, n, replacement=True, generator=g)
        x = torch.multinomial(self.likelihood[z], 1, generator=g).squeeze(-1)
        return z, x
