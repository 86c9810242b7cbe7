import torch

from vae_helpers import LinearGaussian
from vae_helpers.evaluation import knn_accuracy
from vae_helpers.grid import latent_grid, posterior_on_grid


def test_grid_posterior_and_evidence_match_the_exact_ones():
    model = LinearGaussian.random(x_dim=4, z_dim=2, sigma=0.8, seed=2)
    _, x = model.sample(3, seed=1)
    z, volume = latent_grid(extent=6.0, n=301, dim=2, dtype=torch.float64)
    log_px, log_post = posterior_on_grid(model, x, z, volume)
    torch.testing.assert_close(log_px, model.log_evidence(x), rtol=0, atol=1e-6)
    exact = model.posterior(x).log_prob(z.unsqueeze(1))  # (G, B)
    torch.testing.assert_close(log_post, exact, rtol=0, atol=1e-5)


def test_knn_accuracy_separates_clusters_and_not_noise():
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(400) % 4
    centres = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 5.0], [5.0, 5.0]])
    codes = centres[labels] + 0.5 * torch.randn(400, 2, generator=g)
    assert knn_accuracy(codes[:300], labels[:300], codes[300:], labels[300:]) > 0.95
    noise = torch.randn(400, 2, generator=g)
    assert knn_accuracy(noise[:300], labels[:300], noise[300:], labels[300:]) < 0.5
