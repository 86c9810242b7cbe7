"""A conditional VAE: the label y is an input of both the encoder and the decoder.

Where a VAE models p(x) = int p(x|z) p(z) dz, a conditional VAE models one distribution of images per
label, p(x|y) = int p(x|z, y) p(z) dz, with an encoding q(z|x, y) to approximate its posterior. The ELBO
is the VAE's with y added to every conditional, and bounds log p(x|y):

    log p(x|y) >= E_q(z|x,y)[log p(x|z, y)] - KL(q(z|x, y) || p(z))  =  -(distortion + rate).

The parts are the VAE's, each given the one-hot label e_y (C numbers) beside its usual input:

    encoder  [x, e_y]  (B, D_x + C)     -> (B, 2 d_z) = [mu, logvar] of q(z|x, y)
    decoder  [z, e_y]  (..., d_z + C)   -> the parameters of p(x|z, y), (..., D_x)

Nothing else changes: the loss is ``VAE.terms_from`` with these q and p(x|z, y), and ``given(y)`` turns the
model into one with ``encode(x)`` and ``decode(z)`` for fixed labels, so that the estimators of
``estimators`` (``iwae_bound``, ``elbo``) estimate log p(x|y) unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.distributions import Distribution

from . import checks
from .divergences import DiagonalNormal
from .estimators import iwae_bound
from .models import VAE, _check_shared
from .networks import mlp


class ConditionalVAE(VAE):
    """A VAE whose encoding q(z|x, y) and likelihood p(x|z, y) also take a class label y in {0, ..., C-1}.

    Args:
        num_classes: C, the number of labels (10 for MNIST's digits).
        latent_dim, hidden, beta, lr, input_shape, activation, prior: as for ``VAE``.
        encoder, decoder: parts to use instead of the default MLPs: one mapping [x flattened, e_y] (B, D_x + C)
            to (B, 2 d_z), one mapping [z, e_y] (..., d_z + C) to the logits of p(x|z, y) (..., D_x).

    ``loss_terms(x, y)``, ``encode(x, y)`` and ``decode(z, y)`` take integer labels y; training with ``fit``
    reads them from the batches (x, y).
    """

    needs_labels = True
    architecture = VAE.architecture + ("num_classes",)

    def __init__(self, num_classes: int = 10, latent_dim: int = 2, hidden=(400,), beta: float = 1.0,
                 lr: float = 1e-3, input_shape=(1, 28, 28), activation: str = "relu",
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None, prior: nn.Module | None = None):
        num_classes = checks.integer("num_classes", num_classes, minimum=2)
        latent_dim, hidden, lr, input_shape = _check_shared(latent_dim, hidden, lr, input_shape)
        d_x = math.prod(input_shape)
        # the VAE's default MLPs, each with C more inputs for the one-hot label
        encoder = encoder or mlp([d_x + num_classes, *hidden, 2 * latent_dim], activation)
        decoder = decoder or mlp([latent_dim + num_classes, *reversed(hidden), d_x], activation)
        super().__init__(latent_dim=latent_dim, hidden=hidden, beta=beta, lr=lr, input_shape=input_shape,
                         activation=activation, encoder=encoder, decoder=decoder, prior=prior)
        self.num_classes = num_classes

    # --- the model: the VAE's maps, each given e_y --------------------------------------------------------

    def one_hot(self, y: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """e_y: integer labels (...) -> (..., C), 1 at the label and 0 elsewhere."""
        return nn.functional.one_hot(y, self.num_classes).to(dtype)

    def encoder_params(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, logvar) of q(z|x, y), each (B, d_z), from [x, e_y]."""
        self.check_images(x)
        self.check_labels(y, (len(x),))
        inputs = torch.cat([x.flatten(1), self.one_hot(y, x.dtype)], dim=-1)  # (B, D_x + C)
        mu, logvar = self.encoder(inputs).to(x.dtype).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor, y: torch.Tensor) -> DiagonalNormal:
        """q(z|x, y) = N(mu(x, y), diag exp(logvar(x, y))): batch shape (B,), event shape (d_z,)."""
        return DiagonalNormal(*self.encoder_params(x, y), validate_args=False)

    def decode(self, z: torch.Tensor, y: torch.Tensor) -> Distribution:
        """p(x|z, y) for codes z (..., d_z) and labels y whose shape matches z's leading dimensions or their
        last ones (y (B,) with z (k, B, d_z) decodes k draws for each of B labelled images)."""
        self.check_codes(z)
        self.check_labels(y, z.shape[:-1])
        e_y = self.one_hot(y, z.dtype).expand(*z.shape[:-1], self.num_classes)
        return self.likelihood(self.decoder(torch.cat([z, e_y], dim=-1)).to(z.dtype))

    def loss_terms(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        """The VAE's terms (B,) with q(z|x, y) and p(x|z, y): -elbo bounds -log p(x|y)."""
        return self.terms_from(x, self.encode(x, y), lambda z: self.decode(z, y))

    def sample(self, n: int, y, mean: bool = True) -> torch.Tensor:
        """n images of label(s) y (an int, or labels (n,)): z ~ p(z), then the mean of p(x|z, y) (or a draw)."""
        n = checks.integer("n", n)
        checks.flag("mean", mean)
        if checks.is_int(y):
            y = torch.full((n,), int(y), dtype=torch.long, device=self.device)
        px = self.decode(self.prior.sample((n,)), y)
        return px.mean if mean else px.sample()

    def given(self, y: torch.Tensor) -> "Given":
        """This model with the labels y (B,) fixed: ``encode(x)`` is q(z|x, y), ``decode(z)`` p(x|z, y), so that
        ``estimators.iwae_bound(model.given(y), x, k)`` estimates log p(x|y) for the B images x."""
        return Given(self, self.check_labels(y, None))

    # --- argument checks ----------------------------------------------------------------------------------

    def check_labels(self, y, shape) -> torch.Tensor:
        """Raise a clear error naming y unless it is an integer tensor of labels in [0, C) on the weights'
        device, of a shape that broadcasts to ``shape`` (None: any 1-D shape)."""
        if not isinstance(y, torch.Tensor) or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
            raise TypeError(f"y must be an integer tensor of labels in 0..{self.num_classes - 1} (dtype torch.long), "
                            f"got {checks.show(y)}; pass class indices, not one-hot vectors or floats")
        if shape is None:
            if y.dim() != 1:
                raise ValueError(f"y must be a 1-D tensor of labels (B,), got shape {tuple(y.shape)}")
        elif y.dim() > len(shape) or tuple(shape[len(shape) - y.dim():]) != tuple(y.shape):
            raise ValueError(f"y must hold one label per example, of shape {tuple(shape)} (or its last dimensions), "
                             f"got shape {tuple(y.shape)}")
        if y.numel() and (y.min() < 0 or y.max() >= self.num_classes):
            raise ValueError(f"y must hold labels in 0..{self.num_classes - 1} (num_classes={self.num_classes}), "
                             f"got values in [{y.min().item()}, {y.max().item()}]")
        if y.device != self.device:
            raise ValueError(f"y is on {y.device} but the model's weights are on {self.device}; move it with "
                             f"y.to({str(self.device)!r})")
        return y


class Given:
    """A ``ConditionalVAE`` with its labels fixed: the interface of a VAE (``encode(x)``, ``decode(z)``,
    ``prior``) for the B images those labels belong to, as the estimators expect."""

    def __init__(self, model: ConditionalVAE, y: torch.Tensor):
        self.model, self.y = model, y

    @property
    def prior(self) -> Distribution:
        return self.model.prior

    def encode(self, x: torch.Tensor) -> DiagonalNormal:
        return self.model.encode(x, self.y)

    def decode(self, z: torch.Tensor) -> Distribution:
        return self.model.decode(z, self.y)

    def check_images(self, x: torch.Tensor) -> None:
        self.model.check_images(x)

    def parameters(self):
        return self.model.parameters()


@torch.no_grad()
def log_likelihood_given(model: ConditionalVAE, x: torch.Tensor, y: torch.Tensor, k: int = 1000,
                         batch_size: int = 100) -> torch.Tensor:
    """IWAE_k estimates of log p(x_n|y_n), one per example, ``batch_size`` examples at a time: (N, ...), (N,) -> (N,).

    Each is a lower bound on log p(x_n|y_n) that tightens with k (``estimators.iwae_bound``, with q(z|x, y)).
    """
    if not isinstance(model, ConditionalVAE):
        raise TypeError(f"model must be a ConditionalVAE, got {type(model).__name__}")
    checks.tensor("x", x, "(N, ...)", nonempty=True)
    model.check_labels(y, (len(x),))
    k, batch_size = checks.integer("k", k), checks.integer("batch_size", batch_size)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([iwae_bound(model.given(yb), xb, k) for xb, yb in zip(x.split(batch_size), y.split(batch_size))])
    finally:
        model.train(was_training)
