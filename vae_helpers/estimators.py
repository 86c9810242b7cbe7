"""Monte Carlo estimators of the ELBO, the importance-weighted bound and log p(x).

They work for any model with ``encode(x) -> q(z|x)``, ``decode(z) -> p(x|z)`` and ``prior -> p(z)``
(all ``torch.distributions`` objects): the ``VAE`` and the exact ``LinearGaussian`` model alike. With
z_1..z_k ~ q(z|x) and log-weights log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x):

    ELBO   = E[log w]                          <= log p(x)
    IWAE_k = E[log (1/k) sum_i w_i]            ELBO = IWAE_1 <= IWAE_k <= IWAE_{k+1} <= log p(x)

and IWAE_k -> log p(x) as k grows (Burda et al., 2016).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.distributions import Distribution

from .divergences import sample_with_log_prob


def _check_k(name: str, k) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {k!r}")


def _check_model(model, needs_encoder: bool) -> None:
    needed = (("encode", "decode", "prior") if needs_encoder else ("decode", "prior"))
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise TypeError(f"model must have {', '.join(needed)} (like VAE or LinearGaussian); "
                        f"{type(model).__name__} lacks {', '.join(missing)}")


def _check_x(model, x) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor of data, one row per example, got "
                        + (f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__))
    if x.dim() < 1 or len(x) == 0:
        raise ValueError(f"x must hold at least one example, got shape {tuple(x.shape)}")
    if hasattr(model, "check_images"):  # the VAE's own checks: shape, dtype, [0, 1] for a Bernoulli likelihood
        model.check_images(x)


def _check_q(model, q, x: torch.Tensor) -> None:
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution over z, got {type(q).__name__}")
    if q.event_shape != model.prior.event_shape:
        raise ValueError(f"q must be a distribution over z like the prior, of event shape "
                         f"{tuple(model.prior.event_shape)}, got {tuple(q.event_shape)}")
    if tuple(q.batch_shape) != (len(x),):
        raise ValueError(f"q must have batch shape ({len(x)},), one distribution per example of x, "
                         f"got {tuple(q.batch_shape)}")


def _log_weights(model, x: torch.Tensor, k: int, q: Distribution) -> torch.Tensor:
    z, log_q = sample_with_log_prob(q, (k,))  # log q from the noise: exact even for a very narrow q
    try:
        log_px_z = model.decode(z).log_prob(x)
    except (ValueError, RuntimeError) as err:  # torch's own words for a shape that does not broadcast
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model's p(x|z): {err}") from None
    log_w = log_px_z + model.prior.log_prob(z) - log_q
    if log_w.shape != (k, len(x)):
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model's p(x|z): the log-weights have "
                         f"shape {tuple(log_w.shape)}, expected ({k}, {len(x)})")
    return log_w


def log_importance_weights(model, x: torch.Tensor, k: int = 1, q: Distribution | None = None) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) for k draws z ~ q(z|x): (B, ...) -> (k, B).

    ``q`` defaults to ``model.encode(x)``; pass another distribution over z (batch shape (B,)) to
    estimate with a different proposal. Draws are reparameterized, so the result carries gradients.
    """
    _check_k("k", k)
    _check_model(model, needs_encoder=q is None)
    _check_x(model, x)
    q = model.encode(x) if q is None else q
    _check_q(model, q, x)
    return _log_weights(model, x, k, q)


def elbo(model, x: torch.Tensor, k: int = 1, q: Distribution | None = None) -> torch.Tensor:
    """The ELBO, E_q[log p(x|z) + log p(z) - log q(z|x)], averaged over k draws: (B, ...) -> (B,)."""
    return log_importance_weights(model, x, k, q).mean(0)


def iwae_bound(model, x: torch.Tensor, k: int, q: Distribution | None = None,
               chunk_size: int = 1000) -> torch.Tensor:
    """IWAE_k = log (1/k) sum_i w_i, one estimate per example: (B, ...) -> (B,).

    The k draws are taken ``chunk_size`` at a time and combined with logsumexp, so memory stays bounded
    for k in the thousands. One shared q is reused, so every chunk uses the same proposal.
    """
    _check_k("k", k)
    _check_k("chunk_size", chunk_size)
    _check_model(model, needs_encoder=q is None)
    _check_x(model, x)
    q = model.encode(x) if q is None else q
    _check_q(model, q, x)
    parts = []
    for start in range(0, k, chunk_size):
        parts.append(torch.logsumexp(_log_weights(model, x, min(chunk_size, k - start), q), dim=0))
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)


@dataclass
class LogLikelihood:
    """Data-set averages of an importance-sampled log-likelihood estimate (nats per example)."""

    nll_nats: float        #: -IWAE_k averaged over the data: an upper bound on -log p(x) that tightens with k
    neg_elbo_nats: float   #: -ELBO averaged over the data (one draw per example)
    bits_per_dim: float    #: nll_nats / (D ln 2), D the number of pixels
    k: int
    n: int                 #: number of examples

    def __str__(self) -> str:
        return (f"NLL {self.nll_nats:.2f} nats ({self.bits_per_dim:.4f} bits/dim), -ELBO {self.neg_elbo_nats:.2f} "
                f"nats, k={self.k}, n={self.n}")


@torch.no_grad()
def log_likelihood(model, data, k: int = 1000, batch_size: int = 100, chunk_size: int = 1000) -> LogLikelihood:
    """Estimate -log p(x) over a data set with IWAE_k, in nats and bits per dimension.

    ``data`` is a tensor of images (N, ...) or an iterable of batches ``x`` or ``(x, y)``, such as
    ``datamodule.test_dataloader()``.
    """
    _check_k("k", k)
    _check_k("batch_size", batch_size)
    _check_k("chunk_size", chunk_size)
    _check_model(model, needs_encoder=True)
    if isinstance(data, torch.Tensor):
        if data.dim() < 1 or len(data) == 0:
            raise ValueError(f"data must hold at least one example, got a tensor of shape {tuple(data.shape)}")
        data = data.split(batch_size)
    elif not hasattr(data, "__iter__") or isinstance(data, (str, bytes, dict)):
        hint = "; pass datamodule.test_dataloader() or datamodule.tensors('test')[0]" if hasattr(data, "setup") else ""
        raise TypeError(f"data must be a tensor of examples or an iterable of batches, got "
                        f"{type(data).__name__}{hint}")
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    device = next(model.parameters()).device if hasattr(model, "parameters") else None
    total_iwae = total_elbo = 0.0
    n = dims = 0
    try:
        for batch in data:
            x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
            if not isinstance(x, torch.Tensor):
                raise TypeError(f"each batch of data must be a tensor x or a pair (x, y), got {type(batch).__name__}")
            if x.dim() >= 1 and len(x) == 0:
                continue
            if device is not None:
                x = x.to(device)
            for xb in x.split(batch_size):
                q = model.encode(xb)
                total_iwae += iwae_bound(model, xb, k, q, chunk_size).double().sum().item()
                total_elbo += elbo(model, xb, 1, q).double().sum().item()
                n += len(xb)
                dims = xb[0].numel()
    finally:
        if was_training:
            model.train()
    if n == 0:
        raise ValueError("data must hold at least one example")
    nll = -total_iwae / n
    return LogLikelihood(nll_nats=nll, neg_elbo_nats=-total_elbo / n, bits_per_dim=nll / (dims * math.log(2)),
                         k=k, n=n)
