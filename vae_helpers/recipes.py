"""The models the MNIST lessons share, trained once and cached on disk.

Lessons 05 to 09 look at the same kind of VAE from different sides. ``trained_vae`` builds it with the
course's settings, trains it with :func:`~vae_helpers.training.fit_cached` (so the first lesson that
asks trains it, and the others load it), and returns it with its data and history.
"""
from __future__ import annotations

import torch

from .data import MNISTDataModule
from .models import VAE, AutoEncoder
from .training import fit_cached

#: Bump when a change to the package alters what training computes (the model, the loss, the data, the
#: optimiser): cached models trained before it are then trained again. Edits that leave every trained
#: weight the same (docstrings, checks, messages) leave it alone.
RECIPE_VERSION = 1

#: The course's MNIST settings: dynamically binarized digits, batches of 128.
DATA = dict(binarize="dynamic", batch_size=128, val_size=5000, seed=0)
#: The course's MLP: one hidden layer of 400 units, as in the PyTorch examples' VAE.
HIDDEN = (400,)


def course_data(**overrides) -> MNISTDataModule:
    """``MNISTDataModule`` with the course's settings, any of which can be overridden."""
    return MNISTDataModule(**{**DATA, **overrides})


def trained_vae(latent_dim: int = 2, max_epochs: int = 10, seed: int = 0, data: MNISTDataModule | None = None,
                **vae_kwargs):
    """A VAE with the course's settings trained for ``max_epochs`` (cached): returns (model, data, history)."""
    data = data if data is not None else course_data()
    torch.manual_seed(seed)  # the initial weights, so the cached model does not depend on earlier draws
    model = VAE(latent_dim=latent_dim, hidden=vae_kwargs.pop("hidden", HIDDEN), **vae_kwargs)
    history = fit_cached(model, data, max_epochs=max_epochs, seed=seed)
    return model.eval(), data, history


def trained_autoencoder(latent_dim: int = 2, max_epochs: int = 10, seed: int = 0,
                        data: MNISTDataModule | None = None, **ae_kwargs):
    """The deterministic counterpart of :func:`trained_vae`: returns (model, data, history)."""
    data = data if data is not None else course_data()
    torch.manual_seed(seed)
    model = AutoEncoder(latent_dim=latent_dim, hidden=ae_kwargs.pop("hidden", HIDDEN), **ae_kwargs)
    history = fit_cached(model, data, max_epochs=max_epochs, seed=seed)
    return model.eval(), data, history
