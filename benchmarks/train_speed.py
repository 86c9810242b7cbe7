"""Seconds per training epoch of one MNIST VAE, trained three ways.

The model is the 784-400-20 MLP VAE of the PyTorch examples (ReLU, Bernoulli likelihood on grey values,
loss summed over pixels), batch 128, Adam with learning rate 1e-3, one epoch over the 60,000 training
images:

  (a) vae_helpers: ``VAE`` and ``MNISTDataModule`` trained by ``pl.Trainer`` (through ``fit``);
  (b) the common pipeline: ``DataLoader`` over ``torchvision.datasets.MNIST`` with ``ToTensor()``;
  (c) a plain PyTorch loop over in-memory tensors, the floor for any wrapper.

Each epoch is timed from its first batch to its last optimiser step; building the trainer and loading
the files are left out of all three. Each pipeline trains ``--repeats`` epochs from fresh weights, the
three interleaved in alternating order, and its median epoch is reported. (b) and (c) run as in a script
that never imports Lightning. The last line is ``speedup_vs_dataloader=<b/a> overhead_vs_plain_loop=<a/c>``.

    python benchmarks/train_speed.py [--repeats N]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from vae_helpers import VAE, MNISTDataModule, default_data_dir, fit, load_mnist

BATCH, LR, LATENT, HIDDEN = 128, 1e-3, 20, 400


class ExampleVAE(nn.Module):
    """The PyTorch examples' VAE, for the two pipelines that do not use vae_helpers."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc21, self.fc22 = nn.Linear(784, HIDDEN), nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)
        self.fc3, self.fc4 = nn.Linear(LATENT, HIDDEN), nn.Linear(HIDDEN, 784)

    def loss(self, x):
        h = F.relu(self.fc1(x.view(-1, 784)))
        mu, logvar = self.fc21(h), self.fc22(h)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        logits = self.fc4(F.relu(self.fc3(z)))
        bce = F.binary_cross_entropy_with_logits(logits, x.view(-1, 784), reduction="sum")
        kl = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
        return (bce + kl) / len(x)


@contextlib.contextmanager
def as_without_lightning():
    """Run the block as a script that never imports Lightning would: importing it sets
    PYTORCH_NVML_BASED_CUDA_CHECK=1 for the whole process, which changes how torch's optimizers look for a
    GPU on every step."""
    value = os.environ.pop("PYTORCH_NVML_BASED_CUDA_CHECK", None)
    try:
        yield
    finally:
        if value is not None:
            os.environ["PYTORCH_NVML_BASED_CUDA_CHECK"] = value


def plain_epoch(batches) -> float:
    model = ExampleVAE()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    with as_without_lightning():
        start = time.perf_counter()
        for x in batches():
            opt.zero_grad()
            model.loss(x).backward()
            opt.step()
        return time.perf_counter() - start


def dataloader_epoch() -> float:
    from torchvision import datasets, transforms

    ds = datasets.MNIST(str(default_data_dir()), train=True, download=False, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True)
    return plain_epoch(lambda: (x for x, _ in loader))


def tensor_epoch() -> float:
    images = load_mnist(train=True)[0]

    def batches():
        order = torch.randperm(len(images))
        for start in range(0, len(images), BATCH):
            yield images[order[start:start + BATCH]].unsqueeze(1).float().div_(255)

    return plain_epoch(batches)


class EpochTimer(pl.Callback):
    def on_train_epoch_start(self, trainer, pl_module):
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module):
        self.seconds = time.perf_counter() - self.start


def helpers_epoch() -> float:
    timer = EpochTimer()
    model = VAE(latent_dim=LATENT, hidden=(HIDDEN,), lr=LR)
    # no progress bar: the other two pipelines draw none either
    fit(model, MNISTDataModule(batch_size=BATCH, val_size=0), max_epochs=1, callbacks=[timer],
        limit_val_batches=0, log_every_n_steps=50, progress=False)
    return timer.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=8, help="epochs timed per pipeline; the median is used")
    args = parser.parse_args()
    if args.repeats < 1:
        parser.error(f"--repeats must be an integer >= 1, got {args.repeats}")
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, data in {default_data_dir()}")
    pipelines = {"a vae_helpers + pl.Trainer": helpers_epoch, "b DataLoader + ToTensor": dataloader_epoch,
                 "c plain loop, in-memory tensors": tensor_epoch}
    times = {key: [] for key in pipelines}
    for i in range(args.repeats):
        # interleaved, so that a slow spell of a shared machine hits all three alike, and in alternating
        # order (abc, cba, ...), so that an epoch's place in the sequence does too
        for key in (list(pipelines) if i % 2 == 0 else list(pipelines)[::-1]):
            times[key].append(pipelines[key]())
    median = {}
    for key, ts in times.items():
        median[key[0]] = statistics.median(ts)
        print(f"({key}): {median[key[0]]:.2f} s per epoch (runs: {', '.join(f'{t:.2f}' for t in ts)})")
    print(f"speedup_vs_dataloader={median['b'] / median['a']:.2f} overhead_vs_plain_loop={median['a'] / median['c']:.2f}")


if __name__ == "__main__":
    main()
