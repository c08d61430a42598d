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
from .common import BASE_MEAN, BASE_RANDOM, DECODE, LIGHT, how_to_read, label_or_none, user_errors
from .grid import SIZE_RANGE, SPAN_RANGE, fit_dims

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
    dx, dy = fit_dims(dim_x, dim_y, dims)
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


def smaller_code(catalog: Catalog, left: str, right: str) -> int:
    """The code size of the pair's smaller code space: the dims a shared grid can sweep."""
    return min(catalog.checkpoint(n, "latent").model.latent_dim for n in (left, right))


def controls(catalog: Catalog, left: str, right: str, dim_x: Any, dim_y: Any
             ) -> tuple[gr.Slider, gr.Slider, gr.Dropdown]:
    """Slider ranges for the smaller code space of the pair; a class picker if one is conditional."""
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
            picker)


def build(catalog: Catalog) -> None:
    """The tab's widgets, its `/compare` event and the `/compare_controls` range update."""
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
            # Range over every model (the server checks it); choosing models narrows it on the page.
            dim_x = gr.Slider(0, catalog.widest_code() - 1, value=0, step=1, label="x-axis dimension")
            dim_y = gr.Slider(0, catalog.widest_code() - 1, value=1, step=1, label="y-axis dimension")
            span = gr.Slider(*SPAN_RANGE, value=3.0, step=0.25, label="range (+- standard deviations)")
            size = gr.Slider(*SIZE_RANGE, value=9, step=1, label="grid size")
            fixed = gr.Radio([BASE_MEAN, BASE_RANDOM], value=BASE_MEAN, label="other dimensions fixed at")
            seed = gr.Number(value=0, precision=0, label="seed (for the random draw)")
            label = gr.Dropdown(choices=[], value=None, label="class (conditional model)", visible=False)
        with gr.Column(scale=3):
            with gr.Row():
                left_img = gr.Image(value=first[0], label="left model", type="pil", format="png", interactive=False,
                                    elem_id="compare-left-grid", elem_classes=["main-picture"])
                right_img = gr.Image(value=first[1], label="right model", type="pil", format="png",
                                     interactive=False, elem_classes=["main-picture"])
    how_to_read(EXPLANATION)
    gr.on(triggers=[left.change, right.change], fn=user_errors(functools.partial(controls, catalog)),
          inputs=[left, right, dim_x, dim_y], outputs=[dim_x, dim_y, label],
          api_name="compare_controls", **LIGHT)
    gr.on(
        triggers=[left.change, right.change, dim_x.input, dim_y.input, span.input, size.input,
                  fixed.input, seed.input, label.input],
        fn=user_errors(functools.partial(comparison, catalog)),
        inputs=[left, right, dim_x, dim_y, span, size, fixed, seed, label],
        outputs=[left_img, right_img],
        api_name="compare", trigger_mode="always_last", show_progress="minimal", **DECODE,
    )
