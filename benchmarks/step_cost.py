"""What a training step of each ``benchmarks/nll.py`` option costs, as a multiple of the default ELBO step.

In a fixed wall-clock budget an option that makes a step r times as costly trains r times fewer steps, so
r is the price it has to earn back in nats. This script builds each option's model with ``nll.py``'s own
``model_from_options`` and trains it through the same ``fit`` (batch 128, dynamically binarized MNIST), timing
``--steps`` steps after ``--skip`` warm-up steps by the wall clock. The options are timed in turn, in
alternating order over ``--repeats`` rounds (so that a slow spell of a shared machine hits all alike), and
each one's median is reported. The ratios, not the milliseconds, are the figures to carry to another
machine; they depend on the precision (``--precision``, as in ``nll.py``), since bfloat16 speeds up the
large matrix products more than the small ones.

    python benchmarks/step_cost.py [--precision 32-true] [--repeats 3]

The last line is ``elbo_step_ms=<ms>``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import nll  # noqa: E402  (the benchmark whose options are timed)

from vae_helpers import MNISTDataModule, fit  # noqa: E402

#: the options timed, as they are written on nll.py's command line; the first is the reference
OPTIONS = ("", "--k-train 5", "--k-train 10", "--k-train 5 --estimator dreg", "--flow-layers 2",
           "--prior mog --prior-components 100", "--prior vamp --prior-components 100",
           "--prior vamp --prior-components 100 --flow-layers 2")


class StepTimer(pl.Callback):
    """Wall-clock seconds per step over the steps after the first ``skip``."""

    def __init__(self, skip: int):
        self.skip = skip

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.skip:
            self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module):
        self.seconds_per_step = (time.perf_counter() - self.start) / (trainer.global_step - self.skip)


def seconds_per_step(options: str, datamodule, steps: int, skip: int, precision: str) -> float:
    torch.manual_seed(0)
    model = nll.model_from_options(nll.parse_options(options.split()), datamodule)
    timer = StepTimer(skip)
    fit(model, datamodule, max_epochs=100, max_steps=skip + steps, precision=precision, limit_val_batches=0,
        log_every_n_steps=100, progress=False, callbacks=[timer])
    return timer.seconds_per_step


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=nll.positive(int), default=200, help="steps timed per run (default 200)")
    parser.add_argument("--skip", type=nll.non_negative_int, default=20, help="warm-up steps not timed (default 20)")
    parser.add_argument("--repeats", type=nll.positive(int), default=3, help="runs per option; the median is used")
    parser.add_argument("--precision", default="bf16-mixed", choices=nll.PRECISIONS)
    parser.add_argument("--only", nargs="+", metavar="OPTIONS", help="time these option strings instead")
    args = parser.parse_args(argv)
    options = ("", *args.only) if args.only else OPTIONS
    datamodule = MNISTDataModule(batch_size=128, val_size=0, binarize="dynamic", seed=0)
    datamodule.setup()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, precision {args.precision}; "
          f"{args.steps} steps timed after {args.skip}, median of {args.repeats}", flush=True)
    times = {option: [] for option in options}
    for i in range(args.repeats):
        for option in (options if i % 2 == 0 else options[::-1]):
            times[option].append(seconds_per_step(option, datamodule, args.steps, args.skip, args.precision))
    median = {option: statistics.median(ts) for option, ts in times.items()}
    for option, ts in times.items():
        print(f"{option or '(the ELBO, default)':55s} {1000 * median[option]:6.1f} ms  "
              f"{median[option] / median['']:4.2f} x  (runs: {', '.join(f'{1000 * t:.1f}' for t in ts)})")
    print(f"elbo_step_ms={1000 * median['']:.1f}")
    return median


if __name__ == "__main__":
    main()
