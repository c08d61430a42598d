"""Picture intake: any user image (a drawing or an upload of any size, mode or colour) -> an
MNIST-style digit, the kind of input the models were trained on.

It follows how MNIST itself was made (LeCun et al.): grey levels, white ink on black, the
tight box around the ink scaled to fit 20x20 keeping its aspect, then placed in 28x28 so that
its centre of mass sits at the centre. Anything that cannot become a digit (an empty drawing,
a damaged or non-image file, an image too big to open safely) raises `ImageInputError` with a
sentence a student understands; the UI shows it as `gr.Error`.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

# Guards against huge uploads and decompression bombs (a tiny file claiming a giant image):
# the file size is checked before reading it, the pixel count before decoding it.
MAX_FILE_BYTES = 20 * 1024 * 1024
# 16 MP: more than a 12 MP phone photo; decoded as RGBA it takes 64 MB.
MAX_PIXELS = 16_000_000
# Images are shrunk to at most this side before processing: plenty for a 28x28 result.
WORK_SIDE = 512
# MNIST geometry.
SIDE = 28
BOX = 20
# Ink fainter than this fraction of the strongest stroke counts as background noise.
INK_THRESHOLD = 0.1
# A picture whose ink barely differs from its background holds no digit (0..255 levels).
MIN_CONTRAST = 24


class ImageInputError(ValueError):
    """An image the app cannot turn into a digit; the message is meant for the user."""


class EmptyImageError(ImageInputError):
    """The picture holds no ink at all (a blank drawing, a one-colour image)."""


def open_image(source: str | os.PathLike | bytes) -> Image.Image:
    """Open an uploaded file safely and decode it fully, or raise ImageInputError.

    Checks, in order: the file exists and is not too large; it is an image format PIL
    knows; its pixel count (read from the header, before decoding) is below MAX_PIXELS;
    it decodes without error. Returns the first frame, rotated as its EXIF says.
    """
    if isinstance(source, (bytes, bytearray)):
        size, name, fp = len(source), "the upload", io.BytesIO(source)
    else:
        path = Path(source)
        name = f"'{path.name}'"
        try:
            size = path.stat().st_size
        except OSError:
            raise ImageInputError(f"The file {name} could not be read. Please upload it again.") from None
        fp = path
    if size == 0:
        raise ImageInputError(f"The file {name} is empty (0 bytes). Please upload an image file.")
    if size > MAX_FILE_BYTES:
        raise ImageInputError(
            f"The file {name} is too large ({size / 2**20:.1f} MB); the limit is "
            f"{MAX_FILE_BYTES / 2**20:.0f} MB. A small photo or screenshot of the digit is enough."
        )
    with warnings.catch_warnings():
        # PIL warns (then errors) on images past its own bomb limit; we check our own cap.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(fp)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _too_many_pixels(name, None) from None
        except UnidentifiedImageError:
            raise ImageInputError(
                f"The file {name} is not an image this app can read. Please upload a PNG, "
                "JPEG, GIF, BMP or WebP picture."
            ) from None
        except OSError as err:
            raise ImageInputError(f"The file {name} could not be opened as an image ({err}).") from None
        width, height = img.size
        if width * height > MAX_PIXELS:
            img.close()
            raise _too_many_pixels(name, (width, height))
        if width == 0 or height == 0:
            raise ImageInputError(f"The image {name} has no pixels ({width}x{height}).")
        try:
            if img.format == "JPEG":
                img.draft("L", (WORK_SIDE, WORK_SIDE))  # decode at reduced scale: fast, small
            img.load()
            img = ImageOps.exif_transpose(img) or img
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ImageInputError(
                f"The image {name} is damaged or incomplete and could not be decoded ({err}). "
                "Please upload another copy."
            ) from None
    return img


def _too_many_pixels(name: str, size: tuple[int, int] | None) -> ImageInputError:
    dims = f" ({size[0]}x{size[1]} pixels)" if size else ""
    return ImageInputError(
        f"The image {name} is too big{dims}; the limit is {MAX_PIXELS / 1e6:.0f} megapixels. "
        "Please upload a smaller picture of the digit."
    )


def editor_image(value: Mapping[str, Any] | None) -> np.ndarray | Image.Image:
    """The picture in a Gradio Sketchpad / ImageEditor value (dict of background, layers,
    composite). Uses the composite; raises ImageInputError when nothing was drawn."""
    if value is None:
        raise EmptyImageError("The drawing is empty: draw a digit on the sketchpad first.")
    composite = value.get("composite") if isinstance(value, Mapping) else value
    if composite is None:
        layers = [layer for layer in (value.get("layers") or []) if layer is not None]
        if not layers:
            raise EmptyImageError("The drawing is empty: draw a digit on the sketchpad first.")
        composite = layers[-1]
    return composite


def to_grey_float(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any PIL image or array (H, W), (H, W, 1|2|3|4) -> grey float32 (H, W) in [0, 255].

    Transparency is flattened onto a backdrop that contrasts with the visible strokes
    (white behind dark ink, black behind light ink), so a transparent PNG of a digit in
    either colour keeps its digit.
    """
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if image.mode in ("P", "PA") or (image.mode != "RGBA" and "transparency" in image.info):
        image = image.convert("RGBA")
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image.convert("F"), dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        return (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
    if image.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.float32) / 255.0
        grey = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.float32)
        weight = alpha.sum()
        if weight > 0 and alpha.min() < 1.0:
            ink = float((grey * alpha).sum() / weight)  # mean grey of what is visible
            backdrop = 255.0 if ink < 128 else 0.0
            return grey * alpha + backdrop * (1.0 - alpha)
        return grey
    return np.asarray(image.convert("L"), dtype=np.float32)


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    """(H, W) grey, or (H, W, 1|2|3|4) channels (uint8, or floats in [0, 1] or [0, 255])."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (2, 3, 4)):
        raise ImageInputError(f"Expected an image array of shape (H, W[, channels]), got {arr.shape}.")
    if arr.dtype != np.uint8:
        arr = np.asarray(arr, dtype=np.float32)
        if arr.size and arr.max() <= 1.0:
            arr = arr * 255.0
        arr = np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(arr))  # mode L, LA, RGB or RGBA by shape


def ink_map(grey: np.ndarray) -> np.ndarray:
    """Grey (H, W) in [0, 255] -> ink in [0, 1], white on black, background at exactly 0.

    The background level is the median of the border pixels: if it is light the picture is
    inverted (dark ink on paper becomes white ink on black). Levels are then stretched so the
    background is 0 and the strongest ink 1; faint noise below INK_THRESHOLD is cleared.
    Raises ImageInputError when there is no ink to find.
    """
    if grey.size == 0:
        raise ImageInputError("The image has no pixels.")
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    ink = 255.0 - grey if background > 127.5 else grey
    background = 255.0 - background if background > 127.5 else background
    strongest = float(ink.max())
    if strongest - background < MIN_CONTRAST:
        raise EmptyImageError(
            "No digit found: the picture is empty or all one colour. Draw or upload a dark "
            "digit on a light background (or a light digit on a dark one)."
        )
    out = np.clip((ink - background) / (strongest - background), 0.0, 1.0)
    out[out < INK_THRESHOLD] = 0.0
    return out.astype(np.float32)


def center_digit(ink: np.ndarray) -> np.ndarray:
    """Ink (H, W) in [0, 1] -> (28, 28) float in [0, 1], the way MNIST was made.

    Tight bounding box of the ink, scaled (keeping aspect) so its longer side is 20 pixels,
    then shifted so its centre of mass lands on the centre of the 28x28 frame.
    """
    rows = np.flatnonzero(ink.max(axis=1) > 0)
    cols = np.flatnonzero(ink.max(axis=0) > 0)
    if rows.size == 0:
        raise EmptyImageError("No digit found: the picture is empty.")
    box = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = box.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    patch = np.asarray(Image.fromarray(box).resize((new_w, new_h), Image.Resampling.LANCZOS))
    patch = np.clip(patch, 0.0, 1.0)
    total = float(patch.sum())
    if total <= 0:
        raise EmptyImageError("No digit found: the strokes are too faint.")
    ys, xs = np.indices(patch.shape)
    com_y, com_x = float((ys * patch).sum() / total), float((xs * patch).sum() / total)
    # Place the patch on a roomy canvas so any shift fits, then cut the 28x28 frame.
    pad = SIDE
    canvas = np.zeros((SIDE + 2 * pad, SIDE + 2 * pad), dtype=np.float32)
    top = pad + int(round(SIDE / 2 - com_y))
    left = pad + int(round(SIDE / 2 - com_x))
    canvas[top:top + new_h, left:left + new_w] = patch
    return canvas[pad:pad + SIDE, pad:pad + SIDE].copy()


def _shrink(image: Image.Image | np.ndarray) -> Image.Image:
    """A PIL image in a mode that resamples well (L, LA, RGB, RGBA, F), at most WORK_SIDE
    on its longer side; the box filter averages thin strokes instead of dropping them."""
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        image = image.convert("I").convert("F")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "F"):
        has_alpha = "A" in image.getbands() or "transparency" in image.info
        image = image.convert("RGBA" if has_alpha else "RGB")
    if max(image.size) > WORK_SIDE:
        image = image.copy()
        image.thumbnail((WORK_SIDE, WORK_SIDE), Image.Resampling.BOX)
    return image


def to_mnist(image: Image.Image | np.ndarray) -> torch.Tensor:
    """Any picture of a digit -> (1, 28, 28) float tensor in [0, 1], MNIST-style."""
    grey = to_grey_float(_shrink(image))
    return torch.from_numpy(center_digit(ink_map(grey))).unsqueeze(0)


def prepare_digit(image: Image.Image | np.ndarray) -> torch.Tensor:
    """A picture meant for a model -> (1, 28, 28) float in [0, 1].

    A 28x28 picture is taken as already MNIST-style (data-set images, the app's own
    previews): only made grey and white-on-black, never re-cropped, so a digit passes
    through unchanged. Any other size gets the full `to_mnist` treatment.
    """
    grey = to_grey_float(image)
    if grey.shape == (SIDE, SIDE):
        border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
        if float(np.median(border)) > 127.5:
            grey = 255.0 - grey
        return torch.from_numpy((grey / 255.0).astype(np.float32)).unsqueeze(0)
    return to_mnist(image)


def digit_from_file(source: str | os.PathLike | bytes) -> torch.Tensor:
    """An uploaded file -> (1, 28, 28) MNIST-style digit, or ImageInputError."""
    if source is None:
        raise ImageInputError("No file was uploaded. Choose an image file first.")
    return to_mnist(open_image(source))


def digit_from_drawing(value: Mapping[str, Any] | None) -> torch.Tensor:
    """A Sketchpad / ImageEditor value -> (1, 28, 28) MNIST-style digit, or ImageInputError."""
    image = editor_image(value)
    if isinstance(image, (str, os.PathLike)):
        image = open_image(image)
    try:
        return to_mnist(image)
    except EmptyImageError:
        raise EmptyImageError("The drawing is empty: draw a digit on the sketchpad first.") from None
