"""Plausible wrong answers to lesson 12's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the standard deviation divided by R instead of R - 1",
        """def snr_by_hand(grads):
    return grads.mean(0).abs() / grads.std(0, unbiased=False)
"""),
    2: ("the weights exponentiated directly: log of the mean of exp(log w), which underflows to log 0 = -inf",
        """def my_iwae(log_w):
    return torch.log(torch.exp(log_w).mean(0))
"""),
    3: ("the log-determinants added to log q instead of subtracted",
        """def flow_draw(encoding, h, eps):
    d = encoding.latent_dim
    mu, logvar = h[:, :d], h[:, d:2 * d]
    z = mu + torch.exp(0.5 * logvar) * eps
    log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    for layer in encoding.transforms(h):
        s, t = layer.scale_shift(layer.mask * z)
        z = z * torch.exp(s) + t
        log_q = log_q + s.sum(-1)
    return z, log_q
"""),
}
