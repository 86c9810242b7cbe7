"""Reliability at the public boundary, second part: inputs that used to give a silent wrong result, a
message from deep inside torch, sklearn or zipfile, or a hang, now get an error that names the argument
and what was expected; valid inputs give the same numbers as before."""
import hashlib
import math
import re
import shutil

import matplotlib
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.distributions import Independent, Normal
from torch.utils.data import DataLoader, TensorDataset

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from vae_helpers import (VAE, LinearGaussian, MNISTDataModule, elbo, fit, fit_cached, iwae_bound,  # noqa: E402
                         load_mnist, log_likelihood)
from vae_helpers import checks, plots, training  # noqa: E402
from vae_helpers.data import MNIST_MD5, binarize_once, default_data_dir  # noqa: E402
from vae_helpers.evaluation import in_manifold, knn_accuracy, pca_codes, precision_recall  # noqa: E402
from vae_helpers.lightning import ReseedEachEpoch  # noqa: E402

from test_reliability import Corrupt, images, tiny_data  # noqa: E402  (the same small data, images and spoiler)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    plt.close("all")


def small_vae(**kwargs):
    return VAE(**{"latent_dim": 2, "hidden": (16,), **kwargs})


def nan_mean(model):
    model.encoder[-1].bias[0] = math.nan  # mu_1 = NaN: the draw z, the rate and the distortion are NaN


# --- silent wrong results ---------------------------------------------------------------------------


def test_show_images_refuses_grey_values_in_0_255_and_says_to_divide():
    grey = torch.randint(0, 256, (4, 1, 28, 28)).float()
    with pytest.raises(ValueError, match=r"images must hold values in \[0, 1\], got values in \[0, 255\]; "
                                         r"divide grey values in \[0, 255\] by 255"):
        plots.show_images(grey)
    with pytest.raises(ValueError, match=r"divide grey values in \[0, 255\] by 255"):
        plots.show_images(grey.to(torch.uint8))
    with pytest.raises(ValueError, match=r"divide grey values"):  # through plot_reconstructions too
        plots.plot_reconstructions(grey, grey)
    with pytest.raises(ValueError, match=r"images must hold finite values in \[0, 1\], got NaN"):
        plots.show_images(torch.full((2, 1, 4, 4), math.nan))


def test_show_images_draws_unit_values_as_they_are_and_clips_a_gaussian_decoders_overshoot():
    x = torch.rand(4, 1, 6, 6)
    shown = plots.show_images(x, nrow=4).get_images()[0].get_array()
    assert shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_allclose(shown[2:8, 2:8, 0], x[0, 0].numpy(), rtol=0, atol=1e-7)  # the first image, unchanged
    means = x * 2.2 - 0.6  # in [-0.6, 1.6], as a Gaussian p(x|z)'s means can be
    shown = plots.show_images(means, nrow=4).get_images()[0].get_array()
    np.testing.assert_allclose(shown[2:8, 2:8, 0], means[0, 0].clamp(0, 1).numpy(), rtol=0, atol=1e-7)


@pytest.mark.parametrize("binarize, binary", [(None, {"train": False, "val": False, "test": False}),
                                               ("dynamic", {"train": False, "val": True, "test": True}),
                                               ("static", {"train": True, "val": True, "test": True})])
def test_tensors_returns_what_its_docstring_says_for_each_split_and_binarize(binarize, binary):
    data = tiny_data(binarize=binarize)
    for split, is_binary in binary.items():
        x, y = data.tensors(split)
        assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28) and y.dtype == torch.int64
        assert 0 <= x.min() and x.max() <= 1
        assert bool(((x == 0) | (x == 1)).all()) == is_binary, (split, binarize)
    doc = MNISTDataModule.tensors.__doc__
    assert 'binarize="dynamic"   "train": grey values' in doc and '"val" and "test": binary {0, 1}' in doc


class EmptyTraining(pl.LightningDataModule):
    """Three examples in batches of four, the incomplete batch dropped: no training batch at all."""

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(3, 1, 28, 28)), batch_size=4, drop_last=True)

    def val_dataloader(self):
        return []


def test_fit_on_a_data_module_with_no_batches_raises_naming_it_and_the_split():
    with pytest.raises(ValueError, match=r"datamodule EmptyTraining yields no batches of its 'train' split .*"
                                         r"nothing was trained"):
        fit(small_vae(), EmptyTraining(), max_epochs=1)


def test_decode_refuses_codes_that_are_not_finite():
    vae = small_vae()
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError, match=r"z must hold finite values, got NaN or infinite entries"):
            vae.decode(torch.tensor([[0.0, bad]]))
    assert torch.isfinite(vae.decode(torch.zeros(3, 2)).mean).all()


@pytest.mark.parametrize("likelihood, kl", [("bernoulli", "analytic"), ("gaussian", "mc"), ("gaussian", "analytic")])
def test_a_nan_code_drawn_in_training_still_gets_the_message_naming_the_step_and_the_terms(likelihood, kl):
    # the check on decode's codes is for codes a caller passes: a NaN draw from q is the loss check's to report
    with pytest.raises(FloatingPointError) as err:
        fit(small_vae(likelihood=likelihood, kl=kl), tiny_data(), max_epochs=1, callbacks=[Corrupt(3, nan_mean)])
    message = str(err.value)
    assert message.startswith("training stopped at step 3 (epoch 0): the loss became nan")
    assert "the rate term is not finite in 50 of 50 examples; the distortion term is not finite in 50 of 50" in message


def test_estimates_of_a_model_with_a_nan_encoder_are_nan_not_an_error_about_z():
    vae = small_vae().eval()
    with torch.no_grad():
        nan_mean(vae)
        assert torch.isnan(elbo(vae, images())).all() and torch.isnan(iwae_bound(vae, images(), 5)).all()


# --- cryptic errors ------------------------------------------------------------------------------------


def test_a_gaussian_vae_that_diverges_gets_the_packages_message_not_torchs():
    def nan_logvar(model):
        model.encoder[-1].bias[model.latent_dim:] = math.nan  # sigma = NaN: z = mu + NaN * eps, scored by p(z)

    with pytest.raises(FloatingPointError, match=r"training stopped at step 2 \(epoch 0\): the loss became nan; "
                                                 r"the rate term is not finite in 50 of 50 examples"):
        fit(small_vae(likelihood="gaussian", kl="mc"), tiny_data(), max_epochs=1, callbacks=[Corrupt(2, nan_logvar)])


def test_nan_images_are_refused_for_every_likelihood():
    x = images()
    x[0, 0, 0, 0] = math.nan
    with pytest.raises(ValueError, match=r"x must hold finite values, got NaN or infinite entries"):
        small_vae(likelihood="gaussian").loss_terms(x)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\] for a Bernoulli likelihood, got NaN values"):
        small_vae().loss_terms(x)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ckpt")
    torch.manual_seed(0)
    model = small_vae()
    fit(model, tiny_data(subset=100), max_epochs=1, checkpoint_dir=folder)
    return model, folder / "last.ckpt"


def not_checkpoints(folder, good):
    text, truncated = folder / "notes.txt", folder / "cut.ckpt"
    text.write_text("hello\n")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    entry = folder / "VAE-0123456789abcdef.pt"
    torch.save({"state_dict": small_vae().state_dict(), "history": {"step": [0]}}, entry)
    return {text: r"is not a checkpoint: it is not a file that torch.save wrote, or it was cut short \(6 bytes\)",
            truncated: r"is not a checkpoint: it is not a file that torch.save wrote, or it was cut short",
            entry: r"is an entry of fit_cached's cache \(weights and a history\), not a checkpoint"}


def test_fit_names_ckpt_path_and_says_what_a_checkpoint_is(checkpoint, tmp_path):
    _, good = checkpoint
    for path, problem in not_checkpoints(tmp_path, good).items():
        with pytest.raises(ValueError, match=rf"ckpt_path '{path}' {problem}.*a Lightning checkpoint is the file "
                                             r"fit\(\.\.\., checkpoint_dir=\.\.\.\) saves"):
            fit(small_vae(), tiny_data(subset=100), max_epochs=2, ckpt_path=path)


def test_load_from_checkpoint_names_checkpoint_path_and_still_loads_a_checkpoint(checkpoint, tmp_path):
    model, good = checkpoint
    for path, problem in not_checkpoints(tmp_path, good).items():
        with pytest.raises(ValueError, match=rf"checkpoint_path '{path}' {problem}"):
            VAE.load_from_checkpoint(path, weights_only=True)
    loaded = VAE.load_from_checkpoint(good, weights_only=True)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))
    with pytest.raises(TypeError, match=r"cannot be called on an instance"):  # as Lightning's own
        small_vae().load_from_checkpoint(good, weights_only=True)


def test_a_cache_entry_with_another_models_weights_is_named_with_how_to_clear_it(tmp_path):
    model, data = small_vae(hidden=(8,)), tiny_data()
    path = tmp_path / f"VAE-{training._cache_key(model, data, {'max_epochs': 1})}.pt"
    torch.save({"state_dict": small_vae(hidden=(16,)).state_dict(), "history": {"step": [0]}}, path)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError) as err:
        fit_cached(model, data, cache_dir=tmp_path, max_epochs=1)
    message = str(err.value)
    assert f"the cache entry {path} does not match the model VAE" in message
    assert "encoder.0.weight has shape (8, 784) vs (8, 784)" not in message and "has shape (16, 784) vs (8, 784)" in message
    assert f"Delete that file to train the model again (rm '{path}')" in message
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing was copied


def test_fit_cached_refuses_a_file_as_cache_dir_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(training, "fit", lambda *a, **k: pytest.fail("trained before checking cache_dir"))
    (tmp_path / "file").write_text("")
    for cache_dir in (tmp_path / "file", tmp_path / "file" / "below"):
        with pytest.raises(NotADirectoryError, match=rf"cache_dir '{cache_dir}' must be a folder, but it \(or a "
                                                     r"folder above it\) is a file"):
            fit_cached(small_vae(), tiny_data(), cache_dir=cache_dir, max_epochs=1)


def test_float64_codes_and_proposals_name_the_argument_and_the_dtypes():
    vae = small_vae()
    with pytest.raises(TypeError, match=r"z has dtype torch.float64 but the model's weights are torch.float32"):
        vae.decode(torch.zeros(3, 2, dtype=torch.float64))
    q64 = Independent(Normal(torch.zeros(4, 2, dtype=torch.float64), 1.0), 1)
    for estimate in (lambda: iwae_bound(vae, images(), 5, q=q64), lambda: elbo(vae, images(), q=q64)):
        with pytest.raises(TypeError, match=r"q has dtype torch.float64 but x and the model's weights are "
                                            r"torch.float32; build q from tensors converted with .to\(torch.float32\)"):
            estimate()
    q_nan = Independent(Normal(torch.full((4, 2), math.nan), 1.0, validate_args=False), 1)
    with pytest.raises(ValueError, match=r"q must have finite parameters"):
        elbo(vae, images(), q=q_nan)


EVALUATION_CALLS = {
    "knn NaN": (lambda: knn_accuracy(torch.tensor([[0.0], [math.nan]]), [0, 1], torch.zeros(1, 1), [0], k=1),
                r"train_codes must hold finite values, got NaN or infinite entries in 1 of its 2 rows"),
    "knn k": (lambda: knn_accuracy(torch.zeros(3, 2), [0, 1, 1], torch.zeros(2, 2), [0, 1], k=5),
              r"k must be at most the number of training codes \(3\), got 5"),
    "knn train lengths": (lambda: knn_accuracy(torch.zeros(3, 2), [0, 1], torch.zeros(2, 2), [0, 1], k=1),
                          r"train_codes and train_labels must have the same length \(one row per example\), "
                          r"got train_codes 3 and train_labels 2"),
    "knn test lengths": (lambda: knn_accuracy(torch.zeros(3, 2), [0, 1, 1], torch.zeros(2, 2), [0], k=1),
                         r"test_codes and test_labels must have the same length"),
    "knn empty": (lambda: knn_accuracy(torch.zeros(3, 2), [0, 1, 1], torch.zeros(0, 2), [], k=1),
                  r"test_codes must be a non-empty numeric array or tensor \(N, \.\.\.\), got shape \(0, 2\)"),
    "knn labels 2-D": (lambda: knn_accuracy(torch.zeros(3, 2), torch.zeros(3, 1), torch.zeros(2, 2), [0, 1], k=1),
                       r"train_labels must be a 1-D array or tensor of labels \(N,\), got shape \(3, 1\)"),
    "pca NaN": (lambda: pca_codes(torch.full((5, 3), math.nan), torch.zeros(2, 3)),
                r"train_x must hold finite values, got NaN or infinite entries in 5 of its 5 rows"),
    "pca empty": (lambda: pca_codes(torch.zeros(5, 3), torch.zeros(0, 3)), r"test_x must be a non-empty numeric array"),
    "pr k data": (lambda: precision_recall(torch.zeros(3, 2), torch.rand(10, 2), k=3),
                  r"data_codes must hold more than k = 3 rows .*, got 3"),
    "pr k samples": (lambda: precision_recall(torch.rand(10, 2), torch.rand(2, 2), k=3),
                     r"sample_codes must hold more than k = 3 rows .*, got 2"),
    "pr NaN": (lambda: precision_recall(torch.rand(10, 2), torch.full((10, 2), math.nan)),
               r"sample_codes must hold finite values"),
    "pr empty": (lambda: precision_recall(torch.zeros(0, 2), torch.rand(10, 2)), r"data_codes must be a non-empty"),
    "pr dims": (lambda: precision_recall(torch.rand(10, 2), torch.rand(10, 3)),
                r"data_codes and sample_codes must have the same dimension, got 2 and 3"),
    "in_manifold k": (lambda: in_manifold(torch.rand(4, 2), torch.rand(3, 2), k=3), r"codes must hold more than k = 3"),
}


@pytest.mark.parametrize("case", list(EVALUATION_CALLS))
def test_evaluation_checks_its_arguments_before_sklearn_does(case):
    call, message = EVALUATION_CALLS[case]
    with pytest.raises(ValueError, match=message):
        call()


def test_the_checked_evaluation_gives_the_numbers_it_gave_before():
    # codes of two well-separated groups: every neighbour has the right label, and each set covers the other
    g = torch.Generator().manual_seed(0)
    codes = torch.cat([torch.randn(50, 2, generator=g), torch.randn(50, 2, generator=g) + 10])
    labels = torch.cat([torch.zeros(50), torch.ones(50)]).long()
    assert knn_accuracy(codes[::2], labels[::2], codes[1::2], labels[1::2], k=3) == 1.0
    precision, recall = precision_recall(codes[::2], codes[1::2], k=3)
    assert 0.5 < precision <= 1 and 0.5 < recall <= 1
    assert precision_recall(codes[::2], codes[1::2] + 100, k=3) == (0.0, 0.0)  # samples far from all data


# --- refused or accepted wrongly -----------------------------------------------------------------------


def test_log_likelihood_of_a_linear_gaussian_uses_its_exact_posterior_and_is_exact():
    model = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=0)
    _, x = model.sample(20, seed=1)
    with pytest.warns(UserWarning, match="bits_per_dim is NaN"):  # p(x|z) is a density
        result = log_likelihood(model, x, k=50, batch_size=8)
    exact = -model.log_evidence(x).mean().item()
    # with q = p(z|x) every weight is p(x): the bound and the ELBO are log p(x) up to rounding
    assert result.nll_nats == pytest.approx(exact, abs=1e-9) and result.neg_elbo_nats == pytest.approx(exact, abs=1e-9)
    assert result.n == 20 and math.isnan(result.bits_per_dim)
    torch.testing.assert_close(elbo(model, x), model.log_evidence(x))
    with pytest.raises(TypeError, match=r"model must have encode \(like VAE\) or posterior \(like LinearGaussian\)"):
        log_likelihood(type("DecoderOnly", (), {"decode": model.decode, "prior": model.prior})(), x)


def test_numpy_integers_are_accepted_wherever_ints_are_and_stored_as_ints():
    model = VAE(latent_dim=np.int64(2), hidden=(np.int32(16),), warmup_steps=np.int64(0), input_shape=(1, 28, 28))
    assert type(model.hparams["latent_dim"]) is int and model.hparams["hidden"] == (16,)
    assert type(model.hparams["hidden"][0]) is int and model.latent_dim == 2
    assert VAE(beta=np.float32(0.5)).hparams["beta"] == 0.5 and type(VAE(beta=np.float32(0.5)).hparams["beta"]) is float
    data = MNISTDataModule(batch_size=np.int64(50), subset=np.int64(100), val_size=np.int64(10), seed=np.uint8(3))
    assert [type(data.hparams[k]) for k in ("batch_size", "subset", "val_size", "seed")] == [int] * 4
    assert model.sample(np.int64(2)).shape == (2, 1, 28, 28)
    for value in (True, np.bool_(True), 2.0):
        with pytest.raises(ValueError, match=r"latent_dim must be an integer >= 1"):
            VAE(latent_dim=value)


def test_gaussian_std_with_a_bernoulli_likelihood_is_refused():
    with pytest.raises(ValueError, match=r"gaussian_std applies to likelihood='gaussian' \(the noise sigma_x of "
                                         r"p\(x\|z\)\); the bernoulli likelihood has no noise scale, got gaussian_std=0.1"):
        VAE(gaussian_std=0.1)
    assert VAE(likelihood="gaussian", gaussian_std=np.float64(0.5)).likelihood.x_logvar.item() == pytest.approx(
        2 * math.log(0.5))


SEEDED = {
    "fit": lambda seed: fit(small_vae(), EmptyTraining(), seed=seed, max_steps=1),
    "MNISTDataModule": lambda seed: MNISTDataModule(seed=seed),
    "binarize_once": lambda seed: binarize_once(torch.zeros(1, 2, 2, dtype=torch.uint8), seed),
    "ReseedEachEpoch": lambda seed: ReseedEachEpoch(seed),
    "checks.seed": lambda seed: checks.seed("seed", seed),
}
#: functions of other modules that check their seed with the same rule (their NumPy seeds are not yet converted)
SEEDED_ELSEWHERE = {
    "LinearGaussian.random": lambda seed: LinearGaussian.random(seed=seed),
    "LinearGaussian.sample": lambda seed: LinearGaussian.random().sample(2, seed=seed),
}


@pytest.mark.parametrize("name", list(SEEDED) + list(SEEDED_ELSEWHERE))
def test_one_rule_for_seeds_a_non_negative_integer_numpy_ones_included(name):
    call = SEEDED.get(name) or SEEDED_ELSEWHERE[name]
    for bad in (-1, "0", 1.0, True, np.int64(-1)):
        with pytest.raises(ValueError, match=re.escape(f"seed must be an integer >= 0, got {bad!r}")):
            call(bad)
    for good in (0, np.int64(3), np.uint32(2**32 - 1)) if name in SEEDED else (0,):
        try:
            call(good)
        except ValueError as err:  # fit then trains nothing, and says so: the seed itself was accepted
            assert "yields no batches" in str(err)


# --- a hang --------------------------------------------------------------------------------------------

LAUNCHER = ("WORLD_SIZE", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS", "LSB_JOBID",
            "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def test_a_multi_node_run_without_a_launcher_is_refused_at_once_saying_how_to_start_it(monkeypatch):
    for name in LAUNCHER:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError) as err:
        fit(small_vae(), tiny_data(), strategy="ddp", num_nodes=2)
    message = str(err.value)
    assert "num_nodes=2 trains on 2 machines, but this process was not started by a launcher" in message
    assert "would wait forever" in message and "torchrun --nnodes=2 --node-rank=<0..1>" in message
    assert "srun" in message
    with pytest.raises(ValueError, match=r"num_nodes must be an integer >= 1, got 0"):
        fit(small_vae(), tiny_data(), num_nodes=0)


def test_the_launch_check_lets_a_launched_process_through(monkeypatch):
    monkeypatch.setenv("SLURM_NTASKS", "2")
    training._check_launch(2)  # no error: the launcher has started every process
    monkeypatch.delenv("SLURM_NTASKS")
    training._check_launch(1)


# --- data safety ---------------------------------------------------------------------------------------


def corrupt_copy(tmp_path, name="t10k-labels-idx1-ubyte"):
    raw = tmp_path / "MNIST" / "raw"
    shutil.copytree(default_data_dir() / "MNIST" / "raw", raw, ignore=shutil.ignore_patterns("*.gz", ".download-*"))
    data = bytearray((raw / name).read_bytes())
    data[5000] ^= 0xFF
    (raw / name).write_bytes(bytes(data))
    return raw, name, bytes(data)


def test_a_failed_download_leaves_the_users_corrupt_file_in_place(tmp_path, monkeypatch):
    import torchvision.datasets

    raw, name, content = corrupt_copy(tmp_path)

    def offline(self):
        raise RuntimeError("Error downloading t10k-labels-idx1-ubyte.gz: no network")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", offline)
    with pytest.raises(FileNotFoundError) as err:
        load_mnist(train=False, root=tmp_path, download=True)
    assert (raw / name).read_bytes() == content  # not deleted, not changed
    assert f"{raw / name} is truncated or corrupt" in str(err.value) and "no network" in str(err.value)
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_MD5)  # no temporary folder left behind


def test_a_download_replaces_the_corrupt_file_only_with_one_whose_md5_matches(tmp_path, monkeypatch):
    import torchvision.datasets

    raw, name, content = corrupt_copy(tmp_path)
    good = default_data_dir() / "MNIST" / "raw"

    def deliver(wrong):
        def download(self):
            folder = self.raw_folder
            shutil.os.makedirs(folder, exist_ok=True)
            for file in MNIST_MD5:
                shutil.copy(good / file, f"{folder}/{file}")
            if wrong:
                with open(f"{folder}/{name}", "r+b") as f:
                    f.truncate(100)
        return download

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", deliver(wrong=True))
    with pytest.raises(FileNotFoundError, match=rf"(?s){name} is truncated or corrupt .*could not be downloaded"):
        load_mnist(train=False, root=tmp_path, download=True)
    assert (raw / name).read_bytes() == content  # the bad download did not replace the user's file
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", deliver(wrong=False))
    images, labels = load_mnist(train=False, root=tmp_path, download=True)
    assert hashlib.md5((raw / name).read_bytes()).hexdigest() == MNIST_MD5[name] and labels.shape == (10_000,)
    assert sorted(p.name for p in raw.iterdir()) == sorted(MNIST_MD5)


def test_the_scatter_plots_refuse_codes_that_are_not_finite():
    z = torch.rand(5, 2)
    z[1, 0] = math.nan
    with pytest.raises(ValueError, match=r"z must hold finite values, got NaN or infinite entries in 1 of its 5 rows"):
        plots.plot_latent(z)
    with pytest.raises(ValueError, match=r"mu must hold finite values"):
        plots.plot_encodings(z, torch.zeros(5, 2))
    with pytest.raises(ValueError, match=r"logvar must hold finite values"):
        plots.plot_encodings(torch.rand(5, 2), torch.full((5, 2), math.inf))


@pytest.mark.parametrize("call", [
    lambda: plots.show_images(torch.rand(4, 1, 5, 5), nrow=np.int64(2)),
    lambda: plots.plot_manifold(small_vae().decode, extent=np.int64(2), n=np.int64(3)),
    lambda: plots.plot_reconstructions(torch.rand(2, 1, 5, 5), torch.rand(2, 1, 5, 5), n=np.int64(2)),
    lambda: iwae_bound(small_vae(), images(2), np.int64(3), chunk_size=np.int64(2)),
    lambda: log_likelihood(small_vae(), images(2), k=np.int64(3), batch_size=np.int64(1), chunk_size=np.int64(2)),
    lambda: in_manifold(torch.rand(4, 2), torch.rand(6, 2), k=np.int64(2), chunk_size=np.int64(2)),
    lambda: pca_codes(torch.rand(6, 4), torch.rand(2, 4), dim=np.int64(2)),
])
def test_numpy_integers_work_in_the_plots_estimators_and_scores(call):
    call()  # no error: each integer reached torch, matplotlib or sklearn as a Python int


def test_every_seeded_function_in_the_tractable_modules_takes_numpy_seeds_and_refuses_bad_ones():
    from vae_helpers.bayes import DiscreteLatentModel
    from vae_helpers.divergences import fit_gaussian
    from vae_helpers.linear_gaussian import LinearGaussian

    model = LinearGaussian.random(seed=np.int64(3))
    assert torch.equal(model.W, LinearGaussian.random(seed=3).W)
    assert torch.equal(model.sample(4, seed=np.int64(1))[0], model.sample(4, seed=1)[0])
    target = Normal(torch.tensor(0.5), torch.tensor(2.0))
    for bad in (-1, "0", 1.5):
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            LinearGaussian.random(seed=bad)
        with pytest.raises(ValueError, match="seed must be an integer >= 0"):
            fit_gaussian(target, steps=1, seed=bad)
    coins = DiscreteLatentModel(torch.tensor([0.5, 0.5]), torch.tensor([[0.2, 0.8], [0.7, 0.3]]))
    assert torch.equal(coins.sample(5, seed=np.int64(2))[1], coins.sample(5, seed=2)[1])
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        coins.sample(3, seed=-1)
