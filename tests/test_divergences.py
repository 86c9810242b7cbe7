import math

import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from vae_helpers import kl_monte_carlo, kl_normal_normal, kl_normal_std_normal


def diag_normal(mu, logvar):
    return Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)


def test_closed_form_against_torch_distributions():
    mu, logvar = torch.randn(64, 5, dtype=torch.float64), 3 * torch.randn(64, 5, dtype=torch.float64)
    prior = diag_normal(torch.zeros(5, dtype=torch.float64), torch.zeros(5, dtype=torch.float64))
    expected = kl_divergence(diag_normal(mu, logvar), prior)
    assert kl_normal_std_normal(mu, logvar).shape == (64,)
    torch.testing.assert_close(kl_normal_std_normal(mu, logvar), expected, rtol=1e-12, atol=1e-12)


def test_two_gaussians_against_torch_distributions():
    a = [torch.randn(32, 4, dtype=torch.float64) for _ in range(4)]
    expected = kl_divergence(diag_normal(a[0], a[1]), diag_normal(a[2], a[3]))
    torch.testing.assert_close(kl_normal_normal(*a), expected, rtol=1e-12, atol=1e-12)
    # KL of a distribution with itself is 0, and the divergence is asymmetric
    assert torch.allclose(kl_normal_normal(a[0], a[1], a[0], a[1]), torch.zeros(32, dtype=torch.float64))
    assert not torch.allclose(kl_normal_normal(*a), kl_normal_normal(a[2], a[3], a[0], a[1]))


def test_monte_carlo_converges_to_closed_form():
    mu, logvar = torch.tensor([[0.5, -1.0, 2.0]]), torch.tensor([[0.3, -0.7, 1.1]])
    q = diag_normal(mu, logvar)
    p = diag_normal(torch.zeros(3), torch.zeros(3))
    exact = kl_normal_std_normal(mu, logvar).item()
    errors = []
    for n in (100, 10_000, 1_000_000):
        estimates = torch.stack([kl_monte_carlo(q, p, n) for _ in range(20)])
        errors.append((estimates.mean() - exact).abs().item() + estimates.std().item())
    assert errors[0] > errors[1] > errors[2]  # the error shrinks like 1/sqrt(n)
    assert errors[2] < 0.01 * exact


def test_closed_form_is_accurate_near_zero_and_finite_at_extremes():
    # near logvar = 0 the terms exp(l) - 1 - l nearly cancel; compare with float64
    logvar = torch.full((1, 4), 1e-4)
    ref = kl_normal_std_normal(torch.zeros(1, 4, dtype=torch.float64), logvar.double())
    torch.testing.assert_close(kl_normal_std_normal(torch.zeros(1, 4), logvar).double(), ref, rtol=1e-3, atol=0)
    naive = 0.5 * (logvar.exp() - 1 - logvar).sum(-1)  # the textbook form, in float32
    assert (naive.double() - ref).abs() > 100 * (kl_normal_std_normal(torch.zeros(1, 4), logvar).double() - ref).abs()
    for lv in (-30.0, 30.0):
        value = kl_normal_std_normal(torch.zeros(1, 2), torch.full((1, 2), lv))
        ref = kl_normal_std_normal(torch.zeros(1, 2, dtype=torch.float64), torch.full((1, 2), lv, dtype=torch.float64))
        assert torch.isfinite(value).all()
        torch.testing.assert_close(value.double(), ref, rtol=1e-6, atol=0)


@pytest.mark.parametrize("args, match", [
    ((torch.zeros(3, 2), torch.zeros(3, 4)), "same shape"),
    ((torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2)), "mu must be a floating-point tensor"),
    (([0.0, 1.0], torch.zeros(2)), "mu must be a floating-point tensor"),
])
def test_bad_input_is_named(args, match):
    with pytest.raises((TypeError, ValueError), match=match):
        kl_normal_std_normal(*args)


def test_monte_carlo_bad_input():
    q = diag_normal(torch.zeros(2), torch.zeros(2))
    with pytest.raises(ValueError, match="num_samples"):
        kl_monte_carlo(q, q, 0)
    with pytest.raises(TypeError, match="p must be"):
        kl_monte_carlo(q, "N(0, 1)")
