"""An autoregressive likelihood over pixels: p(x | h) = prod_i p(x_i | x_<i, h), with a masked network (MADE).

The d_x pixels of an image are taken in raster order, x_0, ..., x_{d_x-1}. Each is a Bernoulli whose logit l_i
depends only on the pixels before it (and on a context h, computed from z by a decoder, when there is one):

    log p(x | h) = sum_i [ x_i l_i - log(1 + exp(l_i)) ],      l_i = l_i(x_<i, h).

One masked network computes all d_x logits in one pass (Germain et al., 2015, "MADE"): with x (..., d_x),

    a      = (U * M_in) x + b + h_hidden                     (..., H)   hidden unit k sees pixels j <= m_k
    l      = (V * M_out) relu(a) + (A * M_direct) x + c + h_out   (..., d_x)   output i sees units with m_k < i

where m_k is hidden unit k's degree (a pixel index). Output i then depends on x_j only for j < i: the
masks are what makes the product of conditionals a normalized distribution, log_prob one pass, and
sampling d_x passes (pixel i can only be drawn once x_<i is known). The direct term (A * M_direct) x is a
masked linear map from the pixels to the logits (also in MADE); it guarantees that each pixel sees its
immediate predecessors whatever the hidden degrees are.

With a ``window`` L, pixel i sees only x_{i-L}, ..., x_{i-1}: a decoder that cannot model an image's
global shape from its own earlier pixels, and so has a reason to read z.

``AutoregressiveLikelihood`` is the part a ``VAE`` takes as ``likelihood=``: it maps the decoder's output h
(..., H + d_x) to the distribution ``AutoregressiveBernoulli``. ``AutoregressiveModel`` is the same network
with no z at all, a model of p(x) trained by maximum likelihood.
"""
from __future__ import annotations

import hashlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

from . import checks
from .lightning import LatentVariableModule


class MaskedLinear(nn.Linear):
    """y = (weight * M) x + bias: a linear layer whose weight (out, in) is multiplied by a fixed 0/1 mask M (out, in)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor, bias: bool = True):
        super().__init__(in_features, out_features, bias=bias)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def made_masks(input_dim: int, hidden: int, window: int | None = None):
    """The three masks of a one-hidden-layer MADE over ``input_dim`` = d_x pixels in raster order.

    Hidden unit k gets the degree m_k = floor(k (d_x - 1) / H) in {0, ..., d_x - 2}, spread evenly. Returns
    (M_in (H, d_x), M_out (d_x, H), M_direct (d_x, d_x)), with entries

        M_in[k, j] = [j <= m_k],   M_out[i, k] = [m_k < i],   M_direct[i, j] = [j < i],

    and with a window L: M_in[k, j] = [m_k - a < j <= m_k], M_out[i, k] = [i - b <= m_k < i], M_direct[i, j] =
    [i - L <= j < i], where a = ceil(L / 2) and b = L + 1 - a, so that a path j -> k -> i has i - L <= j < i.
    """
    input_dim = checks.integer("input_dim", input_dim, minimum=2)
    hidden = checks.integer("hidden", hidden)
    window = _check_window(window, input_dim)
    degrees = torch.arange(hidden) * (input_dim - 1) // hidden          # m_k, (H,)
    j = torch.arange(input_dim)                                         # pixel indices, (d_x,)
    m_in = j[None, :] <= degrees[:, None]                               # (H, d_x)
    m_out = degrees[None, :] < j[:, None]                               # (d_x, H)
    m_direct = j[None, :] < j[:, None]                                  # (d_x, d_x): input j < output i
    if window is not None:
        a = (window + 1) // 2
        b = window + 1 - a
        m_in &= j[None, :] > degrees[:, None] - a
        m_out &= degrees[None, :] >= j[:, None] - b
        m_direct &= j[None, :] >= j[:, None] - window
    return m_in.float(), m_out.float(), m_direct.float()


class MADE(nn.Module):
    """The masked network: pixels x (..., d_x) and an optional context h (..., H + d_x) -> logits l (..., d_x).

    l_i depends on x_j only for j < i (and i - L <= j with a ``window`` L). The first H entries of the
    context are added to the hidden layer, the last d_x to the logits; x and h broadcast against each other,
    so one batch of images can be scored under k contexts each (k draws of z) without copying the images.
    """

    def __init__(self, input_dim: int = 784, hidden: int = 500, context: bool = True, window: int | None = None):
        super().__init__()
        m_in, m_out, m_direct = made_masks(input_dim, hidden, window)
        self.input_dim, self.hidden, self.window = input_dim, hidden, window
        self.context_dim = hidden + input_dim if checks.flag("context", context) else 0
        self.inner = MaskedLinear(input_dim, hidden, m_in)
        self.outer = MaskedLinear(hidden, input_dim, m_out)
        self.direct = MaskedLinear(input_dim, input_dim, m_direct, bias=False)

    def extra_repr(self) -> str:
        return f"window={self.window}, context_dim={self.context_dim}"

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        a = self.inner(x)                                      # (..., H): unit k sees pixels j <= m_k
        if context is not None:
            a = a + context[..., : self.hidden]                # z enters every hidden unit...
        logits = self.outer(torch.relu(a)) + self.direct(x)    # (..., d_x): output i sees units with m_k < i
        if context is not None:
            logits = logits + context[..., self.hidden:]       # ...and every logit directly
        return logits


class AutoregressiveBernoulli(Distribution):
    """p(x | h) = prod_i Bernoulli(x_i; sigmoid(l_i(x_<i, h))) over images of shape ``input_shape``.

    ``context`` h has shape (*batch_shape, H + d_x), or is None for a model of x alone (batch shape ()).
    ``log_prob(x)`` runs the network once on x; ``sample()`` draws the d_x pixels one after the other,
    running the network once per pixel. The marginal mean of a pixel has no closed form here (it is an
    average over all earlier pixels), so ``mean`` is not offered: look at draws instead.
    """

    arg_constraints: dict = {}
    support = constraints.independent(constraints.boolean, 3)
    has_rsample = False

    def __init__(self, network: MADE, context: torch.Tensor | None, input_shape=(1, 28, 28)):
        self.network, self.context, self.input_shape = network, context, tuple(input_shape)
        batch_shape = context.shape[:-1] if context is not None else torch.Size()
        super().__init__(batch_shape, torch.Size(self.input_shape), validate_args=False)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """l_i(x_<i, h) for every pixel at once: images (..., *input_shape) -> (..., d_x)."""
        return self.network(x.flatten(-len(self.input_shape)), self.context)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """sum_i x_i l_i - log(1 + exp(l_i)): images (..., *input_shape) -> (broadcast of ... and batch_shape)."""
        flat = x.flatten(-len(self.input_shape))
        logits = self.network(flat, self.context)
        return (flat * logits - F.softplus(logits)).sum(-1)

    @torch.no_grad()
    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """Ancestral sampling: x_0 ~ p(x_0 | h), then x_1 ~ p(x_1 | x_0, h), ..., one network pass per pixel.

        Returns (*sample_shape, *batch_shape, *input_shape), with values in {0, 1}.
        """
        shape = torch.Size(sample_shape) + self.batch_shape
        context = None if self.context is None else self.context.expand(*shape, self.context.shape[-1])
        weight = self.network.inner.weight
        x = torch.zeros(*shape, self.network.input_dim, dtype=weight.dtype, device=weight.device)
        for i in range(self.network.input_dim):
            # the logit of pixel i reads only x_0..x_{i-1}, which are already drawn; later entries are still 0
            logit = self.network(x, context)[..., i]
            x[..., i] = torch.bernoulli(torch.sigmoid(logit))
        return x.view(*shape, *self.input_shape)

    @property
    def mean(self):
        raise NotImplementedError("an autoregressive p(x|z) has no closed-form mean (each pixel's mean averages over "
                                  "all earlier pixels); draw images with .sample() instead")


class AutoregressiveLikelihood(nn.Module):
    """The likelihood part for ``VAE(likelihood=...)``: the decoder's output h (..., H + d_x) -> p(x | z).

    The VAE's decoder must map z (..., d_z) to ``context_dim`` = H + d_x numbers (see ``context_decoder``).
    """

    unit_interval = True

    def __init__(self, input_shape=(1, 28, 28), hidden: int = 500, window: int | None = None):
        super().__init__()
        self.input_shape = checks.sizes("input_shape", input_shape, "(1, 28, 28)")
        hidden = checks.integer("hidden", hidden)
        self.made = MADE(math.prod(self.input_shape), hidden, context=True, window=window)
        self.context_dim = self.made.context_dim

    def forward(self, h: torch.Tensor) -> AutoregressiveBernoulli:
        if h.shape[-1] != self.context_dim:
            raise ValueError(f"the decoder's output must have {self.context_dim} = hidden + pixels entries in its last "
                             f"dimension, got shape {tuple(h.shape)}")
        return AutoregressiveBernoulli(self.made, h, self.input_shape)


def context_decoder(latent_dim: int, likelihood: AutoregressiveLikelihood, hidden: int = 256) -> nn.Sequential:
    """An MLP z (..., d_z) -> h (..., H + d_x), the context that ``likelihood`` reads: d_z -> hidden -> H + d_x."""
    latent_dim, hidden = checks.integer("latent_dim", latent_dim), checks.integer("hidden", hidden)
    if not isinstance(likelihood, AutoregressiveLikelihood):
        raise TypeError(f"likelihood must be an AutoregressiveLikelihood, got {type(likelihood).__name__}")
    return nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, likelihood.context_dim))


class AutoregressiveModel(LatentVariableModule):
    """p(x) = prod_i p(x_i | x_<i), the MADE with no latent code, trained on loss(x) = -log p(x) (B,), in nats."""

    architecture = ("hidden", "window", "input_shape")

    def __init__(self, hidden: int = 500, window: int | None = None, lr: float = 1e-3, input_shape=(1, 28, 28)):
        hidden = checks.integer("hidden", hidden)
        lr = checks.native(lr)
        checks.number("lr", lr, positive=True)
        input_shape = checks.sizes("input_shape", input_shape, "(1, 28, 28)")
        super().__init__(input_shape, lr)
        self.save_hyperparameters()
        self.made = MADE(self.input_dim, hidden, context=False, window=window)

    def distribution(self) -> AutoregressiveBernoulli:
        """p(x), batch shape (), event shape input_shape."""
        return AutoregressiveBernoulli(self.made, None, self.input_shape)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x), exact: images (B, *input_shape) -> (B,), in nats."""
        self.check_images(x)
        return self.distribution().log_prob(x)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"loss": -self.log_prob(x)}

    def sample(self, n: int) -> torch.Tensor:
        """n images drawn pixel by pixel: (n, *input_shape), values in {0, 1}."""
        n = checks.integer("n", n)
        return self.distribution().sample((n,))


def warm_start(made: MADE, source: MADE) -> str:
    """Copy the weights and offsets of ``source`` into ``made`` (both MADEs over the same pixels with the same
    hidden width), keeping ``made``'s own masks, so a windowed MADE starts from a full one's weights restricted
    to its window. Returns a fingerprint of the copied weights (12 hex digits).

    ``fit_cached`` keys a model by its settings, not its starting weights; keep the models trained from these
    weights in a cache folder named by the fingerprint, so that they are never confused with models trained
    from a random start, or from other weights.
    """
    for name, value in (("made", made), ("source", source)):
        if not isinstance(value, MADE):
            raise TypeError(f"{name} must be a MADE, got {type(value).__name__}")
    if (made.input_dim, made.hidden) != (source.input_dim, source.hidden):
        raise ValueError(f"made and source must have the same pixels and hidden width, got {made.input_dim} x "
                         f"{made.hidden} and {source.input_dim} x {source.hidden}")
    digest = hashlib.sha1()
    with torch.no_grad():
        for name, param in source.named_parameters():
            made.get_parameter(name).copy_(param)
            digest.update(param.detach().cpu().numpy().tobytes())
    return digest.hexdigest()[:12]


def _check_window(window, input_dim: int) -> int | None:
    if window is None:
        return None
    if not checks.is_int(window) or not 1 <= window <= input_dim - 1:
        raise ValueError(f"window must be None (every earlier pixel) or an integer in [1, {input_dim - 1}] (how many "
                         f"earlier pixels each pixel sees), got {window!r}")
    return int(window)
