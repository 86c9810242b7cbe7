"""A VAE trained on the importance-weighted bound IWAE_k instead of the ELBO (Burda et al., 2016).

With k draws z_i ~ q_phi(z|x) and log-weights log w_i = log p_theta(x|z_i) + log p(z_i) - log q_phi(z_i|x),

    loss(x) = -IWAE_k(x) = -(logsumexp_i log w_i - log k),      (B,) per example, averaged over the batch,

``objectives.iwae_objective``. k = 1 is the VAE's own loss at β = 1 with the rate estimated at the draw.
With ``gradient="dreg"`` the value is the same and the gradient for q's parameters is the doubly
reparameterized one (``objectives.dreg_objective``, Tucker et al., 2019).

The logged terms keep their meaning from ``VAE``: ``rate`` is KL(q_phi(z|x) || p(z)) (closed form for the
diagonal Gaussian), ``distortion`` -log p_theta(x|z) averaged over the k draws, ``elbo`` = -(distortion +
rate); ``iwae`` is IWAE_k itself, the bound training climbs.
"""
from __future__ import annotations

import torch

from . import checks, divergences, objectives
from .estimators import log_px_given_z
from .divergences import sample_with_log_prob
from .lightning import drawn_codes
from .models import VAE

#: how the gradient of IWAE_k is computed: by autograd through the reparameterized draws, or DReG
GRADIENTS = ("iwae", "dreg")


class IWAEVAE(VAE):
    """``VAE`` whose training loss is -IWAE_k (``k`` draws per example); every other argument as ``VAE``'s.

    β, KL warm-up and free bits belong to the ELBO's split into distortion and rate and have no meaning for
    IWAE_k, so they are refused.
    """

    terms = ("loss", "elbo", "iwae", "rate", "distortion")

    def __init__(self, k: int = 5, gradient: str = "iwae", **vae_kwargs):
        k = checks.integer("k", k)
        checks.choice("gradient", gradient, GRADIENTS)
        for name, neutral in (("beta", 1.0), ("warmup_steps", 0), ("free_bits", 0.0)):
            if vae_kwargs.get(name, neutral) != neutral:
                raise ValueError(f"{name} changes the ELBO's weighting of the rate and has no meaning for IWAE_k; "
                                 f"got {name}={vae_kwargs[name]!r}")
        super().__init__(**vae_kwargs)
        self.k, self.gradient = k, gradient

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        q = self.encode(x)
        if self.gradient == "dreg":
            iwae = objectives.dreg_objective(self, x, self.k, q=q)
            with torch.no_grad():  # the logged distortion, from fresh draws (DReG's own are inside it)
                z = q.sample((self.k,))
                distortion = -log_px_given_z(self, x, z).mean(0)
        else:
            z, log_q = sample_with_log_prob(q, (self.k,))        # (k, B, D), reparameterized
            with drawn_codes(self):
                log_px_z = self.decode(z).log_prob(x)            # (k, B)
            log_w = log_px_z + self.prior.log_prob(z) - log_q
            iwae = objectives.iwae_objective(log_w)
            distortion = -log_px_z.mean(0)
        rate = divergences.kl(q, self.prior, z[0]).detach()  # logged only: the loss is -IWAE_k
        return {"loss": -iwae, "elbo": -(distortion.detach() + rate), "iwae": iwae.detach(), "rate": rate,
                "distortion": distortion.detach()}
