"""The argument checks the public functions share.

Each helper either returns the value (converted where that is harmless, e.g. a list of sizes to a tuple)
or raises an error whose message names the argument, says what was expected and shows what was given.
Public functions call them once, at the boundary; the functions they call trust their arguments.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch.distributions import Distribution


def show(value) -> str:
    """A short description of ``value`` for an error message: a tensor by shape and dtype, else its repr."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__}"


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def integer(name: str, value, minimum: int | None = 1) -> int:
    """An int (not a bool) that is at least ``minimum``."""
    if not is_int(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return value


def number(name: str, value, minimum: float | None = None, positive: bool = False) -> float:
    """A finite real number (not a bool), positive or at least ``minimum`` if asked."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (positive and value <= 0) or (minimum is not None and value < minimum):
        what = "a positive finite number" if positive else "a finite number" + (f" >= {minimum}" if minimum is not None else "")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return float(value)


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def sizes(name: str, value, example: str, allow_empty: bool = False) -> tuple[int, ...]:
    """A sequence of positive integers, as a tuple; ``example`` shows one in the message."""
    try:
        result = tuple(value)
    except TypeError:
        result = None
    if result is None or not all(is_int(s) and s >= 1 for s in result) or (not result and not allow_empty):
        raise ValueError(f"{name} must be a sequence of positive integers such as {example}, got {value!r}")
    return result


def tensor(name: str, value, shape: str = "", floating: bool = True, finite: bool = False,
           min_dim: int = 0, nonempty: bool = False) -> torch.Tensor:
    """A tensor (floating-point unless ``floating=False``), with at least ``min_dim`` dimensions, at least one
    element along the first if ``nonempty``, and only finite values if ``finite``; ``shape`` describes the
    expected shape in the message, e.g. ``"(N, D)"``."""
    what = f"a {'floating-point ' if floating else ''}tensor" + (f" of shape {shape}" if shape else "")
    if not isinstance(value, torch.Tensor) or (floating and not value.is_floating_point()):
        raise TypeError(f"{name} must be {what}, got {show(value)}")
    if value.dim() < min_dim or (nonempty and (value.dim() == 0 or len(value) == 0)):
        raise ValueError(f"{name} must be {what}" + (" with at least one row" if nonempty else "")
                         + f", got shape {tuple(value.shape)}")
    if finite and not torch.isfinite(value).all():
        raise ValueError(f"{name} must hold finite values, got NaN or infinite entries")
    return value


def same_dtype(name: str, value: torch.Tensor, dtype: torch.dtype, owner: str = "the model's weights") -> None:
    if value.dtype != dtype:
        raise TypeError(f"{name} has dtype {value.dtype} but {owner} are {dtype}; convert it with "
                        f"{name}.to({dtype})")


def distribution(name: str, value) -> Distribution:
    if not isinstance(value, Distribution):
        raise TypeError(f"{name} must be a torch.distributions.Distribution, got {type(value).__name__}")
    return value


def path(name: str, value, what: str = "a file path") -> Path:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__}")
    return Path(value)


def images(x, input_shape: tuple[int, ...], dtype: torch.dtype, unit_interval: bool) -> torch.Tensor:
    """Images (B, *input_shape) with the weights' dtype, and values in [0, 1] where the likelihood needs them.

    The messages teach: a flattened batch gets the reshape that fixes it, uint8 images the division by 255.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor of images, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point tensor (images scaled to [0, 1]), got dtype {x.dtype}; "
                        "divide uint8 images by 255")
    if x.dim() != 1 + len(input_shape) or tuple(x.shape[1:]) != input_shape:
        shape = ", ".join(map(str, input_shape))
        hint = f"; reshape with x.view(-1, {shape})" if x.dim() >= 1 and x[:1].numel() == math.prod(input_shape) else ""
        raise ValueError(f"x must have shape (batch, {shape}), got {tuple(x.shape)}{hint}")
    same_dtype("x", x, dtype)
    if unit_interval and x.numel():
        lo, hi = (v.item() for v in torch.aminmax(x.detach()))
        if not (lo >= 0 and hi <= 1):  # false for NaN too
            found = "NaN values" if math.isnan(lo) else f"values in [{lo:.3g}, {hi:.3g}]"
            raise ValueError(f"x must lie in [0, 1] for a Bernoulli likelihood, got {found}")
    return x


def codes(z, latent_dim: int, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Codes (..., latent_dim) with the weights' dtype when one is given."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating-point tensor of codes, got {show(z)}")
    if z.dim() < 1 or z.shape[-1] != latent_dim:
        raise ValueError(f"z must have shape (..., {latent_dim}) (the last dimension is latent_dim), "
                         f"got {tuple(z.shape)}")
    if dtype is not None:
        same_dtype("z", z, dtype)
    return z


def interface(model, needed: tuple[str, ...]) -> None:
    """A model with the attributes ``needed`` (e.g. encode, decode, prior), like VAE or LinearGaussian."""
    missing = [name for name in needed if not hasattr(model, name)]
    if missing:
        raise TypeError(f"model must have {', '.join(needed)} (like VAE or LinearGaussian); "
                        f"{type(model).__name__} lacks {', '.join(missing)}")


def shaped(name: str, t, shape, dtype: torch.dtype, owner: str, finite: bool = False) -> torch.Tensor:
    """A floating-point tensor of exactly ``shape``, with ``owner``'s dtype (and finite values if asked)."""
    shape = tuple(shape)
    tensor(name, t, str(shape), finite=finite)
    if tuple(t.shape) != shape:
        raise ValueError(f"{name} must be a tensor of shape {shape}, got {tuple(t.shape)}")
    same_dtype(name, t, dtype, owner)
    return t
