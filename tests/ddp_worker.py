"""Train a VAE with Lightning's DDP on two CPU processes: the script behind tests/test_ddp.py.

``strategy="ddp"`` starts the second process by running the launching script again, so the training
lives in this script, run in a subprocess, rather than in the pytest process. Every process saves its
final weights; process 0 also saves the metric history.

    python tests/ddp_worker.py OUT_DIR
"""
import sys
from pathlib import Path

import torch

from vae_helpers import VAE, MNISTDataModule, fit

# An odd number of validation images, so the two processes validate different numbers of them
DATA = dict(subset=2000, val_size=999, batch_size=100, eval_batch_size=128, binarize="dynamic", seed=0)
MODEL = dict(latent_dim=4, hidden=(64,))
EPOCHS, SEED = 2, 0


def main(out: Path) -> None:
    torch.set_num_threads(1)  # two processes on a small machine: one thread each
    torch.manual_seed(SEED)  # the initial weights; fit seeds everything after
    model = VAE(**MODEL)
    history = fit(model, MNISTDataModule(**DATA), max_epochs=EPOCHS, seed=SEED, strategy="ddp",
                  accelerator="cpu", devices=2)
    rank = model.trainer.global_rank
    torch.save(model.state_dict(), out / f"weights-rank{rank}.pt")
    if rank == 0:
        torch.save(history.to_dict("list"), out / "history.pt")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
