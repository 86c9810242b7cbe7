"""The pieces of benchmarks/nll.py: the clock-driven learning rate, the IWAE and DReG objectives, the options
(objective, flow, prior) built and run end to end, their evaluation, and a short run."""
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from vae_helpers import VAE, StandardNormal, log_importance_weights, log_likelihood
from vae_helpers.grid import latent_grid, posterior_on_grid

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


def test_iwae_rejects_bad_k():
    with pytest.raises(ValueError, match="k_train"):
        nll.build_model(k_train=0, estimator="dreg")


@pytest.mark.parametrize("options", [dict(flow_layers=2, flow_hidden=(8,)), dict(prior="mog", prior_components=3),
                                     dict(prior="vamp", prior_components=3)], ids=["flow", "mog", "vamp"])
def test_iwae_with_a_flow_or_a_mixture_prior_is_the_bound_of_the_models_own_q_and_prior(options):
    """The weights come from the model's q (the flow) and its p(z) (the mixture): the loss is minus IWAE_k of
    log_importance_weights, which uses them, on the same draws; the logged terms add up to the ELBO."""
    torch.manual_seed(0)
    images = torch.rand(10, 1, 28, 28)
    model = nll.build_model(latent_dim=3, hidden=(16,), k_train=6, train_images=images, **options)
    with torch.no_grad():  # a flow starts as the identity; make it bend q, so that its log-determinant counts
        for net in getattr(model.encoding, "conditioners", []):
            nn.init.normal_(net[-1].weight, std=0.5)
    x = (torch.rand(5, 1, 28, 28) < 0.3).float()
    torch.manual_seed(1)
    terms = model.loss_terms(x)
    torch.manual_seed(1)
    log_w = log_importance_weights(model, x, 6)
    torch.testing.assert_close(terms["loss"], -(torch.logsumexp(log_w, 0) - math.log(6)))
    torch.testing.assert_close(terms["elbo"], -(terms["distortion"] + terms["rate"]))


def test_dreg_has_the_value_of_iwae_and_its_decoder_gradient():
    """DReG changes the encoder's gradient only: on the same draws its loss is -IWAE_k, and the decoder's
    gradient is IWAE's, while the encoder's is another."""
    torch.manual_seed(0)
    iwae = nll.build_model(latent_dim=3, hidden=(16,), k_train=5)
    dreg = nll.build_model(latent_dim=3, hidden=(16,), k_train=5, estimator="dreg")
    dreg.load_state_dict(iwae.state_dict())
    assert (dreg.k, dreg.gradient, iwae.gradient) == (5, "dreg", "iwae")
    x = (torch.rand(6, 1, 28, 28) < 0.3).float()
    grads = {}
    for name, model in (("iwae", iwae), ("dreg", dreg)):
        torch.manual_seed(1)
        loss = model.loss_terms(x)["loss"]
        decoder, encoder = list(model.decoder.parameters()), list(model.encoder.parameters())
        grads[name] = (loss.detach(), torch.autograd.grad(loss.mean(), decoder + encoder))
    torch.testing.assert_close(grads["dreg"][0], grads["iwae"][0])
    n_dec = len(list(iwae.decoder.parameters()))
    for g_dreg, g_iwae in zip(grads["dreg"][1][:n_dec], grads["iwae"][1][:n_dec]):  # equal up to rounding
        torch.testing.assert_close(g_dreg, g_iwae, rtol=1e-3, atol=1e-4)
    first_encoder_layer = grads["dreg"][1][n_dec], grads["iwae"][1][n_dec]
    relative = (first_encoder_layer[0] - first_encoder_layer[1]).norm() / first_encoder_layer[1].norm()
    assert relative > 0.05, relative  # in this run the encoder's gradients differ by more than rounding


def test_the_default_model_is_todays_recipe():
    """With no option the benchmark builds the course's VAE on the ELBO, weight for weight as before."""
    args = nll.parse_options([])
    assert (args.k_train, args.estimator, args.flow_layers, args.prior) == (1, "iwae", 0, "standard")
    assert args.flow_hidden is None and args.prior_components is None
    torch.manual_seed(0)
    built = nll.build_model(latent_dim=3, hidden=(16,), warmup_steps=7)
    torch.manual_seed(0)
    plain = VAE(latent_dim=3, hidden=(16,), activation="tanh", lr=2e-3, warmup_steps=7)
    assert type(built) is VAE and built.encoding is None and isinstance(built.p_z, StandardNormal)
    assert built.state_dict().keys() == plain.state_dict().keys()
    assert all(torch.equal(built.state_dict()[key], value) for key, value in plain.state_dict().items())
    assert dict(built.hparams) == dict(plain.hparams)


def test_a_flow_and_a_mixture_prior_are_evaluated_with_their_own_densities():
    """On a model with z in 2D, log p(x) = log int p(x|z) p(z) dz is computed on a grid; the evaluation's
    IWAE_k, with q a (bent) flow and p(z) a two-component mixture, tightens as k grows and reaches it. Had the
    evaluation scored the draws under N(0, I), it would reach the grid's figure for N(0, I), nats away."""
    torch.manual_seed(0)
    model = nll.build_model(latent_dim=2, hidden=(16,), flow_layers=2, flow_hidden=(8,), prior="mog", prior_components=2)
    with torch.no_grad():
        for net in model.encoding.conditioners:  # a flow starts as the identity: bend it
            nn.init.normal_(net[-1].weight, std=0.5)
        model.p_z.mu.copy_(torch.tensor([[2.0, 2.0], [-2.0, 2.0]]))
        model.p_z.logvar.fill_(-1.0)
    x = (torch.rand(8, 1, 28, 28) < 0.3).float()
    z, volume = latent_grid(extent=6.0, n=121)
    nll_grid = -posterior_on_grid(model, x, z, volume)[0].mean().item()
    mixture = model.p_z
    model.p_z = StandardNormal(2)
    nll_grid_standard = -posterior_on_grid(model, x, z, volume)[0].mean().item()
    model.p_z = mixture
    estimates = {}
    for k in (1, 10, 100, 5000):
        torch.manual_seed(1)
        estimates[k] = log_likelihood(model, x, k=k, batch_size=8).nll_nats
    assert estimates[1] > estimates[10] > estimates[100] > estimates[5000]  # in this run: IWAE_k rises with k
    assert abs(estimates[5000] - nll_grid) < 0.5, (estimates, nll_grid)
    assert abs(nll_grid_standard - nll_grid) > 2.0  # the check above could tell the two priors apart


def test_evaluation_chunks_are_smaller_only_for_a_mixture_prior():
    assert [nll.evaluation_chunk(k, 50, None) for k in (10, 1000, 5000)] == [10, 1000, 1000]  # as before
    assert nll.evaluation_chunk(1000, 50, 500) == 100 and nll.evaluation_chunk(1000, 50, 100) == 500
    assert nll.evaluation_chunk(1000, 50, 10) == 1000 and nll.evaluation_chunk(1000, 5000, 60_000) == 1


def run_benchmark(tmp_path, *options):
    """The benchmark in this process, with a 0.3-second budget, a tiny model and 10 test images."""
    out = tmp_path / "nll.json"
    figures = nll.main(["--minutes", "0.005", "--hidden", "16", "--latent-dim", "3", "--k", "5", "--test-images", "10",
                        "--save", str(out), *options])
    assert json.loads(out.read_text()) == json.loads(json.dumps(figures))
    return figures


@pytest.mark.parametrize("options, recorded, model", [
    (["--k-train", "3"], dict(k_train=3, estimator="iwae"), "objective IWAE_3; q(z|x) diagonal Gaussian"),
    (["--k-train", "3", "--estimator", "dreg"], dict(k_train=3, estimator="dreg"), "objective IWAE_3 with DReG"),
    (["--flow-layers", "2", "--flow-hidden", "8"], dict(flow_layers=2, flow_hidden=[8]), "flow of 2 coupling layers"),
    (["--flow-layers", "1"], dict(flow_layers=1, flow_hidden=[64]), "flow of 1 coupling layer;"),
    (["--prior", "mog", "--prior-components", "4"], dict(prior="mog", prior_components=4), "MixturePrior (K=4)"),
    (["--prior", "vamp", "--prior-components", "4", "--k-train", "2"], dict(prior="vamp", prior_components=4, k_train=2),
     "VampPrior (K=4)"),
], ids=["iwae", "dreg", "flow", "flow-default-width", "mog", "vamp-iwae"])
def test_each_option_trains_evaluates_and_is_recorded(tmp_path, capsys, options, recorded, model):
    figures = run_benchmark(tmp_path, *options)
    printed = capsys.readouterr().out
    assert figures["steps"] > 0 and math.isfinite(figures["nll_nats"]) and figures["test_images"] == 10
    assert {key: figures["recipe"][key] for key in recorded} == recorded
    assert model in figures["model"] and figures["model"] in printed
    assert printed.strip().splitlines()[-1] == f"nll_nats={figures['nll_nats']:.2f} minutes=0.005"


@pytest.mark.parametrize("options, named", [
    (["--estimator", "reinforce"], "--estimator"),
    (["--prior", "laplace"], "--prior"),
    (["--flow-layers", "-1"], "--flow-layers"),
    (["--flow-layers", "two"], "--flow-layers"),
    (["--flow-layers", "2", "--flow-hidden", "0"], "--flow-hidden"),
    (["--flow-hidden", "8"], "--flow-hidden"),
    (["--prior", "vamp", "--prior-components", "0"], "--prior-components"),
    (["--prior-components", "10"], "--prior-components"),
    (["--prior", "vamp", "--prior-components", "70000"], "--prior-components"),
    (["--estimator", "dreg", "--flow-layers", "2"], "--estimator"),
    (["--flow-layers", "2", "--latent-dim", "1"], "--flow-layers"),
    (["--k-train", "0"], "--k-train"),
])
def test_bad_options_are_refused_naming_the_option(capsys, options, named):
    with pytest.raises(SystemExit) as stop:
        nll.parse_options(options)
    assert stop.value.code == 2
    assert f"argument {named}" in capsys.readouterr().err


@pytest.mark.parametrize("options, named", [(dict(estimator="score"), "estimator"), (dict(prior="flat"), "prior"),
                                            (dict(flow_layers=-1), "flow_layers"), (dict(k_train=0), "k_train"),
                                            (dict(prior="mog", prior_components=0), "prior_components"),
                                            (dict(estimator="dreg", flow_layers=2), "estimator"),
                                            (dict(prior="vamp"), "train_images")])
def test_build_model_refuses_bad_arguments_naming_them(options, named):
    with pytest.raises(ValueError, match=named):
        nll.build_model(latent_dim=3, hidden=(16,), **options)


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
    assert saved["recipe"]["prior"] == "standard" and saved["recipe"]["flow_layers"] == 0  # the options, recorded


def test_lesson_06_quotes_the_saved_benchmark_figures():
    """Lesson 06 quotes the benchmark's figures (it cannot rerun an hour of training); they must be the
    figures the benchmark saved in benchmarks/results/, so that a rerun that changes them shows here."""
    import ast

    import nbformat

    lesson = nbformat.read(ROOT / "notebooks" / "06_full_elbo.ipynb", as_version=4)
    source = next(c.source for c in lesson.cells if c.cell_type == "code" and "reference_runs = {" in c.source)
    literal = source[source.index("{", source.index("reference_runs = {")):]
    quoted = ast.literal_eval(literal[: literal.index("\n}") + 2])
    results = ROOT / "benchmarks" / "results"
    assert set(quoted) == {path.stem for path in results.glob("*.json")}, "every saved run is in the table"
    for name, figures in quoted.items():
        saved = json.loads((results / f"{name}.json").read_text())
        assert saved["test_images"] == 10_000 and saved["k"] == 1000
        assert name.startswith(f"nll-{saved['minutes']:g}min"), f"{name}.json holds a {saved['minutes']}-minute run"
        recorded = {**saved["recipe"], **saved}  # the figures and the options they were trained with
        assert figures == {key: recorded.get(key) for key in figures}, f"lesson 06 misquotes {name}.json"


def test_the_step_cost_benchmark_times_each_option_against_the_elbo_step():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_cost.py"), "--steps", "3", "--skip", "1",
                          "--repeats", "1", "--precision", "32-true", "--only", "--k-train 2"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = run.stdout.strip().splitlines()
    assert lines[-1].startswith("elbo_step_ms=") and float(lines[-1].split("=")[1]) > 0
    assert any(line.startswith("--k-train 2 ") and " x " in line for line in lines)
