"""One call to train a model: seeded, deterministic, quiet, and returning its metric history.

``fit(model, datamodule)`` wraps ``pl.Trainer`` with defaults for notebooks: no checkpoint files, no
progress bar unless asked, none of Lightning's start-up lines or tips, and every logged metric
collected in memory and returned as a pandas DataFrame (one row per logging step).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import Logger

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning", "lightning_fabric", "lightning.pytorch")


@contextlib.contextmanager
def quiet():
    """Silence Lightning's informational lines and its advice-only warnings inside the block."""
    loggers = [logging.getLogger(name) for name in _LIGHTNING_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for pattern in (".*does not have many workers.*", ".*is smaller than the logging interval.*",
                            ".*Checkpoint directory.*exists and is not empty.*", ".*torch.distributed.*",
                            ".*sync_dist=True.*", ".*`isinstance\\(treespec, LeafSpec\\)` is deprecated.*",
                            ".*Total length of .* across ranks is zero.*", ".*Trying to infer the `batch_size`.*"):
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


class HistoryLogger(Logger):
    """A Lightning logger that keeps every logged value in memory; ``.history`` is a DataFrame."""

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []

    @property
    def name(self) -> str:
        return "history"

    @property
    def version(self) -> int:
        return 0

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics: dict, step: int | None = None) -> None:
        self.rows.append({"step": step, **{k: float(v) for k, v in metrics.items()}})

    @property
    def history(self) -> pd.DataFrame:
        """One row per logging call; epoch-level columns are NaN on step-level rows and vice versa."""
        frame = pd.DataFrame(self.rows)
        if frame.empty:
            return frame
        # Lightning logs a step's and an epoch's metrics in separate calls; merge rows of the same step
        return frame.groupby("step", as_index=False, sort=True).first()


def fit(model: pl.LightningModule, datamodule: pl.LightningDataModule, max_epochs: int = 5,
        max_steps: int = -1, seed: int = 0, progress: bool = False, accelerator: str = "cpu",
        devices="auto", log_every_n_steps: int = 10, ckpt_path: str | None = None, **trainer_kwargs) -> pd.DataFrame:
    """Train ``model`` on ``datamodule`` in place and return its logged metrics as a DataFrame.

    Seeds Python, NumPy and torch with ``seed`` and asks for deterministic algorithms, so the same call
    gives the same numbers on the same machine. Pass ``accelerator="gpu"`` (or ``"auto"``) to use a GPU,
    ``progress=True`` for a progress bar, ``ckpt_path`` to resume from a checkpoint; other keyword
    arguments go to ``pl.Trainer``. The trainer is left on ``model.trainer`` for further use.
    """
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"model must be a pl.LightningModule, got {type(model).__name__}")
    if not isinstance(datamodule, pl.LightningDataModule):
        raise TypeError(f"datamodule must be a pl.LightningDataModule, got {type(datamodule).__name__}")
    for name, value in (("max_epochs", max_epochs), ("log_every_n_steps", log_every_n_steps)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or (max_steps < 1 and max_steps != -1):
        raise ValueError(f"max_steps must be -1 (no limit) or an integer >= 1, got {max_steps!r}")
    logger = HistoryLogger()
    options = dict(max_epochs=max_epochs, max_steps=max_steps, accelerator=accelerator, devices=devices,
                   logger=logger, enable_progress_bar=progress, enable_model_summary=False,
                   enable_checkpointing=False, deterministic=True if accelerator == "cpu" else "warn",
                   log_every_n_steps=log_every_n_steps, num_sanity_val_steps=0)
    options.update(trainer_kwargs)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    with quiet():
        pl.seed_everything(seed, workers=True, verbose=False)
        trainer = pl.Trainer(**options)
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    torch.use_deterministic_algorithms(was_deterministic)  # the Trainer sets this flag globally; restore it
    return logger.history


def default_cache_dir() -> Path:
    """Where :func:`fit_cached` keeps trained weights: ``$VAE_CACHE_DIR``, else ``.cache/models`` at the project root."""
    env = os.environ.get("VAE_CACHE_DIR")
    return Path(env).expanduser() if env else Path(__file__).resolve().parent.parent / ".cache" / "models"


def _cache_key(model: pl.LightningModule, datamodule: pl.LightningDataModule, fit_kwargs: dict) -> str:
    # the settings, plus the package's own source, so that a change to the code retrains
    source = b"".join(p.read_bytes() for p in sorted(Path(__file__).parent.glob("*.py")))
    spec = {"model": type(model).__name__, "hparams": dict(model.hparams), "data": type(datamodule).__name__,
            "data_hparams": dict(datamodule.hparams), "fit": fit_kwargs, "torch": torch.__version__,
            "source": hashlib.sha1(source).hexdigest()}
    return hashlib.sha1(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fit_cached(model: pl.LightningModule, datamodule: pl.LightningDataModule, cache_dir=None,
               **fit_kwargs) -> pd.DataFrame:
    """:func:`fit`, or, if an identical call ran before, load its weights and history from disk.

    The cache key covers the model's and the data's hyperparameters, the arguments to ``fit``, the torch
    version and the source of ``vae_helpers``. Files are read with ``torch.load(weights_only=True)``.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{type(model).__name__}-{_cache_key(model, datamodule, fit_kwargs)}.pt"
    if path.is_file():
        saved = torch.load(path, weights_only=True)
        model.load_state_dict(saved["state_dict"])
        return pd.DataFrame(saved["history"])
    history = fit(model, datamodule, **fit_kwargs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "history": history.to_dict("list")}, tmp)
    tmp.replace(path)  # atomic: a notebook killed mid-save leaves no half-written cache entry
    return history
