"""The pieces of benchmarks/nll.py: the clock-driven learning rate, the IWAE objective and a short run."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vae_helpers import log_importance_weights, log_likelihood

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nll_benchmark", ROOT / "benchmarks" / "nll.py")
nll = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nll)


def test_schedule_warms_up_then_decays_linearly_to_zero():
    schedule = nll.BudgetSchedule(minutes=10, peak_lr=2e-3, warmup=0.05)
    lrs = [schedule.lr_at(f) for f in (0.0, 0.025, 0.05, 0.525, 1.0, 1.5)]
    assert lrs[0] == pytest.approx(0.0) and lrs[1] == pytest.approx(1e-3) and lrs[2] == pytest.approx(2e-3)
    assert lrs[3] == pytest.approx(1e-3) and lrs[4] == pytest.approx(0.0) and lrs[5] == pytest.approx(0.0)


@pytest.mark.parametrize("kwargs, message", [(dict(minutes=0, peak_lr=1e-3), "minutes"),
                                             (dict(minutes=1, peak_lr=-1.0), "peak_lr"),
                                             (dict(minutes=1, peak_lr=1e-3, warmup=1.0), "warmup")])
def test_schedule_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        nll.BudgetSchedule(**kwargs)


def test_iwae_objective_is_minus_the_importance_weighted_bound():
    torch.manual_seed(0)
    model = nll.IWAE(k_train=8, latent_dim=3, hidden=(16,))
    x = (torch.rand(5, 1, 28, 28) < 0.3).float()
    torch.manual_seed(1)
    loss = model.loss_terms(x)["loss"]
    torch.manual_seed(1)
    log_w = log_importance_weights(model, x, 8)
    torch.testing.assert_close(loss, -(torch.logsumexp(log_w, 0) - math.log(8)))
    assert loss.shape == (5,) and loss.requires_grad


def test_iwae_logs_the_elbo_of_the_same_draws():
    torch.manual_seed(0)
    model = nll.IWAE(k_train=1, latent_dim=3, hidden=(16,))
    x = (torch.rand(4, 1, 28, 28) < 0.3).float()
    terms = model.loss_terms(x)
    torch.testing.assert_close(terms["loss"], -terms["elbo"])  # IWAE_1 is the one-draw ELBO
    torch.testing.assert_close(terms["elbo"], -(terms["distortion"] + terms["rate"]))
    with torch.no_grad():  # over many draws the distortion is E_q[-log p(x|z)]
        draws = torch.stack([model.loss_terms(x)["distortion"] for _ in range(4000)]).mean(0)
        q = model.encode(x)
        reference = torch.stack([-model.decode(q.sample()).log_prob(x) for _ in range(4000)]).mean(0)
    torch.testing.assert_close(draws, reference, rtol=0, atol=0.5)


def test_iwae_rejects_bad_k():
    with pytest.raises(ValueError, match="k_train"):
        nll.IWAE(k_train=0)


def test_evaluation_in_batches_gives_the_figures_of_the_whole_tensor():
    """The progress bar's batches change nothing: the same figures to the last bit, and the same draws after."""
    torch.manual_seed(0)
    model = nll.VAE(latent_dim=3, hidden=(16,))
    x = (torch.rand(250, 1, 28, 28) < 0.3).float()
    torch.manual_seed(1)
    whole = log_likelihood(model, x, k=7, batch_size=100, chunk_size=3)
    after_whole = torch.rand(4)
    torch.manual_seed(1)
    batched = log_likelihood(model, nll.evaluation_batches(x, live=False), k=7, batch_size=100, chunk_size=3)
    assert batched == whole and torch.equal(torch.rand(4), after_whole)


def test_a_short_run_prints_its_figures_and_saves_them(tmp_path):
    out = tmp_path / "nll.json"
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "nll.py"), "--minutes", "0.05", "--hidden", "32",
                          "--latent-dim", "4", "--k", "10", "--test-images", "50", "--save", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    last = run.stdout.strip().splitlines()[-1]
    assert last.startswith("nll_nats=") and last.endswith("minutes=0.05")
    saved = json.loads(out.read_text())
    assert saved["nll_nats"] == pytest.approx(float(last.split()[0].split("=")[1]), abs=0.006)
    assert saved["nll_nats"] < saved["neg_elbo_nats"] and saved["test_images"] == 50 and saved["k"] == 10


def test_lesson_06_quotes_the_saved_benchmark_figures():
    """Lesson 06 quotes the benchmark's figures (it cannot rerun an hour of training); they must be the
    figures the benchmark saved in benchmarks/results/, so that a rerun that changes them shows here."""
    import ast

    import nbformat

    lesson = nbformat.read(ROOT / "notebooks" / "06_full_elbo.ipynb", as_version=4)
    source = next(c.source for c in lesson.cells if c.cell_type == "code" and "reference_runs = {" in c.source)
    literal = source[source.index("{", source.index("reference_runs = {")):]
    quoted = ast.literal_eval(literal[: literal.index("\n}") + 2])
    assert set(quoted) == {10, 60}
    for minutes, figures in quoted.items():
        saved = json.loads((ROOT / "benchmarks" / "results" / f"nll-{minutes}min.json").read_text())
        assert saved["minutes"] == minutes and saved["test_images"] == 10_000 and saved["k"] == 1000
        assert figures == {key: saved[key] for key in figures}, f"lesson 06 misquotes the {minutes}-minute run"
