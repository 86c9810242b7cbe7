"""Plausible wrong answers to lesson 09's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the second moment of the means, not their variance: units far from 0 that never move count as active",
        """def count_active_units(mu, threshold):
    activity = mu.pow(2).mean(0)
    return int((activity > threshold).sum())
"""),
    2: ("the gradient of the whole loss, not the distortion alone: the KL reaches the encoder even with sample()",
        """def encoder_gets_gradient(model, x):
    params = list(model.encoder.parameters())
    loss = model.loss_terms(x)["loss"].mean()
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return any(g is not None and g.abs().sum().item() > 0 for g in grads)
"""),
    3: ("the distortion recomputed with F.binary_cross_entropy's default reduction, itself a mean over pixels",
        """@torch.no_grad()
def loss_scales(model, x, seed):
    torch.manual_seed(seed)
    terms = model.loss_terms(x)
    torch.manual_seed(seed)
    q = model.encode(x)
    z = q.rsample()
    distortion = F.binary_cross_entropy(model.decode(z).mean, x)
    rate = kl_divergence(q, model.prior)
    return {"distortion": (terms["distortion"].mean() / distortion).item(),
            "rate": (terms["rate"].mean() / rate.mean()).item()}
"""),
}
