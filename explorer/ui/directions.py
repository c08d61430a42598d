"""Directions tab: which code dimensions matter, the principal directions of the codes, and
class-to-class attribute vectors.

Endpoints:
  `/dimension_ranking` (model) -> a table of dimensions by effect and a summary line;
  `/direction_grid` (model, first, second, span) -> a grid along two principal directions and a caption;
  `/attribute_walk` (model, from class, to class, amount, image) -> the encoded image moved
      along the class vector, step by step, and what the classifier reads at each step;
  `/direction_scatter` (model, image) -> codes on the first two principal directions, by class,
      with the encoded image marked.
The maths is in `explorer.directions`; this module only wires it to widgets.
"""

from __future__ import annotations

import functools
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image

from .. import directions, intake, latent, metrics, render
from . import inputs
from .common import PICTURE_BUTTONS, DECODE, ENCODE, how_to_read, lead, user_errors
from .digits import digit_input
from .services import Services

WALK_STEPS = 7
SCATTER_COLUMNS = ("direction 1", "direction 2", "class")
YOUR_IMAGE = "your image"


def ranking_table(services: Services, name: str) -> tuple[pd.DataFrame, str]:
    """Every dimension with its effect, strongest first, and a line saying what was measured."""
    found = services.code_directions(inputs.model_name(services.catalog, name, "latent"))
    r = found.ranking
    table = pd.DataFrame({"dimension": [f"z{d}" for d in r.order],
                          "effect": [round(float(r.effect[d]), 4) for d in r.order],
                          "active": ["yes" if bool(r.active[d]) else "no (barely changes anything)" for d in r.order]})
    inactive = [f"z{d}" for d in r.order if not bool(r.active[d])]
    summary = (f"Measured: {r.measure}, on {found.source}. Strongest: z{r.order[0]} and z{r.order[1]} "
               f"(the latent grid opens on these two). "
               + (f"Inactive: {', '.join(inactive)} (under {directions.INACTIVE_SHARE:.0%} of the strongest)."
                  if inactive else "Every dimension is active."))
    return table, summary


def _direction_index(value: Any, count: int, what: str) -> int:
    try:
        return inputs.whole(value, f"{what} direction", 1, count) - 1
    except gr.Error:
        raise inputs.refuse(f"The {what} direction must be a number from 1 to {count}.") from None


def direction_grid(services: Services, name: str, first: Any, second: Any, span: float
                   ) -> tuple[Image.Image, str]:
    """A 7x7 grid along two principal directions through the codes' mean."""
    name = inputs.model_name(services.catalog, name, "latent")
    model = services.catalog.checkpoint(name, "latent").model
    pd_ = services.code_directions(name).principal
    count = len(pd_.directions)
    i, j = _direction_index(first, count, "first"), _direction_index(second, count, "second")
    if i == j:
        raise ValueError("Choose two different principal directions.")
    base = latent.unstandardize(model, pd_.mean)
    label = 0 if model.num_classes else None
    span = inputs.number(span, "range", 0.0, 10.0)
    grid = directions.direction_grid(model, base, pd_.directions[i], pd_.directions[j], span, 7, label)
    picture, _ = render.labelled_grid(grid.images, grid.x_values.tolist(), grid.y_values.tolist(),
                                      f"direction {i + 1}", f"direction {j + 1}")
    caption = (f"Direction {i + 1} explains {float(pd_.explained[i]):.1%} of the variance, direction {j + 1} "
               f"{float(pd_.explained[j]):.1%} ({pd_.source}). Steps are in standard deviations of the "
               "model's code spread; the grid's centre is the mean code.")
    return picture, caption


def attribute_walk(services: Services, name: str, source: Any, target: Any, amount: float,
                   picture: np.ndarray | None) -> tuple[Image.Image, str]:
    """The encoded image moved from 0 to `amount` times the (target - source) class vector."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    model = catalog.checkpoint(name, "latent").model
    found = services.code_directions(name)
    if found.class_means is None:
        raise ValueError(f"{name} takes its class as an input: change the class instead of walking its code."
                         if model.num_classes else f"{name} has no labelled codes (no classifier for its data set).")
    picture = inputs.image(picture)
    if picture is None:
        raise ValueError("Pick, upload or draw an image to start from.")
    amount = inputs.number(amount, "amount", 0.0, 3.0)
    if amount == 0:
        raise ValueError("The amount must be above 0 and at most 3 (times the class vector).")
    classes = catalog.classes(name)
    source = inputs.whole(source, "class to walk from", 0, len(classes) - 1)
    target = inputs.whole(target, "class to walk to", 0, len(classes) - 1)
    vector = directions.attribute_vector(found.class_means, source, target)
    z = services.encode(name, intake.prepare_digit(picture))
    amounts = torch.linspace(0, float(amount), WALK_STEPS)
    images = latent.decode(model, directions.walk(model, z, vector, amounts))
    caption = f"Amounts {', '.join(f'{a:.2f}' for a in amounts.tolist())} of the vector from the mean {classes[int(source)]} to the mean {classes[int(target)]}."
    classifier = catalog.classifier(name)
    if classifier is not None:
        preds, _ = metrics.classify(classifier.model, images)
        caption += " The classifier reads: " + ", ".join(classes[int(p)] for p in preds) + "."
    return render.strip(images), caption


def preset_one_to_seven(services: Services, name: str, picture: np.ndarray | None
                        ) -> tuple[int, int, float, Image.Image, str]:
    """The "1 to 7" preset: the class pickers set, and the walk drawn."""
    return (1, 7, 1.5, *attribute_walk(services, name, 1, 7, 1.5, picture))


def scatter(services: Services, name: str, picture: np.ndarray | None) -> tuple[pd.DataFrame, str]:
    """Test codes on the first two principal directions, by class, plus the encoded image."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    picture = inputs.image(picture)
    model = catalog.checkpoint(name, "latent").model
    pd_ = services.code_directions(name).principal
    found = services.test_codes(name)
    what = "encoded test images"
    if found is None:   # a GAN, or no test data: prior samples, labelled by the classifier
        found, what = services.labelled_samples(name), "prior samples, coloured by the class the classifier reads"
    rows = {c: [] for c in SCATTER_COLUMNS}
    note = "No codes to show here (no test images and no classifier for this data set)."
    if found is not None:
        codes, labels = found
        xy = directions.project(model, codes, pd_)[:, :2]
        classes = catalog.classes(name)
        rows = {"direction 1": xy[:, 0].tolist(), "direction 2": xy[:, 1].tolist(),
                "class": [classes[int(k)] for k in labels]}
        note = f"{len(codes)} {what}, on the first two principal directions."
    if picture is not None and not latent.inverts(model):   # a GAN's inversion is too slow for a plot
        label = 0 if model.num_classes else None
        z = services.encode(name, intake.prepare_digit(picture), label)
        mine = directions.project(model, z[None], pd_)[0]
        rows["direction 1"].append(float(mine[0]))
        rows["direction 2"].append(float(mine[1]))
        rows["class"].append(YOUR_IMAGE)
        note += f" Your image is the point labelled '{YOUR_IMAGE}'."
    return pd.DataFrame(rows), note


def build(services: Services, start: str) -> None:
    """The tab's widgets and its four events."""
    catalog = services.catalog
    lead("Which way to move in code space? Dimensions ranked by how much they matter, the principal "
         "directions of the codes, and class vectors.")
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            model = gr.Dropdown(catalog.choices(), value=start, label="model", elem_id="directions-model")
            table_value, summary_value = ranking_table(services, start)
            summary = gr.Markdown(summary_value)
            table = gr.Dataframe(value=table_value, label="dimensions by effect", interactive=False,
                                 max_height=260)
        with gr.Column(scale=2):
            count = len(services.code_directions(start).principal.directions)
            with gr.Row():
                first = gr.Number(value=1, precision=0, minimum=1, label="first principal direction",
                                  elem_id="directions-first")
                second = gr.Number(value=2, precision=0, minimum=1, label="second principal direction")
                span = gr.Slider(0.5, 4.0, value=2.5, step=0.25, label="range (+- standard deviations)")
            grid_value, grid_caption_value = direction_grid(services, start, 1, min(2, count), 2.5)
            grid = gr.Image(value=grid_value, label="grid along two principal directions", type="pil",
                            format="png", interactive=False, buttons=PICTURE_BUTTONS,
                            elem_id="directions-grid", elem_classes=["main-picture", "below-controls"])
            grid_caption = gr.Markdown(grid_caption_value)
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            # Test image 2 of MNIST is a 1: the 1-to-7 preset starts from a real 1.
            digit = digit_input(services.example, model, "directions_image", "Image to walk from", default_index=2)
            classes = [(c, i) for i, c in enumerate(catalog.classes(start))]
            with gr.Row():
                source = gr.Dropdown(classes, value=1, label="from class")
                target = gr.Dropdown(classes, value=7, label="to class")
            amount = gr.Slider(0.25, 3.0, value=1.5, step=0.25, label="how far (times the class vector)")
            preset = gr.Button("Preset: 1 to 7", size="sm")
        with gr.Column(scale=2):
            try:
                walk_value, walk_caption_value = attribute_walk(services, start, 1, 7, 1.5, digit.initial)
            except ValueError as err:   # a conditional model, or no image: say why instead
                walk_value, walk_caption_value = None, str(err)
            walk = gr.Image(value=walk_value, label="walk along the class vector", type="pil", format="png",
                            interactive=False,
                            buttons=PICTURE_BUTTONS)
            walk_caption = gr.Markdown(walk_caption_value)
            points_value, note_value = scatter(services, start, digit.initial)
            points = gr.ScatterPlot(value=points_value, x="direction 1", y="direction 2", color="class",
                                    height=360, label="codes on the first two principal directions")
            scatter_note = gr.Markdown(note_value)

    how_to_read("**Dimensions by effect**: how much each code dimension matters (for a VAE, its KL). "
                "**Principal directions**: the axes along which the codes of real images vary most. "
                "**Class vectors**: the mean code of one class minus that of another; added to the code "
                "of your image, they move it from one kind of digit towards the other.")
    model.change(user_errors(functools.partial(ranking_table, services)), model, [table, summary],
                 api_name="dimension_ranking", **ENCODE)
    gr.on([model.change, first.submit, second.submit, span.input],
          user_errors(functools.partial(direction_grid, services)), [model, first, second, span],
          [grid, grid_caption], api_name="direction_grid", trigger_mode="always_last", **DECODE)
    gr.on([model.change, source.input, target.input, amount.input, digit.preview.change],
          user_errors(functools.partial(attribute_walk, services)),
          [model, source, target, amount, digit.preview], [walk, walk_caption],
          api_name="attribute_walk", trigger_mode="always_last", **ENCODE)
    gr.on([model.change, digit.preview.change], user_errors(functools.partial(scatter, services)),
          [model, digit.preview], [points, scatter_note], api_name="direction_scatter",
          trigger_mode="always_last", **ENCODE)
    preset.click(user_errors(functools.partial(preset_one_to_seven, services)), [model, digit.preview],
                 [source, target, amount, walk, walk_caption], api_name="preset_1_to_7", **ENCODE)
