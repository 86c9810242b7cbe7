"""A latent-variable model in which every quantity of Bayes' rule is exact: the linear-Gaussian model.

    p(z) = N(0, I_d),   p(x|z) = N(W z + b, sigma^2 I_n),   W of shape (n, d).

Then the evidence and the posterior have closed forms:

    p(x)   = N(x; b, W W^T + sigma^2 I_n)
    p(z|x) = N(m(x), S),   S = (I_d + W^T W / sigma^2)^{-1},   m(x) = S W^T (x - b) / sigma^2.

It has the same ``prior``/``decode`` interface as the VAE, so the estimators in
:mod:`vae_helpers.estimators` can be checked against the exact log p(x). For a Gaussian q(z) the ELBO and
KL(q || p(z|x)) are exact too (``exact_elbo``, ``kl_to_posterior``), so the identity
log p(x) = ELBO(q) + KL(q || p(z|x)) can be checked term by term.
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from . import checks


class LinearGaussian:
    """The linear-Gaussian model with weights ``W`` (n, d), offset ``b`` (n,) and noise scale ``sigma``.

    ``b`` defaults to zeros and is converted to W's dtype. Every x, z and q passed in must have W's dtype:
    a float32 x for a float64 model is refused, not converted, so no result comes silently from another precision.
    """

    def __init__(self, W: torch.Tensor, b: torch.Tensor | None = None, sigma: float = 1.0):
        checks.tensor("W", W, "(n, d)", finite=True)
        if W.dim() != 2 or W.numel() == 0:
            raise ValueError(f"W must be a floating-point tensor of shape (n, d) with n, d >= 1, got {tuple(W.shape)}")
        n, d = W.shape
        if b is None:
            b = torch.zeros(n, dtype=W.dtype)
        checks.tensor("b", b, f"({n},)", floating=False, finite=True)
        if tuple(b.shape) != (n,):
            raise ValueError(f"b must be a tensor of shape ({n},), one offset per row of W, got {tuple(b.shape)}")
        checks.number("sigma", sigma, positive=True)
        self.W, self.b, self.sigma = W, b.to(W.dtype), float(sigma)
        self.x_dim, self.z_dim = n, d

    @classmethod
    def random(cls, x_dim: int = 2, z_dim: int = 1, sigma: float = 0.5, seed: int = 0,
               dtype=torch.float64) -> "LinearGaussian":
        """A model with standard-normal W and b drawn with a fixed seed."""
        checks.integer("x_dim", x_dim)
        checks.integer("z_dim", z_dim)
        seed = checks.seed("seed", seed)
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise TypeError(f"dtype must be a floating-point torch.dtype such as torch.float64, got {dtype!r}")
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(x_dim, z_dim, generator=g, dtype=dtype),
                   torch.randn(x_dim, generator=g, dtype=dtype), sigma)

    @property
    def prior(self) -> Independent:
        """p(z) = N(0, I_d)."""
        zeros = torch.zeros(self.z_dim, dtype=self.W.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        """The likelihood p(x|z) = N(W z + b, sigma^2 I) for z of shape (..., d)."""
        checks.codes(z, self.z_dim, self.W.dtype)
        return Independent(Normal(z @ self.W.T + self.b, self.sigma), 1)

    def evidence(self) -> MultivariateNormal:
        """The marginal p(x) = N(b, W W^T + sigma^2 I)."""
        cov = self.W @ self.W.T + self.sigma ** 2 * torch.eye(self.x_dim, dtype=self.W.dtype)
        return MultivariateNormal(self.b, covariance_matrix=cov)

    def log_evidence(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), exact: (..., n) -> (...)."""
        self._check_x(x)
        return self.evidence().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """The exact posterior p(z|x) = N(m(x), S): batch shape x.shape[:-1], event shape (d,)."""
        self._check_x(x)
        eye = torch.eye(self.z_dim, dtype=self.W.dtype)
        S = torch.linalg.inv(eye + self.W.T @ self.W / self.sigma ** 2)
        m = (x - self.b) @ self.W @ S.T / self.sigma ** 2
        return MultivariateNormal(m, covariance_matrix=S.expand(*m.shape[:-1], self.z_dim, self.z_dim))

    def sample(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The generative story, n times: z ~ p(z), then x ~ p(x|z). Returns (z (n, d), x (n, n_x))."""
        checks.integer("n", n)
        if seed is not None:
            seed = checks.seed("seed", seed)
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.z_dim, generator=g, dtype=self.W.dtype)
        x = z @ self.W.T + self.b + self.sigma * torch.randn(n, self.x_dim, generator=g, dtype=self.W.dtype)
        return z, x

    # --- Exact variational quantities for a Gaussian q(z) (lessons 03 and 04) ---------------------

    def exact_elbo(self, x: torch.Tensor, q) -> torch.Tensor:
        """The ELBO of a Gaussian q(z) = N(m, C), in closed form: (B, n) -> (B,).

            ELBO(q) = E_q[log p(x|z)] - KL(q || p(z)),
            E_q[log p(x|z)] = log N(x; W m + b, sigma^2 I) - tr(W C W^T) / (2 sigma^2),

        because x - W z - b has mean x - W m - b and covariance W C W^T under q. ``q`` is a
        ``MultivariateNormal`` or an ``Independent(Normal)`` with batch shape x.shape[:-1].
        """
        self._check_x(x)
        m, C = self._mean_cov(q, x)
        expected_log_lik = (self.decode(m).log_prob(x)
                            - (C * (self.W.T @ self.W)).sum((-2, -1)) / (2 * self.sigma ** 2))
        return expected_log_lik - kl_divergence(MultivariateNormal(m, covariance_matrix=C), self._prior_mvn())

    def kl_to_posterior(self, x: torch.Tensor, q) -> torch.Tensor:
        """KL(q || p(z|x)) in closed form for a Gaussian q with batch shape x.shape[:-1]: (B, n) -> (B,)."""
        posterior = self.posterior(x)  # checks x
        m, C = self._mean_cov(q, x)
        return kl_divergence(MultivariateNormal(m, covariance_matrix=C), posterior)

    def mean_field_posterior(self, x: torch.Tensor) -> Independent:
        """The mean-field Gaussian q closest to p(z|x) in KL(q || p(z|x)): (B, n) -> batch shape (B,).

        For p(z|x) = N(m, Lambda^{-1}) the best q = prod_j N(z_j; m_j, 1 / Lambda_jj): the right mean,
        and each variance the inverse of the precision's diagonal, smaller than the marginal variance
        S_jj when the posterior is correlated (Bishop, 2006, section 10.1.2). The gap it leaves is

            KL(q* || p(z|x)) = 1/2 (sum_j log Lambda_jj - log det Lambda),   here Lambda = I + W^T W / sigma^2,

        which is -1/2 log(1 - rho^2) for a 2-D posterior with correlation rho.
        """
        m = self.posterior(x).mean
        precision = torch.eye(self.z_dim, dtype=self.W.dtype) + self.W.T @ self.W / self.sigma ** 2
        return Independent(Normal(m, precision.diagonal().rsqrt().expand_as(m)), 1)

    def _prior_mvn(self) -> MultivariateNormal:
        return MultivariateNormal(torch.zeros(self.z_dim, dtype=self.W.dtype),
                                  covariance_matrix=torch.eye(self.z_dim, dtype=self.W.dtype))

    # --- argument checks ---------------------------------------------------------------------------

    def _check_x(self, x) -> None:
        checks.tensor("x", x, f"(..., {self.x_dim})")
        if x.shape[-1:] != (self.x_dim,):
            raise ValueError(f"x must be a tensor of shape (..., {self.x_dim}), got {tuple(x.shape)}")
        checks.same_dtype("x", x, self.W.dtype)

    def _mean_cov(self, q, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (..., d) and covariance (..., d, d) of a Gaussian q over z, one for each row of x, checked."""
        if isinstance(q, MultivariateNormal):
            m, C = q.mean, q.covariance_matrix
        elif isinstance(q, Independent) and isinstance(q.base_dist, Normal) and q.reinterpreted_batch_ndims == 1:
            m, C = q.mean, torch.diag_embed(q.variance)
        else:
            raise TypeError(f"q must be a MultivariateNormal or an Independent(Normal) over z, got {checks.show(q)}")
        if m.shape[-1:] != (self.z_dim,):
            raise ValueError(f"q must be a distribution over z of dimension {self.z_dim}, got event shape "
                             f"{tuple(m.shape[-1:])}")
        try:
            torch.broadcast_shapes(m.shape[:-1], x.shape[:-1])
        except RuntimeError:
            raise ValueError(f"q must have batch shape {tuple(x.shape[:-1])}, one distribution per row of x, "
                             f"got {tuple(m.shape[:-1])}") from None
        if m.dtype != self.W.dtype:
            raise TypeError(f"q has dtype {m.dtype} but the model's weights are {self.W.dtype}; build q from "
                            f"tensors converted with .to({self.W.dtype})")
        return m, C
