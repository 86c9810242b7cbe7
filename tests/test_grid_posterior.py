"""Moments of the grid posterior and KL(q || p(z|x)) on the grid, against the linear-Gaussian model's exact ones."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, kl_divergence

from vae_helpers import VAE, LinearGaussian, elbo
from vae_helpers.grid import (box_grid, kl_to_posterior_on_grid, latent_grid, moments_on_grid, posterior_in_boxes,
                              posterior_on_grid, support_box)


@pytest.fixture(scope="module")
def setup():
    model = LinearGaussian.random(x_dim=4, z_dim=2, sigma=0.8, seed=2)
    _, x = model.sample(3, seed=1)
    z, volume = latent_grid(extent=6.0, n=301, dim=2, dtype=torch.float64)
    log_px, log_post = posterior_on_grid(model, x, z, volume)
    return model, x, z, volume, log_px, log_post


def test_moments_match_the_exact_posterior(setup):
    model, x, z, volume, _, log_post = setup
    mean, cov = moments_on_grid(log_post, z, volume)
    exact = model.posterior(x)
    torch.testing.assert_close(mean, exact.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(cov, exact.covariance_matrix, rtol=0, atol=1e-6)


def test_kl_on_the_grid_matches_the_closed_form_and_the_elbo_gap(setup):
    model, x, z, volume, log_px, log_post = setup
    exact = model.posterior(x)
    # a mean-field q, deliberately off: shifted and wider than the posterior
    q = Independent(Normal(exact.mean + 0.3, exact.variance.sqrt() * 1.3), 1)
    kl = kl_to_posterior_on_grid(q, log_post, z, volume)
    q_full = MultivariateNormal(q.mean, torch.diag_embed(q.variance))
    torch.testing.assert_close(kl, kl_divergence(q_full, exact), rtol=0, atol=1e-6)
    assert (kl > 0).all()
    # log p(x) - ELBO(q) = KL(q || p(z|x)): the identity the lessons check on a real VAE
    torch.manual_seed(0)
    gap = log_px - elbo(model, x, k=200_000, q=q)
    torch.testing.assert_close(gap, kl, rtol=0, atol=0.02)


def test_kl_of_the_posterior_to_itself_is_zero(setup):
    model, x, z, volume, _, log_post = setup
    kl = kl_to_posterior_on_grid(model.posterior(x), log_post, z, volume)
    torch.testing.assert_close(kl, torch.zeros(3, dtype=kl.dtype), rtol=0, atol=1e-6)


def test_bad_arguments_are_named(setup):
    model, x, z, volume, _, log_post = setup
    with pytest.raises(ValueError, match="log_post must be"):
        moments_on_grid(log_post[:, 0], z, volume)
    with pytest.raises(ValueError, match="z must hold the grid's"):
        moments_on_grid(log_post[:-1], z, volume)
    with pytest.raises(ValueError, match="z must hold the grid's"):
        moments_on_grid(log_post, z[:, 0], volume)
    with pytest.raises(ValueError, match="volume must be"):
        kl_to_posterior_on_grid(model.posterior(x), log_post, z, -1.0)
    q = Independent(Normal(torch.zeros(2, 2, dtype=torch.float64), torch.ones(2, 2, dtype=torch.float64)), 1)
    with pytest.raises(ValueError, match="batch shape"):
        kl_to_posterior_on_grid(q, log_post, z, volume)


def test_a_box_around_the_posterior_gives_the_same_evidence_with_few_points(setup):
    model, x, _, _, log_px, _ = setup
    post = model.posterior(x[:1])
    sd = post.covariance_matrix[0].diagonal().sqrt()
    z, volume = box_grid(post.mean[0] - 8 * sd, post.mean[0] + 8 * sd, n=61)
    assert z.shape == (61 * 61, 2) and z.dtype == torch.float64
    torch.testing.assert_close(z.reshape(61, 61, 2)[0, 1, 0] - z[0, 0], 16 * sd[0] / 60)  # columns step z_1
    box_log_px, box_log_post = posterior_on_grid(model, x[:1], z, volume)
    torch.testing.assert_close(box_log_px, log_px[:1], rtol=0, atol=1e-6)
    mean, cov = moments_on_grid(box_log_post, z, volume)
    torch.testing.assert_close(cov, post.covariance_matrix, rtol=0, atol=1e-6)


def test_box_grid_names_bad_arguments():
    with pytest.raises(ValueError, match="hi must exceed lo"):
        box_grid(torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        box_grid(torch.zeros(3), torch.ones(3))
    with pytest.raises(ValueError, match="n must be"):
        box_grid(torch.zeros(2), torch.ones(2), n=1)


def test_one_grid_per_example_gives_the_same_answers(setup):
    model, x, _, _, log_px, _ = setup
    post = model.posterior(x)
    sd = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    grids = [box_grid(post.mean[i] - 8 * sd[i], post.mean[i] + 8 * sd[i], n=81) for i in range(3)]
    z = torch.stack([g for g, _ in grids], dim=1)  # (G, 3, 2)
    volume = torch.tensor([v for _, v in grids], dtype=torch.float64)
    log_post = torch.cat([posterior_on_grid(model, x[i:i + 1], g, v)[1] for i, (g, v) in enumerate(grids)], dim=1)
    mean, cov = moments_on_grid(log_post, z, volume)
    torch.testing.assert_close(mean, post.mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(cov, post.covariance_matrix, rtol=0, atol=1e-6)
    q = Independent(Normal(post.mean - 0.2, sd), 1)
    q_full = MultivariateNormal(q.mean, torch.diag_embed(q.variance))
    torch.testing.assert_close(kl_to_posterior_on_grid(q, log_post, z, volume), kl_divergence(q_full, post),
                               rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="volume"):
        moments_on_grid(log_post, z, volume[:2])


def test_support_box_of_a_gaussian_posterior_is_its_ellipse_bounding_box(setup):
    # {z : log p(z|x) >= peak - w} is the ellipse (z - m)^T Sigma^-1 (z - m) <= 2w, whose bounding box is
    # m_j +- sqrt(2 w Sigma_jj)
    model, x, z, _, _, log_post = setup
    post = model.posterior(x)
    lo, hi = support_box(log_post, z, within=8.0, pad=0.1)
    half = (2 * 8.0 * post.covariance_matrix.diagonal(dim1=-2, dim2=-1)).sqrt()
    step = 12.0 / 300
    torch.testing.assert_close(lo, post.mean - half - 0.1, rtol=0, atol=step)
    torch.testing.assert_close(hi, post.mean + half + 0.1, rtol=0, atol=step)
    # widening `within` widens the box
    lo_wide, hi_wide = support_box(log_post, z, within=12.0)
    assert (lo_wide < lo + 0.1).all() and (hi_wide > hi - 0.1).all()


def test_support_box_names_bad_arguments(setup):
    _, _, z, _, _, log_post = setup
    with pytest.raises(ValueError, match="within must be"):
        support_box(log_post, z, within=0.0)
    with pytest.raises(ValueError, match="pad must be"):
        support_box(log_post, z, pad=-1.0)
    with pytest.raises(ValueError, match="z must hold"):
        support_box(log_post, z[:-1])


def test_posterior_in_boxes_matches_the_exact_posterior_and_evidence(setup):
    model, x, _, _, _, _ = setup
    post = model.posterior(x)
    sd = post.covariance_matrix.diagonal(dim1=-2, dim2=-1).sqrt()
    log_px, log_post, z, volume = posterior_in_boxes(model, x, post.mean - 8 * sd, post.mean + 8 * sd, n=81)
    assert log_post.shape == (81 * 81, 3) and z.shape == (81 * 81, 3, 2) and volume.shape == (3,)
    torch.testing.assert_close(log_px, model.log_evidence(x), rtol=0, atol=1e-6)
    mean, cov = moments_on_grid(log_post, z, volume)
    torch.testing.assert_close(cov, post.covariance_matrix, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="one box per example"):
        posterior_in_boxes(model, x, post.mean[:2] - 1, post.mean[:2] + 1)


def test_the_bernoulli_shortcut_equals_the_decoders_log_prob():
    # posterior_on_grid takes log p(x|z) of a Bernoulli decoder as a matrix product; it must equal log_prob
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden=(16,)).eval()
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    z, volume = latent_grid(extent=3.0, n=21)
    log_px, log_post = posterior_on_grid(model, x, z, volume)
    with torch.no_grad():
        log_joint = model.decode(z.unsqueeze(1)).log_prob(x) + model.prior.log_prob(z).unsqueeze(1)  # (G, B)
    torch.testing.assert_close(log_post + log_px, log_joint, rtol=1e-6, atol=1e-3)
    torch.testing.assert_close(log_px, torch.logsumexp(log_joint, 0) + math.log(volume), rtol=1e-6, atol=1e-3)


def test_the_grid_refuses_inputs_that_would_give_a_silent_wrong_answer():
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden=(16,)).eval()
    x = (torch.rand(3, 1, 28, 28) > 0.5).float()
    z, volume = latent_grid(extent=3.0, n=11)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\] for a Bernoulli likelihood, got values in \[0, 255\]"):
        posterior_on_grid(model, 255 * x, z, volume)
    with pytest.raises(ValueError, match="extent must be a positive finite number"):
        latent_grid(extent=float("inf"))
    with pytest.raises(TypeError, match="dtype must be a floating-point torch dtype"):
        latent_grid(dtype=torch.int64)
    with pytest.raises(ValueError, match="chunk_size must be an integer >= 1"):
        posterior_on_grid(model, x, z, volume, chunk_size=0)
