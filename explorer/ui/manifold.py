"""2-D manifold tab: for a model with a 2-D code space, the whole learned manifold in one
picture, and where the encoded test images land, coloured by class.

Endpoint `/manifold`: (model, size, label) -> the manifold picture, the scatter table
(z0, z1, class; empty without test images) and a note saying which it is.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr
import pandas as pd
from PIL import Image

from .. import latent, render
from .services import SCATTER_POINTS, Services
from . import inputs
from .common import PICTURE_BUTTONS, DECODE, LIGHT, class_picker, how_to_read, label_or_none, lead, user_errors

SIZE_RANGE = (5, 25)
COLUMNS = ("z0", "z1", "class")


def scatter_table(services: Services, name: str) -> tuple[pd.DataFrame, str]:
    """Codes of the first test images with their class names, or an empty table and why."""
    catalog = services.catalog
    if latent.inverts(catalog.checkpoint(name, "latent").model):
        return (pd.DataFrame({c: [] for c in COLUMNS}),
                f"{name} is a GAN: it has no encoder, and finding the codes of {SCATTER_POINTS} test "
                "images by optimisation would take minutes, so there is no scatter of encoded images "
                "here. The manifold picture shows what its generator makes.")
    found = services.test_codes(name)
    if found is None:
        return (pd.DataFrame({c: [] for c in COLUMNS}),
                f"No test images are available for {catalog.checkpoint(name, 'latent').dataset}, so there is no scatter "
                "of encoded images here; the manifold picture shows what the decoder makes.")
    codes, labels = found
    classes = catalog.classes(name)
    table = pd.DataFrame({"z0": codes[:, 0].numpy(), "z1": codes[:, 1].numpy(),
                          "class": [classes[int(k)] for k in labels]})
    return table, f"{len(table)} test images, encoded (the mean of q(z|x) for a VAE), coloured by class."


def manifold(services: Services, name: str, size: Any, label: Any) -> tuple[Image.Image, pd.DataFrame, str]:
    """The quantile-spaced manifold picture and the scatter of encoded test images."""
    catalog = services.catalog
    model = catalog.checkpoint(inputs.model_name(catalog, name, "latent"), "latent").model
    if model.latent_dim != 2:
        raise ValueError(f"{name} has {model.latent_dim} latent dimensions; this view needs exactly 2.")
    size = inputs.count(size, "grid size", *SIZE_RANGE)
    grid = latent.manifold_grid(model, size, label_or_none(catalog, name, label))
    picture, _ = render.labelled_grid(grid.images, grid.x_values.tolist(), grid.y_values.tolist(),
                                      "z0", "z1", scale=render.auto_scale(size, target=600))
    table, note = scatter_table(services, name)
    return picture, table, note


def build(services: Services) -> None:
    """The tab's widgets and its `/manifold` event."""
    catalog = services.catalog
    names = catalog.two_d_names()
    if not names:
        gr.Markdown("No model with a 2-D code space is loaded. Train one with "
                    "`python -m train vae --set latent_dim=2 ...` to see its whole manifold here.")
        return
    lead("A code space with two dimensions, seen whole: left, codes decoded; right, where the encoder "
         "puts real test images.")
    with gr.Row():
        model = gr.Dropdown(catalog.choices(names), value=names[0], label="2-D model", elem_id="manifold-model")
        size = gr.Slider(*SIZE_RANGE, value=15, step=1, label="pictures per side")
        label = class_picker(catalog, model.value)
    first = manifold(services, names[0], 15, 0)
    with gr.Row():
        picture = gr.Image(value=first[0], label="learned manifold", type="pil", format="png",
                           interactive=False, elem_id="manifold-picture", elem_classes=["main-picture", "below-controls"],
                           buttons=PICTURE_BUTTONS)
        # Hidden where no 2-D model has test images to encode (no data set here): not an empty plot.
        scatter = gr.ScatterPlot(value=first[1], x="z0", y="z1", color="class",
                                 label="encoded test images", height=440,
                                 visible=any(services.test_codes(n) is not None for n in names))
    note = gr.Markdown(first[2])
    how_to_read("Left: codes at evenly spaced prior quantiles (every cell holds the same prior mass), "
                "decoded. Right: where the encoder puts real test images. Gaps between the class clusters "
                "are where the left picture morphs from one kind of digit into another.")
    model.change(functools.partial(class_picker, catalog),
                 [model, label], label, api_name="manifold_controls", **LIGHT)
    gr.on(triggers=[model.change, size.input, label.input],
          fn=user_errors(functools.partial(manifold, services)),
          inputs=[model, size, label], outputs=[picture, scatter, note],
          api_name="manifold", trigger_mode="always_last", show_progress="minimal", **DECODE)
