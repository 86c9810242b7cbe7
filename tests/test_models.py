import math

import pytest
import torch
from torch.distributions import Independent

from vae_helpers import VAE, AutoEncoder, mlp


def images(n=8, binary=True):
    x = torch.rand(n, 1, 28, 28)
    return torch.bernoulli(x) if binary else x


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_shapes_of_q_p_and_samples(likelihood):
    model = VAE(latent_dim=3, hidden=(32,), likelihood=likelihood)
    x = images()
    q = model.encode(x)
    assert isinstance(q, Independent) and q.batch_shape == (8,) and q.event_shape == (3,)
    px = model.decode(q.rsample((5,)))
    assert px.batch_shape == (5, 8) and px.event_shape == (1, 28, 28)
    assert model.sample(4).shape == (4, 1, 28, 28)
    terms = model.loss_terms(x)
    assert set(terms) == {"loss", "elbo", "rate", "distortion"} and all(v.shape == (8,) for v in terms.values())
    torch.testing.assert_close(terms["elbo"], -(terms["rate"] + terms["distortion"]))


def test_sums_over_pixels_and_latents():
    """The distortion is -log p(x|z) summed over all 784 pixels; the rate sums the D per-dimension KLs."""
    model = VAE(latent_dim=4, hidden=(16,))
    x = images(2)
    mu, logvar = model.encoder_params(x)
    torch.manual_seed(3)
    terms = model.loss_terms(x)
    torch.manual_seed(3)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    logits = model.decoder(z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x.flatten(1), reduction="none").sum(1)
    torch.testing.assert_close(terms["distortion"], bce)
    kl = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(1)
    torch.testing.assert_close(terms["rate"], kl)


def test_gradient_reaches_the_encoder_through_the_sample():
    model = VAE(latent_dim=2, hidden=(16,))
    model.loss_terms(images())["distortion"].mean().backward()  # no KL term: only the path through z
    first = model.encoder[0].weight.grad
    assert first is not None and torch.isfinite(first).all() and first.abs().sum() > 0


def test_monte_carlo_kl_is_unbiased_for_the_analytic_one():
    torch.manual_seed(0)
    analytic, mc = VAE(latent_dim=3, hidden=(16,)), VAE(latent_dim=3, hidden=(16,), kl="mc")
    mc.load_state_dict(analytic.state_dict())
    x = images(1).expand(20000, -1, -1, -1)
    exact = analytic.loss_terms(x[:1])["rate"].item()
    assert mc.loss_terms(x)["rate"].mean().item() == pytest.approx(exact, abs=0.02)


def test_beta_weights_the_rate_and_warmup_ramps_it():
    model = VAE(latent_dim=2, hidden=(16,), beta=4.0)
    torch.manual_seed(1)
    t = model.loss_terms(images())
    torch.testing.assert_close(t["loss"], t["distortion"] + 4.0 * t["rate"])
    warm = VAE(latent_dim=2, hidden=(16,), beta=2.0, warmup_steps=100)
    assert warm.kl_weight() == 0.0  # step 0 of training
    warm.eval()
    assert warm.kl_weight() == 2.0  # evaluation always uses the full weight


def test_free_bits_stop_the_gradient_below_the_floor():
    model = VAE(latent_dim=2, hidden=(16,), free_bits=100.0, beta=1.0)
    x = images()
    t = model.loss_terms(x)
    (t["loss"] - t["distortion"]).mean().backward()  # only the penalised rate
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.encoder.parameters())
    torch.testing.assert_close((t["loss"] - t["distortion"]).mean(), torch.tensor(200.0))


def test_autoencoder_encodes_points():
    ae = AutoEncoder(latent_dim=2, hidden=(16,))
    x = images()
    assert ae.encode(x).shape == (8, 2)
    assert ae.decode(ae.encode(x)).mean.shape == x.shape
    assert ae.loss_terms(x)["loss"].shape == (8,)


@pytest.mark.parametrize("kwargs, match", [
    (dict(latent_dim=0), "latent_dim must be an integer >= 1"),
    (dict(latent_dim=2.5), "latent_dim must be an integer >= 1"),
    (dict(beta=-1.0), "beta must be a finite number >= 0"),
    (dict(beta=math.inf), "beta must be a finite number >= 0"),
    (dict(beta=math.nan), "beta must be a finite number >= 0"),
    (dict(likelihood="poisson"), "likelihood must be one of"),
    (dict(kl="exact"), "kl must be"),
    (dict(hidden=(0,)), "hidden must be"),
    (dict(lr=0), "lr must be"),
])
def test_bad_hyperparameters_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VAE(**kwargs)


def test_bad_images_are_named():
    model = VAE(latent_dim=2, hidden=(16,))
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 1, 28, 28\)"):
        model.encode(torch.rand(4, 784))
    with pytest.raises(TypeError, match="floating-point"):
        model.encode((torch.rand(4, 1, 28, 28) * 255).to(torch.uint8))
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\] for a Bernoulli likelihood"):
        model.loss_terms(torch.rand(4, 1, 28, 28) * 255)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        model.encode([[0.0]])
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.sample(0)


def test_mlp_rejects_bad_sizes():
    with pytest.raises(ValueError, match="sizes"):
        mlp([784])
    with pytest.raises(ValueError, match="activation"):
        mlp([2, 2], activation="gelu")


def test_hook_names_skip_module_checks_but_modules_still_register():
    model = VAE(latent_dim=2, hidden=(8,))
    model._current_fx_name = "training_step"  # what Lightning sets around each hook call
    assert model._current_fx_name == "training_step"
    assert "_current_fx_name" not in model._modules and "_current_fx_name" not in model._parameters
    model.extra = torch.nn.Linear(2, 2)
    model.scale = torch.nn.Parameter(torch.ones(()))
    assert "extra" in model._modules and "scale" in model._parameters


def terms_and_their_draw(model, x, seed):
    """``model.loss_terms(x)``, and q(z|x) with the draw z those terms used (the same seed before each)."""
    torch.manual_seed(seed)
    terms = model.loss_terms(x)
    torch.manual_seed(seed)
    q = model.encode(x)
    return terms, q, q.rsample()


class MixturePrior(torch.nn.Module):
    """Two Gaussians in 2-D: a prior with no closed-form KL to q."""

    def forward(self):
        from torch.distributions import Categorical, MixtureSameFamily, Normal
        components = Independent(Normal(torch.tensor([[-2.0, 0.0], [2.0, 0.0]]), torch.ones(2, 2)), 1)
        return MixtureSameFamily(Categorical(torch.ones(2)), components)


def test_parts_plug_in_without_editing_the_model():
    encoder, decoder = mlp([784, 8, 4]), mlp([2, 8, 784])
    model = VAE(latent_dim=2, encoder=encoder, decoder=decoder, prior=MixturePrior())
    assert model.encoder is encoder and model.decoder is decoder
    x = images(5)
    terms, q, z = terms_and_their_draw(model, x, seed=0)
    # no closed form for a mixture prior: the rate is log q(z|x) - log p(z) at the draw the distortion used
    torch.testing.assert_close(terms["rate"], q.log_prob(z) - model.prior.log_prob(z))
    torch.testing.assert_close(terms["distortion"], -model.decode(z).log_prob(x))
    with pytest.raises(TypeError, match="prior must be an nn.Module"):
        VAE(latent_dim=2, prior=model.prior)


class ConstantLogits(torch.nn.Module):
    """A likelihood part of our own: p(x|z) Bernoulli on the decoder's output shifted by a learned constant."""

    unit_interval = True

    def __init__(self):
        super().__init__()
        self.shift = torch.nn.Parameter(torch.tensor(0.5))

    def forward(self, out):
        from torch.distributions import Bernoulli
        return Independent(Bernoulli(logits=out.view(*out.shape[:-1], 1, 28, 28) + self.shift), 3)


def test_a_likelihood_part_plugs_in():
    likelihood = ConstantLogits()
    model = VAE(latent_dim=2, hidden=(8,), likelihood=likelihood)
    assert model.likelihood is likelihood and "likelihood" not in model.hparams
    x = images(4)
    z = torch.zeros(4, 2)
    from torch.distributions import Bernoulli
    expected = Independent(Bernoulli(logits=model.decoder(z).view(4, 1, 28, 28) + 0.5), 3).log_prob(x)
    torch.testing.assert_close(model.decode(z).log_prob(x), expected)
    assert any(p is likelihood.shift for p in model.parameters())
    with pytest.raises(ValueError, match="likelihood"):
        VAE(latent_dim=2, likelihood="poisson")
