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

from . import checks


class DiscreteLatentModel:
    """p(z) = Categorical(``prior_probs``), p(x|z) = Categorical(``likelihood[z]``).

    Args:
        prior_probs: (K,) probabilities of the K values of z.
        likelihood: (K, M) table, ``likelihood[z, x]`` = p(x|z); each row sums to 1. It is converted to
            prior_probs' dtype.
    """

    def __init__(self, prior_probs: torch.Tensor, likelihood: torch.Tensor):
        _check_probabilities("prior_probs", prior_probs, 1)
        _check_probabilities("likelihood", likelihood, 2)
        if likelihood.shape[0] != prior_probs.shape[0]:
            raise ValueError(f"likelihood must have one row per value of z ({prior_probs.shape[0]}), "
                             f"got {likelihood.shape[0]} rows")
        self.prior_probs, self.likelihood = prior_probs, likelihood.to(prior_probs.dtype)
        self.z_size, self.x_size = likelihood.shape

    @property
    def prior(self) -> Categorical:
        """p(z)."""
        return Categorical(probs=self.prior_probs)

    def decode(self, z) -> Categorical:
        """The likelihood p(x|z) for integer z of any shape: a Categorical with batch shape z.shape."""
        return Categorical(probs=self.likelihood[_check_values("z", z, self.z_size)])

    def joint(self) -> torch.Tensor:
        """p(z, x) = p(z) p(x|z) for every pair: (K, M), summing to 1."""
        return self.prior_probs.unsqueeze(-1) * self.likelihood

    def evidence(self) -> torch.Tensor:
        """p(x) = sum_z p(z, x) for every x: (M,)."""
        return self.joint().sum(0)

    def log_evidence(self, x) -> torch.Tensor:
        """log p(x) for integer x of any shape."""
        return self.evidence().log()[_check_values("x", x, self.x_size)]

    def posterior(self, x) -> Categorical:
        """p(z|x) = p(z, x) / p(x) for integer x of any shape: a Categorical over z, batch shape x.shape."""
        x = _check_values("x", x, self.x_size)
        evidence = self.evidence()[x]
        if (evidence == 0).any():
            raise ValueError("x includes a value with p(x) = 0, for which p(z|x) is undefined")
        return Categorical(probs=self.joint()[:, x].movedim(0, -1) / evidence.unsqueeze(-1))

    def sample(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The generative story, n times: z ~ p(z), then x ~ p(x|z). Returns (z (n,), x (n,)), integers."""
        checks.integer("n", n)
        if seed is not None:
            seed = checks.seed("seed", seed)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.multinomial(self.prior_probs, n, replacement=True, generator=g)
        x = torch.multinomial(self.likelihood[z], 1, generator=g).squeeze(-1)
        return z, x


# --- argument checks -----------------------------------------------------------------------------------


def _check_probabilities(name: str, t, dim: int) -> torch.Tensor:
    """A table of probabilities: a floating-point tensor of ``dim`` dimensions whose last sums to 1."""
    shape = "(K,)" if dim == 1 else "(K, M)"
    checks.tensor(name, t, shape)
    if t.dim() != dim:
        raise ValueError(f"{name} must be a floating-point tensor of shape {shape}, got shape {tuple(t.shape)}")
    if (t < 0).any() or not torch.isfinite(t).all():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    sums = t.sum(-1)
    if not torch.allclose(sums, torch.ones_like(sums), atol=1e-6):
        what = "its entries" if dim == 1 else "each row (a distribution over x for one z)"
        raise ValueError(f"{name}: {what} must sum to 1, got sums {sums.tolist()}")
    return t


def _check_values(name: str, values, size: int) -> torch.Tensor:
    """``values`` (an int, a sequence or a tensor of ints) as an integer tensor, each in 0..size-1."""
    expected = f"{name} must hold integers in 0..{size - 1}"
    try:
        t = torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"{expected} (an int, a list or a tensor of ints), got {checks.show(values)}") from None
    small = t.numel() <= 10  # small enough to show every value
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        got = t.tolist() if small else f"a tensor of shape {tuple(t.shape)}"
        raise ValueError(f"{expected}, got {got} of dtype {t.dtype}")
    if t.numel() and ((t < 0).any() or (t >= size).any()):
        got = t.tolist() if small else f"values in {t.min().item()}..{t.max().item()}"
        raise ValueError(f"{expected}, got {got}")
    return t
