"""User input checked at the boundary: one function per kind of input a tab takes.

Each takes what arrived (from the page, or from an API caller: any JSON value, including
lists, NaN, infinities and numbers far too large) and returns a clean value, or raises
`gr.Error` with a sentence a student understands. The tab handlers call these first, so
model code only ever sees values of the right type and range.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any, Sequence

import gradio as gr
import gradio.utils
import numpy as np

from .catalog import Catalog

# torch.Generator.manual_seed takes a signed 64-bit value; beyond it torch raises an overflow.
SEED_RANGE = (0, 2**63 - 1)
# An image array from the page is at most a canvas; anything larger is not a digit input.
MAX_IMAGE_SIDE = 4096


class InputError(gr.Error, ValueError):
    """A value a person (or an API caller) sent that the app cannot use: a toast on the page,
    and a ValueError for callers of the library functions."""

    def __str__(self) -> str:
        return str(self.message)


def refuse(message: str) -> InputError:
    """A toast for the person, without a traceback in the server log."""
    return InputError(message, print_exception=False)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def model_name(catalog: Catalog, value: Any, kind: str | None = None) -> str:
    """A served model's name (of `kind`, "latent" or "autoregressive", when given)."""
    if not isinstance(value, str) or not value:
        raise refuse("Pick a model from the list.")
    try:
        catalog.checkpoint(value, kind)
    except ValueError as err:
        raise refuse(str(err)) from None
    return value


def number(value: Any, what: str, low: float | None = None, high: float | None = None) -> float:
    """A finite number, within [low, high] where given."""
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise refuse(f"The {what} must be a number, not {_shown(value)}.") from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise refuse(f"The {what} must be a number, not {_shown(value)}.")
    value = float(value)
    if not math.isfinite(value):
        raise refuse(f"The {what} must be an ordinary number, not {value}.")
    if (low is not None and value < low) or (high is not None and value > high):
        raise refuse(f"The {what} must lie between {_bound(low)} and {_bound(high)}, not {value:g}.")
    return value


def _bound(x: float | None) -> str:
    if x is None:
        return "any"
    return f"{x:g}" if isinstance(x, float) else str(x)


def whole(value: Any, what: str, low: int | None = None, high: int | None = None) -> int:
    """A whole number, within [low, high] where given (2.0 is 2; 2.5 is refused)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = int(value)
    else:
        x = number(value, what)
        if x != int(x):
            raise refuse(f"The {what} must be a whole number, not {x:g}.")
        result = int(x)
    if (low is not None and result < low) or (high is not None and result > high):
        lo = "any" if low is None else low
        hi = "any" if high is None else high
        raise refuse(f"The {what} must lie between {lo} and {hi}, not {_shown(result)}.")
    return result


def seed(value: Any) -> int:
    """A random seed: a whole number from 0 to 2^63 - 1."""
    if value is None or value == "":
        raise refuse("Enter a seed (a whole number) for the random draw.")
    try:
        return whole(value, "seed", *SEED_RANGE)
    except gr.Error:
        raise refuse(f"The seed must be a whole number from 0 to {SEED_RANGE[1]:,}.") from None


def dimension(value: Any, what: str, latent_dim: int | None = None) -> int:
    """A latent dimension's index (0 upwards; below `latent_dim` where given)."""
    high = None if latent_dim is None else latent_dim - 1
    return whole(value, what, 0, high)


def count(value: Any, what: str, low: int, high: int) -> int:
    """How many of something: a whole number in [low, high]."""
    return whole(value, what, low, high)


def choice(value: Any, options: Sequence[str], what: str) -> str:
    """One of a fixed set of strings."""
    if not isinstance(value, str) or value not in options:
        raise refuse(f"Choose the {what}: {' or '.join(options)}.")
    return value


def label(catalog: Catalog, name: str, value: Any) -> int | None:
    """The class to condition on: None for an unconditional model, else a class index
    (default 0 when none is given)."""
    classes = catalog.checkpoint(name).model.num_classes
    if classes == 0:
        return None
    if value is None or value == "":
        return 0
    try:
        return whole(value, "class", 0, classes - 1)
    except gr.Error:
        raise refuse(f"The class must be a whole number from 0 to {classes - 1}, not {_shown(value)}.") from None


def image(value: Any, what: str = "image") -> np.ndarray | None:
    """An image array from the page (None stays None): 2-D or 3-D, numeric, of sane size."""
    if value is None:
        return None
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError, OverflowError):
        raise refuse(f"The {what} is not a picture.") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise refuse(f"The {what} is not a picture.")
    if arr.ndim not in (2, 3) or 0 in arr.shape or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise refuse(f"The {what} is not a picture (it has the shape {arr.shape}).")
    if max(arr.shape[:2]) > MAX_IMAGE_SIDE:
        raise refuse(f"The {what} is too large ({arr.shape[1]}x{arr.shape[0]} pixels).")
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(arr).all():
        raise refuse(f"The {what} holds values that are not numbers.")
    return arr


def upload(value: Any) -> str | None:
    """An uploaded file as Gradio hands it over: the path of its own copy (None: nothing yet)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise refuse("The upload is not a file. Choose an image file (PNG, JPEG, GIF, BMP or WebP).")
    return received_file(value)


def received_file(path: str) -> str:
    """`path` if it names a file in Gradio's upload folder (an upload, or a picture the app
    sent out), else a refusal. Gradio checks this only for file values that carry its type
    tag; a caller sending a bare {"path": "/any/file"} would otherwise have the app read any
    file on the server."""
    folder = os.path.realpath(gradio.utils.get_upload_folder())
    real = os.path.realpath(path)
    if os.path.commonpath([folder, real]) != folder:
        raise refuse("That file was not uploaded to this app. Upload the picture itself (PNG, JPEG, GIF, BMP "
                     "or WebP).")
    return real


def drawing(value: Any) -> dict[str, Any] | None:
    """A sketchpad value: a dict whose composite (or last layer) is a picture; None if empty."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return {"composite": image(value, "drawing")}
    if not isinstance(value, dict):
        raise refuse("The drawing is not a picture: draw a digit on the sketchpad and press the button.")
    layers = value.get("layers")
    if layers is not None and not isinstance(layers, (list, tuple)):
        raise refuse("The drawing is not a picture: draw a digit on the sketchpad and press the button.")
    return {"composite": image(value.get("composite"), "drawing"),
            "layers": [image(layer, "drawing") for layer in (layers or [])]}
