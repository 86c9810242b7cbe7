"""What Lightning needs from the course's models and a reader of the models does not.

``LatentVariableModule`` is the ``pl.LightningModule`` that ``AutoEncoder`` and ``VAE`` extend. A model
defines ``loss_terms(x)``, a dict of per-example tensors (B,) whose ``"loss"`` entry is averaged over the
batch and minimised; this module does the rest: the training and validation steps, Adam, the epoch
means of every term (logged as ``train/<name>`` and ``val/<name>``, and each step's batch mean every
``log_every_n_steps`` steps as ``train_step/<name>``), the message when the loss stops being finite, and
the checks on the checkpoints it loads. ``fit`` uses the rest: ``quiet`` (no start-up lines),
``HistoryLogger`` (the metrics as a DataFrame) and ``ReseedEachEpoch`` (noise that depends only on where
training is, so a resumed run matches an uninterrupted one).
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import math
import os
import warnings

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.loggers import Logger
from pytorch_lightning.trainer.states import TrainerFn
from pytorch_lightning.utilities.model_helpers import _restricted_classmethod
from torchmetrics import Metric

from . import checks


class TermMeans(Metric):
    """Epoch means of several per-example terms at once: update with a (T, B) tensor, compute gives (T,).

    torchmetrics sums the totals and the count over processes before dividing, so the mean is exact under
    DDP too, even when processes hold different numbers of examples. NaNs are kept: a NaN shows in the mean.
    """

    def __init__(self, n_terms: int):
        super().__init__()
        self.add_state("total", default=torch.zeros(n_terms, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, values: torch.Tensor) -> None:
        self.total += values.sum(dim=1, dtype=torch.float64)
        self.count += values.shape[1]

    def compute(self) -> torch.Tensor:
        return (self.total / self.count).float()


class LatentVariableModule(pl.LightningModule):
    """Training plumbing shared by the course's models (see the module docstring)."""

    #: the per-example terms logged each epoch, the first of which is the loss
    terms: tuple[str, ...] = ("loss",)
    #: the terms the loss is made of, named when the loss stops being finite
    loss_parts: tuple[str, ...] = ("loss",)
    #: the hyperparameters that fix the shapes of the weights; the others are training settings
    architecture: tuple[str, ...] = ("latent_dim", "hidden", "input_shape", "activation")
    #: whether images must lie in [0, 1] (the Bernoulli likelihood's data)
    unit_interval: bool = True
    #: whether ``loss_terms`` takes the labels y of a batch (x, y) too: ``loss_terms(x, y)`` (a conditional model)
    needs_labels: bool = False
    #: whether ``decode`` refuses codes that are not finite; off inside ``drawn_codes`` (codes drawn from q)
    finite_codes_only: bool = True

    def __init__(self, input_shape, lr: float):
        super().__init__()
        self.input_shape = tuple(input_shape)
        self.input_dim = math.prod(self.input_shape)
        self.lr = lr
        self.train_means, self.val_means = TermMeans(len(self.terms)), TermMeans(len(self.terms))

    def check_images(self, x: torch.Tensor, unit_interval: bool | None = None) -> None:
        """Raise a clear error unless x is a tensor of shape (B, *input_shape) with the weights' dtype,
        and, if ``unit_interval`` (default: what the likelihood needs), with values in [0, 1]."""
        checks.images(x, self.input_shape, self.dtype, self.unit_interval if unit_interval is None else unit_interval)

    def check_codes(self, z: torch.Tensor) -> None:
        """Raise a clear error unless z is a floating-point tensor of shape (..., latent_dim) with the weights'
        dtype and finite values (the last not inside ``drawn_codes``)."""
        checks.codes(z, self.latent_dim, self.dtype, finite=self.finite_codes_only)

    @_restricted_classmethod  # as Lightning's: refused on an instance, whose weights it would not change
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        """Lightning's ``load_from_checkpoint``, with a clear error for a file that is not a checkpoint."""
        if isinstance(checkpoint_path, (str, os.PathLike)) and "://" not in str(checkpoint_path):
            checks.checkpoint("checkpoint_path", checkpoint_path)
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def loss_terms(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # --- the steps -------------------------------------------------------------------------------------

    def training_step(self, batch, batch_idx):
        terms = self._terms(batch, self.train_means)
        loss = terms["loss"].mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(self._non_finite_message(loss, terms))
        # self.log costs about a millisecond a call, as much as a whole step of a small MLP, so step
        # values are logged only as often as the logger writes them
        if self.global_step % self.trainer.log_every_n_steps == 0:
            self.log_dict({f"train_step/{k}": v.detach().mean() for k, v in terms.items()})
        return loss

    def validation_step(self, batch, batch_idx):
        self._terms(batch, self.val_means)

    def on_train_epoch_end(self):
        self._log_epoch_means("train", self.train_means)

    def on_validation_epoch_end(self):
        self._log_epoch_means("val", self.val_means)

    def configure_optimizers(self):
        # fused: one kernel updates every parameter, instead of a handful of small ops per tensor
        return torch.optim.Adam(self.parameters(), lr=self.lr, fused=True)

    def _terms(self, batch, means: TermMeans) -> dict[str, torch.Tensor]:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if self.needs_labels:  # a conditional model's loss is that of (x, y)
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError(f"{type(self).__name__} trains on batches (x, y) with labels y, got a batch "
                                 f"without labels ({checks.show(batch)})")
            terms = self.loss_terms(x, batch[1])
        else:
            terms = self.loss_terms(x)
        means.update(torch.stack([terms[name].detach() for name in self.terms]))
        return terms

    def _log_epoch_means(self, stage: str, means: TermMeans) -> None:
        for name, value in zip(self.terms, means.compute().reshape(-1)):  # summed over processes already
            self.log(f"{stage}/{name}", value)
        means.reset()

    def _non_finite_message(self, loss: torch.Tensor, terms: dict[str, torch.Tensor]) -> str:
        """Which step, which term (rate or distortion) and in how many examples the loss stopped being finite."""
        bad = {name: int((~torch.isfinite(terms[name])).sum()) for name in self.loss_parts}
        bad = {name: count for name, count in bad.items() if count}
        where = "; ".join(f"the {name} term is not finite in {count} of {len(terms[name])} examples"
                          for name, count in bad.items()) or "the loss itself is not finite"
        finite = [name for name in self.loss_parts if name not in bad and name != "loss"]
        return (f"training stopped at step {self.global_step} (epoch {self.current_epoch}): the loss became "
                f"{loss.item()}; {where}" + (f", while the {' and '.join(finite)} term stays finite" if finite else "")
                + f". Lower the learning rate (lr={self.lr}) or look for NaN or infinite values in the data.")

    # --- checkpoints -----------------------------------------------------------------------------------
    # Lightning saves the hyperparameters with the weights, but overwrites them with any override passed
    # to load_from_checkpoint; a copy is kept here, with the class, to check against.

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["model_config"] = {"class": type(self).__name__, "hparams": dict(self.hparams)}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Refuse, before any weight is copied, a checkpoint of another model configuration.

        Loading weights needs the same class and architecture (every tensor shape); resuming a run with
        ``fit(..., ckpt_path=...)`` needs every hyperparameter, or it would be a different run.
        """
        config = checkpoint.get("model_config") or {}
        saved_class = config.get("class", type(self).__name__)
        saved = dict(config.get("hparams", checkpoint.get("hyper_parameters") or {}))
        mine = dict(self.hparams)
        resuming = self._trainer is not None and self._trainer.state.fn == TrainerFn.FITTING
        problems = [f"class {saved_class} vs {type(self).__name__}"] if saved_class != type(self).__name__ else []
        problems += [f"{name}={saved[name]!r} vs {mine[name]!r}" for name in (mine if resuming else self.architecture)
                     if name in saved and name in mine and saved[name] != mine[name]]
        own, state = self.state_dict(), checkpoint.get("state_dict", {})
        problems += [f"{name} has shape {tuple(state[name].shape)} vs {tuple(own[name].shape)}"
                     for name in own if name in state and state[name].shape != own[name].shape]
        problems += [f"the checkpoint lacks {name}" for name in own if name not in state]
        problems += [f"the model has no {name}" for name in state if name not in own]
        if problems:
            raise ValueError(self._mismatch_message(saved_class, saved, problems, resuming))

    def _mismatch_message(self, saved_class: str, saved: dict, problems: list[str], resuming: bool) -> str:
        advice = (f"{saved_class}.load_from_checkpoint(path, weights_only=True) builds the model the checkpoint "
                  "describes")
        if resuming:
            advice += ("; to train those weights further with other settings, load them that way (passing the "
                       "new settings, e.g. beta=4.0) and call fit without ckpt_path")
        return (f"the checkpoint was saved from {_describe(saved_class, saved)}, which does not match this model, "
                f"{_describe(type(self).__name__, dict(self.hparams))} ({'; '.join(problems)}). {advice}.")


@contextlib.contextmanager
def drawn_codes(model):
    """Inside the block, ``model.decode`` takes codes that are not finite: codes drawn from q(z|x), whose NaN
    or infinite values the loss check (naming the step and the term) or the estimate reports, rather than
    the check on the codes a caller passes. Models without the switch (``LinearGaussian``) are left alone."""
    switch = isinstance(model, LatentVariableModule)
    previous = switch and model.finite_codes_only
    if switch:
        model.finite_codes_only = False
    try:
        yield
    finally:
        if switch:
            model.finite_codes_only = previous


def _describe(name: str, hparams: dict) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in hparams.items())})"


# --- what fit adds to pl.Trainer --------------------------------------------------------------------

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
        self.seed = checks.seed("seed", seed)

    def seed_for(self, epoch: int, stage: str, rank: int = 0) -> int:
        """The seed of ``stage`` ("train" or "val") in ``epoch`` on process ``rank``."""
        entropy = [self.seed, epoch, ("train", "val").index(stage), rank]
        return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        torch.manual_seed(self.seed_for(trainer.current_epoch, "train", trainer.global_rank))

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        torch.manual_seed(self.seed_for(trainer.current_epoch, "val", trainer.global_rank))


class ProgressBar(TQDMProgressBar):
    """Lightning's bar, redrawn every ``refresh_rate`` steps and without the logger's version number."""

    def __init__(self, refresh_rate: int = 20):
        # redrawing a notebook's bar at every step of a small model costs more than the step
        super().__init__(refresh_rate=refresh_rate)

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        metrics.pop("v_num", None)
        return metrics


@functools.lru_cache(maxsize=1)
def _nvml_loads() -> bool:
    """Whether NVML, the NVIDIA driver's management library, loads, as torch loads it to count GPUs."""
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        return True
    except OSError:
        return False


@contextlib.contextmanager
def without_failed_nvml_check():
    """Inside the block, where NVML cannot load, torch asks the CUDA runtime directly whether there is a GPU.

    Importing Lightning sets PYTORCH_NVML_BASED_CUDA_CHECK=1; on a CUDA build of torch without the NVIDIA
    driver, Adam's step then retries loading NVML every step before asking the runtime anyway (the same
    answer). Lifting it is worth about 7% of an epoch of the benchmark's VAE on two CPU cores (make benchmark).
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
