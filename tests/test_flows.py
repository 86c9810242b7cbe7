"""The coupling flow against autograd's Jacobian and the change-of-variables formula, and plugged into a VAE
through a small encode hook."""
import math
import warnings

import pytest
import torch
from torch.autograd.functional import jacobian
from torch.distributions import Independent, Normal, TransformedDistribution

from vae_helpers import VAE, iwae_bound, log_likelihood, mlp
from vae_helpers.flows import AffineCoupling, FlowEncoding, alternating_masks
from vae_helpers.lightning import drawn_codes

from test_models import terms_and_their_draw


def random_flow(d, num_layers=3, context_dim=None, seed=0):
    """A flow in float64 whose layers are far from the identity: the zero-initialised last layers redrawn."""
    torch.manual_seed(seed)
    flow = FlowEncoding(d, num_layers=num_layers, hidden=(16,), context_dim=context_dim).double()
    with torch.no_grad():
        for net in flow.conditioners:
            net[-1].weight.normal_(0, 0.5)
            net[-1].bias.normal_(0, 0.5)
    return flow


def forward_map(transforms):
    """z_0 -> z_L through the layers' own forward passes, with no cache (for autograd's Jacobian)."""
    def f(z):
        for t in transforms:
            z = t._call(z)
        return z
    return f


@pytest.mark.parametrize("d", [2, 3, 5])
def test_log_det_matches_autograds_jacobian(d):
    flow = random_flow(d, seed=d)
    h = torch.randn(flow.context_dim, dtype=torch.float64)  # one x's context
    transforms = flow.transforms(h)
    for _ in range(3):
        z = 2 * torch.randn(d, dtype=torch.float64)
        for t in transforms:  # each layer
            y = t._call(z)
            _, logabsdet = torch.linalg.slogdet(jacobian(t._call, z))
            torch.testing.assert_close(t.log_abs_det_jacobian(z, y), logabsdet)
            assert logabsdet.abs() > 1e-3  # the layer is not the identity, so the check has something to check
            z = y


@pytest.mark.parametrize("d", [2, 3, 5])
def test_inverse_undoes_the_forward_pass(d):
    flow = random_flow(d, seed=10 + d)
    h = torch.randn(6, flow.context_dim, dtype=torch.float64)
    z = 3 * torch.randn(4, 6, d, dtype=torch.float64)  # a sample dimension in front of the batch
    for t in flow.transforms(h):
        y = t._call(z)
        assert (y - z).abs().max() > 1e-2
        torch.testing.assert_close(t._inverse(y), z)
        torch.testing.assert_close(t._call(t._inverse(z)), z)


@pytest.mark.parametrize("d", [2, 3, 5])
def test_log_prob_is_the_change_of_variables_formula(d):
    flow = random_flow(d, num_layers=4, seed=20 + d)
    batch = 5
    h = torch.randn(batch, flow.context_dim, dtype=torch.float64)
    q = flow(h)
    assert isinstance(q, TransformedDistribution) and q.batch_shape == (batch,) and q.event_shape == (d,)
    mu, logvar = h[:, :d], h[:, d:2 * d]
    z0 = mu + torch.exp(0.5 * logvar) * torch.randn(batch, d, dtype=torch.float64)
    for b in range(batch):
        f = forward_map(flow.transforms(h[b]))
        z = f(z0[b])
        _, logabsdet = torch.linalg.slogdet(jacobian(f, z0[b]))
        base = Independent(Normal(mu[b], torch.exp(0.5 * logvar[b])), 1).log_prob(z0[b])
        # log q(z) = log N(z_0; mu, sigma^2) - log |det dz/dz_0|, at a z that q did not draw (no cache)
        torch.testing.assert_close(q.log_prob(z.expand(batch, d))[b], base - logabsdet)


def test_log_prob_at_its_own_draws_agrees_with_the_inverse():
    flow = random_flow(3, seed=30)
    q = flow(torch.randn(4, 6, dtype=torch.float64))
    z = q.rsample((7,))
    assert z.shape == (7, 4, 3)
    # at its own draw the cached z_0 is used; at a copy of it, the inverse recomputes z_0
    torch.testing.assert_close(q.log_prob(z), q.log_prob(z.clone()))
    assert q.sample((2,)).shape == (2, 4, 3)


def test_starts_as_the_encoders_diagonal_gaussian():
    flow = FlowEncoding(3, num_layers=2)
    h = torch.randn(4, 6)
    z = torch.randn(10, 4, 3)
    gaussian = Independent(Normal(h[:, :3], torch.exp(0.5 * h[:, 3:])), 1)
    torch.testing.assert_close(flow(h).log_prob(z), gaussian.log_prob(z))


def test_amortized_each_context_bends_the_same_point_differently():
    flow = random_flow(2, seed=40)
    z = torch.randn(2, dtype=torch.float64)
    h1, h2 = torch.randn(2, flow.context_dim, dtype=torch.float64)
    y1, y2 = forward_map(flow.transforms(h1))(z), forward_map(flow.transforms(h2))(z)
    assert (y1 - y2).abs().max() > 1e-2


def test_masks_alternate():
    torch.testing.assert_close(alternating_masks(3, 2), torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))


def flow_vae(context_features=0):
    d = 2
    encoder = mlp([784, 16, 2 * d + context_features])
    encoding = FlowEncoding(d, num_layers=2, hidden=(8,), context_dim=2 * d + context_features)
    with torch.no_grad():
        for net in encoding.conditioners:
            net[-1].weight.normal_(0, 0.3)
    return VAE(latent_dim=d, hidden=(16,), encoder=encoder, encoding=encoding)


@pytest.mark.parametrize("context_features", [0, 3])
def test_a_flow_vae_trains_end_to_end(context_features):
    model = flow_vae(context_features)
    x = torch.bernoulli(torch.rand(6, 1, 28, 28))
    terms, q, z = terms_and_their_draw(model, x, seed=1)
    # no closed-form KL for a flow: the rate is log q(z|x) - log p(z) at the draw the distortion used
    torch.testing.assert_close(terms["rate"], q.log_prob(z) - model.prior.log_prob(z))
    with drawn_codes(model):
        torch.testing.assert_close(terms["distortion"], -model.decode(z).log_prob(x))
    terms["loss"].mean().backward()
    # the draw carries the gradient back to the encoder, and to every layer's conditioner
    for name, param in model.encoder.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    for net in model.encoding.conditioners:
        assert net[0].weight.grad.abs().sum() > 0 and net[-1].weight.grad.abs().sum() > 0


def test_the_estimators_take_a_flow_vae():
    model = flow_vae()
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    with torch.no_grad():
        bound = iwae_bound(model, x, 20)
    assert bound.shape == (4,) and torch.isfinite(bound).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a Bernoulli p(x|z): bits per dimension, no warning
        result = log_likelihood(model, x, k=5)
    assert math.isfinite(result.bits_per_dim)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="latent_dim must be an integer >= 2"):
        FlowEncoding(1)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1"):
        FlowEncoding(2, num_layers=0)
    with pytest.raises(ValueError, match="context_dim must be an integer >= 4"):
        FlowEncoding(2, context_dim=3)
    with pytest.raises(ValueError, match="hidden"):
        FlowEncoding(2, hidden=(0,))
    flow = FlowEncoding(2, context_dim=5)
    with pytest.raises(ValueError, match=r"h, the encoder's output, must have shape \(B, 5\) = \[mu, logvar, features"):
        flow(torch.randn(3, 4))
    with pytest.raises(TypeError, match="h must be a floating-point tensor"):
        flow([[0.0] * 5])
