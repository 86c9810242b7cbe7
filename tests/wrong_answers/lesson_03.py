"""Plausible wrong answers to lesson 03's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ('log p(x | z = 0) in place of E_p(z)[log p(x | z)]: the trace term forgotten',
        """zero = torch.zeros(1, 2, dtype=torch.float64)
elbo_prior = model.decode(zero).log_prob(x).item()    # the likelihood at the prior's mean
gap_prior = log_px.item() - elbo_prior
"""),
    2: ("the forward-KL gap, from the covariance's diagonal S_jj in place of the precision's (equal only for d_z = 2)",
        """def mean_field_gap(W, sigma_x):
    precision = torch.eye(W.shape[1], dtype=W.dtype) + W.T @ W / sigma_x ** 2
    covariance = torch.linalg.inv(precision)
    return 0.5 * (covariance.diagonal().log().sum() - torch.logdet(covariance)).item()

rho_one_nat = math.sqrt(1 - math.exp(-2))
"""),
    3: ('exp(logvar) used as the standard deviation (logvar read as log sigma)',
        """def reparameterized_elbo(mu, logvar, log_joint, k, seed):
    std = torch.exp(logvar)
    eps = torch.randn(k, *mu.shape, generator=torch.Generator().manual_seed(seed), dtype=mu.dtype)
    z = mu + std * eps
    return (log_joint(z) - Normal(mu, std).log_prob(z).sum(-1)).mean(0)
"""),
    4: ('the -1 of the log-variance score forgotten, so the estimate is biased unless f - c averages to 0',
        """def score_function_gradients(mu, logvar, log_joint, n, c, seed):
    var = torch.exp(logvar)
    eps = torch.randn(n, *mu.shape, generator=torch.Generator().manual_seed(seed), dtype=mu.dtype)
    z = mu + var.sqrt() * eps
    f = log_joint(z) - Normal(mu, var.sqrt()).log_prob(z).sum(-1)
    score = torch.cat([(z - mu) / var, 0.5 * (z - mu) ** 2 / var], -1)
    return ((f - c)[..., None] * score).detach()
"""),
}
