"""An autoencoder and a variational autoencoder as Lightning modules, built from small MLPs.

Both map images x of shape (B, C, H, W) to codes z of shape (B, latent_dim) and back. The
``AutoEncoder`` encodes each image to a point; the ``VAE`` encodes it to a distribution q(z|x) and
trains on the negative ELBO with a weight ``beta`` on the KL term:

    loss(x) = E_q[-log p(x|z)] + beta * KL(q(z|x) || p(z))  =  distortion + beta * rate,

summed over pixels and latent dimensions, then averaged over the batch.
"""
from __future__ import annotations

import math

import pytorch_lightning as pl
import torch
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal
from torchmetrics import MeanMetric

from .divergences import kl_normal_std_normal

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus}
LIKELIHOODS = ("bernoulli", "gaussian")


def mlp(sizes, activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _check_hparams(latent_dim, hidden, lr, input_shape):
    if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
    if not all(isinstance(h, int) and h >= 1 for h in hidden):
        raise ValueError(f"hidden must be a sequence of positive integers, got {hidden!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    if not all(isinstance(s, int) and s >= 1 for s in input_shape):
        raise ValueError(f"input_shape must list positive integers such as (1, 28, 28), got {input_shape!r}")


class LatentVariableModule(pl.LightningModule):
    """What the AE and the VAE share: Adam, input checks, logging and a guard against NaN losses.

    A subclass defines ``loss_terms(x)``, a dict of per-example tensors (B,) whose ``"loss"`` entry is
    averaged over the batch and minimised. Each entry's epoch mean is logged as ``train/<name>`` and
    ``val/<name>``, and its batch mean every ``log_every_n_steps`` steps as ``train_step/<name>``.
    """

    terms: tuple[str, ...] = ("loss",)

    def __init__(self, input_shape, lr: float):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.input_dim = math.prod(self.input_shape)
        self.lr = lr
        # Epoch means kept by torchmetrics: it sums values and counts across processes, so the mean is
        # exact under DDP too, even when processes hold different numbers of examples.
        self.train_means = nn.ModuleDict({name: MeanMetric() for name in self.terms})
        self.val_means = nn.ModuleDict({name: MeanMetric() for name in self.terms})

    def check_images(self, x: torch.Tensor, unit_interval: bool = True) -> None:
        """Raise a clear error unless x is a float tensor of shape (B, *input_shape) (in [0, 1] if asked)."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor (images scaled to [0, 1]), got dtype {x.dtype}; "
                            "divide uint8 images by 255")
        if x.dim() != 1 + len(self.input_shape) or tuple(x.shape[1:]) != self.input_shape:
            raise ValueError(f"x must have shape (batch, {', '.join(map(str, self.input_shape))}), "
                             f"got {tuple(x.shape)}")
        if unit_interval and x.numel():
            lo, hi = torch.aminmax(x.detach())
            if lo < 0 or hi > 1:
                raise ValueError(f"x must lie in [0, 1] for a Bernoulli likelihood, got values in "
                                 f"[{lo.item():.3g}, {hi.item():.3g}]")

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _terms(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        terms = self.loss_terms(x)
        for name, value in terms.items():
            getattr(self, f"{stage}_means")[name].update(value.detach())
        return terms

    def _log_epoch_means(self, stage: str) -> None:
        for name, metric in getattr(self, f"{stage}_means").items():
            self.log(f"{stage}/{name}", metric)

    def training_step(self, batch, batch_idx):
        terms = self._terms(batch, "train")
        loss = terms["loss"].mean()
        if not torch.isfinite(loss):
            bad = [k for k, v in terms.items() if k != "loss" and not torch.isfinite(v).all()]
            raise FloatingPointError(
                f"the training loss became {loss.item()} at step {self.global_step} "
                f"(non-finite terms: {', '.join(bad) or 'loss'}); lower the learning rate or check the data")
        # self.log costs about a millisecond a call, as much as a whole step of a small MLP, so step
        # values are logged only as often as the logger writes them
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.log_dict({f"train_step/{k}": v.detach().mean() for k, v in terms.items()})
        return loss

    def on_train_epoch_end(self):
        self._log_epoch_means("train")

    def validation_step(self, batch, batch_idx):
        self._terms(batch, "val")

    def on_validation_epoch_end(self):
        self._log_epoch_means("val")

    def configure_optimizers(self):
        # fused: one kernel updates every parameter, instead of a handful of small ops per tensor
        return torch.optim.Adam(self.parameters(), lr=self.lr, fused=True)


class AutoEncoder(LatentVariableModule):
    """A deterministic autoencoder: z = f(x), reconstruction logits g(z), loss = -log Bernoulli(x; g(z)).

    The loss is the VAE's distortion term with the code fixed to a point and no KL term.
    """

    terms = ("loss",)

    def __init__(self, latent_dim: int = 2, hidden=(400,), lr: float = 1e-3, input_shape=(1, 28, 28),
                 activation: str = "relu"):
        hidden, input_shape = tuple(hidden), tuple(input_shape)
        _check_hparams(latent_dim, hidden, lr, input_shape)
        super().__init__(input_shape, lr)
        self.save_hyperparameters()
        self.latent_dim = latent_dim
        self.encoder = mlp([self.input_dim, *hidden, latent_dim], activation)
        self.decoder = mlp([latent_dim, *reversed(hidden), self.input_dim], activation)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code of each image, a point: (B, *input_shape) -> (B, latent_dim)."""
        self.check_images(x, unit_interval=False)
        return self.encoder(x.flatten(1))

    def decode(self, z: torch.Tensor) -> Independent:
        """p(x|z) = prod_pixels Bernoulli(sigmoid(g(z))); ``.mean`` is the reconstructed image."""
        logits = self.decoder(z).view(*z.shape[:-1], *self.input_shape)
        return Independent(Bernoulli(logits=logits, validate_args=False), len(self.input_shape))

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.check_images(x)
        return {"loss": -self.decode(self.encode(x)).log_prob(x)}


class VAE(LatentVariableModule):
    """A variational autoencoder with an MLP encoder q(z|x) and decoder p(x|z), and prior p(z) = N(0, I).

    Args:
        latent_dim: D, the size of z.
        hidden: widths of the encoder's hidden layers; the decoder mirrors them.
        beta: weight on the KL (rate) term; 1 gives the ELBO.
        likelihood: ``"bernoulli"`` (decoder outputs logits) or ``"gaussian"`` (decoder outputs the mean,
            with one variance for all pixels, learned unless ``gaussian_std`` fixes it).
        kl: ``"analytic"`` (closed form) or ``"mc"`` (one-sample estimate log q(z|x) - log p(z)).
        warmup_steps: if > 0, the KL weight grows linearly from 0 to ``beta`` over this many steps.
        free_bits: if > 0, each latent dimension's batch-averaged KL counts as at least this many nats.
    """

    terms = ("loss", "elbo", "rate", "distortion")

    def __init__(self, latent_dim: int = 2, hidden=(400,), beta: float = 1.0, likelihood: str = "bernoulli",
                 kl: str = "analytic", lr: float = 1e-3, input_shape=(1, 28, 28), activation: str = "relu",
                 gaussian_std: float | None = None, warmup_steps: int = 0, free_bits: float = 0.0):
        hidden, input_shape = tuple(hidden), tuple(input_shape)
        _check_hparams(latent_dim, hidden, lr, input_shape)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not math.isfinite(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if kl not in ("analytic", "mc"):
            raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}")
        if gaussian_std is not None and not (isinstance(gaussian_std, (int, float)) and gaussian_std > 0):
            raise ValueError(f"gaussian_std must be None (learned) or a positive number, got {gaussian_std!r}")
        if not isinstance(warmup_steps, int) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if not isinstance(free_bits, (int, float)) or not math.isfinite(free_bits) or free_bits < 0:
            raise ValueError(f"free_bits must be a finite number >= 0, got {free_bits!r}")
        super().__init__(input_shape, lr)
        self.save_hyperparameters()
        self.latent_dim, self.beta, self.likelihood, self.kl = latent_dim, float(beta), likelihood, kl
        self.warmup_steps, self.free_bits = warmup_steps, float(free_bits)
        self.encoder = mlp([self.input_dim, *hidden, 2 * latent_dim], activation)  # outputs [mu, logvar]
        self.decoder = mlp([latent_dim, *reversed(hidden), self.input_dim], activation)
        if likelihood == "gaussian":
            x_logvar = torch.tensor(2 * math.log(gaussian_std) if gaussian_std else 0.0)
            self.x_logvar = nn.Parameter(x_logvar, requires_grad=gaussian_std is None)
        self.register_buffer("prior_loc", torch.zeros(latent_dim), persistent=False)

    @property
    def prior(self) -> Independent:
        """p(z) = N(0, I_D)."""
        return Independent(Normal(self.prior_loc, torch.ones_like(self.prior_loc)), 1)

    def encoder_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x), each (B, D)."""
        self.check_images(x, unit_interval=self.likelihood == "bernoulli")
        mu, logvar = self.encoder(x.flatten(1)).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> Independent:
        """q(z|x) = N(mu(x), diag exp(logvar(x))), a distribution with batch shape (B,), event shape (D,)."""
        mu, logvar = self.encoder_params(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        """p(x|z) for z of shape (..., D): batch shape (...), event shape input_shape; ``.mean`` is an image."""
        out = self.decoder(z).view(*z.shape[:-1], *self.input_shape)
        if self.likelihood == "bernoulli":
            # logits, not probabilities: log-sigmoid stays finite where sigmoid would round to 0 or 1
            return Independent(Bernoulli(logits=out, validate_args=False), len(self.input_shape))
        return Independent(Normal(out, torch.exp(0.5 * self.x_logvar)), len(self.input_shape))

    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """n images from the model: z ~ p(z), then the mean of p(x|z) (or a draw if ``mean=False``)."""
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        px = self.decode(self.prior.sample((n,)))
        return px.mean if mean else px.sample()

    def kl_weight(self) -> float:
        """beta, scaled by min(1, step / warmup_steps) while warming up."""
        if self.warmup_steps and self.training:
            return self.beta * min(1.0, self.global_step / self.warmup_steps)
        return self.beta

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example terms (B,): distortion -log p(x|z) with z ~ q (one reparameterized draw), rate
        KL(q(z|x) || p(z)), elbo = -(distortion + rate), and loss = distortion + beta * rate."""
        mu, logvar = self.encoder_params(x)
        # no argument validation: a NaN scale should reach the loss check, which names the step and term
        q = Independent(Normal(mu, torch.exp(0.5 * logvar), validate_args=False), 1)
        z = q.rsample()  # z = mu + sigma * eps: the gradient reaches mu and logvar through z
        distortion = -self.decode(z).log_prob(x)
        if self.kl == "analytic":
            rate = kl_normal_std_normal(mu, logvar)
        else:
            rate = q.log_prob(z) - self.prior.log_prob(z)
        penalised = rate
        if self.free_bits and self.training:
            # per dimension, the batch-mean KL below free_bits costs nothing (Kingma et al., 2016)
            # so its batch mean is sum_j max(free_bits, mean_b KL_bj), with no gradient below the floor
            kl_dims = 0.5 * (torch.expm1(logvar) - logvar + mu.pow(2))
            above = (kl_dims.mean(0) >= self.free_bits).detach()
            penalised = torch.where(above, kl_dims, torch.full_like(kl_dims, self.free_bits)).sum(-1)
        return {"loss": distortion + self.kl_weight() * penalised, "elbo": -(distortion + rate),
                "rate": rate, "distortion": distortion}
