"""Bad input to the tractable models and to variational inference (bayes, linear_gaussian, inference) gets an
error that names the argument and what was expected, from the shared helpers in vae_helpers.checks: TypeError
for a tensor, distribution or dtype of the wrong kind, ValueError for a wrong value or shape, and for an
integer, number or choice that is not one (True, 2.0 or '0.5' where an integer or a number is expected).
Valid input of another dtype than float64 keeps working."""
import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, MultivariateNormal, Normal

from vae_helpers import LinearGaussian
from vae_helpers.bayes import DiscreteLatentModel
from vae_helpers.inference import (AmortizedEncoder, FullCovarianceGaussian, MeanFieldGaussian, elbo_gradient_samples,
                                   fit_amortized, fit_q, gaussian_q)

F32, F64 = torch.float32, torch.float64
lg = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=0)
x = torch.zeros(4, 3, dtype=F64)
zeros = torch.zeros(4, 2, dtype=F64)
eye = torch.eye(2, dtype=F64).expand(4, 2, 2)
coins = DiscreteLatentModel(torch.tensor([0.5, 0.5]), torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.2, 0.2]]))
W_leaf = torch.zeros(3, 2, dtype=F64, requires_grad=True)


def mean_field(mean, std=1.0):
    return Independent(Normal(mean, std), 1)


def encoder(x_dim=3, z_dim=2):
    return AmortizedEncoder(x_dim, z_dim, hidden=(4,))


BAD_CALLS = {
    # LinearGaussian(W, b, sigma)
    "W list": (lambda: LinearGaussian([[1.0]]), TypeError,
               r"W must be a floating-point tensor of shape \(n, d\), got \[\[1.0\]\]"),
    "W int": (lambda: LinearGaussian(torch.ones(2, 1, dtype=torch.long)), TypeError,
              r"W must be a floating-point tensor of shape \(n, d\), got a tensor of shape \(2, 1\) and dtype torch.int64"),
    "W 1-D": (lambda: LinearGaussian(torch.ones(3)), ValueError,
              r"W must be a floating-point tensor of shape \(n, d\) with n, d >= 1, got \(3,\)"),
    "W empty": (lambda: LinearGaussian(torch.ones(0, 2)), ValueError, r"with n, d >= 1, got \(0, 2\)"),
    "W NaN": (lambda: LinearGaussian(torch.tensor([[math.nan]])), ValueError, r"W must hold finite values"),
    "b list": (lambda: LinearGaussian(lg.W, [0.0, 0.0, 0.0]), TypeError,
               r"b must be a tensor of shape \(3,\), got \[0.0, 0.0, 0.0\]"),
    "b shape": (lambda: LinearGaussian(lg.W, torch.zeros(2)), ValueError,
                r"b must be a tensor of shape \(3,\), one offset per row of W, got \(2,\)"),
    "b inf": (lambda: LinearGaussian(lg.W, torch.tensor([0.0, math.inf, 0.0])), ValueError, r"b must hold finite values"),
    "sigma True": (lambda: LinearGaussian(lg.W, sigma=True), ValueError, r"sigma must be a positive finite number, got True"),
    "sigma str": (lambda: LinearGaussian(lg.W, sigma="0.5"), ValueError, r"sigma must be a positive finite number, got '0.5'"),
    "sigma tensor": (lambda: LinearGaussian(lg.W, sigma=torch.tensor(0.5)), ValueError,
                     r"sigma must be a positive finite number, got tensor\(0.5000\)"),
    "sigma 0": (lambda: LinearGaussian(lg.W, sigma=0), ValueError, r"sigma must be a positive finite number, got 0"),
    "sigma < 0": (lambda: LinearGaussian(lg.W, sigma=-0.5), ValueError, r"sigma must be a positive finite number, got -0.5"),
    "sigma inf": (lambda: LinearGaussian(lg.W, sigma=math.inf), ValueError, r"sigma must be a positive finite number, got inf"),
    "sigma nan": (lambda: LinearGaussian(lg.W, sigma=math.nan), ValueError, r"sigma must be a positive finite number, got nan"),
    # LinearGaussian.random
    "random x_dim 0": (lambda: LinearGaussian.random(x_dim=0), ValueError, r"x_dim must be an integer >= 1, got 0"),
    "random x_dim 2.0": (lambda: LinearGaussian.random(x_dim=2.0), ValueError, r"x_dim must be an integer >= 1, got 2.0"),
    "random z_dim True": (lambda: LinearGaussian.random(z_dim=True), ValueError, r"z_dim must be an integer >= 1, got True"),
    "random sigma inf": (lambda: LinearGaussian.random(sigma=math.inf), ValueError, r"sigma must be a positive finite number"),
    "random seed -1": (lambda: LinearGaussian.random(seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    "random seed None": (lambda: LinearGaussian.random(seed=None), ValueError, r"seed must be an integer >= 0, got None"),
    "random dtype int": (lambda: LinearGaussian.random(dtype=torch.int64), TypeError,
                         r"dtype must be a floating-point torch.dtype such as torch.float64, got torch.int64"),
    "random dtype str": (lambda: LinearGaussian.random(dtype="float64"), TypeError,
                         r"dtype must be a floating-point torch.dtype such as torch.float64, got 'float64'"),
    # LinearGaussian: x
    "log_evidence x float32": (lambda: lg.log_evidence(x.float()), TypeError,
                               r"x has dtype torch.float32 but the model's weights are torch.float64; "
                               r"convert it with x.to\(torch.float64\)"),
    "posterior x float32": (lambda: lg.posterior(x.float()), TypeError,
                            r"x has dtype torch.float32 but the model's weights are torch.float64"),
    "posterior x int": (lambda: lg.posterior(torch.zeros(4, 3, dtype=torch.long)), TypeError,
                        r"x must be a floating-point tensor of shape \(\.\.\., 3\), got a tensor of shape \(4, 3\) and dtype torch.int64"),
    "log_evidence x list": (lambda: lg.log_evidence([[0.0, 1.0, 2.0]]), TypeError,
                            r"x must be a floating-point tensor of shape \(\.\.\., 3\), got \[\[0.0, 1.0, 2.0\]\]"),
    "posterior x wrong size": (lambda: lg.posterior(torch.zeros(4, 2, dtype=F64)), ValueError,
                               r"x must be a tensor of shape \(\.\.\., 3\), got \(4, 2\)"),
    "log_evidence x scalar": (lambda: lg.log_evidence(torch.tensor(1.0, dtype=F64)), ValueError,
                              r"x must be a tensor of shape \(\.\.\., 3\), got \(\)"),
    "mean_field_posterior x float32": (lambda: lg.mean_field_posterior(x.float()), TypeError, r"x has dtype torch.float32"),
    # LinearGaussian: z
    "decode z wrong size": (lambda: lg.decode(torch.zeros(5, 3, dtype=F64)), ValueError,
                            r"z must have shape \(\.\.\., 2\) \(the last dimension is latent_dim\), got \(5, 3\)"),
    "decode z float32": (lambda: lg.decode(torch.zeros(5, 2)), TypeError,
                         r"z has dtype torch.float32 but the model's weights are torch.float64; convert it with z.to\(torch.float64\)"),
    "decode z int": (lambda: lg.decode(torch.zeros(5, 2, dtype=torch.long)), TypeError,
                     r"z must be a floating-point tensor of codes, got a tensor of shape \(5, 2\) and dtype torch.int64"),
    "decode z list": (lambda: lg.decode([0.0, 0.0]), TypeError, r"z must be a floating-point tensor of codes, got \[0.0, 0.0\]"),
    # LinearGaussian.sample
    "sample True": (lambda: lg.sample(True), ValueError, r"n must be an integer >= 1, got True"),
    "sample 2.0": (lambda: lg.sample(2.0), ValueError, r"n must be an integer >= 1, got 2.0"),
    "sample 0": (lambda: lg.sample(0), ValueError, r"n must be an integer >= 1, got 0"),
    "sample seed str": (lambda: lg.sample(2, seed="0"), ValueError, r"seed must be an integer >= 0, got '0'"),
    "sample seed -1": (lambda: lg.sample(2, seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    # LinearGaussian: q
    "exact_elbo q str": (lambda: lg.exact_elbo(x, "N(0, I)"), TypeError,
                         r"q must be a MultivariateNormal or an Independent\(Normal\) over z, got 'N\(0, I\)'"),
    "exact_elbo q batch": (lambda: lg.exact_elbo(x, mean_field(torch.zeros(3, 2, dtype=F64))), ValueError,
                           r"q must have batch shape \(4,\), one distribution per row of x, got \(3,\)"),
    "kl_to_posterior q size": (lambda: lg.kl_to_posterior(x, mean_field(torch.zeros(4, 3, dtype=F64))), ValueError,
                               r"q must be a distribution over z of dimension 2, got event shape \(3,\)"),
    "kl_to_posterior q float32": (lambda: lg.kl_to_posterior(x, mean_field(torch.zeros(4, 2))), TypeError,
                                  r"q has dtype torch.float32 but the model's weights are torch.float64; "
                                  r"build q from tensors converted with .to\(torch.float64\)"),
    "exact_elbo x float32": (lambda: lg.exact_elbo(x.float(), lg.posterior(x)), TypeError, r"x has dtype torch.float32"),
    "kl_to_posterior x list": (lambda: lg.kl_to_posterior(x.tolist(), lg.posterior(x)), TypeError,
                               r"x must be a floating-point tensor of shape \(\.\.\., 3\), got \[\[0.0, 0.0, 0.0\], "),
    # DiscreteLatentModel
    "prior_probs list": (lambda: DiscreteLatentModel([0.5, 0.5], coins.likelihood), TypeError,
                         r"prior_probs must be a floating-point tensor of shape \(K,\), got \[0.5, 0.5\]"),
    "prior_probs int": (lambda: DiscreteLatentModel(torch.tensor([1, 0]), coins.likelihood), TypeError,
                        r"prior_probs must be a floating-point tensor of shape \(K,\), "
                        r"got a tensor of shape \(2,\) and dtype torch.int64"),
    "likelihood list": (lambda: DiscreteLatentModel(coins.prior_probs, [[1.0], [1.0]]), TypeError,
                        r"likelihood must be a floating-point tensor of shape \(K, M\), got \[\[1.0\], \[1.0\]\]"),
    "likelihood NaN": (lambda: DiscreteLatentModel(coins.prior_probs, torch.tensor([[math.nan], [1.0]])), ValueError,
                       r"likelihood must hold finite, non-negative probabilities"),
    "likelihood 3-D": (lambda: DiscreteLatentModel(coins.prior_probs, torch.ones(2, 1, 1)), ValueError,
                       r"likelihood must be a floating-point tensor of shape \(K, M\), got shape \(2, 1, 1\)"),
    "discrete decode z True": (lambda: coins.decode(True), ValueError, r"z must hold integers in 0..1, got True of dtype torch.bool"),
    "discrete decode z 0.5": (lambda: coins.decode([0.5]), ValueError, r"z must hold integers in 0..1, got \[0.5\] of dtype torch.float32"),
    "discrete decode z str": (lambda: coins.decode("1"), TypeError,
                              r"z must hold integers in 0..1 \(an int, a list or a tensor of ints\), got '1'"),
    "discrete decode z 2": (lambda: coins.decode(2), ValueError, r"z must hold integers in 0..1, got 2"),
    "discrete posterior x floats": (lambda: coins.posterior(torch.zeros(20)), ValueError,
                                    r"x must hold integers in 0..2, got a tensor of shape \(20,\) of dtype torch.float32"),
    "discrete posterior x None": (lambda: coins.posterior(None), TypeError, r"x must hold integers in 0..2 .*, got None"),
    "discrete posterior x ragged": (lambda: coins.posterior([[0], [1, 2]]), TypeError,
                                    r"x must hold integers in 0..2 \(an int, a list or a tensor of ints\), got \[\[0\], \[1, 2\]\]"),
    "discrete log_evidence x -1": (lambda: coins.log_evidence([-1]), ValueError, r"x must hold integers in 0..2, got \[-1\]"),
    "discrete log_evidence x many": (lambda: coins.log_evidence(torch.arange(20)), ValueError,
                                     r"x must hold integers in 0..2, got values in 0..19"),
    "discrete sample True": (lambda: coins.sample(True), ValueError, r"n must be an integer >= 1, got True"),
    "discrete sample 0": (lambda: coins.sample(0), ValueError, r"n must be an integer >= 1, got 0"),
    "discrete sample seed 1.5": (lambda: coins.sample(3, seed=1.5), ValueError, r"seed must be an integer >= 0, got 1.5"),
    # gaussian_q, MeanFieldGaussian, FullCovarianceGaussian
    "gaussian_q family int": (lambda: gaussian_q(3, zeros, eye), ValueError, r"family must be one of \('full', 'mean_field'\), got 3"),
    "gaussian_q family str": (lambda: gaussian_q("diag", zeros, eye), ValueError,
                              r"family must be one of \('full', 'mean_field'\), got 'diag'"),
    "gaussian_q mean list": (lambda: gaussian_q("full", [[0.0, 0.0]], eye), TypeError,
                             r"mean must be a floating-point tensor of shape \(B, d\), got \[\[0.0, 0.0\]\]"),
    "gaussian_q covariance list": (lambda: gaussian_q("full", zeros, eye.tolist()), TypeError,
                                   r"covariance must be a floating-point tensor of shape \(4, 2, 2\), got a list"),
    "gaussian_q covariance float32": (lambda: gaussian_q("full", zeros, eye.float()), TypeError,
                                      r"covariance has dtype torch.float32 but the entries of mean are torch.float64"),
    "gaussian_q covariance NaN": (lambda: gaussian_q("full", zeros, eye * math.nan), ValueError,
                                  r"covariance must hold finite values"),
    "gaussian_q covariance not PD": (lambda: gaussian_q("full", zeros, -eye), ValueError,
                                     r"covariance must be positive-definite, but matrix 0 \(of 4 such\) is not"),
    "gaussian_q variance 0": (lambda: gaussian_q("mean_field", zeros, 0 * eye), ValueError,
                              r"covariance must have a positive diagonal: a mean-field q keeps only the variances"),
    "MeanFieldGaussian mu list": (lambda: MeanFieldGaussian([0.0], zeros), TypeError,
                                  r"mu must be a floating-point tensor of shape \(B, d\), got \[0.0\]"),
    "MeanFieldGaussian mu scalar": (lambda: MeanFieldGaussian(torch.tensor(0.0), torch.tensor(0.0)), ValueError,
                                    r"mu must be a floating-point tensor of shape \(B, d\), got shape \(\)"),
    "MeanFieldGaussian logvar shape": (lambda: MeanFieldGaussian(zeros, torch.zeros(4, 3, dtype=F64)), ValueError,
                                       r"logvar must be a tensor of shape \(4, 2\), got \(4, 3\)"),
    "MeanFieldGaussian logvar float32": (lambda: MeanFieldGaussian(zeros, zeros.float()), TypeError,
                                         r"logvar has dtype torch.float32 but the entries of mu are torch.float64"),
    "MeanFieldGaussian logvar inf": (lambda: MeanFieldGaussian(zeros, zeros - math.inf), ValueError,
                                     r"logvar must hold finite values"),
    "FullCovarianceGaussian scale_tril shape": (lambda: FullCovarianceGaussian(zeros, eye[0]), ValueError,
                                                r"scale_tril must be a tensor of shape \(4, 2, 2\), got \(2, 2\)"),
    "FullCovarianceGaussian scale_tril int": (lambda: FullCovarianceGaussian(zeros, eye.long()), TypeError,
                                              r"scale_tril must be a floating-point tensor of shape \(4, 2, 2\)"),
    "FullCovarianceGaussian diagonal": (lambda: FullCovarianceGaussian(zeros, -eye), ValueError,
                                        r"scale_tril must be lower-triangular with a positive diagonal"),
    # fit_q
    "fit_q model": (lambda: fit_q("model", x), TypeError, r"model must have decode, prior \(like VAE or LinearGaussian\); str lacks"),
    "fit_q discrete model": (lambda: fit_q(coins, x), TypeError,
                             r"model must have a prior over vectors z, of event shape \(d,\), like VAE or LinearGaussian; "
                             r"DiscreteLatentModel's prior has event shape \(\)"),
    "fit_q x list": (lambda: fit_q(lg, x.tolist()), TypeError,
                     r"x must be a floating-point tensor of shape \(B, \.\.\.\), got \[\[0.0, 0.0, 0.0\], "),
    "fit_q x empty": (lambda: fit_q(lg, x[:0]), ValueError,
                      r"x must be a floating-point tensor of shape \(B, \.\.\.\) with at least one row, got shape \(0, 3\)"),
    "fit_q x float32": (lambda: fit_q(lg, x.float()), TypeError,
                        r"x has dtype torch.float32 but the model's weights are torch.float64; convert it with x.to\(torch.float64\)"),
    "fit_q family None": (lambda: fit_q(lg, x, family=None), ValueError, r"family must be one of \('full', 'mean_field'\), got None"),
    "fit_q steps True": (lambda: fit_q(lg, x, steps=True), ValueError, r"steps must be an integer >= 1, got True"),
    "fit_q steps 2.5": (lambda: fit_q(lg, x, steps=2.5), ValueError, r"steps must be an integer >= 1, got 2.5"),
    "fit_q num_samples 0": (lambda: fit_q(lg, x, num_samples=0), ValueError, r"num_samples must be an integer >= 1, got 0"),
    "fit_q lr inf": (lambda: fit_q(lg, x, lr=math.inf), ValueError, r"lr must be a positive finite number, got inf"),
    "fit_q lr True": (lambda: fit_q(lg, x, lr=True), ValueError, r"lr must be a positive finite number, got True"),
    "fit_q seed None": (lambda: fit_q(lg, x, seed=None), ValueError, r"seed must be an integer >= 0, got None"),
    "fit_q init str": (lambda: fit_q(lg, x, init="prior"), TypeError,
                       r"init must be a Gaussian q with batch shape \(4,\) \(a MultivariateNormal or an Independent\(Normal\)\), "
                       r"got 'prior'"),
    "fit_q init batch": (lambda: fit_q(lg, x, init=mean_field(zeros[:1])), ValueError,
                         r"init must be a Gaussian q with batch shape \(4,\), one per row of x, got batch shape \(1,\)"),
    "fit_q init event": (lambda: fit_q(lg, x, init=mean_field(torch.zeros(4, 3, dtype=F64))), ValueError,
                         r"init must be a distribution over z of event shape \(2,\), got \(3,\)"),
    "fit_q init float32": (lambda: fit_q(lg, x, init=mean_field(zeros.float())), TypeError,
                           r"init has dtype torch.float32 but the model's weights are torch.float64; "
                           r"build it from tensors converted with .to\(torch.float64\)"),
    # elbo_gradient_samples
    "gradients mu list": (lambda: elbo_gradient_samples(lg, x, zeros.tolist(), zeros), TypeError,
                          r"mu must be a floating-point tensor of shape \(4, 2\), got \[\["),
    "gradients mu float32": (lambda: elbo_gradient_samples(lg, x, zeros.float(), zeros), TypeError,
                             r"mu has dtype torch.float32 but the model's weights are torch.float64"),
    "gradients logvar shape": (lambda: elbo_gradient_samples(lg, x, zeros, zeros[0]), ValueError,
                               r"logvar must be a tensor of shape \(4, 2\), got \(2,\)"),
    "gradients estimator None": (lambda: elbo_gradient_samples(lg, x, zeros, zeros, estimator=None), ValueError,
                                 r"estimator must be one of \('reparameterization', 'score_function'\), got None"),
    "gradients num_samples 0": (lambda: elbo_gradient_samples(lg, x, zeros, zeros, num_samples=0), ValueError,
                                r"num_samples must be an integer >= 1, got 0"),
    "gradients seed str": (lambda: elbo_gradient_samples(lg, x, zeros, zeros, seed="1"), ValueError,
                           r"seed must be an integer >= 0, got '1'"),
    "gradients x float32": (lambda: elbo_gradient_samples(lg, x.float(), zeros, zeros), TypeError, r"x has dtype torch.float32"),
    # AmortizedEncoder
    "encoder x_dim 2.0": (lambda: AmortizedEncoder(2.0, 2), ValueError, r"x_dim must be an integer >= 1, got 2.0"),
    "encoder z_dim 0": (lambda: AmortizedEncoder(3, 0), ValueError, r"z_dim must be an integer >= 1, got 0"),
    "encoder hidden int": (lambda: AmortizedEncoder(3, 2, hidden=32), ValueError,
                           r"hidden must be a sequence of positive integers such as \(32,\), got 32"),
    "encoder hidden 0": (lambda: AmortizedEncoder(3, 2, hidden=(0,)), ValueError,
                         r"hidden must be a sequence of positive integers such as \(32,\), got \(0,\)"),
    "encoder activation name": (lambda: AmortizedEncoder(3, 2, activation="gelu"), ValueError,
                                r"activation must be one of \('relu', 'tanh', 'elu', 'softplus'\), got 'gelu'"),
    "encoder activation class": (lambda: AmortizedEncoder(3, 2, activation=nn.Tanh), ValueError,
                                 r"activation must be one of \('relu', 'tanh', 'elu', 'softplus'\), got <class"),
    "encoder dtype": (lambda: AmortizedEncoder(3, 2, dtype="float64"), TypeError,
                      r"dtype must be a floating-point torch.dtype such as torch.float64, got 'float64'"),
    "encoder x float32": (lambda: encoder().encode(x.float()), TypeError,
                          r"x has dtype torch.float32 but the encoder's weights are torch.float64; convert it with x.to\(torch.float64\)"),
    "encoder x list": (lambda: encoder()(x.tolist()), TypeError, r"x must be a floating-point tensor of shape \(B, 3\), got \[\[0.0, 0.0, 0.0\], "),
    "encoder x wrong size": (lambda: encoder().encode(torch.zeros(4, 5, dtype=F64)), ValueError,
                             r"x must be a tensor of shape \(B, 3\), got \(4, 5\)"),
    # fit_amortized
    "fit_amortized model": (lambda: fit_amortized(None, encoder(), x), TypeError, r"model must have decode, prior"),
    "fit_amortized encoder": (lambda: fit_amortized(lg, lg.posterior, x), TypeError,
                              r"encoder must be an nn.Module with encode\(x\) -> q\(z\|x\), such as AmortizedEncoder"),
    "fit_amortized encoder z_dim": (lambda: fit_amortized(lg, encoder(z_dim=3), x), ValueError,
                                    r"encoder must give a q over the model's z of size 2, got an encoder with z_dim=3"),
    "fit_amortized encoder x_dim": (lambda: fit_amortized(lg, encoder(x_dim=4), x), ValueError,
                                    r"x must have shape \(N, 4\) to match the encoder's x_dim, got \(4, 3\)"),
    "fit_amortized x float32": (lambda: fit_amortized(lg, encoder(), x.float()), TypeError,
                                r"x has dtype torch.float32 but the model's weights are torch.float64"),
    "fit_amortized batch_size 0": (lambda: fit_amortized(lg, encoder(), x, batch_size=0), ValueError,
                                   r"batch_size must be an integer >= 1, got 0"),
    "fit_amortized batch_size 10.0": (lambda: fit_amortized(lg, encoder(), x, batch_size=10.0), ValueError,
                                      r"batch_size must be an integer >= 1, got 10.0"),
    "fit_amortized lr 0": (lambda: fit_amortized(lg, encoder(), x, lr=0.0), ValueError, r"lr must be a positive finite number, got 0.0"),
    "fit_amortized seed -1": (lambda: fit_amortized(lg, encoder(), x, seed=-1), ValueError, r"seed must be an integer >= 0, got -1"),
    "fit_amortized model_params tensor": (lambda: fit_amortized(lg, encoder(), x, model_params=W_leaf), TypeError,
                                          r"model_params must be a list of tensors such as \[model.W, model.b\], "
                                          r"got a tensor of shape \(3, 2\)"),
    "fit_amortized model_params item": (lambda: fit_amortized(lg, encoder(), x, model_params=["W"]), TypeError,
                                        r"model_params must be tensors with requires_grad=True, .*; item 0 is 'W'"),
    "fit_amortized model_params no grad": (lambda: fit_amortized(lg, encoder(), x, model_params=[lg.W]), ValueError,
                                           r"model_params must be tensors with requires_grad=True, .*; item 0 is without requires_grad"),
    "fit_amortized model_params non-leaf": (lambda: fit_amortized(lg, encoder(), x, model_params=[W_leaf, 2 * W_leaf]), ValueError,
                                            r"model_params must be .* made as leaves .*; item 1 is not a leaf"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
def test_bad_input_gets_an_error_that_names_the_argument(case):
    call, error, message = BAD_CALLS[case]
    with pytest.raises(error, match=message):
        call()


def test_a_float32_model_takes_float32_input_throughout():
    """The dtype checks compare with the model's own dtype, not with float64."""
    model = LinearGaussian.random(x_dim=3, z_dim=2, sigma=0.5, seed=0, dtype=F32)
    z, x32 = model.sample(5, seed=0)
    assert z.dtype == x32.dtype == F32
    post = model.posterior(x32)
    results = [model.log_evidence(x32), model.decode(z).log_prob(x32), model.exact_elbo(x32, post),
               model.kl_to_posterior(x32, model.mean_field_posterior(x32)), fit_q(model, x32, steps=3).elbo_trace]
    assert all(r.dtype == F32 and torch.isfinite(r).all() for r in results)
    # and a float32 model refuses float64 data just as a float64 model refuses float32
    with pytest.raises(TypeError, match=r"x has dtype torch.float64 but the model's weights are torch.float32"):
        model.log_evidence(x32.double())


def test_b_and_likelihood_are_converted_as_documented():
    W = lg.W
    with_b32 = LinearGaussian(W, lg.b.float(), sigma=0.5)
    assert with_b32.b.dtype == F64
    torch.testing.assert_close(with_b32.log_evidence(x), LinearGaussian(W, lg.b.float().double(), 0.5).log_evidence(x),
                               rtol=0, atol=0)
    table = DiscreteLatentModel(torch.tensor([0.5, 0.5], dtype=F64), coins.likelihood)  # float32 likelihood
    assert table.likelihood.dtype == F64 and table.evidence().dtype == F64


def test_one_q_broadcasts_over_a_batch_of_x_as_before():
    """exact_elbo and kl_to_posterior refuse batch shapes that do not broadcast, and keep those that do."""
    one = mean_field(torch.tensor([[0.3, -0.2]], dtype=F64), 0.7)
    _, xs = lg.sample(4, seed=1)
    many = mean_field(torch.tensor([[0.3, -0.2]], dtype=F64).expand(4, 2), 0.7)
    torch.testing.assert_close(lg.exact_elbo(xs, one), lg.exact_elbo(xs, many), rtol=0, atol=0)
    torch.testing.assert_close(lg.kl_to_posterior(xs, one), lg.kl_to_posterior(xs, many), rtol=0, atol=0)


def test_gaussian_q_starts_where_it_is_told():
    """The checked Cholesky factor is the one torch.linalg.cholesky gives: q starts at N(mean, covariance)."""
    A = torch.randn(4, 2, 2, dtype=F64, generator=torch.Generator().manual_seed(0))
    covariance = A @ A.transpose(-1, -2) + 0.1 * torch.eye(2, dtype=F64)
    mean = torch.randn(4, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    full = gaussian_q("full", mean, covariance)()
    torch.testing.assert_close(full.covariance_matrix, covariance, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(full.scale_tril, torch.linalg.cholesky(covariance), rtol=0, atol=0)
    diagonal = gaussian_q("mean_field", mean, covariance)()
    torch.testing.assert_close(diagonal.variance, covariance.diagonal(dim1=-2, dim2=-1), rtol=1e-12, atol=1e-12)


def test_discrete_values_are_accepted_as_ints_lists_and_tensors_alike():
    by_int = coins.posterior(2).probs
    torch.testing.assert_close(coins.posterior([2]).probs[0], by_int, rtol=0, atol=0)
    torch.testing.assert_close(coins.posterior(torch.tensor([[2]])).probs[0, 0], by_int, rtol=0, atol=0)
    assert coins.log_evidence(torch.tensor([], dtype=torch.long)).shape == (0,)
