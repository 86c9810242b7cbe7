"""The prior p(z) of a latent-variable model, as a module whose ``forward()`` returns the distribution.

A module rather than a fixed distribution, so that a prior with parameters (a learned mixture, the
VampPrior) plugs into the same ``VAE`` and trains with it; it moves with the model between devices.

    StandardNormal   p(z) = N(0, I_D)
    MixturePrior     p(z) = sum_k pi_k N(z; m_k, diag exp(v_k)),  pi = softmax(a); a (K,), m and v (K, D) learned
    VampPrior        p(z) = (1/K) sum_k q_phi(z | u_k), the encoder's encodings of K learned pseudo-inputs
                     u_k (K, *input_shape) (Tomczak and Welling, 2018)

The two mixtures are ``torch.distributions.MixtureSameFamily`` objects over z of shape (D,), so
``log_prob`` (a logsumexp over the K components) and ``sample`` are torch's. No closed form exists for
KL(q_phi(z|x) || p(z)) with a mixture prior, so the ``VAE`` charges the one-sample estimate
log q_phi(z|x) - log p(z) at its draw z (``divergences.kl``).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from . import checks
from .divergences import DiagonalNormal


class StandardNormal(nn.Module):
    """p(z) = N(0, I_D), the prior of the standard VAE: a distribution over z of shape (D,)."""

    def __init__(self, latent_dim: int):
        super().__init__()
        latent_dim = checks.integer("latent_dim", latent_dim)
        # mu = 0 and logvar = 0; a buffer, so it follows the model to its device and dtype
        self.register_buffer("zeros", torch.zeros(latent_dim), persistent=False)

    def forward(self) -> DiagonalNormal:
        # no argument validation: a NaN z (a diverged encoder) reaches the loss check, which names the step
        # and the term, instead of torch's complaint about the value's support
        return DiagonalNormal(self.zeros, self.zeros, validate_args=False)


def gaussian_mixture(logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> MixtureSameFamily:
    """sum_k softmax(logits)_k N(z; mu_k, diag exp(logvar_k)): logits (K,), mu and logvar (K, D) -> event (D,)."""
    components = Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1)
    # no argument validation, as in StandardNormal: a NaN z is the loss check's to report
    return MixtureSameFamily(Categorical(logits=logits, validate_args=False), components, validate_args=False)


class MixturePrior(nn.Module):
    """A mixture of K diagonal Gaussians with learned weights, means and log-variances.

        p(z) = sum_k pi_k N(z; m_k, diag exp(v_k)),   pi = softmax(a)

    Parameters ``logits`` a (K,), ``mu`` m (K, D) and ``logvar`` v (K, D). The weights start equal and the
    variances at 1; the means start at draws from N(0, init_spread^2 I), seeded by ``seed``, so that the
    components differ (components that start equal receive equal gradients and stay equal). K = 1 with
    mu = 0 and logvar = 0 is N(0, I).
    """

    def __init__(self, latent_dim: int, num_components: int, init_spread: float = 1.0, seed: int = 0):
        super().__init__()
        latent_dim = checks.integer("latent_dim", latent_dim)
        num_components = checks.integer("num_components", num_components)
        checks.number("init_spread", init_spread, minimum=0)
        seed = checks.seed("seed", seed)
        g = torch.Generator().manual_seed(seed)
        self.logits = nn.Parameter(torch.zeros(num_components))
        self.mu = nn.Parameter(init_spread * torch.randn(num_components, latent_dim, generator=g))
        self.logvar = nn.Parameter(torch.zeros(num_components, latent_dim))

    def forward(self) -> MixtureSameFamily:
        return gaussian_mixture(self.logits, self.mu, self.logvar)

    def extra_repr(self) -> str:
        # in the repr, so that fit_cached's key (which reads repr(model)) tells mixtures of other sizes apart
        k, d = self.mu.shape
        return f"latent_dim={d}, num_components={k}"


class VampPrior(nn.Module):
    """The VampPrior: p(z) = (1/K) sum_k q_phi(z | u_k), the mixture of the encoder's encodings of K
    learned pseudo-inputs u_k (Tomczak and Welling, 2018).

    ``encoder`` is the VAE's own encoder module (x flattened to (B, d_x) -> (B, 2D) = [mu, logvar], as
    ``VAE.encoder_params`` calls it), shared, not copied: the prior moves as the encoder learns, and the
    encoder's gradient gets a term from the prior. ``pseudo_inputs`` (K, *input_shape) are the starting u_k,
    e.g. K training images or the mean image plus a little noise (:func:`initial_pseudo_inputs`).

    With ``unit_interval=True`` (an encoder of images in [0, 1]) u = sigmoid(a) for free parameters a,
    started at logit(u_0) with u_0 clipped to [``margin``, 1 - ``margin``]; otherwise u is itself the
    free parameter.
    """

    def __init__(self, encoder: nn.Module, pseudo_inputs: torch.Tensor, unit_interval: bool = True,
                 margin: float = 0.05):
        super().__init__()
        if not isinstance(encoder, nn.Module):
            raise TypeError(f"encoder must be an nn.Module (the VAE's encoder), got {type(encoder).__name__}")
        checks.tensor("pseudo_inputs", pseudo_inputs, "(K, *input_shape)", finite=True, min_dim=2, nonempty=True)
        checks.flag("unit_interval", unit_interval)
        checks.number("margin", margin, minimum=0)
        if margin >= 0.5:
            raise ValueError(f"margin must be below 0.5 (pseudo-inputs start in [margin, 1 - margin]), got {margin!r}")
        weights = next(encoder.parameters(), None)
        if weights is not None:
            checks.same_dtype("pseudo_inputs", pseudo_inputs, weights.dtype, "the encoder's weights")
        if unit_interval and not bool(((pseudo_inputs >= 0) & (pseudo_inputs <= 1)).all()):
            raise ValueError("pseudo_inputs must lie in [0, 1] for an encoder of images (unit_interval=True), got "
                             f"values in [{pseudo_inputs.min().item():.3g}, {pseudo_inputs.max().item():.3g}]")
        self.encoder, self.unit_interval = encoder, unit_interval
        u0 = pseudo_inputs.detach().clone()
        # Pseudo-inputs stand in for images, so an encoder trained on [0, 1] must see them in [0, 1]; a
        # sigmoid keeps them there with a gradient everywhere (clipping would stop it at the bounds). The
        # margin keeps the sigmoid off its flat ends at the start: at 0 or 1 exactly its slope is 0.
        self.free = nn.Parameter(torch.logit(u0.clamp(margin, 1 - margin)) if unit_interval else u0)
        self._check_encoder_output()

    @property
    def pseudo_inputs(self) -> torch.Tensor:
        """The pseudo-inputs u_k, (K, *input_shape)."""
        return torch.sigmoid(self.free) if self.unit_interval else self.free

    def components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q_phi(z | u_k) for the K pseudo-inputs, each (K, D)."""
        u = self.pseudo_inputs
        return self.encoder(u.flatten(1)).to(u.dtype).chunk(2, dim=-1)

    def forward(self) -> MixtureSameFamily:
        mu, logvar = self.components()
        return gaussian_mixture(torch.zeros(len(mu), dtype=mu.dtype, device=mu.device), mu, logvar)

    def extra_repr(self) -> str:
        # in the repr, so that fit_cached's key (which reads repr(model)) tells VampPriors of other K apart
        return (f"num_components={len(self.free)}, input_shape={tuple(self.free.shape[1:])}, "
                f"unit_interval={self.unit_interval}")

    def _check_encoder_output(self) -> None:
        k = len(self.free)
        try:
            with torch.no_grad():
                out = self.encoder(self.pseudo_inputs.flatten(1))
        except RuntimeError as err:  # torch's words for an input of the wrong width
            raise ValueError(f"pseudo_inputs of shape {tuple(self.free.shape)} do not fit the encoder ({err}); "
                             f"they must have the images' shape (K, *input_shape)") from None
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or len(out) != k or out.shape[1] % 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"encoder must map the K = {k} flattened pseudo_inputs to (K, 2D) = [mu, logvar], "
                             f"got {shape}; pseudo_inputs must have the images' shape (K, *input_shape)")


def initial_pseudo_inputs(x: torch.Tensor, num_components: int, noise: float | None = None,
                          seed: int = 0) -> torch.Tensor:
    """K starting pseudo-inputs for :class:`VampPrior` from training images x (N, *input_shape).

    ``noise=None``: K images of x drawn without replacement. ``noise=s``: the mean image of x plus
    N(0, s^2) noise per pixel, clipped to [0, 1]. Seeded by ``seed``.
    """
    checks.tensor("x", x, "(N, *input_shape)", finite=True, min_dim=2, nonempty=True)
    num_components = checks.integer("num_components", num_components)
    if noise is not None:
        checks.number("noise", noise, minimum=0)
    seed = checks.seed("seed", seed)
    g = torch.Generator().manual_seed(seed)
    if noise is None:
        if num_components > len(x):
            raise ValueError(f"num_components must be at most the number of images N = {len(x)} when they are "
                             f"drawn from x, got {num_components}")
        return x[torch.randperm(len(x), generator=g)[:num_components].to(x.device)].clone()
    eps = torch.randn((num_components, *x.shape[1:]), generator=g, dtype=x.dtype).to(x.device)
    return (x.mean(0) + noise * eps).clamp(0, 1)

