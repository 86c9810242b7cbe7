"""Monte Carlo estimators of the ELBO, the importance-weighted bound and log p(x).

They work for any model with ``decode(z) -> p(x|z)``, ``prior -> p(z)`` and a default q(z|x), its
``encode(x)`` or, for a model without an encoder, its exact ``posterior(x)`` (all ``torch.distributions``
objects): the ``VAE`` and the exact ``LinearGaussian`` model alike.

The evidence is an expectation under any q(z|x) that covers the posterior (importance sampling):

    p(x) = int p(x|z) p(z) dz = E_q[w],      w = p(x|z) p(z) / q(z|x),

so with z_1..z_k ~ q(z|x) and log-weights log w_i = log p(x|z_i) + log p(z_i) - log q(z_i|x), Jensen's
inequality (log E >= E log) gives two lower bounds:

    ELBO   = E[log w]                          = log p(x) - KL(q(z|x) || p(z|x))
    IWAE_k = E[log (1/k) sum_i w_i]            ELBO = IWAE_1 <= IWAE_k <= IWAE_{k+1} <= log p(x)

and IWAE_k -> log p(x) as k grows (Burda et al., 2016). The weights themselves under- and overflow
(log w is about -100 nats for an MNIST digit), so they are only ever combined as logsumexp of log w.
q may be any distribution with ``rsample`` and ``log_prob``, a flow (``flows.FlowEncoding``) included.

How noisy a Monte Carlo gradient is, per parameter, over R draws g_1..g_R on the same parameters and
batch (Rainforth et al., 2018): ``gradient_snr``, SNR = |mean_r g_r| / std_r(g_r).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
from torch.distributions import Distribution, TransformedDistribution

from . import checks
from .divergences import sample_with_log_prob
from .lightning import drawn_codes


def log_importance_weights(model, x: torch.Tensor, k: int = 1, q: Distribution | None = None) -> torch.Tensor:
    """log w = log p(x|z) + log p(z) - log q(z|x) for k draws z ~ q(z|x): (B, ...) -> (k, B).

    ``q`` defaults to ``model.encode(x)`` (``model.posterior(x)`` for a model without an encoder, such as
    ``LinearGaussian``); pass another distribution over z (batch shape (B,)) to estimate with a different
    proposal. Draws are reparameterized, so the result carries gradients.
    """
    k = checks.integer("k", k)
    return _log_weights(model, x, k, _proposal(model, x, q))


def _log_weights(model, x: torch.Tensor, k: int, q: Distribution) -> torch.Tensor:  # q = q(z|x)
    z, log_q = sample_with_log_prob(q, (k,))  # z_i ~ q(z|x); log q from the noise, exact even for a very narrow q
    log_px_z = log_px_given_z(model, x, z)    # log p(x|z_i), (k, B)
    log_pz = model.prior.log_prob(z)          # log p(z_i), (k, B)
    return log_px_z + log_pz - log_q


def elbo(model, x: torch.Tensor, k: int = 1, q: Distribution | None = None) -> torch.Tensor:
    """The ELBO, E_q[log p(x|z) + log p(z) - log q(z|x)], averaged over k draws: (B, ...) -> (B,)."""
    return log_importance_weights(model, x, k, q).mean(0)


def iwae_bound(model, x: torch.Tensor, k: int, q: Distribution | None = None,
               chunk_size: int = 1000) -> torch.Tensor:
    """IWAE_k = log (1/k) sum_i w_i, one estimate per example: (B, ...) -> (B,).

    The k draws are taken ``chunk_size`` at a time and combined with logsumexp, so memory stays bounded
    for k in the thousands. One shared q is reused, so every chunk uses the same proposal.
    """
    k, chunk_size = checks.integer("k", k), checks.integer("chunk_size", chunk_size)
    return _iwae(model, x, k, _proposal(model, x, q), chunk_size)


def _iwae(model, x: torch.Tensor, k: int, q: Distribution, chunk_size: int) -> torch.Tensor:
    # log sum_i w_i over all k draws is the logsumexp of each chunk's logsumexp
    parts = [torch.logsumexp(_log_weights(model, x, min(chunk_size, k - start), q), dim=0)
             for start in range(0, k, chunk_size)]
    return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)


def gradient_snr(loss_fn, parameters, num_draws: int = 100) -> torch.Tensor:
    """The signal-to-noise ratio of a stochastic gradient, per parameter entry (Rainforth et al., 2018):

        SNR = |mean_r g_r| / std_r(g_r),   g_r = d loss_fn() / d parameters, r = 1..R = ``num_draws``,

    ``loss_fn`` a function of no arguments returning a scalar loss with fresh noise at each call (new draws
    z ~ q(z|x) on the same batch x); the parameters are not changed between draws. std is the unbiased
    standard deviation. Returns (P,), the entries of all ``parameters`` flattened and concatenated in order;
    an entry whose gradient never varies has std 0 and an infinite (or, with mean 0, NaN) SNR.
    """
    if not callable(loss_fn):
        raise TypeError(f"loss_fn must be a function of no arguments returning a scalar loss, "
                        f"got {type(loss_fn).__name__}")
    params = list(parameters) if not isinstance(parameters, torch.Tensor) else [parameters]
    if not params or not all(isinstance(p, torch.Tensor) and p.requires_grad for p in params):
        raise ValueError("parameters must be a non-empty iterable of tensors that require gradients, such as "
                         "model.encoder.parameters()")
    num_draws = checks.integer("num_draws", num_draws, minimum=2)  # a standard deviation needs two draws
    grads = []
    for _ in range(num_draws):
        loss = loss_fn()
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            shape = tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return a scalar tensor (e.g. the batch-mean loss), got {shape}")
        # a parameter the loss does not reach has gradient 0 in every draw
        g = torch.autograd.grad(loss, params, allow_unused=True)
        grads.append(torch.cat([(torch.zeros_like(p) if gi is None else gi).flatten() for p, gi in zip(params, g)]))
    grads = torch.stack(grads)  # (R, P)
    return grads.mean(0).abs() / grads.std(0)


@dataclass
class LogLikelihood:
    """Data-set averages of an importance-sampled log-likelihood estimate (nats per example)."""

    nll_nats: float        #: -IWAE_k averaged over the data: an upper bound on -log p(x) that tightens with k
    neg_elbo_nats: float   #: -ELBO averaged over the data (one draw per example)
    bits_per_dim: float    #: nll_nats / (D ln 2), D the number of pixels; NaN unless p(x|z) is discrete
    k: int
    n: int                 #: number of examples

    def __str__(self) -> str:
        return (f"NLL {self.nll_nats:.2f} nats ({self.bits_per_dim:.4f} bits/dim), -ELBO {self.neg_elbo_nats:.2f} "
                f"nats, k={self.k}, n={self.n}")


@torch.no_grad()
def log_likelihood(model, data, k: int = 1000, batch_size: int = 100, chunk_size: int = 1000) -> LogLikelihood:
    """Estimate -log p(x) over a data set with IWAE_k, in nats and bits per dimension, for a ``VAE`` (q its
    encoder's q(z|x)) or a ``LinearGaussian`` (q its exact posterior, so that every IWAE_k is log p(x)).

        NLL = -(1/N) sum_n IWAE_k(x_n)  >=  -(1/N) sum_n log p(x_n),      bits/dim = NLL / (D ln 2)

    ``data`` is a tensor of images (N, ...) or an iterable of batches ``x`` or ``(x, y)``, such as
    ``datamodule.test_dataloader()``.

    Bits per dimension are only reported for a discrete p(x|z) (a Bernoulli decoder, say), where
    -log p(x) is a code length. For a continuous p(x|z) (a Gaussian decoder) ``nll_nats`` is minus a
    log-*density*, which depends on the units of x and can be negative; turning it into bits per
    dimension needs dequantisation (adding uniform noise to the discrete pixel values and correcting for
    the bin width), which this function does not do. It then warns and sets ``bits_per_dim`` to NaN;
    ``nll_nats`` and ``neg_elbo_nats`` are reported as they are.
    """
    k, batch_size = checks.integer("k", k), checks.integer("batch_size", batch_size)
    chunk_size = checks.integer("chunk_size", chunk_size)
    _check_model(model, q=None)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    total_iwae = total_elbo = 0.0
    n = dims = 0
    discrete = None
    try:
        for x in _batches(model, data, batch_size):
            q = _default_q(model, x)  # one q per batch, shared by the bound and the ELBO
            if discrete is None:
                discrete = _discrete_likelihood(model, q)
            total_iwae += _iwae(model, x, k, q, chunk_size).double().sum().item()
            total_elbo += _log_weights(model, x, 1, q).mean(0).double().sum().item()
            n += len(x)
            dims = x[0].numel()
    finally:
        if was_training:
            model.train()
    if n == 0:
        raise ValueError("data must hold at least one example")
    nll = -total_iwae / n
    bits = nll / (dims * math.log(2))
    if not discrete:
        warnings.warn("bits_per_dim is NaN: the model's p(x|z) is not a discrete distribution, so its NLL is "
                      "minus a log-density, not a code length; bits per dimension need dequantised data",
                      UserWarning, stacklevel=2)
        bits = float("nan")
    return LogLikelihood(nll_nats=nll, neg_elbo_nats=-total_elbo / n, bits_per_dim=bits, k=k, n=n)


def _discrete_likelihood(model, q: Distribution) -> bool:
    """Whether p(x|z) is a distribution over discrete values (its support says so), decoded at a point of
    q chosen without a random draw (so the estimates that follow use the same noise as without this check)."""
    try:
        with drawn_codes(model):
            return bool(model.decode(_fixed_point(q)).support.is_discrete)
    except NotImplementedError:  # a distribution that does not state its support or mean: not known to be discrete
        return False


def _fixed_point(q: Distribution) -> torch.Tensor:
    """q's mean; for a flow (a ``TransformedDistribution``, whose mean has no closed form), its base
    distribution's mean pushed through the transforms."""
    if isinstance(q, TransformedDistribution):
        z = _fixed_point(q.base_dist)
        for transform in q.transforms:
            z = transform(z)
        return z
    return q.mean


# --- argument checks and plumbing ----------------------------------------------------------------------


def _default_q(model, x: torch.Tensor) -> Distribution:
    """q(z|x): the model's encoder, or the exact posterior of a model without one (``LinearGaussian``)."""
    return model.encode(x) if hasattr(model, "encode") else model.posterior(x)


def _check_model(model, q) -> None:
    checks.interface(model, ("decode", "prior"))
    if q is None and not (hasattr(model, "encode") or hasattr(model, "posterior")):
        raise TypeError(f"model must have encode (like VAE) or posterior (like LinearGaussian) to give q(z|x), or "
                        f"q must be passed; {type(model).__name__} has neither")


def _proposal(model, x, q) -> Distribution:
    """The arguments the estimators share, checked: the model, the data x, and q, by default q(z|x)."""
    _check_model(model, q)
    _check_x(model, x)
    if q is None:
        return _default_q(model, x)
    checks.distribution("q", q)
    if q.event_shape != model.prior.event_shape:
        raise ValueError(f"q must be a distribution over z like the prior, of event shape "
                         f"{tuple(model.prior.event_shape)}, got {tuple(q.event_shape)}")
    if tuple(q.batch_shape) != (len(x),):
        raise ValueError(f"q must have batch shape ({len(x)},), one distribution per example of x, "
                         f"got {tuple(q.batch_shape)}")
    try:
        mean = q.mean
    except NotImplementedError:  # a distribution that does not state its mean: its draws are checked by decode
        return q
    if mean.dtype != x.dtype:
        raise TypeError(f"q has dtype {mean.dtype} but x and the model's weights are {x.dtype}; build q from "
                        f"tensors converted with .to({x.dtype})")
    if not torch.isfinite(mean).all():
        raise ValueError("q must have finite parameters, got a mean with NaN or infinite entries")
    return q


def _check_x(model, x) -> None:
    checks.tensor("x", x, "(B, ...)", nonempty=True)
    if hasattr(model, "check_images"):  # the VAE's own checks: shape, dtype, [0, 1] for a Bernoulli likelihood
        model.check_images(x)


def log_px_given_z(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x | z_i) for draws z of shape (k, B, D) and images x of shape (B, ...): a (k, B) tensor, the
    decoder's p(x|z) scored at x; or an error saying that x does not fit the model (found only once it is scored)."""
    with drawn_codes(model):  # z drawn from q: non-finite values show in the estimate
        px = model.decode(z)
    try:
        log_px_z = px.log_prob(x)
    except (ValueError, RuntimeError) as err:  # torch's own words for a shape that does not broadcast
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model's p(x|z): {err}") from None
    if log_px_z.shape != (len(z), len(x)):
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit the model's p(x|z): log p(x|z) has "
                         f"shape {tuple(log_px_z.shape)}, expected ({len(z)}, {len(x)})")
    return log_px_z


def _batches(model, data, batch_size: int):
    """The images of ``data`` (a tensor, or batches x or (x, y)), checked, on the model's device, ``batch_size``
    at a time."""
    if isinstance(data, torch.Tensor):
        data = [checks.tensor("data", data, "(N, ...)", nonempty=True)]
    elif isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        hint = "; pass datamodule.test_dataloader() or datamodule.tensors('test')[0]" if hasattr(data, "setup") else ""
        raise TypeError(f"data must be a tensor of examples or an iterable of batches, got {type(data).__name__}{hint}")
    device = next(model.parameters()).device if hasattr(model, "parameters") else None
    for batch in data:
        x = batch[0] if isinstance(batch, (tuple, list)) and batch else batch
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"each batch of data must be a tensor x or a pair (x, y), got {type(batch).__name__}")
        if x.dim() and not len(x):
            continue
        _check_x(model, x)
        yield from (x if device is None else x.to(device)).split(batch_size)
