"""Per-family training recipes: optimizers, one step, and the per-epoch evaluation.

The shared loop in `loop.py` knows nothing of model maths; a family knows nothing of
epochs, files or progress bars. Adding a model family means adding one recipe here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from explorer import metrics
from explorer.models import GenerativeModel

Optimizers = dict[str, torch.optim.Optimizer]


@dataclass(frozen=True)
class Recipe:
    """How to train one family. `step` returns the losses to log (python floats)."""

    make_optimizers: Callable[[GenerativeModel, dict[str, Any]], Optimizers]
    step: Callable[[GenerativeModel, Optimizers, torch.Tensor, torch.Tensor], dict[str, float]]
    evaluate: Callable[[GenerativeModel, torch.Tensor, torch.Tensor, bool], dict[str, Any]]
    after_epoch: Callable[[GenerativeModel, torch.Tensor, torch.Tensor], None] | None = None
    defaults: dict[str, Any] | None = None  # lr, batch size, ...


def _adam(model: GenerativeModel, hp: dict[str, Any]) -> Optimizers:
    return {"adam": torch.optim.Adam(model.parameters(), lr=hp["lr"])}


def _autoencoder_step(model, opts, x, y) -> dict[str, float]:
    losses = model.loss(x, y if model.num_classes else None)
    opt = opts["adam"]
    opt.zero_grad(set_to_none=True)
    losses["loss"].backward()
    opt.step()
    return {k: float(v.detach()) for k, v in losses.items()}


def _autoencoder_eval(model, x, y, binary: bool) -> dict[str, Any]:
    labels = y if model.num_classes else None
    if model.name == "ae":
        return metrics.reconstruction_report(model, x, labels, binary=binary)
    return metrics.elbo_report(model, x, labels, binary=binary)


def _fit_ae_codes(model, x, y) -> None:
    # An AE has no prior; grids use the spread of its codes on (a slice of) the train set.
    model.fit_code_stats(x[:10_000].to(next(model.parameters()).device),
                         y[:10_000] if model.num_classes else None)


_AUTOENCODER = dict(make_optimizers=_adam, step=_autoencoder_step, evaluate=_autoencoder_eval,
                    defaults={"lr": 1e-3, "batch_size": 128})
RECIPES: dict[str, Recipe] = {
    "ae": Recipe(**_AUTOENCODER, after_epoch=_fit_ae_codes),
    "vae": Recipe(**_AUTOENCODER),
    "cvae": Recipe(**_AUTOENCODER),
}
