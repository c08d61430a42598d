"""Scores for trained models, each with a sentence on how it was measured.

Latent-variable models:
  - negative ELBO (one posterior sample per image): an upper bound on -log p(x);
  - the importance-weighted bound of Burda et al. (2016) with k samples, which tightens
    towards -log p(x) as k grows (k >= 1000 is the usual "test NLL" of a VAE);
  - for a plain autoencoder, reconstruction error (it has no likelihood).
All are in nats per image on the test set given; on the fixed binarized MNIST test set
(`explorer.data.fixed_binarized_test`) they are comparable with the literature.

Autoregressive models (PixelCNN family) have an exact likelihood: test NLL in nats per
image on binary data, bits per dimension on 8-bit data.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from . import bayes, sampling
from .models.autoencoder import VAE, Autoencoder
from .models.base import AutoregressiveModel
from .models.vqvae import VQVAE, perplexity


def _data_note(binary: bool) -> str:
    return ("the fixed binarized test set" if binary else
            "the grey test set (Bernoulli loss on grey levels: a training score, not a normalized likelihood)")


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def elbo_report(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, binary: bool = True,
                batch_size: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean negative ELBO, reconstruction and KL terms over (x, y), in nats per image."""
    g = torch.Generator(device=_device(model)).manual_seed(seed)
    totals = torch.zeros(2, dtype=torch.float64)
    for s in _batches(len(x), batch_size):
        xb = x[s].to(_device(model))
        yb = None if y is None else y[s].to(_device(model))
        rec, kl = model.elbo_terms(xb, yb, generator=g)
        totals += torch.stack([rec.sum(), kl.sum()]).double().cpu()
    rec, kl = (totals / len(x)).tolist()
    return {
        "test_neg_elbo": rec + kl, "test_recon_nll": rec, "test_kl": kl, "headline": "test_neg_elbo",
        "how": {"test_neg_elbo": f"mean negative ELBO in nats per image, one posterior sample "
                                 f"(seed {seed}), over {len(x)} images of {_data_note(binary)}",
                "test_recon_nll": "its reconstruction term, -E_q[log p(x|z)], same sample",
                "test_kl": "its KL(q(z|x) || p(z)) term, in closed form"},
    }


@torch.no_grad()
def reconstruction_report(model: Autoencoder, x: torch.Tensor, y: torch.Tensor | None = None, *,
                          binary: bool = True, batch_size: int = 1000) -> dict[str, Any]:
    """Mean Bernoulli reconstruction NLL (nats per image) and mean squared error per pixel."""
    nll = mse = 0.0
    for s in _batches(len(x), batch_size):
        xb = x[s].to(_device(model))
        yb = None if y is None else y[s].to(_device(model))
        logits = model.decode_logits(model.encode(xb, yb), yb)
        nll += float(model.reconstruction_nll(logits, xb).double().sum())
        mse += float((torch.sigmoid(logits) - xb).double().pow(2).mean((1, 2, 3)).sum())
    return {
        "test_recon_nll": nll / len(x), "test_mse": mse / len(x), "headline": "test_recon_nll",
        "how": {"test_recon_nll": f"mean Bernoulli reconstruction NLL in nats per image over "
                                  f"{len(x)} images of {_data_note(binary)}",
                "test_mse": "mean squared error per pixel between the decoded probabilities and the input"},
    }


@torch.no_grad()
def importance_weighted_nll(model: VAE, x: torch.Tensor, y: torch.Tensor | None = None, *, k: int = 1000,
                            batch_size: int = 4, chunk: int = 250, seed: int = 0,
                            progress: bool = True) -> torch.Tensor:
    """Per-image estimate of -log p(x) in nats, with k importance samples from q(z|x).

        log p(x) >= log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x),  z_i ~ q(z|x)

    (Burda et al. 2016, eq. 8); the bound is exact as k -> infinity. Returns (N,) float64.
    """
    dev = _device(model)
    g = torch.Generator(device=dev).manual_seed(seed)
    out = torch.empty(len(x), dtype=torch.float64)
    bar = tqdm(total=len(x), desc=f"IW bound k={k}", unit="img", disable=not progress)
    for s in _batches(len(x), batch_size):
        xb = x[s].to(dev)                                     # (B, 1, 28, 28)
        yb = None if y is None else y[s].to(dev)
        mu, logvar = model.encode_params(xb, yb)              # (B, D)
        std = torch.exp(0.5 * logvar)
        log_w = []
        for start in range(0, k, chunk):
            m = min(chunk, k - start)
            eps = torch.randn((m, *mu.shape), generator=g, device=dev)   # (m, B, D)
            z = mu + std * eps
            log_q = (-0.5 * eps.pow(2) - 0.5 * logvar - 0.5 * math.log(2 * math.pi)).sum(-1)
            log_p_z = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
            zf = z.reshape(m * len(xb), -1)
            yf = None if yb is None else yb.repeat(m)
            logits = model.decode_logits(zf, yf)
            xr = xb.repeat(m, 1, 1, 1)
            log_px_z = -model.reconstruction_nll(logits, xr).view(m, len(xb))
            log_w.append((log_px_z + log_p_z - log_q).double())
        lw = torch.cat(log_w, 0)                              # (k, B)
        out[s] = -(torch.logsumexp(lw, 0) - math.log(k)).cpu()
        bar.update(len(xb))
    bar.close()
    return out


def nats_to_bits_per_dim(nats: float, dims: int = 784) -> float:
    return nats / (dims * math.log(2))


# Stored under this name (with k filled in), the importance-weighted bound with k samples.
IW_BOUND_KEY = "test_iw_nll_k{k}"


def best_vae_nll(scores: dict[str, Any]) -> float | None:
    """A VAE's best stored test figure for -log p(x): the tightest importance-weighted bound
    (the largest k), else its negative ELBO; None if it has neither."""
    prefix = IW_BOUND_KEY.removesuffix("{k}")
    bounds = sorted((int(key.removeprefix(prefix)), value) for key, value in scores.items()
                    if key.startswith(prefix) and key.removeprefix(prefix).isdigit())
    return float(bounds[-1][1]) if bounds else scores.get("test_neg_elbo")


# --- sample quality: class coverage and a Frechet distance on a small classifier's features ---
# These follow FID (Heusel et al. 2017) in form, but the features come from this project's own
# small classifier (explorer/models/classifier.py), not Inception: compare models within this
# project only, never with published FIDs.

# A class counts as covered when it receives at least a quarter of its uniform share of samples
# (2.5% of them for 10 classes): robust to a few misclassified samples, strict about collapse.
COVERED_SHARE = 0.25


def coverage(counts: torch.Tensor) -> dict[str, float]:
    """Classes covered and KL(histogram || uniform) in nats, from per-class sample counts."""
    counts = counts.double()
    k = len(counts)
    p = counts / counts.sum()
    nz = p > 0
    kl = float((p[nz] * (p[nz] * k).log()).sum())
    return {"classes_covered": int((p >= COVERED_SHARE / k).sum()), "kl_to_uniform": kl}


def frechet_distance(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to two feature sets (N, F) and (M, F).

        ||mu_a - mu_b||^2 + tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2)
    """
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    vals, vecs = torch.linalg.eigh(ca)
    sqrt_ca = (vecs * vals.clamp_min(0).sqrt()) @ vecs.T
    cross = torch.linalg.eigvalsh(sqrt_ca @ cb @ sqrt_ca).clamp_min(0).sqrt().sum()
    return float((mu_a - mu_b).pow(2).sum() + ca.trace() + cb.trace() - 2 * cross)


@torch.no_grad()
def classify(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 1000
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes (N,) and penultimate features (N, F) for images in [0, 1]."""
    preds, feats, _ = _classifier_pass(classifier, images, batch_size)
    return preds, feats


@torch.no_grad()
def _classifier_pass(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 1000
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One pass of the classifier: classes (N,), features (N, F) and top-class probabilities (N,)."""
    classifier.eval()
    preds, feats, top = [], [], []
    for s in _batches(len(images), batch_size):
        f = classifier.features(images[s].to(_device(classifier)))
        logits = classifier.head(f)
        feats.append(f.cpu())
        preds.append(logits.argmax(1).cpu())
        top.append(torch.softmax(logits.float(), 1).max(1).values.cpu())
    return torch.cat(preds), torch.cat(feats), torch.cat(top)


@torch.no_grad()
def model_samples(model, n: int, seed: int = 0, batch_size: int = 1000, progress: bool = False) -> torch.Tensor:
    """n images from a model: a latent model's prior decoded, or an autoregressive model's
    pixel-by-pixel samples (cached sampler). A conditional model gets the classes in turn."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in tqdm(list(_batches(n, batch_size)), desc="samples", unit="batch", disable=not progress):
        y = (torch.arange(s.start, s.stop) % model.num_classes).to(_device(model)) if model.num_classes else None
        if isinstance(model, AutoregressiveModel):
            out.append(sampling.sample(model, s.stop - s.start, y=y, generator=g).cpu())
        elif model.kind == "discrete_latent":  # a VQ-VAE: codes from its prior, then the decoder
            out.append(model.decode(sampling.sample_codes(model, s.stop - s.start, y=y, generator=g), y).cpu())
        else:
            z = model.sample_latent(s.stop - s.start, g).to(_device(model))
            out.append(model.decode(z, y).cpu())
    return torch.cat(out)


# An image is legible when the project's classifier gives its top class at least this probability
# (real binarized MNIST test digits: 95.5% of them; Fashion-MNIST grey test images: 69%).
LEGIBLE_PROBABILITY = 0.9


@torch.no_grad()
def legible_share(classifier: torch.nn.Module, images: torch.Tensor, batch_size: int = 1000) -> float:
    """The share of images the classifier labels with probability >= LEGIBLE_PROBABILITY."""
    return _legible(_classifier_pass(classifier, images, batch_size)[2])


def _legible(top_probabilities: torch.Tensor) -> float:
    return float((top_probabilities >= LEGIBLE_PROBABILITY).float().mean())


def sample_quality(images: torch.Tensor, classifier: torch.nn.Module, reference_features: torch.Tensor,
                   num_classes: int = 10) -> dict[str, Any]:
    """Classes covered, KL to uniform, legible share and Frechet distance to the reference
    (test) features."""
    preds, feats, top = _classifier_pass(classifier, images)   # one pass serves every score
    out: dict[str, Any] = coverage(torch.bincount(preds, minlength=num_classes))
    out["legible"] = _legible(top)
    out["frechet_distance"] = frechet_distance(feats, reference_features)
    out["class_histogram"] = torch.bincount(preds, minlength=num_classes).tolist()
    return out


# --- autoregressive models: exact likelihoods ------------------------------------------------

@torch.no_grad()
def autoregressive_nll(model: AutoregressiveModel, x: torch.Tensor, y: torch.Tensor | None = None, *,
                       batch_size: int = 500, progress: bool = False) -> torch.Tensor:
    """Exact -log p(x) per image in nats, (N,) float64: the sum of the pixels' conditionals."""
    dev = _device(model)
    out = torch.empty(len(x), dtype=torch.float64)
    for s in tqdm(list(_batches(len(x), batch_size)), desc="exact NLL", unit="batch", disable=not progress):
        yb = None if y is None else y[s].to(dev)
        out[s] = -model.log_prob(x[s].to(dev), yb).double().cpu()
    return out


def bits_per_dim(model: AutoregressiveModel, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """-log2 p(x) / (C * H * W) per image, (N,): the likelihood in bits for each pixel value."""
    return autoregressive_nll(model, x, y) / (math.log(2) * x[0].numel())


def autoregressive_report(model: AutoregressiveModel, x: torch.Tensor, y: torch.Tensor | None = None, *,
                          binary: bool = True, batch_size: int = 500) -> dict[str, Any]:
    """Test NLL in nats per image and bits per dimension; the headline suits the data.

    Binary data (the fixed binarized MNIST test set): nats per image, the literature's unit
    (PixelCNN: 81.30). 8-bit data: bits per dimension under the 256-way softmax, which is a
    discrete distribution over the 256 levels, so no dequantization noise is involved.
    """
    nll = autoregressive_nll(model, x, y, batch_size=batch_size)
    nats = float(nll.mean())
    dims = x[0].numel()
    bpd = nats_to_bits_per_dim(nats, dims)
    where = ("the fixed binarized test set" if binary else "the 8-bit grey test set")
    of = "p(x)" if y is None else "p(x|y), y the true label,"   # a class-conditional model's NLL
    how_nats = (f"exact -log {of} in nats per image (the sum of the {dims} pixel conditionals, "
                f"{model.output_kind} outputs), mean over {len(x)} images of {where}")
    how_bpd = f"the same exact -log2 {of} divided by the {dims} pixels, mean over {len(x)} images of {where}"
    return {
        "test_nll": nats, "test_bits_per_dim": bpd,
        "headline": "test_nll" if binary else "test_bits_per_dim",
        "how": {"test_nll": how_nats, "test_bits_per_dim": how_bpd},
    }


@torch.no_grad()
def codes_report(model: VQVAE, x: torch.Tensor, y: torch.Tensor | None = None, *, binary: bool = True,
                 batch_size: int = 1000) -> dict[str, Any]:
    """A VQ-VAE on test images: reconstruction (as for an autoencoder), codebook use, the
    prior's cost of the code grids, and the bound on -log p(x) the two make together."""
    out = reconstruction_report(model, x, y, binary=binary, batch_size=batch_size)
    codes, prior = [], []
    for s in _batches(len(x), batch_size):
        yb = None if y is None else y[s].to(_device(model))
        codes.append(model.encode(x[s].to(_device(model))))                      # (B, 7, 7)
        prior.append(model.prior_nll(codes[-1], yb).double().cpu())
        codes[-1] = codes[-1].cpu()
    grid, prior_nats = torch.cat(codes), float(torch.cat(prior).mean())
    where = f"{len(x)} images of {_data_note(binary)}"
    out.update({
        "test_prior_bits": prior_nats / math.log(2),
        "test_nll_bound": out["test_recon_nll"] + prior_nats,
        "codebook_perplexity": perplexity(grid, model.num_codes),
        "codes_used": int(grid.unique().numel()),
        "headline": "test_nll_bound",
    })
    out["how"].update({
        "test_prior_bits": f"exact -log2 p(codes) of the prior, bits per {grid.shape[1]}x{grid.shape[2]} code grid "
                           f"(the encoder's codes), mean over {where}",
        "test_nll_bound": ("test_recon_nll plus the prior's -log p(codes) in nats: an upper bound on -log p(x) "
                           "per image (the ELBO of a deterministic one-hot encoder)" if binary else
                           "test_recon_nll plus the prior's -log p(codes) in nats, on grey images: a training "
                           "score, not a bound on a likelihood (the Bernoulli decoder term is not one on grey levels)"),
        "codebook_perplexity": f"exp(entropy of code usage) over the {grid.numel()} test-set code cells "
                               f"({model.num_codes} codes)",
        "codes_used": "distinct codes used by the test-set code grids",
    })
    return out


@torch.no_grad()
def bayes_classifier_report(model: AutoregressiveModel, x: torch.Tensor, y: torch.Tensor, *, binary: bool = True,
                            batch_size: int = 8, progress: bool = False) -> dict[str, Any]:
    """Test accuracy of the Bayes classifier of a class-conditional model: argmax_y p(x | y) p(y).

    The prior p(y) is uniform (the MNIST and Fashion-MNIST classes are near balanced), so
    the label chosen is the one under which the image is cheapest to encode.
    """
    log_lik = bayes.class_log_likelihoods(model, x, batch_size=batch_size, progress=progress)
    probs, _ = bayes.posterior(log_lik)
    accuracy = float((probs.argmax(1) == y.cpu()).double().mean())
    where = "the fixed binarized test set" if binary else "the 8-bit grey test set"
    return {"bayes_test_accuracy": accuracy,
            "how": {"bayes_test_accuracy": f"top-1 accuracy of the Bayes classifier argmax_y p(x|y) p(y) "
                                           f"(uniform p(y); {model.num_classes} exact likelihoods per image) "
                                           f"over {len(x)} images of {where}"}}


# --- training replay: the class histogram of a GAN's fixed-seed samples, epoch by epoch ------

@torch.no_grad()
def replay_class_scores(classifier: torch.nn.Module, frames: torch.Tensor) -> list[dict[str, Any]]:
    """Per epoch of a replay (E, N, 1, 28, 28): class histogram, classes covered, KL to uniform,
    and the legible share of the frame.

    The same fixed-seed samples every epoch, so a change between epochs is the generator's
    doing; a collapsing GAN shows few classes per epoch, hopping from one to another.
    """
    preds, _, top = _classifier_pass(classifier, frames.flatten(0, 1))
    scores = []
    for epoch_preds, epoch_top in zip(preds.view(len(frames), -1), top.view(len(frames), -1)):
        counts = torch.bincount(epoch_preds, minlength=classifier.num_classes)
        scores.append({**coverage(counts), "class_histogram": counts.tolist(), "legible": _legible(epoch_top)})
    return scores
