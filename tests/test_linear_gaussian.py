"""The linear-Gaussian model's exact variational quantities: ELBO, KL to the posterior, best mean-field q."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vae_helpers import LinearGaussian, log_importance_weights


@pytest.fixture
def model():
    return LinearGaussian.random(x_dim=4, z_dim=3, sigma=0.6, seed=3)


def random_full_q(batch, d, seed):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(batch, d, d, generator=g, dtype=torch.float64)
    cov = A @ A.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=torch.float64)
    return MultivariateNormal(torch.randn(batch, d, generator=g, dtype=torch.float64), covariance_matrix=cov)


def test_exact_elbo_matches_monte_carlo(model):
    _, x = model.sample(3, seed=1)
    g = torch.Generator().manual_seed(2)
    diag = Independent(Normal(torch.randn(3, 3, generator=g, dtype=torch.float64),
                              torch.rand(3, 3, generator=g, dtype=torch.float64) + 0.2), 1)
    for q in (random_full_q(3, 3, seed=0), diag):
        exact = model.exact_elbo(x, q)
        draws = log_importance_weights(model, x, k=100_000, q=q)  # one-draw ELBO estimates, (k, 3)
        standard_error = draws.std(0) / math.sqrt(len(draws))
        assert exact.shape == (3,)
        assert ((draws.mean(0) - exact).abs() < 4 * standard_error).all()


def test_log_evidence_is_elbo_plus_kl_to_posterior(model):
    _, x = model.sample(5, seed=4)
    for seed in range(4):
        q = random_full_q(5, 3, seed)
        kl = model.kl_to_posterior(x, q)
        assert (kl > 0).all()
        torch.testing.assert_close(model.exact_elbo(x, q) + kl, model.log_evidence(x), rtol=0, atol=1e-10)


def test_the_exact_posterior_closes_the_gap(model):
    _, x = model.sample(4, seed=5)
    post = model.posterior(x)
    torch.testing.assert_close(model.exact_elbo(x, post), model.log_evidence(x), rtol=0, atol=1e-10)
    torch.testing.assert_close(model.kl_to_posterior(x, post), torch.zeros(4, dtype=torch.float64),
                               rtol=0, atol=1e-10)


def test_best_mean_field_q_and_its_gap(model):
    _, x = model.sample(2, seed=6)
    best = model.mean_field_posterior(x)
    assert isinstance(best, Independent) and best.batch_shape == (2,) and best.event_shape == (3,)
    precision = torch.linalg.inv(model.posterior(x).covariance_matrix[0])
    expected_gap = 0.5 * (precision.diagonal().log().sum() - torch.logdet(precision))
    gap = model.log_evidence(x) - model.exact_elbo(x, best)
    torch.testing.assert_close(gap, expected_gap.expand(2), rtol=0, atol=1e-10)
    torch.testing.assert_close(model.kl_to_posterior(x, best), gap, rtol=0, atol=1e-10)
    assert (model.posterior(x).variance > best.variance).all()  # narrower than the marginals
    # no nearby mean-field q does better
    for shift_mu, scale_std in ((0.05, 1.0), (-0.05, 1.0), (0.0, 1.05), (0.0, 0.95)):
        other = Independent(Normal(best.mean + shift_mu, best.stddev * scale_std), 1)
        assert (model.kl_to_posterior(x, other) > model.kl_to_posterior(x, best)).all()


def test_two_dimensional_gap_is_minus_half_log_one_minus_rho_squared():
    model = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=7)
    _, x = model.sample(1, seed=0)
    S = model.posterior(x).covariance_matrix[0]
    rho = S[0, 1] / S.diagonal().prod().sqrt()
    assert abs(rho) > 0.05
    torch.testing.assert_close(model.kl_to_posterior(x, model.mean_field_posterior(x))[0],
                               -0.5 * torch.log1p(-rho ** 2), rtol=0, atol=1e-12)


def test_bad_q_is_named(model):
    _, x = model.sample(2, seed=0)
    with pytest.raises(TypeError, match="q must be a MultivariateNormal or an Independent"):
        model.exact_elbo(x, Normal(torch.zeros(2, 3), 1.0))
    wrong_dim = Independent(Normal(torch.zeros(2, 2, dtype=torch.float64), 1.0), 1)
    with pytest.raises(ValueError, match="dimension 3"):
        model.kl_to_posterior(x, wrong_dim)
    with pytest.raises(ValueError, match="x must be a tensor of shape"):
        model.exact_elbo(torch.zeros(2, 5, dtype=torch.float64), model.posterior(x))
