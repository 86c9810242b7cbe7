"""Plausible wrong answers to lesson 05's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the mixture fitted to the AE's test codes z_ae instead of its training codes", """from sklearn.mixture import GaussianMixture

mixture = GaussianMixture(n_components=10, random_state=0).fit(z_ae.double().numpy())
z_mixture = torch.from_numpy(mixture.sample(n_draws)[0]).float()
mixture_p, mixture_r = precision_recall(z_ae[:n_draws], z_mixture)
"""),
    2: ("exp(logvar) used as the standard deviation (the log-variance read as log sigma)", """with torch.no_grad():
    mu_1k, logvar_1k = vae.encoder_params(x_test[:2000])
    eps = torch.randn(1000, 2, generator=torch.Generator().manual_seed(0))
    at_mean = vae.decode(mu_1k).mean.flatten(1)
    at_draw = vae.decode(mu_1k[:1000] + torch.exp(logvar_1k[:1000]) * eps).mean.flatten(1)
within = (at_draw - at_mean[:1000]).abs().mean().item()
between = (at_mean[1000:] - at_mean[:1000]).abs().mean().item()
"""),
    3: ("the nearest neighbour skipped, as if each test code were among the training codes", """def my_knn_accuracy(train_codes, train_labels, test_codes, test_labels, k):
    order = torch.cdist(test_codes, train_codes).argsort(dim=1)[:, 1:k + 1]
    votes = torch.nn.functional.one_hot(train_labels[order], int(train_labels.max()) + 1).sum(1)
    return (votes.argmax(1) == test_labels).float().mean().item()
"""),
    4: ("the distortion decoded at the mean mu of q(z|x) instead of at a draw from it", """def vae_terms(model, x):
    q = model.encode(x)
    z = q.mean
    distortion = -model.decode(z).log_prob(x)
    rate = 0.5 * (q.logvar.exp() + q.mu ** 2 - 1 - q.logvar).sum(-1)
    return distortion.mean(), rate.mean()


def ae_loss(model, x):
    return -model.decode(model.encode(x)).log_prob(x).mean()
"""),
}
