"""Lightning checkpoints: saved by fit, read with weights_only=True, resumed to the very same run, and
refused, with both configurations named, when they come from another model."""
import pickle

import pandas as pd
import pytest
import torch

from vae_helpers import VAE, AutoEncoder, MNISTDataModule, fit


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # the models here are tiny: on a small shared machine a second thread costs more than it gains.
    # Module scope, so that the module-scoped run below and the resumed runs use the same thread count:
    # a float sum split over another number of threads rounds differently.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def data():
    return MNISTDataModule(subset=600, val_size=201, batch_size=50, eval_batch_size=100, binarize="dynamic")


def same_weights(a, b) -> bool:
    a, b = a.state_dict(), b.state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Four epochs of a VAE with KL warm-up and dynamically binarized data, a checkpoint after each."""
    folder = tmp_path_factory.mktemp("checkpoints")
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden=(32,), warmup_steps=30, kl="mc")
    history = fit(model, data(), max_epochs=4, checkpoint_dir=folder, log_every_n_steps=4)
    return model, history, folder


def test_fit_saves_a_checkpoint_each_epoch_that_loads_with_weights_only(run):
    model, _, folder = run
    assert sorted(p.name for p in folder.iterdir()) == [f"epoch={e}.ckpt" for e in range(4)] + ["last.ckpt"]
    # tensors and plain values only: torch's restricted unpickler reads the whole file
    checkpoint = torch.load(folder / "last.ckpt", weights_only=True)
    assert checkpoint["model_config"] == {"class": "VAE", "hparams": dict(model.hparams)}
    assert checkpoint["hyper_parameters"] == dict(model.hparams)
    loaded = VAE.load_from_checkpoint(folder / "last.ckpt", weights_only=True)
    assert same_weights(loaded, model) and dict(loaded.hparams) == dict(model.hparams)


def test_trainer_save_checkpoint_works_for_the_autoencoder_too(tmp_path):
    model = AutoEncoder(latent_dim=2, hidden=(16,))
    fit(model, data(), max_epochs=1)
    model.trainer.save_checkpoint(tmp_path / "ae.ckpt")
    loaded = AutoEncoder.load_from_checkpoint(tmp_path / "ae.ckpt", weights_only=True)
    assert same_weights(loaded, model)


def test_resuming_from_a_checkpoint_gives_the_same_weights_and_metrics(run):
    model, history, folder = run
    torch.manual_seed(123)  # whatever the state of the random numbers: resuming does not depend on it
    resumed = VAE(latent_dim=3, hidden=(32,), warmup_steps=30, kl="mc")
    later = fit(resumed, data(), max_epochs=4, ckpt_path=folder / "epoch=1.ckpt", log_every_n_steps=4)
    assert same_weights(resumed, model)
    assert later["step"].min() > 23  # it went on from step 24 (two epochs of 12 steps)
    expected = history[history["step"] >= later["step"].min()].reset_index(drop=True)
    pd.testing.assert_frame_equal(later, expected, check_exact=True)  # every metric of epochs 2 and 3


class Payload:
    """An object a pickle would build by running code: what weights_only=True refuses to create."""

    ran = False

    def __reduce__(self):
        return (Payload.run, ())

    @staticmethod
    def run():
        Payload.ran = True
        return "ran"


def test_a_checkpoint_that_would_run_code_is_refused(run, tmp_path):
    _, _, folder = run
    checkpoint = torch.load(folder / "last.ckpt", weights_only=True)
    checkpoint["extra"] = Payload()
    torch.save(checkpoint, tmp_path / "payload.ckpt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        VAE.load_from_checkpoint(tmp_path / "payload.ckpt", weights_only=True)
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        fit(VAE(latent_dim=3, hidden=(32,)), data(), max_epochs=5, ckpt_path=tmp_path / "payload.ckpt")
    assert not Payload.ran


def test_resuming_into_another_architecture_names_both_configurations(run):
    _, _, folder = run
    with pytest.raises(ValueError) as err:
        fit(VAE(latent_dim=4, hidden=(32,), warmup_steps=30, kl="mc"), data(), max_epochs=5,
            ckpt_path=folder / "last.ckpt")
    message = str(err.value)
    assert message.startswith("the checkpoint was saved from VAE(latent_dim=3, hidden=(32,), beta=1.0, ")
    assert "which does not match this model, VAE(latent_dim=4, hidden=(32,), beta=1.0, " in message
    assert "latent_dim=3 vs 4" in message and "encoder.2.weight has shape (6, 32) vs (8, 32)" in message
    assert "VAE.load_from_checkpoint(path, weights_only=True) builds the model the checkpoint describes" in message


def test_resuming_with_other_training_settings_is_refused_but_loading_with_them_is_allowed(run):
    model, _, folder = run
    with pytest.raises(ValueError, match=r"\(beta=1.0 vs 4.0\).*to train those weights further with other settings"):
        fit(VAE(latent_dim=3, hidden=(32,), warmup_steps=30, kl="mc", beta=4.0), data(), max_epochs=5,
            ckpt_path=folder / "last.ckpt")
    # loading the weights to start a new run with beta = 4 is what load_from_checkpoint's overrides are for
    loaded = VAE.load_from_checkpoint(folder / "last.ckpt", weights_only=True, beta=4.0)
    assert loaded.beta == 4.0 and same_weights(loaded, model)


@pytest.mark.parametrize("override, problem", [
    (dict(latent_dim=5), r"latent_dim=3 vs 5; encoder.2.weight has shape \(6, 32\) vs \(10, 32\)"),
    (dict(hidden=(16,)), r"hidden=\(32,\) vs \(16,\); encoder.0.weight has shape \(32, 784\) vs \(16, 784\)"),
    (dict(likelihood="gaussian"), r"likelihood='bernoulli' vs 'gaussian'; the checkpoint lacks likelihood.x_logvar"),
])
def test_loading_with_another_architecture_names_both_configurations(run, override, problem):
    _, _, folder = run
    with pytest.raises(ValueError, match=r"the checkpoint was saved from VAE\(latent_dim=3, .*\), which does not "
                                         rf"match this model, VAE\(.*\) \({problem}"):
        VAE.load_from_checkpoint(folder / "last.ckpt", weights_only=True, **override)


def test_a_checkpoint_of_another_class_is_refused_both_ways(run, tmp_path):
    _, _, folder = run
    with pytest.raises(ValueError, match=r"the checkpoint was saved from VAE\(latent_dim=3, .*\), which does not match "
                                         r"this model, AutoEncoder\(latent_dim=3, .*\) \(class VAE vs AutoEncoder; .*\)\. "
                                         r"VAE.load_from_checkpoint\(path, weights_only=True\) builds the model"):
        AutoEncoder.load_from_checkpoint(folder / "last.ckpt", weights_only=True)
    ae = AutoEncoder(latent_dim=3, hidden=(32,))
    fit(ae, data(), max_epochs=1)
    ae.trainer.save_checkpoint(tmp_path / "ae.ckpt")
    with pytest.raises(ValueError, match=r"saved from AutoEncoder\(latent_dim=3, hidden=\(32,\), .*\), which does not "
                                         r"match this model, VAE\(.*\) \(class AutoEncoder vs VAE; "):
        VAE.load_from_checkpoint(tmp_path / "ae.ckpt", weights_only=True)


def test_a_checkpoint_without_hyperparameters_is_checked_by_its_tensor_shapes(run, tmp_path):
    model, _, folder = run
    checkpoint = torch.load(folder / "last.ckpt", weights_only=True)
    del checkpoint["hyper_parameters"], checkpoint["model_config"]
    torch.save(checkpoint, tmp_path / "bare.ckpt")
    # built with the defaults (latent_dim=2, hidden=(400,)), which do not fit the saved tensors
    with pytest.raises(ValueError, match=r"encoder.0.weight has shape \(32, 784\) vs \(400, 784\)"):
        VAE.load_from_checkpoint(tmp_path / "bare.ckpt", weights_only=True)
    loaded = VAE.load_from_checkpoint(tmp_path / "bare.ckpt", weights_only=True, latent_dim=3, hidden=(32,))
    assert same_weights(loaded, model)
