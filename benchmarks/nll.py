"""The course's reference VAE, trained for a wall-clock budget, and its test log-likelihood on MNIST.

Protocol (fixed; only the training recipe is ours to choose):

- train on all 60,000 MNIST training images, binarized dynamically: every batch is a fresh Bernoulli
  draw of the grey values, so the model never sees the same binary image twice and overfits little;
- stop when the budget (minutes of training on the command line) is spent; evaluation is not counted;
- evaluate the whole 10,000-image test set, binarized once with a fixed seed, by
  NLL = -mean_x IWAE_k(x), with k = 1000 importance samples from q(z|x) (Burda et al., 2016), in nats.
  IWAE_k is a lower bound on log p(x) that tightens as k grows, so the NLL printed is an upper bound.

The last line printed is ``nll_nats=<value> minutes=<budget>``. On a terminal, progress bars on stderr
follow the training budget and the evaluation's batches; when stderr is piped or redirected there are none.

    python benchmarks/nll.py --minutes 10

The recipe, each choice a known one:

- Architecture: a one-stochastic-layer VAE, 50 latent dimensions, with two deterministic hidden layers
  of 500 tanh units in the encoder and the decoder. This is the shape of the VAE in Burda et al. (2016)
  (they used 200 units) widened: wider layers fit MNIST better and, with dynamic binarization, overfit
  little. More latent dimensions than MNIST needs is harmless; the unused ones collapse to the prior.
- Mixed precision: the matrix products run in bfloat16 (``precision="bf16-mixed"``), which CPUs with
  AVX-512 BF16 do in hardware: a training step of this model took 10.3 ms here against 13.6 ms in
  float32. The weights, Adam's state and the loss stay in float32, and the evaluation runs in float32.
  In a fixed budget, a third more updates is worth more than the digits bfloat16 drops. On a CPU without
  bfloat16 hardware (AVX2 only) torch emulates it and a step took 7 times as long as in float32 (about 200
  against 28 ms of CPU, one thread): pass ``--precision 32-true`` there.
- Learning rate: Adam, a linear warm-up to ``--lr`` over the first 2 % of the budget, then linear decay to zero at the end of the
  budget, scheduled on the clock, not on a step count, so the run ends annealed whatever the machine's
  speed. Linear decay to zero is the schedule Li et al. (2020) found best for budgeted training; the
  low learning rate at the end averages out the gradient noise that a constant rate leaves in the
  weights.
- KL warm-up: the KL weight rises from 0 to 1 over the first ``--kl-warmup`` epochs (Bowman et al.,
  2016; Sønderby et al., 2016), so the decoder learns to use z before the KL term can switch latent
  dimensions off.
- Batch size 128, as in the lessons: larger batches run faster per image on two cores (an epoch at
  batch 256 took 0.7 times as long as at 128) but take half as many steps; we kept 128.
- ``--k-train`` > 1 trains on the importance-weighted bound IWAE_k instead of the ELBO (Burda et al.,
  2016; lesson 12), the bound the evaluation measures. Every step decodes k draws: k = 5 made a step 1.7
  times as slow in bfloat16 and 2.4 times in float32. It is the best recipe measured for both budgets
  (``make nll RECIPE=iwae5``, i.e. ``--k-train 5``; ``benchmarks/results/``): 86.52 nats in 10 minutes
  against 86.82 for the ELBO on the same machine, with 82.6 epochs against 114.5, and 85.32 in 60 minutes
  against 85.90 for the ELBO's hour (on an earlier machine, 12.1 against 11.2 ms per ELBO step), with 462
  epochs against 635. Its test ELBO is worse, by 2.3 nats at both budgets: the encoder becomes a proposal
  for importance sampling. It is off by default so that the default model is a VAE, the one lesson 06 sets
  beside Burda et al.'s VAE.

Options the default recipe leaves off, each a known improvement that costs steps in a fixed budget.
``python benchmarks/step_cost.py`` times a step of each against an ELBO step on the machine it runs on;
with bfloat16 on two cores with AVX-512 BF16 it printed (ELBO step 9.7 ms): IWAE_5 1.71, IWAE_10 2.40,
DReG at k = 5 3.19, 2 flow layers 1.57, mixture of Gaussians K = 100 1.56, VampPrior K = 100 1.96, and
VampPrior K = 100 with 2 flow layers 2.48. The figures given with each option below are older, each as a
multiple of an ELBO step of the default model: CPU time per step at batch 128, float32, one thread, on a
two-core AVX2 machine under load from other jobs. The ELBO step took
28 to 32 ms of CPU there, so each ratio is good to about 10 %, and the ratios, not the milliseconds, are
the figures to carry to another machine. From the two saved ELBO runs (5.5 times the steps gave 0.92 nats), a
step r times as costly has to buy about 0.5 ln r nats to pay for itself in a fixed budget; IWAE_5 (r = 1.7,
0.27 nats to buy) bought 0.30 in 10 minutes. Evaluation is
not in the budget, but its cost grows too (below).

- ``--estimator dreg`` keeps the objective (IWAE_k; the ELBO at k = 1) and changes only the gradient for
  q's parameters to the doubly reparameterized one (Tucker et al., 2019): the plain IWAE_k gradient's
  signal-to-noise ratio for the encoder falls as 1/sqrt(k) (Rainforth et al., 2018), so IWAE's decoder
  improves with k while its encoder gets worse; DReG's does not fall. Tucker et al. report IWAE-DReG
  ahead of IWAE at equal k. It needs the diagonal Gaussian q (it detaches q's mean and log-variance),
  so it is refused with a flow; ``vae_helpers.objectives.dreg_objective`` decodes the k draws twice (once
  for the encoder's term, once for the decoder's), so a step costs more than an IWAE_k step. At k = 1 it
  is the ELBO with the path-only gradient for q (the score term dropped). KL warm-up does not apply to
  either estimator. Both are the course's ``vae_helpers.iwae.IWAEVAE``, which with DReG also decodes k
  fresh draws, without gradient, for the distortion it logs.
  Step cost: IWAE_2 1.35, IWAE_5 2.4; DReG at k = 1 1.8 and at k = 5 5.5, that extra decode included (measured
  on an otherwise idle machine; without it they were 1.35 and 3.8).
- ``--flow-layers L`` (with ``--flow-hidden``) makes q(z|x) a normalizing flow, L affine coupling layers
  on the encoder's Gaussian, each conditioned on the encoder's output (``vae_helpers.flows``). A richer q
  narrows the gap KL(q(z|x) || p(z|x)) between the ELBO and log p(x), and the decoder is then no longer
  pushed towards models whose posterior a diagonal Gaussian fits; Rezende and Mohamed (2015) report the
  bound on MNIST falling from 89.9 to 85.1 nats as planar flow layers go from 0 to 80. The evaluation's
  k = 1000 already closes most of that gap for a diagonal q, so the NLL gains less than the ELBO. Each
  layer is an MLP on (z, h) run on every draw. With a flow the rate is the one-sample estimate
  log q(z|x) - log p(z), as there is no closed form. Step cost with 64 hidden units: 2 layers 1.1,
  4 layers 1.2, 4 layers with IWAE_5 3.2; evaluation 1.4 times as long with 4 layers.
- ``--prior mog`` (a mixture of K diagonal Gaussians, learned) or ``--prior vamp`` (the VampPrior: the
  mixture of the encodings of K learned pseudo-inputs, started at K training images (grey values) drawn with
  ``--seed``), K = ``--prior-components`` (default 500, the K of Tomczak and Welling, 2018). N(0, I)
  over-regularizes: the ELBO's optimal prior is the aggregate posterior (1/N) sum_n q(z|x_n), which the
  VampPrior approximates with K pseudo-inputs in place of N images. Tomczak and Welling report 85.57 nats
  for a one-layer VAE with the VampPrior, against 86.76 for the one-layer VAE of Burda et al. (other
  networks, trained for thousands of epochs). The
  VampPrior encodes its K pseudo-inputs at every step, as many rows as K images through the encoder, and
  log p(z) is a logsumexp over K components for every draw; a mixture of Gaussians skips the encoder
  pass. The rate is then the one-sample estimate log q(z|x) - log p(z), and KL warm-up applies to it.
  Step cost: mixture of Gaussians K = 50 1.0, K = 100 1.25, K = 500 2.6; VampPrior K = 100 1.5, K = 500
  4.8; VampPrior K = 100 with 2 flow layers 1.4 to 1.9, with IWAE_5 4.5 to 5.8 (the ELBO step took 23 ms
  of CPU in that later measurement, 28 to 32 in the others). Scoring k = 1000 draws under K components
  makes the evaluation slower as well: 3.3 times as long with the K = 100 mixture and 12 times with the
  K = 500 VampPrior (hours for the 10,000 digits), and the evaluation takes its draws in smaller chunks so that the (draws, images, K, D) array stays
  near a gigabyte (the same estimate; with N(0, I) the chunks are as before).

The evaluation is the same for every option: ``log_likelihood`` draws from the model's own q(z|x) (the
flow, if any) and scores each draw under the model's own p(z) (the mixture, if any).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytorch_lightning as pl
import torch
from tqdm import tqdm

from vae_helpers import VAE, MNISTDataModule, MixturePrior, VampPrior, checks, fit, log_likelihood, mlp
from vae_helpers.flows import FlowEncoding
from vae_helpers.iwae import GRADIENTS, IWAEVAE
from vae_helpers.priors import initial_pseudo_inputs

#: the priors p(z) and the gradient estimators of the IWAE_k objective that ``--prior`` and ``--estimator`` take
PRIORS = ("standard", "mog", "vamp")
ESTIMATORS = GRADIENTS
#: the precisions ``--precision`` takes (Lightning's names)
PRECISIONS = ("bf16-mixed", "32-true")


def build_model(latent_dim: int = 50, hidden=(500, 500), activation: str = "tanh", lr: float = 2e-3,
                warmup_steps: int = 0, k_train: int = 1, estimator: str = "iwae", flow_layers: int = 0,
                flow_hidden=(64,), prior: str = "standard", prior_components: int = 500,
                train_images: torch.Tensor | None = None, seed: int = 0) -> VAE:
    """The benchmark's model for one choice of the options (see the module docstring).

    k_train = 1 with ``estimator="iwae"`` is the course's ``VAE`` on the ELBO (with KL warm-up); k_train > 1,
    or ``estimator="dreg"``, trains on IWAE_k (``vae_helpers.iwae.IWAEVAE``, without warm-up). ``flow_layers`` > 0 gives q(z|x) that many
    affine coupling layers with conditioners of widths ``flow_hidden``. ``prior`` is ``"standard"`` N(0, I),
    ``"mog"`` a learned mixture of ``prior_components`` Gaussians, or ``"vamp"`` the VampPrior with that many
    pseudo-inputs, started at images of ``train_images`` (N, 1, 28, 28) drawn with ``seed``. The mixture's
    means are drawn with ``seed`` too; every other weight from torch's global generator, as ``VAE`` draws them.
    """
    checks.choice("estimator", estimator, ESTIMATORS)
    checks.choice("prior", prior, PRIORS)
    k_train = checks.integer("k_train", k_train)
    flow_layers = checks.integer("flow_layers", flow_layers, minimum=0)
    prior_components = checks.integer("prior_components", prior_components)
    if estimator == "dreg" and flow_layers:
        raise ValueError(f"estimator='dreg' needs q(z|x) to be the diagonal Gaussian (it detaches q's mean and "
                         f"log-variance), so it cannot train a flow; got flow_layers={flow_layers}")
    if prior == "vamp" and train_images is None:
        raise ValueError("prior='vamp' starts its pseudo-inputs at training images: pass train_images (N, 1, 28, 28)")
    settings = dict(latent_dim=latent_dim, hidden=tuple(hidden), activation=activation, lr=lr,
                    warmup_steps=warmup_steps)
    parts = {}
    if prior == "vamp":  # the prior encodes its pseudo-inputs with the VAE's own encoder, so it is built first
        parts["encoder"] = mlp([28 * 28, *hidden, 2 * latent_dim], activation)
    if flow_layers:
        parts["encoding"] = FlowEncoding(latent_dim, flow_layers, hidden=tuple(flow_hidden))
    if prior == "mog":
        parts["prior"] = MixturePrior(latent_dim, prior_components, seed=seed)
    elif prior == "vamp":
        parts["prior"] = VampPrior(parts["encoder"], initial_pseudo_inputs(train_images, prior_components, seed=seed))
    if k_train == 1 and estimator == "iwae":
        return VAE(**settings, **parts)
    settings["warmup_steps"] = 0  # KL warm-up weights the ELBO's rate, which IWAE_k does not split off
    return IWAEVAE(k=k_train, gradient=estimator, **settings, **parts)


def describe(model: VAE) -> str:
    """One line naming the objective, q(z|x) and p(z) of a model that ``build_model`` made."""
    k, gradient = getattr(model, "k", 1), getattr(model, "gradient", "iwae")
    objective = f"IWAE_{k} with DReG gradients" if gradient == "dreg" else (f"IWAE_{k}" if k > 1 else "ELBO")
    layers = 0 if model.encoding is None else len(model.encoding.conditioners)
    q = f"flow of {layers} coupling layer{'s' * (layers != 1)}" if layers else "diagonal Gaussian"
    p = type(model.p_z).__name__
    if isinstance(model.p_z, MixturePrior):
        p += f" (K={len(model.p_z.logits)})"
    elif isinstance(model.p_z, VampPrior):
        p += f" (K={len(model.p_z.free)})"
    return f"objective {objective}; q(z|x) {q}; p(z) {p}"


class BudgetSchedule(pl.Callback):
    """Set Adam's learning rate at every step from the fraction f of the time budget spent:

        lr(f) = peak_lr * f / warmup                      for f < warmup,
        lr(f) = peak_lr * (1 - f) / (1 - warmup)          after, reaching 0 when the budget is spent.
    """

    def __init__(self, minutes: float, peak_lr: float, warmup: float = 0.02):
        for name, value in (("minutes", minutes), ("peak_lr", peak_lr)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        if not (isinstance(warmup, (int, float)) and 0 <= warmup < 1):
            raise ValueError(f"warmup must be a fraction of the budget in [0, 1), got {warmup!r}")
        self.seconds, self.peak_lr, self.warmup = 60 * minutes, peak_lr, warmup

    def lr_at(self, f: float) -> float:
        f = min(max(f, 0.0), 1.0)
        return self.peak_lr * (f / self.warmup if f < self.warmup else (1 - f) / (1 - self.warmup))

    def on_train_start(self, trainer, pl_module):
        self.start = time.monotonic()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        lr = self.lr_at((time.monotonic() - self.start) / self.seconds)
        for group in trainer.optimizers[0].param_groups:
            group["lr"] = lr


class BudgetBar(pl.Callback):
    """A progress bar over the training budget's seconds, with the epochs, steps and learning rate so far.

    Training stops on the clock, not after a number of epochs, so the bar counts seconds. It is redrawn at
    most every ``every`` seconds; a step costs it one clock reading.
    """

    def __init__(self, minutes: float, every: float = 0.5):
        self.seconds, self.every = 60 * minutes, every

    def on_train_start(self, trainer, pl_module):
        self.start = self.shown = time.monotonic()
        self.bar = tqdm(total=self.seconds, desc="training", unit="s", dynamic_ncols=True,
                        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s{postfix}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        now = time.monotonic()
        if now - self.shown >= self.every:
            self.shown = now
            self.show(trainer, now)

    def on_train_end(self, trainer, pl_module):
        self.show(trainer, time.monotonic())
        self.bar.close()

    def on_exception(self, trainer, pl_module, exception):
        if hasattr(self, "bar"):
            self.bar.close()

    def show(self, trainer, now: float) -> None:
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        self.bar.n = min(now - self.start, self.seconds)
        epochs = trainer.global_step / trainer.num_training_batches
        self.bar.set_postfix_str(f"epoch {epochs:.1f}, step {trainer.global_step}, lr {lr:.2e}")


def evaluation_batches(images: torch.Tensor, live: bool, batch_size: int = 100):
    """The test images in batches of ``batch_size``, behind a progress bar if ``live``.

    They are the batches log_likelihood cuts from the tensor itself, in the same order, so it makes the same
    draws and the same sums: the same figures, bit for bit, as when it is given the tensor.
    """
    return tqdm(images.split(batch_size), desc="evaluating", unit="batch", disable=not live, dynamic_ncols=True)


def evaluation_chunk(k: int, latent_dim: int, components: int | None, batch_size: int = 100) -> int:
    """How many of the k draws the evaluation scores at once: 1000 (all of them, for k <= 1000) with N(0, I);
    with a K-component mixture prior, few enough that log p(z)'s (draws, batch, K, D) array holds at most
    250 million numbers (a gigabyte in float32). The estimate is the same either way: the chunks are combined
    by logsumexp (``log_likelihood``)."""
    chunk = min(k, 1000)
    if components:
        chunk = min(chunk, max(1, 250_000_000 // (batch_size * components * latent_dim)))
    return chunk


def positive(kind):
    def parse(text):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        return value
    return parse


def non_negative_int(text):
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def parse_options(argv=None) -> argparse.Namespace:
    """The command line, checked: a bad value or a combination that cannot run is an error naming the option."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=positive(float), default=10.0, help="training budget (default 10)")
    parser.add_argument("--hidden", type=positive(int), nargs="+", default=[500, 500], help="hidden widths")
    parser.add_argument("--latent-dim", type=positive(int), default=50)
    parser.add_argument("--activation", default="tanh", choices=["tanh", "relu", "elu", "softplus"])
    parser.add_argument("--batch-size", type=positive(int), default=128)
    parser.add_argument("--lr", type=positive(float), default=2e-3, help="peak learning rate")
    parser.add_argument("--kl-warmup", type=float, default=5.0, help="epochs over which the KL weight rises to 1")
    parser.add_argument("--k-train", type=positive(int), default=1, help="1: the ELBO; k > 1: IWAE_k")
    parser.add_argument("--estimator", default="iwae", choices=ESTIMATORS,
                        help="gradient of the IWAE_k objective: iwae (reparameterized) or dreg (doubly reparameterized)")
    parser.add_argument("--flow-layers", type=non_negative_int, default=0,
                        help="affine coupling layers on q(z|x); 0: the diagonal Gaussian (default)")
    parser.add_argument("--flow-hidden", type=positive(int), nargs="+",
                        help="hidden widths of each coupling layer's network (default 64; needs --flow-layers)")
    parser.add_argument("--prior", default="standard", choices=PRIORS,
                        help="p(z): standard N(0, I), mog (learned mixture of Gaussians), vamp (VampPrior)")
    parser.add_argument("--prior-components", type=positive(int),
                        help="K, the mixture's components or the VampPrior's pseudo-inputs (default 500; needs "
                             "--prior mog or vamp)")
    parser.add_argument("--precision", default="bf16-mixed", choices=PRECISIONS)
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"], help="auto: a GPU if there is one")
    parser.add_argument("--k", type=positive(int), default=1000, help="importance samples for the test NLL")
    parser.add_argument("--test-images", type=positive(int), default=10_000, help="first n test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.flow_hidden is not None and not args.flow_layers:
        parser.error("argument --flow-hidden: sets the widths of the flow's layers, so it needs --flow-layers >= 1")
    if args.prior_components is not None and args.prior == "standard":
        parser.error("argument --prior-components: sets K of a mixture prior, so it needs --prior mog or --prior vamp")
    if args.estimator == "dreg" and args.flow_layers:
        parser.error("argument --estimator: dreg needs the diagonal Gaussian q(z|x) (it detaches q's mean and "
                     f"log-variance), so it cannot train a flow; drop --flow-layers {args.flow_layers}")
    if args.flow_layers and args.latent_dim < 2:
        parser.error("argument --flow-layers: a coupling layer keeps half of z fixed, so it needs --latent-dim >= 2")
    if args.prior == "vamp" and (args.prior_components or 500) > 60_000:
        parser.error(f"argument --prior-components: the VampPrior starts at K training images, at most 60000, "
                     f"got {args.prior_components}")
    args.flow_hidden = args.flow_hidden or ([64] if args.flow_layers else None)
    args.prior_components = args.prior_components or (500 if args.prior != "standard" else None)
    return args


def model_from_options(args: argparse.Namespace, datamodule: MNISTDataModule) -> VAE:
    """``build_model`` for the options ``parse_options`` returned, the KL warm-up counted in the steps of an
    epoch of ``datamodule`` (set up), the VampPrior started at its training images."""
    steps_per_epoch = len(datamodule.train_dataloader())
    return build_model(latent_dim=args.latent_dim, hidden=args.hidden, activation=args.activation, lr=args.lr,
                       warmup_steps=round(args.kl_warmup * steps_per_epoch), k_train=args.k_train,
                       estimator=args.estimator, flow_layers=args.flow_layers, flow_hidden=args.flow_hidden or (64,),
                       prior=args.prior, prior_components=args.prior_components or 500,
                       train_images=datamodule.tensors("train")[0] if args.prior == "vamp" else None, seed=args.seed)


def main(argv=None) -> dict:
    """Train and evaluate as the command line ``argv`` (default ``sys.argv[1:]``) says; return the figures."""
    args = parse_options(argv)
    torch.manual_seed(args.seed)
    datamodule = MNISTDataModule(batch_size=args.batch_size, val_size=0, binarize="dynamic", seed=args.seed)
    datamodule.setup()
    steps_per_epoch = len(datamodule.train_dataloader())
    model = model_from_options(args, datamodule)
    recipe = {key: value for key, value in vars(args).items() if key != "save"}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {recipe}", flush=True)
    print(describe(model), flush=True)

    live = sys.stderr.isatty()  # progress bars on a terminal only
    start = time.monotonic()
    history = fit(model, datamodule, max_epochs=100_000, seed=args.seed, accelerator=args.accelerator,
                  precision=args.precision, max_time=timedelta(minutes=args.minutes), limit_val_batches=0,
                  log_every_n_steps=100, progress=False,
                  callbacks=[BudgetSchedule(args.minutes, args.lr), *([BudgetBar(args.minutes)] if live else [])])
    train_seconds = time.monotonic() - start
    epochs = model.global_step / steps_per_epoch
    logged, label = ("train/iwae", f"-IWAE_{args.k_train}") if "train/iwae" in history else ("train/elbo", "-ELBO")
    last = history.dropna(subset=[logged]).iloc[-1] if logged in history else None
    print(f"trained {train_seconds / 60:.2f} min: {epochs:.1f} epochs, {model.global_step} steps"
          + (f"; last full epoch's train {label} {-last[logged]:.2f} nats" if last is not None else ""), flush=True)

    # the course's test set: binarized once, with the seed the lessons use, whatever --seed trained with
    test = MNISTDataModule(binarize="dynamic", seed=0).tensors("test")[0][: args.test_images]
    start = time.monotonic()
    torch.manual_seed(args.seed + 1)
    device = "cuda" if args.accelerator != "cpu" and torch.cuda.is_available() else "cpu"
    result = log_likelihood(model.to(device), evaluation_batches(test, live=live), k=args.k, batch_size=100,
                            chunk_size=evaluation_chunk(args.k, args.latent_dim, args.prior_components))
    eval_seconds = time.monotonic() - start
    print(f"test: {result} (evaluation {eval_seconds / 60:.2f} min)")
    figures = dict(nll_nats=round(result.nll_nats, 2), neg_elbo_nats=round(result.neg_elbo_nats, 2),
                   bits_per_dim=round(result.bits_per_dim, 4), minutes=args.minutes, epochs=round(epochs, 1),
                   steps=model.global_step, eval_minutes=round(eval_seconds / 60, 2), k=args.k,
                   test_images=result.n, model=describe(model), recipe=recipe,
                   device=torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads",
                   torch=torch.__version__)
    if args.save:
        args.save.parent.mkdir(parents=True, exist_ok=True)
        args.save.write_text(json.dumps(figures, indent=1) + "\n")
    print(f"epochs={figures['epochs']} test_neg_elbo_nats={figures['neg_elbo_nats']} "
          f"eval_minutes={figures['eval_minutes']}")
    print(f"nll_nats={figures['nll_nats']:.2f} minutes={args.minutes:g}")
    return figures


if __name__ == "__main__":
    main()
