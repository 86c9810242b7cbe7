"""Plausible wrong answers to lesson 04's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the posterior's marginal variances diag(Lambda^-1) in place of the mean-field 1 / Lambda_jj",
        """def mean_field_optimum(W, b, sigma_x, x):
    eye = torch.eye(W.shape[1], dtype=W.dtype)
    mu = (x - b) @ W @ torch.linalg.inv(W.T @ W + sigma_x ** 2 * eye).T
    covariance = torch.linalg.inv(eye + W.T @ W / sigma_x ** 2)
    return mu, covariance.diagonal().expand_as(mu)
"""),
    2: ("init= forgotten: the 30 steps start from the prior, not from the encoder's q",
        """with torch.no_grad():
    q_start = undertrained.encode(x_test)
refined = fit_q(model, x_test, "mean_field", steps=30, lr=0.05, num_samples=32, seed=1)
after = (elbo_per_point - model.exact_elbo(x_test, refined.q)).mean().item()
"""),
    3: ("the gap on the 20 training points measured against the test set's optima elbo_per_point[:20]",
        """x_few = x_train[:20]
torch.manual_seed(0)
few_shot = AmortizedEncoder(x_dim=3, z_dim=2, hidden=(32,))
fit_amortized(model, few_shot, x_few, steps=400, batch_size=20, lr=0.03, seed=0)
with torch.no_grad():
    gap_seen = (elbo_per_point[:20] - model.exact_elbo(x_few, few_shot.encode(x_few))).mean().item()
    gap_unseen = (elbo_per_point - model.exact_elbo(x_test, few_shot.encode(x_test))).mean().item()
"""),
    4: ('hidden=() forgotten: the default 32-unit tanh encoder, which is not linear',
        """torch.manual_seed(0)
linear_encoder = AmortizedEncoder(x_dim=3, z_dim=2)
fit_amortized(model, linear_encoder, x_train, steps=800, batch_size=100, lr=0.05, seed=0)
with torch.no_grad():
    gap_linear = (elbo_per_point - model.exact_elbo(x_test, linear_encoder.encode(x_test))).mean().item()
"""),
}
