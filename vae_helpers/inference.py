"""Variational inference: fit q(z) to the posterior p(z|x) by maximising the ELBO.

    ELBO(q) = E_q[log p(x, z) - log q(z)] = log p(x) - KL(q || p(z|x)),

so the q with the highest ELBO is the one closest to the posterior. Two ways to do it:

- per data point (``fit_q``): one Gaussian q per x, its parameters moved by stochastic gradient
  ascent on a Monte Carlo ELBO with the reparameterization z = mu + L eps (Kingma & Welling, 2014;
  Rezende et al., 2014);
- amortized (``AmortizedEncoder``, ``fit_amortized``): one network maps every x to its q's parameters,
  trained on the ELBO averaged over a data set; training the model's own parameters at the same time
  is Auto-Encoding Variational Bayes (Kingma & Welling, 2014).

For a model whose encoding is a flow (``flows.FlowEncoding``), ``fit_flow_context`` does the per-data-point
fit within the flow family: it keeps the trained coupling layers and frees the context h that the encoder
would give each x, so q ranges over {FlowEncoding(h) : h in R^C} for that x (lesson 12's inference gap).

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

from . import checks
from .estimators import _log_weights
from .networks import mlp

FAMILIES = ("full", "mean_field")
ESTIMATORS = ("reparameterization", "score_function")


class MeanFieldGaussian(nn.Module):
    """q(z) = N(mu, diag exp(logvar)) for each of B data points: parameters mu, logvar of shape (B, d)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor):
        checks.tensor("mu", mu, "(B, d)", finite=True, min_dim=1)
        checks.shaped("logvar", logvar, mu.shape, mu.dtype, "the entries of mu", finite=True)
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
        checks.tensor("mu", mu, "(B, d)", finite=True, min_dim=1)
        checks.shaped("scale_tril", scale_tril, (*mu.shape, mu.shape[-1]), mu.dtype, "the entries of mu", finite=True)
        if not (scale_tril.diagonal(dim1=-2, dim2=-1) > 0).all():
            raise ValueError("scale_tril must be lower-triangular with a positive diagonal (a Cholesky factor)")
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
    checks.choice("family", family, FAMILIES)
    checks.tensor("mean", mean, "(B, d)")
    if mean.dim() != 2:
        raise ValueError(f"mean must be a tensor of shape (B, d), got {tuple(mean.shape)}")
    checks.shaped("covariance", covariance, (*mean.shape, mean.shape[-1]), mean.dtype, "the entries of mean", finite=True)
    if family == "full":
        L, info = torch.linalg.cholesky_ex(covariance)
        if (info != 0).any():
            bad = torch.nonzero(info).flatten().tolist()
            raise ValueError(f"covariance must be positive-definite, but matrix {bad[0]} (of {len(bad)} such) is not")
        return FullCovarianceGaussian(mean, L)
    variances = covariance.diagonal(dim1=-2, dim2=-1)
    if not (variances > 0).all():
        raise ValueError("covariance must have a positive diagonal: a mean-field q keeps only the variances")
    return MeanFieldGaussian(mean, variances.log())


@dataclass
class VIFit:
    """The result of :func:`fit_q`: the fitted q (no gradients) and its ELBO estimate at every step."""

    q: Distribution          #: batch shape (B,), event shape (d,)
    elbo_trace: torch.Tensor  #: (steps, B): the Monte Carlo ELBO each step climbed on


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
    dtype, d = _model_and_batch(model, x)
    checks.integer("steps", steps)
    checks.integer("num_samples", num_samples)
    checks.number("lr", lr, positive=True)
    seed = checks.seed("seed", seed)
    B = x.shape[0]
    if init is None:
        mean, cov = torch.zeros(B, d, dtype=dtype), torch.eye(d, dtype=dtype).expand(B, d, d)
    else:
        mean, cov = _moments(init, B, d, dtype)
    q = gaussian_q(family, mean, cov)  # which checks family
    optimizer = torch.optim.Adam(q.parameters(), lr=lr, fused=True)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    trace = torch.empty(steps, B, dtype=dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step in range(steps):
            value = _log_weights(model, x, num_samples, q()).mean(0)  # the ELBO, from S draws
            optimizer.zero_grad()
            (-value.sum()).backward()
            optimizer.step()
            schedule.step()
            trace[step] = value.detach()
    with torch.no_grad():
        fitted = q()
    return VIFit(q=_detached(fitted), elbo_trace=trace)


def fit_flow_context(model, x: torch.Tensor, steps: int = 200, lr: float = 0.05, num_samples: int = 8,
                     seed: int = 0) -> VIFit:
    """The best q per data point within a VAE's flow family: fit a free context h_n for each x_n.

    The family for x_n is {q_h = model.encoding(h) : h in R^C}, the trained coupling layers (their
    conditioners fixed) applied to any context h, whose first 2D entries are the base Gaussian's [mu, logvar].
    Each h_n starts at the encoder's output for x_n and climbs the Monte Carlo ELBO
    (1/S) sum_s [log p(x_n, z_s) - log q_h(z_s)], z_s ~ q_h, by Adam with a cosine-decaying learning rate,
    as ``fit_q``; the model's own weights are not changed. x (B, ...); returns the fitted q (batch (B,)).
    """
    from .flows import FlowEncoding  # flows imports nothing from here; kept local as only this needs it

    _model_and_batch(model, x)
    if not isinstance(getattr(model, "encoding", None), FlowEncoding) or not hasattr(model, "encoder"):
        raise TypeError(f"model must be a VAE whose encoding is a flows.FlowEncoding, so that its q(z|x) is a flow "
                        f"with a context h; got {type(model).__name__} with encoding "
                        f"{type(getattr(model, 'encoding', None)).__name__}")
    model.check_images(x)
    checks.integer("steps", steps)
    checks.integer("num_samples", num_samples)
    checks.number("lr", lr, positive=True)
    seed = checks.seed("seed", seed)
    with torch.no_grad():
        h = nn.Parameter(model.encoder(x.flatten(1)).to(x.dtype).clone())  # (B, C): start at the encoder's
    optimizer = torch.optim.Adam([h], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    trace = torch.empty(steps, len(x), dtype=x.dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step in range(steps):
            value = _log_weights(model, x, num_samples, model.encoding(h)).mean(0)  # the ELBO, from S draws
            # the gradient for h alone: the model's weights neither move nor collect gradients
            (grad,) = torch.autograd.grad(-value.sum(), [h])
            h.grad = grad
            optimizer.step()
            schedule.step()
            trace[step] = value.detach()
    return VIFit(q=model.encoding(h.detach()), elbo_trace=trace)


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
    dtype, d = _model_and_batch(model, x)
    checks.integer("num_samples", num_samples)
    checks.choice("estimator", estimator, ESTIMATORS)
    if seed is not None:
        seed = checks.seed("seed", seed)
    checks.shaped("mu", mu, (x.shape[0], d), dtype, "the model's weights")
    checks.shaped("logvar", logvar, (x.shape[0], d), dtype, "the model's weights")
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
        checks.integer("x_dim", x_dim)
        checks.integer("z_dim", z_dim)
        hidden = checks.sizes("hidden", hidden, "(32,)", allow_empty=True)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}")
        super().__init__()
        self.x_dim, self.z_dim = x_dim, z_dim
        # mlp checks the activation's name; the outputs are [mu, logvar]
        self.net = mlp([x_dim, *hidden, 2 * z_dim], activation).to(dtype)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q_phi(z|x), each (B, d)."""
        checks.tensor("x", x, f"(B, {self.x_dim})")
        if x.shape[-1:] != (self.x_dim,):
            raise ValueError(f"x must be a tensor of shape (B, {self.x_dim}), got {tuple(x.shape)}")
        checks.same_dtype("x", x, self.net[0].weight.dtype, "the encoder's weights")
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
    _, d = _model_and_batch(model, x)
    _check_encoder(encoder, x, d)
    for name, value in (("steps", steps), ("batch_size", batch_size), ("num_samples", num_samples)):
        checks.integer(name, value)
    checks.number("lr", lr, positive=True)
    seed = checks.seed("seed", seed)
    model_params = _leaves(model_params)
    optimizer = torch.optim.Adam([*encoder.parameters(), *model_params], lr=lr, fused=True)
    # a decaying step size lets Adam settle instead of hovering at the noise level of one-draw ELBOs
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
    trace = torch.empty(steps, dtype=x.dtype)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        for step in range(steps):
            xb = x[torch.randint(len(x), (min(batch_size, len(x)),))]
            value = _log_weights(model, xb, num_samples, encoder.encode(xb)).mean(0).mean()  # the mean ELBO
            optimizer.zero_grad()
            (-value).backward()
            optimizer.step()
            schedule.step()
            trace[step] = value.detach()
    return trace


# --- argument checks -----------------------------------------------------------------------------------


def _model_and_batch(model, x) -> tuple[torch.dtype, int]:
    """Check the model and the batch x (B, ...) it is to explain; return the model's dtype and d, the size of z."""
    checks.interface(model, ("decode", "prior"))
    prior = model.prior
    if len(prior.event_shape) != 1:
        raise TypeError(f"model must have a prior over vectors z, of event shape (d,), like VAE or LinearGaussian; "
                        f"{type(model).__name__}'s prior has event shape {tuple(prior.event_shape)}")
    checks.tensor("x", x, "(B, ...)", min_dim=2, nonempty=True)
    checks.same_dtype("x", x, prior.mean.dtype)
    return prior.mean.dtype, prior.event_shape[0]


def _moments(init, B: int, d: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (B, d) and covariance (B, d, d) of a Gaussian q to start from, checked."""
    if not (isinstance(init, MultivariateNormal)
            or isinstance(init, Independent) and isinstance(init.base_dist, Normal)):
        raise TypeError(f"init must be a Gaussian q with batch shape ({B},) (a MultivariateNormal or an "
                        f"Independent(Normal)), got {checks.show(init)}")
    if init.batch_shape != (B,):
        raise ValueError(f"init must be a Gaussian q with batch shape ({B},), one per row of x, got batch shape "
                         f"{tuple(init.batch_shape)}")
    if init.event_shape != (d,):
        raise ValueError(f"init must be a distribution over z of event shape ({d},), got {tuple(init.event_shape)}")
    if init.mean.dtype != dtype:
        raise TypeError(f"init has dtype {init.mean.dtype} but the model's weights are {dtype}; build it from "
                        f"tensors converted with .to({dtype})")
    cov = init.covariance_matrix if isinstance(init, MultivariateNormal) else torch.diag_embed(init.variance)
    return init.mean.detach(), cov.detach()


def _check_encoder(encoder, x: torch.Tensor, d: int) -> None:
    if not isinstance(encoder, nn.Module) or not callable(getattr(encoder, "encode", None)):
        raise TypeError(f"encoder must be an nn.Module with encode(x) -> q(z|x), such as AmortizedEncoder, "
                        f"got {checks.show(encoder)}")
    if getattr(encoder, "z_dim", d) != d:
        raise ValueError(f"encoder must give a q over the model's z of size {d}, got an encoder with "
                         f"z_dim={encoder.z_dim}")
    if getattr(encoder, "x_dim", x.shape[-1]) != x.shape[-1]:
        raise ValueError(f"x must have shape (N, {encoder.x_dim}) to match the encoder's x_dim, got {tuple(x.shape)}")


def _leaves(model_params) -> list[torch.Tensor]:
    """``model_params`` as a list of leaf tensors that require gradients, which Adam can update."""
    if isinstance(model_params, torch.Tensor) or not hasattr(model_params, "__iter__"):
        raise TypeError(f"model_params must be a list of tensors such as [model.W, model.b], "
                        f"got {checks.show(model_params)}")
    model_params = list(model_params)
    for i, p in enumerate(model_params):
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"model_params must be tensors with requires_grad=True, e.g. [model.W, model.b]; "
                            f"item {i} is {checks.show(p)}")
        if not (p.requires_grad and p.is_leaf):
            raise ValueError(f"model_params must be tensors with requires_grad=True, e.g. [model.W, model.b], made "
                             f"as leaves (not computed from other tensors); item {i} is "
                             + ("not a leaf" if p.requires_grad else "without requires_grad"))
    return model_params
