"""What lessons 07 and 09 change about the VAE's loss, each a small named piece.

The loss of ``VAE.loss_terms`` is distortion + beta * rate. These change one part of it:

    monte_carlo_kl   the rate estimated at the draw z ~ q:  log q(z|x) - log p(z)  (any q and p)
    kl_warmup        beta_t = beta * min(1, t / T) over the first T training steps (Bowman et al., 2016)
    free_bits        the batch-mean KL of each latent dimension charged at least lambda nats, with no
                     gradient below the floor (Kingma et al., 2016)
"""
from __future__ import annotations

import torch
from torch.distributions import Distribution

from . import divergences
from .divergences import DiagonalNormal


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
    kl_dims = divergences.kl_terms(q.mu, q.logvar, p.mu, p.logvar)  # (B, D)
    above = (kl_dims.mean(0) >= floor).detach()
    return torch.where(above, kl_dims, torch.full_like(kl_dims, floor)).sum(-1)
