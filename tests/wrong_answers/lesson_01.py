"""Plausible wrong answers to the exercises of lesson 01, one per exercise: each must fail its check."""

WRONG = {
    1: ("the simulation run with the original jar `model` instead of the refilled one", """
rare = DiscreteLatentModel(torch.tensor([0.45, 0.50, 0.05], dtype=torch.float64), likelihood)
post_rare = rare.posterior(x_obs).probs
most_probable = rare.posterior(torch.arange(tosses + 1)).probs.argmax(-1)
first_heads_heavy = int((most_probable == 2).nonzero()[0])
z_r, x_r = model.sample(200_000, seed=2)
freq_rare = torch.bincount(z_r[x_r == x_obs], minlength=3) / (x_r == x_obs).sum()
"""),
    2: ("the joint p(z) p(x | z) returned without dividing by the evidence", """
def bayes_update(prior, lik):
    return prior * lik


twice = bayes_update(bayes_update(prior_probs, likelihood[:, 6]), likelihood[:, 3])
at_once = bayes_update(prior_probs, likelihood[:, 6] * likelihood[:, 3])
"""),
    3: ("sigma_x left out of the posterior precision: S = (I + W^T W)^-1", """
import math


def lg_posterior(W, b, sigma_x, x):
    S = torch.linalg.inv(torch.eye(W.shape[1], dtype=W.dtype) + W.T @ W)
    m = (x - b) @ W @ S / sigma_x**2
    return m, S


def lg_log_evidence(W, b, sigma_x, x):
    C = W @ W.T + sigma_x**2 * torch.eye(W.shape[0], dtype=W.dtype)
    r = x - b
    return -0.5 * (W.shape[0] * math.log(2 * math.pi) + torch.linalg.slogdet(C)[1]
                   + (r * torch.linalg.solve(C, r.T).T).sum(-1))
"""),
    4: ("the posterior variance S reported as its standard deviation", """
sigmas_x = (2.0, 1.0, 0.5, 0.25, 0.1)
least_squares = (torch.linalg.inv(W.T @ W) @ W.T @ (x_lg[0] - bias)).item()
means_formula, sds_formula, means_grid, sds_grid = [], [], [], []
for s_x in sigmas_x:
    m_s, S_s = lg_posterior(W, bias, s_x, x_lg)
    _, log_post_s = posterior_on_grid(LinearGaussian(W, bias, sigma=s_x), x_lg, z_grid, dz)
    p_s = log_post_s[:, 0].exp()
    mean_s = (p_s * z_grid[:, 0]).sum() * dz
    means_formula.append(m_s.item())
    sds_formula.append(S_s.item())
    means_grid.append(mean_s.item())
    sds_grid.append(((p_s * (z_grid[:, 0] - mean_s) ** 2).sum() * dz).sqrt().item())
means_formula, sds_formula, means_grid, sds_grid = map(torch.tensor, (means_formula, sds_formula, means_grid, sds_grid))
"""),
    5: ("the covariance taken as the second moment E[z z^T], without subtracting the mean", """
def grid_moments(log_post, z, dv):
    w = log_post.exp() * dv
    w = w / w.sum()
    mean = (w.unsqueeze(-1) * z).sum(0)
    cov = (w[:, None, None] * z.unsqueeze(-1) * z.unsqueeze(-2)).sum(0)
    return mean, cov
"""),
}
