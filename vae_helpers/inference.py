"""Variational inference: fit q(z) to the posterior p(z|x) by maximising the ELBO.

    ELBO(q) = E_q[log p(x, z) - log q(z)] = log p(x) - KL(q || p(z|x)),

so the q with the highest ELBO is the one closest to the posterior. Two ways to do it:

- per data point (``fit_q``): one Gaussian q per x, its parameters moved by stochastic gradient
  ascent on a Monte Carlo ELBO with the reparameterization z = mu + L eps (Kingma & Welling, 2014;
  Rezende et al., 2014);
- amortized (``AmortizedEncoder``, ``fit_amortized``): one network maps every x to its q's parameters,
  trained on the ELBO averaged over a data set; training the model's own parameters at the same time
  is Auto-Encoding Variational Bayes (Kingma & Welling, 2014).

``elbo_gradient_samples`` draws single-sample estimates of the ELBO's gradient with the
reparameterization and with the score-function (REINFORCE) estimator, so their variances can be compared.

Any model with ``decode(z) -> p(x|z)`` and ``prior -> p(z)`` works: the ``LinearGaussian`` model and
the ``VAE`` alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal

from .estimators import elbo
from .models import mlp

FAMILIES = ("full", "mean_field")
ESTIMATORS = ("reparameterization", "score_function")


class MeanFieldGaussian(nn.Module):
    """q(z) = N(mu, diag exp(logvar)) for each of B data points: parameters mu, logvar of shape (B, d)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        super().__init__()
        self.mu = nn.Parameter(mu.detach().clone())
        self.logvar = nn.Parameter(logvar.detach().clone())

    def forward(self) -> Independent:
        return Independent(Normal(self.mu, torch.exp(0.5 * self.logvar), validate_args=False), 1)


class FullCovarianceGaussian(nn.Module):
    """q(z) = N(mu, L L^T) for each of B data points: mu (B, d) and a lower-triangular L (B, d, d).

    L's diagonal is stored as its log, so it stays positive and L L^T is a valid covariance.
    """

    def __init__(self, mu: torch.Tensor, scale_tril: torch.Tensor):
        super().__init__()
        self.mu = nn.Parameter(mu.detach().clone())
        self.log_diag = nn.Parameter(scale_tril.detach().diagonal(dim1=-2, dim2=-1).log().clone())
        d = mu.shape[-1]
        # a fixed 0/1 mask keeps the strictly lower triangle (cheaper than tril in every step)
        self.register_buffer("below", torch.ones(d, d, dtype=mu.dtype).tril(-1))
        self.off_diag = nn.Parameter(scale_tril.detach() * self.below)

    def forward(self) -> MultivariateNormal:
        L = self.off_diag * self.below + torch.diag_embed(self.log_diag.exp())
        return MultivariateNormal(self.mu, scale_tril=L, validate_args=False)


def gaussian_q(family: str, mean: torch.Tensor, covariance: torch.Tensor) -> nn.Module:
    """A learnable q of the given family (``"full"`` or ``"mean_field"``) started at N(mean, covariance).

    mean (B, d), covariance (B, d, d); a mean-field q keeps only the covariance's diagonal.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if not isinstance(mean, torch.Tensor) or mean.dim() != 2:
        raise ValueError(f"mean must be a tensor of shape (B, d), got "
                         f"{tuple(mean.shape) if isinstance(mean, torch.Tensor) else type(mean).__name__}")
    if not isinstance(covariance, torch.Tensor) or tuple(covariance.shape) != (*mean.shape, mean.shape[-1]):
        raise ValueError(f"covariance must be a tensor of shape {(*mean.shape, mean.shape[-1])}, got "
                         f"{tuple(covariance.shape) if isinstance(covariance, torch.Tensor) else type(covariance).__name__}")
    if family == "full":
        return FullCovarianceGaussian(mean, torch.linalg.cholesky(covariance))
    return MeanFieldGaussian(mean, covariance.diagonal(dim1=-2, dim2=-1).log())


@dataclass
class VIFit:
    """The result of :func:`fit_q`: the fitted q (no gradients) and its ELBO estimate at every step."""

    q: Distribution          #: batch shape (B,), event shape (d,)
    elbo_trace: torch.Tensor  #: (steps, B): the Monte Carlo ELBO each step climbed on


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def _check_batch(x) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() < 2 or not x.is_floating_point():
        raise ValueError(f"x must be a floating-point batch of data points of shape (B, ...), got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")


def fit_q(model, x: torch.Tensor, family: str = "full", steps: int = 1000, lr: float = 0.05,
          num_samples: int = 8, seed: int = 0, init: Distribution | None = None) -> VIFit:
    """Per-data-point variational inference: fit one Gaussian q(z) to p(z|x) for each x in the batch.

    Maximises the Monte Carlo ELBO (1/S) sum_s [log p(x, z_s) - log q(z_s)], z_s = mu + L eps_s,
    by Adam with a cosine-decaying learning rate. The B data points are independent problems solved
    together: the summed ELBO's gradient w.r.t. one q's parameters is that point's own gradient.

    Args:
        x: data points (B, ...). family: ``"full"`` (q = N(mu, L L^T)) or ``"mean_field"``
            (q = N(mu, diag exp(logvar))). num_samples: S, draws per step.
        init: a Gaussian q (batch shape (B,)) to start from, e.g. an encoder's; default p(z) = N(0, I).
    """
    _check_batch(x)
    for name, value in (("steps", steps), ("num_samples", num_samples)):
        _check_positive_int(name, value)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    dtype = model.prior.mean.dtype
    B, d = x.shape[0], model.prior.event_shape[0]
    if init is None:
        mean, cov = torch.zeros(B, d, dtype=dtype), torch.eye(d, dtype=dtype).expand(B, d, d)
    elif isinstance(init, (MultivariateNormal, Independent)) and init.batch_shape == (B,):
        mean = init.mean.detach()
        cov = (init.covariance_matrix if isinstance(init, MultivariateNormal)
               else torch.diag_embed(init.variance)).detach()
    else:
        raise ValueError(f"init must be a Gaussian q with batch shape ({B},), got {init!r}")
    q = gaussian_q(family, mean, cov)
    optimizer = torch.optim.Adam(q.parameters(), lr=lr, fused=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    trace = torch.empty(steps, B, dtype=dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step in range(steps):
            value = elbo(model, x, k=num_samples, q=q())
            optimizer.zero_grad()
            (-value.sum()).backward()
            optimizer.step()
            schedule.step()
            trace[step] = value.detach()
    with torch.no_grad():
        fitted = q()
    return VIFit(q=_detached(fitted), elbo_trace=trace)


def _detached(q: Distribution) -> Distribution:
    if isinstance(q, MultivariateNormal):
        return MultivariateNormal(q.loc.detach(), scale_tril=q.scale_tril.detach())
    return Independent(Normal(q.mean.detach(), q.stddev.detach()), 1)


def elbo_gradient_samples(model, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                          num_samples: int = 1000, estimator: str = "reparameterization",
                          seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """S independent one-sample estimates of the ELBO's gradient w.r.t. a mean-field q's (mu, logvar).

    With f(z) = log p(x, z) - log q(z) and q = N(mu, diag exp(logvar)):

        reparameterization: z = mu + exp(logvar / 2) * eps, eps ~ N(0, I);  grad = d f(z) / d(mu, logvar)
        score_function:     z ~ q (no gradient through z);                  grad = f(z) * d log q(z) / d(mu, logvar)

    Both are unbiased for the ELBO's gradient (Williams, 1992; Kingma & Welling, 2014). The
    reparameterized one uses how f changes with z; the score function only uses f's value.

    Args:
        x: data points (B, ...); mu, logvar: (B, d), the q to differentiate at.
    Returns:
        (grad_mu, grad_logvar), each (S, B, d): their mean over S is the S-sample estimate, their
        variance over S the variance of one sample.
    """
    _check_batch(x)
    _check_positive_int("num_samples", num_samples)
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    for name, t in (("mu", mu), ("logvar", logvar)):
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (x.shape[0], model.prior.event_shape[0]):
            raise ValueError(f"{name} must be a tensor of shape ({x.shape[0]}, {model.prior.event_shape[0]}), "
                             f"got {tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
    # one copy of (mu, logvar) per sample, so that each sample's gradient lands in its own row
    mu_s = mu.detach().expand(num_samples, *mu.shape).clone().requires_grad_(True)
    logvar_s = logvar.detach().expand(num_samples, *logvar.shape).clone().requires_grad_(True)
    with torch.random.fork_rng():
        if seed is not None:
            torch.manual_seed(seed)
        q = Independent(Normal(mu_s, torch.exp(0.5 * logvar_s)), 1)
        z = q.rsample() if estimator == "reparameterization" else q.sample()
    log_q = q.log_prob(z)
    f = model.decode(z).log_prob(x) + model.prior.log_prob(z) - log_q  # (S, B)
    surrogate = f if estimator == "reparameterization" else f.detach() * log_q
    return torch.autograd.grad(surrogate.sum(), (mu_s, logvar_s))


class AmortizedEncoder(nn.Module):
    """q_phi(z|x) = N(mu_phi(x), diag exp(logvar_phi(x))): one MLP for every x, (B, n) -> (B, d) twice.

    Replaces a separate (mu, logvar) per data point with a function of x, as the VAE's encoder does.
    ``hidden=()`` gives a linear map.
    """

    def __init__(self, x_dim: int, z_dim: int, hidden=(32,), activation: str = "tanh",
                 dtype: torch.dtype = torch.float64):
        super().__init__()
        for name, value in (("x_dim", x_dim), ("z_dim", z_dim)):
            _check_positive_int(name, value)
        self.x_dim, self.z_dim = x_dim, z_dim
        self.net = mlp([x_dim, *hidden, 2 * z_dim], activation).to(dtype)  # outputs [mu, logvar]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q_phi(z|x), each (B, d)."""
        if not isinstance(x, torch.Tensor) or x.shape[-1:] != (self.x_dim,):
            raise ValueError(f"x must be a tensor of shape (B, {self.x_dim}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
        mu, logvar = self.net(x).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> Independent:
        """q_phi(z|x) as a distribution with batch shape (B,), event shape (d,)."""
        mu, logvar = self(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def fit_amortized(model, encoder: AmortizedEncoder, x: torch.Tensor, steps: int = 2000, batch_size: int = 100,
                  lr: float = 0.01, num_samples: int = 1, seed: int = 0, model_params=()) -> torch.Tensor:
    """Train ``encoder`` to maximise the ELBO averaged over the data set x (N, n), by Adam on minibatches
    with a cosine-decaying learning rate:

        max_phi  (1/N) sum_i ELBO(q_phi(z|x_i); x_i)

    Tensors in ``model_params`` (e.g. the model's ``W`` and ``b``, with ``requires_grad=True``) are learned
    with the same objective: that is Auto-Encoding Variational Bayes, max over phi and theta.
    Returns the minibatch-mean ELBO at every step, (steps,).
    """
    _check_batch(x)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("num_samples", num_samples)):
        _check_positive_int(name, value)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    model_params = list(model_params)
    if not all(isinstance(p, torch.Tensor) and p.requires_grad for p in model_params):
        raise ValueError("model_params must be tensors with requires_grad=True, e.g. [model.W, model.b]")
    optimizer = torch.optim.Adam([*encoder.parameters(), *model_params], lr=lr, fused=True)
    # a decaying step size lets Adam settle instead of hovering at the noise level of one-draw ELBOs
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    trace = torch.empty(steps, dtype=x.dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step in range(steps):
            xb = x[torch.randint(len(x), (min(batch_size, len(x)),))]
            value = elbo(model, xb, k=num_samples, q=encoder.encode(xb)).mean()
            optimizer.zero_grad()
            (-value).backward()
            optimizer.step()
            schedule.step()
            trace[step] = value.detach()
    return trace
