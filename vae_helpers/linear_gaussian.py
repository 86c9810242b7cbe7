"""A latent-variable model in which every quantity of Bayes' rule is exact: the linear-Gaussian model.

    p(z) = N(0, I_d),   p(x|z) = N(W z + b, sigma^2 I_n),   W of shape (n, d).

Then the evidence and the posterior have closed forms:

    p(x)   = N(x; b, W W^T + sigma^2 I_n)
    p(z|x) = N(m(x), S),   S = (I_d + W^T W / sigma^2)^{-1},   m(x) = S W^T (x - b) / sigma^2.

It has the same ``prior``/``decode`` interface as the VAE, so the estimators in
:mod:`vae_helpers.estimators` can be checked against the exact log p(x).
"""
from __future__ import annotations

import torch
from torch.distributions import Independent, MultivariateNormal, Normal


class LinearGaussian:
    """The linear-Gaussian model with weights ``W`` (n, d), offset ``b`` (n,) and noise scale ``sigma``."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor | None = None, sigma: float = 1.0):
        if not isinstance(W, torch.Tensor) or W.dim() != 2 or not W.is_floating_point():
            raise ValueError(f"W must be a floating-point tensor of shape (n, d), got "
                             f"{tuple(W.shape) if isinstance(W, torch.Tensor) else type(W).__name__}")
        n, d = W.shape
        b = torch.zeros(n, dtype=W.dtype) if b is None else b
        if not isinstance(b, torch.Tensor) or tuple(b.shape) != (n,):
            raise ValueError(f"b must be a tensor of shape ({n},), got "
                             f"{tuple(b.shape) if isinstance(b, torch.Tensor) else type(b).__name__}")
        if not (isinstance(sigma, (int, float)) and sigma > 0):
            raise ValueError(f"sigma must be a positive number, got {sigma!r}")
        self.W, self.b, self.sigma = W, b.to(W.dtype), float(sigma)
        self.x_dim, self.z_dim = n, d

    @classmethod
    def random(cls, x_dim: int = 2, z_dim: int = 1, sigma: float = 0.5, seed: int = 0,
               dtype=torch.float64) -> "LinearGaussian":
        """A model with standard-normal W and b drawn with a fixed seed."""
        g = torch.Generator().manual_seed(seed)
        return cls(torch.randn(x_dim, z_dim, generator=g, dtype=dtype),
                   torch.randn(x_dim, generator=g, dtype=dtype), sigma)

    def _check_x(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.shape[-1:] != (self.x_dim,):
            raise ValueError(f"x must be a tensor of shape (..., {self.x_dim}), got "
                             f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")

    @property
    def prior(self) -> Independent:
        """p(z) = N(0, I_d)."""
        zeros = torch.zeros(self.z_dim, dtype=self.W.dtype)
        return Independent(Normal(zeros, torch.ones_like(zeros)), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        """The likelihood p(x|z) = N(W z + b, sigma^2 I) for z of shape (..., d)."""
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
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.z_dim, generator=g, dtype=self.W.dtype)
        x = z @ self.W.T + self.b + self.sigma * torch.randn(n, self.x_dim, generator=g, dtype=self.W.dtype)
        return z, x
