"""The figures the lessons draw, with seaborn and matplotlib.

Every function draws on an ``ax`` it is given (or a new one) and returns the axes, so a notebook can
lay several side by side. Images are (N, 1, H, W) tensors in [0, 1].
"""
from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.patches import Ellipse
from torchvision.utils import make_grid

from . import checks

DIGIT_PALETTE = "tab10"


def set_style(dpi: int = 80) -> None:
    """The course's look: seaborn's whitegrid theme and a modest resolution that keeps notebooks light."""
    dpi = checks.integer("dpi", dpi)
    sns.set_theme(context="notebook", style="whitegrid")
    plt.rcParams.update({"figure.dpi": dpi, "savefig.dpi": dpi, "figure.figsize": (5, 4)})


#: how far outside [0, 1] shown values may lie and be clipped: a Gaussian decoder's means overshoot a little
#: (lesson 09's reach [-0.6, 1.8]); grey values in [0, 255] lie far beyond
CLIP_MARGIN = 1.0


def show_images(images: torch.Tensor, nrow: int = 10, ax=None, title: str | None = None):
    """A grid of images (N, C, H, W) with values in [0, 1], drawn with ``torchvision.utils.make_grid``.

    Values up to ``CLIP_MARGIN`` outside [0, 1] (the means of a Gaussian p(x|z)) are clipped to it; values
    further out (grey values in [0, 255], say), NaN and infinities are refused.
    """
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or images.shape[1] not in (1, 3) or not len(images):
        raise ValueError(f"images must be a tensor of shape (N, C, H, W) with N >= 1 and C = 1 or 3, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    _check_pixels(images)
    nrow = checks.integer("nrow", nrow)
    ax = _ax(ax)
    grid = make_grid(images.detach().cpu().float().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_reconstructions(x: torch.Tensor, x_hat: torch.Tensor, n: int = 10, ax=None, title: str | None = None):
    """Inputs (top row) above their reconstructions (bottom row)."""
    checks.tensor("x", x, "(N, C, H, W)", floating=False)
    checks.tensor("x_hat", x_hat, "(N, C, H, W)", floating=False)
    n = checks.integer("n", n)
    if x.shape != x_hat.shape:
        raise ValueError(f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}")
    return show_images(torch.cat([x[:n], x_hat[:n]]), nrow=min(n, len(x)), ax=ax,
                       title=title or "inputs (top) and reconstructions (bottom)")


def plot_latent(z: torch.Tensor, labels: torch.Tensor | None = None, ax=None, title: str | None = None,
                s: float = 6, alpha: float = 0.6):
    """A scatter of 2-D codes z (N, 2), coloured by digit label if given."""
    z = _numpy(z)
    if z.ndim != 2 or z.shape[1] != 2:
        raise ValueError(f"z must have shape (N, 2), got {z.shape}")
    checks.matrix("z", z)  # finite: a NaN code would vanish from the scatter without a word
    _check_labels(labels, len(z))
    ax = _ax(ax)
    hue = None if labels is None else _numpy(labels)
    sns.scatterplot(x=z[:, 0], y=z[:, 1], hue=hue, palette=DIGIT_PALETTE if hue is not None else None,
                    s=s, alpha=alpha, linewidth=0, ax=ax, legend=hue is not None)
    if hue is not None:
        ax.legend(title="digit", loc="center left", bbox_to_anchor=(1, 0.5), markerscale=2, frameon=False)
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title)
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def plot_encodings(mu: torch.Tensor, logvar: torch.Tensor, labels: torch.Tensor | None = None, ax=None,
                   n_std: float = 1.0, title: str | None = None):
    """Each q(z|x) = N(mu, diag exp(logvar)) drawn as an ellipse of ``n_std`` standard deviations."""
    mu, std = _numpy(mu), np.exp(0.5 * _numpy(logvar))
    if mu.ndim != 2 or mu.shape[1] != 2 or std.shape != mu.shape:
        raise ValueError(f"mu and logvar must both have shape (N, 2), got {mu.shape} and {std.shape}")
    checks.matrix("mu", mu)  # finite, as in plot_latent
    checks.matrix("logvar", _numpy(logvar))
    _check_labels(labels, len(mu))
    n_std = checks.number("n_std", n_std, positive=True)
    ax = _ax(ax)
    colors = sns.color_palette(DIGIT_PALETTE, 10)
    for i in range(len(mu)):
        color = colors[int(labels[i]) % 10] if labels is not None else "C0"
        ax.add_patch(Ellipse(mu[i], 2 * n_std * std[i, 0], 2 * n_std * std[i, 1], facecolor=color,
                             edgecolor=color, alpha=0.25, linewidth=0.5))
    lo, hi = (mu - n_std * std).min(0), (mu + n_std * std).max(0)
    ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), xlabel="$z_1$", ylabel="$z_2$", title=title)
    ax.set_aspect("equal", adjustable="box")  # keep the limits just set; "datalim" would override them
    return ax


@torch.no_grad()
def plot_manifold(decode, extent: float = 3.0, n: int = 15, ax=None, title: str | None = None):
    """Decode an n x n grid of 2-D codes in [-extent, extent]^2 and tile the images in place.

    ``decode`` maps codes (M, 2) to p(x|z) (a distribution whose ``.mean`` is an image) or to images.
    """
    if not callable(decode) or isinstance(decode, torch.nn.Module) and hasattr(decode, "decode"):
        raise TypeError(f"decode must be a function from codes (M, 2) to images, e.g. model.decode, "
                        f"got {type(decode).__name__}")
    extent = checks.number("extent", extent, positive=True)
    n = checks.integer("n", n)
    ax = _ax(ax)
    side = torch.linspace(-extent, extent, n)
    z = torch.stack(torch.meshgrid(side, side.flip(0), indexing="xy"), -1).reshape(-1, 2)
    out = decode(z)
    images = out.mean if hasattr(out, "mean") and not isinstance(out, torch.Tensor) else out
    if not isinstance(images, torch.Tensor) or images.dim() != 4 or len(images) != n * n:
        raise ValueError(f"decode must return {n * n} images (M, C, H, W) for {n * n} codes, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    grid = make_grid(images.cpu().clamp(0, 1), nrow=n, padding=0)
    ax.imshow(grid.permute(1, 2, 0).numpy(), extent=(-extent, extent, -extent, extent), cmap="gray")
    ax.set(xlabel="$z_1$", ylabel="$z_2$", title=title or "decoded grid of codes")
    return ax


def plot_history(history, metrics, ax=None, title: str | None = None):
    """Training curves: each column in ``metrics`` of a :func:`vae_helpers.training.fit` history vs step."""
    if not isinstance(history, pd.DataFrame) or "step" not in history.columns:
        raise TypeError(f"history must be the DataFrame that fit returns, with a 'step' column, got "
                        f"{type(history).__name__}")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    if not metrics:
        raise ValueError("metrics must name at least one column of the history, such as 'val/elbo'")
    missing = [m for m in metrics if m not in history.columns]
    if missing:
        raise ValueError(f"metrics {missing} are not in the history; it has {sorted(history.columns)}")
    ax = _ax(ax)
    for m in metrics:
        rows = history.dropna(subset=[m])
        sns.lineplot(x=rows["step"], y=rows[m], ax=ax, label=m, marker="o" if len(rows) < 20 else None)
    ax.set(xlabel="training step", ylabel="nats per example" if len(metrics) > 1 else metrics[0], title=title)
    return ax


# --- plumbing and argument checks ----------------------------------------------------------------------


def _ax(ax):
    if ax is not None and not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes (e.g. from plt.subplots()) or None, got {type(ax).__name__}")
    return ax if ax is not None else plt.subplots(figsize=(5, 5))[1]


def _check_pixels(images: torch.Tensor) -> None:
    lo, hi = (v.item() for v in torch.aminmax(images.detach().float()))
    if math.isnan(lo) or math.isnan(hi) or math.isinf(lo) or math.isinf(hi):
        raise ValueError("images must hold finite values in [0, 1], got NaN or infinite entries")
    if lo < -CLIP_MARGIN or hi > 1 + CLIP_MARGIN:
        hint = "; divide grey values in [0, 255] by 255" if hi > 1 + CLIP_MARGIN else ""
        raise ValueError(f"images must hold values in [0, 1], got values in [{lo:.3g}, {hi:.3g}]{hint} (values "
                         f"within {CLIP_MARGIN:g} of [0, 1] are clipped; clip others with images.clamp(0, 1))")


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def _check_labels(labels, n: int) -> None:
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels must hold one label per point ({n}), got {len(labels)}")
