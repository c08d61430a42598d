"""AE vs VAE tab: the same grid (same dims, same fixed code) for two models side by side.

Endpoint `/compare`: (left, right, dim_x, dim_y, span, size, fixed, seed, label) -> two grid
pictures. Both grids are laid out in units of each model's own code spread, and the fixed
code is the same point in those units (the mean, or one seeded standard-normal draw), so
the two pictures differ only by what each model learned.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr
from PIL import Image

from .. import latent, render
from .catalog import Catalog
from . import inputs
from .common import (BASE_MEAN, BASE_RANDOM, DECODE, LIGHT, PICTURE_BUTTONS, ModelSlider, how_to_read, label_or_none,
                     user_errors)
from .grid import SIZE_RANGE, SPAN_RANGE, checked_dims, fit_dims, moved_axes

EXPLANATION = (
    "Both grids sweep the same two dimensions over the same range, measured in each model's own "
    "code spread, with every other dimension at the same standardised code. The VAE's prior "
    "packs its codes into one smooth ball, so every point decodes to a plausible digit; the "
    "autoencoder was never asked to fill its code space, so between the patches its training "
    "codes occupy it decodes blurs and shapes that are no digit at all."
)


def default_pair(catalog: Catalog) -> tuple[str | None, str | None]:
    """A plain autoencoder on the left and a VAE on the same data on the right, where present."""
    found = catalog.latent
    names = list(found)
    if not names:
        return None, None
    plain = [n for n in names if getattr(found[n].model, "variational", None) is False]
    varia = [n for n in names if getattr(found[n].model, "variational", None) is True
             and found[n].model.num_classes == 0]
    left = plain[0] if plain else names[0]
    same_data = [n for n in varia if found[n].dataset == found[left].dataset and n != left]
    right = (same_data or [n for n in varia if n != left] or [n for n in names if n != left] or [left])[0]
    return left, right


def comparison(catalog: Catalog, left: str, right: str, dim_x: Any, dim_y: Any, span: float,
               size: Any, fixed: str, seed: Any, label: Any) -> tuple[Image.Image, Image.Image]:
    """Two labelled grids, one per model, at the same standardised fixed code."""
    left, right = inputs.model_name(catalog, left, "latent"), inputs.model_name(catalog, right, "latent")
    models = [catalog.checkpoint(left, "latent").model, catalog.checkpoint(right, "latent").model]
    dims = min(m.latent_dim for m in models)
    if dims < 2:
        raise ValueError("Both models need at least two latent dimensions for a grid.")
    dx, dy = checked_dims(dim_x, dim_y, dims, "The smaller of the two models")
    size = inputs.count(size, "grid size", *SIZE_RANGE)
    span = inputs.number(span, "range", *SPAN_RANGE)
    widest = max(m.latent_dim for m in models)
    if fixed == BASE_MEAN:
        u = latent.standard_draw(widest, 0).zero_()
    elif fixed == BASE_RANDOM:
        u = latent.standard_draw(widest, inputs.seed(seed))
    else:
        raise ValueError(f"Unknown choice for the fixed dimensions: {fixed!r}.")
    pictures = []
    for name, model in zip((left, right), models):
        base = latent.unstandardize(model, u[:model.latent_dim])
        grid = latent.latent_grid(model, base, dx, dy, float(span), size, label_or_none(catalog, name, label))
        picture, _ = render.labelled_grid(grid.images, grid.x_values.tolist(), grid.y_values.tolist(),
                                          f"z{dx}", f"z{dy}")
        pictures.append(picture)
    return pictures[0], pictures[1]


def axis_moved(catalog: Catalog, moved: str, left: str, right: str, dim_x: Any, dim_y: Any, previous: Any,
               *rest: Any) -> tuple[Image.Image, Image.Image, int, int, tuple[int, int]]:
    """A person moved an axis slider: as the latent grid's (`grid.moved_axes`: past the end is
    clamped with a warning, onto the other axis swaps them), then both grids."""
    left, right = inputs.model_name(catalog, left, "latent"), inputs.model_name(catalog, right, "latent")
    dims = smaller_code(catalog, left, right)
    if dims < 2:
        raise ValueError("Both models need at least two latent dimensions for a grid.")
    dx, dy, note = moved_axes(moved, dim_x, dim_y, previous, dims, "The smaller of the two models")
    if note:
        gr.Warning(note)
    pictures = comparison(catalog, left, right, dx, dy, *rest)
    return (*pictures, dx, dy, (dx, dy))


def smaller_code(catalog: Catalog, left: str, right: str) -> int:
    """The code size of the pair's smaller code space: the dims a shared grid can sweep."""
    return min(catalog.checkpoint(n, "latent").model.latent_dim for n in (left, right))


def controls(catalog: Catalog, left: str, right: str, dim_x: Any, dim_y: Any
             ) -> tuple[gr.Slider, gr.Slider, gr.Dropdown, gr.Image, gr.Image, tuple[int, int]]:
    """Slider ranges for the smaller code space of the pair (values past it move to its last
    dims); a class picker if one is conditional; the pictures captioned with the models' names."""
    left, right = inputs.model_name(catalog, left, "latent"), inputs.model_name(catalog, right, "latent")
    dims = smaller_code(catalog, left, right)
    dx, dy = fit_dims(dim_x, dim_y, max(dims, 2))
    conditional = [n for n in (left, right) if catalog.checkpoint(n, "latent").model.num_classes]
    if conditional:
        classes = catalog.classes(conditional[0])
        picker = gr.Dropdown(choices=[(c, i) for i, c in enumerate(classes)], value=0, visible=True)
    else:
        picker = gr.Dropdown(visible=False)
    return (gr.Slider(maximum=max(dims - 1, 1), value=dx), gr.Slider(maximum=max(dims - 1, 1), value=dy),
            picker, gr.Image(buttons=PICTURE_BUTTONS, label=caption(catalog, left, "left")), gr.Image(buttons=PICTURE_BUTTONS, label=caption(catalog, right, "right")),
            (dx, dy))


def caption(catalog: Catalog, name: str, side: str) -> str:
    return f"{side}: {catalog.display_name(name)}"


def build(catalog: Catalog) -> None:
    """The tab's widgets, its `/compare` event, `/compare_x` and `/compare_y` (an axis slider
    moved) and the `/compare_controls` range update (then both grids redrawn)."""
    left_name, right_name = default_pair(catalog)
    if left_name is None:
        gr.Markdown("No latent models loaded.")
        return
    choices = catalog.choices()
    dims = smaller_code(catalog, left_name, right_name)
    first = (None, None)
    if dims >= 2:
        first = comparison(catalog, left_name, right_name, 0, 1, 3.0, 9, BASE_MEAN, 0, 0)
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            left = gr.Dropdown(choices, value=left_name, label="left model", elem_id="compare-left")
            right = gr.Dropdown(choices, value=right_name, label="right model")
            # The start pair's range; choosing models narrows or widens it (/compare_controls),
            # and the handlers check a value against the pair asked for (ModelSlider).
            dim_x = ModelSlider(0, max(dims - 1, 1), value=0, step=1, label="x-axis dimension", key="compare-dx")
            dim_y = ModelSlider(0, max(dims - 1, 1), value=1, step=1, label="y-axis dimension", key="compare-dy")
            span = gr.Slider(*SPAN_RANGE, value=3.0, step=0.25, label="range (+- standard deviations)")
            size = gr.Slider(*SIZE_RANGE, value=9, step=1, label="grid size")
            fixed = gr.Radio([BASE_MEAN, BASE_RANDOM], value=BASE_MEAN, label="other dimensions fixed at")
            seed = gr.Number(value=0, precision=0, label="seed (for the random draw)")
            label = gr.Dropdown(choices=[], value=None, label="class (conditional model)", visible=False)
        with gr.Column(scale=3):
            with gr.Row():
                left_img = gr.Image(value=first[0], label=caption(catalog, left_name, "left"), type="pil",
                                    format="png", interactive=False, buttons=PICTURE_BUTTONS,
                                    elem_id="compare-left-grid", elem_classes=["main-picture"])
                right_img = gr.Image(value=first[1], label=caption(catalog, right_name, "right"), type="pil",
                                     format="png", interactive=False, buttons=PICTURE_BUTTONS,
                                     elem_id="compare-right-grid", elem_classes=["main-picture"])
    how_to_read(EXPLANATION)
    axes = gr.State((0, 1))  # the axes last drawn: where a swapped axis goes
    rest = [span, size, fixed, seed, label]
    chosen = gr.on(triggers=[left.change, right.change], fn=user_errors(functools.partial(controls, catalog)),
                   inputs=[left, right, dim_x, dim_y], outputs=[dim_x, dim_y, label, left_img, right_img, axes],
                   api_name="compare_controls", **LIGHT)
    # Drawn once the sliders fit the new pair (drawn with the switch, it would read the old axes).
    chosen.success(user_errors(functools.partial(comparison, catalog)), [left, right, dim_x, dim_y, *rest],
                   [left_img, right_img], api_name="compare_after_models", trigger_mode="always_last",
                   show_progress="minimal", **DECODE)
    gr.on(
        triggers=[span.input, size.input, fixed.input, seed.input, label.input],
        fn=user_errors(functools.partial(comparison, catalog)),
        inputs=[left, right, dim_x, dim_y, *rest],
        outputs=[left_img, right_img],
        api_name="compare", trigger_mode="always_last", show_progress="minimal", **DECODE,
    )
    for moved, slider in (("x", dim_x), ("y", dim_y)):
        slider.input(user_errors(functools.partial(axis_moved, catalog, moved)),
                     [left, right, dim_x, dim_y, axes, *rest], [left_img, right_img, dim_x, dim_y, axes],
                     api_name=f"compare_{moved}", trigger_mode="always_last", show_progress="minimal", **DECODE)
