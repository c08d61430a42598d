"""Interpolation tab: encode two digits and walk the code space from one to the other.

Endpoint `/interpolate`: (model, image_a, image_b, method, steps, label) -> the strip (its
first and last frames are the two digits' reconstructions), the prior log-density along the
lerp and slerp paths, and a note (for a GAN: how well the inversion that stands in for its
encoder fitted the two digits; otherwise empty). Every control reruns it.
`/interpolation_slides`: the same inputs -> the strip as a PNG and an animated GIF for
slides (every pixel 8 or more wide), made on request. `/interpolation_model`: (model, label) -> its description and class picker.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from .. import intake, latent, render
from ..models.base import LatentModel
from .services import Services
from . import inputs
from .common import (ENCODE, LIGHT, PICTURE_BUTTONS, FileStore, about_model, how_to_read, lead, class_picker,
                     InversionProgress, label_or_none, model_info, user_errors)
from .links import Shareable
from .digits import digit_input

STEPS_RANGE = (2, 20)
GIF_SCALE = 6  # the animation's frames before they are made slide-ready
PLOT_X, PLOT_Y, PLOT_COLOR = "position t along the way", "log p(z) under the prior", "curve"


def density_table(services: Services, name: str, z0: torch.Tensor, z1: torch.Tensor, steps: int) -> pd.DataFrame:
    """Long table for the line plot: prior log-density along lerp and slerp, plus the level
    of typical prior samples."""
    model = services.catalog.checkpoint(name, "latent").model
    t = np.linspace(0.0, 1.0, steps)
    curves = latent.path_log_density(model, z0, z1, steps)
    curves["typical prior sample"] = np.full(steps, services.typical_log_density(name))
    return pd.DataFrame({
        PLOT_X: np.concatenate([t] * len(curves)),
        PLOT_Y: np.concatenate([np.asarray(v, dtype=float) for v in curves.values()]),
        PLOT_COLOR: np.repeat(list(curves), steps),
    })


def inversion_note(name: str, errors: tuple[float, float]) -> str:
    """Markdown for a GAN: the inversion's reconstruction error for the two digits, and why."""
    return (f"**GAN inversion**: reconstruction MSE per pixel {errors[0]:.3f} (A) / {errors[1]:.3f} (B). "
            f"{name} is a GAN, which has no encoder, so each code was found by optimisation: "
            "gradient descent on z from several random starts, keeping the best fit. A large error "
            "means the generator cannot draw that digit, and the strip starts and ends at its best try.")


@dataclass
class Walk:
    """An interpolation: the decoded path and what made it."""

    model: LatentModel
    decoded: torch.Tensor     # (steps, 1, 28, 28); the first and last: decode(encode(A)), decode(encode(B))
    codes: tuple[torch.Tensor, torch.Tensor]
    errors: tuple[float, float]
    steps: int
    method: str


def walk(services: Services, name: str, image_a: np.ndarray | None, image_b: np.ndarray | None,
         method: str, steps: Any, label: Any, progress: gr.Progress | None = None) -> Walk:
    """Encode both digits and decode `steps` codes on the chosen path (a ValueError says what
    is wrong with a setting); `progress` shows a GAN's inversion of each on the page."""
    catalog = services.catalog
    model = catalog.checkpoint(inputs.model_name(catalog, name, "latent"), "latent").model
    image_a, image_b = inputs.image(image_a, "digit A"), inputs.image(image_b, "digit B")
    if image_a is None or image_b is None:
        raise ValueError("Choose both digits first (a data-set example, an upload or a drawing).")
    steps = inputs.count(steps, "number of steps", *STEPS_RANGE)
    method = inputs.choice(method, list(latent.METHODS), "interpolation method")
    y = label_or_none(catalog, name, label)
    # (`is None`: a gr.Progress is falsy, it has a length.)
    a_progress, b_progress = ((None, None) if progress is None else
                              (InversionProgress(progress, f"inverting the generator for digit {end}") for end in "AB"))
    z0, error_a = services.encode_with_error(name, intake.prepare_digit(image_a), y, a_progress)
    z1, error_b = services.encode_with_error(name, intake.prepare_digit(image_b), y, b_progress)
    # Both paths start at z0 and end at z1: the strip's ends are the reconstructions.
    pictures = latent.decode(model, latent.interpolate(model, z0, z1, steps, method), y)
    return Walk(model, pictures, (z0, z1), (error_a, error_b), steps, method)


def interpolation(services: Services, name: str, image_a: np.ndarray | None, image_b: np.ndarray | None,
                  method: str, steps: Any, label: Any, progress: gr.Progress = gr.Progress()
                  ) -> tuple[Image.Image, pd.DataFrame, str]:
    """The strip, the density plot and (for a GAN) the inversion note, with the inversion's
    progress on the page while it runs."""
    path = walk(services, name, image_a, image_b, method, steps, label, progress)
    picture = render.strip(path.decoded, render.strip_scale(path.steps))
    note = inversion_note(name, path.errors) if latent.inverts(path.model) else ""
    return picture, density_table(services, name, *path.codes, path.steps), note


def slides(services: Services, store: FileStore, name: str, image_a: np.ndarray | None,
           image_b: np.ndarray | None, method: str, steps: Any, label: Any) -> tuple[str, str]:
    """Downloads for slides, made when asked for (encoding a GIF costs more than the whole
    interpolation, and a hall moving sliders needs none): the strip as a PNG and the animation
    as a GIF, every digit pixel 8 or more screen pixels wide."""
    path = walk(services, name, image_a, image_b, method, steps, label)
    scale = render.strip_scale(path.steps)
    png = store.write(render.png_bytes(render.slide_ready(render.strip(path.decoded, scale), scale)),
                      f"{name}-{path.method}", ".png")
    frames = [render.slide_ready(f, GIF_SCALE) for f in render.frames(path.decoded, GIF_SCALE)]
    gif = store.write(render.gif_bytes(frames), f"{name}-{path.method}", ".gif")
    return png, gif


def select(services: Services, name: str, label: Any) -> tuple[str, gr.Dropdown]:
    """What changes with the model: its description and the class picker."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    return model_info(catalog, name), class_picker(catalog, name, label)


def restore(services: Services, params: dict[str, str]) -> list[Any]:
    """A link's settings (see `links`): model, the test image numbers of A and B, method, steps."""
    catalog = services.catalog
    name = inputs.model_name(catalog, params.get("model") or catalog.latent_names[0], "latent")
    a = inputs.whole(params.get("a", 0), "test image number", 0, 10**9)
    b = inputs.whole(params.get("b", 1), "test image number", 0, 10**9)
    method = inputs.choice(params.get("method", "slerp"), list(latent.METHODS), "interpolation method")
    steps = inputs.count(params.get("steps", 10), "number of steps", *STEPS_RANGE)
    return [name, a, b, method, steps]


def build(services: Services, start: str, store: FileStore) -> Shareable:
    """The tab's widgets and its `/interpolate` event; returns what a link holds of it."""
    catalog = services.catalog
    lead("Encode two digits, then decode codes on the way from one to the other (the strip's ends are the "
         "two digits as the model reconstructs them): **lerp** walks the straight line, **slerp** turns "
         "along the sphere.")
    with gr.Row():
        model = gr.Dropdown(catalog.choices(), value=start, label="model", scale=3, elem_id="interpolation-model")
        method = gr.Radio(list(latent.METHODS), value="slerp", label="method", scale=1, elem_id="interpolation-method")
        steps = gr.Slider(*STEPS_RANGE, value=10, step=1, label="steps", scale=2)
        label = class_picker(catalog, start)
    outputs = [None, None, ""]
    strip_slot = gr.Column()  # the strip goes first, above the inputs; filled in below
    with gr.Row():
        with gr.Column():
            a = digit_input(services.example, model, "a", "Digit A", default_index=0)
        with gr.Column():
            b = digit_input(services.example, model, "b", "Digit B", default_index=1)
    if start in catalog.latent:
        outputs = list(interpolation(services, start, a.initial, b.initial, "slerp", 10, 0))
    with strip_slot:
        # Its ends are A and B as the model reconstructs them (said in the lead): no pictures of
        # their own, each an encoding and a download per call for the server.
        strip = gr.Image(value=outputs[0], label="interpolation strip", type="pil", format="png",
                         interactive=False, elem_id="interpolation-strip", elem_classes=["main-picture"],
                         buttons=PICTURE_BUTTONS)
        # How well a GAN's inversion fitted the two digits; while it runs, its progress line
        # (an empty note has no height to show it on, hence the minimum).
        note = gr.Markdown(outputs[2], min_height=40)
    plot = gr.LinePlot(value=outputs[1], x=PLOT_X, y=PLOT_Y, color=PLOT_COLOR,
                       label="prior log-density along the path", height=260)
    with gr.Row():
        make_slides = gr.Button("Make downloads for slides", scale=0, min_width=220)
        png = gr.File(label="strip for slides (PNG, 8x or more)")
        gif = gr.File(label="animation for slides (GIF, 12x)")
    info = about_model(catalog, start)
    how_to_read("**lerp** walks the straight line between the two codes; **slerp** turns along the sphere, "
                "keeping the length typical of prior codes. The plot shows why that matters: in many "
                "dimensions the straight line's middle is unusually *close to the centre*, a region the "
                "decoder rarely saw.")
    controls = [model, a.preview, b.preview, method, steps, label]
    results = [strip, plot, note]
    run = functools.partial(interpolation, services)
    model.input(user_errors(functools.partial(select, services)), [model, label], [info, label],
                api_name="interpolation_model", **LIGHT)
    gr.on(
        triggers=[model.input, method.input, steps.input, label.input, a.preview.change, b.preview.change],
        fn=user_errors(run), inputs=controls, outputs=results,
        # The progress line of a GAN's inversion shows over the note (empty for other models,
        # whose encoders are too quick to show one).
        api_name="interpolate", trigger_mode="always_last", show_progress="full", show_progress_on=[note], **ENCODE,
    )
    # Settings moved since the last downloads: those files no longer match the strip.
    gr.on(triggers=[model.input, method.input, steps.input, label.input, a.preview.change, b.preview.change],
          fn=lambda: (None, None), inputs=None, outputs=[png, gif], api_name="interpolation_slides_stale",
          api_visibility="private", queue=False)
    make_slides.click(user_errors(functools.partial(slides, services, store)), controls, [png, gif],
                      api_name="interpolation_slides", **ENCODE)
    return Shareable("interpolation", ("model", "a", "b", "method", "steps"), [model, a.index, b.index, method, steps],
                     functools.partial(restore, services), redraw=(run, controls, results))
