"""The heavy work a person starts on purpose, each as one batched call that ZeroGPU may run
on a GPU (see `explorer.gpu`): a GAN's inversion, and an image's likelihood under every model.

Each function takes `device` (default: a GPU where one is attached, else the CPU), moves
its inputs there, works, and hands the results back on the CPU, so callers never see the
device. Tests pass `device="cpu"`, or a GPU's where there is one.
"""

from __future__ import annotations

from typing import Callable

import torch

from . import latent, metrics
from .gpu import heavy, placed, work_device
from .models.base import AutoregressiveModel, LatentModel

# GPU seconds asked for per call: an inversion of one image or two takes about a second on a
# busy CPU core, far less on a GPU; scoring under every model likewise. Short asks queue sooner.
INVERT_SECONDS = 20
SCORE_SECONDS = 30


def encode(model: LatentModel, x: torch.Tensor, label: int | None = None,
           device: str | torch.device = "cpu", progress: Callable[[int, int], None] | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes (N, D) of images (N, C, H, W) in [0, 1], and each reconstruction's mean squared
    error per pixel (N,), worked out on `device` (the CPU unless told). For a GAN the codes
    come from inversion (an optimisation): call `invert` for that; `progress` follows it
    (see `latent.encode`)."""
    dev = torch.device(device)
    on = placed(model, dev)
    xd = x.to(dev)
    code = latent.encode(on, xd, label, progress=progress)
    error = latent.reconstruction_error(on, xd, code, label)
    return code.cpu(), error.cpu()


@heavy(INVERT_SECONDS)
def invert(model: LatentModel, x: torch.Tensor, label: int | None = None,
           device: str | torch.device | None = None, progress: Callable[[int, int], None] | None = None
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """`encode` as heavy work, on a GPU where one is attached: for a GAN, whose encoder is an
    optimisation. (An encoder network is one quick pass: `encode` runs it on the CPU and
    spends no quota; on ZeroGPU, CUDA outside a decorated call is only an emulation.)
    `progress` must pickle (ZeroGPU runs the call in another process): the app passes a
    `ui.common.InversionProgress`, which reports through Gradio's progress, and ZeroGPU
    forwards those reports to the page."""
    return encode(model, x, label, work_device(device), progress)


@heavy(SCORE_SECONDS)
@torch.no_grad()
def likelihoods(autoregressive: list[tuple[AutoregressiveModel, torch.Tensor]],
                vaes: list[tuple[LatentModel, torch.Tensor]], vae_samples: int,
                device: str | torch.device | None = None) -> tuple[list[torch.Tensor], list[float]]:
    """-log p(x_i | x_<i) per pixel (C, H, W) of each (model, image (1, C, H, W)) pair, and
    each VAE's importance-weighted bound on -log p(x) with `vae_samples` samples, in nats."""
    dev = work_device(device)
    maps = [placed(model, dev).pixel_nll(x.to(dev))[0].cpu() for model, x in autoregressive]
    bounds = [float(metrics.importance_weighted_nll(placed(model, dev), x.to(dev), k=vae_samples,
                                                    progress=False)[0])
              for model, x in vaes]
    return maps, bounds
