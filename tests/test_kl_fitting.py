"""Fitting one Gaussian to a target by forward KL(p || q) or reverse KL(q || p)."""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from vae_helpers.divergences import fit_gaussian, kl_monte_carlo, kl_normal_normal


def two_modes(separation=6.0, dtype=torch.float32):
    loc = torch.tensor([-separation / 2, separation / 2], dtype=dtype)
    return MixtureSameFamily(Categorical(torch.tensor([0.5, 0.5], dtype=dtype)), Normal(loc, torch.ones_like(loc)))


def test_forward_kl_matches_the_targets_moments():
    target = two_modes()
    q = fit_gaussian(target, "forward", steps=300, num_samples=500)
    assert abs(q.mean.item() - target.mean.item()) < 0.2
    assert abs(q.variance.item() / target.variance.item() - 1) < 0.1  # covers both modes: var ~ 1 + 3^2


def test_reverse_kl_sits_on_one_mode():
    target = two_modes()
    for start, mode in ((1.0, 3.0), (-1.0, -3.0)):
        q = fit_gaussian(target, "reverse", steps=300, num_samples=500, init_mu=torch.tensor(start))
        assert abs(q.mean.item() - mode) < 0.2
        assert 0.8 < q.variance.item() < 1.25
        # the other mode is missed, so q pays about log 2 for the half of p's mass it ignores
        assert abs(kl_monte_carlo(q, target, 50_000).item() - math.log(2)) < 0.03


def test_both_directions_recover_a_target_inside_the_family():
    mu_p, logvar_p = torch.tensor([1.0, -2.0]), torch.tensor([0.5, -1.0])
    target = Independent(Normal(mu_p, torch.exp(0.5 * logvar_p)), 1)
    for direction in ("forward", "reverse"):
        q = fit_gaussian(target, direction, steps=400, num_samples=500)
        assert q.event_shape == (2,)
        kl = kl_normal_normal(q.mean, q.variance.log(), mu_p, logvar_p)
        assert kl < 0.01, (direction, kl)


def test_fitting_is_seeded_and_leaves_the_global_random_state_alone():
    target = two_modes()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    a = fit_gaussian(target, "forward", steps=20, seed=5)
    assert torch.equal(torch.rand(3), expected)
    b = fit_gaussian(target, "forward", steps=20, seed=5)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.variance, b.variance)


@pytest.mark.parametrize("kwargs, match", [
    (dict(direction="backward"), "direction must be one of"),
    (dict(steps=0), "steps must be a positive integer"),
    (dict(num_samples=2.5), "num_samples must be a positive integer"),
    (dict(lr=-1.0), "lr must be a positive number"),
    (dict(init_mu=torch.zeros(2)), "init_mu must have the target's event shape"),
])
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_gaussian(two_modes(), **kwargs)


def test_bad_targets_are_named():
    with pytest.raises(TypeError, match="target must be a torch.distributions.Distribution"):
        fit_gaussian("N(0, 1)")
    with pytest.raises(ValueError, match="target must have event shape"):
        fit_gaussian(Normal(torch.zeros(3), torch.ones(3)))
