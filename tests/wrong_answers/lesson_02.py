"""Plausible wrong answers to the exercises of lesson 02, one per exercise: each must fail its check."""

WRONG = {
    1: ("log(s2 / s1) written as log(s2^2 / s1^2), without the factor 1/2", """
def kl_gauss(m1, s1, m2, s2):
    return torch.log(s2**2 / s1**2) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


m1, s1, m2, s2 = (torch.tensor(v) for v in (1.0, 0.5, -1.0, 2.0))
torch.manual_seed(0)
mc = kl_monte_carlo(Normal(m1, s1), Normal(m2, s2), 200_000).item()
swapped = kl_gauss(m2, s2, m1, s1).item()
"""),
    2: ("the middle Gaussian not between the other two", """
a, b_mid, c = Normal(0.0, 1.0), Normal(2.0, 1.0), Normal(1.0, 1.0)
"""),
    3: ("logvar read as the log standard deviation, in both functions", """
def kl_closed(mu, logvar):
    return 0.5 * (torch.exp(2 * logvar) + mu**2 - 1 - 2 * logvar).sum(-1)


def kl_mc(mu, logvar, n):
    eps = torch.randn(n, *mu.shape, dtype=mu.dtype)
    z = mu + torch.exp(logvar) * eps
    log_q = (-logvar - 0.5 * eps**2).sum(-1)
    log_p = (-0.5 * z**2).sum(-1)
    return (log_q - log_p).mean(0)
"""),
    4: ("the aggregate's KL taken in the wrong direction, KL(p || q_bar)", """
mu50, logvar50 = mu_cloud[:50], logvar_cloud[:50]
q_n = Independent(Normal(mu50, torch.exp(0.5 * logvar50)), 1)
q_bar = aggregate_posterior(mu50, logvar50)
torch.manual_seed(0)
z_n = q_n.sample((1000,))
information = (q_n.log_prob(z_n) - q_bar.log_prob(z_n)).mean().item()
aggregate_kl = kl_monte_carlo(prior_2d, q_bar, 50_000).item()
"""),
    5: ("(a) started from +1, as in section 6, instead of between the modes", """
stuck = fit_gaussian(target, "reverse", steps=200, num_samples=500, init_mu=torch.tensor(1.0))
close = MixtureSameFamily(Categorical(probs=torch.tensor([0.5, 0.5])),
                          Normal(torch.tensor([-1.0, 1.0]), torch.tensor([1.0, 1.0])))
fit_close = fit_gaussian(close, "reverse", steps=200, num_samples=500, init_mu=torch.tensor(1.0))
"""),
}
