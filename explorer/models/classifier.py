"""A small digit / clothing classifier, the yardstick for sample-quality scores.

It is not a generative model: `explorer.metrics` uses its predictions for the class
histogram of a model's samples and its penultimate features (128-d) for a Frechet distance,
in the spirit of Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a
Local Nash Equilibrium", NeurIPS 2017 (FID). These are *not* Inception FIDs: the features
come from this small network trained on the same data set, so the numbers compare models
within this project only.

    x (1x28x28) -conv3-> 32 -pool-> 14x14 -conv3-> 64 -pool-> 7x7 -fc-> 128 features -fc-> 10
"""

from __future__ import annotations

import torch
from torch import nn

from .base import GenerativeModel, register


@register
class Classifier(GenerativeModel):
    name = "classifier"
    kind = "classifier"
    description = "classifier (for sample-quality scores)"
    defaults = {"num_classes": 10, "channels": 16, "features": 128, "data_shape": [1, 28, 28]}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        c, f = self.config["channels"], self.config["features"]
        self.body = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),          # (N, c, 14, 14)
            nn.Conv2d(c, 2 * c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),      # (N, 2c, 7, 7)
            nn.Flatten(), nn.Dropout(0.25), nn.Linear(2 * c * 49, f), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(f, self.num_classes))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 1, 28, 28) in [0, 1] -> penultimate features (N, F)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Images -> class logits (N, num_classes)."""
        return self.head(self.features(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        logits = self(x)
        loss = nn.functional.cross_entropy(logits, y)
        return {"loss": loss, "accuracy": (logits.argmax(1) == y).float().mean()}
