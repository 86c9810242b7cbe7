"""An autoencoder and a variational autoencoder, each assembled from parts.

Both map images x of shape (B, C, H, W) to codes z of shape (B, D) and back. The ``AutoEncoder``
encodes each image to a point; the ``VAE`` encodes it to a distribution q(z|x) and trains on the
negative ELBO with a weight ``beta`` on the KL term:

    loss(x) = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))  =  distortion + beta * rate,

summed over pixels and latent dimensions, then averaged over the batch. A VAE is four parts:

    encoder     network  x -> (mu, logvar), the parameters of q(z|x) = N(mu, diag exp(logvar))
    decoder     network  z -> the parameters of p(x|z)                         (``networks``)
    likelihood  the decoder's output -> p(x|z), Bernoulli, Gaussian or a part  (``likelihoods``)
    prior       p(z), N(0, I) by default                                       (``priors``)

The course's MLPs and N(0, I) are the defaults; pass other parts to build another VAE from the same
code. The Lightning steps, logging and checkpoint checks are in ``lightning``; the variants of the
loss (Monte Carlo KL, KL warm-up, free bits) in ``objectives``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Distribution

from . import checks, objectives
from .divergences import DiagonalNormal
from .likelihoods import LIKELIHOODS, BernoulliLikelihood
from .lightning import LatentVariableModule, drawn_codes
from .networks import mlp
from .priors import StandardNormal


class VAE(LatentVariableModule):
    """A variational autoencoder: q(z|x) from the encoder, p(x|z) from the decoder, and a prior p(z).

    Args:
        latent_dim: D, the size of z.
        hidden: widths of the default encoder's hidden layers; the default decoder mirrors them.
        beta: weight on the KL (rate) term; 1 gives the ELBO.
        likelihood: ``"bernoulli"`` (decoder outputs logits) or ``"gaussian"`` (decoder outputs the mean,
            with one variance for all pixels, learned unless ``gaussian_std`` fixes it; ``gaussian_std`` is
            refused with ``"bernoulli"``, which has no noise scale), or an ``nn.Module`` part mapping the
            decoder's output to p(x|z) (its ``unit_interval`` attribute, default True, says whether images
            must lie in [0, 1]).
        kl: ``"analytic"`` (closed form) or ``"mc"`` (one-sample estimate log q(z|x) - log p(z)).
        warmup_steps: if > 0, the KL weight grows linearly from 0 to ``beta`` over this many steps.
        free_bits: if > 0, each latent dimension's batch-averaged KL counts as at least this many nats.
        encoder, decoder, prior: parts to use instead of the defaults: an ``nn.Module`` mapping x
            (B, *input_shape) to (B, 2D) = [mu, logvar]; one mapping z (..., D) to the likelihood's
            parameters (..., C*H*W); a module whose ``forward()`` returns p(z).
        encoding: a part mapping the encoder's output (B, C) to q(z|x) (a flow, ``flows.FlowEncoding``);
            None for the diagonal Gaussian of [mu, logvar].
    """

    terms = ("loss", "elbo", "rate", "distortion")
    loss_parts = ("rate", "distortion")
    architecture = LatentVariableModule.architecture + ("likelihood",)

    def __init__(self, latent_dim: int = 2, hidden=(400,), beta: float = 1.0, likelihood: str | nn.Module = "bernoulli",
                 kl: str = "analytic", lr: float = 1e-3, input_shape=(1, 28, 28), activation: str = "relu",
                 gaussian_std: float | None = None, warmup_steps: int = 0, free_bits: float = 0.0,
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None, prior: nn.Module | None = None,
                 encoding: nn.Module | None = None):
        latent_dim, hidden, lr, input_shape = _check_shared(latent_dim, hidden, lr, input_shape)
        beta, free_bits = checks.native(beta), checks.native(free_bits)
        checks.number("beta", beta, minimum=0)
        part = isinstance(likelihood, nn.Module)
        if not part:
            checks.choice("likelihood", likelihood, LIKELIHOODS)
        if gaussian_std is not None and likelihood != "gaussian":
            raise ValueError(f"gaussian_std applies to likelihood='gaussian' (the noise sigma_x of p(x|z)); the "
                             f"{likelihood} likelihood has no noise scale, got gaussian_std={gaussian_std!r}")
        gaussian_std = checks.native(gaussian_std)
        checks.choice("kl", kl, objectives.KL_ESTIMATORS)
        warmup_steps = checks.integer("warmup_steps", warmup_steps, minimum=0)
        checks.number("free_bits", free_bits, minimum=0)
        _check_parts(encoder=encoder, decoder=decoder, prior=prior, encoding=encoding)
        super().__init__(input_shape, lr)
        self.save_hyperparameters(ignore=["encoder", "decoder", "prior", "encoding"] + (["likelihood"] if part else []))
        self.latent_dim, self.beta, self.kl = latent_dim, float(beta), objectives.KL_ESTIMATORS[kl]
        self.warmup_steps, self.free_bits = warmup_steps, float(free_bits)
        self.encoder = encoder or mlp([self.input_dim, *hidden, 2 * latent_dim], activation)
        self.decoder = decoder or mlp([latent_dim, *reversed(hidden), self.input_dim], activation)
        if part:
            self.likelihood = likelihood
        elif likelihood == "gaussian":
            self.likelihood = LIKELIHOODS[likelihood](input_shape, gaussian_std)
        else:
            self.likelihood = LIKELIHOODS[likelihood](input_shape)
        self.unit_interval = getattr(self.likelihood, "unit_interval", True)
        self.p_z = prior or StandardNormal(latent_dim)
        self.encoding = encoding  # None: q(z|x) = N(mu, diag exp(logvar)) from the encoder's 2D outputs

    @property
    def prior(self) -> Distribution:
        """p(z), a distribution over z of shape (D,)."""
        return self.p_z()

    def encoder_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (B, D)."""
        self.check_images(x)
        # under mixed precision (bf16 autocast) the layers run in bfloat16; q's parameters and the loss
        # are kept in the images' precision
        mu, logvar = self.encoder(x.flatten(1)).to(x.dtype).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> Distribution:
        """q(z|x) = N(mu(x), diag exp(logvar(x))), or the ``encoding`` part's distribution for the encoder's
        output (a flow, ``flows.FlowEncoding``): batch shape (B,), event shape (D,)."""
        if self.encoding is not None:
            self.check_images(x)
            return self.encoding(self.encoder(x.flatten(1)).to(x.dtype))
        # no argument validation: a NaN scale reaches the loss check, which names the step and the term
        return DiagonalNormal(*self.encoder_params(x), validate_args=False)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z of shape (..., D): batch shape (...), event shape input_shape; ``.mean`` is an image."""
        self.check_codes(z)
        return self.likelihood(self.decoder(z).to(z.dtype))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example terms (B,): distortion -log p(x|z) at one reparameterized draw z ~ q(z|x), rate
        KL(q(z|x) || p(z)), elbo = -(distortion + rate), and loss = distortion + beta * rate."""
        return self.terms_from(x, self.encode(x), self.decode)

    def terms_from(self, x: torch.Tensor, q: Distribution, decode) -> dict[str, torch.Tensor]:
        """The terms of ``loss_terms`` from an encoding q of x (batch (B,)) and a map ``decode``: z -> p(x|z).
        A model that conditions q and p(x|z) on more than z (``conditional``) passes its own q and decode."""
        z = q.rsample()                           # z = mu + sigma * eps: the gradient reaches the encoder
        with drawn_codes(self):                   # a non-finite z is the loss check's to report
            distortion = -decode(z).log_prob(x)   # -log p(x|z), summed over pixels
        rate = self.kl(q, self.prior, z)          # KL(q(z|x) || p(z)), summed over latent dimensions
        loss = distortion + self.kl_weight() * self.rate_charged(q, rate)
        return {"loss": loss, "elbo": -(distortion + rate), "rate": rate, "distortion": distortion}

    def kl_weight(self) -> float:
        """beta; while training with ``warmup_steps``, ramped up to it (``objectives.kl_warmup``)."""
        if self.warmup_steps and self.training:
            return objectives.kl_warmup(self.beta, self.global_step, self.warmup_steps)
        return self.beta

    def rate_charged(self, q: Distribution, rate: torch.Tensor) -> torch.Tensor:
        """The rate; while training with ``free_bits``, with its floor per dimension (``objectives.free_bits``)."""
        if self.free_bits and self.training:
            return objectives.free_bits(q, self.prior, self.free_bits)
        return rate

    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """n images from the model: z ~ p(z), then the mean of p(x|z) (or a draw if ``mean=False``)."""
        n = checks.integer("n", n)
        checks.flag("mean", mean)
        px = self.decode(self.prior.sample((n,)))
        return px.mean if mean else px.sample()


class AutoEncoder(LatentVariableModule):
    """A deterministic autoencoder: z = f(x), reconstruction logits g(z), loss = -log Bernoulli(x; g(z)).

    The loss is the VAE's distortion term with the code fixed to a point and no KL term.
    """

    def __init__(self, latent_dim: int = 2, hidden=(400,), lr: float = 1e-3, input_shape=(1, 28, 28),
                 activation: str = "relu"):
        latent_dim, hidden, lr, input_shape = _check_shared(latent_dim, hidden, lr, input_shape)
        super().__init__(input_shape, lr)
        self.save_hyperparameters()
        self.latent_dim = latent_dim
        self.encoder = mlp([self.input_dim, *hidden, latent_dim], activation)
        self.decoder = mlp([latent_dim, *reversed(hidden), self.input_dim], activation)
        self.likelihood = BernoulliLikelihood(input_shape)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each image, a point: (B, *input_shape) -> (B, latent_dim)."""
        self.check_images(x, unit_interval=False)
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) = prod_pixels Bernoulli(sigmoid(g(z))); ``.mean`` is the reconstructed image."""
        self.check_codes(z)
        return self.likelihood(self.decoder(z))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_images(x)
        with drawn_codes(self):
            return {"loss": -self.decode(self.encode(x)).log_prob(x)}


def _check_shared(latent_dim, hidden, lr, input_shape):
    """Check the arguments both models take; return them with ints and tuples where NumPy scalars or lists came."""
    latent_dim = checks.integer("latent_dim", latent_dim)
    hidden = checks.sizes("hidden", hidden, "(400,)", allow_empty=True)
    lr = checks.native(lr)
    checks.number("lr", lr, positive=True)
    return latent_dim, hidden, lr, checks.sizes("input_shape", input_shape, "(1, 28, 28)")


def _check_parts(**parts) -> None:
    for name, part in parts.items():
        if part is not None and not isinstance(part, nn.Module):
            raise TypeError(f"{name} must be an nn.Module (or None for the default), got {type(part).__name__}")
