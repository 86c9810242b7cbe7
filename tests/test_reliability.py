"""Reliability of vae_helpers: bad input gets an error that names the argument, a loss that stops being
finite stops training with the step and the term, the estimators stay finite and accurate at the
extremes, and training with a seed gives the same numbers twice."""
import json
import math
import re
import shutil
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from torch.distributions import Independent, Normal, kl_divergence

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vae_helpers import (VAE, AutoEncoder, LinearGaussian, MNISTDataModule, elbo, fit, fit_cached,  # noqa: E402
                         iwae_bound, kl_monte_carlo, kl_normal_normal, kl_normal_std_normal, load_mnist,
                         log_importance_weights, log_likelihood)
from vae_helpers import plots, recipes  # noqa: E402
from vae_helpers.data import MNIST_MD5, binarize_once, default_data_dir  # noqa: E402
from vae_helpers.divergences import sample_with_log_prob  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def one_thread():
    # the models here are tiny: on a small shared machine a second thread costs more than it gains
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_vae(**kwargs):
    return VAE(**{"latent_dim": 2, "hidden": (16,), **kwargs})


def images(n=4):
    return torch.bernoulli(torch.rand(n, 1, 28, 28))


def tiny_data(**kwargs):
    return MNISTDataModule(**{"subset": 400, "val_size": 100, "batch_size": 50, "binarize": "static", **kwargs})


# --- bad input: every public function names the argument and what it expected -------------------------

vae, ae = small_vae(), AutoEncoder(latent_dim=2, hidden=(16,))
linear = LinearGaussian.random(x_dim=3, z_dim=2)
x_lin = torch.zeros(5, 3, dtype=torch.float64)
q2 = Independent(Normal(torch.zeros(2), torch.ones(2)), 1)


class NoEncoder:
    prior, decode = vae.prior, vae.decode


BAD_CALLS = {
    # models: hyperparameters
    "latent_dim 0": (lambda: VAE(latent_dim=0), ValueError, r"latent_dim must be an integer >= 1, got 0"),
    "latent_dim True": (lambda: VAE(latent_dim=True), ValueError, r"latent_dim must be an integer >= 1"),
    "beta < 0": (lambda: VAE(beta=-0.5), ValueError, r"beta must be a finite number >= 0, got -0.5"),
    "beta inf": (lambda: VAE(beta=math.inf), ValueError, r"beta must be a finite number >= 0, got inf"),
    "beta nan": (lambda: VAE(beta=math.nan), ValueError, r"beta must be a finite number >= 0, got nan"),
    "beta str": (lambda: VAE(beta="1"), ValueError, r"beta must be a finite number >= 0"),
    "hidden int": (lambda: VAE(hidden=400), ValueError, r"hidden must be a sequence of positive integers such as \(400,\), got 400"),
    "hidden 0": (lambda: AutoEncoder(hidden=(0,)), ValueError, r"hidden must be a sequence of positive integers"),
    "input_shape ()": (lambda: VAE(input_shape=()), ValueError, r"input_shape must be a sequence of positive integers"),
    "lr True": (lambda: VAE(lr=True), ValueError, r"lr must be a positive finite number"),
    "gaussian_std inf": (lambda: VAE(likelihood="gaussian", gaussian_std=math.inf), ValueError, r"gaussian_std must be None"),
    "warmup_steps -1": (lambda: VAE(warmup_steps=-1), ValueError, r"warmup_steps must be an integer >= 0"),
    "free_bits nan": (lambda: VAE(free_bits=math.nan), ValueError, r"free_bits must be a finite number >= 0"),
    "activation": (lambda: VAE(activation="gelu"), ValueError, r"activation must be one of"),
    # models: images and codes
    "x flat": (lambda: vae.encode(torch.rand(4, 784)), ValueError,
               r"x must have shape \(batch, 1, 28, 28\), got \(4, 784\); reshape with x.view\(-1, 1, 28, 28\)"),
    "x one image": (lambda: vae.encode(torch.rand(1, 28, 28)), ValueError, r"x must have shape \(batch, 1, 28, 28\)"),
    "x uint8": (lambda: vae.loss_terms(torch.zeros(4, 1, 28, 28, dtype=torch.uint8)), TypeError,
                r"x must be a floating-point tensor .* divide uint8 images by 255"),
    "x float64": (lambda: vae.encode(torch.rand(4, 1, 28, 28, dtype=torch.float64)), TypeError,
                  r"x has dtype torch.float64 but the model's weights are torch.float32"),
    "x 0..255": (lambda: vae.loss_terms(torch.rand(4, 1, 28, 28) * 255), ValueError,
                 r"x must lie in \[0, 1\] for a Bernoulli likelihood, got values in \[.*\]"),
    "x NaN": (lambda: vae.loss_terms(torch.full((2, 1, 28, 28), math.nan)), ValueError,
              r"x must lie in \[0, 1\] for a Bernoulli likelihood, got NaN values"),
    "x AE 0..255": (lambda: ae.loss_terms(torch.rand(4, 1, 28, 28) * 255), ValueError, r"x must lie in \[0, 1\]"),
    "x list": (lambda: vae.encode([[0.0]]), TypeError, r"x must be a torch.Tensor of images, got list"),
    "z wrong size": (lambda: vae.decode(torch.zeros(5, 3)), ValueError,
                     r"z must have shape \(\.\.\., 2\) \(the last dimension is latent_dim\), got \(5, 3\)"),
    "z int": (lambda: ae.decode(torch.zeros(5, 2, dtype=torch.long)), TypeError, r"z must be a floating-point tensor"),
    "sample 0": (lambda: vae.sample(0), ValueError, r"n must be an integer >= 1, got 0"),
    "sample mean": (lambda: vae.sample(2, mean="yes"), TypeError, r"mean must be True or False"),
    # estimators
    "iwae k 0": (lambda: iwae_bound(vae, images(), 0), ValueError, r"k must be an integer >= 1, got 0"),
    "elbo k 2.5": (lambda: elbo(vae, images(), 2.5), ValueError, r"k must be an integer >= 1, got 2.5"),
    "weights k -1": (lambda: log_importance_weights(vae, images(), -1), ValueError, r"k must be an integer >= 1"),
    "loglik k 0": (lambda: log_likelihood(vae, images(), k=0), ValueError, r"k must be an integer >= 1"),
    "chunk_size 0": (lambda: iwae_bound(vae, images(), 10, chunk_size=0), ValueError, r"chunk_size must be an integer >= 1"),
    "loglik batch_size 0": (lambda: log_likelihood(vae, images(), batch_size=0), ValueError,
                            r"batch_size must be an integer >= 1, got 0"),
    "estimator x 0..255": (lambda: elbo(vae, torch.rand(4, 1, 28, 28) * 255, q=vae.encode(images())), ValueError,
                           r"x must lie in \[0, 1\] for a Bernoulli likelihood"),
    "estimator x list": (lambda: iwae_bound(linear, [[0.0, 1.0, 2.0]], 5, q=q2), TypeError,
                         r"x must be a floating-point tensor of shape \(B, \.\.\.\), got \[\[0.0, 1.0, 2.0\]\]"),
    "estimator x empty": (lambda: elbo(linear, torch.zeros(0, 3, dtype=torch.float64), q=q2), ValueError,
                          r"x must be a floating-point tensor of shape \(B, \.\.\.\) with at least one row, got shape \(0, 3\)"),
    "estimator x wrong size": (lambda: elbo(linear, torch.zeros(4, 3, 1, dtype=torch.float64),
                                            q=Independent(Normal(torch.zeros(4, 2, dtype=torch.float64), 1.0), 1)),
                               ValueError, r"x of shape \(4, 3, 1\) does not fit the model's p\(x\|z\)"),
    "q batch": (lambda: elbo(linear, x_lin, q=q2), ValueError, r"q must have batch shape \(5,\), one distribution per example"),
    "q type": (lambda: elbo(linear, x_lin, q="N(0, 1)"), TypeError, r"q must be a torch.distributions.Distribution"),
    "q space": (lambda: elbo(vae, images(2), q=Independent(Normal(torch.zeros(2, 3), 1.0), 1)), ValueError,
                r"q must be a distribution over z like the prior, of event shape \(2,\), got \(3,\)"),
    "model lacks encode": (lambda: elbo(NoEncoder(), images()), TypeError,
                           r"model must have encode \(like VAE\) or posterior \(like LinearGaussian\) to give q\(z\|x\), "
                           r"or q must be passed; NoEncoder has neither"),
    "model lacks decode": (lambda: elbo(object(), images()), TypeError, r"model must have decode, prior .* lacks decode"),
    "loglik data module": (lambda: log_likelihood(vae, tiny_data()), TypeError,
                           r"data must be a tensor of examples or an iterable of batches, got MNISTDataModule; "
                           r"pass datamodule.test_dataloader\(\)"),
    "loglik empty": (lambda: log_likelihood(vae, torch.zeros(0, 1, 28, 28)), ValueError,
                     r"data must be a floating-point tensor of shape \(N, \.\.\.\) with at least one row, "
                     r"got shape \(0, 1, 28, 28\)"),
    "loglik empty loader": (lambda: log_likelihood(vae, [torch.zeros(0, 1, 28, 28)]), ValueError,
                            r"data must hold at least one example"),
    "loglik bad batch": (lambda: log_likelihood(vae, [("a", "b")]), TypeError, r"each batch of data must be a tensor x or a pair"),
    # divergences
    "kl shapes": (lambda: kl_normal_std_normal(torch.zeros(3, 2), torch.zeros(3, 4)), ValueError, r"mu and logvar must have the same shape"),
    "kl dtype": (lambda: kl_normal_normal(torch.zeros(2), torch.zeros(2), torch.zeros(2, dtype=torch.long), torch.zeros(2)),
                 TypeError, r"mu_p must be a floating-point tensor"),
    "kl q vs p": (lambda: kl_normal_normal(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 4), torch.zeros(3, 4)),
                  ValueError, r"q's and p's parameters must broadcast to one shape, got \(3, 2\) and \(3, 4\)"),
    "kl_mc spaces": (lambda: kl_monte_carlo(q2, Normal(0.0, 1.0)), ValueError, r"q and p must be distributions over the same space"),
    "kl_mc num_samples": (lambda: kl_monte_carlo(q2, q2, True), ValueError, r"num_samples must be a positive integer"),
    "sample q": (lambda: sample_with_log_prob("q"), TypeError, r"q must be a torch.distributions.Distribution"),
    # data
    "batch_size 0": (lambda: MNISTDataModule(batch_size=0), ValueError, r"batch_size must be an integer >= 1, got 0"),
    "batch_size True": (lambda: MNISTDataModule(batch_size=True), ValueError, r"batch_size must be an integer >= 1"),
    "val_size True": (lambda: MNISTDataModule(val_size=True), ValueError, r"val_size must be an integer in \[0, 60000\)"),
    "seed -1": (lambda: MNISTDataModule(seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    "data_dir int": (lambda: MNISTDataModule(data_dir=5), TypeError, r"data_dir must be a folder path"),
    "download str": (lambda: MNISTDataModule(download="no"), TypeError, r"download must be True or False"),
    "split": (lambda: tiny_data().tensors("validation"), ValueError, r"split must be one of \('train', 'val', 'test'\)"),
    "binarize float": (lambda: binarize_once(torch.rand(2, 28, 28), 0), TypeError, r"images must be a uint8 tensor"),
    "load root": (lambda: load_mnist(root=5), TypeError, r"root must be a folder path"),
    "load train": (lambda: load_mnist(train="yes"), TypeError, r"train must be True or False"),
    # training
    "fit model": (lambda: fit("vae", tiny_data()), TypeError, r"model must be a pl.LightningModule, got str"),
    "fit data": (lambda: fit(small_vae(), "mnist"), TypeError, r"datamodule must be a pl.LightningDataModule, got str"),
    "fit max_epochs": (lambda: fit(small_vae(), tiny_data(), max_epochs=0), ValueError, r"max_epochs must be an integer >= 1, got 0"),
    "fit max_steps": (lambda: fit(small_vae(), tiny_data(), max_steps=0), ValueError, r"max_steps must be -1 \(no limit\) or an integer >= 1"),
    "fit seed": (lambda: fit(small_vae(), tiny_data(), seed=1.5), ValueError, r"seed must be an integer >= 0, got 1.5"),
    "fit progress": (lambda: fit(small_vae(), tiny_data(), progress="yes"), TypeError, r"progress must be True or False"),
    "fit accelerator": (lambda: fit(small_vae(), tiny_data(), accelerator=None), TypeError, r"accelerator must be a string"),
    "fit ckpt_path": (lambda: fit(small_vae(), tiny_data(), ckpt_path="no/such.ckpt"), FileNotFoundError,
                      r"ckpt_path 'no/such.ckpt' is not a checkpoint file: it does not exist"),
    "fit checkpoint_dir": (lambda: fit(small_vae(), tiny_data(), checkpoint_dir=3), TypeError, r"checkpoint_dir must be a folder path"),
    "fit_cached model": (lambda: fit_cached(None, tiny_data()), TypeError, r"model must be a pl.LightningModule, got NoneType"),
    "fit_cached resume": (lambda: fit_cached(small_vae(), tiny_data(), ckpt_path="x.ckpt"), ValueError,
                          r"fit_cached does not take ckpt_path"),
    "fit_cached cache_dir": (lambda: fit_cached(small_vae(), tiny_data(), cache_dir=1), TypeError, r"cache_dir must be a folder path"),
    # recipes check through the functions they call, before any training
    "recipe latent_dim": (lambda: recipes.trained_vae(latent_dim=0), ValueError, r"latent_dim must be an integer >= 1"),
    "recipe max_epochs": (lambda: recipes.trained_autoencoder(max_epochs=0), ValueError, r"max_epochs must be an integer >= 1"),
    "recipe data": (lambda: recipes.trained_vae(data="mnist"), TypeError, r"datamodule must be a pl.LightningDataModule"),
    "recipe beta": (lambda: recipes.trained_vae(beta=-1.0), ValueError, r"beta must be a finite number >= 0"),
    # plots
    "dpi": (lambda: plots.set_style(0), ValueError, r"dpi must be an integer >= 1, got 0"),
    "show_images shape": (lambda: plots.show_images(torch.rand(4, 28, 28)), ValueError, r"images must be a tensor of shape \(N, C, H, W\)"),
    "show_images nrow": (lambda: plots.show_images(torch.rand(4, 1, 28, 28), nrow=0), ValueError, r"nrow must be an integer >= 1, got 0"),
    "reconstructions type": (lambda: plots.plot_reconstructions([0], torch.rand(1, 1, 2, 2)), TypeError, r"x must be a tensor of shape \(N, C, H, W\), got \[0\]"),
    "reconstructions shapes": (lambda: plots.plot_reconstructions(torch.rand(2, 1, 28, 28), torch.rand(2, 784)), ValueError,
                               r"x and x_hat must have the same shape"),
    "reconstructions n": (lambda: plots.plot_reconstructions(torch.rand(2, 1, 4, 4), torch.rand(2, 1, 4, 4), n=0), ValueError,
                          r"n must be an integer >= 1, got 0"),
    "latent shape": (lambda: plots.plot_latent(torch.rand(10, 3)), ValueError, r"z must have shape \(N, 2\)"),
    "latent labels": (lambda: plots.plot_latent(torch.rand(10, 2), labels=torch.zeros(9)), ValueError,
                      r"labels must hold one label per point \(10\), got 9"),
    "encodings n_std": (lambda: plots.plot_encodings(torch.rand(3, 2), torch.rand(3, 2), n_std=0), ValueError,
                        r"n_std must be a positive finite number"),
    "encodings labels": (lambda: plots.plot_encodings(torch.rand(3, 2), torch.rand(3, 2), labels=[1]), ValueError,
                         r"labels must hold one label per point"),
    "manifold decode": (lambda: plots.plot_manifold(vae), TypeError, r"decode must be a function from codes"),
    "manifold extent": (lambda: plots.plot_manifold(vae.decode, extent=-1), ValueError, r"extent must be a positive finite number"),
    "manifold n": (lambda: plots.plot_manifold(vae.decode, n=0), ValueError, r"n must be an integer >= 1, got 0"),
    "manifold output": (lambda: plots.plot_manifold(lambda z: z, n=3), ValueError, r"decode must return 9 images"),
    "manifold latent_dim": (lambda: plots.plot_manifold(small_vae(latent_dim=3).decode), ValueError,
                            r"z must have shape \(\.\.\., 3\)"),
    "history type": (lambda: plots.plot_history({"step": [0]}, "loss"), TypeError, r"history must be the DataFrame that fit returns"),
    "history metrics": (lambda: plots.plot_history(pd.DataFrame({"step": [0]}), []), ValueError, r"metrics must name at least one column"),
    "history missing": (lambda: plots.plot_history(pd.DataFrame({"step": [0]}), "val/elbo"), ValueError,
                        r"metrics \['val/elbo'\] are not in the history"),
    "ax": (lambda: plots.plot_latent(torch.rand(5, 2), ax="left"), TypeError, r"ax must be a matplotlib Axes"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_gets_an_error_that_names_the_argument(case):
    call, error, message = BAD_CALLS[case]
    with pytest.raises(error, match=message):
        call()
    plt.close("all")


# --- the data folder -------------------------------------------------------------------------------


def test_a_corrupt_file_of_the_right_size_is_caught_by_its_checksum(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(default_data_dir() / "MNIST" / "raw", raw, ignore=shutil.ignore_patterns("*.gz"))
    name = "t10k-labels-idx1-ubyte"
    data = bytearray((raw / name).read_bytes())
    data[5000] ^= 0xFF  # one label flipped: same size, wrong content
    (raw / name).write_bytes(bytes(data))
    with pytest.raises(FileNotFoundError, match=rf"{name} is truncated or corrupt \({len(data)} bytes, md5 \w+, "
                                                 rf"expected {MNIST_MD5[name]}\)"):
        load_mnist(train=False, root=tmp_path, download=False)
    # the data module reports the same when it loads, naming the folder and the variable to set
    with pytest.raises(FileNotFoundError, match="VAE_DATA_DIR"):
        MNISTDataModule(data_dir=tmp_path, download=False).setup()


def test_pointing_at_the_files_folder_itself_says_which_folder_to_give(tmp_path):
    raw = default_data_dir() / "MNIST" / "raw"
    with pytest.raises(FileNotFoundError, match=rf"The files are in {re.escape(str(raw))} itself: give the folder that "
                                                rf"holds MNIST/raw/ \(here {re.escape(str(default_data_dir()))}\) instead"):
        load_mnist(root=raw, download=False)


def test_an_empty_folder_with_no_download_lists_all_four_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(root=tmp_path, download=False)
    message = str(err.value)
    assert all(f"missing {tmp_path / 'MNIST' / 'raw' / name}" in message for name in MNIST_MD5)
    assert "could not be downloaded (download=False)" in message


# --- a loss that stops being finite ----------------------------------------------------------------


class Corrupt(pl.Callback):
    """Spoil one weight just before training step ``step``, as a diverging optimiser would."""

    def __init__(self, step, spoil):
        self.step, self.spoil = step, spoil

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                self.spoil(pl_module)


def exploding_mean(model):
    model.encoder[-1].bias[: model.latent_dim] = 1e20  # mu = 1e20: mu^2 overflows float32, the KL is inf


def nan_logit(model):
    model.decoder[-1].bias[0] = math.nan  # one pixel's logit: -log p(x|z) is NaN, q(z|x) is untouched


@pytest.mark.parametrize("spoil, term, other", [(exploding_mean, "rate", "distortion"), (nan_logit, "distortion", "rate")])
def test_a_non_finite_loss_stops_training_naming_the_step_and_the_term(spoil, term, other):
    model = small_vae()
    with pytest.raises(FloatingPointError) as err:
        fit(model, tiny_data(), max_epochs=2, callbacks=[Corrupt(5, spoil)])
    message = str(err.value)
    assert message.startswith("training stopped at step 5 (epoch 0): the loss became")
    assert f"the {term} term is not finite in 50 of 50 examples, while the {other} term stays finite" in message
    assert "Lower the learning rate (lr=0.001)" in message
    assert model.global_step == 5  # stopped there: no update was made with the non-finite loss


def test_the_autoencoder_names_its_loss():
    model = AutoEncoder(latent_dim=2, hidden=(16,))
    with pytest.raises(FloatingPointError, match=r"training stopped at step 3 \(epoch 0\): the loss became nan; "
                                                 r"the loss term is not finite in 50 of 50 examples\."):
        fit(model, tiny_data(), max_epochs=1, callbacks=[Corrupt(3, nan_logit)])


# --- numbers that stay finite at the extremes --------------------------------------------------------

EXTREME_LOGVARS = (-30.0, 30.0)


@pytest.mark.parametrize("logvar", EXTREME_LOGVARS)
def test_closed_form_kls_are_finite_and_match_float64_at_extreme_logvar(logvar):
    mu = torch.tensor([[0.0, 3.0, -40.0]])
    lv = torch.full((1, 3), logvar)
    # the reference: torch.distributions' KL, in float64
    std64 = Independent(Normal(torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)), 1)
    q64 = Independent(Normal(mu.double(), torch.exp(0.5 * lv.double())), 1)
    value = kl_normal_std_normal(mu, lv)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value.double(), kl_divergence(q64, std64), rtol=1e-6, atol=0)
    # between two Gaussians at opposite extremes: variance ratios of e^60 and e^-60
    p64 = Independent(Normal(-mu.double(), torch.exp(-0.5 * lv.double())), 1)
    value = kl_normal_normal(mu, lv, -mu, -lv)
    assert torch.isfinite(value).all()
    torch.testing.assert_close(value.double(), kl_divergence(q64, p64), rtol=1e-6, atol=0)


def test_monte_carlo_log_q_keeps_its_digits_for_a_very_narrow_q():
    """With sigma = e^-15 next to mu = 3, z - mu keeps only a couple of bits of sigma * eps in float32."""
    mu, lv = torch.full((4, 2), 3.0), torch.full((4, 2), -30.0)
    q = Independent(Normal(mu, torch.exp(0.5 * lv)), 1)
    torch.manual_seed(0)
    z, log_q = sample_with_log_prob(q, (1000,))
    torch.manual_seed(0)
    eps = torch.randn(1000, 4, 2).double()  # the same draws, replayed
    q64 = Independent(Normal(mu.double(), torch.exp(0.5 * lv.double())), 1)
    reference = q64.log_prob(mu.double() + eps * q64.base_dist.scale)
    assert ((log_q.double() - reference).abs() < 1e-4).all()
    assert (q.log_prob(z).double() - reference).abs().max() > 0.1  # log q recomputed from z loses whole nats
    # and so the Monte Carlo KL matches the closed form, as it should
    torch.manual_seed(0)
    mc = kl_monte_carlo(q, Independent(Normal(torch.zeros(2), torch.ones(2)), 1), 10_000)
    exact = kl_normal_std_normal(mu.double(), lv.double())
    assert ((mc.double() - exact).abs() < 0.05).all()


def pinned_vae(mu: float, logvar: float, **kwargs) -> VAE:
    """A VAE whose encoder ignores x and returns q(z|x) = N(mu, e^logvar I), with D = 2."""
    model = VAE(latent_dim=2, hidden=(32,), **kwargs)
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.copy_(torch.tensor([mu, mu, logvar, logvar]))
    return model.eval()


def float64_reference(model: VAE, x: torch.Tensor, eps: torch.Tensor) -> dict:
    """The model's quantities in float64, with torch.distributions, at z = mu + sigma * eps for given eps."""
    model64 = VAE(**model.hparams).double().eval()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    x64 = x.double()
    mu, logvar = model64.encoder_params(x64)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    z = mu + torch.exp(0.5 * logvar) * eps.double()
    log_px_z, log_pz, log_q = model64.decode(z).log_prob(x64), model64.prior.log_prob(z), q.log_prob(z)
    return {"log_w": log_px_z + log_pz - log_q, "distortion": -log_px_z, "mc_rate": log_q - log_pz,
            "rate": kl_divergence(q, model64.prior)}


EXTREME_IMAGES = torch.cat([torch.zeros(1, 1, 28, 28), torch.ones(1, 1, 28, 28)])  # all-zero, all-one


@pytest.mark.parametrize("logvar", (-30.0, 0.0, 30.0))
def test_iwae_with_10000_samples_is_finite_and_matches_float64_at_the_extremes(logvar):
    model, k, chunk = pinned_vae(mu=3.0, logvar=logvar), 10_000, 1000
    torch.manual_seed(1)
    with torch.no_grad():
        bound = iwae_bound(model, EXTREME_IMAGES, k, chunk_size=chunk)
        one = elbo(model, EXTREME_IMAGES, k=1)
    torch.manual_seed(1)
    eps = torch.cat([torch.randn(chunk, 2, 2) for _ in range(k // chunk)])  # the same draws, chunk by chunk
    eps_elbo = torch.randn(1, 2, 2)
    log_w = float64_reference(model, EXTREME_IMAGES, eps)["log_w"]
    reference = torch.logsumexp(log_w, 0) - math.log(k)
    assert torch.isfinite(bound).all() and torch.isfinite(one).all()
    torch.testing.assert_close(bound.double(), reference, rtol=1e-5, atol=1e-3)
    reference = float64_reference(model, EXTREME_IMAGES, eps_elbo)["log_w"][0]
    torch.testing.assert_close(one.double(), reference, rtol=1e-5, atol=1e-3)


def test_log_likelihood_over_extreme_images_matches_float64():
    model, k = pinned_vae(mu=-2.0, logvar=-30.0), 10_000
    torch.manual_seed(2)
    result = log_likelihood(model, EXTREME_IMAGES, k=k, batch_size=2)
    torch.manual_seed(2)
    eps = torch.cat([torch.randn(1000, 2, 2) for _ in range(k // 1000)])
    log_w = float64_reference(model, EXTREME_IMAGES, eps)["log_w"]
    reference = -(torch.logsumexp(log_w, 0) - math.log(k)).mean().item()
    assert math.isfinite(result.nll_nats) and math.isfinite(result.bits_per_dim)
    assert result.nll_nats == pytest.approx(reference, rel=1e-6)


@pytest.mark.parametrize("logvar", EXTREME_LOGVARS)
@pytest.mark.parametrize("kl", ["analytic", "mc"])
def test_the_training_loss_is_finite_and_matches_float64_at_the_extremes(logvar, kl):
    model = pinned_vae(mu=3.0, logvar=logvar, kl=kl)
    torch.manual_seed(3)
    terms = model.loss_terms(EXTREME_IMAGES)
    torch.manual_seed(3)
    reference = float64_reference(model, EXTREME_IMAGES, torch.randn(2, 2))
    assert all(torch.isfinite(v).all() for v in terms.values())
    torch.testing.assert_close(terms["distortion"].double(), reference["distortion"], rtol=1e-5, atol=1e-3)
    rate = reference["rate"] if kl == "analytic" else reference["mc_rate"]
    torch.testing.assert_close(terms["rate"].double(), rate, rtol=1e-5, atol=1e-3)


# --- determinism --------------------------------------------------------------------------------------


def test_two_runs_with_the_same_seed_give_exactly_the_same_numbers():
    def run(seed):
        torch.manual_seed(seed)  # the initial weights are drawn when the model is built, before fit
        model = VAE(latent_dim=2, hidden=(32,), warmup_steps=100)
        data = MNISTDataModule(subset=1000, val_size=200, batch_size=50, binarize="dynamic")
        return model, fit(model, data, max_epochs=15, seed=seed, log_every_n_steps=5)

    (a, first), (b, second), (c, other) = run(0), run(0), run(1)
    assert first["step"].max() == 299  # 300 steps
    pd.testing.assert_frame_equal(first, second, check_exact=True)  # every logged metric, exactly
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert not first["val/elbo"].equals(other["val/elbo"])  # and the seed is what fixes them


DRAWS = re.compile(r"torch\.(randn|rand|randint|randperm|normal|bernoulli|multinomial)\(|(randn|rand|randint)_like\(|"
                   r"\.r?sample\(")
UNSEEDED_NUMPY = re.compile(r"np\.random\.(?!default_rng|Generator|seed\b|SeedSequence)\w+\(")
UNSEEDED_PYTHON = re.compile(r"(?<![\w.])random\.(?!seed\b|Random\b)\w+\(")


def test_every_notebook_seeds_torch_before_it_draws_and_uses_no_unseeded_generator():
    problems = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        cells = ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        seeded = next((i for i, src in enumerate(cells) if "torch.manual_seed(" in src), None)
        draws = next((i for i, src in enumerate(cells) if DRAWS.search(src)), None)
        if seeded is None or (draws is not None and draws < seeded):
            problems.append(f"{path.name}: torch is not seeded before the first random draw")
        source = "\n".join(cells)
        if UNSEEDED_NUMPY.search(source) and "np.random.seed(" not in source:
            problems.append(f"{path.name}: NumPy's global generator is used unseeded (use np.random.default_rng(seed))")
        if UNSEEDED_PYTHON.search(source) and "random.seed(" not in source:
            problems.append(f"{path.name}: Python's random module is used unseeded")
    assert not problems, problems
