"""What lessons 07 and 09 change about the VAE's loss, each a small named piece.

The loss of ``VAE.loss_terms`` is distortion + beta * rate. These change one part of it:

    monte_carlo_kl   the rate estimated at the draw z ~ q:  log q(z|x) - log p(z)  (any q and p)
    kl_warmup        beta_t = beta * min(1, t / T) over the first T training steps (Bowman et al., 2016)
    free_bits        the batch-mean KL of each latent dimension charged at least lambda nats, with no
                     gradient below the floor (Kingma et al., 2016)

and what lesson 12 trains on instead of the ELBO, from the log importance weights
log w_i = log p(x|z_i) + log p(z) - log q(z_i|x) of k draws z_i ~ q(z|x) (``estimators.log_importance_weights``):

    iwae_objective   IWAE_k = log (1/k) sum_i w_i per example (Burda et al., 2016); IWAE_1 is the ELBO
    dreg_objective   IWAE_k again in value, with the doubly reparameterized gradient for q's parameters
                     (Tucker et al., 2019): the plain gradient's signal-to-noise ratio for q falls as k
                     grows (Rainforth et al., 2018), this one's does not
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Distribution

from . import checks, divergences
from .divergences import DiagonalNormal
from .estimators import log_px_given_z, _proposal


def monte_carlo_kl(q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
    """The one-sample estimate log q(z|x) - log p(z) at z ~ q; unbiased for KL(q || p). (B,)."""
    return q.log_prob(z) - p.log_prob(z)


#: the rate estimators ``VAE(kl=...)`` chooses between: the closed form where there is one (else the
#: one-sample estimate at z, ``divergences.kl``), or always the one-sample estimate
KL_ESTIMATORS = {"analytic": divergences.kl, "mc": monte_carlo_kl}


def kl_warmup(beta: float, step: int, warmup_steps: int) -> float:
    """beta * min(1, step / warmup_steps): the KL weight grows linearly from 0 to beta."""
    return beta * min(1.0, step / warmup_steps)


def free_bits(q: DiagonalNormal, p: DiagonalNormal, floor: float) -> torch.Tensor:
    """The rate as charged with free bits: (B,), whose batch mean is sum_j max(floor, mean_b KL_bj).

    Per dimension j, while the batch-mean KL is below ``floor`` the dimension is charged the floor, a
    constant, so the KL term no longer pushes it towards collapse.
    """
    for name, d in (("q", q), ("p", p)):
        if not isinstance(d, DiagonalNormal):  # a mixture prior or a flow has no KL per dimension
            raise TypeError(f"free bits need the KL of each latent dimension in closed form, so q(z|x) and p(z) must "
                            f"be DiagonalNormal; {name} is a {type(d).__name__}")
    kl_dims = divergences.kl_terms(q.mu, q.logvar, p.mu, p.logvar)  # (B, D)
    above = (kl_dims.mean(0) >= floor).detach()
    return torch.where(above, kl_dims, torch.full_like(kl_dims, floor)).sum(-1)


def iwae_objective(log_w: torch.Tensor) -> torch.Tensor:
    """IWAE_k = log (1/k) sum_i w_i = logsumexp_i log w_i - log k, per example: log w (k, B) -> (B,).

    The bound a VAE trained on IWAE_k maximises (its loss is -IWAE_k, averaged over the batch). With
    reparameterized draws the gradient is sum_i wbar_i grad log w_i, wbar = softmax_i(log w_i): each draw
    counts by its normalised weight, where the ELBO's gradient counts each by 1/k.
    """
    checks.tensor("log_w", log_w, "(k, B)", min_dim=2, nonempty=True)
    if log_w.dim() != 2 or log_w.shape[1] == 0:
        raise ValueError(f"log_w must be a floating-point tensor of shape (k, B), k draws for each of B examples, "
                         f"with k, B >= 1, got {tuple(log_w.shape)}")
    # the weights themselves under- and overflow (log w ~ -100 nats for a digit): combine them in log space
    return torch.logsumexp(log_w, dim=0) - math.log(len(log_w))


def dreg_objective(model, x: torch.Tensor, k: int, q: DiagonalNormal | None = None) -> torch.Tensor:
    """IWAE_k per example, (B, ...) -> (B,), whose gradient is the doubly reparameterized estimator.

    With z_i = mu + sigma * eps_i and wbar = softmax_i(log w_i): for q's parameters phi, the IWAE_k
    gradient's signal shrinks as 1/k and its noise only as 1/sqrt(k) (Rainforth et al., 2018). Tucker et
    al. (2019) rewrite its score term, -sum_i wbar_i d log q(z_i|x) / d phi at fixed z, as a path term of
    the same expectation, which gives

        phi:    sum_i wbar_i^2 (d log w_i / d z_i) (d z_i / d phi),   log q's own phi held fixed
        theta:  sum_i wbar_i d log w_i / d theta,                      the IWAE gradient (decoder, prior)

    Built here as a surrogate of two terms, the weights held constant:
        sum_i wbar_i^2 log w_i(z_i)                 with log q's mu and logvar detached: phi through z only
      + sum_i (wbar_i - wbar_i^2) log p(x, z_i)     at z_i detached: theta only, topping wbar^2 up to wbar
    plus IWAE_k's value minus the surrogate's, detached, so the value is IWAE_k. Draws are reparameterized;
    q (default ``model.encode(x)``) must be a ``DiagonalNormal``, whose parameters can be detached.
    """
    k = checks.integer("k", k)
    q = _proposal(model, x, q)
    if not isinstance(q, DiagonalNormal):
        raise TypeError(f"q must be a DiagonalNormal (its mu and logvar are detached to score the draws), got "
                        f"{type(q).__name__}")
    z = q.rsample((k,))                                             # (k, B, D), depends on phi through mu, sigma
    q_fixed = DiagonalNormal(q.mu.detach(), q.logvar.detach(), validate_args=False)
    log_joint = log_px_given_z(model, x, z) + model.prior.log_prob(z)  # log p(x, z_i), (k, B)
    log_w = log_joint - q_fixed.log_prob(z)
    z_fixed = z.detach()
    log_joint_fixed_z = log_px_given_z(model, x, z_fixed) + model.prior.log_prob(z_fixed)
    # the weights' values with log q from the draws' noise (exact even for a very narrow q, divergences)
    log_w_value = (log_joint - q.log_prob(z)).detach()
    wbar = torch.softmax(log_w_value, dim=0)
    surrogate = (wbar ** 2 * log_w).sum(0) + ((wbar - wbar ** 2) * log_joint_fixed_z).sum(0)
    return iwae_objective(log_w_value) + surrogate - surrogate.detach()
