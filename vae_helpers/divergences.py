"""KL divergences between diagonal Gaussians: closed forms and a Monte Carlo estimate.

A diagonal Gaussian is given by its mean ``mu`` and log-variance ``logvar`` (both (..., D)); every
function sums over the last dimension and returns shape (...,).
"""
from __future__ import annotations

import torch
from torch.distributions import Distribution


def _check_pair(mu: torch.Tensor, logvar: torch.Tensor, names=("mu", "logvar")) -> None:
    for name, t in zip(names, (mu, logvar)):
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got {type(t).__name__}"
                            + (f" of dtype {t.dtype}" if isinstance(t, torch.Tensor) else ""))
        if t.dim() < 1:
            raise ValueError(f"{name} must have at least one dimension (the latent dimension D)")
    if mu.shape != logvar.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(mu.shape)} "
                         f"and {tuple(logvar.shape)}")


def kl_normal_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j).

    The VAE's rate term for one encoding. (..., D) -> (...,).
    """
    _check_pair(mu, logvar)
    # expm1 keeps exp(l) - 1 - l accurate when l is near 0, where the three terms nearly cancel
    return 0.5 * (torch.expm1(logvar) - logvar + mu.pow(2)).sum(-1)


def kl_normal_normal(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor,
                     logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p))).

    = 1/2 sum_j (exp(logvar_q - logvar_p) + (mu_q - mu_p)^2 / exp(logvar_p) - 1 - (logvar_q - logvar_p)).
    Shapes broadcast; the last dimension is summed.
    """
    _check_pair(mu_q, logvar_q, ("mu_q", "logvar_q"))
    _check_pair(mu_p, logvar_p, ("mu_p", "logvar_p"))
    d = logvar_q - logvar_p
    return 0.5 * (torch.expm1(d) - d + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p)).sum(-1)


def kl_monte_carlo(q: Distribution, p: Distribution, num_samples: int = 1000) -> torch.Tensor:
    """KL(q || p) ~= 1/S sum_s [log q(z_s) - log p(z_s)], z_s ~ q.

    Unbiased for any pair of distributions with ``log_prob``; ``rsample`` is used where q has it, so the
    estimate carries gradients. Returns q's batch shape.
    """
    for name, d in (("q", q), ("p", p)):
        if not isinstance(d, Distribution):
            raise TypeError(f"{name} must be a torch.distributions.Distribution, got {type(d).__name__}")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    z = q.rsample((num_samples,)) if q.has_rsample else q.sample((num_samples,))
    return (q.log_prob(z) - p.log_prob(z)).mean(0)
