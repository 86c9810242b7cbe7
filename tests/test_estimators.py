"""The estimators against a model where log p(x) and p(z|x) are exact: the linear-Gaussian model."""
import math
import warnings

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vae_helpers import VAE, LinearGaussian, elbo, iwae_bound, log_importance_weights, log_likelihood


@pytest.fixture
def model():
    return LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=1)


def off_posterior(model, x, shift=0.7, widen=1.5):
    """A mean-field q that is deliberately wrong: shifted and wider than p(z|x)."""
    post = model.posterior(x)
    return Independent(Normal(post.mean + shift, post.variance.sqrt() * widen), 1)


def test_evidence_matches_numerical_integration():
    model = LinearGaussian.random(x_dim=2, z_dim=1, sigma=0.4, seed=3)
    _, x = model.sample(5, seed=4)
    z = torch.linspace(-10, 10, 20001, dtype=torch.float64).unsqueeze(-1)  # (G, 1)
    log_joint = model.decode(z.unsqueeze(1)).log_prob(x) + model.prior.log_prob(z).unsqueeze(1)  # (G, 5)
    numeric = torch.logsumexp(log_joint, 0) + math.log(z[1, 0] - z[0, 0])
    torch.testing.assert_close(numeric, model.log_evidence(x), rtol=0, atol=1e-8)
    # and the posterior is the normalised joint on the grid
    post = torch.exp(log_joint - torch.logsumexp(log_joint, 0))
    mean_on_grid = (post * z).sum(0)
    torch.testing.assert_close(mean_on_grid, model.posterior(x).mean[:, 0], rtol=0, atol=1e-8)


def test_exact_posterior_gives_zero_variance_weights(model):
    _, x = model.sample(4, seed=2)
    log_w = log_importance_weights(model, x, k=50, q=model.posterior(x))
    torch.testing.assert_close(log_w, model.log_evidence(x).expand(50, 4), rtol=0, atol=1e-10)


def test_elbo_identity(model):
    """log p(x) = ELBO(q) + KL(q || p(z|x)) for an arbitrary q."""
    _, x = model.sample(3, seed=5)
    q = off_posterior(model, x)
    q_full = MultivariateNormal(q.mean, covariance_matrix=torch.diag_embed(q.variance))
    kl = kl_divergence(q_full, model.posterior(x))
    log_w = log_importance_weights(model, x, k=200_000, q=q)
    estimate, standard_error = log_w.mean(0), log_w.std(0) / math.sqrt(len(log_w))
    assert (kl > 0.1).all()
    torch.testing.assert_close(elbo(model, x, k=1, q=q).shape, estimate.shape)
    assert ((estimate + kl - model.log_evidence(x)).abs() < 4 * standard_error).all()


def test_elbo_below_iwae_below_log_evidence_and_tightening(model):
    _, x = model.sample(1, seed=6)
    log_px = model.log_evidence(x).item()
    reps = 2000  # average each bound over many independent estimates
    xr = x.expand(reps, -1)
    q = off_posterior(model, xr)
    means = {k: iwae_bound(model, xr, k, q=q).mean().item() for k in (1, 4, 16, 64, 256, 1024)}
    elbo_mean = elbo(model, xr, k=1, q=q).mean().item()
    assert abs(means[1] - elbo_mean) < 0.1  # IWAE_1 is the ELBO
    values = list(means.values())
    assert all(a < b for a, b in zip(values, values[1:])), means
    assert values[-1] <= log_px + 1e-3
    assert log_px - means[1024] < 0.05 < log_px - means[1]


def test_iwae_chunks_agree_with_one_pass(model):
    _, x = model.sample(2, seed=7)
    q = off_posterior(model, x)
    torch.manual_seed(1)
    one = iwae_bound(model, x, 3000, q=q, chunk_size=3000)
    torch.manual_seed(1)
    chunked = iwae_bound(model, x, 3000, q=q, chunk_size=1000)
    torch.testing.assert_close(one, chunked, rtol=0, atol=1e-10)


def test_bad_k_is_named(model):
    _, x = model.sample(2, seed=7)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="k must be an integer >= 1"):
            iwae_bound(model, x, bad, q=model.posterior(x))


class _Encoded:
    """The linear-Gaussian model with q(z|x) = the exact posterior as its encoder."""

    def __init__(self, model):
        self.model, self.prior, self.decode = model, model.prior, model.decode

    def encode(self, x):
        return self.model.posterior(x)


def test_log_likelihood_over_a_data_set(model):
    _, x = model.sample(250, seed=8)
    with pytest.warns(UserWarning, match="bits_per_dim is NaN"):  # a Gaussian p(x|z): a density, not a code length
        result = log_likelihood(_Encoded(model), x, k=10, batch_size=100)
    exact = -model.log_evidence(x).mean().item()
    assert result.n == 250 and result.k == 10
    assert abs(result.nll_nats - exact) < 1e-8 and abs(result.neg_elbo_nats - exact) < 1e-8
    assert math.isnan(result.bits_per_dim)


def test_bits_per_dim_only_for_a_discrete_likelihood():
    """A Bernoulli VAE keeps its bits per dimension; a Gaussian-likelihood VAE gets NaN and a warning."""
    torch.manual_seed(0)
    x = torch.rand(6, 1, 28, 28)
    bernoulli, gaussian = VAE(latent_dim=2, hidden=(16,)), VAE(latent_dim=2, hidden=(16,), likelihood="gaussian")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning for the Bernoulli model
        torch.manual_seed(1)
        kept = log_likelihood(bernoulli, x.bernoulli(), k=5)
    assert math.isfinite(kept.bits_per_dim)
    assert kept.bits_per_dim == pytest.approx(kept.nll_nats / (784 * math.log(2)), rel=1e-12)
    with pytest.warns(UserWarning, match="not a discrete distribution"):
        refused = log_likelihood(gaussian, x, k=5)
    assert math.isfinite(refused.nll_nats) and math.isnan(refused.bits_per_dim)
