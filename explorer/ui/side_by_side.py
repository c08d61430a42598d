"""Three kinds of model tab: one image before a classifier, a density model and a conditional one.

A classifier's p(y | x) must name a class even for an image that is no digit at all; a density
model's -log p(x) can call the image unlike its data; a class-conditional model's -log p(x | y)
for every y gives, by Bayes' rule, its own p(y | x) and can still answer "none of these". The
tab shows the three side by side for any image (a ready example, a test image, an upload or a
drawing), with each verdict's threshold read off real test images (the 99th percentile of
their scores, stored by `benchmarks/outliers.py` or worked out from the test set here). Below,
conditional generation two ways: straight from p(x | y), and by Bayes from p(x) and the
classifier (draw from p(x), resample by p(y | x)), with the effective sample size.

The maths is in `explorer.three_kinds`; this module only wires it to widgets.

Endpoints:
  `/three_kinds`: (data set, image) -> classifier bars, density verdict, -log p(x|y) bars,
      Bayes bars, conditional verdict, a reading.
  `/three_kinds_example`: (example name) -> the ready example (preview, caption).
  `/three_kinds_source`: (data set, index) -> that data set's test image (preview, caption).
  `/three_kinds_generate`: (data set, class, seed) -> samples of p(x|y) both ways, a note.
  `/judge_from_example|upload|drawing`: the image to judge (see `digits`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import torch
from PIL import Image, ImageDraw

from .. import data, intake, outliers, render, three_kinds
from ..three_kinds import ThreeKinds, Verdict
from . import inputs
from .links import Shareable
from .common import DECODE, LIGHT, digit_picture, lead, user_errors
from .digits import digit_input, example_digit
from .services import Memo, Services

# Test images scored for a spread when a checkpoint stores none (a fresh model): enough for a
# 99th percentile that moves little, few enough to score at start-up on a CPU.
SPREAD_IMAGES = 500
# Images the classifier searches for the most ambiguous 4-or-9.
AMBIGUOUS_SEARCH = 2000
# Conditional generation: samples shown, and draws from p(x) for the Bayes way.
SHOWN, DRAWS = 8, 64

EXAMPLES = ("a clean digit", "an ambiguous 4 or 9", "noise", "a blank image", "a Fashion sneaker",
            "a drawn letter")


@dataclass(frozen=True)
class Verdicts:
    """What the page shows for one image under one data set's models."""

    classifier: dict[str, float] | None      # class name -> p(y|x)
    density: Verdict | None
    conditional_nll: pd.DataFrame | None     # class, -log p(x|y)
    bayes: dict[str, float] | None           # class name -> p(y|x) by Bayes
    conditional: Verdict | None


class SideBySide:
    """The three models of each data set, their test spreads and the ready examples, cached."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.catalog = services.catalog
        self._spreads: Memo[outliers.Spread | None] = Memo()
        self._examples: Memo[tuple[torch.Tensor, str]] = Memo()

    def datasets(self) -> list[str]:
        """Data sets with a density or a conditional density model served."""
        return sorted({c.dataset for c in self.catalog.autoregressive.values()})

    def models(self, dataset: str) -> ThreeKinds:
        """The data set's classifier, unconditional density model and class-conditional model.

        The density model is the gated PixelCNN where there is one (no blind spot), else the
        first unconditional autoregressive model; the conditional one is the first with classes.
        """
        if dataset not in self.datasets():
            raise ValueError(f"No density model of {dataset} is loaded; pick one of: {', '.join(self.datasets())}.")
        shelf = {n: c for n, c in self.catalog.autoregressive.items() if c.dataset == dataset}
        unconditional = [n for n, c in shelf.items() if not c.model.num_classes]
        unconditional.sort(key=lambda n: shelf[n].model.name != "gated_pixelcnn")
        conditional = [n for n, c in shelf.items() if c.model.num_classes]
        classifier = self.catalog.classifiers.get(dataset)
        return ThreeKinds(classifier=classifier.model if classifier else None,
                          density=shelf[unconditional[0]].model if unconditional else None,
                          conditional=shelf[conditional[0]].model if conditional else None)

    def names(self, dataset: str) -> dict[str, str]:
        """The checkpoint names behind `models(dataset)`, by role, for captions."""
        kinds = self.models(dataset)
        found = {}
        for role in ("density", "conditional"):
            model = getattr(kinds, role)
            found[role] = next((n for n, c in self.catalog.autoregressive.items() if c.model is model), "")
        classifier = self.catalog.classifiers.get(dataset)
        found["classifier"] = classifier.name if classifier else ""
        return found

    def spread(self, dataset: str, score: str) -> outliers.Spread | None:
        """The test spread of a score: stored in the checkpoint, else worked out from the first
        SPREAD_IMAGES test images, else None (no test images here)."""
        def compute() -> outliers.Spread | None:
            role = "density" if score == three_kinds.DENSITY else "conditional"
            name = self.names(dataset)[role]
            if not name:
                return None
            stored = three_kinds.stored_spread(self.catalog.checkpoint(name, "autoregressive").metrics, score)
            if stored is not None:
                return stored
            split = self.catalog.test_sets.get(dataset)
            if split is None:
                return None
            grey = data.to_float(split.images[:SPREAD_IMAGES])
            models = self.models(dataset)
            only = ThreeKinds(**{role: getattr(models, role)})
            return outliers.Spread.of(only.judge(grey).scores()[score])

        return self._spreads.get((dataset, score), compute)

    def judge(self, dataset: str, image: torch.Tensor) -> Verdicts:
        """One image (1, 28, 28) in [0, 1] under the data set's three models."""
        models = self.models(dataset)
        classes = data.class_names(dataset)
        j = models.judge(image.unsqueeze(0))
        scores = j.scores()

        def verdict(score: str) -> Verdict | None:
            return Verdict(score, float(scores[score][0]), self.spread(dataset, score)) if score in scores else None

        bars = None
        if j.class_log_likelihoods is not None:
            bars = pd.DataFrame({"class": classes, "-log p(x|y), nats": (-j.class_log_likelihoods[0]).tolist()})
        return Verdicts(
            classifier=None if j.classifier_probs is None else dict(zip(classes, j.classifier_probs[0].tolist())),
            density=verdict(three_kinds.DENSITY), conditional_nll=bars,
            bayes=None if j.bayes_probs is None else dict(zip(classes, j.bayes_probs[0].tolist())),
            conditional=verdict(three_kinds.CONDITIONAL))

    # ------------------------------------------------------------------ ready examples

    def example(self, name: str) -> tuple[torch.Tensor, str]:
        """A ready example by name: (image (1, 28, 28) in [0, 1], caption)."""
        if name not in EXAMPLES:
            raise ValueError(f"Pick one of the ready examples: {', '.join(EXAMPLES)}.")
        return self._examples.get(name, lambda: self._make_example(name))

    def _make_example(self, name: str) -> tuple[torch.Tensor, str]:
        if name == "noise":
            return torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(0)), "noise: every pixel uniform (seed 0)"
        if name == "a blank image":
            return torch.zeros(1, 28, 28), "a blank image: all black"
        if name == "a drawn letter":
            return drawn_letter(), "a letter A, drawn with three strokes: no digit"
        if name == "a Fashion sneaker":
            return self._first_of_class("fashion-mnist", "Sneaker")
        if name == "a clean digit":
            image, _, caption = self.services.dataset_example("mnist", 0)
            return image, caption
        return self._ambiguous("mnist", "4", "9")

    def _first_of_class(self, dataset: str, label: str) -> tuple[torch.Tensor, str]:
        split = self.catalog.test_sets.get(dataset)
        if split is None:
            raise ValueError(f"No {dataset} test images here, so no {label} to show; upload or draw one instead.")
        index = int((split.labels == split.classes.index(label)).nonzero()[0])
        image, _, caption = self.catalog.test_image(dataset, index)
        return image, caption

    def _ambiguous(self, dataset: str, a: str, b: str) -> tuple[torch.Tensor, str]:
        split, classifier = self.catalog.test_sets.get(dataset), self.catalog.classifiers.get(dataset)
        if split is None or classifier is None:
            raise ValueError(f"Finding an ambiguous {a} or {b} needs the {dataset} test images and classifier, "
                             "which are not here; draw one instead.")
        grey = data.to_float(split.images[:AMBIGUOUS_SEARCH])
        probs = ThreeKinds(classifier=classifier.model).judge(grey).classifier_probs
        index = three_kinds.most_ambiguous(probs, split.classes.index(a), split.classes.index(b))
        image, _, caption = self.catalog.test_image(dataset, index)
        return image, f"{caption}; the classifier's hardest call between {a} and {b} among {len(grey)} test images"


def drawn_letter() -> torch.Tensor:
    """A capital A drawn like a sketchpad stroke, made MNIST-style: (1, 28, 28) in [0, 1]."""
    canvas = Image.new("L", (280, 280), 255)
    pen = ImageDraw.Draw(canvas)
    for line in (((70, 230), (140, 50)), ((140, 50), (210, 230)), ((100, 160), (180, 160))):
        pen.line(line, fill=0, width=18)
    return intake.prepare_digit(np.asarray(canvas))


# ---------------------------------------------------------------------- page pieces

def _verdict_text(v: Verdict | None, what: str, none_line: str, unit: str = " nats") -> str:
    if v is None:
        return none_line
    lines = [f"**{v.score}** = {v.value:.1f}{unit}"]
    if v.spread is None:
        lines.append("No test images here to compare with, so no verdict.")
        return "  \n".join(lines)
    lines.append(f"Higher than {v.percentile:.1f}% of real test images.")
    lines.append(f"Verdict: **{'OUTLIER: ' + what if v.outlier else 'looks like the data'}**")
    lines.append(f"<small>{v.threshold.describe(unit)}</small>")
    return "  \n".join(lines)


def judge(side: SideBySide, dataset: str, picture: np.ndarray | None
          ) -> tuple[dict | None, str, pd.DataFrame | None, dict | None, str, str]:
    """The `/three_kinds` event: the three views of one picture."""
    dataset = inputs.choice(dataset, side.datasets(), "data set whose models judge the image")
    picture = inputs.image(picture)
    if picture is None:
        raise ValueError("Pick an example, upload or draw an image first.")
    v = side.judge(dataset, intake.prepare_digit(picture))
    classifier_text = "No classifier of this data set is loaded."
    if v.classifier:
        top = max(v.classifier, key=v.classifier.get)
        classifier_text = (f"It must pick a class: **{top}** at p = {v.classifier[top]:.2f}. "
                           "It has no way to say \"none of these\".")
    density = _verdict_text(v.density, "unlike any training image", "No unconditional density model is loaded.")
    conditional = _verdict_text(v.conditional, "none of these classes",
                                "No class-conditional model of this data set is loaded.")
    return (v.classifier, classifier_text + "\n\n" + density, v.conditional_nll, v.bayes, conditional,
            reading(v))


def reading(v: Verdicts) -> str:
    """A few sentences on how the three answers differ for this image."""
    text = []
    if v.classifier and v.density is not None and v.density.outlier:
        top = max(v.classifier, key=v.classifier.get)
        text.append(f"The classifier says **{top}** ({v.classifier[top]:.0%}), yet the density model finds the "
                    "image unlike its data: a classifier answers p(y|x) for *any* x.")
    if v.density is not None and v.density.percentile is not None and v.density.percentile < 1:
        text.append("The density model finds this image *more* likely than almost every real test image: simple, "
                    "mostly black images are cheap to encode whatever they show. A likelihood measures "
                    "complexity as much as typicality.")
    if v.bayes and v.conditional is not None and v.conditional.outlier is False:
        top = max(v.bayes, key=v.bayes.get)
        text.append(f"The conditional model labels it **{top}** by Bayes ({v.bayes[top]:.0%}) and accepts it.")
    text.append("p(y|x) = p(x|y) p(y) / p(x): the conditional model's bars on the right are the left-hand side, "
                "worked out from its -log p(x|y) with a uniform p(y).")
    return "  \n".join(text)


def ready_example(side: SideBySide, name: str) -> tuple[np.ndarray, str]:
    """The `/three_kinds_example` event."""
    image, caption = side.example(inputs.choice(name, EXAMPLES, "ready example"))
    return digit_picture(image), caption


def generate(side: SideBySide, dataset: str, label: str, seed: float | None
             ) -> tuple[list, list, str]:
    """The `/three_kinds_generate` event: samples of p(x | y) straight, and by Bayes."""
    dataset = inputs.choice(dataset, side.datasets(), "data set whose models generate")
    classes = data.class_names(dataset)
    y = classes.index(inputs.choice(label, classes, f"class of {dataset}"))
    models = side.models(dataset)
    g = torch.Generator().manual_seed(inputs.seed(seed))
    direct, bayes_way, note = [], [], []
    if models.conditional is not None:
        direct = [(render.to_uint8(x), f"p(x | {label})") for x in three_kinds.from_conditional(models.conditional, y, SHOWN, g)]
    else:
        note.append("No class-conditional model is loaded, so nothing to draw straight from p(x|y).")
    if models.density is not None and models.classifier is not None:
        found = three_kinds.by_bayes(models.density, models.classifier, y, DRAWS, SHOWN, g)
        bayes_way = [(render.to_uint8(found.draws[i]), f"weight {float(found.weights[i]):.2f}") for i in found.chosen]
        note.append(f"By Bayes: {DRAWS} draws from p(x), resampled by the classifier's p({label}|x). Effective "
                    f"sample size **{found.effective_sample_size:.1f}** of {DRAWS}: the {SHOWN} shown repeat "
                    "draws when it is small (most draws are other classes).")
    else:
        note.append("Bayes resampling needs an unconditional density model and a classifier of this data set.")
    return direct, bayes_way, "  \n".join(note)


def class_choices(side: SideBySide, dataset: str) -> gr.Dropdown:
    """The `/three_kinds_classes` event: the class picker follows the data set."""
    classes = data.class_names(inputs.choice(dataset, side.datasets(), "data set"))
    return gr.Dropdown(choices=classes, value=classes[0])


def build(services: Services) -> Shareable | None:
    """The tab's widgets and its events; returns what a link holds of it (the data set and a
    ready example: choosing them redraws the tab)."""
    side = SideBySide(services)
    datasets = side.datasets()
    if not datasets:
        gr.Markdown("No density model is loaded. Train one with `python -m train gated_pixelcnn ...`.")
        return None
    start = "mnist" if "mnist" in datasets else datasets[0]
    lead("A classifier p(y|x), a density model p(x) and a class-conditional model p(x|y) look at the "
         "same image. Which can say \"this is no digit\"?")
    with gr.Row():
        with gr.Column(scale=1, min_width=220):
            dataset = gr.Dropdown(datasets, value=start, label="models of")
            examples = gr.Radio(list(EXAMPLES), value=None, label="ready examples", elem_id="three-kinds-examples")
            digit = digit_input(services.dataset_example, dataset, "judge", "Image to judge")
        with gr.Column(scale=1, min_width=260):
            gr.Markdown("**Classifier** p(y|x) and **density** -log p(x)")
            first = None
            if digit.initial is not None:
                try:
                    first = judge(side, start, digit.initial)
                except ValueError:
                    first = None
            probs = gr.Label(value=first[0] if first else None, num_top_classes=4, label="classifier p(y|x)",
                             elem_id="three-kinds-classifier")
            density = gr.Markdown(first[1] if first else "")
        with gr.Column(scale=1, min_width=260):
            gr.Markdown("**Conditional** -log p(x|y) for every y, and Bayes p(y|x)")
            bars = gr.BarPlot(value=first[2] if first else None, x="class", y="-log p(x|y), nats", height=200,
                              label="-log p(x|y), nats")
            bayes_probs = gr.Label(value=first[3] if first else None, num_top_classes=3, label="Bayes p(y|x)")
            conditional = gr.Markdown(first[4] if first else "")
    text = gr.Markdown(first[5] if first else "")
    with gr.Accordion("Conditional generation two ways", open=False):
        with gr.Row():
            label = gr.Dropdown(data.class_names(start), value=data.class_names(start)[0], label="class y")
            seed = gr.Number(value=0, precision=0, label="seed")
            go = gr.Button("Generate", variant="primary")
        with gr.Row():
            direct = gr.Gallery(label="from p(x|y): the conditional model", columns=8, height="auto")
            resampled = gr.Gallery(label="by Bayes: p(x) draws resampled by p(y|x)", columns=8, height="auto")
        note = gr.Markdown("")
    outputs = [probs, density, bars, bayes_probs, conditional, text]
    examples.change(user_errors(functools.partial(ready_example, side)), examples, [digit.preview, digit.caption],
                    api_name="three_kinds_example", **LIGHT)
    dataset.change(user_errors(functools.partial(example_digit, services.dataset_example)), [dataset, digit.index],
                   [digit.preview, digit.caption], api_name="three_kinds_source", **DECODE)
    dataset.change(user_errors(functools.partial(class_choices, side)), dataset, label,
                   api_name="three_kinds_classes", **LIGHT)
    digit.preview.change(user_errors(functools.partial(judge, side)), [dataset, digit.preview], outputs,
                         api_name="three_kinds", trigger_mode="always_last", **DECODE)
    go.click(user_errors(functools.partial(generate, side)), [dataset, label, seed], [direct, resampled, note],
             api_name="three_kinds_generate", **DECODE)

    def restore(params: dict[str, str]) -> list[Any]:
        chosen = inputs.choice(params.get("dataset", start), datasets, "data set")
        example = params.get("example")
        return [chosen, inputs.choice(example, list(EXAMPLES), "ready example") if example else gr.skip()]

    return Shareable("three-kinds", ("dataset", "example"), [dataset, examples], restore)
