"""Plausible wrong answers to the exercises of lesson 06; each must fail its exercise's check."""

WRONG = {
    1: ("the beta of section 2's pixel mean, 784, forgetting that the KL is now averaged over the latents too", """
def all_means_loss(model, x):
    mu, logvar = model.encoder_params(x)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = model.decoder(z).view_as(x)
    kl_per_latent = 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)
    return F.binary_cross_entropy_with_logits(logits, x) + kl_per_latent.mean()


hidden_beta = 784.0
"""),
    2: ("the KL in the wrong direction, KL(p(z) || q(z|x))", """
def vae_loss(model, x):
    q = model.encode(x)
    z = q.rsample()
    distortion = -model.decode(z).log_prob(x)
    rate = kl_divergence(model.prior, q)
    return (distortion + rate).mean()
"""),
    3: ("the log of the sum of the weights, without subtracting log k", """
def iwae_k(model, x, k):
    q = model.encode(x)
    z = q.rsample((k,))
    log_w = model.decode(z).log_prob(x) + model.prior.log_prob(z) - q.log_prob(z)
    return torch.logsumexp(log_w, dim=0)
"""),
    4: ("the standard deviation of each class's gaps given as its standard error (no division by the square root of n)", """
torch.manual_seed(0)
with torch.no_grad():
    elbo_1000 = elbo(vae, x_test[:1000], k=10)
gaps = pd.Series((-nll_ours - elbo_1000).numpy()).groupby(y_test[:1000].numpy())
by_class = pd.DataFrame({"mean": gaps.mean(), "se": gaps.std(), "n": gaps.count()})
order = by_class.sort_values("mean")
lowest = int(order.index[0])
lowest_is_clear = bool(order["mean"].iloc[1] - order["mean"].iloc[0]
                       > 2 * math.hypot(order["se"].iloc[0], order["se"].iloc[1]))
top_is_clear = bool(order["mean"].iloc[-1] - order["mean"].iloc[-2]
                    > 2 * math.hypot(order["se"].iloc[-1], order["se"].iloc[-2]))
"""),
}
