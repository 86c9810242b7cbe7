"""Bayes' rule by enumeration: the discrete latent-variable model's tables and its generative story."""
import pytest
import torch
from torch.distributions import Binomial

from vae_helpers.bayes import DiscreteLatentModel


def random_model(k=3, m=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    prior = torch.rand(k, generator=g, dtype=torch.float64) + 0.1
    likelihood = torch.rand(k, m, generator=g, dtype=torch.float64) + 0.1
    return DiscreteLatentModel(prior / prior.sum(), likelihood / likelihood.sum(-1, keepdim=True))


def test_tables_are_consistent():
    model = random_model()
    joint = model.joint()
    assert joint.shape == (3, 5)
    torch.testing.assert_close(joint.sum(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(model.evidence(), joint.sum(0))        # p(x) = sum_z p(z, x)
    torch.testing.assert_close(joint.sum(1), model.prior_probs)       # sum_x p(z, x) = p(z)
    x = torch.arange(5)
    post = model.posterior(x).probs                                   # (5, 3)
    torch.testing.assert_close(post.sum(-1), torch.ones(5, dtype=torch.float64))
    # Bayes' rule both ways round: p(z|x) p(x) = p(z, x) = p(x|z) p(z)
    torch.testing.assert_close(post * model.evidence().unsqueeze(-1), joint.T)
    torch.testing.assert_close(model.decode(torch.arange(3)).probs * model.prior_probs.unsqueeze(-1), joint)
    torch.testing.assert_close(model.log_evidence(x), model.evidence().log())


def test_an_uninformative_observation_leaves_the_prior_unchanged():
    prior = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    model = DiscreteLatentModel(prior, torch.full((3, 4), 0.25, dtype=torch.float64))
    torch.testing.assert_close(model.posterior(2).probs, prior)


def test_updating_twice_equals_updating_on_both_observations():
    model = random_model(k=4, m=6, seed=1)
    x1, x2 = 1, 4
    after_x1 = DiscreteLatentModel(model.posterior(x1).probs, model.likelihood)
    both = model.prior_probs * model.likelihood[:, x1] * model.likelihood[:, x2]
    torch.testing.assert_close(after_x1.posterior(x2).probs, both / both.sum())


def test_sampling_frequencies_match_the_exact_tables():
    # three coins of different bias, x = number of heads in 6 tosses
    bias = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    likelihood = Binomial(6, probs=bias.unsqueeze(-1)).log_prob(torch.arange(7.0, dtype=torch.float64)).exp()
    model = DiscreteLatentModel(torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64), likelihood)
    n = 200_000
    z, x = model.sample(n, seed=0)
    assert z.shape == x.shape == (n,)
    freq_z = torch.bincount(z, minlength=3) / n
    freq_x = torch.bincount(x, minlength=7) / n
    assert (freq_z - model.prior_probs).abs().max() < 0.01
    assert (freq_x - model.evidence()).abs().max() < 0.01
    for value in (1, 3, 5):
        freq_post = torch.bincount(z[x == value], minlength=3) / (x == value).sum()
        assert (freq_post - model.posterior(value).probs).abs().max() < 0.02
    # the seed makes the story reproducible
    assert torch.equal(model.sample(50, seed=3)[1], model.sample(50, seed=3)[1])


@pytest.mark.parametrize("prior, likelihood, error, match", [
    (torch.tensor([0.5, 0.6]), torch.full((2, 2), 0.5), ValueError, "prior_probs.*sum to 1"),
    (torch.tensor([1.5, -0.5]), torch.full((2, 2), 0.5), ValueError, "prior_probs.*non-negative"),
    (torch.tensor([1, 0]), torch.full((2, 2), 0.5), TypeError, "prior_probs must be a floating-point tensor"),
    (torch.tensor([0.5, 0.5]), torch.tensor([[0.5, 0.6], [0.5, 0.5]]), ValueError, "likelihood.*each row"),
    (torch.tensor([0.5, 0.5]), torch.full((3, 2), 0.5), ValueError, "one row per value of z"),
    (torch.tensor([0.5, 0.5]), torch.full((2,), 0.5), ValueError, r"likelihood must be .* shape \(K, M\)"),
])
def test_bad_tables_are_named(prior, likelihood, error, match):
    with pytest.raises(error, match=match):
        DiscreteLatentModel(prior, likelihood)


def test_bad_arguments_are_named():
    model = random_model()
    with pytest.raises(ValueError, match="x must hold integers in 0..4"):
        model.posterior(5)
    with pytest.raises(ValueError, match="x must hold integers"):
        model.log_evidence(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="z must hold integers in 0..2"):
        model.decode(3)
    with pytest.raises(ValueError, match="n must be an integer >= 1"):
        model.sample(0)
    never = DiscreteLatentModel(torch.tensor([1.0, 0.0]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="p\\(x\\) = 0"):
        never.posterior(1)
