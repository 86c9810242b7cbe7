"""Statistics of the latent codes over a data set: which units are used, and what the KL term pays for.

Encode a data set x_1..x_N to the encodings q_phi(z|x_n) = N(mu_n, diag exp(logvar_n)) with
:func:`encode_dataset`; mu and logvar are then (N, d_z), and with the prior p(z) = N(0, I):

- activity of unit j:  A_j = Cov_x(E_q[z_j]) = Var_n(mu_nj); the unit is *active* when A_j > 0.01
  (Burda et al., 2016). An inactive unit says the same thing about every x.
- KL per dimension:  (1/N) sum_n KL(q_phi(z_j|x_n) || N(0, 1)); summed over j it is the rate R.
- the aggregate posterior  qbar(z) = (1/N) sum_n q_phi(z|x_n), a mixture of N Gaussians, with moments
      E[z] = mean_n mu_n,    Cov[z] = Cov_n(mu_n) + mean_n diag exp(logvar_n)   (law of total covariance).
- ELBO surgery (Hoffman & Johnson, 2016): with x uniform over the N points and z ~ q_phi(z|x), for any prior
  p(z) (N(0, I) by default; a learned one, lesson 13, with ``prior=``),
      (1/N) sum_n KL(q_phi(z|x_n) || p(z))  =  I(x; z)  +  KL(qbar(z) || p(z)),
  where I(x; z) = E[log q_phi(z|x) - log qbar(z)] is the mutual information of the data/encoder joint. It is
  at most log N: N data points cannot carry more than log N nats. For a data set drawn from a larger
  population it is, in expectation, a lower bound on the population's I(x; z) (the InfoNCE bound), so it
  grows with N, and KL(qbar(z) || p(z)) shrinks by as much.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Categorical, Distribution, Independent, MixtureSameFamily, Normal

from . import checks
from .divergences import kl_terms


@torch.no_grad()
def encode_batches(model, x: torch.Tensor, batch_size: int = 1000) -> list:
    """``model.encode`` on x (N, ...), ``batch_size`` examples at a time, in evaluation mode and without
    gradients; returns the list of outputs (points or encodings q_phi(z|x)), one per batch."""
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
    """(mu, logvar) of the encoding q_phi(z|x_n) of every x_n, ``batch_size`` at a time: (N, ...) -> two (N, d_z).

    ``model.encode(x)`` must return a diagonal Gaussian (a distribution with ``mean`` and ``variance``).
    """
    qs = encode_batches(model, x, batch_size)
    return torch.cat([q.mean for q in qs]), torch.cat([q.variance.log() for q in qs])


def unit_activity(mu: torch.Tensor) -> torch.Tensor:
    """A_j = Var_n(mu_nj), how much the code's mean in dimension j moves with x: (N, d_z) -> (d_z,)."""
    checks.tensor("mu", mu, "(N, d_z)")
    if mu.dim() != 2 or len(mu) < 2:
        raise ValueError(f"mu must be a floating-point tensor of shape (N, d_z) with N >= 2, got {tuple(mu.shape)}")
    return mu.var(0)


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> int:
    """The number of units whose activity Var_n(mu_nj) exceeds ``threshold`` (Burda et al., 2016)."""
    checks.number("threshold", threshold, minimum=0)
    return int((unit_activity(mu) > threshold).sum())


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(1/N) sum_n KL(N(mu_nj, exp(logvar_nj)) || N(0, 1)) for each j: two (N, d_z) -> (d_z,). Sums to the rate."""
    _check_codes(mu, logvar)
    zeros = torch.zeros_like(mu)  # the prior's mean and log-variance
    return kl_terms(mu, logvar, zeros, zeros).mean(0)


def aggregate_posterior(mu: torch.Tensor, logvar: torch.Tensor) -> MixtureSameFamily:
    """qbar(z) = (1/N) sum_n N(z; mu_n, diag exp(logvar_n)) as a distribution with event shape (d_z,).

    Its ``log_prob`` compares every z with all N components at once, through torch's own Normal; for
    large N use :func:`log_aggregate_density`, which works in batches.
    """
    _check_codes(mu, logvar)
    components = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    return MixtureSameFamily(Categorical(logits=torch.zeros(len(mu), dtype=mu.dtype)), components)


def aggregate_moments(mu: torch.Tensor, logvar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (d_z,) and covariance (d_z, d_z) of qbar(z): mean_n mu_n and Cov_n(mu_n) + mean_n diag exp(logvar_n)."""
    _check_codes(mu, logvar)
    mean = mu.mean(0)
    centred = mu - mean
    # the mixture's covariance: the spread of the means (divided by N, as the mixture weighs each 1/N)
    # plus the average spread within a component
    return mean, centred.T @ centred / len(mu) + torch.diag(logvar.exp().mean(0))


def log_aggregate_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          batch_size: int = 1024) -> torch.Tensor:
    """log qbar(z) = logsumexp_n log N(z; mu_n, diag exp(logvar_n)) - log N for z (M, d_z) -> (M,), in float64.

    With s_nj^2 = exp(logvar_nj), log N(z; mu_n, .) = -1/2 sum_j [(z_j - mu_nj)^2 / s_nj^2 + logvar_nj + log 2 pi].
    The squares are computed by expanding them, z^2 @ (1/s^2)^T - 2 z @ (mu/s^2)^T + sum_j mu_nj^2/s_nj^2,
    two matrix products of size (batch, N); where a rounding-error bound says that expansion may be off by
    more than 1e-7 nats (narrow encodings, 1/s^2 large, lose digits to cancellation), the pair is computed
    again directly from (z_j - mu_nj)^2 / s_nj^2.
    """
    _check_codes(mu, logvar)
    checks.integer("batch_size", batch_size)
    checks.tensor("z", z, f"(M, {mu.shape[1]})")
    if z.dim() != 2 or z.shape[1] != mu.shape[1]:
        raise ValueError(f"z must be a tensor of shape (M, {mu.shape[1]}), got {tuple(z.shape)}")
    return _log_aggregate_density(z, mu, logvar, batch_size)


#: the largest error, in units of the squared distance, allowed to the expanded squares (1e-7 nats in log qbar)
_SQUARE_TOLERANCE = 2e-7
#: pairs (z, component) computed directly at a time, so that the (pairs, d_z) differences stay small
_DIRECT_PAIRS = 1 << 16


def _log_aggregate_density(z, mu, logvar, batch_size: int) -> torch.Tensor:
    mu, logvar, z = mu.double(), logvar.double(), z.double()
    d_z = mu.shape[1]
    precision = torch.exp(-logvar)                                               # (N, d_z)
    weighted = mu * precision
    mu_term = (mu * weighted).sum(1)                                             # (N,), sum_j mu_nj^2 / s_nj^2
    const = logvar.sum(1) + d_z * math.log(2 * math.pi)                          # (N,)
    # The expansion's rounding error is at most (d_z + 8) ulps of the sum of its terms' magnitudes, and by
    # Cauchy-Schwarz sum_j |z_j mu_nj| / s_nj^2 <= sqrt(z_term * mu_term): a bound without another product.
    ulps = (d_z + 8) * torch.finfo(torch.float64).eps
    parts = []
    for zb in z.split(batch_size):
        z_term = zb.pow(2) @ precision.T                                         # (batch, N)
        square = z_term - 2 * zb @ weighted.T + mu_term
        largest = zb.pow(2).sum(1).max() * precision.max()                      # no z_term exceeds it
        if ulps * (largest.sqrt() + mu_term.max().sqrt()).pow(2) <= _SQUARE_TOLERANCE:
            parts.append(torch.logsumexp(-0.5 * (square + const), dim=1))      # every pair is accurate
            continue
        error_bound = ulps * (z_term.sqrt() + mu_term.sqrt()).pow(2)
        rows, cols = (error_bound > _SQUARE_TOLERANCE).nonzero(as_tuple=True)
        for r, c in zip(rows.split(_DIRECT_PAIRS), cols.split(_DIRECT_PAIRS)):
            square[r, c] = ((zb[r] - mu[c]).pow(2) * precision[c]).sum(1)
        parts.append(torch.logsumexp(-0.5 * (square + const), dim=1))
    return torch.cat(parts) - math.log(len(mu))


@dataclass
class ELBOSurgery:
    """The average KL term split as E_x KL(q_phi(z|x) || p(z)) = I(x; z) + KL(qbar(z) || p(z)), in nats.

    The two parts add up, draw by draw, to the Monte Carlo estimate of the average KL (log qbar(z) cancels),
    so their sum checks only that estimate; ``std_error`` is its error against the closed form.
    """

    average_kl: float          #: (1/N) sum_n KL(q_phi(z|x_n) || p(z)), the rate R: in closed form for a Gaussian
                               #: prior, else Monte Carlo from the same draws (then equal to the sum of the parts)
    mutual_information: float  #: I(x; z), Monte Carlo; at most log_n
    marginal_kl: float         #: KL(qbar(z) || p(z)), Monte Carlo
    std_error: float           #: standard error of mutual_information + marginal_kl as an estimate of average_kl
    log_n: float               #: log N, the most information N data points can carry
    n: int                     #: number of data points N
    mutual_information_se: float = float("nan")  #: standard error of mutual_information over the N draws
    marginal_kl_se: float = float("nan")         #: standard error of marginal_kl over the N draws

    def __str__(self) -> str:
        return (f"E_x KL(q_phi(z|x)||p(z)) = {self.average_kl:.3f} nats; "
                f"I(x;z) = {self.mutual_information:.3f} +- {self.mutual_information_se:.3f} "
                f"(<= log N = {self.log_n:.2f}) + KL(qbar(z)||p(z)) = {self.marginal_kl:.3f} "
                f"+- {self.marginal_kl_se:.3f}; sum {self.mutual_information + self.marginal_kl:.3f} "
                f"+- {self.std_error:.3f}")


@torch.no_grad()
def elbo_surgery(mu: torch.Tensor, logvar: torch.Tensor, num_samples: int = 1, batch_size: int = 1024,
                 seed: int | None = None, num_draws: int | None = None,
                 prior: Distribution | None = None) -> ELBOSurgery:
    """Split the average KL into I(x; z) + KL(qbar(z) || p(z)) by Monte Carlo (Hoffman & Johnson, 2016).

    mu, logvar: (N, d_z), the encodings of N data points. For every n, ``num_samples`` draws
    z ~ q_phi(z|x_n), and with log qbar(z) from :func:`log_aggregate_density` (exact for the N-component mixture):

        I(x; z)          ~= mean [log q_phi(z|x_n) - log qbar(z)]       (at most log N)
        KL(qbar(z) || p(z)) ~= mean [log qbar(z) - log p(z)]

    Both are unbiased for the N-point mixture. With ``num_draws`` = m, only m of the N encodings, chosen
    uniformly at random, are drawn from (each still scored against all N components): the cost falls from
    N^2 to m N pairs, the estimates stay unbiased, and their standard errors grow. Each standard error is
    the spread of the per-example averages over the m drawn examples, divided by sqrt(m): it counts the
    noise of the draws (and, as it also counts how examples differ, errs on the large side), not how the
    estimates move with another or a larger set of N points.

    ``prior``: p(z), a distribution over z with event shape (d_z,), such as a model's ``prior`` (a learned
    mixture or the VampPrior, lesson 13); None is N(0, I). Where torch has no closed form for
    KL(q_phi(z|x_n) || p(z)) (a mixture), ``average_kl`` is the Monte Carlo mean of log q_phi(z|x_n) - log p(z)
    over the same draws, so the two parts add up to it exactly and ``std_error`` is its own standard error.
    """
    _check_codes(mu, logvar)
    checks.integer("num_samples", num_samples)
    checks.integer("batch_size", batch_size)
    if seed is not None:
        seed = checks.seed("seed", seed)
    if num_draws is not None:
        checks.integer("num_draws", num_draws)
        if num_draws > len(mu):
            raise ValueError(f"num_draws must be at most the number of encodings N = {len(mu)}, got {num_draws}")
    if prior is not None:
        _check_prior(prior, mu.shape[1])
    mu, logvar = mu.double(), logvar.double()
    g = torch.Generator().manual_seed(seed) if seed is not None else None
    drawn = slice(None) if num_draws is None else torch.randperm(len(mu), generator=g)[:num_draws]
    mu_d, logvar_d = mu[drawn], logvar[drawn]                                 # the m encodings drawn from
    eps = torch.randn((num_samples, *mu_d.shape), generator=g, dtype=mu.dtype)
    z = mu_d + torch.exp(0.5 * logvar_d) * eps                                # (S, m, d_z)
    q_zx = Independent(Normal(mu_d, torch.exp(0.5 * logvar_d)), 1)
    if prior is None:
        kl = kl_terms(mu, logvar, torch.zeros_like(mu), torch.zeros_like(mu)).sum(-1)  # (N,), KL(q_phi(z|x_n) || p(z))
        prior = Independent(Normal(torch.zeros_like(mu[0]), torch.ones_like(mu[0])), 1)
    else:
        try:  # a Gaussian prior: KL(q_phi(z|x_n) || p(z)) in closed form, (N,)
            kl = torch.distributions.kl_divergence(Independent(Normal(mu, torch.exp(0.5 * logvar)), 1), prior).double()
        except NotImplementedError:  # a mixture: no closed form; the Monte Carlo mean over the same draws below
            kl = None
    log_q_zx, log_p = q_zx.log_prob(z), prior.log_prob(z).double()           # (S, m)
    log_q = _log_aggregate_density(z.reshape(-1, mu.shape[1]), mu, logvar, batch_size).view(num_samples, -1)
    kl_d = kl[drawn] if kl is not None else None
    # per draw, (log q(z|x) - log p(z)) - KL_n has mean zero: its spread sets the error of the sum; drawing
    # from only m encodings adds how KL_n varies between them, so then KL_n is not taken off; without a
    # closed form there is no KL_n, and the spread is that of the Monte Carlo estimate itself
    offset = kl_d if (kl_d is not None and num_draws is None) else 0
    residual = (log_q_zx - log_p - offset).mean(0)
    information, marginal = (log_q_zx - log_q).mean(0), (log_q - log_p).mean(0)   # (m,), per example
    average_kl = kl.mean().item() if kl is not None else (log_q_zx - log_p).mean().item()

    def std_error(t):
        return (t.std() / math.sqrt(len(t))).item() if len(t) > 1 else float("nan")

    return ELBOSurgery(average_kl=average_kl, mutual_information=information.mean().item(),
                       marginal_kl=marginal.mean().item(), std_error=std_error(residual),
                       log_n=math.log(len(mu)), n=len(mu), mutual_information_se=std_error(information),
                       marginal_kl_se=std_error(marginal))


# --- argument checks -----------------------------------------------------------------------------------


def _check_prior(prior, d_z: int) -> None:
    """p(z), a torch distribution over z with event shape (d_z,)."""
    if not isinstance(prior, Distribution):
        raise TypeError(f"prior must be a torch.distributions.Distribution over z (a model's .prior), or None for "
                        f"N(0, I), got {type(prior).__name__}")
    if tuple(prior.batch_shape) != () or tuple(prior.event_shape) != (d_z,):
        raise ValueError(f"prior must be one distribution over z of shape ({d_z},) (batch shape (), event shape "
                         f"({d_z},)), got batch shape {tuple(prior.batch_shape)} and event shape "
                         f"{tuple(prior.event_shape)}")


def _check_codes(mu, logvar) -> None:
    """mu and logvar of N encodings, two floating-point tensors (N, d_z) with N >= 1."""
    checks.tensor("mu", mu, "(N, d_z)")
    checks.tensor("logvar", logvar, "(N, d_z)")
    if mu.shape != logvar.shape:
        raise ValueError(f"mu and logvar must have the same shape, got {tuple(mu.shape)} and {tuple(logvar.shape)}")
    if mu.dim() != 2 or len(mu) == 0:
        raise ValueError(f"mu and logvar must have shape (N, d_z) with N >= 1, got {tuple(mu.shape)}")
