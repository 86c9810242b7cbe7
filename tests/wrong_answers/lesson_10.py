"""Plausible wrong answers to lesson 10's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the label put before z in the decoder's input, [e_y, z] instead of [z, e_y]", """def cvae_terms(model, x, y):
    e_y = torch.nn.functional.one_hot(y, model.num_classes).to(x.dtype)
    mu, logvar = model.encoder(torch.cat([x.flatten(1), e_y], 1)).chunk(2, dim=1)
    z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
    logits = model.decoder(torch.cat([e_y, z], 1))
    distortion = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, x.flatten(1), reduction="none").sum(1)
    rate = 0.5 * (logvar.exp() + mu ** 2 - 1 - logvar).sum(1)
    return distortion, rate
"""),
    2: ("the digit encoded with each target label instead of its own, so the code changes with the label", """with torch.no_grad():
    z_style = cvae.encode(x_test[5:6], y_test[5:6]).mean
    redrawn = torch.cat([cvae.decode(cvae.encode(x_test[5:6], torch.tensor([c])).mean, torch.tensor([c])).mean
                         for c in range(10)])
"""),
    3: ("log p(x|c) + log p(c) taken as the log-posterior, without dividing by p(x)", """columns = []
for c in range(10):
    torch.manual_seed(c)
    columns.append(log_likelihood_given(cvae, x_eval[:200], torch.full((200,), c), k=50))
log_px_given = torch.stack(columns, dim=1)
log_posterior = log_px_given + math.log(1 / 10)
bayes_accuracy = (log_posterior.argmax(1) == y_eval[:200]).float().mean().item()
"""),
}
