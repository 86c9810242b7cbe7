"""The VAE and the data module under Lightning's DDP, two CPU processes: the epoch's validation metrics
are those of one process evaluating the same weights on the same images.

The training runs in tests/ddp_worker.py, in a subprocess: ``strategy="ddp"`` starts the second process by
running the launching script again, which must not be pytest.
"""
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from ddp_worker import DATA, EPOCHS, MODEL, SEED
from vae_helpers import VAE, MNISTDataModule
from vae_helpers.training import ReseedEachEpoch

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(WORKER), str(out)], cwd=WORKER.parent.parent, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    weights = [torch.load(out / f"weights-rank{rank}.pt", weights_only=True) for rank in (0, 1)]
    history = pd.DataFrame(torch.load(out / "history.pt", weights_only=True))
    return weights, history, done.stdout + done.stderr


def test_both_processes_end_with_the_same_weights_and_quietly(ddp_run):
    (w0, w1), history, printed = ddp_run
    assert w0.keys() == w1.keys() and all(torch.equal(w0[k], w1[k]) for k in w0)
    # each process trained on its half of 2,000 images: 10 batches of 100 per epoch, as one gradient step
    assert history["step"].max() == EPOCHS * 10 - 1
    assert "GLOBAL_RANK" not in printed and "LOCAL_RANK" not in printed  # none of Lightning's start-up lines


def test_epoch_validation_metrics_equal_a_single_process_evaluation(ddp_run):
    (weights, _), history, _ = ddp_run
    model = VAE(**MODEL)
    model.load_state_dict(weights)
    model.eval()
    x = MNISTDataModule(**DATA).tensors("val")[0]  # 999 images: 500 on process 0, 499 on process 1
    logged = history.dropna(subset=["val/elbo"]).iloc[-1]
    with torch.no_grad():
        # the rate is deterministic: one pass over every image, each counted once
        rate = model.loss_terms(x)["rate"].double().mean().item()
        assert logged["val/rate"] == pytest.approx(rate, rel=1e-6)
        # the other terms draw z ~ q(z|x): draw the same noise as each process, which took every second
        # image in batches of eval_batch_size, with torch seeded by ReseedEachEpoch
        totals = {}
        for rank in (0, 1):
            torch.manual_seed(ReseedEachEpoch(SEED).seed_for(EPOCHS - 1, "val", rank))
            for xb in x[rank::2].split(DATA["eval_batch_size"]):
                for name, value in model.loss_terms(xb).items():
                    totals[name] = totals.get(name, 0.0) + value.double().sum().item()
    for name, total in totals.items():
        assert logged[f"val/{name}"] == pytest.approx(total / len(x), rel=1e-6), name
