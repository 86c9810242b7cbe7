"""The IWAE_k training objective against the ELBO at the same draw and the exact log p(x) of the
linear-Gaussian model."""
import math

import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from vae_helpers import VAE, LinearGaussian, iwae_bound, log_importance_weights
from vae_helpers.objectives import iwae_objective

# the linear-Gaussian model and the deliberately wrong q that the estimators' tests use
from test_estimators import model, off_posterior  # noqa: F401  (model is a fixture)


def test_one_draw_is_the_elbo_of_the_vae_at_the_same_draw():
    vae = VAE(latent_dim=3, hidden=(16,), kl="mc")  # the rate as log q(z|x) - log p(z) at the draw
    x = torch.bernoulli(torch.rand(5, 1, 28, 28))
    torch.manual_seed(4)
    terms = vae.loss_terms(x)
    torch.manual_seed(4)
    log_w = log_importance_weights(vae, x, k=1)
    torch.testing.assert_close(iwae_objective(log_w), terms["elbo"])
    # and term by term at that draw: log p(x|z) + log p(z) - log q(z|x)
    torch.manual_seed(4)
    q = vae.encode(x)
    z = q.rsample()
    by_hand = vae.decode(z).log_prob(x) + vae.prior.log_prob(z) - q.log_prob(z)
    torch.testing.assert_close(iwae_objective(log_w), by_hand)


def test_value_and_gradient_against_the_formula():
    log_w = torch.tensor([[-100.0, 3.0], [-101.0, 1.0], [-103.0, 2.0]], dtype=torch.float64, requires_grad=True)
    value = iwae_objective(log_w)
    # log (1/k) sum_i w_i with the weights rescaled by hand (w ~ e^-100 underflows nothing here in float64)
    expected = torch.log(log_w.detach().exp().mean(0))
    torch.testing.assert_close(value, expected)
    value.sum().backward()
    # d IWAE_k / d log w_i = w_i / sum_j w_j, the normalised weights
    w = log_w.detach().exp()
    torch.testing.assert_close(log_w.grad, w / w.sum(0))
    # no underflow where the weights themselves would underflow in float32
    far = torch.full((4, 1), -1000.0)
    torch.testing.assert_close(iwae_objective(far), torch.tensor([-1000.0]))


def test_agrees_with_the_estimator_at_the_same_draws(model):
    _, x = model.sample(3, seed=2)
    q = off_posterior(model, x)
    torch.manual_seed(5)
    estimate = iwae_bound(model, x, 50, q=q)
    torch.manual_seed(5)
    torch.testing.assert_close(iwae_objective(log_importance_weights(model, x, 50, q=q)), estimate)


def test_approaches_log_evidence_from_below_and_grows_with_k(model):
    _, x = model.sample(1, seed=6)
    log_px = model.log_evidence(x).item()
    reps = 4000  # independent estimates of each bound, to average over
    xr = x.expand(reps, -1)
    q = off_posterior(model, xr)
    torch.manual_seed(0)
    ks = (1, 2, 4, 16, 64, 256)
    draws = {k: iwae_objective(log_importance_weights(model, xr, k, q=q)) for k in ks}
    mean = {k: v.mean().item() for k, v in draws.items()}
    se = {k: v.std().item() / math.sqrt(reps) for k, v in draws.items()}
    # k = 1: the gap is KL(q || p(z|x)), in closed form for this model
    q1 = off_posterior(model, x)
    kl = kl_divergence(MultivariateNormal(q1.mean, covariance_matrix=torch.diag_embed(q1.variance)),
                       model.posterior(x)).item()
    assert kl > 0.5
    assert abs(log_px - mean[1] - kl) < 4 * se[1], (log_px - mean[1], kl, se[1])
    for k in ks:  # below log p(x), within the noise
        assert mean[k] < log_px + 3 * se[k], (k, mean[k], log_px)
    for a, b in zip(ks, ks[1:]):  # non-decreasing in k, beyond the noise of the difference
        assert mean[b] - mean[a] > -3 * math.hypot(se[a], se[b]), (a, b, mean)
    assert mean[4] - mean[1] > 3 * math.hypot(se[1], se[4])  # and strictly rising where the gap is large
    # approaching: the gap at k = 256 is a small fraction of the gap at k = 1
    assert log_px - mean[256] < 0.05 * (log_px - mean[1]), (log_px - mean[256], log_px - mean[1])


def test_bad_log_weights_are_named():
    with pytest.raises(TypeError, match="log_w must be a floating-point tensor"):
        iwae_objective([[0.0, 1.0]])
    with pytest.raises(TypeError, match="log_w must be a floating-point tensor"):
        iwae_objective(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"log_w must be .*\(k, B\)"):
        iwae_objective(torch.zeros(5))  # no batch dimension
    with pytest.raises(ValueError, match=r"log_w must be .*\(k, B\)"):
        iwae_objective(torch.zeros(0, 3))  # k = 0 draws
    with pytest.raises(ValueError, match=r"log_w must be .*\(k, B\)"):
        iwae_objective(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"log_w must be .*\(k, B\)"):
        iwae_objective(torch.zeros(3, 0))


# --- the gradient's signal-to-noise ratio -----------------------------------------------------------


def test_gradient_snr_of_a_reparameterized_gradient_with_known_snr():
    """loss = sum_j (mu_j + eps_j)^2, eps ~ N(0, 1): g_j = 2 (mu_j + eps_j), mean 2 mu_j, std 2, SNR |mu_j|."""
    from vae_helpers.estimators import gradient_snr
    mu = torch.tensor([0.0, 0.5, -1.0, 3.0], dtype=torch.float64, requires_grad=True)
    unused = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    reps = 4000
    torch.manual_seed(0)
    snr = gradient_snr(lambda: (mu + torch.randn(4, dtype=torch.float64)).pow(2).sum(), [mu], reps)
    expected = mu.detach().abs()
    # the estimate's standard error is about sqrt((1 + SNR^2 / 2) / R) (delta method)
    se = torch.sqrt((1 + expected ** 2 / 2) / reps)
    assert snr.shape == (4,)
    assert ((snr - expected).abs() < 4 * se).all(), (snr, expected)
    # a parameter the loss does not reach: gradient 0 every time, 0 / 0
    both = gradient_snr(lambda: (mu + torch.randn(4, dtype=torch.float64)).pow(2).sum(), [mu, unused], 3)
    assert both.shape == (6,) and torch.isnan(both[4:]).all()


def test_gradient_snr_refuses_bad_arguments():
    from vae_helpers.estimators import gradient_snr
    w = torch.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="num_draws must be an integer >= 2"):
        gradient_snr(lambda: w.sum(), [w], 1)
    with pytest.raises(TypeError, match="loss_fn must be a function"):
        gradient_snr(w.sum(), [w])
    with pytest.raises(ValueError, match="parameters must be a non-empty iterable"):
        gradient_snr(lambda: w.sum(), [])
    with pytest.raises(ValueError, match="parameters must be a non-empty iterable"):
        gradient_snr(lambda: w.sum(), [torch.ones(2)])
    with pytest.raises(ValueError, match="loss_fn must return a scalar tensor"):
        gradient_snr(lambda: w * 2, [w], 2)


# --- the doubly reparameterized gradient ------------------------------------------------------------


def _encodings(model, x, reps, shift=0.5, widen=0.8):
    """One leaf (mu, logvar) per replicate of x, off the posterior, so that each replicate's gradient is its own."""
    from vae_helpers.divergences import DiagonalNormal
    with torch.no_grad():  # q's parameters are leaves of their own, even where the model's W requires grad
        post = model.posterior(x)
    mu = (post.mean[0] + shift).expand(reps, -1).clone().requires_grad_(True)
    logvar = (post.variance[0].log() + widen).expand(reps, -1).clone().requires_grad_(True)
    return DiagonalNormal(mu, logvar), mu, logvar


def test_dreg_value_and_model_gradient_are_iwaes_at_the_same_draws():
    from vae_helpers.objectives import dreg_objective
    model = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=1)
    _, x = model.sample(4, seed=3)
    model.W.requires_grad_(True)
    grads, values = [], []
    for objective in (lambda q: iwae_objective(log_importance_weights(model, x, 8, q=q)),
                      lambda q: dreg_objective(model, x, 8, q=q)):
        q, _, _ = _encodings(model, x[:1], 4)  # the same q for each x: only the draws differ
        torch.manual_seed(7)
        value = objective(q)
        values.append(value.detach())
        grads.append(torch.autograd.grad(value.sum(), model.W)[0])
    torch.testing.assert_close(values[1], values[0])
    # the decoder's gradient is sum_i wbar_i d log w_i / d theta in both
    torch.testing.assert_close(grads[1], grads[0])
    assert grads[0].abs().sum() > 0


def test_dreg_encoder_gradient_has_iwaes_expectation_and_less_noise():
    """Averaged over 20,000 independent draws of k = 8, on the linear-Gaussian model."""
    from vae_helpers.objectives import dreg_objective
    model = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=1)
    _, x = model.sample(1, seed=6)
    reps, k = 20000, 8
    xr = x.expand(reps, -1)

    def per_draw_gradient(surrogate, seed):
        q, mu, logvar = _encodings(model, x, reps)
        torch.manual_seed(seed)
        surrogate(q).sum().backward()
        return torch.cat([mu.grad, logvar.grad], dim=1)  # (reps, 2D), one gradient per replicate

    def score_dropped(q):
        """The path term weighted by wbar instead of wbar^2: the IWAE gradient less its score term, biased."""
        from vae_helpers.divergences import DiagonalNormal
        z = q.rsample((k,))
        log_w = (model.decode(z).log_prob(xr) + model.prior.log_prob(z)
                 - DiagonalNormal(q.mu.detach(), q.logvar.detach()).log_prob(z))
        return (torch.softmax(log_w.detach(), 0) * log_w).sum(0)

    iwae = per_draw_gradient(lambda q: iwae_objective(log_importance_weights(model, xr, k, q=q)), 1)
    dreg = per_draw_gradient(lambda q: dreg_objective(model, xr, k, q=q), 2)
    dropped = per_draw_gradient(score_dropped, 3)
    se = lambda g: g.std(0) / math.sqrt(reps)
    gap = (dreg.mean(0) - iwae.mean(0)).abs()
    assert (gap < 4 * torch.hypot(se(dreg), se(iwae))).all(), (dreg.mean(0), iwae.mean(0))
    # the check can tell: dropping the score term without squaring the weights moves the mean by many errors
    assert ((dropped.mean(0) - iwae.mean(0)).abs() > 10 * torch.hypot(se(dropped), se(iwae))).any()
    # and the doubly reparameterized gradient is the less noisy one (about 4.5 times, in this run)
    assert (dreg.std(0) < 0.7 * iwae.std(0)).all(), (dreg.std(0), iwae.std(0))


def test_dreg_trains_a_vae_and_refuses_bad_arguments():
    from vae_helpers.objectives import dreg_objective
    vae = VAE(latent_dim=2, hidden=(16,))
    x = torch.bernoulli(torch.rand(3, 1, 28, 28))
    value = dreg_objective(vae, x, 5)
    assert value.shape == (3,)
    (-value.mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vae.encoder.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in vae.decoder.parameters())
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        dreg_objective(vae, x, 0)
    model = LinearGaussian.random(x_dim=3, z_dim=2, seed=1)
    _, xl = model.sample(2, seed=0)
    with pytest.raises(TypeError, match="q must be a DiagonalNormal"):
        dreg_objective(model, xl, 4)  # the model's exact posterior, a MultivariateNormal
    with pytest.raises(TypeError, match="q must be a torch.distributions.Distribution"):
        dreg_objective(model, xl, 4, q=(0.0, 1.0))


# --- a VAE trained on IWAE_k ------------------------------------------------------------------------


def test_iwae_vae_loss_is_minus_iwae_k_at_the_same_draws():
    from vae_helpers.iwae import IWAEVAE
    torch.manual_seed(0)
    vae = IWAEVAE(k=6, latent_dim=3, hidden=(16,))
    x = torch.bernoulli(torch.rand(5, 1, 28, 28))
    torch.manual_seed(4)
    terms = vae.loss_terms(x)
    torch.manual_seed(4)
    expected = iwae_objective(log_importance_weights(vae, x, k=6))
    torch.testing.assert_close(terms["loss"], -expected)
    torch.testing.assert_close(terms["iwae"], expected)
    # the rate is the closed-form KL, and the ELBO is below IWAE_6 for every digit here
    torch.testing.assert_close(terms["rate"], kl_divergence(vae.encode(x), vae.prior))
    torch.testing.assert_close(terms["elbo"], -(terms["distortion"] + terms["rate"]))
    # k = 1: the ELBO with the rate at the draw, i.e. the plain VAE with kl="mc" at the same weights
    torch.manual_seed(0)
    one = IWAEVAE(k=1, latent_dim=3, hidden=(16,))
    torch.manual_seed(0)
    plain = VAE(latent_dim=3, hidden=(16,), kl="mc")
    torch.manual_seed(9)
    a = one.loss_terms(x)["loss"]
    torch.manual_seed(9)
    torch.testing.assert_close(a, plain.loss_terms(x)["loss"])


def test_iwae_vae_dreg_has_the_same_value_and_trains():
    from vae_helpers.iwae import IWAEVAE
    torch.manual_seed(0)
    vae = IWAEVAE(k=4, gradient="dreg", latent_dim=2, hidden=(8,))
    x = torch.bernoulli(torch.rand(3, 1, 28, 28))
    torch.manual_seed(1)
    loss = vae.loss_terms(x)["loss"]
    torch.manual_seed(1)
    torch.testing.assert_close(loss, -iwae_objective(log_importance_weights(vae, x, k=4)))
    loss.mean().backward()
    assert all(p.grad is not None for p in vae.encoder.parameters())
    assert all(p.grad is not None for p in vae.decoder.parameters())


def test_iwae_vae_keeps_k_in_its_hyperparameters_and_refuses_bad_arguments():
    from vae_helpers.iwae import IWAEVAE
    assert IWAEVAE(k=7, latent_dim=2).hparams["k"] == 7  # so that models trained with other k cache apart
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        IWAEVAE(k=0)
    with pytest.raises(ValueError, match="gradient must be one of"):
        IWAEVAE(gradient="score")
    for bad in (dict(beta=2.0), dict(free_bits=0.5), dict(warmup_steps=10)):
        with pytest.raises(ValueError, match="no meaning for IWAE_k"):
            IWAEVAE(**bad)
