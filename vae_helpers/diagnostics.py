"""Find the usual bugs of a VAE from one batch: ``diagnose(model, x)`` returns a table of checks.

A VAE with a bug usually trains without an error; the bug shows only in the numbers. Each check
recomputes a quantity from the model's own distributions, q(z|x) = ``encode(x)``, p(x|z) = ``decode(z)``
and p(z) = ``prior``, and compares it with what ``loss_terms(x)`` reports or with what the data need:

    loss terms          the logged distortion and rate against E_q[-log p(x|z)], summed over pixels, and
                        KL(q(z|x) || p(z)), summed over latent dimensions; 1/n_pixels means a per-pixel mean
    likelihood          binary data under a Bernoulli; a Gaussian's sigma_x^2 against the mean squared error
                        of the reconstructions, which is the maximum-likelihood sigma_x^2
    encoder scale       q's standard deviations are positive (a negative one: an output used as sigma)
    decoder output      Bernoulli probabilities that round to 0 or 1, or logits confined to [0, 1]
    reparameterization  the distortion's gradient reaches the encoder (z drawn with rsample, not sample)
    collapse            active units, Var_x(E_q[z_j]) > 0.01 (Burda et al., 2016), and the rate per dimension:
                        ``fail`` when none of the d_z units is active (total collapse), ``warn`` when some but
                        not all are (partial collapse), ``ok`` when all d_z are
    finite              no NaN or inf in the loss terms or in the parameters of q(z|x) and p(x|z)

Collapse and non-finite values are symptoms with several causes; when a check for one of their
causes fails too, they are reported as ``warn`` and the cause as ``fail``, so the failures name the bug.

A partial collapse is a warning, not a failure, because it is not always a bug: a unit j whose q(z_j|x)
equals p(z_j) for every x costs no rate and carries nothing, and a VAE keeps only as many units active as
the data repay at its beta, so with beta = 1 and a d_z larger than the data need some units stay inactive.
The warning names how many of the d_z units are active, so that a count lower than expected (a beta set
too large, or a rate charged too much) shows.
"""
from __future__ import annotations

import math

import pandas as pd
import torch
from torch.distributions import Bernoulli, ContinuousBernoulli, Distribution, Independent, Normal, kl_divergence

from . import checks
from .latents import active_units, kl_per_dimension
from .lightning import drawn_codes

#: The checks, in the order they are reported.
CHECKS = ("loss terms", "likelihood", "encoder scale", "decoder output", "reparameterization", "collapse",
          "finite")
#: A symptom and the checks whose failure explains it.
SYMPTOMS = {"collapse": ("loss terms", "likelihood", "decoder output", "reparameterization"),
            "finite": ("encoder scale", "decoder output")}
#: A latent dimension is active when its code mean varies across the data by more than this (Burda et al., 2016).
#: The collapse check fails when no dimension is active and warns when only some are.
ACTIVE_VARIANCE = 0.01
#: A logged term within this factor of 1/n_pixels or 1/D times the recomputed one is read as that mean.
TOLERANCE = 1.15
#: A Gaussian likelihood whose sigma_x^2 exceeds the maximum-likelihood sigma_x^2 by more than this blurs.
SIGMA_RATIO = 3.0


def _base(d: Distribution) -> Distribution:
    while isinstance(d, Independent):
        d = d.base_dist
    return d


def _given(d: Distribution) -> dict[str, torch.Tensor]:
    """The tensors a distribution was built from (``logits`` or ``probs``, ``loc`` and ``scale``)."""
    return {k: v for k, v in vars(_base(d)).items() if isinstance(v, torch.Tensor) and not k.startswith("_")}


def _close(ratio: float, target: float) -> bool:
    return math.isfinite(ratio) and ratio > 0 and abs(math.log(ratio / target)) < math.log(TOLERANCE)


def _row(check: str, status: str, measured: str, advice: str = "") -> dict:
    return {"check": check, "status": status, "measured": measured, "advice": advice}


def _kl(q: Distribution, prior: Distribution, z: torch.Tensor) -> torch.Tensor:
    """KL(q || p(z)) per example: closed form where torch has one, else Monte Carlo over the draws z (S, B, D)."""
    try:
        return kl_divergence(q, prior)
    except NotImplementedError:
        return (q.log_prob(z) - prior.log_prob(z)).mean(0)


def _check_loss_terms(terms, ref_distortion, ref_rate, n_pixels: int, n_latent: int) -> dict:
    if "distortion" not in terms or "rate" not in terms:
        return _row("loss terms", "warn", f"loss_terms returns {sorted(terms)}",
                    "return 'distortion' and 'rate' too, so that their scales can be checked")
    logged_d, logged_r = terms["distortion"].detach().mean().item(), terms["rate"].detach().mean().item()
    ref_d, ref_r = ref_distortion.mean().item(), ref_rate.mean().item()
    if not all(map(math.isfinite, (logged_d, logged_r, ref_d, ref_r))):
        return _row("loss terms", "warn", "skipped: the terms are not finite", "see the 'finite' check")
    ratio_d = logged_d / ref_d if ref_d else float("nan")
    ratio_r = logged_r / ref_r if ref_r > 1e-2 else float("nan")  # a collapsed rate is too small to compare
    problems, scales, unexplained = [], {}, False
    for name, ratio, ref in (("distortion", ratio_d, ref_distortion), ("rate", ratio_r, ref_rate)):
        scales[name] = 1.0  # the reduction found, exactly: the measured ratio carries Monte Carlo noise
        logged = terms[name].detach()
        # equal up to the Monte Carlo error of the logged one-draw estimate, or within 2%
        noise = 4 * (logged - ref).std().item() / math.sqrt(len(ref)) + 0.02 * abs(ref.mean().item())
        if math.isnan(ratio) or abs(logged.mean().item() - ref.mean().item()) <= noise:
            continue
        if _close(ratio, 1 / n_pixels):
            problems.append(f"the {name} is a mean over the {n_pixels} pixels")
            scales[name] = 1 / n_pixels
        elif n_latent > 1 and _close(ratio, 1 / n_latent):
            problems.append(f"the {name} is a mean over the {n_latent} latent dimensions")
            scales[name] = 1 / n_latent
        else:
            problems.append(f"the {name} is {ratio:.3g} times what encode/decode/prior give")
            scales[name] = ratio
            unexplained = True
    # the loss's weight on the rate in units of the ELBO's: loss = s_d d + w s_r r = s_d (d + beta r)
    d, r, loss = (terms[k].detach().double() for k in ("distortion", "rate", "loss"))
    w = ((loss - d) * r).sum() / r.pow(2).sum() if r.abs().max() > 0 else torch.tensor(float("nan"))
    beta = w.item() * scales["rate"] / scales["distortion"]
    measured = (f"distortion {logged_d:.4g} vs E_q[-log p(x|z)] {ref_d:.4g} nats (x{ratio_d:.3g}); "
                f"rate {logged_r:.4g} vs KL {ref_r:.4g} nats"
                + ("" if math.isnan(ratio_r) else f" (x{ratio_r:.3g})")
                + ("" if unexplained else f"; effective beta {beta:.3g}"))
    if problems and unexplained:
        return _row("loss terms", "fail", measured,
                    "; ".join(problems) + ": loss_terms does not compute what encode, decode and prior describe; "
                    "draw z from the q that encode returns, and score it with decode and prior")
    if problems:
        return _row("loss terms", "fail", measured,
                    "; ".join(problems) + ": sum -log p(x|z) over pixels and the KL over latent dimensions, "
                    f"then average over the batch (the loss as written weighs the rate like beta = {beta:.3g})")
    return _row("loss terms", "ok", measured)


def _check_likelihood(x, px, learned_scale: bool) -> dict:
    binary = bool(((x == 0) | (x == 1)).all())
    base, data = _base(px), "binary" if binary else "non-binary"
    if isinstance(base, (Bernoulli, ContinuousBernoulli)):
        name = type(base).__name__
        if binary or isinstance(base, ContinuousBernoulli):
            return _row("likelihood", "ok", f"{name} on {data} data")
        return _row("likelihood", "warn", f"Bernoulli on grey values in [{x.min():.2g}, {x.max():.2g}]",
                    "binarize the data, or use a continuous Bernoulli (Loaiza-Ganem and Cunningham, 2019)")
    if isinstance(base, Normal):
        sigma2 = base.scale.detach().pow(2).mean().item()
        mse = (x - base.loc.detach()).pow(2).mean().item()  # the sigma_x^2 that maximises the likelihood
        if not mse > 0:  # exact (or NaN) reconstructions: no ratio to judge sigma_x^2 by
            return _row("likelihood", "warn" if mse == 0 else "fail",
                        f"Gaussian: sigma_x^2 = {sigma2:.3g}, reconstructions' mean squared error {mse:.3g}",
                        "the reconstructions equal the batch exactly, so sigma_x^2 cannot be judged; try other images"
                        if mse == 0 else "the reconstructions are not finite; see the finite check")
        measured = (f"Gaussian on {data} data: sigma_x^2 = {sigma2:.3g} "
                    f"({'learned' if learned_scale else 'fixed'}), reconstructions' mean squared "
                    f"error {mse:.3g}, ratio {sigma2 / mse:.3g}")
        if sigma2 > SIGMA_RATIO * mse:
            return _row("likelihood", "fail", measured,
                        f"sigma_x^2 is {sigma2 / mse:.3g} times too large, which weighs the distortion down like "
                        f"beta = {sigma2 / mse:.3g}: blurred reconstructions. "
                        + ("Use a Bernoulli likelihood for binary data, or learn sigma_x" if binary else "learn sigma_x"))
        if binary:
            return _row("likelihood", "warn", measured,
                        "a density on binary data: its log p(x) is not comparable with a Bernoulli's; prefer Bernoulli")
        return _row("likelihood", "ok", measured)
    return _row("likelihood", "ok", f"{type(base).__name__}: not checked")


def _check_encoder_scale(q) -> dict:
    base = _base(q)
    if not isinstance(base, Normal):
        return _row("encoder scale", "ok", f"{type(base).__name__}: not checked")
    scale = base.scale.detach()
    negative = (scale <= 0).float().mean().item()
    if negative > 0:
        return _row("encoder scale", "fail",
                    f"{negative:.0%} of q's standard deviations are <= 0 (min {scale.min():.3g}, max {scale.max():.3g})",
                    "an encoder output is used as the standard deviation; treat it as logvar, sigma = exp(logvar / 2)")
    logvar = 2 * scale.log()
    return _row("encoder scale", "ok", f"sigma in [{scale.min():.3g}, {scale.max():.3g}] "
                f"(logvar in [{logvar.min():.3g}, {logvar.max():.3g}])")


def _check_decoder_output(px, given: dict[str, torch.Tensor]) -> dict:
    base = _base(px)
    if isinstance(base, Bernoulli) and "logits" in given:
        lo, hi = given["logits"].min().item(), given["logits"].max().item()
        if lo >= 0 and hi <= 1:
            return _row("decoder output", "fail", f"logits in [{lo:.3g}, {hi:.3g}]",
                        "probabilities are passed where logits are expected (a second sigmoid): every pixel "
                        "gets p in [0.5, 0.73]; pass the decoder's raw output as logits")
        return _row("decoder output", "ok", f"logits in [{lo:.3g}, {hi:.3g}]")
    if isinstance(base, Bernoulli):
        p = given["probs"].detach()
        eps = torch.finfo(p.dtype).eps
        saturated = ((p <= eps) | (p >= 1 - eps)).float().mean().item()
        measured = f"probabilities in [{p.min():.3g}, {p.max():.3g}], {saturated:.2%} within {eps:.2g} of 0 or 1"
        if saturated > 0:
            return _row("decoder output", "fail", measured,
                        "the decoder returns probabilities (sigmoid, then BCE) and some saturate, where "
                        "log p(x|z) is clipped and has no gradient; return logits, Bernoulli(logits=...)")
        return _row("decoder output", "warn", measured,
                    "the decoder returns probabilities: exact only while none saturate; logits are safer")
    if isinstance(base, Normal):
        loc = given.get("loc", base.loc).detach()
        return _row("decoder output", "ok", f"Gaussian means in [{loc.min():.3g}, {loc.max():.3g}]")
    return _row("decoder output", "ok", f"{type(base).__name__}: not checked")


def _check_reparameterization(terms, params, encoder_params) -> dict:
    def norms(name):
        """Gradient norms of the term's batch mean on the encoder's parameters and on all the others."""
        t = terms.get(name)
        if t is None or not t.requires_grad or not params:
            return 0.0, 0.0
        grads = torch.autograd.grad(t.mean(), params, allow_unused=True, retain_graph=True)
        encoder, other = 0.0, 0.0
        for p, g in zip(params, grads):
            if g is not None:
                if any(p is e for e in encoder_params):
                    encoder += g.pow(2).sum().item()
                else:
                    other += g.pow(2).sum().item()
        return math.sqrt(encoder), math.sqrt(other)

    if "distortion" not in terms:
        return _row("reparameterization", "warn", f"loss_terms returns {sorted(terms)}",
                    "return 'distortion' too, so that its gradient can be checked")
    if not encoder_params:
        return _row("reparameterization", "warn", "no parameter of the model changes q(z|x)")
    (g_distortion, g_decoder), (g_rate, _) = norms("distortion"), norms("rate")
    measured = (f"gradient norm of the distortion: {g_distortion:.3g} on the encoder, {g_decoder:.3g} on the "
                f"decoder; of the rate: {g_rate:.3g} on the encoder")
    if g_distortion == 0 and g_decoder > 0:
        return _row("reparameterization", "fail", measured,
                    "the distortion trains the decoder but no gradient reaches the encoder through z: draw z with "
                    "q.rsample() (z = mu + sigma * eps), not q.sample()")
    if g_distortion == 0:
        return _row("reparameterization", "warn", measured,
                    "the distortion has no gradient at all (a saturated decoder?), so none reaches the encoder")
    return _row("reparameterization", "ok", measured)


def _check_collapse(q, x, px, ref_rate) -> dict:
    data_spread = x.var(0).mean().item()
    if not data_spread > 0:  # codes of identical images cannot vary, whatever the encoder does
        return _row("collapse", "warn", "the batch's images are all the same",
                    "collapse is judged by how the codes vary across images: pass a batch of different images")
    mu = q.mean.detach()
    active = active_units(mu, ACTIVE_VARIANCE)
    dims = ""
    if isinstance(_base(q), Normal):
        per_dim = kl_per_dimension(mu, q.variance.detach().log()).sort(descending=True).values
        dims = (f"; rate per dimension, largest first: {', '.join(f'{v:.2g}' for v in per_dim[:4])}"
                + (", ..." if len(per_dim) > 4 else ""))
    # how much the reconstructions differ between examples, relative to how much the data do
    spread = px.mean.detach().var(1).mean().item() / data_spread
    n_units = mu.shape[-1]
    measured = (f"{active} of {n_units} units active, rate {ref_rate.mean().item():.3g} nats{dims}; "
                f"reconstructions vary {spread:.1%} as much as the data")
    if active == 0:
        return _row("collapse", "fail", measured,
                    "posterior collapse: the codes carry no information about x and every reconstruction is the "
                    "same average image; lower beta, or use KL warm-up or free bits")
    if active < n_units:
        return _row("collapse", "warn", measured,
                    f"partial collapse: only {active} of the {n_units} units carry information about x, the other "
                    f"{n_units - active} have q(z_j|x) = p(z_j); expected if the data need fewer units, a sign of "
                    "too large a beta (see the effective beta above) if you expected more; KL warm-up or free bits "
                    "keep more units active")
    return _row("collapse", "ok", measured)


def _check_finite(terms, q, px) -> dict:
    bad = []
    for name, t in terms.items():
        n = int((~torch.isfinite(t.detach())).sum())
        if n:
            bad.append(f"{name} ({n} of {t.numel()})")
    for label, d in (("q(z|x)", q), ("p(x|z)", px)):
        bad += [f"{label}.{k}" for k, v in _given(d).items() if not torch.isfinite(v.detach()).all()]
    if bad:
        return _row("finite", "fail", "not finite: " + ", ".join(bad),
                    "find the first step where a value stops being finite; lower the learning rate")
    return _row("finite", "ok", "loss terms and the parameters of q(z|x) and p(x|z) are finite")


def diagnose(model, x: torch.Tensor, n_samples: int = 8, seed: int = 0) -> pd.DataFrame:
    """Run every check on one batch ``x`` (B, ...) and return a table, one row per check.

    Columns: ``check`` (one of :data:`CHECKS`), ``status`` (``ok``, ``warn`` or ``fail``), ``measured``
    (the numbers the verdict rests on) and ``advice``. The collapse check fails when none of the d_z
    units is active, Var_x(E_q[z_j]) <= 0.01 for every j, and warns when 0 < active < d_z (partial collapse). The model is evaluated in eval mode with its own
    random numbers seeded by ``seed``; its training mode and the global random state are left as they were.
    ``n_samples`` draws of z per example estimate E_q[-log p(x|z)].
    """
    _check_inputs(model, x, n_samples, seed)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            rows = _run(model, x, n_samples)
    finally:
        if was_training:
            model.train()
    for symptom, causes in SYMPTOMS.items():
        failed = [r["check"] for r in rows if r["check"] in causes and r["status"] == "fail"]
        row = next(r for r in rows if r["check"] == symptom)
        if failed and row["status"] in ("fail", "warn"):
            row["status"] = "warn"
            row["advice"] = f"follows from the failed {' and '.join(failed)} check; fix that first"
    return pd.DataFrame(rows, columns=["check", "status", "measured", "advice"])


def _run(model, x: torch.Tensor, n_samples: int) -> list[dict]:
    with drawn_codes(model):  # NaN draws from a broken encoder are reported by the finite check, not refused
        return _checks(model, x, n_samples)


def _checks(model, x: torch.Tensor, n_samples: int) -> list[dict]:
    params = [p for p in model.parameters() if p.requires_grad] if hasattr(model, "parameters") else []
    with torch.enable_grad():
        q = model.encode(x)
        outputs = sum(v.sum() for v in _given(q).values() if v.requires_grad)
        grads = torch.autograd.grad(outputs, params, allow_unused=True) if torch.is_tensor(outputs) else []
        encoder_params = [p for p, g in zip(params, grads) if g is not None and g.abs().sum() > 0]
        terms = model.loss_terms(x)
        reparameterization = _check_reparameterization(terms, params, encoder_params)
        learned_scale = bool(getattr(_base(model.decode(q.rsample())), "scale", torch.zeros(())).requires_grad)
    with torch.no_grad():
        q = model.encode(x)
        z = q.rsample((n_samples,))  # rsample, not sample: it works even with a negative scale
        px = model.decode(z)
        # what p(x|z) was built from (logits or probs), read before log_prob caches the other one
        px_given = _given(px)
        ref_distortion = -px.log_prob(x).mean(0)
        ref_rate = _kl(q, model.prior, z)
        n_pixels, n_latent = x[0].numel(), z.shape[-1]
        rows = [
            _check_loss_terms(terms, ref_distortion, ref_rate, n_pixels, n_latent),
            _check_likelihood(x, px, learned_scale),
            _check_encoder_scale(q),
            _check_decoder_output(px, px_given),
            reparameterization,
            _check_collapse(q, x, px, ref_rate),
            _check_finite(terms, q, px),
        ]
    return rows


def failures(report: pd.DataFrame) -> set[str]:
    """The names of the checks that failed in a :func:`diagnose` report."""
    if not isinstance(report, pd.DataFrame) or not {"check", "status"} <= set(report.columns):
        raise ValueError("report must be a DataFrame returned by diagnose, with columns 'check' and 'status'")
    return set(report.loc[report["status"] == "fail", "check"])


# --- argument checks -----------------------------------------------------------------------------------


def _check_inputs(model, x, n_samples, seed) -> None:
    missing = [name for name in ("encode", "decode", "prior", "loss_terms") if not hasattr(model, name)]
    if missing:
        raise TypeError(f"model must have encode, decode, prior and loss_terms (the VAE's interface); "
                        f"{type(model).__name__} lacks {', '.join(missing)}")
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2 or len(x) < 2:
        raise ValueError("x must be a floating-point batch of at least 2 examples, shape (B, ...), got "
                         + (f"shape {tuple(x.shape)}, dtype {x.dtype}" if isinstance(x, torch.Tensor)
                            else type(x).__name__))
    checks.integer("n_samples", n_samples)
    checks.seed("seed", seed)
