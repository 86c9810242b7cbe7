"""The argument checks the public functions share.

Each helper either returns the value (converted where that is harmless, e.g. a list of sizes to a tuple)
or raises an error whose message names the argument, says what was expected and shows what was given.
Public functions call them once, at the boundary; the functions they call trust their arguments.
"""
from __future__ import annotations

import math
import numbers
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np

import torch
from torch.distributions import Distribution


def show(value) -> str:
    """A short description of ``value`` for an error message: a tensor by shape and dtype, else its repr."""
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    text = repr(value)
    return text if len(text) <= 80 else f"a {type(value).__name__}"


def is_int(value) -> bool:
    """An integer: a Python int or a NumPy integer such as ``np.int64(2)``, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def integer(name: str, value, minimum: int | None = 1) -> int:
    """An integer (a NumPy one too, not a bool) that is at least ``minimum``, returned as a Python int."""
    if not is_int(value) or (minimum is not None and value < minimum):
        bound = f" >= {minimum}" if minimum is not None else ""
        raise ValueError(f"{name} must be an integer{bound}, got {value!r}")
    return int(value)


def native(value):
    """A NumPy scalar as the Python number it holds (so that it saves and hashes as one); anything else as it is."""
    return value.item() if isinstance(value, np.generic) else value


def seed(name: str, value) -> int:
    """A seed: a non-negative integer (a NumPy one too), the one rule for every function that takes a seed."""
    return integer(name, value, minimum=0)


def number(name: str, value, minimum: float | None = None, positive: bool = False) -> float:
    """A finite real number (a NumPy one too, not a bool), positive or at least ``minimum`` if asked."""
    ok = isinstance(value, (int, float, np.floating)) or is_int(value)
    ok = ok and not isinstance(value, bool) and math.isfinite(value)
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
    """A sequence of positive integers (NumPy ones too), as a tuple of ints; ``example`` shows one in the message."""
    try:
        result = tuple(value)
    except TypeError:
        result = None
    if result is None or not all(is_int(s) and s >= 1 for s in result) or (not result and not allow_empty):
        raise ValueError(f"{name} must be a sequence of positive integers such as {example}, got {value!r}")
    return tuple(int(s) for s in result)


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


CHECKPOINT = ("a Lightning checkpoint is the file fit(..., checkpoint_dir=...) saves at the end of each epoch "
              "(epoch=N.ckpt or last.ckpt), holding the weights, the optimizer's state and the training counters")


def checkpoint(name: str, value) -> Path:
    """The path of a Lightning checkpoint file, read once here so that a file of another kind is named as such.

    A file that is not a zip archive written by ``torch.save`` (a text file, a file cut short), one that
    ``torch.load`` cannot read, and one without Lightning's entries (a ``fit_cached`` entry, say) are refused.
    A file that only a full unpickling reads is left to the caller, which decides on ``weights_only``.
    """
    file = path(name, value, "a path to a checkpoint file")
    if not file.is_file():
        raise FileNotFoundError(f"{name} {str(value)!r} is not a checkpoint file: it does not exist")
    if not zipfile.is_zipfile(file):
        raise ValueError(f"{name} {str(value)!r} is not a checkpoint: it is not a file that torch.save wrote, or it "
                         f"was cut short ({file.stat().st_size} bytes); {CHECKPOINT}")
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # readable only with weights_only=False: the caller's choice
        return file
    except Exception as err:
        raise ValueError(f"{name} {str(value)!r} is not a checkpoint: torch.load cannot read it "
                         f"({type(err).__name__}: {err}); {CHECKPOINT}") from None
    lightning = isinstance(saved, dict) and "state_dict" in saved and "pytorch-lightning_version" in saved
    if isinstance(saved, dict) and "state_dict" in saved and "history" in saved and not lightning:
        raise ValueError(f"{name} {str(value)!r} is an entry of fit_cached's cache (weights and a history), not a "
                         f"checkpoint; {CHECKPOINT}. Load the entry's weights with "
                         f"model.load_state_dict(torch.load(path, weights_only=True)['state_dict'])")
    if not lightning:
        keys = f"a dict of {sorted(map(str, saved))[:6]}" if isinstance(saved, dict) else f"a {type(saved).__name__}"
        raise ValueError(f"{name} {str(value)!r} is not a checkpoint: it holds {keys}; {CHECKPOINT}")
    return file


def images(x, input_shape: tuple[int, ...], dtype: torch.dtype, unit_interval: bool) -> torch.Tensor:
    """Images (B, *input_shape) with the weights' dtype and finite values, in [0, 1] where the likelihood needs it.

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
    elif not torch.isfinite(x.detach()).all():
        raise ValueError("x must hold finite values, got NaN or infinite entries")
    return x


def codes(z, latent_dim: int, dtype: torch.dtype | None = None, finite: bool = True) -> torch.Tensor:
    """Codes (..., latent_dim) with finite values (unless ``finite=False``) and the weights' dtype when one is given."""
    if not isinstance(z, torch.Tensor) or not z.is_floating_point():
        raise TypeError(f"z must be a floating-point tensor of codes, got {show(z)}")
    if z.dim() < 1 or z.shape[-1] != latent_dim:
        raise ValueError(f"z must have shape (..., {latent_dim}) (the last dimension is latent_dim), "
                         f"got {tuple(z.shape)}")
    if dtype is not None:
        same_dtype("z", z, dtype)
    if finite and not torch.isfinite(z.detach()).all():
        raise ValueError("z must hold finite values, got NaN or infinite entries")
    return z


def matrix(name: str, value, finite: bool = True, float64: bool = True) -> np.ndarray:
    """An array or tensor with at least one row, numeric (and finite unless ``finite=False``), as an array
    (N, D), each row flattened, in float64 unless ``float64=False`` (then in its own dtype)."""
    a = value.detach().cpu().numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
    if a.ndim < 1 or len(a) == 0 or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name} must be a non-empty numeric array or tensor (N, ...), got shape {a.shape}, "
                         f"dtype {a.dtype}")
    a = a.reshape(len(a), -1)
    a = a.astype(np.float64, copy=False) if float64 else a
    if finite and not np.isfinite(a).all():
        raise ValueError(f"{name} must hold finite values, got NaN or infinite entries in "
                         f"{int((~np.isfinite(a)).any(1).sum())} of its {len(a)} rows")
    return a


def same_length(**named) -> None:
    """Arrays or tensors that hold one row each for the same examples, e.g. codes and their labels."""
    lengths = {name: len(value) for name, value in named.items()}
    if len(set(lengths.values())) > 1:
        listed = " and ".join(f"{name} {n}" for name, n in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have the same length (one row per example), got {listed}")


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
