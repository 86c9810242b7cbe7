"""Plausible wrong answers to lesson 08's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the -log k of the average left out: log sum_i w_i in place of log (1/k) sum_i w_i",
        """ks = [1, 10, 100, 1000]
with torch.no_grad():
    log_w8 = log_importance_weights(model, x[:8], k=4000, q=Independent(Normal(q.mean[:8], q.stddev[:8]), 1))
bounds = torch.stack([torch.logsumexp(log_w8.view(-1, k, 8), dim=1).mean(0) for k in ks])
"""),
    2: ("section 3's call copied with family=\"mean_field\" left in, so the refined q is diagonal again",
        """tilted = post_corr.abs().argsort(descending=True)[:10]
fit_full = fit_q(model, x[tilted], family="mean_field", steps=100, lr=0.05, num_samples=16, seed=0,
                 init=Independent(Normal(q.mean[tilted], q.stddev[tilted]), 1))
kl_full = kl_to_posterior_on_grid(fit_full.q, log_post[:, tilted], z_box[:, tilted], dv_box[tilted])
"""),
    3: ("the variances multiplied by c, so the standard deviations by sqrt(c)",
        """cs = torch.logspace(-math.log10(1.6), math.log10(1.6), 13)
loss = torch.stack([kl_to_posterior_on_grid(Independent(Normal(q_best.mean, (c * q_best.variance).sqrt()), 1),
                                            log_post, z_box, dv_box) - kl_best for c in cs])
"""),
    4: ("the second run started from the encoder's q again, with another seed",
        """worst_fit = kl_best.argsort(descending=True)[:10]
second = fit_q(model, x[worst_fit], family="mean_field", steps=100, lr=0.05, num_samples=16, seed=1,
               init=Independent(Normal(q.mean[worst_fit], q.stddev[worst_fit]), 1))
kl_second = kl_to_posterior_on_grid(second.q, log_post[:, worst_fit], z_box[:, worst_fit], dv_box[worst_fit])
"""),
    5: ("the cell area dV left out of the evidence",
        """@torch.no_grad()
def grid_posterior(model, x_one, z, dv):
    log_joint = model.decode(z).log_prob(x_one) + model.prior.log_prob(z)
    log_evidence = torch.logsumexp(log_joint, dim=0)
    w = torch.softmax(log_joint, dim=0)
    mean = w @ z
    cov = (w[:, None] * (z - mean)).T @ (z - mean)
    return log_evidence, mean, cov
"""),
}
