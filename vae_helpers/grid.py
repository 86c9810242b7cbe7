"""Bayes' rule by brute force: the posterior and the evidence on a grid of latent values.

For a latent z of dimension 1 or 2, lay a regular grid z_1..z_G with cell volume dV and evaluate the
log joint log p(x, z_g) = log p(x|z_g) + log p(z_g). Then

    log p(x)  ~= logsumexp_g [log p(x, z_g)] + log dV          (the evidence, a Riemann sum)
    p(z_g|x)  ~= exp(log p(x, z_g) - log p(x))                  (a density on the grid)

which is exact up to the grid's resolution and extent: the reference against which approximate
posteriors q(z|x) and bounds on log p(x) are checked. A posterior far narrower than the prior needs a fine
grid only where it lies: :func:`support_box` finds that region on a coarse grid, and
:func:`posterior_in_boxes` lays one fine grid over each example's region.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Independent

from . import checks


def latent_grid(extent: float = 4.0, n: int = 201, dim: int = 2, dtype=torch.float32):
    """A regular grid on [-extent, extent]^dim: returns (z of shape (n**dim, dim), cell volume dV)."""
    checks.choice("dim", dim, (1, 2))
    checks.integer("n", n, minimum=2)
    checks.number("extent", extent, positive=True)
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch dtype such as torch.float32, got {dtype!r}")
    side = torch.linspace(-extent, extent, n, dtype=dtype)
    step = 2 * extent / (n - 1)
    if dim == 1:
        return side.unsqueeze(-1), step
    z = torch.stack(torch.meshgrid(side, side, indexing="xy"), dim=-1).reshape(-1, 2)
    return z, step ** 2


@torch.no_grad()
def posterior_on_grid(model, x: torch.Tensor, z: torch.Tensor, volume: float, chunk_size: int = 4096):
    """Evidence and posterior of each x on the grid z, for a model with ``decode`` and ``prior``.

    Args:
        x: a batch (B, ...). z: grid points (G, D) and their cell ``volume``, from :func:`latent_grid`.
    Returns:
        ``(log_px, log_post)``: log p(x) of shape (B,) and the log posterior density log p(z_g|x) of
        shape (G, B). For a Bernoulli decoder, log p(x_b|z_g) = sum_i [x_bi l_gi - log(1 + e^{l_gi})] is taken
        as one matrix product over the pixels.
    """
    checks.tensor("z", z, "(G, D)")
    if z.dim() != 2:
        raise ValueError(f"z must be a (G, D) tensor of grid points, got shape {tuple(z.shape)}")
    checks.number("volume", volume, positive=True)
    checks.integer("chunk_size", chunk_size, minimum=1)
    if hasattr(model, "check_images"):  # the course's models: x of their shape and dtype, in [0, 1] for Bernoulli
        model.check_images(x)
    log_joint = torch.cat([_log_likelihood(model, x, zc) + model.prior.log_prob(zc).unsqueeze(1)
                           for zc in z.split(chunk_size)])
    log_px = torch.logsumexp(log_joint, dim=0) + math.log(volume)
    return log_px, log_joint - log_px


def moments_on_grid(log_post: torch.Tensor, z: torch.Tensor, volume):
    """Mean and covariance of each posterior on the grid.

    With weights w_g = p(z_g|x) dV (renormalised to sum to 1), mean = sum_g w_g z_g and
    cov = sum_g w_g (z_g - mean)(z_g - mean)^T. ``log_post`` (G, B) as from :func:`posterior_on_grid`; ``z``
    (G, D) with one cell ``volume``, or one grid per example, z (G, B, D) with volumes (B,). Returns
    mean (B, D) and cov (B, D, D); the marginal standard deviations are ``cov.diagonal(dim1=-2, dim2=-1).sqrt()``.
    """
    log_volume = _check_log_post(log_post, z, volume)
    w = torch.softmax(log_post + log_volume, dim=0)  # (G, B): the grid masses, normalised
    z = z.unsqueeze(1).expand(-1, w.shape[1], -1) if z.dim() == 2 else z  # (G, B, D)
    mean = torch.einsum("gb,gbi->bi", w, z)
    centred = z - mean
    cov = torch.einsum("gb,gbi,gbj->bij", w, centred, centred)
    return mean, cov


def kl_to_posterior_on_grid(q, log_post: torch.Tensor, z: torch.Tensor, volume) -> torch.Tensor:
    """KL(q(z|x) || p(z|x)) ~= sum_g q(z_g|x) [log q(z_g|x) - log p(z_g|x)] dV, one value per example (B,).

    ``q`` is a distribution over z with batch shape (B,), such as ``model.encode(x)``; ``log_post``, ``z``
    and ``volume`` as for :func:`moments_on_grid`. The sum is exact up to the grid's resolution and
    extent, so the grid must cover q's mass, with points no further apart than q's standard deviation.
    """
    log_volume = _check_log_post(log_post, z, volume)
    checks.distribution("q", q)
    if tuple(q.batch_shape) != (log_post.shape[1],):
        raise ValueError(f"q must have batch shape ({log_post.shape[1]},) to match log_post, "
                         f"got {tuple(q.batch_shape)}")
    log_q = q.log_prob(z.unsqueeze(1) if z.dim() == 2 else z)  # (G, B)
    # where q is 0 the term is 0, whatever log p(z|x) is
    terms = torch.where(log_q > -math.inf, log_q.exp() * (log_q - log_post), torch.zeros_like(log_q))
    return (terms * log_volume.exp()).sum(0)


def box_grid(lo, hi, n: int = 61):
    """A regular n x n grid on the box [lo_1, hi_1] x [lo_2, hi_2]: returns (z of shape (n*n, 2), cell volume).

    For a posterior far narrower than the prior: a box around it resolves it with few points. ``lo`` and
    ``hi`` are the box's corners, (2,) tensors; z is ordered as in :func:`latent_grid`, so
    ``z.reshape(n, n, 2)`` is the grid as an image (rows: z_2, columns: z_1).
    """
    lo, hi = torch.as_tensor(lo), torch.as_tensor(hi)
    if lo.shape != (2,) or hi.shape != (2,) or not lo.is_floating_point():
        raise ValueError(f"lo and hi must be floating-point tensors of shape (2,), got {tuple(lo.shape)} "
                         f"and {tuple(hi.shape)}")
    if not (hi > lo).all():
        raise ValueError(f"hi must exceed lo in both coordinates, got lo={lo.tolist()} and hi={hi.tolist()}")
    checks.integer("n", n, minimum=2)
    side = torch.linspace(0, 1, n, dtype=lo.dtype)
    unit = torch.stack(torch.meshgrid(side, side, indexing="xy"), dim=-1).reshape(-1, 2)
    return lo + unit * (hi - lo).to(lo.dtype), ((hi - lo) / (n - 1)).prod().item()


def support_box(log_post: torch.Tensor, z: torch.Tensor, within: float = 30.0, pad: float = 0.0):
    """The smallest box holding every grid point where the posterior is within ``within`` nats of its peak.

    For each example b, with S_b = {z_g : log p(z_g|x_b) >= max_g log p(z_g|x_b) - within}, returns
    ``(lo, hi)``, each (B, D): lo = min over S_b of z_g - pad, hi = max over S_b of z_g + pad, per coordinate.
    ``log_post`` (G, B) as from :func:`posterior_on_grid` (any log density up to a constant per example
    will do), ``z`` (G, D) its grid. Outside the box the density on the grid is below e^-within of its peak.
    """
    checks.tensor("log_post", log_post, "(G, B)")
    if log_post.dim() != 2:
        raise ValueError(f"log_post must be a (G, B) tensor as posterior_on_grid returns, got shape "
                         f"{tuple(log_post.shape)}")
    checks.tensor("z", z, f"({log_post.shape[0]}, D)")
    if z.dim() != 2 or z.shape[0] != log_post.shape[0]:
        raise ValueError(f"z must hold the grid's {log_post.shape[0]} points, shape ({log_post.shape[0]}, D), "
                         f"got {tuple(z.shape)}")
    checks.number("within", within, positive=True)
    checks.number("pad", pad, minimum=0.0)
    inside = log_post >= log_post.max(0).values - within  # (G, B)
    big = torch.tensor(math.inf, dtype=z.dtype)
    zb = z.unsqueeze(1)                                    # (G, 1, D) against inside (G, B, 1)
    lo = torch.where(inside.unsqueeze(-1), zb, big).amin(0)
    hi = torch.where(inside.unsqueeze(-1), zb, -big).amax(0)
    return lo - pad, hi + pad


@torch.no_grad()
def posterior_in_boxes(model, x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, n: int = 61,
                       chunk_size: int = 4096):
    """Evidence and posterior of each x_b on its own n x n grid over the box [lo_b, hi_b] (:func:`box_grid`).

    Args:
        x: a batch (B, ...). lo, hi: the boxes' corners, (B, 2). n: points per side, G = n * n.
    Returns:
        ``(log_px, log_post, z, volume)``: log p(x_b) (B,), log p(z_gb|x_b) (G, B), the grids z (G, B, 2) and
        their cell volumes (B,), the shapes that :func:`moments_on_grid` and :func:`kl_to_posterior_on_grid`
        take for one grid per example.
    """
    checks.tensor("lo", lo, "(B, 2)")
    checks.tensor("hi", hi, "(B, 2)")
    if lo.shape != (len(x), 2) or hi.shape != (len(x), 2):
        raise ValueError(f"lo and hi must be ({len(x)}, 2) tensors, one box per example of x, got "
                         f"{tuple(lo.shape)} and {tuple(hi.shape)}")
    grids = [box_grid(lo[b], hi[b], n=n) for b in range(len(x))]
    parts = [posterior_on_grid(model, x[b:b + 1], zb, vb, chunk_size=chunk_size) for b, (zb, vb) in enumerate(grids)]
    return (torch.cat([lp for lp, _ in parts]), torch.cat([lpz for _, lpz in parts], dim=1),
            torch.stack([zb for zb, _ in grids], dim=1), torch.tensor([vb for _, vb in grids], dtype=lo.dtype))


def _log_likelihood(model, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """log p(x_b | z_g) for every grid point z_g (G, D) and example x_b (B, ...): shape (G, B)."""
    p = model.decode(z.unsqueeze(1))  # batch shape (G, 1), to broadcast against x (B, ...)
    base = p.base_dist if isinstance(p, Independent) else None
    if isinstance(base, Bernoulli) and tuple(x.shape[1:]) == tuple(p.event_shape):
        # log Bernoulli(x; sigmoid(l)) = sum_i [x_i l_i - log(1 + e^{l_i})]: one matrix product over the pixels,
        # instead of a (G, B, pixels) tensor of terms
        logits = base.logits.reshape(len(z), -1)
        return logits @ x.reshape(len(x), -1).to(logits.dtype).T - F.softplus(logits).sum(-1, keepdim=True)
    return p.log_prob(x)


# --- argument checks -----------------------------------------------------------------------------------


def _check_log_post(log_post, z, volume) -> torch.Tensor:
    """Check a grid posterior, its grid and cell volume; return the log cell volume, a float or a (B,) tensor."""
    checks.tensor("log_post", log_post, "(G, B)")
    if log_post.dim() != 2:
        raise ValueError(f"log_post must be a (G, B) tensor as posterior_on_grid returns, got shape "
                         f"{tuple(log_post.shape)}")
    G, B = log_post.shape
    checks.tensor("z", z, f"({G}, D) or ({G}, {B}, D)")
    if z.shape[:-1] not in ((G,), (G, B)):
        raise ValueError(f"z must hold the grid's {G} points, shape ({G}, D) for one grid or ({G}, {B}, D) for one "
                         f"grid per example, got {tuple(z.shape)}")
    volume = torch.as_tensor(volume, dtype=log_post.dtype)
    if volume.shape not in ((), (B,)) or not (volume > 0).all():
        raise ValueError(f"volume must be a positive number or a ({B},) tensor of them, got {volume!r}")
    return volume.log()
