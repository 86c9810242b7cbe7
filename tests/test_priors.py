"""The learned priors against densities written out by hand, and plugged into the VAE."""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vae_helpers import VAE, mlp
from vae_helpers.priors import MixturePrior, StandardNormal, VampPrior, initial_pseudo_inputs

from test_models import terms_and_their_draw


def images(n=6):
    return torch.bernoulli(torch.rand(n, 1, 28, 28))


def log_normal(z, mu, logvar):
    """log N(z; mu, diag exp(logvar)) written out: sum_j -(z_j - mu_j)^2 / (2 s_j^2) - logvar_j / 2 - log(2 pi) / 2."""
    return (-0.5 * (z - mu).pow(2) / logvar.exp() - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)


def spread(prior):
    """Move every parameter of a mixture prior off its start, so that no term of the density is trivially 0 or 1."""
    with torch.no_grad():
        prior.logits.copy_(torch.randn_like(prior.logits))
        prior.logvar.copy_(0.5 * torch.randn_like(prior.logvar))


def test_mixture_log_prob_is_the_log_sum_exp_of_weighted_gaussians():
    prior = MixturePrior(latent_dim=3, num_components=4, seed=1)
    spread(prior)
    z = 2 * torch.randn(7, 3)
    log_pi = torch.log_softmax(prior.logits, 0)
    by_hand = torch.stack([log_pi[k] + log_normal(z, prior.mu[k], prior.logvar[k]) for k in range(4)])
    by_hand = by_hand.exp().sum(0).log()  # no logsumexp: the plain formula, fine at these magnitudes
    p = prior()
    assert isinstance(p, MixtureSameFamily) and p.event_shape == (3,) and p.batch_shape == ()
    torch.testing.assert_close(p.log_prob(z), by_hand)
    assert p.sample((5,)).shape == (5, 3)


def test_one_component_is_a_diagonal_gaussian_and_starts_as_the_standard_normal_when_centred():
    prior = MixturePrior(latent_dim=2, num_components=1, seed=2)
    spread(prior)
    z = torch.randn(9, 2)
    gaussian = Independent(Normal(prior.mu[0], torch.exp(0.5 * prior.logvar[0])), 1)
    torch.testing.assert_close(prior().log_prob(z), gaussian.log_prob(z))
    centred = MixturePrior(latent_dim=2, num_components=1, init_spread=0.0)
    torch.testing.assert_close(centred().log_prob(z), StandardNormal(2)().log_prob(z))


def test_mixture_components_start_apart_and_seeded():
    a, b = MixturePrior(2, 5, seed=3), MixturePrior(2, 5, seed=3)
    torch.testing.assert_close(a.mu, b.mu)
    assert torch.cdist(a.mu, a.mu)[~torch.eye(5, dtype=torch.bool)].min() > 0.01


def test_mixture_prior_trains_with_the_vae():
    prior = MixturePrior(latent_dim=2, num_components=3)
    model = VAE(latent_dim=2, hidden=(16,), prior=prior)
    assert model.prior.event_shape == (2,)
    assert {id(p) for p in prior.parameters()} <= {id(p) for p in model.parameters()}
    model.loss_terms(images())["loss"].mean().backward()
    for name, param in prior.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    assert model.sample(3).shape == (3, 1, 28, 28)


def test_mixture_prior_refuses_bad_arguments():
    with pytest.raises(ValueError, match="num_components must be an integer >= 1"):
        MixturePrior(2, 0)
    with pytest.raises(ValueError, match="latent_dim"):
        MixturePrior(0, 2)
    with pytest.raises(ValueError, match="init_spread"):
        MixturePrior(2, 2, init_spread=-1.0)
    with pytest.raises(ValueError, match="seed"):
        MixturePrior(2, 2, seed=-1)


# --- the VampPrior ---------------------------------------------------------------------------------


def test_vamp_density_is_the_mixture_of_the_encodings_of_the_pseudo_inputs():
    encoder = mlp([784, 16, 6])  # D = 3
    u0 = torch.rand(4, 1, 28, 28)
    prior = VampPrior(encoder, u0)
    u = prior.pseudo_inputs
    assert u.shape == (4, 1, 28, 28) and (u > 0).all() and (u < 1).all()
    torch.testing.assert_close(u, u0.clamp(0.05, 0.95))  # starts where it was put, within the margin
    mu, logvar = encoder(u.flatten(1)).chunk(2, dim=-1)
    by_hand = MixtureSameFamily(Categorical(probs=torch.full((4,), 0.25)),
                                Independent(Normal(mu, torch.exp(0.5 * logvar)), 1))
    z = torch.randn(10, 3)
    torch.testing.assert_close(prior().log_prob(z), by_hand.log_prob(z))
    # and the same as the average of the four encodings' densities, written out
    densities = torch.stack([log_normal(z, mu[k], logvar[k]) for k in range(4)]).exp().mean(0)
    torch.testing.assert_close(prior().log_prob(z), densities.log())


def test_vamp_prior_shares_the_encoder_and_trains_with_the_vae():
    model = VAE(latent_dim=2, hidden=(16,))
    model.p_z = VampPrior(model.encoder, initial_pseudo_inputs(images(20), 5, seed=1))
    assert model.p_z.encoder is model.encoder
    # one copy of each weight among the model's parameters; the state dict names the shared weights twice
    assert len(list(model.parameters())) == len({id(p) for p in model.parameters()})
    assert sum(p.numel() for p in model.parameters()) == (sum(p.numel() for p in model.encoder.parameters())
                                                           + sum(p.numel() for p in model.decoder.parameters())
                                                           + 5 * 784)
    x = images()
    terms, q, z = terms_and_their_draw(model, x, seed=0)
    torch.testing.assert_close(terms["rate"], q.log_prob(z) - model.prior.log_prob(z))
    terms["loss"].mean().backward()
    assert model.p_z.free.grad is not None and model.p_z.free.grad.abs().sum() > 0
    state = {k: v.clone() for k, v in model.state_dict().items()}
    fresh = VAE(latent_dim=2, hidden=(16,))
    fresh.p_z = VampPrior(fresh.encoder, torch.rand(5, 1, 28, 28))
    fresh.load_state_dict(state)
    torch.testing.assert_close(fresh.prior.log_prob(z.detach()), model.prior.log_prob(z.detach()))


def test_vamp_prior_built_before_the_vae_from_the_same_encoder():
    encoder = mlp([784, 16, 4])
    model = VAE(latent_dim=2, encoder=encoder, prior=VampPrior(encoder, torch.rand(3, 1, 28, 28)))
    assert model.p_z.encoder is model.encoder
    assert model.sample(2).shape == (2, 1, 28, 28)


def test_free_pseudo_inputs_for_an_encoder_of_other_data():
    encoder = mlp([5, 8, 4])
    u0 = 3 * torch.randn(6, 5)
    prior = VampPrior(encoder, u0, unit_interval=False)
    torch.testing.assert_close(prior.pseudo_inputs, u0)
    mu, logvar = encoder(u0).chunk(2, dim=-1)
    z = torch.randn(4, 2)
    by_hand = torch.logsumexp(torch.stack([log_normal(z, mu[k], logvar[k]) for k in range(6)]), 0) - math.log(6)
    torch.testing.assert_close(prior().log_prob(z), by_hand)


def test_initial_pseudo_inputs():
    x = torch.rand(10, 1, 28, 28)
    chosen = initial_pseudo_inputs(x, 4, seed=0)
    assert all(any(torch.equal(c, xi) for xi in x) for c in chosen)
    assert len({tuple(c.flatten()[:5].tolist()) for c in chosen}) == 4  # without replacement
    near_mean = initial_pseudo_inputs(x, 3, noise=0.01, seed=0)
    assert near_mean.shape == (3, 1, 28, 28) and (near_mean - x.mean(0)).abs().max() < 0.06
    with pytest.raises(ValueError, match="num_components must be at most"):
        initial_pseudo_inputs(x, 11)
    with pytest.raises(ValueError, match="noise"):
        initial_pseudo_inputs(x, 2, noise=-0.1)


def test_vamp_prior_refuses_bad_arguments():
    encoder = mlp([784, 8, 4])
    with pytest.raises(TypeError, match="encoder must be an nn.Module"):
        VampPrior(lambda x: x, torch.rand(2, 1, 28, 28))
    with pytest.raises(TypeError, match="pseudo_inputs must be a floating-point tensor"):
        VampPrior(encoder, [[0.5] * 784])
    with pytest.raises(TypeError, match="pseudo_inputs must be a floating-point tensor"):
        VampPrior(encoder, torch.ones(2, 784, dtype=torch.long))
    with pytest.raises(ValueError, match="pseudo_inputs must be .* with at least one row"):
        VampPrior(encoder, torch.rand(0, 1, 28, 28))  # K = 0
    with pytest.raises(ValueError, match=r"pseudo_inputs must lie in \[0, 1\]"):
        VampPrior(encoder, 2 * torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="pseudo_inputs must hold finite values"):
        VampPrior(encoder, torch.full((2, 1, 28, 28), float("nan")))
    with pytest.raises(TypeError, match="pseudo_inputs has dtype torch.float64"):
        VampPrior(encoder, torch.rand(2, 1, 28, 28, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"pseudo_inputs of shape \(2, 1, 14, 14\) do not fit the encoder"):
        VampPrior(encoder, torch.rand(2, 1, 14, 14))  # images of another size
    with pytest.raises(ValueError, match=r"encoder must map .* to \(K, 2D\)"):
        VampPrior(mlp([784, 8, 3]), torch.rand(2, 1, 28, 28))
    with pytest.raises(ValueError, match="margin"):
        VampPrior(encoder, torch.rand(2, 1, 28, 28), margin=0.5)


def test_free_bits_name_what_a_mixture_prior_lacks():
    model = VAE(latent_dim=2, hidden=(8,), free_bits=0.5, prior=MixturePrior(2, 3))
    model.train()
    with pytest.raises(TypeError, match="free bits need the KL of each latent dimension .* p is a MixtureSameFamily"):
        model.loss_terms(images(3))


def test_the_repr_names_the_number_of_components():
    # fit_cached's key reads repr(model): priors of other sizes must give other keys
    assert "num_components=3" in repr(MixturePrior(2, 3)) and repr(MixturePrior(2, 3)) != repr(MixturePrior(2, 4))
    encoder = mlp([784, 8, 4])
    assert "num_components=5" in repr(VampPrior(encoder, torch.rand(5, 1, 28, 28)))
    assert repr(VampPrior(encoder, torch.rand(5, 1, 28, 28))) != repr(VampPrior(encoder, torch.rand(6, 1, 28, 28)))
