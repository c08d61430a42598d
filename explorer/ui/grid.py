"""Latent grid tab: what two chosen code dimensions do, with every other dimension held fixed.

Endpoint `/grid`: (model, dim_x, dim_y, span, size, fixed, seed, image, label) -> the grid
picture and the fixed code. `/select_model`: (model, dim_x, dim_y, label) -> its description,
the dimension sliders (narrowed to the model, set to its two strongest dimensions), the class
picker; then `/grid_for_model` redraws. The grid spans mean +- span standard deviations of the model's
code spread along the two dims; the others sit at the prior mean, a seeded random draw, or
the code of an encoded image.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .. import intake, latent, render
from .services import Services, content_key
from . import inputs
from .catalog import Catalog
from .common import (BASE_IMAGE, BASE_MEAN, BASE_RANDOM, DECODE, LIGHT, PICTURE_BUTTONS, SHARED_PICTURES,
                     FileStore, ModelSlider, about_model, class_picker, label_or_none, model_info, user_errors)
from .links import Shareable
from .digits import DigitInput, digit_input

SIZE_RANGE = (3, 15)
SPAN_RANGE = (0.5, 5.0)


@dataclass
class GridTab:
    model: gr.Dropdown
    dim_x: gr.Slider
    dim_y: gr.Slider
    label: gr.Dropdown
    image: gr.Image
    link: Shareable


def fit_dims(dim_x: Any, dim_y: Any, latent_dim: int) -> tuple[int, int]:
    """Clamp the two axis dims into the model's range, for a slider range that narrows with
    the model (values the previous model allowed move to its last dims); two equal dims asked
    for on purpose are an error."""
    dx, dy = inputs.dimension(dim_x, "x-axis dimension"), inputs.dimension(dim_y, "y-axis dimension")
    if dx < latent_dim and dy < latent_dim:
        if dx == dy:
            raise ValueError("Choose two different latent dimensions for the two axes.")
        return dx, dy
    dx, dy = min(dx, latent_dim - 1), min(dy, latent_dim - 1)
    if dx == dy:
        dy = (dx + 1) % latent_dim
    return dx, dy


def out_of_range(dims: tuple[int, ...], latent_dim: int, who: str) -> str:
    """A sentence when a dimension lies past the model's code, else ""."""
    past = [d for d in dims if d >= latent_dim]
    if not past:
        return ""
    return (f"{who} has {latent_dim} latent dimensions, z0 to z{latent_dim - 1}: there is no z{past[0]}.")


def checked_dims(dim_x: Any, dim_y: Any, latent_dim: int, who: str) -> tuple[int, int]:
    """The two axis dims as asked: a sentence where one lies past the model's code or both
    are the same (never a silent substitute)."""
    dx, dy = inputs.dimension(dim_x, "x-axis dimension"), inputs.dimension(dim_y, "y-axis dimension")
    problem = out_of_range((dx, dy), latent_dim, who)
    if problem:
        raise inputs.refuse(f"{problem} Pick dimensions from 0 to {latent_dim - 1}.")
    if dx == dy:
        raise inputs.refuse("Choose two different latent dimensions for the two axes.")
    return dx, dy


def moved_axes(moved: str, dim_x: Any, dim_y: Any, previous: Any, latent_dim: int, who: str
               ) -> tuple[int, int, str]:
    """The axes after a person moved one slider (`moved` is "x" or "y"), and a note or "".

    A value past the model's code is clamped to its last dimension (the note says so); moving
    one axis onto the other swaps them, the other axis taking the moved one's previous place,
    so arrow keys walk straight across it."""
    dx, dy = inputs.dimension(dim_x, "x-axis dimension"), inputs.dimension(dim_y, "y-axis dimension")
    note = out_of_range((dx, dy), latent_dim, who)
    if note:
        note += f" Showing z{latent_dim - 1} instead."
        dx, dy = min(dx, latent_dim - 1), min(dy, latent_dim - 1)
    if dx == dy:
        px, py = previous if isinstance(previous, (list, tuple)) and len(previous) == 2 else (None, None)
        old = px if moved == "x" else py
        free = [d for d in range(latent_dim) if d != dx]
        other = old if isinstance(old, int) and old in free else free[0]
        dx, dy = (dx, other) if moved == "x" else (other, dy)
    return dx, dy, note


def base_code(services: Services, name: str, fixed: str, seed: Any, digit: np.ndarray | None,
              label: int | None) -> torch.Tensor:
    """The code the non-grid dimensions are held at, (D,)."""
    model = services.catalog.checkpoint(name, "latent").model
    if fixed == BASE_MEAN:
        return latent.prior_mean(model)
    if fixed == BASE_RANDOM:
        return latent.seeded_code(model, inputs.seed(seed))
    if fixed == BASE_IMAGE:
        if digit is None:
            raise ValueError("Choose an image to encode first (a data-set example, an upload or a drawing).")
        return services.encode(name, intake.prepare_digit(inputs.image(digit)), label)
    raise ValueError(f"Unknown choice for the fixed dimensions: {fixed!r}.")


def grid_picture(services: Services, name: str, dim_x: Any, dim_y: Any, span: float, size: Any,
                 fixed: str, seed: Any, digit: np.ndarray | None, label: Any) -> tuple[Image.Image, list[float]]:
    """The labelled grid picture and the fixed code it holds the other dims at."""
    catalog = services.catalog
    model = catalog.checkpoint(inputs.model_name(catalog, name, "latent"), "latent").model
    if model.latent_dim < 2:
        raise ValueError(f"{name} has a 1-D code space; a grid needs two dimensions.")
    dx, dy = checked_dims(dim_x, dim_y, model.latent_dim, catalog.display_name(name))
    size = inputs.count(size, "grid size", *SIZE_RANGE)
    span = inputs.number(span, "range", *SPAN_RANGE)
    y = label_or_none(catalog, name, label)

    def draw() -> tuple[Image.Image, list[float]]:
        base = base_code(services, name, fixed, seed, digit, y)
        grid = latent.latent_grid(model, base, dx, dy, span, size, y)
        picture, _ = render.labelled_grid(grid.images, grid.x_values.tolist(), grid.y_values.tolist(),
                                          f"z{dx}", f"z{dy}")
        return SHARED_PICTURES.share(picture), [round(float(v), 5) for v in base]

    held = fixed_key(fixed, seed, digit)
    if held is None:  # settings base_code refuses with a sentence
        return draw()
    picture, code = services.picture(("grid", name, dx, dy, span, size, held, y), draw)
    return picture, list(code)


def fixed_key(fixed: Any, seed: Any, digit: Any) -> tuple | None:
    """What decides the fixed code, as a cache key: the choice, and the seed of a random draw
    or the encoded image's content; None for settings that `base_code` refuses."""
    if not isinstance(fixed, str):
        return None
    if fixed == BASE_MEAN:
        return (BASE_MEAN,)
    if fixed == BASE_RANDOM:
        return (BASE_RANDOM, inputs.seed(seed))
    if fixed == BASE_IMAGE and digit is not None:
        image = inputs.image(digit)
        return (BASE_IMAGE, *content_key(image))
    return None


def select(services: Services, name: str, dim_x: Any, dim_y: Any, label: Any
           ) -> tuple[str, gr.Slider, gr.Slider, gr.Dropdown]:
    """What changes with the model: its description, the dimension sliders' range (set to the
    model's two strongest dimensions), the class picker."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    model = catalog.checkpoint(name, "latent").model
    top = max(model.latent_dim - 1, 1)
    dx, dy = (services.code_directions(name).ranking.strongest(2) if model.latent_dim >= 2
              else fit_dims(dim_x, dim_y, 2))
    return (model_info(catalog, name), gr.Slider(maximum=top, value=dx), gr.Slider(maximum=top, value=dy),
            class_picker(catalog, name, label))


def restore(services: Services, params: dict[str, str]) -> list[Any]:
    """A link's settings (see `links`) as updates of model, dims, span, size, fixed, seed."""
    catalog = services.catalog
    name = inputs.model_name(catalog, params.get("model") or default_model(catalog), "latent")
    model = catalog.checkpoint(name, "latent").model
    strongest = (services.code_directions(name).ranking.strongest(2) if model.latent_dim >= 2 else (0, 1))
    dx = inputs.whole(params.get("dx", strongest[0]), "x-axis dimension", 0, model.latent_dim - 1)
    dy = inputs.whole(params.get("dy", strongest[1]), "y-axis dimension", 0, model.latent_dim - 1)
    if dx == dy:
        raise ValueError("the two axes are the same dimension")
    span = inputs.number(params.get("span", 2.5), "range", *SPAN_RANGE)
    size = inputs.count(params.get("size", 9), "grid size", *SIZE_RANGE)
    seed = inputs.seed(params.get("seed", 0))
    fixed = BASE_RANDOM if "seed" in params else BASE_MEAN
    top = max(model.latent_dim - 1, 1)
    return [name, gr.Slider(maximum=top, value=dx), gr.Slider(maximum=top, value=dy), span, size, fixed, seed]


def default_model(catalog: Catalog) -> str:
    """The model the tab opens on: an unconditional VAE on MNIST where there is one."""
    def rank(name: str) -> tuple[int, int, int]:
        ckpt = catalog.checkpoint(name, "latent")
        return (ckpt.dataset != "mnist", ckpt.model.num_classes != 0,
                getattr(ckpt.model, "variational", False) is not True)
    return min(catalog.latent_names, key=rank)


def compact_code(code: list[float] | None) -> str:
    """A code as one line of numbers ("z0 0.12, z1 -1.30, ..."): compact beside the grid."""
    return "" if not code else ", ".join(f"z{i} {v:+.2f}" for i, v in enumerate(code))


# compact_code, in the browser.
COMPACT_CODE_JS = ("(code) => Array.isArray(code) ? code.map((v, i) => `z${i} ${v >= 0 ? '+' : ''}"
                   "${Number(v).toFixed(2)}`).join(', ') : ''")


def grid_for_slides(services: Services, store: FileStore, name: str, dim_x: Any, dim_y: Any, span: Any,
                    size: Any, fixed: str, seed: Any, digit: np.ndarray | None, label: Any) -> gr.File:
    """The grid as on the page, as a PNG file with every digit pixel 8 or more pixels wide."""
    picture, _ = grid_picture(services, name, dim_x, dim_y, span, size, fixed, seed, digit, label)
    scale = render.auto_scale(inputs.count(size, "grid size", *SIZE_RANGE))  # as labelled_grid drew it
    return gr.File(value=store.write(render.png_bytes(render.slide_ready(picture, scale)), f"{name}-grid", ".png"),
                   visible=True)


def axis_moved(services: Services, moved: str, name: str, dim_x: Any, dim_y: Any, previous: Any, *rest: Any
               ) -> tuple[Image.Image, list[float], int, int, tuple[int, int]]:
    """A person moved an axis slider: the grid of the axes `moved_axes` settles on, the
    sliders set to them, and those axes remembered (for the next swap). A clamped value gets
    a warning toast, not an error: the grid is still drawn."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    model = catalog.checkpoint(name, "latent").model
    if model.latent_dim < 2:
        raise ValueError(f"{catalog.display_name(name)} has a 1-D code space; a grid needs two dimensions.")
    dx, dy, note = moved_axes(moved, dim_x, dim_y, previous, model.latent_dim, catalog.display_name(name))
    if note:
        gr.Warning(note)
    picture, code = grid_picture(services, name, dx, dy, *rest)
    return picture, code, dx, dy, (dx, dy)


def build(services: Services, start: str, store: FileStore) -> GridTab:
    """The tab's widgets and its events: `/grid` (every control but the axis sliders, last
    value wins), `/grid_x` and `/grid_y` (an axis slider moved: see `moved_axes`)."""
    catalog = services.catalog
    start_model = catalog.checkpoint(start, "latent").model
    # The range is the start model's; picking a model narrows or widens it (`/select_model`),
    # and the handlers check a value against the model asked for (ModelSlider).
    dim_max = max(start_model.latent_dim - 1, 1)
    # The grid opens on the start model's two strongest dimensions (explorer.directions).
    dx0, dy0 = (services.code_directions(start).ranking.strongest(2) if start_model.latent_dim >= 2 else (0, 1))
    gr.Markdown("Each picture decodes one code. Across the grid, two code dimensions sweep from "
                "-span to +span standard deviations of the model's code spread; every other "
                "dimension stays at the fixed code below.", elem_classes=["lead"])
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            model = gr.Dropdown(catalog.choices(), value=start, label="model", elem_id="grid-model")
            dim_x = ModelSlider(0, dim_max, value=dx0, step=1, label="x-axis dimension", key="grid-dx",
                                elem_id="grid-dx")
            dim_y = ModelSlider(0, dim_max, value=dy0, step=1, label="y-axis dimension", key="grid-dy")
            span = gr.Slider(*SPAN_RANGE, value=2.5, step=0.25, label="range (+- standard deviations)")
            size = gr.Slider(*SIZE_RANGE, value=9, step=1, label="grid size (pictures per side)")
            fixed = gr.Radio([BASE_MEAN, BASE_RANDOM, BASE_IMAGE], value=BASE_MEAN,
                             label="other dimensions fixed at")
            seed = gr.Number(value=0, precision=0, label="seed (for the random draw)")
            label = class_picker(catalog, start)
            digit: DigitInput = digit_input(services.example, model, "grid_image", "Image to encode")
            info = about_model(catalog, start)
        with gr.Column(scale=2):
            initial, code = grid_picture(services, start, dx0, dy0, 2.5, 9, BASE_MEAN, 0, None, 0)
            image = gr.Image(value=initial, label="latent grid", type="pil", format="png",
                             interactive=False, buttons=PICTURE_BUTTONS, elem_id="latent-grid",
                             elem_classes=["main-picture"])
            # The code shown compactly (a line or two of numbers); the list itself, for the API
            # and for copying, folded away below it.
            code_text = gr.Textbox(value=compact_code(code), label="fixed code (the other dimensions)",
                                   lines=2, max_lines=4, interactive=False, elem_id="fixed-code-text")
            with gr.Accordion("fixed code as a list (JSON)", open=False):
                fixed_code = gr.JSON(value=code, label="fixed code (the other dimensions)", elem_id="fixed-code")
            slides = gr.Button("Grid for slides (PNG, 8x or more)", size="sm")
            slide_file = gr.File(label="grid for slides", visible=False)  # shown once made
    model.input(user_errors(functools.partial(select, services)), [model, dim_x, dim_y, label],
                [info, dim_x, dim_y, label], api_name="select_model", **LIGHT
                ).then(user_errors(functools.partial(grid_picture, services)),
                       [model, dim_x, dim_y, span, size, fixed, seed, digit.preview, label], [image, fixed_code],
                       api_name="grid_for_model", show_progress="minimal", **DECODE)
    controls = [model, dim_x, dim_y, span, size, fixed, seed, digit.preview, label]
    gr.on(
        triggers=[span.input, size.input, fixed.input, seed.input, label.input, digit.preview.change],
        fn=user_errors(functools.partial(grid_picture, services)),
        inputs=controls,
        outputs=[image, fixed_code],
        api_name="grid", trigger_mode="always_last", show_progress="minimal", **DECODE,
    )
    # The axes last drawn by a slider move: where a swapped axis goes. (After a model switch or
    # a link they may be stale; `moved_axes` then picks another free dimension.)
    axes = gr.State((dx0, dy0))
    # Written on the page itself: no round trip for a line of text.
    fixed_code.change(None, fixed_code, code_text, js=COMPACT_CODE_JS, api_name="grid_code_text")
    slides.click(user_errors(functools.partial(grid_for_slides, services, store)), controls, slide_file,
                 api_name="grid_slides", **DECODE)
    for moved, slider in (("x", dim_x), ("y", dim_y)):
        slider.input(user_errors(functools.partial(axis_moved, services, moved)),
                     [model, dim_x, dim_y, axes, *controls[3:]], [image, fixed_code, dim_x, dim_y, axes],
                     api_name=f"grid_{moved}", trigger_mode="always_last", show_progress="minimal", **DECODE)
    link = Shareable("grid", ("model", "dx", "dy", "span", "size", "fixed", "seed"),
                     [model, dim_x, dim_y, span, size, fixed, seed], functools.partial(restore, services),
                     redraw=(functools.partial(grid_picture, services), controls, [image, fixed_code]),
                     share=share)
    return GridTab(model, dim_x, dim_y, label, image, link)


def share(model: str, dim_x: Any, dim_y: Any, span: Any, size: Any, fixed: str, seed: Any) -> dict[str, Any]:
    """A link's parameters: the seed only where the other dimensions are a random draw."""
    return {"model": model, "dx": dim_x, "dy": dim_y, "span": span, "size": size,
            **({"seed": seed} if fixed == BASE_RANDOM else {})}
