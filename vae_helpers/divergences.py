"""KL divergences between diagonal Gaussians: closed forms and a Monte Carlo estimate.

A diagonal Gaussian is given by its mean ``mu`` and log-variance ``logvar`` (both (..., D)); every
closed form sums over the last dimension and returns shape (...,). ``fit_gaussian`` fits one Gaussian
to any target by forward KL(p || q) or reverse KL(q || p), to compare the two directions.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, Independent, Normal, register_kl

from . import checks


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


def kl_normal_normal(mu_q: torch.Tensor, logvar_q: torch.Tensor, mu_p: torch.Tensor,
                     logvar_p: torch.Tensor) -> torch.Tensor:
    """KL(N(mu_q, diag exp(logvar_q)) || N(mu_p, diag exp(logvar_p))).

    = 1/2 sum_j (exp(logvar_q - logvar_p) + (mu_q - mu_p)^2 / exp(logvar_p) - 1 - (logvar_q - logvar_p)).
    Shapes broadcast; the last dimension is summed.
    """
    _check_pair(mu_q, logvar_q, ("mu_q", "logvar_q"))
    _check_pair(mu_p, logvar_p, ("mu_p", "logvar_p"))
    try:
        torch.broadcast_shapes(mu_q.shape, mu_p.shape)
    except RuntimeError:
        raise ValueError(f"q's and p's parameters must broadcast to one shape, got {tuple(mu_q.shape)} and "
                         f"{tuple(mu_p.shape)}") from None
    return kl_terms(mu_q, logvar_q, mu_p, logvar_p).sum(-1)


def kl_terms(mu_q, logvar_q, mu_p, logvar_p) -> torch.Tensor:
    """The per-dimension terms of :func:`kl_normal_normal`, unsummed: the one place the formula is written."""
    d = logvar_q - logvar_p
    # expm1 keeps exp(d) - 1 - d accurate when d is near 0, where the three terms nearly cancel
    return 0.5 * (torch.expm1(d) - d + (mu_q - mu_p).pow(2) * torch.exp(-logvar_p))


def kl_normal_std_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag exp(logvar)) || N(0, I)) = 1/2 sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j).

    The VAE's rate term for one encoding: :func:`kl_normal_normal` with mu_p = 0, logvar_p = 0.
    (..., D) -> (...,).
    """
    _check_pair(mu, logvar)
    zeros = torch.zeros_like(mu)
    return kl_terms(mu, logvar, zeros, zeros).sum(-1)


def kl_monte_carlo(q: Distribution, p: Distribution, num_samples: int = 1000) -> torch.Tensor:
    """KL(q || p) ~= 1/S sum_s [log q(z_s) - log p(z_s)], z_s ~ q.

    Unbiased for any pair of distributions with ``log_prob``; ``rsample`` is used where q has it, so the
    estimate carries gradients. Returns q's batch shape.
    """
    for name, d in (("q", q), ("p", p)):
        if not isinstance(d, Distribution):
            raise TypeError(f"{name} must be a torch.distributions.Distribution, got {type(d).__name__}")
    if q.event_shape != p.event_shape:
        raise ValueError(f"q and p must be distributions over the same space, got event shapes "
                         f"{tuple(q.event_shape)} and {tuple(p.event_shape)}")
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    z, log_q = sample_with_log_prob(q, (num_samples,))
    return (log_q - p.log_prob(z)).mean(0)


def sample_with_log_prob(q: Distribution, sample_shape=torch.Size()) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw z ~ q (reparameterized where q allows it) and return ``(z, log q(z))``.

    For a diagonal Gaussian, z = mu + sigma * eps with eps ~ N(0, I), and log q(z) is computed from eps,
    sum_j [-eps_j^2 / 2 - log sigma_j - log(2 pi) / 2], rather than from z: when sigma is tiny next to
    mu, z - mu keeps few of the digits of sigma * eps (float32 holds about 7), and log q(z) recomputed
    from z is off by whole nats. The draws are the ones ``q.rsample`` makes. Other distributions use
    ``rsample`` (or ``sample``) and ``log_prob``.
    """
    if not isinstance(q, Distribution):
        raise TypeError(f"q must be a torch.distributions.Distribution, got {type(q).__name__}")
    base, summed = (q.base_dist, q.reinterpreted_batch_ndims) if isinstance(q, Independent) else (q, 0)
    if type(base) is Normal:
        z, eps = _normal_draw(base.loc, base.scale, torch.Size(sample_shape) + base.batch_shape)
        log_q = _log_normal_from_noise(eps, base.scale)
        return z, log_q.sum(tuple(range(-summed, 0))) if summed else log_q
    z = q.rsample(sample_shape) if q.has_rsample else q.sample(sample_shape)
    return z, q.log_prob(z)


class DiagonalNormal(Independent):
    """N(mu, diag exp(logvar)) over z of shape (..., D), kept with its ``mu`` and ``logvar``.

    An ``Independent(Normal(mu, exp(logvar / 2)), 1)``, so it samples, scores and prints like one, and
    ``kl_divergence`` between two of them is :func:`kl_normal_normal`, computed from mu and logvar directly.
    ``log_prob`` of the draw ``rsample`` just made is computed from its noise eps, not from z: when sigma
    is tiny next to mu, z - mu keeps few of the digits of sigma * eps (float32 holds about 7) and log q(z)
    recomputed from z is off by whole nats.
    """

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor, validate_args: bool | None = None):
        self.mu, self.logvar = mu, logvar
        self._last_draw = None
        super().__init__(Normal(mu, torch.exp(0.5 * logvar), validate_args=validate_args), 1,
                         validate_args=validate_args)

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        z, eps = _normal_draw(self.mu, self.base_dist.scale, self._extended_shape(sample_shape))
        self._last_draw = (z, eps)
        return z

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if self._last_draw is not None and z is self._last_draw[0]:
            return _log_normal_from_noise(self._last_draw[1], self.base_dist.scale).sum(-1)
        return super().log_prob(z)


def _normal_draw(loc: torch.Tensor, scale: torch.Tensor, shape: torch.Size) -> tuple[torch.Tensor, torch.Tensor]:
    """z = loc + scale * eps with eps ~ N(0, I) of ``shape``, the draws ``Normal.rsample`` makes: (z, eps)."""
    eps = torch.randn(shape, dtype=loc.dtype, device=loc.device)
    return loc + eps * scale, eps


def _log_normal_from_noise(eps: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """log N(z; loc, scale^2) per coordinate, from the noise eps of z = loc + scale * eps."""
    return -0.5 * eps.pow(2) - scale.log() - 0.5 * math.log(2 * math.pi)


@register_kl(DiagonalNormal, DiagonalNormal)
def _kl_diagonal_normals(q: DiagonalNormal, p: DiagonalNormal) -> torch.Tensor:
    return kl_terms(q.mu, q.logvar, p.mu, p.logvar).sum(-1)


def kl(q: Distribution, p: Distribution, z: torch.Tensor) -> torch.Tensor:
    """KL(q || p) per batch element: in closed form where torch knows one for the pair (two diagonal
    Gaussians: :func:`kl_normal_normal`), else the one-sample estimate log q(z) - log p(z) at the draw z ~ q."""
    try:
        return torch.distributions.kl_divergence(q, p)
    except NotImplementedError:
        return q.log_prob(z) - p.log_prob(z)


KL_DIRECTIONS = ("forward", "reverse")


def fit_gaussian(target: Distribution, direction: str = "reverse", steps: int = 500, lr: float = 0.05,
                 num_samples: int = 1000, init_mu: torch.Tensor | None = None,
                 init_logvar: torch.Tensor | None = None, seed: int = 0) -> Distribution:
    """The diagonal Gaussian q = N(mu, diag exp(logvar)) that minimises a KL divergence to ``target``.

    direction="forward":  min KL(p || q) = E_p[log p - log q]; only -E_p[log q] depends on q, so this is
                          maximum likelihood on draws from p, and its optimum matches p's mean and variance.
    direction="reverse":  min KL(q || p) = E_q[log q - log p], estimated with reparameterized draws from q,
                          the direction the VAE's encoder is fitted in.

    ``target`` needs ``sample`` (forward) or a differentiable ``log_prob`` (reverse), with event shape ()
    or (D,). Adam runs ``steps`` steps on ``num_samples`` fresh draws each, seeded by ``seed`` without
    touching the global random state. Returns q, detached, with ``target``'s event shape.
    """
    if not isinstance(target, Distribution):
        raise TypeError(f"target must be a torch.distributions.Distribution, got {type(target).__name__}")
    if len(target.event_shape) > 1 or len(target.batch_shape) > 0:
        raise ValueError(f"target must have event shape () or (D,) and no batch shape, got event shape "
                         f"{tuple(target.event_shape)} and batch shape {tuple(target.batch_shape)}")
    if direction not in KL_DIRECTIONS:
        raise ValueError(f"direction must be one of {KL_DIRECTIONS}, got {direction!r}")
    for name, value in (("steps", steps), ("num_samples", num_samples)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    seed = checks.seed("seed", seed)
    shape, dtype = target.event_shape, target.mean.dtype
    params = []
    for name, init in (("init_mu", init_mu), ("init_logvar", init_logvar)):
        init = torch.zeros(shape, dtype=dtype) if init is None else torch.as_tensor(init, dtype=dtype)
        if init.shape != shape:
            raise ValueError(f"{name} must have the target's event shape {tuple(shape)}, got {tuple(init.shape)}")
        params.append(init.clone().requires_grad_(True))
    mu, logvar = params

    def q_of(mu, logvar):
        q = Normal(mu, torch.exp(0.5 * logvar))
        return Independent(q, 1) if len(shape) == 1 else q

    optimizer = torch.optim.Adam([mu, logvar], lr=lr)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for _ in range(steps):
            q = q_of(mu, logvar)
            if direction == "forward":
                loss = -q.log_prob(target.sample((num_samples,))).mean()
            else:
                z = q.rsample((num_samples,))
                loss = (q.log_prob(z) - target.log_prob(z)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return q_of(mu.detach(), logvar.detach())
