"""Codes of a data set, PCA codes, and the k-NN manifold estimate behind precision and recall."""
import pytest
import torch

from vae_helpers import VAE, AutoEncoder
from vae_helpers.evaluation import codes, in_manifold, knn_accuracy, pca_codes, precision_recall


def images(n=10):
    return torch.bernoulli(torch.rand(n, 1, 28, 28))


def test_codes_are_the_autoencoders_points_and_the_vaes_means_in_any_batch_size():
    x = images(10)
    ae, vae = AutoEncoder(latent_dim=3, hidden=(16,)), VAE(latent_dim=3, hidden=(16,))
    with torch.no_grad():
        point, mu = ae.encode(x), vae.encoder_params(x)[0]
    torch.testing.assert_close(codes(ae, x, batch_size=3), point)
    torch.testing.assert_close(codes(vae, x, batch_size=4), mu)
    assert codes(vae, x).shape == (10, 3) and not codes(vae, x).requires_grad


def test_codes_leave_the_model_in_the_mode_it_was_in():
    vae = VAE(latent_dim=2, hidden=(8,)).train()
    codes(vae, images(2))
    assert vae.training
    codes(vae.eval(), images(2))
    assert not vae.training


@pytest.mark.parametrize("x, batch_size, error, message", [
    (torch.rand(0, 1, 28, 28), 10, ValueError, r"x must be a floating-point tensor of shape \(N, \.\.\.\) with at least one row"),
    ([[0.0] * 784], 10, TypeError, r"x must be a floating-point tensor of shape \(N, \.\.\.\), got a list"),
    (torch.rand(4, 1, 28, 28), 0, ValueError, "batch_size must be an integer >= 1"),
])
def test_codes_reject_bad_input(x, batch_size, error, message):
    with pytest.raises(error, match=message):
        codes(AutoEncoder(latent_dim=2, hidden=(8,)), x, batch_size=batch_size)


def test_pca_codes_recover_a_plane_up_to_rotation():
    """Points on a 2-D plane in 10-D: the two PCA codes keep every distance, and the test set is projected
    with the training set's directions."""
    g = torch.Generator().manual_seed(0)
    basis = torch.linalg.qr(torch.randn(10, 2, generator=g, dtype=torch.float64))[0]  # orthonormal columns
    offset = torch.randn(10, generator=g, dtype=torch.float64)
    train_s = torch.randn(200, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    test_s = torch.randn(50, 2, generator=g, dtype=torch.float64)
    train_z, test_z = pca_codes(train_s @ basis.T + offset, test_s @ basis.T + offset, dim=2)
    assert train_z.shape == (200, 2) and test_z.shape == (50, 2)
    torch.testing.assert_close(torch.cdist(test_z, train_z), torch.cdist(test_s, train_s).float(), atol=1e-4, rtol=0)
    # the first component carries the larger variance, and the codes are centred on the training mean
    variances = train_z.var(0)
    assert variances[0] > 5 * variances[1]
    torch.testing.assert_close(train_z.mean(0), torch.zeros(2), atol=1e-4, rtol=0)


@pytest.mark.parametrize("train_x, test_x, dim, message", [
    (torch.rand(20, 5), torch.rand(3, 4), 2, "same number of features"),
    (torch.rand(20, 5), torch.rand(3, 5), 0, "dim must be an integer >= 1"),
    (torch.rand(20, 5), torch.rand(3, 5), 6, "dim must be at most"),
    (torch.rand(0, 5), torch.rand(3, 5), 2, "train_x must be a non-empty"),
])
def test_pca_codes_reject_bad_input(train_x, test_x, dim, message):
    with pytest.raises(ValueError, match=message):
        pca_codes(train_x, test_x, dim=dim)


def test_in_manifold_uses_balls_to_the_kth_neighbour():
    """Codes on a line at 0, 1, ..., 9: with k = 1 each ball has radius 1, with k = 2 radius 2 (1 at the
    inner points is not enough: the 2nd nearest of an inner code is 1 away, of an end code 2 away)."""
    line = torch.stack([torch.arange(10.0), torch.zeros(10)], 1)
    points = torch.tensor([[4.5, 0.0], [4.0, 0.9], [-0.9, 0.0], [-1.5, 0.0], [4.5, 3.0], [20.0, 0.0]])
    assert in_manifold(points, line, k=1).tolist() == [True, True, True, False, False, False]
    assert in_manifold(points, line, k=2).tolist() == [True, True, True, True, False, False]
    # every code is inside its own region, in any chunking
    assert in_manifold(line, line, k=1, chunk_size=3).all()


@pytest.mark.parametrize("points, codes_, k, message", [
    (torch.zeros(3, 2), torch.zeros(5, 3), 1, "same dimension"),
    (torch.zeros(3, 2), torch.zeros(3, 2), 3, "more than k"),
    (torch.zeros(3, 2), torch.zeros(5, 2), 0, "k must be an integer >= 1"),
    (torch.zeros(0, 2), torch.zeros(5, 2), 1, "points must be a non-empty"),
])
def test_in_manifold_rejects_bad_input(points, codes_, k, message):
    with pytest.raises(ValueError, match=message):
        in_manifold(points, codes_, k=k)


def test_precision_and_recall_tell_a_narrow_sampler_from_a_spread_one():
    g = torch.Generator().manual_seed(0)
    data = torch.randn(3000, 2, generator=g)
    same = torch.randn(3000, 2, generator=g)
    narrow = 0.2 * torch.randn(3000, 2, generator=g)        # stays in the middle of the data
    spread = 8.0 * torch.randn(3000, 2, generator=g)        # reaches everything, mostly far outside
    p_same, r_same = precision_recall(data, same)
    p_narrow, r_narrow = precision_recall(data, narrow)
    p_spread, r_spread = precision_recall(data, spread)
    assert p_same > 0.9 and r_same > 0.9
    assert p_narrow > 0.95 and r_narrow < 0.4
    assert p_spread < 0.25 and r_spread > 0.9


def test_knn_accuracy_rejects_bad_input():
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        knn_accuracy(torch.zeros(4, 2), torch.zeros(4), torch.zeros(2, 2), torch.zeros(2), k=0)
    with pytest.raises(ValueError, match="same dimension"):
        knn_accuracy(torch.zeros(4, 2), torch.zeros(4), torch.zeros(2, 3), torch.zeros(2))
