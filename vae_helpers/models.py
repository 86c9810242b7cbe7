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
from pytorch_lightning.trainer.states import TrainerFn
from torch import nn
from torch.distributions import Bernoulli, Independent, Normal
from torchmetrics import Metric

from .divergences import kl_normal_std_normal, sample_with_log_prob

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "softplus": nn.Softplus}
LIKELIHOODS = ("bernoulli", "gaussian")


def mlp(sizes, activation: str = "relu") -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none after the last)."""
    sizes = list(sizes)
    if len(sizes) < 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"sizes must list at least two positive integers, got {sizes!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _sizes(name: str, value, message: str, allow_empty: bool) -> tuple[int, ...]:
    """``value`` as a tuple of positive integers, or a ValueError that names the argument."""
    try:
        sizes = tuple(value)
    except TypeError:
        sizes = None
    if sizes is None or not all(_is_int(s) and s >= 1 for s in sizes) or (not sizes and not allow_empty):
        raise ValueError(f"{name} must {message}, got {value!r}")
    return sizes


def _check_hparams(latent_dim, hidden, lr, input_shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Check the arguments every model shares; return ``hidden`` and ``input_shape`` as tuples."""
    if not _is_int(latent_dim) or latent_dim < 1:
        raise ValueError(f"latent_dim must be an integer >= 1, got {latent_dim!r}")
    hidden = _sizes("hidden", hidden, "be a sequence of positive integers such as (400,)", allow_empty=True)
    if not (_is_number(lr) and lr > 0):
        raise ValueError(f"lr must be a positive finite number, got {lr!r}")
    input_shape = _sizes("input_shape", input_shape, "list positive integers such as (1, 28, 28)", allow_empty=False)
    return hidden, input_shape


def _describe(name: str, hparams: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in hparams.items())})"


class TermMeans(Metric):
    """Epoch means of several per-example terms at once: update with a (T, B) tensor, compute gives (T,).

    torchmetrics sums the totals and the count over processes before dividing, so the mean is exact under
    DDP too, even when processes hold different numbers of examples. One update per step for all terms
    keeps the bookkeeping a small fraction of a training step. NaNs are kept: a NaN shows in the mean.
    """

    def __init__(self, n_terms: int):
        super().__init__()
        self.add_state("total", default=torch.zeros(n_terms, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor) -> None:
        # in place: rebinding the states would pass through nn.Module.__setattr__ on every step
        self.total.add_(values.sum(dim=1, dtype=torch.float64))
        self.count.add_(values.shape[1])

    def compute(self) -> torch.Tensor:
        return (self.total / self.count).float()


class LatentVariableModule(pl.LightningModule):
    """What the AE and the VAE share: Adam, input checks, logging, a guard against NaN losses and checks
    on the checkpoints it loads.

    A subclass defines ``loss_terms(x)``, a dict of per-example tensors (B,) whose ``"loss"`` entry is
    averaged over the batch and minimised. Each entry's epoch mean is logged as ``train/<name>`` and
    ``val/<name>``, and its batch mean every ``log_every_n_steps`` steps as ``train_step/<name>``.
    """

    terms: tuple[str, ...] = ("loss",)
    #: the terms the loss is made of, named when the loss stops being finite
    loss_parts: tuple[str, ...] = ("loss",)
    #: the hyperparameters that fix the shapes of the weights; the others are training settings
    architecture: tuple[str, ...] = ("latent_dim", "hidden", "input_shape", "activation")
    #: whether images must lie in [0, 1] (the Bernoulli likelihood's data)
    unit_interval: bool = True

    def __init__(self, input_shape, lr: float):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.input_dim = math.prod(self.input_shape)
        self.lr = lr
        self.train_means, self.val_means = TermMeans(len(self.terms)), TermMeans(len(self.terms))

    def __setattr__(self, name: str, value) -> None:
        # Lightning sets _current_fx_name, the hook it is in, some 40 times a training step. A hook's name
        # is never a parameter, buffer or submodule, so it skips nn.Module's checks for those: 0.1 ms of a
        # 7 ms step of the examples' MNIST VAE on two CPU cores.
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def check_images(self, x: torch.Tensor, unit_interval: bool | None = None) -> None:
        """Raise a clear error unless x is a tensor of shape (B, *input_shape) with the weights' dtype,
        and, if ``unit_interval`` (default: what the likelihood needs), with values in [0, 1]."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor (images scaled to [0, 1]), got dtype {x.dtype}; "
                            "divide uint8 images by 255")
        if x.dim() != 1 + len(self.input_shape) or tuple(x.shape[1:]) != self.input_shape:
            shape = ", ".join(map(str, self.input_shape))
            hint = f"; reshape with x.view(-1, {shape})" if x.dim() >= 1 and x[:1].numel() == self.input_dim else ""
            raise ValueError(f"x must have shape (batch, {shape}), got {tuple(x.shape)}{hint}")
        if x.dtype != self.dtype:
            raise TypeError(f"x has dtype {x.dtype} but the model's weights are {self.dtype}; "
                            f"convert the images with x.to({self.dtype})")
        if (self.unit_interval if unit_interval is None else unit_interval) and x.numel():
            lo, hi = (v.item() for v in torch.aminmax(x.detach()))
            if not (lo >= 0 and hi <= 1):  # false for NaN too
                found = "NaN values" if math.isnan(lo) else f"values in [{lo:.3g}, {hi:.3g}]"
                raise ValueError(f"x must lie in [0, 1] for a Bernoulli likelihood, got {found}")

    def check_codes(self, z: torch.Tensor) -> None:
        """Raise a clear error unless z is a floating-point tensor of shape (..., latent_dim)."""
        if not isinstance(z, torch.Tensor) or not z.is_floating_point():
            raise TypeError(f"z must be a floating-point tensor of codes, got "
                            + (f"dtype {z.dtype}" if isinstance(z, torch.Tensor) else type(z).__name__))
        if z.dim() < 1 or z.shape[-1] != self.latent_dim:
            raise ValueError(f"z must have shape (..., {self.latent_dim}) (the last dimension is latent_dim), "
                             f"got {tuple(z.shape)}")

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _terms(self, batch, stage: str) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        terms = self.loss_terms(x)
        getattr(self, f"{stage}_means").update(torch.stack([terms[name].detach() for name in self.terms]))
        return terms

    def _log_epoch_means(self, stage: str) -> None:
        means = getattr(self, f"{stage}_means")
        for name, value in zip(self.terms, means.compute().reshape(-1)):  # summed over processes already
            self.log(f"{stage}/{name}", value)
        means.reset()

    def training_step(self, batch, batch_idx):
        terms = self._terms(batch, "train")
        loss = terms["loss"].mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(self._non_finite_message(loss, terms))
        # self.log costs about a millisecond a call, as much as a whole step of a small MLP, so step
        # values are logged only as often as the logger writes them
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.log_dict({f"train_step/{k}": v.detach().mean() for k, v in terms.items()})
        return loss

    def _non_finite_message(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> str:
        """Which step, which term (rate or distortion) and in how many examples the loss stopped being finite."""
        bad = {name: int((~torch.isfinite(terms[name])).sum()) for name in self.loss_parts}
        bad = {name: count for name, count in bad.items() if count}
        where = "; ".join(f"the {name} term is not finite in {count} of {len(terms[name])} examples"
                          for name, count in bad.items()) or "the loss itself is not finite"
        finite = [name for name in self.loss_parts if name not in bad and name != "loss"]
        return (f"training stopped at step {self.global_step} (epoch {self.current_epoch}): the loss became "
                f"{loss.item()}; {where}" + (f", while the {' and '.join(finite)} term stays finite" if finite else "")
                + f". Lower the learning rate (lr={self.lr}) or look for NaN or infinite values in the data.")

    def on_train_epoch_end(self):
        self._log_epoch_means("train")

    def validation_step(self, batch, batch_idx):
        self._terms(batch, "val")

    def on_validation_epoch_end(self):
        self._log_epoch_means("val")

    def configure_optimizers(self):
        # fused: one kernel updates every parameter, instead of a handful of small ops per tensor
        return torch.optim.Adam(self.parameters(), lr=self.lr, fused=True)

    # Checkpoints. Lightning saves the hyperparameters with the weights, but overwrites them with any
    # override passed to load_from_checkpoint; a copy is kept here, with the class, to check against.

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["model_config"] = {"class": type(self).__name__, "hparams": dict(self.hparams)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, before any weight is copied, a checkpoint of another model configuration.

        Loading weights needs the same class and architecture (every tensor shape); resuming a run with
        ``fit(..., ckpt_path=...)`` needs every hyperparameter, or it would be a different run.
        """
        config = checkpoint.get("model_config") or {}
        saved_class = config.get("class", type(self).__name__)
        saved = dict(config.get("hparams", checkpoint.get("hyper_parameters") or {}))
        mine = dict(self.hparams)
        resuming = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        problems = [f"class {saved_class} vs {type(self).__name__}"] if saved_class != type(self).__name__ else []
        problems += [f"{name}={saved[name]!r} vs {mine[name]!r}" for name in (mine if resuming else self.architecture)
                     if name in saved and name in mine and saved[name] != mine[name]]
        own, state = self.state_dict(), checkpoint.get("state_dict", {})
        problems += [f"{name} has shape {tuple(state[name].shape)} vs {tuple(own[name].shape)}"
                     for name in own if name in state and state[name].shape != own[name].shape]
        problems += [f"the checkpoint lacks {name}" for name in own if name not in state]
        problems += [f"the model has no {name}" for name in state if name not in own]
        if problems:
            raise ValueError(self._mismatch_message(saved_class, saved, problems, resuming))

    def _mismatch_message(self, saved_class: str, saved: dict, problems: list[str], resuming: bool) -> str:
        advice = (f"{saved_class}.load_from_checkpoint(path, weights_only=True) builds the model the checkpoint "
                  "describes")
        if resuming:
            advice += ("; to train those weights further with other settings, load them that way (passing the "
                       "new settings, e.g. beta=4.0) and call fit without ckpt_path")
        return (f"the checkpoint was saved from {_describe(saved_class, saved)}, which does not match this model, "
                f"{_describe(type(self).__name__, dict(self.hparams))} ({'; '.join(problems)}). {advice}.")


class AutoEncoder(LatentVariableModule):
    """A deterministic autoencoder: z = f(x), reconstruction logits g(z), loss = -log Bernoulli(x; g(z)).

    The loss is the VAE's distortion term with the code fixed to a point and no KL term.
    """

    terms = ("loss",)

    def __init__(self, latent_dim: int = 2, hidden=(400,), lr: float = 1e-3, input_shape=(1, 28, 28),
                 activation: str = "relu"):
        hidden, input_shape = _check_hparams(latent_dim, hidden, lr, input_shape)
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
        self.check_codes(z)
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
    loss_parts = ("rate", "distortion")
    architecture = LatentVariableModule.architecture + ("likelihood",)

    def __init__(self, latent_dim: int = 2, hidden=(400,), beta: float = 1.0, likelihood: str = "bernoulli",
                 kl: str = "analytic", lr: float = 1e-3, input_shape=(1, 28, 28), activation: str = "relu",
                 gaussian_std: float | None = None, warmup_steps: int = 0, free_bits: float = 0.0):
        hidden, input_shape = _check_hparams(latent_dim, hidden, lr, input_shape)
        if not _is_number(beta) or beta < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, got {likelihood!r}")
        if kl not in ("analytic", "mc"):
            raise ValueError(f"kl must be 'analytic' or 'mc', got {kl!r}")
        if gaussian_std is not None and not (_is_number(gaussian_std) and gaussian_std > 0):
            raise ValueError(f"gaussian_std must be None (learned) or a positive finite number, got {gaussian_std!r}")
        if not _is_int(warmup_steps) or warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {warmup_steps!r}")
        if not _is_number(free_bits) or free_bits < 0:
            raise ValueError(f"free_bits must be a finite number >= 0, got {free_bits!r}")
        super().__init__(input_shape, lr)
        self.save_hyperparameters()
        self.latent_dim, self.beta, self.likelihood, self.kl = latent_dim, float(beta), likelihood, kl
        self.unit_interval = likelihood == "bernoulli"
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
        self.check_images(x)
        # under mixed precision (bf16 autocast) the layers run in bfloat16; q's parameters and the loss
        # are kept in the images' precision
        mu, logvar = self.encoder(x.flatten(1)).to(x.dtype).chunk(2, dim=-1)
        return mu, logvar

    def encode(self, x: torch.Tensor) -> Independent:
        """q(z|x) = N(mu(x), diag exp(logvar(x))), a distribution with batch shape (B,), event shape (D,)."""
        mu, logvar = self.encoder_params(x)
        return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)

    def decode(self, z: torch.Tensor) -> Independent:
        """p(x|z) for z of shape (..., D): batch shape (...), event shape input_shape; ``.mean`` is an image."""
        self.check_codes(z)
        out = self.decoder(z).to(z.dtype).view(*z.shape[:-1], *self.input_shape)
        if self.likelihood == "bernoulli":
            # logits, not probabilities: log-sigmoid stays finite where sigmoid would round to 0 or 1
            return Independent(Bernoulli(logits=out, validate_args=False), len(self.input_shape))
        return Independent(Normal(out, torch.exp(0.5 * self.x_logvar)), len(self.input_shape))

    def sample(self, n: int, mean: bool = True) -> torch.Tensor:
        """n images from the model: z ~ p(z), then the mean of p(x|z) (or a draw if ``mean=False``)."""
        if not _is_int(n) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not isinstance(mean, bool):
            raise TypeError(f"mean must be True (the mean image of p(x|z)) or False (a draw), got {mean!r}")
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
        if self.kl == "analytic":
            z = q.rsample()  # z = mu + sigma * eps: the gradient reaches mu and logvar through z
            rate = kl_normal_std_normal(mu, logvar)
        else:  # log q(z|x) - log p(z) at the same z; log q from eps, which keeps its digits when sigma is tiny
            z, log_q = sample_with_log_prob(q)
            rate = log_q - self.prior.log_prob(z)
        distortion = -self.decode(z).log_prob(x)
        penalised = rate
        if self.free_bits and self.training:
            # per dimension, the batch-mean KL below free_bits costs nothing (Kingma et al., 2016)
            # so its batch mean is sum_j max(free_bits, mean_b KL_bj), with no gradient below the floor
            kl_dims = 0.5 * (torch.expm1(logvar) - logvar + mu.pow(2))
            above = (kl_dims.mean(0) >= self.free_bits).detach()
            penalised = torch.where(above, kl_dims, torch.full_like(kl_dims, self.free_bits)).sum(-1)
        return {"loss": distortion + self.kl_weight() * penalised, "elbo": -(distortion + rate),
                "rate": rate, "distortion": distortion}
