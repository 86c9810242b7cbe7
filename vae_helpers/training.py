"""One call to train a model: seeded, deterministic, quiet, and returning its metric history.

``fit(model, datamodule)`` wraps ``pl.Trainer`` with defaults for notebooks: no checkpoint files unless
asked (``checkpoint_dir``), a progress bar unless ``VAE_PROGRESS=0``, none of Lightning's start-up lines or tips, and
every logged metric collected in memory and returned as a pandas DataFrame (one row per logging step).

Reproducible, and resumable to the same numbers: the data loader draws its order and binarization from
(seed, epoch), and :class:`ReseedEachEpoch` reseeds the noise of the reparameterization the same way, so
a run resumed from an end-of-epoch checkpoint continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from . import checks
from .lightning import HistoryLogger, ProgressBar, ReseedEachEpoch, quiet, without_failed_nvml_check  # noqa: F401 (quiet is part of this module's API)


#: the names ``pl.Trainer.fit`` accepts in place of a checkpoint path
_CKPT_NAMES = ("last", "best", "hpc", "registry")


def fit(model: pl.LightningModule, datamodule: pl.LightningDataModule, max_epochs: int = 5,
        max_steps: int = -1, seed: int = 0, progress: bool | None = None, accelerator: str = "cpu",
        devices="auto", log_every_n_steps: int = 10, ckpt_path: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None, **trainer_kwargs) -> pd.DataFrame:
    """Train ``model`` on ``datamodule`` in place and return its logged metrics as a DataFrame.

    Seeds Python, NumPy and torch with ``seed`` (and torch again at every epoch, see
    :class:`ReseedEachEpoch`) and asks for deterministic algorithms, so the same call on the same initial
    weights gives the same numbers on the same machine; the initial weights are drawn when the model is
    built, so seed torch before building it (``torch.manual_seed``). Pass ``accelerator="gpu"`` (or ``"auto"``) to use a GPU. ``progress``
    shows Lightning's progress bar; by default it is shown unless the environment sets ``VAE_PROGRESS=0``
    (as the notebook runner does, so that the committed notebooks carry no bars). ``checkpoint_dir`` saves a Lightning checkpoint at the end of every epoch
    (``epoch=N.ckpt``, and ``last.ckpt``); ``ckpt_path`` resumes from one, read with ``weights_only=True``,
    up to ``max_epochs`` in all, to the same weights and metrics as a run that was never stopped. Other
    keyword arguments go to ``pl.Trainer``; ``num_nodes > 1`` needs the processes started by a launcher
    (torchrun or srun). A data module with no training batch is an error. The trainer is left on
    ``model.trainer`` for further use.
    """
    _check_model_and_data(model, datamodule)
    max_epochs = checks.integer("max_epochs", max_epochs)
    log_every_n_steps = checks.integer("log_every_n_steps", log_every_n_steps)
    seed = checks.seed("seed", seed)
    if not checks.is_int(max_steps) or (max_steps < 1 and max_steps != -1):
        raise ValueError(f"max_steps must be -1 (no limit) or an integer >= 1, got {max_steps!r}")
    max_steps = int(max_steps)
    progress = os.environ.get("VAE_PROGRESS", "1") != "0" if progress is None else checks.flag("progress", progress)
    if not isinstance(accelerator, str):
        raise TypeError(f"accelerator must be a string such as 'cpu', 'gpu' or 'auto', got {accelerator!r}")
    if ckpt_path is not None and ckpt_path not in _CKPT_NAMES:
        checks.checkpoint("ckpt_path", ckpt_path)
    _check_launch(trainer_kwargs.get("num_nodes", 1))
    if checkpoint_dir is not None:
        checks.path("checkpoint_dir", checkpoint_dir, "a folder path")
    callbacks = trainer_kwargs.pop("callbacks", None) or []
    callbacks = [ReseedEachEpoch(seed), *(callbacks if isinstance(callbacks, (list, tuple)) else [callbacks])]
    if progress and not any(isinstance(c, pl.callbacks.ProgressBar) for c in callbacks):
        callbacks.append(ProgressBar())
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="epoch={epoch}", save_top_k=-1,
                                         save_last=True, auto_insert_metric_name=False,
                                         enable_version_counter=False))
    logger = HistoryLogger()
    options = dict(max_epochs=max_epochs, max_steps=max_steps, accelerator=accelerator, devices=devices,
                   logger=logger, enable_progress_bar=progress, enable_model_summary=False,
                   enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
                   deterministic=True if accelerator == "cpu" else "warn", callbacks=callbacks,
                   log_every_n_steps=log_every_n_steps, num_sanity_val_steps=0)
    options.update(trainer_kwargs)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with quiet(), without_failed_nvml_check():  # the one speed trick worth keeping: see its docstring
            pl.seed_everything(seed, workers=True, verbose=False)
            trainer = pl.Trainer(**options)
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
        torch.use_deterministic_algorithms(was_deterministic)  # the Trainer sets this flag globally; restore it
    if trainer.num_training_batches == 0:
        raise ValueError(f"datamodule {type(datamodule).__name__} yields no batches of its 'train' split "
                         "(train_dataloader() is empty: no examples, or fewer than one batch with drop_last=True), "
                         "so nothing was trained")
    return logger.history


def fit_cached(model: pl.LightningModule, datamodule: pl.LightningDataModule, cache_dir=None,
               **fit_kwargs) -> pd.DataFrame:
    """:func:`fit`, or, if an identical call ran before, load its weights and history from disk.

    The cache key covers the model's and the data's hyperparameters and layers, the arguments to ``fit``,
    the torch version and ``recipes.RECIPE_VERSION``. Files are read with ``torch.load(weights_only=True)``;
    an unreadable entry is trained again, and one whose tensors do not fit the model is an error naming the file.
    """
    _check_model_and_data(model, datamodule)
    if cache_dir is not None:
        checks.path("cache_dir", cache_dir, "a folder path or None")
    for name in ("ckpt_path", "checkpoint_dir"):  # a cached result stands for a whole run from scratch
        if fit_kwargs.get(name) is not None:
            raise ValueError(f"fit_cached does not take {name}; call fit for runs that save or resume checkpoints")
    if "seed" in fit_kwargs:
        checks.seed("seed", fit_kwargs["seed"])
    cache_dir = _check_cache_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    path = cache_dir / f"{type(model).__name__}-{_cache_key(model, datamodule, fit_kwargs)}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            state, history = saved["state_dict"], pd.DataFrame(saved["history"])
        except Exception as err:  # a damaged entry (a disk error, a copy cut short): train again
            warnings.warn(f"the cached model {path} could not be read ({type(err).__name__}: {err}); training it again")
        else:
            _check_cached_weights(model, state, path)
            model.load_state_dict(state)
            return history
    if not os.access(cache_dir, os.W_OK):
        raise PermissionError(f"cache_dir {str(cache_dir)!r} is not writable, so the trained model could not be "
                              "kept; give another folder (or set VAE_CACHE_DIR)")
    history = fit(model, datamodule, **fit_kwargs)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "history": history.to_dict("list")}, tmp)
    tmp.replace(path)  # atomic: a notebook killed mid-save leaves no half-written cache entry
    return history


# --- plumbing: what fit needs and a reader of it does not ------------------------------------------


def _check_model_and_data(model, datamodule) -> None:
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"model must be a pl.LightningModule, got {type(model).__name__}")
    if not isinstance(datamodule, pl.LightningDataModule):
        raise TypeError(f"datamodule must be a pl.LightningDataModule, got {type(datamodule).__name__}")


#: the environment variables that a launcher of several processes sets (torchrun, SLURM, LSF, MPI)
_LAUNCHER_VARIABLES = ("WORLD_SIZE", "NODE_RANK", "LOCAL_RANK", "GROUP_RANK", "TORCHELASTIC_RUN_ID", "SLURM_NTASKS",
                       "LSB_JOBID", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def _check_launch(num_nodes) -> None:
    """Refuse a run on several machines that was not started by a launcher: it would wait forever for the others."""
    checks.integer("num_nodes", num_nodes)
    if num_nodes > 1 and not any(name in os.environ for name in _LAUNCHER_VARIABLES):
        raise RuntimeError(f"num_nodes={num_nodes} trains on {num_nodes} machines, but this process was not started "
                           f"by a launcher (none of {', '.join(_LAUNCHER_VARIABLES)} is set) and would wait forever "
                           f"for the others: start it on each machine with torchrun --nnodes={num_nodes} "
                           f"--node-rank=<0..{num_nodes - 1}> --master-addr=<first machine> script.py, or with srun "
                           "under SLURM, or pass num_nodes=1")


def _check_cache_dir(cache_dir: Path) -> Path:
    """The cache folder, created if missing; refused before any training if it is a file or cannot be made."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"cache_dir {str(cache_dir)!r} must be a folder, but it (or a folder above it) "
                                 "is a file; give a folder path, or None for the default") from None
    except OSError as err:
        raise PermissionError(f"cache_dir {str(cache_dir)!r} could not be created ({err.strerror}); give a folder "
                              "you can write to") from None
    return cache_dir


def _check_cached_weights(model, state: dict, path: Path) -> None:
    """Refuse, before any weight is copied, a cache entry whose tensors are not this model's."""
    own = model.state_dict()
    problems = [f"{name} has shape {tuple(state[name].shape)} vs {tuple(own[name].shape)}"
                for name in own if name in state and state[name].shape != own[name].shape]
    problems += [f"the entry lacks {name}" for name in own if name not in state]
    problems += [f"the model has no {name}" for name in state if name not in own]
    if problems:
        raise ValueError(f"the cache entry {path} does not match the model {type(model).__name__} "
                         f"({'; '.join(problems[:3])}{'; ...' if len(problems) > 3 else ''}). Delete that file "
                         f"to train the model again (rm '{path}'), or clear the whole cache by deleting "
                         f"{path.parent}, which costs only training time")


def default_cache_dir() -> Path:
    """Where :func:`fit_cached` keeps trained weights: ``$VAE_CACHE_DIR``, else ``.cache/models`` at the project root."""
    env = os.environ.get("VAE_CACHE_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / ".cache" / "models"


def _cache_key(model: pl.LightningModule, datamodule: pl.LightningDataModule, fit_kwargs: dict) -> str:
    # The settings and the recipe version, not the package's source: a docstring edit retrains nothing,
    # and a change that alters what training computes bumps RECIPE_VERSION. repr(model) lists the layers,
    # so models built from other parts get other keys. (recipes imports this module, hence the late import.)
    from .recipes import RECIPE_VERSION

    spec = {"model": type(model).__name__, "hparams": dict(model.hparams), "layers": repr(model),
            "data": type(datamodule).__name__, "data_hparams": dict(datamodule.hparams), "fit": fit_kwargs,
            "torch": torch.__version__, "recipe": RECIPE_VERSION}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
