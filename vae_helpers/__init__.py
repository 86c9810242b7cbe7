"""vae_helpers: the reusable code of the course on variational autoencoders.

One module per idea, named as in the lessons:

- :mod:`~vae_helpers.bayes`: a discrete latent-variable model where Bayes' rule is exact by enumeration.
- :mod:`~vae_helpers.linear_gaussian`: a continuous one where prior, posterior and evidence are exact.
- :mod:`~vae_helpers.grid`: the posterior and the evidence of any small-latent model on a grid.
- :mod:`~vae_helpers.divergences`: KL divergences between Gaussians, closed form and Monte Carlo.
- :mod:`~vae_helpers.inference`: variational inference per data point, and amortized by an encoder.
- :mod:`~vae_helpers.data`: MNIST as in-memory tensors (``MNISTDataModule``).
- :mod:`~vae_helpers.models`: ``AutoEncoder`` and ``VAE``, each assembled from the parts below.
- :mod:`~vae_helpers.networks`, :mod:`~vae_helpers.likelihoods`, :mod:`~vae_helpers.priors`: the parts,
  encoder and decoder networks (MLP and convolutional), p(x|z), and p(z) (N(0, I), a learned mixture,
  the VampPrior).
- :mod:`~vae_helpers.conditional`: ``ConditionalVAE``, q(z|x, y) and p(x|z, y) given a label y.
- :mod:`~vae_helpers.autoregressive`: an autoregressive p(x|z) (MADE), the decoder that can ignore z.
- :mod:`~vae_helpers.flows`: affine coupling flows for q(z|x) (``FlowEncoding``).
- :mod:`~vae_helpers.objectives`: Monte Carlo KL, KL warm-up, free bits and IWAE_k, the variants of the loss.
- :mod:`~vae_helpers.iwae`: ``IWAEVAE``, the VAE trained on IWAE_k (or with DReG gradients) instead of the ELBO.
- :mod:`~vae_helpers.lightning`: the Lightning steps, logging and checkpoint checks the models share.
- :mod:`~vae_helpers.estimators`: the ELBO, the importance-weighted bound and log p(x).
- :mod:`~vae_helpers.training`: ``fit``, one quiet, seeded call to train (and ``fit_cached``).
- :mod:`~vae_helpers.recipes`: the MNIST models the lessons share, trained once and cached.
- :mod:`~vae_helpers.evaluation`: how good codes and samples are (kNN accuracy, precision and recall).
- :mod:`~vae_helpers.latents`: active units, KL per dimension, the aggregate posterior, I(x; z).
- :mod:`~vae_helpers.diagnostics`: ``diagnose(model, x)``, checks that name the usual VAE bugs.
- :mod:`~vae_helpers.plots`: the figures the lessons draw.
- :mod:`~vae_helpers.checks`: the argument checks the public functions share.
- :mod:`~vae_helpers.check_exercises`: ``python -m vae_helpers.check_exercises NOTEBOOK``, which exercises of
  a filled-in student copy pass (not imported with the package).
"""
from .data import MNISTDataModule, default_data_dir, load_mnist
from .divergences import kl_monte_carlo, kl_normal_normal, kl_normal_std_normal
from .estimators import LogLikelihood, elbo, iwae_bound, log_importance_weights, log_likelihood
from .linear_gaussian import LinearGaussian
from .conditional import ConditionalVAE
from .models import VAE, AutoEncoder
from .networks import ConvDecoder, ConvEncoder, mlp
from .priors import MixturePrior, StandardNormal, VampPrior
from .training import fit, fit_cached, quiet

__all__ = [
    "MNISTDataModule", "default_data_dir", "load_mnist",
    "kl_monte_carlo", "kl_normal_normal", "kl_normal_std_normal",
    "LogLikelihood", "elbo", "iwae_bound", "log_importance_weights", "log_likelihood",
    "LinearGaussian", "VAE", "AutoEncoder", "ConditionalVAE", "mlp", "ConvEncoder", "ConvDecoder",
    "StandardNormal", "MixturePrior", "VampPrior", "fit", "fit_cached", "quiet",
]
