"""One call to train a model: seeded, deterministic, quiet, and returning its metric history.

``fit(model, datamodule)`` wraps ``pl.Trainer`` with defaults for notebooks: no checkpoint files unless
asked (``checkpoint_dir``), no progress bar unless asked, none of Lightning's start-up lines or tips, and
every logged metric collected in memory and returned as a pandas DataFrame (one row per logging step).

Reproducible, and resumable to the same numbers: the data loader draws its order and binarization from
(seed, epoch), and :class:`ReseedEachEpoch` reseeds the noise of the reparameterization the same way, so
a run resumed from an end-of-epoch checkpoint continues exactly as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import hashlib
import json
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import Logger
from pytorch_lightning.profilers import PassThroughProfiler

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
                            ".*Total length of .* across ranks is zero.*", ".*Trying to infer the `batch_size`.*",
                            ".*callbacks used to create the checkpoint need to be provided.*"):
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


@functools.lru_cache(maxsize=1)
def _nvml_loads() -> bool:
    """Whether NVML, the NVIDIA driver's management library, loads, as torch loads it to count GPUs."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def _cuda_check_without_failed_nvml():
    """Inside the block, torch asks the CUDA runtime directly whether a GPU is there, where NVML cannot load.

    Importing Lightning sets ``PYTORCH_NVML_BASED_CUDA_CHECK=1``, so that torch counts GPUs through NVML.
    torch's Adam asks on every step, and where NVML cannot load (a CUDA build of torch on a machine without
    the NVIDIA driver) each question is a failed attempt to load it, after which torch asks the CUDA runtime
    anyway. Lifting the setting gives the same answers and skips the failed load: 0.4 ms of a 7 ms step of the
    PyTorch examples' MNIST VAE on two CPU cores. Where NVML loads, nothing changes.
    """
    name = "PYTORCH_NVML_BASED_CUDA_CHECK"
    lift = os.environ.get(name) == "1" and torch.version.cuda is not None and not _nvml_loads()
    if lift:
        del os.environ[name]
    try:
        yield
    finally:
        if lift:
            os.environ[name] = "1"


class _NoProfiler(PassThroughProfiler):
    """Lightning's default profiler, which records nothing, at less cost: Lightning wraps each of some 30 hook
    calls a training step in ``profiler.profile(name)``, and this one hands back one shared empty context
    instead of building a generator-based one each time (0.1 ms of a 7 ms step on two CPU cores)."""

    _nothing = contextlib.nullcontext()

    def profile(self, action_name: str):
        return self._nothing


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


class ReseedEachEpoch(pl.Callback):
    """Seed torch's random numbers at the start of every training and every validation epoch.

    The seed is derived from (seed, epoch, stage, process rank) with NumPy's ``SeedSequence``, so the noise
    eps of z = mu + sigma * eps depends only on where training is, not on what ran before. Lightning's
    checkpoints restore weights, optimizer and counters but not torch's random state; with this callback a
    run resumed from an end-of-epoch checkpoint draws the same noise as an uninterrupted one. Validation
    gets a stream of its own, so its estimates do not depend on how many draws training made.
    """

    def __init__(self, seed: int = 0):
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        self.seed = seed

    def seed_for(self, epoch: int, stage: str, rank: int = 0) -> int:
        """The seed of ``stage`` ("train" or "val") in ``epoch`` on process ``rank``."""
        entropy = [self.seed, epoch, ("train", "val").index(stage), rank]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        torch.manual_seed(self.seed_for(trainer.current_epoch, "train", trainer.global_rank))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        torch.manual_seed(self.seed_for(trainer.current_epoch, "val", trainer.global_rank))


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


#: the names ``pl.Trainer.fit`` accepts in place of a checkpoint path
_CKPT_NAMES = ("last", "best", "hpc", "registry")


def fit(model: pl.LightningModule, datamodule: pl.LightningDataModule, max_epochs: int = 5,
        max_steps: int = -1, seed: int = 0, progress: bool = False, accelerator: str = "cpu",
        devices="auto", log_every_n_steps: int = 10, ckpt_path: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None, **trainer_kwargs) -> pd.DataFrame:
    """Train ``model`` on ``datamodule`` in place and return its logged metrics as a DataFrame.

    Seeds Python, NumPy and torch with ``seed`` (and torch again at every epoch, see
    :class:`ReseedEachEpoch`) and asks for deterministic algorithms, so the same call on the same initial
    weights gives the same numbers on the same machine; the initial weights are drawn when the model is
    built, so seed torch before building it (``torch.manual_seed``). Pass ``accelerator="gpu"`` (or ``"auto"``) to use a GPU, ``progress=True``
    for a progress bar. ``checkpoint_dir`` saves a Lightning checkpoint at the end of every epoch
    (``epoch=N.ckpt``, and ``last.ckpt``); ``ckpt_path`` resumes from one, read with ``weights_only=True``,
    up to ``max_epochs`` in all, to the same weights and metrics as a run that was never stopped. Other
    keyword arguments go to ``pl.Trainer``. The trainer is left on ``model.trainer`` for further use.
    """
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"model must be a pl.LightningModule, got {type(model).__name__}")
    if not isinstance(datamodule, pl.LightningDataModule):
        raise TypeError(f"datamodule must be a pl.LightningDataModule, got {type(datamodule).__name__}")
    _check_int("max_epochs", max_epochs, 1)
    _check_int("log_every_n_steps", log_every_n_steps, 1)
    _check_int("seed", seed, 0)
    if isinstance(max_steps, bool) or not isinstance(max_steps, int) or (max_steps < 1 and max_steps != -1):
        raise ValueError(f"max_steps must be -1 (no limit) or an integer >= 1, got {max_steps!r}")
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {progress!r}")
    if not isinstance(accelerator, str):
        raise TypeError(f"accelerator must be a string such as 'cpu', 'gpu' or 'auto', got {accelerator!r}")
    if ckpt_path is not None:
        if not isinstance(ckpt_path, (str, os.PathLike)):
            raise TypeError(f"ckpt_path must be a path to a checkpoint file, got {type(ckpt_path).__name__}")
        if ckpt_path not in _CKPT_NAMES and not Path(ckpt_path).is_file():
            raise FileNotFoundError(f"ckpt_path {str(ckpt_path)!r} is not a checkpoint file: it does not exist")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, os.PathLike)):
        raise TypeError(f"checkpoint_dir must be a folder path, got {type(checkpoint_dir).__name__}")
    callbacks = trainer_kwargs.pop("callbacks", None) or []
    callbacks = [ReseedEachEpoch(seed), *(callbacks if isinstance(callbacks, (list, tuple)) else [callbacks])]
    if checkpoint_dir is not None:
        callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="epoch={epoch}", save_top_k=-1,
                                         save_last=True, auto_insert_metric_name=False,
                                         enable_version_counter=False))
    logger = HistoryLogger()
    options = dict(max_epochs=max_epochs, max_steps=max_steps, accelerator=accelerator, devices=devices,
                   logger=logger, enable_progress_bar=progress, enable_model_summary=False,
                   enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
                   deterministic=True if accelerator == "cpu" else "warn", callbacks=callbacks,
                   log_every_n_steps=log_every_n_steps, num_sanity_val_steps=0, profiler=_NoProfiler())
    options.update(trainer_kwargs)
    was_deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with quiet(), _cuda_check_without_failed_nvml():
            pl.seed_everything(seed, workers=True, verbose=False)
            trainer = pl.Trainer(**options)
            trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
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
    if not isinstance(model, pl.LightningModule):
        raise TypeError(f"model must be a pl.LightningModule, got {type(model).__name__}")
    if not isinstance(datamodule, pl.LightningDataModule):
        raise TypeError(f"datamodule must be a pl.LightningDataModule, got {type(datamodule).__name__}")
    if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
        raise TypeError(f"cache_dir must be a folder path or None, got {type(cache_dir).__name__}")
    for name in ("ckpt_path", "checkpoint_dir"):  # a cached result stands for a whole run from scratch
        if fit_kwargs.get(name) is not None:
            raise ValueError(f"fit_cached does not take {name}; call fit for runs that save or resume checkpoints")
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = cache_dir / f"{type(model).__name__}-{_cache_key(model, datamodule, fit_kwargs)}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, weights_only=True)
            state, history = saved["state_dict"], pd.DataFrame(saved["history"])
        except Exception as err:  # a damaged entry (a disk error, a copy cut short): train again
            warnings.warn(f"the cached model {path} could not be read ({type(err).__name__}: {err}); training it again")
        else:
            model.load_state_dict(state)
            return history
    history = fit(model, datamodule, **fit_kwargs)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"state_dict": model.state_dict(), "history": history.to_dict("list")}, tmp)
    tmp.replace(path)  # atomic: a notebook killed mid-save leaves no half-written cache entry
    return history
