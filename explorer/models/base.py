"""The one small base class every model shares, and the registry that rebuilds models.

A model is built from a plain config dict (`build("vae", {"latent_dim": 16})`), so a
checkpoint that stores the name and the config can rebuild it exactly. Two interfaces
sit on top (docs/ARCHITECTURE.md, "The model interface"): latent models (`encode`, `decode`, `sample_latent`) and
autoregressive models (`log_prob`, step-wise sampling).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from .. import data

REGISTRY: dict[str, type["GenerativeModel"]] = {}


def register(cls: type["GenerativeModel"]) -> type["GenerativeModel"]:
    """Class decorator: make a model buildable by its `name`."""
    if cls.name in REGISTRY:
        raise ValueError(f"model name {cls.name!r} registered twice")
    REGISTRY[cls.name] = cls
    return cls


def build(name: str, config: dict[str, Any] | None = None) -> "GenerativeModel":
    """Build a registered model from its name and (partial) config."""
    if name not in REGISTRY:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name](**(config or {}))


class GenerativeModel(nn.Module):
    """Holds the config it was built from; subclasses declare `name`, `kind` and `defaults`."""

    name: ClassVar[str]
    kind: ClassVar[str]  # "latent", "autoregressive", "discrete_latent" (VQ-VAE) or "classifier"
    description: ClassVar[str] = ""
    defaults: ClassVar[dict[str, Any]] = {}
    # Capabilities: code asks these, never a model's name.
    has_encoder: ClassVar[bool] = False          # an encoder network (a GAN inverts by optimisation)
    # What it can say about log p(x): "exact" (autoregressive), "bound" (an ELBO: VAE, VQ-VAE
    # with its prior), or None (a plain autoencoder, a GAN, a classifier).
    likelihood: ClassVar[str | None] = None
    # Config keys that only steer training (the weights' shapes do not depend on them), so a
    # resumed run may change them, as it may change the learning rate (train/loop.py).
    retunable: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **config: Any) -> None:
        super().__init__()
        unknown = set(config) - set(self.defaults)
        if unknown:
            raise ValueError(
                f"{self.name}: unknown config keys {sorted(unknown)}; known: {sorted(self.defaults)}"
            )
        self.config: dict[str, Any] = {**self.defaults, **config}

    @property
    def data_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.get("data_shape", (1, 28, 28)))  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        """Number of classes a conditional model takes; 0 for unconditional ones."""
        return int(self.config.get("num_classes", 0))

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check_labels(self, y: torch.Tensor | int | None, n: int,
                      device: torch.device | None = None) -> torch.Tensor | None:
        """Labels for n images of a conditional model as (n,) long on `device` (one label, a
        tensor or an int, stands for all n); None if unconditional. The one place class labels
        are checked."""
        if self.num_classes == 0:
            return None
        if y is None:
            raise ValueError(f"{self.name} is class-conditional: choose a class (labels y of shape ({n},))")
        y = torch.as_tensor(y, dtype=torch.long, device=device).reshape(-1)
        if y.numel() == 1:
            if not 0 <= int(y) < self.num_classes:
                raise ValueError(f"class must be in 0..{self.num_classes - 1}, got {int(y)}")
            return y.expand(n)
        if y.shape != (n,) or bool(((y < 0) | (y >= self.num_classes)).any()):
            raise ValueError(f"labels must be {n} integers in 0..{self.num_classes - 1}")
        return y


class LatentModel(GenerativeModel):
    """A model with a latent code z: decode(z) gives images, encode(x) gives codes.

    `latent_mean` / `latent_std` say where codes live: the prior N(0, I) for VAEs and GANs,
    the measured spread of training codes for a plain autoencoder (which has no prior).
    Grids in the app are laid out in these units.
    """

    kind = "latent"

    @property
    def latent_dim(self) -> int:
        return int(self.config["latent_dim"])

    def latent_mean(self) -> torch.Tensor:
        return torch.zeros(self.latent_dim)

    def latent_std(self) -> torch.Tensor:
        return torch.ones(self.latent_dim)

    def sample_latent(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from the prior (or, for an AE, from a Gaussian fitted to its codes)."""
        eps = torch.randn(n, self.latent_dim, generator=generator)
        return self.latent_mean() + self.latent_std() * eps

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """Log-density of codes (N, D) under the Gaussian that `sample_latent` draws from."""
        mean, std = self.latent_mean(), self.latent_std()
        return torch.distributions.Normal(mean, std).log_prob(z).sum(-1)

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Codes (N, D) -> images (N, C, H, W) in [0, 1]."""
        raise NotImplementedError

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) in [0, 1] -> codes (N, D)."""
        raise NotImplementedError


class PixelStepper:
    """Gives a model's predictive logits one pixel at a time, in raster order.

    The contract: `logits_at(x, row, col)` is called for every position exactly once, in
    raster order (row by row, left to right), and every pixel of `x` before (row, col) is
    final when it is called. It returns the logits at that pixel, (N, K). A stepper may keep
    whatever state it likes between calls (per-layer caches); that is what makes it fast.
    """

    def logits_at(self, x: torch.Tensor, row: int, col: int) -> torch.Tensor:
        raise NotImplementedError


class AutoregressiveModel(GenerativeModel):
    """A model of p(x) = prod_i p(x_i | x_<i) over pixels in raster order: an exact likelihood.

    Images are (N, C, H, W) floats in [0, 1]: zeros and ones for a "bernoulli" model
    (binarized data), the 256 grey levels k/255 for a "categorical256" model (8-bit data).
    A "codes" model runs over a grid of K-way integer codes instead (a VQ-VAE's code map),
    stored the same way, as floats 0..K-1.
    A subclass implements `logits` (one parallel pass gives every pixel's conditional);
    likelihoods and sampling are built on it here and in `explorer.sampling`.
    """

    kind = "autoregressive"
    likelihood = "exact"
    # Logits per position; "codes" has num_codes of them (config), K-way integer grids.
    OUTPUT_KINDS: ClassVar[dict[str, int]] = {"bernoulli": 1, "categorical256": 256, "codes": 0}

    @property
    def output_kind(self) -> str:
        """"bernoulli" (one logit per pixel: p(pixel = 1)), "categorical256" (256 logits), or
        "codes" (K logits over the integer codes 0..K-1 of a code grid)."""
        return str(self.config["output"])

    @property
    def num_logits(self) -> int:
        if self.output_kind == "codes":
            return int(self.config["num_codes"])
        return self.OUTPUT_KINDS[self.output_kind]

    def logits(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, C, H, W) -> logits (N, K, C, H, W), K = 1, 256 or num_codes, in one parallel pass.

        The logits at a pixel depend only on the pixels before it (raster order).
        """
        raise NotImplementedError

    def targets(self, x: torch.Tensor) -> torch.Tensor:
        """Check images and return the class index of every pixel: (N, C, H, W) long.

        A Bernoulli model takes only zeros and ones; a 256-level model takes [0, 1] and rounds
        to the nearest level k/255 (so `to_float` of 8-bit data maps back exactly); a code
        model takes the integers 0..K-1 (as floats).
        """
        if self.output_kind == "bernoulli":
            if not bool(((x == 0) | (x == 1)).all()):
                raise ValueError(f"{self.name} models binary images: every pixel must be 0 or 1 "
                                 f"(binarize grey images first)")
            return x.long()
        if self.output_kind == "codes":
            k = self.num_logits
            if not bool(((x >= 0) & (x < k) & (x == torch.round(x))).all()):
                raise ValueError(f"{self.name} models grids of codes: every value must be an integer in 0..{k - 1}")
            return x.long()
        if bool(((x < 0) | (x > 1)).any()) or not bool(torch.isfinite(x).all()):
            raise ValueError(f"{self.name} models 8-bit images: pixel values must lie in [0, 1]")
        return torch.round(x * 255).long()

    def values(self, index: torch.Tensor) -> torch.Tensor:
        """Class indices (any shape) -> grid values (the inverse of `targets`): pixels in [0, 1], or codes."""
        return index.float() / 255.0 if self.output_kind == "categorical256" else index.float()

    def as_input(self, x: torch.Tensor, threshold: bool = False) -> torch.Tensor:
        """Images in [0, 1] exactly as this model takes them: the 256 grey levels k/255 for an
        8-bit model, zeros and ones for a binary one. A binary model refuses grey images
        (`targets` says why) unless `threshold`, which cuts them at 0.5 (`data.threshold`):
        right for one picture shown to the model, wrong for a data set (binarize it instead).
        The result keeps the dtype and device of `x`.
        """
        if threshold and self.output_kind == "bernoulli":
            x = data.threshold(x).to(x.dtype)
        return self.values(self.targets(x)).to(x.dtype)

    def pixel_nll(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """-log p(x_i | x_<i) for every pixel, in nats: (N, C, H, W); sums to -log_prob."""
        target = self.targets(x)
        logits = self.logits(x, y)                                   # (N, K, C, H, W)
        if self.output_kind == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits[:, 0], target.to(logits.dtype), reduction="none")
        return F.cross_entropy(logits, target, reduction="none")

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """log p(x) per image in nats: (N,)."""
        return -self.pixel_nll(x, y).flatten(1).sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Mean negative log-likelihood in nats per image, and the same in bits per dimension."""
        nll = -self.log_prob(x, y).mean()
        return {"loss": nll, "bits_per_dim": nll.detach() / (math.log(2) * x[0].numel())}

    def fast_stepper(self, n: int, y: torch.Tensor | None = None) -> PixelStepper | None:
        """A stepper that reuses work between pixels, or None if the model has none.

        `explorer.sampling` falls back to re-running `logits` for every pixel (the naive,
        reference path) when this returns None.
        """
        return None
