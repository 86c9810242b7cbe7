"""Plausible wrong answers to lesson 11's exercises: each must run and fail its exercise's check."""

WRONG = {
    1: ("the pixel itself counted in its own window: j <= i instead of j < i",
        """def window_mask(d_x, L):
    i = torch.arange(d_x)[:, None]
    j = torch.arange(d_x)[None, :]
    return (j <= i) & (j >= i - L)
"""),
    2: ("every pixel drawn from the logits of an empty image, so the pixels come out independent",
        """@torch.no_grad()
def draw(px):
    B = px.batch_shape[0]
    empty = torch.zeros(B, *px.event_shape)
    return torch.bernoulli(torch.sigmoid(px.logits(empty))).view_as(empty)
"""),
    3: ("only the x_i = 1 half of the Bernoulli log-probability: the pixels that are 0 contribute nothing",
        """@torch.no_grad()
def chain_rule_log_prob(px, x):
    flat = x.flatten(1)
    total = torch.zeros(len(x))
    for i in range(flat.shape[1]):
        seen = flat.clone()
        seen[:, i:] = 0
        logit = px.logits(seen.view_as(x))[:, i]
        total += flat[:, i] * torch.nn.functional.logsigmoid(logit)
    return total
"""),
}
