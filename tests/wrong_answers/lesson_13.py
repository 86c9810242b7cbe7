"""Plausible wrong answers to lesson 13's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the VampPrior counted as if its components' means and log-variances were its parameters, 2 K d_z",
        """def prior_parameters(kind, K, d_z, d_x):
    if kind == "mixture":
        return K + 2 * K * d_z
    return 2 * K * d_z
"""),
    2: ("the log-densities of the components averaged, the log of their geometric mean, instead of the log of "
        "their average",
        """def vamp_log_prob(encoder, u, z):
    mu, logvar = encoder(u.flatten(1)).chunk(2, dim=-1)
    log_normal = -0.5 * (((z[:, None, :] - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)
    return log_normal.mean(dim=1)
"""),
    3: ("the weighted densities summed as they are and only then logged: far from the components every density "
        "underflows to 0 and the log is -inf",
        """def mixture_log_prob(logits, mu, logvar, z):
    weights = torch.softmax(logits, dim=0)
    log_normal = -0.5 * (((z[:, None, :] - mu) ** 2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(-1)
    return torch.log((weights * log_normal.exp()).sum(dim=1))
"""),
}
