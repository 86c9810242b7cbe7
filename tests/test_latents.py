import math

import pytest
import torch

from vae_helpers import VAE, kl_normal_std_normal
from vae_helpers.latents import (active_units, aggregate_moments, aggregate_posterior, elbo_surgery,
                                 encode_dataset, kl_per_dimension, log_aggregate_density, unit_activity)


def gaussian_codes(n, d, spread, std, seed=1):
    """Encoder means mu_n ~ N(0, spread^2 I) and one std for all: the aggregate tends to N(0, (spread^2 + std^2) I)."""
    g = torch.Generator().manual_seed(seed)
    mu = spread * torch.randn(n, d, generator=g, dtype=torch.float64)
    return mu, torch.full_like(mu, 2 * math.log(std))


def test_encode_dataset_matches_one_batch_and_keeps_mode():
    model = VAE(latent_dim=3, hidden=(8,), input_shape=(1, 4, 4))
    x = torch.rand(25, 1, 4, 4)
    mu, logvar = encode_dataset(model, x, batch_size=7)
    mu_all, logvar_all = model.encoder_params(x)
    assert mu.shape == logvar.shape == (25, 3)
    torch.testing.assert_close(mu, mu_all.detach())
    torch.testing.assert_close(logvar, logvar_all.detach(), atol=1e-5, rtol=1e-5)
    assert model.training and not mu.requires_grad


def test_unit_activity_and_active_units_count_moving_means():
    g = torch.Generator().manual_seed(0)
    scale = torch.tensor([1.0, 0.5, 0.01, 0.0])  # variances 1, 0.25, 1e-4, 0
    mu = torch.randn(20_000, 4, generator=g) * scale + 3.0  # an offset moves no unit
    activity = unit_activity(mu)
    torch.testing.assert_close(activity, scale.pow(2), atol=0.03, rtol=0.05)
    assert active_units(mu) == 2
    assert active_units(mu, threshold=1e-6) == 3
    assert active_units(mu, threshold=0.5) == 1


def test_kl_per_dimension_sums_to_the_rate_and_is_zero_at_the_prior():
    mu, logvar = torch.randn(50, 6), torch.randn(50, 6)
    per_dim = kl_per_dimension(mu, logvar)
    assert per_dim.shape == (6,) and (per_dim >= 0).all()
    torch.testing.assert_close(per_dim.sum(), kl_normal_std_normal(mu, logvar).mean())
    # one dimension at the prior for every x costs nothing
    mu[:, 2], logvar[:, 2] = 0.0, 0.0
    assert kl_per_dimension(mu, logvar)[2] == 0


def test_aggregate_moments_of_two_components_in_closed_form():
    # q(z) = 1/2 N(-1, 0.5^2) + 1/2 N(3, 1^2): mean 1, variance 1/2 (0.25 + 1) + 2^2 = 4.625
    mu = torch.tensor([[-1.0], [3.0]], dtype=torch.float64)
    logvar = torch.log(torch.tensor([[0.25], [1.0]], dtype=torch.float64))
    mean, cov = aggregate_moments(mu, logvar)
    torch.testing.assert_close(mean, torch.tensor([1.0], dtype=torch.float64))
    torch.testing.assert_close(cov, torch.tensor([[4.625]], dtype=torch.float64))


def test_aggregate_moments_match_draws_from_the_aggregate_posterior():
    g = torch.Generator().manual_seed(2)
    mu = torch.randn(30, 3, generator=g, dtype=torch.float64) @ torch.tensor([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0],
                                                                                [0.0, 0.0, 0.2]], dtype=torch.float64)
    logvar = torch.randn(30, 3, generator=g, dtype=torch.float64) - 1
    mean, cov = aggregate_moments(mu, logvar)
    z = aggregate_posterior(mu, logvar).sample((100_000,))
    torch.testing.assert_close(mean, z.mean(0), atol=0.02, rtol=0)
    torch.testing.assert_close(cov, torch.cov(z.T), atol=0.03, rtol=0.02)


def test_log_aggregate_density_matches_the_mixture_for_any_batch_size():
    g = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(40, 4, generator=g), torch.randn(40, 4, generator=g) - 2
    z = 2 * torch.randn(17, 4, generator=g)
    expected = aggregate_posterior(mu.double(), logvar.double()).log_prob(z.double())
    for batch_size in (1, 5, 17, 100):
        torch.testing.assert_close(log_aggregate_density(z, mu, logvar, batch_size), expected)


def _reference_log_density(z, mu, logvar, digits=60):
    """log qbar(z) for one z, summed in mpmath at ``digits`` significant digits from (z - mu)^2 exp(-logvar)."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(digits):
        terms = []
        for m, lv in zip(mu.tolist(), logvar.tolist()):
            square = sum((mpmath.mpf(zj) - mpmath.mpf(mj)) ** 2 * mpmath.exp(-mpmath.mpf(v)) for zj, mj, v in zip(z, m, lv))
            terms.append(-(square + sum(mpmath.mpf(v) for v in lv) + len(z) * mpmath.log(2 * mpmath.pi)) / 2)
        return float(mpmath.log(sum(mpmath.exp(t) for t in terms)) - mpmath.log(len(terms)))


@pytest.mark.parametrize("log_variance", [0.0, -10.0, -40.0])
def test_log_aggregate_density_matches_a_high_precision_reference(log_variance):
    # narrow encodings (1/s^2 = e^40 at logvar -40) at O(1) means: expanding the square there cancels
    # digits by the hundred of nats, so the helper must compute those squares directly
    g = torch.Generator().manual_seed(4)
    mu = torch.randn(12, 3, generator=g, dtype=torch.float64)
    logvar = torch.full_like(mu, log_variance) + 0.5 * torch.rand(12, 3, generator=g, dtype=torch.float64)
    near = mu[:4] + torch.exp(0.5 * logvar[:4]) * torch.randn(4, 3, generator=g, dtype=torch.float64)
    z = torch.cat([near, torch.randn(2, 3, generator=g, dtype=torch.float64)])  # on a component, and between
    expected = torch.tensor([_reference_log_density(zi.tolist(), mu, logvar) for zi in z], dtype=torch.float64)
    torch.testing.assert_close(log_aggregate_density(z, mu, logvar, batch_size=4), expected, atol=1e-6, rtol=1e-12)
    # float32 codes as a model returns them are promoted, not rounded further
    z32 = z[4:].float()
    expected32 = torch.tensor([_reference_log_density(zi.tolist(), mu.float().double(), logvar.float().double())
                               for zi in z32.double()], dtype=torch.float64)
    torch.testing.assert_close(log_aggregate_density(z32, mu.float(), logvar.float()), expected32, atol=1e-6, rtol=1e-12)


@pytest.mark.parametrize("n, d_z, spread", [(64, 2, 1.0), (200, 10, 3.0)])
def test_elbo_surgery_stays_within_log_n_for_very_narrow_encodings(n, d_z, spread):
    # logvar = -40: each z names its own x, so I(x; z) = log N, and never more
    g = torch.Generator().manual_seed(0)
    mu = spread * torch.randn(n, d_z, generator=g, dtype=torch.float64)
    parts = elbo_surgery(mu, torch.full_like(mu, -40.0), seed=0)
    assert parts.mutual_information <= parts.log_n + 1e-9
    assert parts.mutual_information == pytest.approx(math.log(n), abs=1e-6)


def test_elbo_surgery_standard_errors_cover_the_spread_over_draws():
    # 30 independent sets of draws: the estimates' spread is at most (about) the reported standard error,
    # which errs on the large side, and not far below it
    mu, logvar = gaussian_codes(1000, 2, spread=1.0, std=0.5)
    runs = [elbo_surgery(mu, logvar, seed=100 + s) for s in range(30)]
    for value, error in (("mutual_information", "mutual_information_se"), ("marginal_kl", "marginal_kl_se")):
        spread = torch.tensor([getattr(r, value) for r in runs]).std().item()
        reported = sum(getattr(r, error) for r in runs) / len(runs)
        assert 0.3 * reported < spread < 1.2 * reported, (value, spread, reported)


def test_aggregate_of_gaussian_codes_is_gaussian_in_the_limit():
    # N(0, a^2) means blurred by N(0, s^2) noise: the mixture's density tends to N(0, a^2 + s^2) as N grows
    mu, logvar = gaussian_codes(20_000, 2, spread=1.0, std=0.5)
    z = 4 * torch.rand(500, 2, dtype=torch.float64) - 2
    limit = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), math.sqrt(1.25)), 1)
    error = log_aggregate_density(z, mu, logvar) - limit.log_prob(z)
    assert error.abs().max() < 0.1


def test_elbo_surgery_of_gaussian_codes_matches_closed_forms():
    # mu ~ N(0, a^2 I), q(z|x) = N(mu, s^2 I) in D dims: z = mu + s eps is N(0, (a^2 + s^2) I), so
    # I(x; z) = D/2 log((a^2 + s^2) / s^2) and KL(q(z) || p(z)) = D/2 (a^2 + s^2 - 1 - log(a^2 + s^2))
    d, a, s = 2, 1.0, 0.5
    # (N finite: the mixture of N bumps is a little lumpier than the limit, so I comes out a little low)
    mu, logvar = gaussian_codes(3000, d, spread=a, std=s)
    parts = elbo_surgery(mu, logvar, num_samples=2, seed=10)
    v = a ** 2 + s ** 2
    mutual_information = d / 2 * math.log(v / s ** 2)
    marginal_kl = d / 2 * (v - 1 - math.log(v))
    assert parts.mutual_information == pytest.approx(mutual_information, abs=0.08)
    assert parts.marginal_kl == pytest.approx(marginal_kl, abs=0.03)
    assert parts.average_kl == pytest.approx(mutual_information + marginal_kl, abs=0.08)
    # the identity, within Monte Carlo error
    assert abs(parts.mutual_information + parts.marginal_kl - parts.average_kl) < 4 * parts.std_error
    assert 0 < parts.std_error < 0.02


def test_elbo_surgery_when_the_aggregate_is_the_prior_puts_every_nat_in_the_information():
    # spread^2 + s^2 = 1: q(z) tends to N(0, I) = p(z), so the whole average KL is information
    s = 0.6
    mu, logvar = gaussian_codes(3000, 2, spread=math.sqrt(1 - s ** 2), std=s)
    parts = elbo_surgery(mu, logvar, num_samples=2, seed=11)
    assert abs(parts.marginal_kl) < 0.02
    assert parts.mutual_information == pytest.approx(parts.average_kl, abs=0.05)
    assert parts.mutual_information == pytest.approx(math.log(1 / s ** 2), abs=0.06)


def test_identical_encodings_carry_no_information():
    mu = torch.tensor([[0.7, -1.2]]).repeat(50, 1)
    logvar = torch.tensor([[-1.0, 0.5]]).repeat(50, 1)
    parts = elbo_surgery(mu, logvar, num_samples=20, seed=0)
    assert parts.mutual_information == pytest.approx(0.0, abs=1e-9)
    assert parts.marginal_kl == pytest.approx(parts.average_kl, abs=4 * parts.std_error + 1e-9)


def test_separated_encodings_carry_log_n_nats_and_no_more():
    # 64 far-apart, narrow encodings: each z names its x, so I(x; z) = log N exactly
    side = torch.arange(8, dtype=torch.float64) * 50
    mu = torch.cartesian_prod(side, side)
    logvar = torch.full_like(mu, math.log(0.01))
    parts = elbo_surgery(mu, logvar, num_samples=3, seed=0)
    assert parts.n == 64 and parts.log_n == pytest.approx(math.log(64))
    assert parts.mutual_information == pytest.approx(math.log(64), abs=1e-6)
    assert parts.mutual_information <= parts.log_n + 1e-9
    assert parts.marginal_kl == pytest.approx(parts.average_kl - math.log(64), abs=4 * parts.std_error + 1e-6)


def test_elbo_surgery_is_seeded():
    mu, logvar = gaussian_codes(100, 2, spread=1.0, std=0.3)
    assert elbo_surgery(mu, logvar, seed=5) == elbo_surgery(mu, logvar, seed=5)
    assert elbo_surgery(mu, logvar, seed=5) != elbo_surgery(mu, logvar, seed=6)
    assert "I(x;z)" in str(elbo_surgery(mu, logvar, seed=5))


@pytest.mark.parametrize("call, message", [
    (lambda: unit_activity(torch.zeros(5)), "mu must be"),
    (lambda: unit_activity(torch.zeros(1, 3)), "N >= 2"),
    (lambda: unit_activity([[0.0, 1.0], [1.0, 0.0]]), "mu must be"),
    (lambda: active_units(torch.zeros(4, 2), threshold=-1), "threshold"),
    (lambda: kl_per_dimension(torch.zeros(4, 2), torch.zeros(4, 3)), "same shape"),
    (lambda: kl_per_dimension(torch.zeros(4, 2, 2), torch.zeros(4, 2, 2)), r"\(N, d_z\)"),
    (lambda: aggregate_moments(torch.zeros(0, 2), torch.zeros(0, 2)), "N >= 1"),
    (lambda: aggregate_posterior(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2)), "floating-point"),
    (lambda: log_aggregate_density(torch.zeros(3, 5), torch.zeros(4, 2), torch.zeros(4, 2)), r"z must .* \(M, 2\)"),
    (lambda: log_aggregate_density(torch.zeros(3, 2), torch.zeros(4, 2), torch.zeros(4, 2), batch_size=0),
     "batch_size"),
    (lambda: elbo_surgery(torch.zeros(4, 2), torch.zeros(4, 2), num_samples=0), "num_samples"),
    (lambda: elbo_surgery(torch.zeros(4, 2), torch.zeros(4, 2), batch_size=1.5), "batch_size"),
    (lambda: encode_dataset(VAE(latent_dim=2, hidden=(4,), input_shape=(1, 2, 2)), torch.zeros(0, 1, 2, 2)), "x must"),
    (lambda: encode_dataset(VAE(latent_dim=2, hidden=(4,), input_shape=(1, 2, 2)), torch.zeros(3, 1, 2, 2),
                            batch_size=0), "batch_size"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_elbo_surgery_with_fewer_draws_estimates_the_same_split():
    mu, logvar = gaussian_codes(2000, 2, spread=1.0, std=0.5)
    full = elbo_surgery(mu, logvar, seed=20)
    part = elbo_surgery(mu, logvar, seed=20, num_draws=500)
    assert part.n == 2000 and part.average_kl == full.average_kl
    assert part.mutual_information_se > full.mutual_information_se   # fewer draws, larger errors
    assert abs(part.mutual_information - full.mutual_information) < 4 * part.mutual_information_se
    assert abs(part.marginal_kl - full.marginal_kl) < 4 * part.marginal_kl_se
    assert abs(part.mutual_information + part.marginal_kl - part.average_kl) < 4 * part.std_error
    with pytest.raises(ValueError, match="num_draws"):
        elbo_surgery(mu, logvar, num_draws=2001)


# --- elbo_surgery with a prior other than N(0, I) (lesson 13) ------------------------------------------

def gaussian_prior(mean, std, d):
    return torch.distributions.Independent(torch.distributions.Normal(torch.full((d,), float(mean), dtype=torch.float64),
                                                                      torch.full((d,), float(std), dtype=torch.float64)), 1)


def test_elbo_surgery_with_the_standard_normal_given_is_the_default():
    mu, logvar = gaussian_codes(300, 3, spread=1.0, std=0.4)
    default = elbo_surgery(mu, logvar, seed=3, num_draws=200)
    given = elbo_surgery(mu, logvar, seed=3, num_draws=200, prior=gaussian_prior(0, 1, 3))
    for field in ("average_kl", "mutual_information", "marginal_kl", "std_error", "marginal_kl_se"):
        assert getattr(given, field) == pytest.approx(getattr(default, field), rel=1e-10, abs=1e-12)


def test_elbo_surgery_with_a_wider_gaussian_prior_matches_closed_forms():
    # mu ~ N(0, a^2 I), q(z|x) = N(mu, s^2 I): qbar tends to N(0, v I), v = a^2 + s^2; against p = N(0, c^2 I),
    # KL(qbar || p) = D/2 (v / c^2 - 1 - log(v / c^2)); I(x; z) does not depend on the prior
    d, a, s, c = 2, 1.0, 0.5, 2.0
    mu, logvar = gaussian_codes(3000, d, spread=a, std=s)
    parts = elbo_surgery(mu, logvar, num_samples=2, seed=10, prior=gaussian_prior(0, c, d))
    v = a ** 2 + s ** 2
    mutual_information = d / 2 * math.log(v / s ** 2)
    marginal_kl = d / 2 * (v / c ** 2 - 1 - math.log(v / c ** 2))
    assert parts.mutual_information == pytest.approx(mutual_information, abs=0.08)
    assert parts.marginal_kl == pytest.approx(marginal_kl, abs=0.03)
    # the closed form of KL(N(mu_n, s^2) || N(0, c^2)), averaged over n
    closed = (d / 2 * (s ** 2 / c ** 2 - 1 - math.log(s ** 2 / c ** 2)) + (mu ** 2).sum(1) / (2 * c ** 2)).mean()
    assert parts.average_kl == pytest.approx(closed.item(), rel=1e-9)


def test_elbo_surgery_with_the_aggregate_as_the_prior_has_no_marginal_kl():
    # p(z) = qbar(z) itself (a mixture, no closed-form KL): KL(qbar || p) is 0 at every draw, and the
    # Monte Carlo average KL is all information
    mu, logvar = gaussian_codes(200, 3, spread=1.0, std=0.3)
    parts = elbo_surgery(mu, logvar, num_samples=4, seed=1, prior=aggregate_posterior(mu, logvar))
    assert parts.marginal_kl == pytest.approx(0.0, abs=1e-9) and parts.marginal_kl_se < 1e-9
    assert parts.average_kl == pytest.approx(parts.mutual_information, abs=1e-9)
    assert parts.std_error > 0


def test_elbo_surgery_with_a_mixture_prior_estimates_its_average_kl():
    # a two-component mixture prior: the Monte Carlo average KL agrees with a long run of log q(z|x) - log p(z)
    mu, logvar = gaussian_codes(100, 2, spread=1.0, std=0.5)
    prior = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=torch.tensor([0.3, 0.7], dtype=torch.float64)),
        torch.distributions.Independent(torch.distributions.Normal(
            torch.tensor([[-1.0, 0.0], [1.0, 0.5]], dtype=torch.float64), torch.full((2, 2), 0.8, dtype=torch.float64)), 1))
    parts = elbo_surgery(mu, logvar, num_samples=50, seed=2, prior=prior)
    q = torch.distributions.Independent(torch.distributions.Normal(mu, torch.exp(0.5 * logvar)), 1)
    torch.manual_seed(0)
    z = q.sample((4000,))
    reference = (q.log_prob(z) - prior.log_prob(z)).mean().item()
    assert abs(parts.average_kl - reference) < 4 * parts.std_error + 0.01
    assert parts.mutual_information + parts.marginal_kl == pytest.approx(parts.average_kl, abs=1e-9)


@pytest.mark.parametrize("prior, message", [
    ("normal", "prior must be a torch.distributions.Distribution"),
    (gaussian_prior(0, 1, 3), r"event shape \(2,\)"),
    (torch.distributions.Normal(torch.zeros(2), torch.ones(2)), r"batch shape \(\)"),
])
def test_elbo_surgery_refuses_a_prior_that_is_not_one_distribution_over_z(prior, message):
    with pytest.raises((TypeError, ValueError), match=message):
        elbo_surgery(torch.zeros(4, 2), torch.zeros(4, 2), prior=prior)
