"""Pixel-by-pixel tab: watch PixelCNN or PixelRNN draw images one pixel at a time.

A frame shows the samples so far (pixels not drawn yet in blue, the current pixel outlined
in red), the model's predictive distribution at that pixel, and its receptive field there:
which earlier pixels the prediction can depend on, measured from gradients, with PixelCNN's
blind spot in orange. With "given rows" above 0 the top of an image (an example, an upload
or a drawing) is kept and the model completes the rest, one completion per sample.

Generation is deterministic in (model, samples, temperature, seed, given image): every
uniform number is drawn from the seed up front (`explorer.sampling`). So stepping needs no
server state: a frame at pixel p is recomputed by the cached sampler (well under a second
for 16 samples), and playing from p continues exactly where the step view stood.

Endpoints (inputs: model, samples, temperature, seed, given rows, image, class, pixel):
  `/pixel_model`:    (..., pixel) -> description, class picker, pixel slider, its frame.
  `/pixel_view`:     the frame at `pixel` (0-based raster index): picture, distribution,
                     receptive field, a summary.
  `/pixel_next`, `/pixel_previous`: (..., pixel) -> (pixel + 1 or - 1, its frame).
  `/pixel_play`:     (..., pixel, pixels per frame) -> streams (pixel, frame) from the next
                     pixel to the last (from the first if `pixel` is the last), at most
                     FPS frames a second. Stop (and choosing another model) cancels it.
  `/complete_from_example|upload|drawing`: the image to complete (see `digits`).
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass
from typing import Any, Iterator

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .. import intake, render, sampling
from ..models.base import AutoregressiveModel
from ..sampling import PixelStep
from .catalog import Catalog
from .services import Services
from . import inputs
from .common import DECODE, class_picker, label_or_none, model_info, picked_class, user_errors
from .digits import digit_input

MAX_SAMPLES = 16
TEMPERATURES = (0.05, 2.0)   # below: nearly greedy; above: mostly noise
# Frames a second while playing: smooth to the eye, and few enough that the browser keeps up.
FPS = 15
FRAME_SIDE = 460          # about how wide the sample mosaic is drawn, in screen pixels
# A long stream is its own kind of work; its own pool keeps it from holding the decode slots.
STREAM = {"concurrency_id": "stream", "concurrency_limit": 4}

EXPLANATION = (
    "An autoregressive model writes an image **one pixel at a time**, left to right, top to bottom: "
    "each pixel is drawn from the model's prediction given every pixel before it. Press **Play** to "
    "watch, or step with **Next pixel**. On the right: the prediction at the red pixel, and which "
    "earlier pixels it can see (green; brighter = stronger influence). Orange marks earlier pixels within "
    "its reach that it **cannot** see: the blind spot of a plain PixelCNN, which the gated PixelCNN removes; "
    "the Row LSTM sees a triangle above and only a few pixels to its left; the Diagonal BiLSTM sees all but one "
    "(the last pixel of the row above); grey ones are further away than its layers reach. "
    "Set *given rows* above 0 to keep the top of an image and let the model complete the rest."
)


@dataclass(frozen=True)
class Request:
    """One generation, checked: everything that decides its pixels."""

    name: str
    samples: int
    temperature: float
    seed: int
    given_rows: int
    image: torch.Tensor | None   # (1, H, W) in [0, 1] for a completion, else None
    label: int | None


def request(catalog: Catalog, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
            image: np.ndarray | None, label: Any) -> Request:
    """Check the controls; a ValueError names what is wrong."""
    model = catalog.checkpoint(inputs.model_name(catalog, name, "autoregressive"), "autoregressive").model
    height = model.data_shape[1]
    samples = inputs.count(samples, "number of samples", 1, MAX_SAMPLES)
    temperature = inputs.number(temperature, "temperature", *TEMPERATURES)
    seed = inputs.seed(seed)
    given_rows = inputs.count(given_rows or 0, "number of given rows", 0, height - 1)
    picture = None
    if given_rows:
        image = inputs.image(image)
        if image is None:
            raise ValueError("Pick, upload or draw an image to complete, or set given rows to 0.")
        picture = intake.prepare_digit(image)
    return Request(name, samples, temperature, seed, given_rows, picture, label_or_none(catalog, name, label))


def stream(catalog: Catalog, req: Request) -> Iterator[PixelStep]:
    model = catalog.checkpoint(req.name, "autoregressive").model
    known = mask = None
    if req.given_rows:
        known, mask = model.as_input(req.image, threshold=True), sampling.top_rows_mask(model, req.given_rows)
    return sampling.sample_stream(model, req.samples, y=req.label, temperature=req.temperature,
                                  generator=torch.Generator().manual_seed(req.seed), known=known, known_mask=mask)


def step_at(catalog: Catalog, req: Request, position: Any) -> PixelStep:
    """The step that decides pixel `position` (raster index), computed from the start."""
    total = math.prod(catalog.checkpoint(req.name, "autoregressive").model.data_shape[1:])
    position = inputs.whole(position, "pixel", 0, total - 1)
    for step in stream(catalog, req):
        if step.index == position:
            return step
    raise AssertionError("the stream ended early")  # pragma: no cover


def distribution_picture(model: AutoregressiveModel, step: PixelStep) -> Image.Image:
    """The prediction at the current pixel: p(white) of every sample (binary), or the 256-level
    histogram of sample 1 (8-bit), the drawn value in red."""
    probs = step.probs.detach().cpu()
    drawn = model.targets(step.image[:, :, step.row, step.col]).flatten().tolist()    # (N,) class indices
    if model.output_kind == "bernoulli":
        p = probs[:, 0].tolist()
        ticks = {i: str(i + 1) for i in range(len(p))}
        return render.bar_chart(p, y_max=1.0, title="p(white) at the red pixel, per sample (red: drew white)",
                                  ticks=ticks, highlight=[i for i, d in enumerate(drawn) if d == 1])
    levels = probs[0].tolist()
    top = max(levels)
    y_max = float(f"{min(1.0, top * 1.1):.2g}") or 1.0
    return render.bar_chart(levels, y_max=max(y_max, top), title="sample 1: p(grey level) at the red pixel",
                              ticks={0: "0", 64: "64", 128: "128", 192: "192", 255: "255"}, highlight=[drawn[0]])


def summary(catalog: Catalog, req: Request, step: PixelStep, field: torch.Tensor) -> str:
    model = catalog.checkpoint(req.name, "autoregressive").model
    counts = render.field_counts(field, step.row, step.col)
    head = f"**Pixel {step.index + 1} of {step.total}** (row {step.row}, column {step.col})."
    if not bool(step.sampled[0]):
        what = f"Sample 1: this pixel is **given** (the top {req.given_rows} rows are kept), so nothing is drawn."
    elif model.output_kind == "bernoulli":
        p = float(step.probs[0, 0])
        colour = "white" if float(step.image[0, 0, step.row, step.col]) == 1 else "black"
        what = f"Sample 1: p(white) = **{p:.3f}**, drew **{colour}**."
    else:
        probs = step.probs[0]
        level = int(model.targets(step.image[0:1, :, step.row, step.col]).item())
        entropy = float(-(probs * torch.log2(probs.clamp_min(1e-30))).sum())
        what = (f"Sample 1: most likely level {int(probs.argmax())} (p = {float(probs.max()):.3f}); "
                f"drew level **{level}**; the prediction's entropy is {entropy:.2f} bits (8 = uniform).")
    if counts.earlier == 0:
        return f"{head} {what}  \nIt is the first pixel: nothing comes before it, so its prediction is the same for every image."
    seen = f"The prediction here depends on **{counts.seen} of the {counts.earlier}** earlier pixels"
    if counts.blind:
        seen += f"; **{counts.blind}** within its reach lie in its **blind spot** (orange)"
    elif counts.out_of_reach:
        seen += "; no blind spot"
    if counts.out_of_reach:
        seen += (f"; {counts.out_of_reach} {'is' if counts.out_of_reach == 1 else 'are'} further away than "
                 "its layers reach (grey)")
    seen += "." if counts.out_of_reach or counts.blind else ": all of them, no blind spot."
    return f"{head} {what}  \n{seen}"


def frame(services: Services, req: Request, step: PixelStep) -> tuple[Image.Image, Image.Image, Image.Image, str]:
    """The four views of one step: samples, distribution, receptive field, summary."""
    catalog = services.catalog
    model = catalog.checkpoint(req.name, "autoregressive").model
    given = sampling.top_rows_mask(model, req.given_rows)[0] if req.given_rows else None
    cols = render.grid_columns(req.samples)
    scale = max(2, min(12, FRAME_SIDE // (cols * model.data_shape[2])))
    field = services.receptive_field(req.name, step.row, step.col, req.label)
    return (render.generation_frame(step.image, step.index, given, scale),
            distribution_picture(model, step),
            render.receptive_field_picture(field, step.row, step.col),
            summary(catalog, req, step, field))


def view(services: Services, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
         image: np.ndarray | None, label: Any, position: Any) -> tuple[Image.Image, Image.Image, Image.Image, str]:
    req = request(services.catalog, name, samples, temperature, seed, given_rows, image, label)
    return frame(services, req, step_at(services.catalog, req, position))


def step_by(services: Services, delta: int, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
            image: np.ndarray | None, label: Any, position: Any) -> tuple[int, Image.Image, Image.Image, Image.Image, str]:
    """One pixel forward or back (staying inside the image)."""
    name = inputs.model_name(services.catalog, name, "autoregressive")
    total = math.prod(services.catalog.checkpoint(name, "autoregressive").model.data_shape[1:])
    position = min(max(inputs.whole(position or 0, "pixel") + delta, 0), total - 1)
    return (position, *view(services, name, samples, temperature, seed, given_rows, image, label, position))


def play(services: Services, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
         image: np.ndarray | None, label: Any, position: Any, speed: Any
         ) -> Iterator[tuple[int, Image.Image, Image.Image, Image.Image, str]]:
    """Stream frames every `speed` pixels from the pixel after `position` to the last."""
    catalog = services.catalog
    req = request(catalog, name, samples, temperature, seed, given_rows, image, label)
    total = math.prod(catalog.checkpoint(name, "autoregressive").model.data_shape[1:])
    speed = inputs.count(speed, "number of pixels per frame", 1, total)
    position = inputs.whole(position or 0, "pixel")
    start = 0 if position >= total - 1 else max(position + 1, 0)
    shown = 0.0
    for step in stream(catalog, req):
        if step.index < start:
            continue
        if (step.index - start + 1) % speed and step.index != total - 1:
            continue
        wait = shown + 1.0 / FPS - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        shown = time.monotonic()
        yield (step.index, *frame(services, req, step))


def select(services: Services, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
           image: np.ndarray | None, label: Any, position: Any
           ) -> tuple[str, gr.Dropdown, gr.Slider, Image.Image, Image.Image, Image.Image, str]:
    """What changes with the model: its description, the class picker, the pixel slider's
    range (the position kept where it fits), and the frame there."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "autoregressive")
    total = math.prod(catalog.checkpoint(name, "autoregressive").model.data_shape[1:])
    try:
        position = min(max(inputs.whole(position, "pixel"), 0), total - 1)
    except gr.Error:
        position = total - 1
    label = picked_class(catalog, name, label)
    return (model_info(catalog, name), class_picker(catalog, name, label), gr.Slider(maximum=total - 1, value=position),
            *view(services, name, samples, temperature, seed, given_rows, image, label, position))


# The order the picker lists families in: the blind spot first, then its fixes.
FAMILY_ORDER = ["pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm"]


def picker_order(catalog: Catalog) -> list[str]:
    """MNIST models first, then by family (plain PixelCNN first, to show its blind spot)."""
    def rank(name: str) -> tuple[bool, int, str]:
        ckpt = catalog.checkpoint(name)
        family = FAMILY_ORDER.index(ckpt.model.name) if ckpt.model.name in FAMILY_ORDER else len(FAMILY_ORDER)
        return ckpt.dataset != "mnist", family, name
    return sorted(catalog.autoregressive_names, key=rank)


def build(services: Services) -> None:
    """The tab's widgets and events (see the module docstring)."""
    catalog = services.catalog
    names = picker_order(catalog)
    if not names:
        gr.Markdown("No autoregressive model is loaded. Train one with `python -m train pixelcnn ...` "
                    "(or gated_pixelcnn, row_lstm, diagonal_bilstm) to watch it generate here.")
        return
    gr.Markdown(EXPLANATION)
    start = names[0]
    total = math.prod(catalog.checkpoint(start, "autoregressive").model.data_shape[1:])
    with gr.Row():
        model = gr.Dropdown(catalog.choices(names), value=start, label="autoregressive model", scale=2)
        info = gr.Markdown(model_info(catalog, start))
    with gr.Row():
        samples = gr.Slider(1, MAX_SAMPLES, value=4, step=1, label="samples")
        temperature = gr.Slider(*TEMPERATURES, value=1.0, step=0.05, label="temperature (<1 bolder, >1 wilder)")
        seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
        speed = gr.Slider(1, 112, value=4, step=1, label="pixels per frame while playing")
        label = class_picker(catalog, start)
    with gr.Accordion("Completion: keep the top of an image, let the model draw the rest", open=False):
        with gr.Row():
            given_rows = gr.Slider(0, catalog.checkpoint(start, "autoregressive").model.data_shape[1] - 1, value=0, step=1,
                                   label="given rows (0 = generate from nothing)")
            digit = digit_input(services.example, model, "complete", "Image to complete")
    with gr.Row():
        play_button = gr.Button("Play", variant="primary")
        stop_button = gr.Button("Stop", variant="stop")
        previous_button = gr.Button("◀ Previous pixel")
        next_button = gr.Button("Next pixel ▶")
    position = gr.Slider(0, total - 1, value=total - 1, step=1, label="pixel (raster order; drag to scrub)")
    first = view(services, start, 4, 1.0, 0, 0, None, None, total - 1)
    with gr.Row():
        picture = gr.Image(value=first[0], label="samples (blue: not drawn yet; red: the current pixel)",
                           type="pil", format="png", interactive=False, scale=3, elem_id="pixel-frame")
        with gr.Column(scale=2):
            distribution = gr.Image(value=first[1], label="prediction at the red pixel", show_label=False,
                                    type="pil", format="png", interactive=False, height=210)
            field = gr.Image(value=first[2], label="receptive field (green: seen; orange: blind spot; grey: out of reach)",
                             type="pil", format="png", interactive=False, height=240)
    status = gr.Markdown(first[3])
    controls = [model, samples, temperature, seed, given_rows, digit.preview, label]
    frame_out = [picture, distribution, field, status]
    playing = play_button.click(user_errors(functools.partial(play, services)), [*controls, position, speed],
                                [position, *frame_out], api_name="pixel_play", show_progress="hidden", **STREAM)
    stop_button.click(None, None, None, cancels=[playing], api_name="pixel_stop")
    next_button.click(user_errors(functools.partial(step_by, services, 1)), [*controls, position],
                      [position, *frame_out], api_name="pixel_next", cancels=[playing], **DECODE)
    previous_button.click(user_errors(functools.partial(step_by, services, -1)), [*controls, position],
                          [position, *frame_out], api_name="pixel_previous", cancels=[playing], **DECODE)
    model.change(user_errors(functools.partial(select, services)), [*controls, position],
                 [info, label, position, *frame_out], api_name="pixel_model", cancels=[playing], **DECODE)
    # The pixel slider, and any control that changes the samples, redraw the frame there.
    gr.on([position.release, samples.release, temperature.release, seed.submit, given_rows.release,
           digit.preview.change], user_errors(functools.partial(view, services)), [*controls, position], frame_out,
          api_name="pixel_view", trigger_mode="always_last", show_progress="minimal", **DECODE)
