"""Scores for trained models, each with a sentence on how it was measured.

Latent-variable models:
  - negative ELBO (one posterior sample per image): an upper bound on -log p(x);
  - the importance-weighted bound of Burda et al. (2016) with k samples, which tightens
    towards -log p(x) as k grows (k >= 1000 is the usual "test NLL" of a VAE);
  - for a plain autoencoder, reconstruction error (it has no likelihood).
All are in nats per image on the test set given; on the fixed binarized MNIST test set
(`explorer.data.fixed_binarized_test`) they are comparable with the literature.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from tqdm.auto import tqdm

from .models.autoencoder import VAE, Autoencoder


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
