"""diagnose() on a small VAE trained on synthetic binary images, and on copies of it with one bug each."""
import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from vae_helpers import VAE
from vae_helpers.diagnostics import CHECKS, diagnose, failures

SHAPE = (1, 8, 8)


def binary_images(n=512, seed=0):
    """Four random 8x8 binary prototypes, each pixel flipped with probability 0.05."""
    g = torch.Generator().manual_seed(seed)
    prototypes = torch.bernoulli(torch.full((4, *SHAPE), 0.4), generator=g)
    x = prototypes[torch.arange(n) % 4]
    flip = torch.bernoulli(torch.full_like(x, 0.05), generator=g)
    return (x + flip) % 2


def train(model, x, steps=300, lr=1e-2):
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for step in range(steps):
        batch = x[torch.randint(len(x), (64,))]
        loss = model.loss_terms(batch)["loss"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def healthy():
    torch.manual_seed(0)
    return train(VAE(latent_dim=4, hidden=(32,), input_shape=SHAPE), binary_images())


def copy_into(cls, healthy, **kwargs):
    """A model of class ``cls`` holding the healthy model's weights."""
    model = cls(latent_dim=4, hidden=(32,), input_shape=SHAPE, **kwargs)
    model.load_state_dict(healthy.state_dict(), strict=False)
    return model.eval()


class PlainVAE(VAE):
    """The negative ELBO through encode/decode/prior, as tutorials write it."""

    draw = "rsample"

    def loss_terms(self, x):
        q = self.encode(x)
        z = getattr(q, self.draw)()
        distortion = -self.decode(z).log_prob(x)
        rate = kl_divergence(q, self.prior)
        return {"loss": distortion + self.beta * rate, "elbo": -(distortion + rate), "rate": rate,
                "distortion": distortion}


class PixelMean(VAE):
    def loss_terms(self, x):
        t = super().loss_terms(x)
        distortion = t["distortion"] / self.input_dim
        return {**t, "distortion": distortion, "loss": distortion + t["rate"]}


class LatentMean(VAE):
    def loss_terms(self, x):
        t = super().loss_terms(x)
        rate = t["rate"] / self.latent_dim
        return {**t, "rate": rate, "loss": t["distortion"] + rate}


class OutputAsStd(PlainVAE):
    def encode(self, x):
        mu, logvar = self.encoder_params(x)
        return Independent(Normal(mu, logvar, validate_args=False), 1)


class NoReparam(PlainVAE):
    draw = "sample"


class Probabilities(VAE):
    def decode(self, z):
        probs = torch.sigmoid(self.decoder(z)).view(*z.shape[:-1], *self.input_shape)
        return Independent(Bernoulli(probs=probs, validate_args=False), len(self.input_shape))


class DoubleSigmoid(VAE):
    def decode(self, z):
        logits = torch.sigmoid(self.decoder(z)).view(*z.shape[:-1], *self.input_shape)
        return Independent(Bernoulli(logits=logits, validate_args=False), len(self.input_shape))


def collapse(model):
    """Make q(z|x) = N(0, I) for every x: the encoder's last layer outputs zeros."""
    with torch.no_grad():
        model.encoder[-1].weight.zero_()
        model.encoder[-1].bias.zero_()
    return model


def test_the_healthy_model_passes_every_check(healthy):
    report = diagnose(healthy, binary_images(256, seed=1))
    assert list(report["check"]) == list(CHECKS)
    assert set(report["status"]) <= {"ok", "warn", "fail"}
    assert failures(report) == set(), report.to_string()
    # the same loss written through encode/decode/prior passes too
    assert failures(diagnose(copy_into(PlainVAE, healthy), binary_images(256, seed=1))) == set()


@pytest.mark.parametrize("cls, check", [
    (PixelMean, "loss terms"), (LatentMean, "loss terms"), (OutputAsStd, "encoder scale"),
    (NoReparam, "reparameterization"), (DoubleSigmoid, "decoder output"),
])
def test_each_bug_fails_exactly_its_own_check(healthy, cls, check):
    report = diagnose(copy_into(cls, healthy), binary_images(256, seed=1))
    assert failures(report) == {check}, report.to_string()


def test_per_pixel_mean_is_named_with_its_effective_beta(healthy):
    report = diagnose(copy_into(PixelMean, healthy), binary_images(256, seed=1)).set_index("check")
    assert "mean over the 64 pixels" in report.loc["loss terms", "advice"]
    assert "effective beta 64" in report.loc["loss terms", "measured"]


def test_saturated_probabilities_fail_and_logits_do_not(healthy):
    x = binary_images(256, seed=1)
    probs = copy_into(Probabilities, healthy)
    assert failures(diagnose(probs, x)) <= {"decoder output"}
    with torch.no_grad():  # push every pixel's logit to +20, where sigmoid rounds to 1
        probs.decoder[-1].bias.fill_(20.0)
        logits = copy_into(VAE, healthy)
        logits.decoder[-1].bias.fill_(20.0)
    # every pixel saturated: no gradient reaches z at all, which is the decoder's fault, not the draw's
    report = diagnose(probs, x).set_index("check")
    assert failures(report.reset_index()) == {"decoder output"}
    assert report.loc["reparameterization", "status"] == "warn"
    assert "decoder output" not in failures(diagnose(logits, x))


def test_a_too_wide_gaussian_fails_and_a_fitted_one_warns():
    x = binary_images(256, seed=1)
    torch.manual_seed(0)
    wide = VAE(latent_dim=4, hidden=(32,), input_shape=SHAPE, likelihood="gaussian", gaussian_std=2.0).eval()
    report = diagnose(wide, x).set_index("check")
    assert report.loc["likelihood", "status"] == "fail" and "fixed" in report.loc["likelihood", "measured"]
    # sigma^2 at the mean squared error of the (untrained) reconstructions: a density on binary data, a warning
    with torch.no_grad():
        mse = (wide.decode(wide.encode(x).mean).mean - x).pow(2).mean()
        fitted = VAE(latent_dim=4, hidden=(32,), input_shape=SHAPE, likelihood="gaussian")
        fitted.load_state_dict(wide.state_dict(), strict=False)
        fitted.likelihood.x_logvar.fill_(mse.log().item())
    report = diagnose(fitted.eval(), x).set_index("check")
    assert report.loc["likelihood", "status"] == "warn" and "learned" in report.loc["likelihood", "measured"]


def test_collapse_fails_alone_and_is_a_symptom_of_a_missing_reparameterization(healthy):
    x = binary_images(256, seed=1)
    report = diagnose(collapse(copy_into(VAE, healthy)), x).set_index("check")
    assert failures(report.reset_index()) == {"collapse"}
    assert report.loc["collapse", "measured"].startswith("0 of 4 units active")
    report = diagnose(collapse(copy_into(NoReparam, healthy)), x).set_index("check")
    assert failures(report.reset_index()) == {"reparameterization"}
    assert report.loc["collapse", "status"] == "warn"


@pytest.fixture(scope="module")
def two_units():
    """A VAE with d_z = 2 on the same images: four prototypes need both units, and both are active."""
    torch.manual_seed(0)
    return train(VAE(latent_dim=2, hidden=(32,), input_shape=SHAPE), binary_images())


def switch_off(cls, model, units):
    """A copy of ``model`` as class ``cls`` with q(z_j|x) = N(0, 1) for every x in the given units."""
    copy = cls(latent_dim=model.latent_dim, hidden=(32,), input_shape=SHAPE)
    copy.load_state_dict(model.state_dict(), strict=False)
    rows = [j for u in units for j in (u, u + model.latent_dim)]  # the encoder outputs [mu, logvar]
    with torch.no_grad():
        copy.encoder[-1].weight[rows] = 0.0
        copy.encoder[-1].bias[rows] = 0.0
    return copy.eval()


def collapse_row(model):
    return diagnose(model, binary_images(256, seed=1)).set_index("check").loc["collapse"]


def test_with_every_unit_active_the_collapse_check_is_ok(two_units):
    row = collapse_row(two_units)
    assert row["status"] == "ok" and row["measured"].startswith("2 of 2 units active"), row["measured"]


@pytest.mark.parametrize("off", [0, 1])
def test_a_partial_collapse_warns_and_names_the_active_units(two_units, off):
    row = collapse_row(switch_off(VAE, two_units, [off]))
    assert row["status"] == "warn" and row["measured"].startswith("1 of 2 units active"), row["measured"]
    assert "partial collapse: only 1 of the 2 units" in row["advice"]


def test_a_partial_collapse_is_not_a_failure_and_a_total_one_is(two_units):
    x = binary_images(256, seed=1)
    assert failures(diagnose(switch_off(VAE, two_units, [0]), x)) == set()
    assert failures(diagnose(switch_off(VAE, two_units, [0, 1]), x)) == {"collapse"}


def test_the_healthy_model_counts_its_inactive_units(healthy):
    # four prototypes need about two units of the four: the healthy model leaves some inactive, a warning
    x = binary_images(256, seed=1)
    active = int((healthy.encode(x).mean.detach().var(0) > 0.01).sum())
    row = collapse_row(healthy)
    assert 0 < active < 4 and row["status"] == "warn"
    assert row["measured"].startswith(f"{active} of 4 units active")


def test_a_partial_collapse_with_a_failed_cause_names_the_cause(two_units):
    report = diagnose(switch_off(NoReparam, two_units, [0]), binary_images(256, seed=1)).set_index("check")
    assert failures(report.reset_index()) == {"reparameterization"}
    assert report.loc["collapse", "status"] == "warn"
    assert report.loc["collapse", "advice"].startswith("follows from the failed reparameterization check")


def test_non_finite_weights_fail_the_finite_check(healthy):
    model = copy_into(VAE, healthy)
    with torch.no_grad():
        model.decoder[-1].weight[0, 0] = float("nan")
    report = diagnose(model, binary_images(256, seed=1)).set_index("check")
    assert report.loc["finite", "status"] == "fail" and "distortion" in report.loc["finite", "measured"]


def test_diagnose_leaves_the_model_and_random_state_as_they_were(healthy):
    model = copy_into(VAE, healthy).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = torch.random.get_rng_state()
    first = diagnose(model, binary_images(64, seed=1), seed=3)
    assert model.training and torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert all(p.grad is None for p in model.parameters())
    # seeded: the same call gives the same numbers
    assert first.equals(diagnose(model, binary_images(64, seed=1), seed=3))


def test_bad_arguments_are_named(healthy):
    x = binary_images(8)
    with pytest.raises(TypeError, match="model must have encode, decode, prior and loss_terms"):
        diagnose(torch.nn.Linear(2, 2), x)
    with pytest.raises(ValueError, match="x must be a floating-point batch of at least 2"):
        diagnose(healthy, x[:1])
    with pytest.raises(ValueError, match="x must be"):
        diagnose(healthy, x.long())
    with pytest.raises(ValueError, match="n_samples"):
        diagnose(healthy, x, n_samples=0)
    with pytest.raises(ValueError, match="report must be"):
        failures("not a report")


class LogvarSampledAsStd(VAE):
    def loss_terms(self, x):
        mu, logvar = self.encoder_params(x)
        z = mu + logvar * torch.randn_like(mu)  # the output used as sigma when sampling, as logvar in the KL
        distortion = -self.decode(z).log_prob(x)
        rate = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(-1)
        return {"loss": distortion + rate, "elbo": -(distortion + rate), "rate": rate, "distortion": distortion}


def test_a_loss_that_disagrees_with_encode_fails_the_loss_terms_check(healthy):
    report = diagnose(copy_into(LogvarSampledAsStd, healthy), binary_images(256, seed=1)).set_index("check")
    assert report.loc["loss terms", "status"] == "fail"
    assert "times what encode/decode/prior give" in report.loc["loss terms", "advice"]
    assert "draw z from the q that encode returns" in report.loc["loss terms", "advice"]


def test_inputs_that_used_to_crash_diagnose_get_a_report(healthy):
    x = binary_images(16)
    same = diagnose(healthy, x[:1].repeat(16, 1, 1, 1))  # one image 16 times: the codes cannot vary
    row = same.set_index("check").loc["collapse"]
    assert row["status"] == "warn" and "all the same" in row["measured"] and "collapse" not in failures(same)

    broken = VAE(latent_dim=2, hidden=(16,), input_shape=SHAPE)
    with torch.no_grad():
        next(broken.parameters())[0, 0] = float("nan")  # a NaN weight: every code drawn from q is NaN
    report = diagnose(broken, x)
    assert "finite" in failures(report)
    assert "q(z|x)" in report.set_index("check").loc["finite", "measured"]

    narrow = VAE(latent_dim=2, hidden=(16,), input_shape=SHAPE, likelihood="gaussian")
    with torch.no_grad():
        narrow.likelihood.x_logvar.fill_(-400.0)  # sigma_x underflows to 0
    assert "finite" in failures(diagnose(narrow, x))


@pytest.mark.parametrize("seed", [-1, "0", 1.5])
def test_diagnose_takes_the_one_seed_rule(healthy, seed):
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        diagnose(healthy, binary_images(8), seed=seed)
