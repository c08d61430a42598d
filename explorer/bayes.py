"""Bayes' rule between the three kinds of model: p(y | x) = p(x | y) p(y) / p(x).

A classifier gives p(y | x), a density model p(x), a class-conditional density model p(x | y).
Any one of them, with the rule, stands in for a missing other:

- **Generative classification.** A class-conditional autoregressive model scores an image
  under every label; normalising p(x | y) p(y) over the labels gives a classifier, and the
  normaliser is p(x) = sum_y p(x | y) p(y), a density that can say "none of these".
- **Conditional generation without a conditional model.** p(x | y) is proportional to
  p(y | x) p(x): draw N images from an unconditional model, weight each by a classifier's
  p(y | x) and resample (sampling-importance-resampling, Rubin 1987). The weights are
  uneven, so the N draws are worth fewer independent ones: the effective sample size
  (sum w)^2 / sum w^2 (Kong 1992) says how many.

Everything is in log space and float64: log-likelihoods of 28x28 images run to hundreds of
nats, and their exponentials would underflow.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from .models.base import AutoregressiveModel


@torch.no_grad()
def class_log_likelihoods(model: AutoregressiveModel, x: torch.Tensor, *, batch_size: int = 8,
                          progress: bool = False) -> torch.Tensor:
    """log p(x | y) of every image under every label, in nats: (N, K) float64.

    `x` is as the model takes it (binary for a Bernoulli model, levels k/255 for a 256-way
    one). Each image is scored K times, once per label, in one batched pass per chunk of
    `batch_size` images (K times as many rows: small chunks run fastest on a CPU, where large
    activations spend their time in memory traffic).
    """
    k = model.num_classes
    if k == 0:
        raise ValueError(f"{model.name} is not class-conditional: it has no p(x | y) to score")
    device = next(model.parameters()).device
    labels = torch.arange(k, device=device)
    out = torch.empty(len(x), k, dtype=torch.float64)
    starts = range(0, len(x), batch_size)
    for start in tqdm(starts, desc="log p(x|y)", unit="batch", disable=not progress):
        xb = x[start:start + batch_size].to(device)                     # (B, C, H, W)
        b = len(xb)
        repeated = xb.repeat_interleave(k, dim=0)                       # (B * K, C, H, W): image-major
        out[start:start + b] = model.log_prob(repeated, labels.repeat(b)).double().view(b, k).cpu()
    return out


def uniform_log_prior(num_classes: int) -> torch.Tensor:
    """log p(y) = -log K for every class: (K,) float64."""
    return torch.full((num_classes,), -math.log(num_classes), dtype=torch.float64)


def log_prior_from_labels(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """log p(y) from how often each class occurs among training labels: (K,) float64.

    Add-one counts keep a class that never occurs from getting log 0 = -inf."""
    counts = torch.bincount(labels.long().reshape(-1), minlength=num_classes).double() + 1.0
    return (counts / counts.sum()).log()


def posterior(log_likelihoods: torch.Tensor, log_prior: torch.Tensor | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Bayes' rule over K classes: p(y | x) (N, K) and log p(x) = log sum_y p(x | y) p(y) (N,).

    `log_likelihoods` is log p(x | y), (N, K); `log_prior` log p(y), (K,), uniform if None.
    Each row of the posterior sums to 1; the evidence log p(x) is the conditional model's
    own density of the image, marginalised over its label.
    """
    log_lik = log_likelihoods.double()
    prior = uniform_log_prior(log_lik.shape[-1]) if log_prior is None else log_prior.double()
    joint = log_lik + prior.to(log_lik.device)                          # log p(x, y)
    evidence = torch.logsumexp(joint, dim=-1)                           # log p(x)
    return (joint - evidence.unsqueeze(-1)).exp(), evidence


def effective_sample_size(weights: torch.Tensor) -> float:
    """(sum w)^2 / sum w^2 of non-negative importance weights: N when they are equal, 1 when one dominates."""
    w = weights.double().reshape(-1)
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()):
        raise ValueError("importance weights must be finite and non-negative")
    total = float(w.sum())
    if total == 0.0:
        return 0.0
    return total ** 2 / float(w.pow(2).sum())


def resample(weights: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n indices drawn with replacement, each with probability proportional to its weight: (n,) long.

    With weights p(y | x_i) on draws x_i from p(x), the chosen draws follow p(x | y) as the
    number of draws grows (sampling-importance-resampling)."""
    w = weights.double().reshape(-1)
    if effective_sample_size(w) == 0.0:
        raise ValueError("every weight is zero: no draw is compatible with the class asked for")
    return torch.multinomial(w, n, replacement=True, generator=generator)
