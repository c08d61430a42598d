"""Encode tab: an image in, the model's code for it (a list of numbers) and what that code decodes to.

Endpoint `/encode`: (model, image, label) -> the code (a list of floats), the decoded image
and a note (the code's size and how well the decoded image matches; for a GAN, that its code
was found by optimisation). `/encode_controls`: the class picker for the chosen model.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr
import numpy as np

from .. import intake, latent
from .services import Services
from . import inputs
from .common import (PICTURE_BUTTONS, ENCODE, LIGHT, InversionProgress, class_picker, digit_picture, label_or_none,
                     lead, user_errors)
from .digits import digit_input


def encode(services: Services, name: str, picture: np.ndarray | None, label: Any,
           progress: gr.Progress = gr.Progress()) -> tuple[list[float], np.ndarray, str]:
    """The code of one picture under the model, its decoding (28x28 uint8) and a note; a GAN's
    inversion shows its progress on the page."""
    picture = inputs.image(picture)
    if picture is None:
        raise ValueError("Pick, upload or draw an image to encode.")
    model = services.catalog.checkpoint(inputs.model_name(services.catalog, name, "latent"), "latent").model
    y = label_or_none(services.catalog, name, label)
    code, error = services.encode_with_error(name, intake.prepare_digit(np.asarray(picture)), y,
                                             InversionProgress(progress))
    decoded = latent.decode(model, code.unsqueeze(0), y)[0]
    how = ("found by optimisation (a GAN has no encoder), " if latent.inverts(model)
           else "the mean of q(z|x), " if getattr(model, "variational", False) else "")
    note = (f"**{model.latent_dim} numbers**: the code of this image under {name}, {how}decoded on the "
            f"right. Reconstruction error: {error:.4f} mean squared error per pixel.")
    return code.tolist(), digit_picture(decoded), note


def build(services: Services, start: str) -> None:
    """The tab's widgets and its `/encode` and `/encode_controls` events."""
    catalog = services.catalog
    lead("Turn an image into the model's code: the few numbers from which its decoder draws it "
         "again. Every other tab walks this code space.")
    with gr.Row():
        model = gr.Dropdown(catalog.choices(), value=start, label="model", scale=2, elem_id="encode-model")
        label = class_picker(catalog, start)
        run = gr.Button("Encode", variant="primary", scale=0)
    with gr.Row():
        with gr.Column():
            digit = digit_input(services.example, model, "encode", "Image to encode")
        with gr.Column():
            first = encode(services, start, digit.initial, 0) if digit.initial is not None else None
            decoded = gr.Image(value=first[1] if first else None, label="its code, decoded", image_mode="L",
                               format="png", interactive=False, height=190, width=170, elem_classes=["pixelated"],
                               elem_id="encode-decoded",
                               buttons=PICTURE_BUTTONS)
            note = gr.Markdown(first[2] if first else "")
    code = gr.JSON(value=first[0] if first else None, label="the code (one number per latent dimension)")
    model.change(functools.partial(class_picker, catalog), [model, label], label,
                 api_name="encode_controls", **LIGHT)
    gr.on(triggers=[run.click, model.change, label.input, digit.preview.change],
          fn=user_errors(functools.partial(encode, services)), inputs=[model, digit.preview, label],
          outputs=[code, decoded, note], api_name="encode", trigger_mode="always_last",
          # The progress line of a GAN's inversion, over the note (an encoder network's pass
          # is too quick to show one).
          show_progress="full", show_progress_on=[note], **ENCODE)
