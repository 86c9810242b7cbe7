"""Statistics of the latent codes over a data set: which units are used, and what the KL term pays for.

Encode a data set x_1..x_N to q(z|x_n) = N(mu_n, diag exp(logvar_n)) with :func:`encode_dataset`; mu and
logvar are then (N, D), and with the prior p(z) = N(0, I):

- activity of unit j:  A_j = Cov_x(E_q[z_j]) = Var_n(mu_nj); the unit is *active* when A_j > 0.01
  (Burda et al., 2016). An inactive unit says the same thing about every x.
- KL per dimension:  (1/N) sum_n KL(q(z_j|x_n) || N(0, 1)); summed over j it is the rate.
- the aggregate posterior  q(z) = (1/N) sum_n q(z|x_n), a mixture of N Gaussians, with moments
      E[z] = mean_n mu_n,    Cov[z] = Cov_n(mu_n) + mean_n diag exp(logvar_n)   (law of total covariance).
- ELBO surgery (Hoffman & Johnson, 2016): with x uniform over the N points and z ~ q(z|x),
      (1/N) sum_n KL(q(z|x_n) || p(z))  =  I(x; z)  +  KL(q(z) || p(z)),
  where I(x; z) = E[log q(z|x) - log q(z)] is the mutual information of the data/encoder joint. It is at
  most log N: N data points cannot carry more than log N nats.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from . import checks
from .divergences import kl_terms


@torch.no_grad()
def encode_batches(model, x: torch.Tensor, batch_size: int = 1000) -> list:
    """``model.encode`` on x (N, ...), ``batch_size`` examples at a time, in evaluation mode and without
    gradients; returns the list of outputs (points or distributions q(z|x)), one per batch."""
    checks.tensor("x", x, "(N, ...)", min_dim=2, nonempty=True)
    checks.integer("batch_size", batch_size)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        return [model.encode(xb) for xb in x.split(batch_size)]
    finally:
        if was_training:
            model.train()


def encode_dataset(model, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(mu, logvar) of q(z|x_n) for every x_n, encoded ``batch_size`` at a time: (N, ...) -> two (N, D).

    ``model.encode(x)`` must return a diagonal Gaussian (a distribution with ``mean`` and ``variance``).
    """
    qs = encode_batches(model, x, batch_size)
    return torch.cat([q.mean for q in qs]), torch.cat([q.variance.log() for q in qs])


def unit_activity(mu: torch.Tensor) -> torch.Tensor:
    """A_j = Var_n(mu_nj), how much the code's mean in dimension j moves with x: (N, D) -> (D,)."""
    checks.tensor("mu", mu, "(N, D)")
    if mu.dim() != 2 or len(mu) < 2:
        raise ValueError(f"mu must be a floating-point tensor of shape (N, D) with N >= 2, got {tuple(mu.shape)}")
    return mu.var(0)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of units whose activity Var_n(mu_nj) exceeds ``threshold`` (Burda et al., 2016)."""
    checks.number("threshold", threshold, minimum=0)
    return int((unit_activity(mu) > threshold).sum())


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_n KL(N(mu_nj, exp(logvar_nj)) || N(0, 1)) for each j: two (N, D) -> (D,). Sums to the rate."""
    _check_codes(mu, logvar)
    zeros = torch.zeros_like(mu)  # the prior's mean and log-variance
    return kl_terms(mu, logvar, zeros, zeros).mean(0)


def aggregate_posterior(mu: torch.Tensor, logvar: torch.Tensor) -> MixtureSameFamily:
    """q(z) = (1/N) sum_n N(z; mu_n, diag exp(logvar_n)) as a distribution with event shape (D,).

    Its ``log_prob`` compares every z with all N components at once; for large N use
    :func:`log_aggregate_density`, which works in batches.
    """
    _check_codes(mu, logvar)
    components = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    return MixtureSameFamily(Categorical(logits=torch.zeros(len(mu), dtype=mu.dtype)), components)


def aggregate_moments(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of q(z): mean_n mu_n and Cov_n(mu_n) + mean_n diag exp(logvar_n)."""
    _check_codes(mu, logvar)
    mean = mu.mean(0)
    centred = mu - mean
    # the mixture's covariance: the spread of the means (divided by N, as the mixture weighs each 1/N)
    # plus the average spread within a component
    return mean, centred.T @ centred / len(mu) + torch.diag(logvar.exp().mean(0))


def log_aggregate_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          batch_size: int = 1024) -> torch.Tensor:
    """log q(z) = logsumexp_n log N(z; mu_n, diag exp(logvar_n)) - log N for z (M, D) -> (M,), in float64.

    Expanding the square, sum_j (z_j - mu_nj)^2 / s_nj^2 = z^2 @ (1/s^2)^T - 2 z @ (mu/s^2)^T + sum_j mu_nj^2/s_nj^2,
    so each batch of z meets all N components in two matrix products of size (batch, N).
    """
    _check_codes(mu, logvar)
    checks.integer("batch_size", batch_size)
    checks.tensor("z", z, f"(M, {mu.shape[1]})")
    if z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must be a tensor of shape (M, {mu.shape[1]}), got {tuple(z.shape)}")
    return _log_aggregate_density(z, mu, logvar, batch_size)


def _log_aggregate_density(z, mu, logvar, batch_size: int) -> torch.Tensor:
    mu, logvar, z = mu.double(), logvar.double(), z.double()
    precision = torch.exp(-logvar)                                                   # (N, D)
    const = (mu.pow(2) * precision + logvar).sum(1) + mu.shape[1] * math.log(2 * math.pi)  # (N,)
    parts = []
    for zb in z.split(batch_size):
        square = zb.pow(2) @ precision.T - 2 * zb @ (mu * precision).T + const     # (batch, N)
        parts.append(torch.logsumexp(-0.5 * square, dim=1))
    return torch.cat(parts) - math.log(len(mu))


@dataclass
class ELBOSurgery:
    """The average KL term split as E_x KL(q(z|x) || p(z)) = I(x; z) + KL(q(z) || p(z)), in nats."""

    average_kl: float          #: (1/N) sum_n KL(q(z|x_n) || p(z)), in closed form: the rate
    mutual_information: float  #: I(x; z), Monte Carlo; at most log_n
    marginal_kl: float         #: KL(q(z) || p(z)), Monte Carlo
    std_error: float           #: standard error of mutual_information + marginal_kl as an estimate of average_kl
    log_n: float               #: log N, the most information N data points can carry
    n: int                     #: number of data points N

    def __str__(self) -> str:
        return (f"E_x KL(q(z|x)||p(z)) = {self.average_kl:.3f} nats; I(x;z) = {self.mutual_information:.3f} "
                f"(<= log N = {self.log_n:.2f}) + KL(q(z)||p(z)) = {self.marginal_kl:.3f}, "
                f"sum {self.mutual_information + self.marginal_kl:.3f} +- {self.std_error:.3f}")


@torch.no_grad()
def elbo_surgery(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int = 1, batch_size: int = 1024,
                 seed: int | None = None) -> ELBOSurgery:
    """Split the average KL into I(x; z) + KL(q(z) || p(z)) by Monte Carlo (Hoffman & Johnson, 2016).

    For every n, ``num_samples`` draws z ~ q(z|x_n), and with log q(z) from :func:`log_aggregate_density`
    (exact for the N-component mixture):

        I(x; z)         ~= mean [log q(z|x_n) - log q(z)]
        KL(q(z) || p(z)) ~= mean [log q(z) - log p(z)]

    Both are unbiased; their sum estimates the closed-form average KL, to within ``std_error``.
    """
    _check_codes(mu, logvar)
    checks.integer("num_samples", num_samples)
    checks.integer("batch_size", batch_size)
    if seed is not None:
        checks.integer("seed", seed, minimum=0)
    mu, logvar = mu.double(), logvar.double()
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    eps = torch.randn((num_samples, *mu.shape), generator=g, dtype=mu.dtype)
    z = mu + torch.exp(0.5 * logvar) * eps                                    # (S, N, D)
    q_zx = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    prior = Independent(Normal(torch.zeros_like(mu[0]), torch.ones_like(mu[0])), 1)
    log_q_zx, log_p = q_zx.log_prob(z), prior.log_prob(z)                     # (S, N)
    log_q = _log_aggregate_density(z.reshape(-1, mu.shape[1]), mu, logvar, batch_size).view(num_samples, -1)
    kl = kl_terms(mu, logvar, torch.zeros_like(mu), torch.zeros_like(mu)).sum(-1)  # (N,), KL(q(z|x_n) || p(z))
    # per draw, (log q(z|x) - log p(z)) - KL_n has mean zero: its spread sets the error of the sum
    residual = (log_q_zx - log_p - kl).mean(0)
    return ELBOSurgery(average_kl=kl.mean().item(), mutual_information=(log_q_zx - log_q).mean().item(),
                       marginal_kl=(log_q - log_p).mean().item(),
                       std_error=(residual.std() / math.sqrt(len(mu))).item() if len(mu) > 1 else float("nan"),
                       log_n=math.log(len(mu)), n=len(mu))


# --- argument checks -----------------------------------------------------------------------------------


def _check_codes(mu, logvar) -> None:
    """mu and logvar of N encodings, two floating-point tensors (N, D) with N >= 1."""
    checks.tensor("mu", mu, "(N, D)")
    checks.tensor("logvar", logvar, "(N, D)")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if mu.dim() != 2 or len(mu) == 0:
        raise ValueError(f"mu and logvar must have shape (N, D) with N >= 1, got {tuple(mu.shape)}")
