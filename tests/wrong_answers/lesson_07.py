"""Plausible wrong answers to the exercises of lesson 07: each must run and fail its exercise's check."""

WRONG = {
    1: ('the absolute value of the mean signed change, in place of the mean of the absolute changes', '''
@torch.no_grad()
def pixel_change(model, z, unit):
    low, high = z.clone(), z.clone()
    low[:, unit], high[:, unit] = -2.0, 2.0
    return (model.decode(high).mean - model.decode(low).mean).mean().abs().item()


mu_ex, _ = encode_dataset(models[10.0], x_test[:100])
activity_10 = unit_activity(runs[10.0]["mu"])
change_most = pixel_change(models[10.0], mu_ex, int(activity_10.argmax()))
change_least = pixel_change(models[10.0], mu_ex, int(activity_10.argmin()))
'''),
    2: ("sigma left unscaled: the 2 log c forgotten in the log-variance's bias", '''
import copy

rescaled = copy.deepcopy(models[0.1])
mean_01, cov_01 = aggregate_moments(runs[0.1]["mu"], runs[0.1]["logvar"])
c = 1 / (cov_01.diag()).sqrt()
with torch.no_grad():
    enc, dec = rescaled.encoder[-1], rescaled.decoder[0]
    d = rescaled.latent_dim
    enc.weight[:d] *= c[:, None]
    enc.bias[:d] = c * (enc.bias[:d] - mean_01)
    dec.bias += dec.weight @ mean_01
    dec.weight /= c
'''),
    3: ("the floor applied to each example's KL, not to the dimension's batch mean", '''
def free_bits_rate(kl, floor):
    return kl.clamp(min=floor).sum(-1)
'''),
    4: ('the average of the N log-densities in place of the log of the average density', '''
def log_qbar(z, mu, logvar):
    std = torch.exp(0.5 * logvar)
    return torch.distributions.Normal(mu, std).log_prob(z[:, None, :]).sum(-1).mean(1)
'''),
}
