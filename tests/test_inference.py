"""Variational inference per data point and amortized, and the two gradient estimators of the ELBO."""
import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from vae_helpers import LinearGaussian
from vae_helpers.inference import (AmortizedEncoder, elbo_gradient_samples, fit_amortized, fit_q,
                                   gaussian_q)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These models are tiny: a second thread only adds the cost of waking it, many times per step."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def model():
    """A model whose posterior is strongly correlated (rho about -0.8), so mean-field q falls short."""
    W = torch.tensor([[1.0, 0.8], [0.6, 0.9], [0.3, 0.2]], dtype=torch.float64)
    return LinearGaussian(W, torch.tensor([0.5, -0.3, 0.2], dtype=torch.float64), sigma=0.5)


def test_full_covariance_q_reaches_log_evidence(model):
    _, x = model.sample(2, seed=0)
    result = fit_q(model, x, "full", steps=300, lr=0.1, num_samples=8)
    assert isinstance(result.q, MultivariateNormal) and result.q.batch_shape == (2,)
    assert result.elbo_trace.shape == (300, 2)
    gap = model.log_evidence(x) - model.exact_elbo(x, result.q)
    assert (gap >= 0).all() and (gap < 0.02).all(), gap
    # it climbed: the last steps' ELBO estimates are far above the first
    assert (result.elbo_trace[-20:].mean(0) > result.elbo_trace[0] + 0.5).all()


def test_mean_field_q_stops_short_by_the_best_mean_field_gap(model):
    _, x = model.sample(2, seed=1)
    result = fit_q(model, x, "mean_field", steps=300, lr=0.1, num_samples=16)
    assert isinstance(result.q, Independent) and not result.q.mean.requires_grad
    gap = model.log_evidence(x) - model.exact_elbo(x, result.q)
    best_gap = model.kl_to_posterior(x, model.mean_field_posterior(x))
    assert (best_gap > 0.5).all()
    assert ((gap - best_gap).abs() < 0.02).all(), (gap, best_gap)


def test_init_starts_from_a_given_q(model):
    _, x = model.sample(3, seed=2)
    post = model.posterior(x)
    # a tiny learning rate barely moves q, so the fit stays at its (exact) starting point
    result = fit_q(model, x, "full", steps=2, lr=1e-6, init=post)
    torch.testing.assert_close(result.q.covariance_matrix, post.covariance_matrix, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(result.elbo_trace[0], model.log_evidence(x), rtol=0, atol=1e-8)


def test_fit_q_is_seeded(model):
    _, x = model.sample(1, seed=3)
    a, b = (fit_q(model, x, "mean_field", steps=20, seed=4) for _ in range(2))
    torch.testing.assert_close(a.elbo_trace, b.elbo_trace, rtol=0, atol=0)


@pytest.mark.parametrize("estimator", ["reparameterization", "score_function"])
def test_gradient_estimators_are_unbiased(model, estimator):
    _, x = model.sample(2, seed=5)
    mu = torch.tensor([[0.3, -0.2], [0.0, 0.5]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.2], [0.1, -1.0]], dtype=torch.float64)
    grads = elbo_gradient_samples(model, x, mu, logvar, num_samples=50_000, estimator=estimator, seed=0)
    m, lv = mu.clone().requires_grad_(), logvar.clone().requires_grad_()
    exact = torch.autograd.grad(model.exact_elbo(x, Independent(Normal(m, torch.exp(0.5 * lv)), 1)).sum(), (m, lv))
    for g, e in zip(grads, exact):
        assert g.shape == (50_000, 2, 2)
        standard_error = g.std(0) / math.sqrt(len(g))
        assert ((g.mean(0) - e).abs() < 5 * standard_error).all()


def test_reparameterization_has_lower_variance_and_the_ratio_grows_with_x_dim():
    ratios = []
    for x_dim in (3, 30):
        model = LinearGaussian.random(x_dim=x_dim, z_dim=2, sigma=1.0, seed=0)
        _, x = model.sample(1, seed=0)
        best = model.mean_field_posterior(x)
        variance = {}
        for estimator in ("reparameterization", "score_function"):
            grads = elbo_gradient_samples(model, x, best.mean, best.variance.log(), 5000, estimator, seed=1)
            variance[estimator] = sum(g.var(0).sum() for g in grads)
        ratios.append(variance["score_function"] / variance["reparameterization"])
    assert ratios[0] > 3 and ratios[1] > 10 * ratios[0], ratios


def test_gradient_samples_are_seeded(model):
    _, x = model.sample(1, seed=0)
    mu, logvar = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, 2, dtype=torch.float64)
    a = elbo_gradient_samples(model, x, mu, logvar, 10, seed=3)
    b = elbo_gradient_samples(model, x, mu, logvar, 10, seed=3)
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_amortized_encoder_approaches_the_best_mean_field_q(model):
    _, x_train = model.sample(1000, seed=1)
    _, x_test = model.sample(200, seed=2)
    torch.manual_seed(0)
    encoder = AmortizedEncoder(3, 2, hidden=(16,))
    q = encoder.encode(x_test)
    assert q.batch_shape == (200,) and q.event_shape == (2,)
    trace = fit_amortized(model, encoder, x_train, steps=600, lr=0.03)
    assert trace.shape == (600,) and trace[-50:].mean() > trace[:50].mean() + 0.5
    with torch.no_grad():
        amortization_gap = (model.exact_elbo(x_test, model.mean_field_posterior(x_test))
                            - model.exact_elbo(x_test, encoder.encode(x_test))).mean()
    assert 0 < amortization_gap < 0.05, amortization_gap


def test_learning_the_decoder_too_recovers_the_evidence(model):
    """Auto-Encoding Variational Bayes: W and b learned with the encoder fit p(x) as well as the truth."""
    _, x_train = model.sample(1000, seed=3)
    g = torch.Generator().manual_seed(0)
    W = (0.1 * torch.randn(3, 2, generator=g, dtype=torch.float64)).requires_grad_()
    b = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    learned = LinearGaussian(W, b, sigma=0.5)
    torch.manual_seed(0)
    start = learned.log_evidence(x_train).mean().item()
    fit_amortized(learned, AmortizedEncoder(3, 2, hidden=(16,)), x_train, steps=800, lr=0.03, model_params=[W, b])
    with torch.no_grad():
        end, true = learned.log_evidence(x_train).mean().item(), model.log_evidence(x_train).mean().item()
        torch.testing.assert_close(W @ W.T, model.W @ model.W.T, rtol=0, atol=0.3)
    assert start < true - 1 and abs(end - true) < 0.05, (start, end, true)


def test_bad_input_is_named(model):
    _, x = model.sample(2, seed=0)
    zeros = torch.zeros(2, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="family must be one of"):
        fit_q(model, x, "diagonal")
    with pytest.raises(ValueError, match="family must be one of"):
        gaussian_q("diagonal", zeros, torch.eye(2, dtype=torch.float64).expand(2, 2, 2))
    with pytest.raises(ValueError, match=r"covariance must be a tensor of shape \(2, 2, 2\)"):
        gaussian_q("full", zeros, torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"mean must be a tensor of shape \(B, d\)"):
        gaussian_q("mean_field", zeros[0], torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        fit_q(model, x, steps=0)
    with pytest.raises(ValueError, match="lr must be a positive finite number"):
        fit_q(model, x, lr=-1.0)
    with pytest.raises(ValueError, match=r"x must be a floating-point tensor of shape \(B, \.\.\.\)"):
        fit_q(model, x[0])
    with pytest.raises(ValueError, match=r"init must be a Gaussian q with batch shape \(2,\)"):
        fit_q(model, x, init=model.posterior(x[:1]))
    with pytest.raises(ValueError, match="estimator must be one of"):
        elbo_gradient_samples(model, x, zeros, zeros, estimator="reinforce")
    with pytest.raises(ValueError, match=r"logvar must be a tensor of shape \(2, 2\)"):
        elbo_gradient_samples(model, x, zeros, torch.zeros(2, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="z_dim must be an integer >= 1"):
        AmortizedEncoder(3, 0)
    with pytest.raises(ValueError, match=r"x must be a tensor of shape \(B, 3\)"):
        AmortizedEncoder(3, 2).encode(torch.zeros(4, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match="model_params must be tensors with requires_grad=True"):
        fit_amortized(model, AmortizedEncoder(3, 2), x, steps=1, model_params=[model.W])


# --- the best q within a flow family --------------------------------------------------------------


def test_fit_flow_context_raises_the_elbo_and_leaves_the_model_alone():
    from vae_helpers import VAE
    from vae_helpers.estimators import elbo
    from vae_helpers.flows import FlowEncoding
    from vae_helpers.inference import fit_flow_context
    torch.manual_seed(0)
    vae = VAE(latent_dim=2, hidden=(32,), encoding=FlowEncoding(2, num_layers=2, hidden=(8,)))
    with torch.no_grad():  # coupling layers that bend: the family is more than the base Gaussians
        for net in vae.encoding.conditioners:
            net[-1].weight.normal_(0, 0.3)
    x = torch.bernoulli(torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    before = {name: p.detach().clone() for name, p in vae.named_parameters()}
    torch.manual_seed(2)
    start = elbo(vae, x, k=2000).detach()
    fit = fit_flow_context(vae, x, steps=150, lr=0.05, num_samples=8, seed=0)
    torch.manual_seed(3)
    end = elbo(vae, x, k=2000, q=fit.q).detach()
    assert fit.elbo_trace.shape == (150, 6) and fit.q.batch_shape == (6,)
    assert (end > start + 1.0).all(), (start, end)  # an untrained encoder is far from each digit's best q
    for name, p in vae.named_parameters():
        assert torch.equal(p, before[name]) and p.grad is None, name
    # seeded: the same call gives the same q
    again = fit_flow_context(vae, x, steps=150, lr=0.05, num_samples=8, seed=0)
    z = torch.randn(6, 2)
    torch.testing.assert_close(again.q.log_prob(z), fit.q.log_prob(z))


def test_fit_flow_context_needs_a_flow_model():
    from vae_helpers import VAE
    from vae_helpers.inference import fit_flow_context
    x = torch.rand(2, 1, 28, 28)
    with pytest.raises(TypeError, match="encoding is a flows.FlowEncoding"):
        fit_flow_context(VAE(latent_dim=2, hidden=(8,)), x)
    from vae_helpers.flows import FlowEncoding
    vae = VAE(latent_dim=2, hidden=(8,), encoding=FlowEncoding(2, num_layers=2, hidden=(4,)))
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        fit_flow_context(vae, x, steps=0)
