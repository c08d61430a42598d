"""An exponential moving average of a model's weights: the weights a run ships, while the live
weights go on training (`--ema DECAY`).

    Polyak & Juditsky 1992, "Acceleration of stochastic approximation by averaging".
    Yazici et al. 2019, "The Unusual Effectiveness of Averaging in GAN Training",
        https://arxiv.org/abs/1806.04498 (a GAN's generator wanders round a good point; its
        average sits nearer it, and its samples are steadier from epoch to epoch).
    Salimans et al. 2017, PixelCNN++ (Polyak averaging of an autoregressive model's weights).

After every optimizer step: average <- decay * average + (1 - decay) * live, for every
floating-point tensor of the state dict. That includes the float buffers (batch-norm running
statistics, a VQ-VAE's codebook), so the averaged network's statistics come from the same
stretch of training as its weights. Integer buffers (batch counters) are copied.
With decay d the average spans about 1 / (1 - d) steps: 0.999 is about one epoch of MNIST
at batch 64.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"--ema must lie strictly between 0 and 1 (for example 0.999), got {decay}")
        ours = model.state_dict()
        if state is not None and (set(state) != set(ours) or any(state[k].shape != v.shape for k, v in ours.items())):
            raise ValueError("the stored weight average does not match this model's weights")
        self.decay = decay
        self.state = {k: (state if state is not None else ours)[k].detach().clone() for k in ours}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for key, live in model.state_dict().items():
            mine = self.state[key]
            if mine.is_floating_point():
                mine.lerp_(live, 1.0 - self.decay)
            else:
                mine.copy_(live)

    @contextmanager
    def applied(self, model: nn.Module) -> Iterator[nn.Module]:
        """`model` holds the averaged weights inside the block and its live ones again after it."""
        live = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(self.state)
        try:
            yield model
        finally:
            model.load_state_dict(live)
