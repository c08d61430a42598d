"""Likelihood tab: how surprised is each model by an image?

An autoregressive model gives the exact -log p(x) of an image, and it splits into one term
per pixel: -log p(x_i | x_<i). The tab scores one image (a test example, an upload or a
drawing) under every autoregressive model, and under each VAE trained on binarized data an
importance-weighted upper bound on the same quantity; it shows each autoregressive model's
per-pixel terms as a heat map and says how to read the numbers.

A binary model scores the image thresholded at 0.5 and an 8-bit model its 256 grey levels,
so the two kinds answer different questions and their bits per dimension differ in scale
(at most 1 bit a pixel for a uniform binary guess, 8 for an 8-bit one). Each model is
compared with its own average over its test set.

Endpoints:
  `/likelihood`: (image) -> the table, the heat maps (gallery), a reading.
  `/score_source`: (data set, index) -> that data set's test image (preview, caption).
  `/score_from_example|upload|drawing`: the image to score (see `digits`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from .. import data, heavy, intake, metrics, render
from ..models.base import AutoregressiveModel
from .catalog import DATASET_NAMES, Catalog
from .services import Services
from . import inputs
from .common import PICTURE_BUTTONS, DECODE, lead, user_errors
from .digits import digit_input, example_digit

# Importance samples for a VAE's bound on one image: tight to a fraction of a nat, and quick.
VAE_SAMPLES = 100
# Heat-map colour scales in nats: a binary pixel at p = 0.01 (4.6 nats) is about as
# surprising as pixels get; for 8 bits, ln 256 is the cost of a uniform guess.
HEAT_MAX = {"bernoulli": 4.6, "categorical256": round(math.log(256), 2)}
# Short headers, so the table fits the column beside the image (about 960 px): the model's
# name says its data set; the last column is the one to read first.
COLUMNS = ["model", "scores it as", "-log p(x) nats", "bits/pixel", "test avg nats", "x test avg"]


@dataclass(frozen=True)
class Score:
    name: str
    shown: str  # the model's plain name
    dataset: str
    scored_as: str
    nats: float
    test_average: float | None
    pixel_nll: torch.Tensor | None   # (H, W) per-pixel terms (autoregressive models only)
    scored: torch.Tensor             # (1, H, W) the image as the model saw it
    output_kind: str

    @property
    def bits_per_pixel(self) -> float:
        return metrics.nats_to_bits_per_dim(self.nats, self.scored.numel())

    @property
    def ratio(self) -> float | None:
        return self.nats / self.test_average if self.test_average else None


def scorable_vaes(catalog: Catalog) -> list[str]:
    """Unconditional VAEs trained on binarized images: their bound is on the same -log p(x)."""
    return [n for n, c in catalog.latent.items()
            if getattr(c.model, "variational", False) and c.model.num_classes == 0
            and c.binary_images and hasattr(c.model, "decode_logits")]


def score(catalog: Catalog, image: torch.Tensor, device: str | None = None) -> list[Score]:
    """The image (1, H, W) in [0, 1] under every autoregressive model and scorable VAE.

    The models' work is one heavy call (a GPU on ZeroGPU, unless `device` names the CPU, as
    the page's first value must: it is built outside any visitor's request); each model sees
    the image as it was trained: thresholded for a binary model, 256 grey levels for an
    8-bit one."""
    autoregressive = []
    for name, ckpt in catalog.autoregressive.items():
        if ckpt.model.num_classes:
            continue  # a conditional model's p(x | y) answers another question
        autoregressive.append((name, ckpt, ckpt.model.as_input(image, threshold=True).unsqueeze(0)))
    vaes = [(name, catalog.checkpoint(name, "latent"), data.threshold(image).unsqueeze(0))
            for name in scorable_vaes(catalog)]
    maps, bounds = heavy.likelihoods([(c.model, x) for _, c, x in autoregressive],
                                     [(c.model, x) for _, c, x in vaes], VAE_SAMPLES, device=device)
    out = []
    for (name, ckpt, x), nll in zip(autoregressive, maps):
        model: AutoregressiveModel = ckpt.model  # type: ignore[assignment]
        how = "binary (0.5 threshold)" if model.output_kind == "bernoulli" else "256 grey levels"
        out.append(Score(name, catalog.display_name(name), ckpt.dataset, how, float(nll.sum()),
                         ckpt.metrics.get("test_nll"), nll[0], x[0], model.output_kind))
    for (name, ckpt, x), bound in zip(vaes, bounds):
        out.append(Score(name, catalog.display_name(name), ckpt.dataset, f"binary; VAE bound k={VAE_SAMPLES}", bound,
                         metrics.best_vae_nll(ckpt.metrics), None, x[0], "bernoulli"))
    return out


def table(found: list[Score]) -> pd.DataFrame:
    rows = [[s.shown, s.scored_as, round(s.nats, 2), round(s.bits_per_pixel, 4),
             None if s.test_average is None else round(s.test_average, 2),
             None if s.ratio is None else round(s.ratio, 2)] for s in found]
    return pd.DataFrame(rows, columns=COLUMNS)


def heat_maps(found: list[Score]) -> list[tuple[Image.Image, str]]:
    """One picture per autoregressive model: the image as scored beside its per-pixel NLL."""
    return [(render.heat_map(s.pixel_nll, s.scored, HEAT_MAX[s.output_kind], "nats"),
             f"{s.shown}: {s.nats:.1f} nats; hottest pixel {float(s.pixel_nll.max()):.2f} nats")
            for s in found if s.pixel_nll is not None]


def reading(found: list[Score]) -> str:
    """A few sentences on what these numbers say about this image: one line per data set the
    models were trained on, each remark only where it applies to that line's models."""
    if not found:
        return "No model here gives a likelihood: load a PixelCNN, PixelRNN or VAE checkpoint."
    text = ["**How to read this.** -log p(x) is how many nats a model needs to encode the image "
            "(1 nat = 1.44 bits): the more surprised the model, the higher. Compare each model with its own "
            "test average: the column *x test avg* is this image's cost as a multiple of it. The heat maps show "
            "*where* the cost arises: bright pixels surprised the model."]
    by_data: dict[str, list[Score]] = {}
    for s in found:
        if s.ratio is not None:
            by_data.setdefault(s.dataset, []).append(s)
    for dataset, group in by_data.items():
        low, high = min(s.ratio for s in group), max(s.ratio for s in group)
        spread = f"{low:.2f}x" if round(low, 2) == round(high, 2) else f"{low:.2f}x to {high:.2f}x"
        line = (f"**Models trained on {DATASET_NAMES.get(dataset, dataset)}** "
                f"({', '.join(s.shown for s in group)}): {spread} their typical test image.")
        if low > 2:
            line += " They have rarely seen anything like it, as with a Fashion-MNIST item under an MNIST model."
        elif high < 1:
            binary = all(s.output_kind == "bernoulli" for s in group)
            line += (" Cheaper than their own test data: clean, simple shapes are cheap, and their test sets "
                     "were binarized at random, which adds speckle that costs nats, while this image was "
                     "thresholded." if binary else
                     " Cheaper than their own test data, which need not mean it looks like them: a model of "
                     "256 grey levels predicts large flat black areas (most of a digit's picture) almost for "
                     "free, so likelihood alone is a poor test of whether an image is like the training data.")
        elif high <= 2:
            line += " About as likely as their own test data."
        text.append(line)
    if any(s.pixel_nll is None for s in found):
        text.append("A VAE's figure is an upper bound on -log p(x) (importance-weighted, so only slightly "
                    "above the true value); it does not split into per-pixel terms.")
    return "  \n".join(text)


def likelihood(catalog: Catalog, picture: np.ndarray | None, device: str | None = None
               ) -> tuple[pd.DataFrame, list, str]:
    picture = inputs.image(picture)
    if picture is None:
        raise ValueError("Pick, upload or draw an image to score.")
    found = score(catalog, intake.prepare_digit(picture), device)
    return table(found), heat_maps(found), reading(found)


def build(services: Services) -> None:
    """The tab's widgets and its `/likelihood` and `/score_source` events."""
    catalog = services.catalog
    datasets = sorted({c.dataset for c in catalog.autoregressive.values()} | set(catalog.test_sets))
    if not catalog.autoregressive and not scorable_vaes(catalog):
        gr.Markdown("No model with a likelihood is loaded. Train a PixelCNN with `python -m train pixelcnn ...`.")
        return
    lead("Score an image under every model with a likelihood. An MNIST model meeting a Fashion-MNIST "
         "item (or your drawing of a cat) is surprised, and the heat map shows where.")
    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Dropdown(datasets, value=datasets[0] if datasets else None, label="examples from",
                                 elem_id="likelihood-source")
            digit = digit_input(services.dataset_example, source, "score", "Image to score")
        with gr.Column(scale=2):
            first = likelihood(catalog, digit.initial, "cpu") if digit.initial is not None else None
            scores = gr.Dataframe(value=first[0] if first else pd.DataFrame(columns=COLUMNS),
                                  label="-log p(x) of this image under each model", interactive=False,
                                  wrap=True, column_widths=["28%", "20%", "13%", "13%", "13%", "13%"],
                                  max_height=380, elem_id="likelihood-scores")  # on a 720 px screen
            maps = gr.Gallery(value=first[1] if first else None, label="per-pixel -log p(x_i | x_<i)",
                              columns=2, height="auto", object_fit="contain", buttons=PICTURE_BUTTONS)
            text = gr.Markdown(first[2] if first else "")
    source.change(user_errors(functools.partial(example_digit, services.dataset_example)), [source, digit.index],
                  [digit.preview, digit.caption], api_name="score_source", **DECODE)
    digit.preview.change(user_errors(functools.partial(likelihood, catalog)), digit.preview, [scores, maps, text],
                         api_name="likelihood", trigger_mode="always_last", **DECODE)
