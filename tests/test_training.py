import os

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch

from vae_helpers import VAE, AutoEncoder, MNISTDataModule, fit, fit_cached, lightning, training


def small_data(seed=0):
    return MNISTDataModule(subset=3000, val_size=1000, batch_size=100, binarize="static", seed=seed)


def test_a_few_hundred_steps_lower_the_validation_loss(capsys):
    model = VAE(latent_dim=8, hidden=(256,))
    history = fit(model, small_data(), max_epochs=10)
    assert isinstance(history, pd.DataFrame) and history["step"].max() == 299
    val = history["val/elbo"].dropna()
    assert len(val) == 10
    # an untrained model scores about -540 nats; 300 steps reach about -146 (three seeds: -145 to -148)
    assert -val.iloc[-1] < 160
    assert val.iloc[-1] > val.iloc[0]
    for column in ("train/rate", "train/distortion", "val/rate", "val/distortion", "train_step/loss"):
        assert column in history.columns
    printed = capsys.readouterr()
    assert "GPU available" not in printed.out + printed.err and "LOCAL_RANK" not in printed.out + printed.err


def test_autoencoder_trains_too():
    model = AutoEncoder(latent_dim=2, hidden=(64,))
    history = fit(model, small_data(), max_epochs=2)
    val = history["val/loss"].dropna()
    assert val.iloc[-1] < val.iloc[0]


def test_fit_rejects_bad_arguments():
    with pytest.raises(TypeError, match="model must be a pl.LightningModule"):
        fit("vae", small_data())
    with pytest.raises(ValueError, match="max_epochs"):
        fit(VAE(), small_data(), max_epochs=0)


NVML_CHECK = "PYTORCH_NVML_BASED_CUDA_CHECK"


class EnvDuringTraining(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.value = os.environ.get(NVML_CHECK)


@pytest.mark.parametrize("nvml_loads", [False, True])
def test_fit_lifts_the_nvml_check_only_where_nvml_cannot_load(monkeypatch, nvml_loads):
    monkeypatch.setenv(NVML_CHECK, "1")  # what importing Lightning does
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(lightning, "_nvml_loads", lambda: nvml_loads)
    seen = EnvDuringTraining()
    fit(VAE(latent_dim=2, hidden=(16,)), small_data(), max_steps=2, callbacks=[seen])
    assert seen.value == ("1" if nvml_loads else None)
    assert os.environ.get(NVML_CHECK) == "1"  # put back after training


def test_without_nvml_torch_gives_the_same_answer_either_way(monkeypatch):
    if lightning._nvml_loads():
        pytest.skip("NVML loads on this machine; asking the CUDA runtime here would initialise CUDA")
    monkeypatch.setenv(NVML_CHECK, "1")
    through_nvml = (torch.cuda.is_available(), torch.cuda.device_count())
    monkeypatch.delenv(NVML_CHECK)
    assert (torch.cuda.is_available(), torch.cuda.device_count()) == through_nvml


class SeenProgressBar(pl.Callback):
    def on_train_start(self, trainer, pl_module):
        self.enabled = trainer.progress_bar_callback is not None


@pytest.mark.parametrize("env, progress, shown", [(None, None, True), ("0", None, False), ("0", True, True),
                                                   (None, False, False)])
def test_a_progress_bar_unless_the_environment_or_the_caller_turns_it_off(monkeypatch, env, progress, shown):
    if env is None:
        monkeypatch.delenv("VAE_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("VAE_PROGRESS", env)
    seen = SeenProgressBar()
    fit(VAE(latent_dim=2, hidden=(16,)), small_data(), max_steps=2, progress=progress, callbacks=[seen])
    assert seen.enabled is shown


def test_fit_cached_trains_once_then_loads(tmp_path):
    first = VAE(latent_dim=2, hidden=(32,))
    h1 = fit_cached(first, small_data(), cache_dir=tmp_path, max_epochs=1)
    assert len(list(tmp_path.glob("VAE-*.pt"))) == 1
    second = VAE(latent_dim=2, hidden=(32,))
    h2 = fit_cached(second, small_data(), cache_dir=tmp_path, max_epochs=1)
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(h1, h2)
    fit_cached(VAE(latent_dim=2, hidden=(32,), beta=2.0), small_data(), cache_dir=tmp_path, max_epochs=1)
    assert len(list(tmp_path.glob("VAE-*.pt"))) == 2  # other settings, another entry


def test_fit_cached_retrains_a_damaged_entry(tmp_path):
    torch.manual_seed(0)
    first = VAE(latent_dim=2, hidden=(16,))
    start = {k: v.clone() for k, v in first.state_dict().items()}
    fit_cached(first, small_data(), cache_dir=tmp_path, max_epochs=1)
    (entry,) = tmp_path.glob("VAE-*.pt")
    entry.write_bytes(entry.read_bytes()[:1000])  # cut short, as by a full disk
    second = VAE(latent_dim=2, hidden=(16,))
    second.load_state_dict(start)
    with pytest.warns(UserWarning, match="could not be read .* training it again"):
        fit_cached(second, small_data(), cache_dir=tmp_path, max_epochs=1)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    assert torch.load(entry, weights_only=True)["state_dict"].keys() == first.state_dict().keys()  # rewritten


def test_the_cache_key_follows_the_settings_the_layers_and_the_recipe_version(monkeypatch):
    from vae_helpers import recipes
    from vae_helpers.networks import mlp

    def key(model, **fit_kwargs):
        return training._cache_key(model, small_data(), fit_kwargs)

    base = key(VAE(latent_dim=2, hidden=(32,)), max_epochs=1)
    assert key(VAE(latent_dim=2, hidden=(32,)), max_epochs=1) == base  # the same settings, the same entry
    assert key(VAE(latent_dim=2, hidden=(32,)), max_epochs=2) != base
    assert key(VAE(latent_dim=2, hidden=(32,), beta=2.0), max_epochs=1) != base
    other_encoder = mlp([784, 32, 32, 4])  # a part that the hyperparameters do not describe
    assert key(VAE(latent_dim=2, hidden=(32,), encoder=other_encoder), max_epochs=1) != base
    monkeypatch.setattr(recipes, "RECIPE_VERSION", recipes.RECIPE_VERSION + 1)
    assert key(VAE(latent_dim=2, hidden=(32,)), max_epochs=1) != base
