import itertools

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Bernoulli

from vae_helpers import VAE
from vae_helpers.autoregressive import (MADE, AutoregressiveBernoulli, AutoregressiveLikelihood, AutoregressiveModel,
                                        context_decoder, made_masks, warm_start)
from vae_helpers.estimators import iwae_bound


def randomized(made: MADE, seed: int = 0) -> MADE:
    """Weights large enough that every allowed path changes the output measurably."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in made.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    return made


def logit_jacobian(made: MADE, context=None, seed: int = 1) -> torch.Tensor:
    """d l_i / d x_j at a random grey input: (D, D)."""
    x = torch.rand(made.input_dim, generator=torch.Generator().manual_seed(seed))
    return jacobian(lambda v: made(v, context), x)


@pytest.mark.parametrize("hidden", [5, 20, 40])
def test_each_logit_depends_only_on_earlier_pixels(hidden):
    made = randomized(MADE(input_dim=16, hidden=hidden, context=False))
    jac = logit_jacobian(made)
    later = torch.ones(16, 16).triu().bool()          # j >= i
    assert jac[later].abs().max() == 0
    assert (jac[~later] != 0).all()                  # the direct connections reach every earlier pixel


def test_the_context_keeps_the_ordering():
    made = randomized(MADE(input_dim=16, hidden=20, context=True))
    context = torch.randn(made.context_dim)
    jac = logit_jacobian(made, context)
    assert jac[torch.ones(16, 16).triu().bool()].abs().max() == 0
    # the context reaches every logit, the first one (which sees no pixel) too
    ctx_jac = jacobian(lambda h: made(torch.rand(16), h), context)
    assert (ctx_jac.abs().sum(1) > 0).all()


@pytest.mark.parametrize("window", [1, 2, 5, 8])
def test_a_window_hides_pixels_more_than_w_back(window):
    made = randomized(MADE(input_dim=20, hidden=30, context=True, window=window))
    jac = logit_jacobian(made, torch.randn(made.context_dim))
    i, j = torch.meshgrid(torch.arange(20), torch.arange(20), indexing="ij")
    inside = (j < i) & (j >= i - window)
    assert jac[~inside].abs().max() == 0
    assert (jac[inside] != 0).all()


def test_the_masks_compose_to_the_window():
    m_in, m_out, m_direct = made_masks(30, 50, window=6)
    paths = (m_out @ m_in > 0) | (m_direct > 0)
    i, j = torch.meshgrid(torch.arange(30), torch.arange(30), indexing="ij")
    assert not (paths & ~((j < i) & (j >= i - 6))).any()
    m_in, m_out, m_direct = made_masks(30, 50)
    assert not ((m_out @ m_in > 0) & (j >= i)).any() and torch.equal(m_direct.bool(), j < i)


def sequential_log_prob(likelihood: AutoregressiveLikelihood, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|h) the slow way: for each pixel i, run the network on x_<i alone (later pixels set to 0)."""
    flat = x.flatten(1)
    total = torch.zeros(len(x))
    for i in range(flat.shape[1]):
        seen = flat.clone()
        seen[:, i:] = 0
        logit = likelihood.made(seen, h)[:, i]
        total += Bernoulli(logits=logit).log_prob(flat[:, i])
    return total


def test_log_prob_is_the_sum_of_the_sequential_conditionals():
    torch.manual_seed(0)
    likelihood = AutoregressiveLikelihood(input_shape=(1, 3, 4), hidden=16)
    randomized(likelihood.made)
    h = torch.randn(5, likelihood.context_dim)
    x = torch.bernoulli(torch.full((5, 1, 3, 4), 0.4))
    px = likelihood(h)
    assert px.batch_shape == (5,) and px.event_shape == (1, 3, 4)
    torch.testing.assert_close(px.log_prob(x), sequential_log_prob(likelihood, h, x))


def test_probabilities_sum_to_one_over_all_images():
    likelihood = AutoregressiveLikelihood(input_shape=(1, 2, 4), hidden=6, window=3)
    randomized(likelihood.made, seed=4)
    h = torch.randn(likelihood.context_dim)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=8))).view(256, 1, 2, 4)
    total = torch.logsumexp(likelihood(h).log_prob(every), 0)
    assert abs(total.item()) < 1e-5


def test_draws_follow_the_distribution():
    torch.manual_seed(0)
    model = AutoregressiveModel(hidden=4, input_shape=(1, 1, 3))
    randomized(model.made, seed=2)
    draws = model.sample(20000).view(20000, 3)
    every = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)))
    expected = model.log_prob(every.view(8, 1, 1, 3)).exp()
    counts = (draws[:, None, :] == every[None]).all(-1).float().mean(0)
    assert (counts - expected).abs().max() < 0.015  # about 4 standard errors of a frequency near 0.5


def test_sampling_gives_binary_images_of_the_batch_shape():
    torch.manual_seed(0)
    likelihood = AutoregressiveLikelihood(hidden=20)
    px = likelihood(torch.randn(3, likelihood.context_dim))
    x = px.sample()
    assert x.shape == (3, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
    assert px.sample((2,)).shape == (2, 3, 1, 28, 28)
    model = AutoregressiveModel(hidden=20)
    x = model.sample(4)
    assert x.shape == (4, 1, 28, 28) and set(x.unique().tolist()) <= {0.0, 1.0}
    with pytest.raises(NotImplementedError, match="sample"):
        px.mean


def test_the_part_plugs_into_the_vae_and_its_estimators():
    torch.manual_seed(0)
    likelihood = AutoregressiveLikelihood(hidden=30)
    model = VAE(latent_dim=3, hidden=(16,), likelihood=likelihood, decoder=context_decoder(3, likelihood, 8))
    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3))
    terms = model.loss_terms(x)
    assert all(v.shape == (4,) and torch.isfinite(v).all() for v in terms.values())
    z = torch.randn(6, 4, 3)
    log_px = model.decode(z).log_prob(x)                     # (6, 4): x broadcast against 6 codes each
    each = torch.stack([model.decode(z[s]).log_prob(x) for s in range(6)])
    torch.testing.assert_close(log_px, each)
    assert iwae_bound(model, x, k=5).shape == (4,)
    assert model.sample(2, mean=False).shape == (2, 1, 28, 28)


def test_the_model_without_z_trains_on_minus_log_p():
    torch.manual_seed(0)
    model = AutoregressiveModel(hidden=10, input_shape=(1, 2, 3))
    x = torch.bernoulli(torch.full((7, 1, 2, 3), 0.5))
    loss = model.loss_terms(x)["loss"]
    torch.testing.assert_close(loss, -model.log_prob(x))
    loss.mean().backward()
    assert model.made.inner.weight.grad.abs().sum() > 0
    # masked weights get no gradient: they never change
    assert (model.made.inner.weight.grad * (1 - model.made.inner.mask)).abs().max() == 0


def test_warm_start_copies_weights_and_keeps_the_masks():
    full = randomized(MADE(input_dim=12, hidden=8, context=False))
    windowed = MADE(input_dim=12, hidden=8, context=True, window=3)
    mask = windowed.inner.mask.clone()
    fingerprint = warm_start(windowed, full)
    assert len(fingerprint) == 12 and fingerprint == warm_start(MADE(12, 8, window=3), full)
    torch.testing.assert_close(windowed.inner.weight, full.inner.weight)
    assert torch.equal(windowed.inner.mask, mask)
    assert fingerprint != warm_start(MADE(12, 8), randomized(MADE(12, 8), seed=9))


@pytest.mark.parametrize("window", [0, 784, 2.5, "3", True])
def test_bad_windows_are_refused(window):
    with pytest.raises(ValueError, match="window"):
        AutoregressiveLikelihood(window=window)


def test_bad_arguments_get_clear_errors():
    with pytest.raises(ValueError, match="hidden"):
        AutoregressiveLikelihood(hidden=0)
    with pytest.raises(ValueError, match="hidden"):
        AutoregressiveModel(hidden=-3)
    with pytest.raises(ValueError, match="lr"):
        AutoregressiveModel(lr=0)
    with pytest.raises(ValueError, match="input_dim"):
        made_masks(1, 4)
    likelihood = AutoregressiveLikelihood(hidden=10)
    with pytest.raises(ValueError, match="794"):
        likelihood(torch.zeros(2, 10))
    with pytest.raises(TypeError, match="AutoregressiveLikelihood"):
        context_decoder(2, torch.nn.Identity())
    with pytest.raises(ValueError, match="hidden width"):
        warm_start(MADE(12, 8), MADE(12, 9))
    with pytest.raises(TypeError, match="source"):
        warm_start(MADE(12, 8), torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        AutoregressiveModel(hidden=10).log_prob(torch.full((1, 1, 28, 28), 2.0))
    with pytest.raises(ValueError, match="n must be"):
        AutoregressiveModel(hidden=10).sample(0)


def test_unit_interval_and_support():
    likelihood = AutoregressiveLikelihood(hidden=10)
    assert likelihood.unit_interval is True
    assert likelihood(torch.zeros(likelihood.context_dim)).support.is_discrete
    assert isinstance(likelihood(torch.zeros(likelihood.context_dim)), AutoregressiveBernoulli)
