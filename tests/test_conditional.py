"""The conditional VAE: its ELBO by hand, the label's effect, bad labels, training with labels, and log p(x|y)."""
import pytorch_lightning as pl
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from vae_helpers.conditional import ConditionalVAE, log_likelihood_given
from vae_helpers.estimators import iwae_bound
from vae_helpers.training import fit


def images(n=4):
    return torch.bernoulli(torch.rand(n, 1, 28, 28))


def test_terms_equal_the_hand_computed_elbo():
    model = ConditionalVAE(num_classes=3, latent_dim=2, hidden=(8,))
    x, y = images(3), torch.tensor([0, 2, 1])
    torch.manual_seed(5)
    terms = model.loss_terms(x, y)
    e_y = torch.eye(3)[y]
    mu, logvar = model.encoder(torch.cat([x.flatten(1), e_y], 1)).chunk(2, 1)
    torch.manual_seed(5)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = model.decoder(torch.cat([z, e_y], 1))
    distortion = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
    rate = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(1)
    torch.testing.assert_close(terms["distortion"], distortion)
    torch.testing.assert_close(terms["rate"], rate)
    torch.testing.assert_close(terms["elbo"], -(distortion + rate))
    torch.testing.assert_close(terms["loss"], distortion + rate)


def test_the_label_changes_the_decoder_and_the_encoding():
    model = ConditionalVAE(latent_dim=2, hidden=(16,))
    z = torch.zeros(10, 2)
    means = model.decode(z, torch.arange(10)).mean.flatten(1)
    assert (means[1:] - means[:1]).abs().amax(1).min() > 0  # every label gives another image
    x = images(1).expand(2, 1, 28, 28)
    mu, _ = model.encoder_params(x, torch.tensor([3, 7]))
    assert not torch.allclose(mu[0], mu[1])


def test_decode_broadcasts_labels_over_draws():
    model = ConditionalVAE(latent_dim=2, hidden=(16,))
    z, y = torch.randn(5, 3, 2), torch.tensor([1, 4, 9])
    px = model.decode(z, y)
    assert px.batch_shape == (5, 3)
    torch.testing.assert_close(px.mean[2, 1], model.decode(z[2, 1:2], y[1:2]).mean[0])
    assert model.sample(4, 7).shape == (4, 1, 28, 28)


@pytest.mark.parametrize("y, error, message", [
    (torch.tensor([0.0, 1.0, 2.0, 3.0]), TypeError, "y must be an integer tensor"),
    (torch.eye(10)[:4], TypeError, "y must be an integer tensor"),
    ([0, 1, 2, 3], TypeError, "y must be an integer tensor"),
    (torch.tensor([0, 1, 2]), ValueError, "y must hold one label per example, of shape \\(4,\\)"),
    (torch.tensor([[0, 1, 2, 3]]), ValueError, "y must hold one label per example"),
    (torch.tensor([0, 1, 2, 10]), ValueError, "y must hold labels in 0..9"),
    (torch.tensor([0, -1, 2, 3]), ValueError, "y must hold labels in 0..9"),
])
def test_bad_labels_are_named(y, error, message):
    model = ConditionalVAE(latent_dim=2, hidden=(8,))
    with pytest.raises(error, match=message):
        model.loss_terms(images(4), y)
    with pytest.raises(error, match=message):
        model.decode(torch.zeros(4, 2), y)


def test_bad_constructor_arguments():
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2"):
        ConditionalVAE(num_classes=1)
    with pytest.raises(ValueError, match="latent_dim must be an integer"):
        ConditionalVAE(latent_dim=0)


class LabelledData(pl.LightningDataModule):
    """Random binary images, each with a label: batches (x, y)."""

    def __init__(self, n=64):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.x = torch.bernoulli(torch.rand(n, 1, 28, 28, generator=g), generator=g)
        self.y = torch.randint(0, 10, (n,), generator=g)

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=16)


def test_fit_passes_the_labels_through(monkeypatch):
    model = ConditionalVAE(latent_dim=2, hidden=(8,))
    seen = []
    original = ConditionalVAE.loss_terms

    def spy(self, x, y):
        seen.append(y.clone())
        return original(self, x, y)

    monkeypatch.setattr(ConditionalVAE, "loss_terms", spy)
    data = LabelledData()
    history = fit(model, data, max_epochs=2, progress=False, limit_val_batches=0)
    assert len(seen) == 8 and torch.equal(torch.cat(seen[:4]).sort().values, data.y.sort().values)
    assert history["train/loss"].notna().sum() == 2


def test_training_without_labels_is_refused():
    model = ConditionalVAE(latent_dim=2, hidden=(8,))
    with pytest.raises(ValueError, match="trains on batches \\(x, y\\) with labels y"):
        model.training_step(images(4), 0)


def test_log_likelihood_given_matches_iwae_bound_with_the_labels():
    model = ConditionalVAE(latent_dim=2, hidden=(8,))
    x, y = images(5), torch.tensor([0, 1, 2, 3, 4])
    torch.manual_seed(1)
    per_example = log_likelihood_given(model, x, y, k=20, batch_size=5)
    torch.manual_seed(1)
    torch.testing.assert_close(per_example, iwae_bound(model.given(y), x, k=20))
    assert per_example.shape == (5,)
    with pytest.raises(ValueError, match="y must hold one label per example"):
        log_likelihood_given(model, x, y[:4], k=2)
