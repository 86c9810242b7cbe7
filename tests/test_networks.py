"""The convolutional encoder and decoder: shapes, leading batch dimensions, use inside a VAE, bad arguments."""
import pytest
import torch

from vae_helpers.estimators import iwae_bound
from vae_helpers.models import VAE
from vae_helpers.networks import ConvDecoder, ConvEncoder


def test_encoder_maps_flat_or_image_batches_to_two_numbers_per_latent():
    encoder = ConvEncoder(5)
    x = torch.rand(3, 1, 28, 28)
    out = encoder(x)
    assert out.shape == (3, 10)
    torch.testing.assert_close(encoder(x.flatten(1)), out)  # the VAE passes x flattened: same numbers


def test_decoder_keeps_leading_batch_dimensions():
    decoder = ConvDecoder(4)
    z = torch.randn(6, 3, 4)  # k = 6 draws for each of B = 3 images, as importance sampling decodes them
    out = decoder(z)
    assert out.shape == (6, 3, 784)
    torch.testing.assert_close(out[2, 1], decoder(z[2, 1:2])[0])  # each code decoded on its own, same logits
    assert decoder(torch.randn(4)).shape == (784,)


def test_layers_halve_and_double_the_sides():
    encoder, decoder = ConvEncoder(2, channels=(8, 16, 32), input_shape=(1, 32, 32)), ConvDecoder(2, channels=(32, 8))
    assert encoder.out.in_features == 32 * 4 * 4
    assert decoder.start == (32, 7, 7)


def test_inside_a_vae_every_estimator_runs():
    model = VAE(latent_dim=3, encoder=ConvEncoder(3), decoder=ConvDecoder(3))
    x = torch.bernoulli(torch.rand(4, 1, 28, 28))
    terms = model.loss_terms(x)
    assert all(v.shape == (4,) for v in terms.values())
    assert model.decode(model.encode(x).rsample((7,))).batch_shape == (7, 4)
    assert iwae_bound(model, x, k=5).shape == (4,)
    terms["loss"].mean().backward()
    assert model.encoder.features[0].weight.grad.abs().sum() > 0  # the gradient reaches the first convolution


@pytest.mark.parametrize("kwargs, message", [
    (dict(latent_dim=0), "latent_dim must be an integer >= 1"),
    (dict(latent_dim=2, channels=(16, 0)), "channels must be a sequence of positive integers"),
    (dict(latent_dim=2, input_shape=(28, 28)), "input_shape must be (channels, height, width)"),
    (dict(latent_dim=2, input_shape=(1, 30, 30)), "divisible by 2 ** 2 = 4"),
    (dict(latent_dim=2, activation="gelu"), "activation must be one of"),
])
@pytest.mark.parametrize("network", [ConvEncoder, ConvDecoder])
def test_bad_arguments_are_named(network, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        network(**kwargs)
