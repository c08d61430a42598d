"""Discrete codes (VQ-VAE) tab: an image as a 7x7 grid of codes, drawn by a prior, edited by hand.

A VQ-VAE (`explorer.models.vqvae`) turns an image into a grid of integers, each an entry of a
codebook of K vectors, and decodes the grid back. Three views:

  - **Play the prior**: its gated PixelCNN prior draws the codes one at a time, in raster order,
    and the decoder redraws the image after each (`sampling.code_stream`). Cells not drawn yet
    are hatched blue and decoded as the *blank code* (what an all-black image encodes to), so
    the picture shows what the drawn codes add to an empty background. A whole generation is
    drawn at once and remembered (`Services.code_play`); playing then only shows its frames at
    FPS frames a second, so a player holds no compute while it waits.
  - **Edit the code map**: an image (example, upload, drawing) is encoded; its code map is
    drawn over the decode, numbers in the cells. Pick a cell (click it, or the row and column
    sliders) and give it another code: the decode of the edited grid appears beside the
    original, with the codebook's usage over test images.
  - **VQ-VAE vs VAE**: the same images reconstructed by both, with each checkpoint's stored
    test reconstruction error.

A link holds the play view: `?tab=codes&model=mnist-vqvae-cond&class=3&seed=5&step=20`.

Endpoints (play inputs: model, class, seed, step; step is the raster index 0..48):
  `/codes_model`: the class picker and the frame for the chosen model.
  `/codes_view`: the frame at `step`: picture, the prior's distribution there, a summary.
  `/codes_next`, `/codes_previous`: (..., step) -> (step + 1 or - 1, its frame).
  `/codes_play`: streams (step, frame) from the step after `step` to the last (from the first
      if `step` is the last). `/codes_stop` cancels it.
  `/codes_encode`: (model, image, row, column) -> the code slider (range 0..K-1, at the cell's
      code) and the editor's views, unedited (a new image, model, or cell).
  `/codes_edit`: (model, image, row, column, code) -> code map, strip (input, decode, edited
      decode), codebook usage, a summary.
  `/codes_pick`: a click on the code map -> (row, column, the cell's code) and the views there.
  `/codes_compare`: (VQ-VAE, VAE, image) -> reconstructions side by side, a note with errors.
  `/codes_from_example|upload|drawing`: the image to encode (see `digits`).
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, AsyncIterator

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .. import intake, latent, render
from ..models.base import LatentModel
from ..sampling import CodeStep
from . import inputs
from .catalog import Catalog
from .common import (PICTURE_BUTTONS, DECODE, REPLAY, about_model, class_picker, how_to_read, label_or_none, lead, model_info,
                     picked_class, user_errors)
from .digits import digit_input
from .links import Shareable
from .services import Services

# Frames a second while playing: 49 codes in about six seconds, slow enough to follow.
FPS = 8
SCALE = 11                # code-map pictures: 28 * 11 = 308 screen pixels
COMPARE_SCALE = 4         # reconstructions side by side: 112 pixels a tile
COMPARE_EXAMPLES = 6      # test images (or samples) beside the chosen one

HATCHED = "Hatched cells: not drawn yet, decoded as the blank code (what an all-black image encodes to)."
PARTIAL = ("Cells not drawn yet (hatched blue) are decoded as the **blank code**, the code an all-black "
           "image gets, so the picture shows what the drawn codes add to an empty background.")
EXPLANATION = (
    "A **VQ-VAE** describes an image by a 7x7 grid of **codes**, each one of K codebook entries; its decoder "
    "draws the image from the grid. A PixelCNN **prior** learns which grids are likely and draws new ones, "
    "one code at a time. " + PARTIAL)


# ---------------------------------------------------------------------- play the prior

@dataclass(frozen=True)
class Play:
    """One generation, checked: what decides its codes."""

    name: str
    seed: int
    label: int | None


def play_request(catalog: Catalog, name: Any, label: Any, seed: Any) -> Play:
    name = inputs.model_name(catalog, name, "discrete")
    return Play(name, inputs.seed(seed), label_or_none(catalog, name, label))


def total_steps(catalog: Catalog, name: str) -> int:
    h, w = catalog.checkpoint(name, "discrete").model.grid
    return h * w


def steps(services: Services, req: Play) -> list[CodeStep]:
    return services.code_play(req.name, req.seed, req.label)


def distribution_picture(step: CodeStep) -> Image.Image:
    """The prior's distribution over the K codes at the current cell, the drawn code in red."""
    probs = step.step.probs[0].detach().cpu()
    k = len(probs)
    drawn = int(step.codes[0, step.step.row, step.step.col])
    top = float(probs.max())
    ticks = {i: str(i) for i in sorted({0, k // 4, k // 2, 3 * k // 4, k - 1})}
    return render.bar_chart(probs.tolist(), y_max=max(float(f"{min(1.0, top * 1.1):.2g}"), top),
                            title="prior's p(code) at the red cell; red: drawn",
                            ticks=ticks, highlight=[drawn])


def play_summary(step: CodeStep, label_name: str | None) -> str:
    probs = step.step.probs[0]
    row, col = step.step.row, step.step.col
    drawn = int(step.codes[0, row, col])
    entropy = float(-(probs * torch.log2(probs.clamp_min(1e-30))).sum())
    k = len(probs)
    given = f" (class {label_name})" if label_name else ""
    return (f"**Code {step.step.index + 1} of {step.step.total}**{given} at row {row}, column {col}: the prior "
            f"drew **code {drawn}** (p = {float(probs[drawn]):.3f}); its most likely code there was "
            f"{int(probs.argmax())} (p = {float(probs.max()):.3f}), and its uncertainty {entropy:.2f} bits "
            f"of at most {np.log2(k):.2f}.  \n{HATCHED}")


def frame(services: Services, req: Play, step: CodeStep) -> tuple[Image.Image, Image.Image, str]:
    """The views of one step: code map over the decode, the prior's distribution, a summary."""
    label_name = services.catalog.classes(req.name)[req.label] if req.label is not None else None
    picture = render.code_map(step.image[0], step.codes[0], current=(step.step.row, step.step.col), scale=SCALE)
    return picture, distribution_picture(step), play_summary(step, label_name)


def view(services: Services, name: Any, label: Any, seed: Any, position: Any) -> tuple[Image.Image, Image.Image, str]:
    req = play_request(services.catalog, name, label, seed)
    position = inputs.whole(position, "code step", 0, total_steps(services.catalog, req.name) - 1)
    return frame(services, req, steps(services, req)[position])


def step_by(services: Services, delta: int, name: Any, label: Any, seed: Any, position: Any
            ) -> tuple[int, Image.Image, Image.Image, str]:
    """One code forward or back (staying inside the grid)."""
    name = inputs.model_name(services.catalog, name, "discrete")
    total = total_steps(services.catalog, name)
    position = min(max(inputs.whole(position if position is not None else 0, "code step") + delta, 0), total - 1)
    return (position, *view(services, name, label, seed, position))


async def play(services: Services, name: Any, label: Any, seed: Any, position: Any
               ) -> AsyncIterator[tuple[int, Image.Image, Image.Image, str]]:
    """Stream every step from the one after `position` to the last, FPS a second. The whole
    generation is drawn first (remembered) and each frame rendered in a worker thread; waiting
    for a frame's time holds no thread, so many players (this tab's, and the Pixel tab's when
    it plays a VQ-VAE) wait side by side."""
    req = play_request(services.catalog, name, label, seed)
    position = inputs.whole(position if position is not None else 0, "code step")
    every = await asyncio.to_thread(steps, services, req)
    start = 0 if position >= len(every) - 1 else max(position + 1, 0)
    loop = asyncio.get_running_loop()
    first = None
    for k, step in enumerate(every[start:]):
        shown = await asyncio.to_thread(frame, services, req, step)
        if first is None:
            first = loop.time()
        else:   # paced from the first frame, so a late frame does not delay the rest
            await asyncio.sleep(max(0.0, first + k / FPS - loop.time()))
        yield (step.step.index, *shown)


def select_model(services: Services, name: Any, label: Any, seed: Any, position: Any
                 ) -> tuple[str, gr.Dropdown, Image.Image, Image.Image, str]:
    """What changes with the model: its description, the class picker, the frame."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "discrete")
    label = picked_class(catalog, name, label)
    return (model_info(catalog, name), class_picker(catalog, name, label), *view(services, name, label, seed, position))


# ---------------------------------------------------------------------- edit the code map

@dataclass(frozen=True)
class Edit:
    """An image's codes and one cell given another code."""

    image: torch.Tensor     # (1, 28, 28) in [0, 1]: the input as the model sees it
    codes: torch.Tensor     # (h, w) long: its codes
    edited: torch.Tensor    # (h, w) long: the same with cell (row, col) set to `code`
    row: int
    col: int
    code: int


def the_image(picture: Any) -> torch.Tensor:
    picture = inputs.image(picture)
    if picture is None:
        raise inputs.refuse("Pick, upload or draw an image to encode.")
    return intake.prepare_digit(np.asarray(picture))


def cell(model: Any, row: Any, col: Any) -> tuple[int, int]:
    h, w = model.grid
    return inputs.whole(row, "row", 0, h - 1), inputs.whole(col, "column", 0, w - 1)


@torch.no_grad()
def make_edit(catalog: Catalog, name: Any, picture: Any, row: Any, col: Any, code: Any) -> Edit:
    """Check the inputs and encode; `code` None keeps the cell's own code."""
    model = catalog.checkpoint(inputs.model_name(catalog, name, "discrete"), "discrete").model
    image = the_image(picture)
    r, c = cell(model, row, col)
    codes = model.encode(image.unsqueeze(0))[0]
    code = int(codes[r, c]) if code is None else inputs.whole(code, "code", 0, model.num_codes - 1)
    edited = codes.clone()
    edited[r, c] = code
    return Edit(image, codes, edited, r, c, code)


def code_usage(services: Services, name: str, edit: Edit) -> tuple[torch.Tensor, str]:
    """How often each code is used, (K,) counts, and over what: the test images where there
    are some, else this image's own cells."""
    found = services.code_usage(name)
    if found is not None:
        return found
    k = services.catalog.checkpoint(name, "discrete").model.num_codes
    return torch.bincount(edit.codes.flatten(), minlength=k), "this image's cells"


def usage_picture(counts: torch.Tensor, edit: Edit) -> Image.Image:
    """The share of cells (%) each code takes; the picked cell's old and new code in red."""
    k = len(counts)
    share = (counts.double() * 100 / counts.sum()).tolist()
    ticks = {i: str(i) for i in sorted({0, k // 4, k // 2, 3 * k // 4, k - 1})}
    top = max(share)
    return render.bar_chart(share, y_max=max(float(f"{top:.2g}"), top), ticks=ticks,
                            highlight=sorted({int(edit.codes[edit.row, edit.col]), edit.code}),
                            title="% of cells per code; red: the old and new code", size=(380, 170))


@torch.no_grad()
def edit_views(services: Services, name: str, edit: Edit) -> tuple[Image.Image, Image.Image, Image.Image, str]:
    """Code map (edited, over its decode), strip (input, decode, edited decode), usage, summary."""
    model = services.catalog.checkpoint(name, "discrete").model
    both = model.decode(torch.stack([edit.codes, edit.edited]))                   # (2, 1, 28, 28)
    picture = render.code_map(both[1], edit.edited, selected=(edit.row, edit.col), scale=SCALE)
    strip = render.strip(torch.stack([edit.image, both[0], both[1]]), scale=4)
    old = int(edit.codes[edit.row, edit.col])
    mse = float((both[0] - edit.image).pow(2).mean())
    change = (f"changed from code {old} to **code {edit.code}**" if old != edit.code
              else f"keeps its own code **{old}**: move the code slider to change it")
    counts, source = code_usage(services, name, edit)
    share = counts.double() * 100 / counts.sum()
    summary = (f"Cell (row {edit.row}, column {edit.col}) {change}. The decoder redraws the whole image from the "
               f"edited grid; the pixels that change lie mostly under that cell (its convolutions reach a little "
               f"further).  \nStrip: the input, its decode (mean squared error {mse:.4f} per pixel), the edited "
               f"decode. Click a cell of the map to pick it.  \nCodebook: {int((counts > 0).sum())} of {len(counts)} "
               f"codes in use over {source}; code {old} takes {float(share[old]):.1f}% of the cells, code "
               f"{edit.code} {float(share[edit.code]):.1f}%.")
    return picture, strip, usage_picture(counts, edit), summary


def encode_image(services: Services, name: Any, picture: Any, row: Any, col: Any
                 ) -> tuple[gr.Slider, Image.Image, Image.Image, Image.Image, str]:
    """A new image or model: the code slider's range and its value at the picked cell, unedited views."""
    edit = make_edit(services.catalog, name, picture, row, col, None)
    k = services.catalog.checkpoint(name, "discrete").model.num_codes
    return (gr.Slider(maximum=k - 1, value=edit.code), *edit_views(services, name, edit))


def edit_code(services: Services, name: Any, picture: Any, row: Any, col: Any, code: Any
              ) -> tuple[Image.Image, Image.Image, Image.Image, str]:
    """The `/codes_edit` event: the image's code grid with one cell set to `code`, decoded."""
    return edit_views(services, name, make_edit(services.catalog, name, picture, row, col, code))


def pick_cell(services: Services, name: Any, picture: Any, evt: gr.SelectData | None = None
              ) -> tuple[int, int, int, Image.Image, Image.Image, Image.Image, str]:
    """A click on the code map -> (row, column, that cell's code, the editor's views, unedited)."""
    model = services.catalog.checkpoint(inputs.model_name(services.catalog, name, "discrete"), "discrete").model
    index = getattr(evt, "index", None)
    if not isinstance(index, (list, tuple)) or len(index) != 2:
        raise inputs.refuse("Click a cell of the code map to pick it.")
    x, y = (inputs.number(v, "click position") for v in index)
    r, c = render.code_map_geometry(model.grid, model.data_shape[-1], SCALE).cell_at(x, y)
    edit = make_edit(services.catalog, name, picture, r, c, None)
    return (r, c, edit.code, *edit_views(services, name, edit))


# ---------------------------------------------------------------------- VQ-VAE vs VAE

def vae_names(catalog: Catalog) -> list[str]:
    """Latent models with an encoder network and no class input: what a VQ-VAE is compared with,
    VAEs first."""
    found = [n for n, c in catalog.latent.items() if not latent.inverts(c.model) and not c.model.num_classes]
    return sorted(found, key=lambda n: (getattr(catalog.checkpoint(n).model, "variational", False) is not True, n))


def stored_errors(catalog: Catalog, name: str) -> str:
    """The checkpoint's test reconstruction errors, with how they were measured."""
    metrics = catalog.checkpoint(name).metrics
    how = metrics.get("how", {}) if isinstance(metrics.get("how"), dict) else {}
    parts = []
    for key, unit, fmt in (("test_mse", "per pixel", ".5f"), ("test_recon_nll", "nats per image", ".2f")):
        value = metrics.get(key)
        if isinstance(value, (int, float)):
            text = str(how.get(key, ""))
            if text.startswith("its ") and "test_neg_elbo" in how:   # a VAE's term of its ELBO: say which run
                text += f", as test_neg_elbo: {how['test_neg_elbo']}"
            note = f" <small>({text})</small>" if text else ""
            parts.append(f"{key} = **{value:{fmt}}** {unit}{note}")
    return f"**{name}**: " + ("; ".join(parts) if parts else "no test reconstruction error stored")


@torch.no_grad()
def compare(services: Services, vq_name: Any, vae_name: Any, picture: Any) -> tuple[Image.Image, str]:
    """The `/codes_compare` event: the chosen image and a few test images, reconstructed by both."""
    catalog = services.catalog
    vq_name = inputs.model_name(catalog, vq_name, "discrete")
    vae_name = inputs.model_name(catalog, vae_name, "latent")
    if vae_name not in vae_names(catalog):
        raise inputs.refuse(f"{vae_name} cannot be compared here: pick a model with an encoder and no class "
                            "input (a VAE or an autoencoder).")
    vq, vae = catalog.checkpoint(vq_name, "discrete"), catalog.checkpoint(vae_name, "latent")
    if vq.dataset != vae.dataset:
        raise inputs.refuse(f"{vq_name} models {vq.dataset} but {vae_name} models {vae.dataset}: pick two "
                            "models of the same data set.")
    chosen = [the_image(picture)] if picture is not None else []
    examples = [services.example(vq_name, i)[0] for i in range(COMPARE_EXAMPLES)]
    x = torch.stack(chosen + examples)                                            # (N, 1, 28, 28)
    by_vq = vq.model.decode(vq.model.encode(x))
    vae_model: LatentModel = vae.model  # type: ignore[assignment]
    by_vae = latent.decode(vae_model, latent.encode(vae_model, x))
    picture_out = render.mosaic(torch.cat([x, by_vq, by_vae]), len(x), COMPARE_SCALE)
    vq_err, vae_err = ((r - x).pow(2).flatten(1).mean(1) for r in (by_vq, by_vae))
    first = "your image, then " if chosen else ""
    source = "test images" if vq.dataset in catalog.test_sets else "samples of the VQ-VAE (no test images here)"
    # One column per image, so the table stays as short as the picture beside it.
    heads = " | ".join(("yours" if chosen and i == 0 else str(i + 1)) for i in range(len(x)))
    errors = {name: " | ".join(f"{1000 * float(e):.1f}" for e in err) for name, err in (("VQ-VAE", vq_err),
                                                                                       ("VAE", vae_err))}
    table = (f"| | {heads} |\n|---|{'---|' * len(x)}\n"
             + "".join(f"| {name} | {row} |\n" for name, row in errors.items()))
    note = (f"Top row: {first}{len(examples)} {source}. Middle: **{vq_name}** (49 codes, each one of "
            f"{vq.model.num_codes}). Bottom: **{vae_name}** ({vae_model.latent_dim} numbers"
            f"{', the mean of q(z|x)' if getattr(vae_model, 'variational', False) else ''}).\n\n"
            f"Mean squared error per pixel, x 1000:\n\n{table}\n"
            f"Stored test errors (each as its checkpoint measured it):  \n{stored_errors(catalog, vq_name)}  \n"
            f"{stored_errors(catalog, vae_name)}  \n<small>On the same footing (both test sets, the same "
            "measure): `benchmarks/reports/reconstruction.md`.</small>")
    return picture_out, note


# ---------------------------------------------------------------------- the tab

def picker_order(catalog: Catalog) -> list[str]:
    """MNIST models first, unconditional before conditional."""
    return sorted(catalog.discrete_names, key=lambda n: (catalog.checkpoint(n).dataset != "mnist",
                                                         catalog.checkpoint(n).model.num_classes != 0, n))


def restore(catalog: Catalog, names: list[str], params: dict[str, str]) -> list[Any]:
    """A link's play settings (`?tab=codes&model=...&class=3&seed=5&step=20`) -> values for the
    model, class, seed and step controls; a key left out keeps that control as it is."""
    name = inputs.choice(params.get("model", names[0]), names, "VQ-VAE")
    total = total_steps(catalog, name)
    label = label_or_none(catalog, name, params["class"]) if "class" in params else gr.skip()
    return [name, class_picker(catalog, name, label if isinstance(label, int) else None),
            inputs.seed(params["seed"]) if "seed" in params else gr.skip(),
            inputs.whole(params["step"], "code step", 0, total - 1) if "step" in params else gr.skip()]


def build(services: Services) -> Shareable | None:
    """The tab's widgets and events (see the module docstring); what a link of it holds."""
    catalog = services.catalog
    names = picker_order(catalog)
    if not names:
        gr.Markdown("No VQ-VAE is loaded. Train one with `python -m train vqvae ...` to see its codes here.")
        return None
    start = names[0]
    total = total_steps(catalog, start)
    lead("A VQ-VAE draws an image from a 7x7 grid of codes: watch its prior pick them one by one, edit them, "
         "and compare its reconstructions with a VAE's.")
    with gr.Tabs():
        with gr.Tab("Play the prior"):
            with gr.Row():
                # The buttons first: with the picture, they are what a projector's first screen must show.
                with gr.Column(scale=2, min_width=320):
                    with gr.Row():
                        play_button = gr.Button("Play", variant="primary", min_width=60, elem_id="codes-play")
                        stop_button = gr.Button("Stop", variant="stop", min_width=60)
                    with gr.Row():
                        previous_button = gr.Button("◀ Previous code", size="sm", min_width=60)
                        next_button = gr.Button("Next code ▶", size="sm", min_width=60)
                    position = gr.Slider(0, total - 1, value=total - 1, step=1, label="code (raster order)")
                    model = gr.Dropdown(catalog.choices(names), value=start, label="VQ-VAE")
                    with gr.Row():
                        label = class_picker(catalog, start)
                        seed = gr.Number(value=0, precision=0, minimum=0, label="seed")
                first = view(services, start, None, 0, total - 1)
                with gr.Column(scale=2, min_width=330):
                    picture = gr.Image(buttons=PICTURE_BUTTONS, value=first[0], type="pil", format="png", interactive=False, height=340,
                                       # no label badge: it would cover the top row's codes
                                       label="codes drawn so far, over their decode", show_label=False,
                                       elem_id="codes-frame", elem_classes=["main-picture"])
                with gr.Column(scale=2, min_width=300):
                    distribution = gr.Image(buttons=PICTURE_BUTTONS, value=first[1], label="the prior at the red cell", show_label=False,
                                            type="pil", format="png", interactive=False, height=200)
                    status = gr.Markdown(first[2])
            info = about_model(catalog, start)
            how_to_read(EXPLANATION)
        with gr.Tab("Edit the code map"):
            with gr.Row():
                with gr.Column(scale=2, min_width=280):
                    edit_model = gr.Dropdown(catalog.choices(names), value=start, label="VQ-VAE")
                    digit = digit_input(services.example, edit_model, "codes", "Image to encode")
                with gr.Column(scale=3, min_width=330):
                    h, w = catalog.checkpoint(start, "discrete").model.grid
                    k = catalog.checkpoint(start, "discrete").model.num_codes
                    start_edit = (make_edit(catalog, start, digit.initial, h // 2, w // 2, None)
                                  if digit.initial is not None else None)
                    first_edit = edit_views(services, start, start_edit) if start_edit else None
                    code_map = gr.Image(buttons=PICTURE_BUTTONS, value=first_edit[0] if first_edit else None,
                                        label="its code map, edited (click a cell to pick it)", show_label=False,
                                        type="pil", format="png", interactive=False, height=340,
                                        elem_id="codes-map", elem_classes=["main-picture"])
                with gr.Column(scale=3, min_width=300):
                    with gr.Row():
                        row = gr.Slider(0, h - 1, value=h // 2, step=1, label="row", min_width=100)
                        col = gr.Slider(0, w - 1, value=w // 2, step=1, label="column", min_width=100)
                    code = gr.Slider(0, k - 1, value=start_edit.code if start_edit else 0, step=1,
                                     label="code at the picked cell (click a cell of the map to pick one)")
                    strip = gr.Image(buttons=PICTURE_BUTTONS, value=first_edit[1] if first_edit else None, show_label=False,
                                     label="input, decode, edited decode", type="pil", format="png",
                                     interactive=False, height=130, elem_id="codes-strip")
                    usage = gr.Image(buttons=PICTURE_BUTTONS, value=first_edit[2] if first_edit else None, show_label=False,
                                     label="codebook usage", type="pil", format="png", interactive=False, height=170)
            edit_note = gr.Markdown(first_edit[3] if first_edit else "")
        with gr.Tab("VQ-VAE vs VAE"):
            others = vae_names(catalog)
            same_data = [n for n in others if catalog.checkpoint(n).dataset == catalog.checkpoint(start).dataset]
            if not same_data:
                gr.Markdown(f"No VAE or autoencoder of {catalog.checkpoint(start).dataset} is loaded to compare with.")
            else:
                first_compare = compare(services, start, same_data[0], digit.initial)
                with gr.Row():
                    with gr.Column(scale=1, min_width=240):
                        vq_pick = gr.Dropdown(catalog.choices(names), value=start, label="VQ-VAE")
                        vae_pick = gr.Dropdown(catalog.choices(others), value=same_data[0],
                                               label="VAE (or autoencoder)")
                        gr.Markdown("Your image is the one chosen under *Edit the code map*.")
                    with gr.Column(scale=3, min_width=620):
                        compared = gr.Image(buttons=PICTURE_BUTTONS, value=first_compare[0], label="input / VQ-VAE / VAE", show_label=False,
                                            type="pil",
                                            format="png", interactive=False, elem_id="codes-compare",
                                            elem_classes=["main-picture"])
                compare_note = gr.Markdown(first_compare[1])   # full width: the table has a column per image
                gr.on([vq_pick.change, vae_pick.change, digit.preview.change],
                      user_errors(functools.partial(compare, services)), [vq_pick, vae_pick, digit.preview],
                      [compared, compare_note], api_name="codes_compare", trigger_mode="always_last", **DECODE)

    controls = [model, label, seed]
    frame_out = [picture, distribution, status]
    playing = play_button.click(user_errors(functools.partial(play, services)), [*controls, position],
                                [position, *frame_out], api_name="codes_play", show_progress="hidden", **REPLAY)
    stop_button.click(None, None, None, cancels=[playing], api_name="codes_stop")
    next_button.click(user_errors(functools.partial(step_by, services, 1)), [*controls, position],
                      [position, *frame_out], api_name="codes_next", cancels=[playing], **DECODE)
    previous_button.click(user_errors(functools.partial(step_by, services, -1)), [*controls, position],
                          [position, *frame_out], api_name="codes_previous", cancels=[playing], **DECODE)
    model.change(user_errors(functools.partial(select_model, services)), [*controls, position],
                 [info, label, *frame_out], api_name="codes_model", cancels=[playing], **DECODE)
    gr.on([position.input, seed.submit, label.input], user_errors(functools.partial(view, services)),
          [*controls, position], frame_out, api_name="codes_view", trigger_mode="always_last",
          show_progress="minimal", **DECODE)

    edit_out = [code_map, strip, usage, edit_note]
    # A new image or model, or another cell: that cell's own code first; nothing is edited until the code moves.
    gr.on([edit_model.change, digit.preview.change, row.input, col.input],
          user_errors(functools.partial(encode_image, services)), [edit_model, digit.preview, row, col],
          [code, *edit_out], api_name="codes_encode", trigger_mode="always_last", **DECODE)
    code.input(user_errors(functools.partial(edit_code, services)), [edit_model, digit.preview, row, col, code],
               edit_out, api_name="codes_edit", trigger_mode="always_last", **DECODE)

    def on_pick(name: Any, image: Any, evt: gr.SelectData = None  # type: ignore[assignment]
                ) -> tuple[int, int, int, Image.Image, Image.Image, Image.Image, str]:
        # Gradio hands the click over only to a parameter typed gr.SelectData, so this event
        # gets a function of its own (a partial hides the type).
        return user_errors(pick_cell)(services, name, image, evt)

    code_map.select(on_pick, [edit_model, digit.preview], [row, col, code, *edit_out], api_name="codes_pick",
                    **DECODE)
    return Shareable("codes", ("model", "class", "seed", "step"), controls + [position],
                     functools.partial(restore, catalog, names),
                     redraw=(user_errors(functools.partial(view, services)), [*controls, position], frame_out))
