"""A digit input: a data-set example, an upload or a drawing, shown as the model will see it.

Each input ends in a 28x28 preview (MNIST-style: white on black, centred); the tabs read
the preview, so every source is handled once, here. Each source has its own endpoint
(`/<slot>_from_example`, `/<slot>_from_upload`, `/<slot>_from_drawing`).
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Any, Callable

import torch

import gradio as gr
import numpy as np
from gradio.data_classes import FileData
from PIL import Image

from .. import intake
from . import inputs
from .common import PICTURE_BUTTONS, LIGHT, digit_picture, user_errors

# Drawing canvas: a stroke of BRUSH pixels on CANVAS pixels comes out about as thick as an
# MNIST pen stroke once the digit is scaled to 20x20.
CANVAS = 280
BRUSH = 18


# Clicks the editor's Brush button unless it is already picked (highlighted); the editor may
# still be mounting when its tab opens, so it looks again for a few seconds.
PICK_BRUSH_JS = """() => {
  const pick = (tries) => {
    const brush = document.querySelector('#SKETCH button[aria-label="Brush"]');
    if (brush) { if (!brush.classList.contains('highlight')) brush.click(); }
    else if (tries > 0) setTimeout(() => pick(tries - 1), 100);
  };
  pick(40);
}"""


def sent_picture(file: FileData | bytes | None) -> Image.Image | None:
    """A picture Gradio received for an input (a file in its upload cache, a data URL, or
    bytes), decoded by the app: `intake.open_image` reads the pixel count from the header and
    refuses a file it cannot use with a sentence (Gradio's own decoding would answer with its
    error, naming its cache paths)."""
    if file is None:
        return None
    try:
        if isinstance(file, (bytes, bytearray, memoryview)):
            return intake.open_image(bytes(file))
        if file.url and file.url.startswith("data:"):
            try:
                data = base64.b64decode(file.url.split(",", 1)[-1], validate=True)
            except (binascii.Error, ValueError):
                raise intake.ImageInputError("The picture sent is not an image this app can read.") from None
            return intake.open_image(data)
        if not file.path:
            raise intake.ImageInputError("The picture sent is not an image this app can read.")
        return intake.open_image(inputs.received_file(file.path))
    except intake.ImageInputError as err:
        raise inputs.refuse(str(err)) from None


class DigitPreview(gr.Image):
    """The preview of a digit input, which the tabs read: a picture an API caller sends in
    its place is decoded by the app (`sent_picture`), as Gradio would decode it otherwise
    (grey, as a numpy array). A template of gr.Image, so the page draws it as one."""

    is_template = True

    def preprocess(self, payload: Any) -> np.ndarray | None:
        picture = sent_picture(payload)
        return None if picture is None else np.asarray(picture.convert(self.image_mode or "L"))


class DrawingPad(gr.Sketchpad):
    """The sketchpad, its layers decoded by the app (`sent_picture`) rather than by Gradio,
    as numpy arrays in the pad's mode (RGBA: `intake` flattens transparency itself). A
    template of gr.Sketchpad, so the page draws it as one."""

    is_template = True

    def get_block_name(self) -> str:
        return "imageeditor"  # gr.Sketchpad is itself a template, of gr.ImageEditor

    def get_block_class(self) -> str:
        return "imageeditor"

    def convert_and_format_image(self, file: FileData | bytes | None, flatten_on_white: bool = False
                                 ) -> np.ndarray | None:
        picture = sent_picture(file)
        return None if picture is None else np.asarray(picture.convert(self.image_mode or "RGBA"))


@dataclass
class DigitInput:
    """The components of one digit input; `preview` is what the tabs read."""

    index: gr.Number
    upload: gr.File
    sketch: DrawingPad
    preview: DigitPreview
    caption: gr.Markdown
    initial: np.ndarray | None  # the preview's starting picture, (28, 28) uint8


# (source, index) -> (image (1, 28, 28) in [0, 1], class or None, caption); `Services.example`
# takes a model name as the source, `Services.dataset_example` a data set.
ExampleSource = Callable[[str, int], tuple[torch.Tensor, int | None, str]]


def example_digit(example: ExampleSource, source: str, index: float | None) -> tuple[np.ndarray, str]:
    """Test image number `index` from `source` (a model's data set, or a sample without data)."""
    if index is None:
        raise ValueError("Enter the number of a test image.")
    if not isinstance(source, str) or not source:
        raise inputs.refuse("Pick a model (or a data set) for the examples first.")
    image, _, caption = example(source, inputs.whole(index, "test image number", 0, 10**9))
    return digit_picture(image), caption


def uploaded_digit(path: str | None) -> tuple[np.ndarray, str]:
    """An uploaded image file, converted the way MNIST digits were made."""
    return digit_picture(intake.digit_from_file(inputs.upload(path))), "your upload, as the model sees it"


def drawn_digit(value: dict[str, Any] | None) -> tuple[Any, Any]:
    """A sketchpad drawing, converted the way MNIST digits were made.

    An empty canvas is a warning toast, and the preview keeps its picture: an error would
    leave an "Error" badge on the preview that outlasts the next good drawing."""
    try:
        digit = intake.digit_from_drawing(inputs.drawing(value))
    except intake.EmptyImageError as err:
        gr.Warning(str(err))
        return gr.skip(), gr.skip()
    return digit_picture(digit), "your drawing, as the model sees it"


def digit_input(example: ExampleSource, model: gr.Dropdown, slot: str, title: str,
                default_index: int = 0) -> DigitInput:
    """Build the widgets of one digit input and wire its three sources to the preview.

    `model` is the dropdown the examples follow: `example` turns its value and an index into
    a picture (`Services.example` takes model names, `Services.dataset_example` data sets); the
    preview starts at example `default_index` of the dropdown's initial value.
    """
    try:
        initial, caption = example_digit(example, model.value, default_index)
    except ValueError as err:  # no such model or no test images: start empty, say why
        initial, caption = None, str(err)
    with gr.Group():
        gr.Markdown(f"**{title}**")
        with gr.Tabs():
            with gr.Tab("Data set"):
                index = gr.Number(value=default_index, precision=0, minimum=0,
                                  label="Test image number", key=f"{slot}-index")
            with gr.Tab("Upload"):
                upload = gr.File(label="Image file (any size or colour)", type="filepath",
                                 key=f"{slot}-upload")
            with gr.Tab("Draw") as draw_tab:
                sketch = DrawingPad(
                    label="Draw a digit", type="numpy", image_mode="RGBA", sources=[], elem_id=f"{slot}-sketch",
                    canvas_size=(CANVAS, CANVAS), fixed_canvas=True, layers=False,
                    brush=gr.Brush(default_size=BRUSH, colors=["#000000"], color_mode="fixed"),
                    key=f"{slot}-sketch", buttons=PICTURE_BUTTONS)
                use = gr.Button("Use this drawing", size="sm")
        # A short caption: a long one is cut in a 170 px picture ("Digit A as the ... it").
        preview = DigitPreview(value=initial, label="as the model sees it",
                           image_mode="L", type="numpy", format="png", interactive=False,
                           height=190, width=170, elem_classes=["pixelated"], key=f"{slot}-preview",
                           buttons=PICTURE_BUTTONS)
        note = gr.Markdown(caption)
    index.change(user_errors(functools.partial(example_digit, example)), [model, index],
                 [preview, note], api_name=f"{slot}_from_example", trigger_mode="always_last", **LIGHT)
    upload.upload(user_errors(uploaded_digit), upload, [preview, note],
                  api_name=f"{slot}_from_upload", **LIGHT)
    # Gradio's editor opens with no tool picked and ignores strokes until the brush is chosen
    # (it has no setting for the starting tool): pick the brush when the Draw tab opens.
    draw_tab.select(None, None, None, js=PICK_BRUSH_JS.replace("SKETCH", f"{slot}-sketch"),
                    api_name=f"{slot}_pick_brush")
    use.click(user_errors(drawn_digit), sketch, [preview, note],
              api_name=f"{slot}_from_drawing", **LIGHT)
    return DigitInput(index, upload, sketch, preview, note, initial)
