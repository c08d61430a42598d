"""Autoencoder, variational autoencoder and conditional VAE for 28x28 grey images.

Papers:
  - Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014 (the VAE).
  - Rezende, Mohamed & Wierstra, "Stochastic Backpropagation and Approximate Inference
    in Deep Generative Models", ICML 2014 (the same model, independently).
  - Sohn, Lee & Yan, "Learning Structured Output Representation using Deep Conditional
    Generative Models", NeurIPS 2015 (the conditional VAE).
  - Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders", ICLR 2016 (the
    k-sample bound on log p(x) used to score these models).

All three share one network so that comparing their code spaces is fair:

    encoder: x (1x28x28) -conv4/2-> 32x14x14 -conv4/2-> 64x7x7 -fc-> hidden -fc-> code
    decoder: z -fc-> hidden -fc-> 64x7x7 -deconv4/2-> 32x14x14 -deconv4/2-> 1x28x28 logits

The decoder is Bernoulli: its logits give p(pixel = 1), so on binarized MNIST the
reconstruction term is an exact log-likelihood in nats, comparable with the literature.
The AE is trained with the same Bernoulli reconstruction loss and no KL term; the VAE's
encoder outputs a mean and a log-variance; the CVAE feeds a one-hot class to both halves.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import LatentModel, register
from .deconv import ConvTranspose2d


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, 1)) per dimension, in closed form, shaped like mu."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


class _ConvAutoencoder(LatentModel):
    """Shared body; subclasses set `variational` and the defaults."""

    variational = True
    has_encoder = True
    likelihood = "bound"
    defaults = {"latent_dim": 16, "hidden": 256, "channels": 32, "num_classes": 0, "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, h, d, k = self.config["channels"], self.config["hidden"], self.latent_dim, self.num_classes
        if tuple(self.data_shape) != (1, 28, 28):
            raise ValueError(f"{self.name} is built for 1x28x28 images, not {self.data_shape}")
        self.enc_conv = nn.Sequential(
            nn.Conv2d(1, c, 4, 2, 1), nn.ReLU(),        # (N, c, 14, 14)
            nn.Conv2d(c, 2 * c, 4, 2, 1), nn.ReLU(),    # (N, 2c, 7, 7)
            nn.Flatten(),
        )
        self.enc_fc = nn.Sequential(
            nn.Linear(2 * c * 49 + k, h), nn.ReLU(),
            nn.Linear(h, 2 * d if self.variational else d),
        )
        self.dec_fc = nn.Sequential(
            nn.Linear(d + k, h), nn.ReLU(),
            nn.Linear(h, 2 * c * 49), nn.ReLU(),
        )
        self.dec_conv = nn.Sequential(
            ConvTranspose2d(2 * c, c, 4, 2, 1), nn.ReLU(),  # (N, c, 14, 14)
            ConvTranspose2d(c, 1, 4, 2, 1),                 # (N, 1, 28, 28) logits
        )

    def _with_class(self, h: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        y = self._check_labels(y, h.shape[0])
        if y is None:
            return h
        return torch.cat([h, F.one_hot(y, self.num_classes).to(h.dtype)], dim=1)

    def encode_params(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoder's q(z|x): mean and log-variance, each (N, D)."""
        out = self.enc_fc(self._with_class(self.enc_conv(x), y))
        if not self.variational:
            return out, torch.full_like(out, -math.inf)
        mu, logvar = out.chunk(2, dim=1)
        return mu, logvar

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.encode_params(x, y)[0]

    def decode_logits(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dec_fc(self._with_class(z, y))
        return self.dec_conv(h.view(-1, 2 * self.config["channels"], 7, 7))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z, y))

    def reconstruction_nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per image in nats, Bernoulli pixels; x may be grey (a soft target)."""
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


@register
class Autoencoder(_ConvAutoencoder):
    """Deterministic codes; trained on reconstruction alone, so its code space has holes."""

    name = "ae"
    description = "autoencoder"
    variational = False
    likelihood = None

    def __init__(self, **config) -> None:
        super().__init__(**config)
        # An AE has no prior; grids and samples use a Gaussian fitted to its training codes.
        self.register_buffer("code_mean", torch.zeros(self.latent_dim))
        self.register_buffer("code_std", torch.ones(self.latent_dim))

    def latent_mean(self) -> torch.Tensor:
        return self.code_mean.detach().cpu()

    def latent_std(self) -> torch.Tensor:
        return self.code_std.detach().cpu()

    @torch.no_grad()
    def fit_code_stats(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        z = self.encode(x, y)
        self.code_mean.copy_(z.mean(0))
        self.code_std.copy_(z.std(0).clamp_min(1e-6))

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mean per-image Bernoulli reconstruction NLL (nats)."""
        rec = self.reconstruction_nll(self.decode_logits(self.encode(x, y), y), x).mean()
        return {"loss": rec, "recon": rec}


@register
class VAE(_ConvAutoencoder):
    """Gaussian q(z|x), N(0, I) prior, Bernoulli decoder; trained on the negative ELBO."""

    name = "vae"
    description = "variational autoencoder"

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image reconstruction NLL and KL(q(z|x) || p(z)), both (N,) in nats."""
        mu, logvar = self.encode_params(x, y)
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + torch.exp(0.5 * logvar) * eps
        rec = self.reconstruction_nll(self.decode_logits(z, y), x)
        return rec, gaussian_kl(mu, logvar).sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        rec, kl = self.elbo_terms(x, y)
        return {"loss": (rec + kl).mean(), "recon": rec.mean(), "kl": kl.mean()}


@register
class ConditionalVAE(VAE):
    """A VAE told the class: the code is free to hold style, the label holds identity."""

    name = "cvae"
    description = "conditional VAE"
    defaults = {**_ConvAutoencoder.defaults, "num_classes": 10}
