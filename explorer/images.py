"""Pictures in and out: any user image -> an MNIST-style digit, and tensors -> crisp pictures.

In: a drawing or an upload of any size, mode or colour is turned into what the models were
trained on, following how MNIST itself was made (LeCun et al.): grey levels, white ink on
black, the tight box around the ink scaled to fit 20x20 keeping its aspect, then placed in
28x28 so that its centre of mass sits at the centre. Anything that cannot become a digit
(an empty drawing, a damaged or non-image file, an image too big to open safely) raises
`ImageInputError` with a sentence a student understands; the UI shows it as `gr.Error`.

Out: decoded images (tensors in [0, 1]) become uint8 pictures, upscaled by whole factors
with nearest-neighbour so pixels stay crisp, tiled into labelled grids and strips, and
written as PNG or animated GIF.
"""

from __future__ import annotations

import functools
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

# Guards against huge uploads and decompression bombs (a tiny file claiming a giant image):
# the file size is checked before reading it, the pixel count before decoding it.
MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 40_000_000
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


# --------------------------------------------------------------------------- input


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


# -------------------------------------------------------------------------- output


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [0, 1], (..., 1, H, W) or (..., H, W) -> uint8 array with the channel dropped."""
    arr = images.detach().cpu().float()
    if arr.dim() >= 3 and arr.shape[-3] == 1:
        arr = arr.squeeze(-3)
    return (arr.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def tile(images: np.ndarray, gap: int = 0, gap_value: int = 0) -> np.ndarray:
    """uint8 (rows, cols, H, W) -> one (rows*H + gaps, cols*W + gaps) mosaic."""
    rows, cols, h, w = images.shape
    if gap:
        padded = np.full((rows, cols, h + gap, w + gap), gap_value, dtype=np.uint8)
        padded[:, :, :h, :w] = images
        out = padded.transpose(0, 2, 1, 3).reshape(rows * (h + gap), cols * (w + gap))
        return np.ascontiguousarray(out[: rows * (h + gap) - gap, : cols * (w + gap) - gap])
    return images.transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def upscale(images: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour upscaling of (..., H, W) by a whole factor: every pixel becomes a
    block, so the picture stays crisp however large it is shown."""
    if factor <= 1:
        return images
    return images.repeat(factor, axis=-2).repeat(factor, axis=-1)


def auto_scale(cells: int, side: int = SIDE, target: int = 560, most: int = 8) -> int:
    """Whole upscaling factor that makes `cells` tiles of `side` pixels about `target` wide."""
    return int(min(most, max(1, round(target / (cells * side)))))


@dataclass(frozen=True)
class GridGeometry:
    """Where the tiles of a labelled grid picture lie, so callers can find tile (i, j)."""

    rows: int
    cols: int
    cell: int  # tile side in output pixels (28 * scale)
    scale: int
    left: int  # margin before the first column (y-axis labels)
    top: int
    width: int
    height: int

    def tile_box(self, i: int, j: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of tile (row i, column j), bottom/right exclusive."""
        y0, x0 = self.top + i * self.cell, self.left + j * self.cell
        return y0, x0, y0 + self.cell, x0 + self.cell


_FONT_CACHE: dict[int, Any] = {}


def font(size: int) -> Any:
    if size not in _FONT_CACHE:
        try:
            _FONT_CACHE[size] = ImageFont.load_default(size=size)
        except (TypeError, OSError):  # Pillow without FreeType: fixed bitmap font
            _FONT_CACHE[size] = ImageFont.load_default()
    return _FONT_CACHE[size]


def grid_geometry(rows: int, cols: int, scale: int, labelled: bool = True) -> GridGeometry:
    """Layout of a rows x cols grid of 28-pixel tiles upscaled by `scale`, with label margins."""
    cell = SIDE * scale
    left, top = (64, 8) if labelled else (0, 0)
    bottom, right = (44, 8) if labelled else (0, 0)
    return GridGeometry(rows, cols, cell, scale, left, top,
                        left + cols * cell + right, top + rows * cell + bottom)


def labelled_grid(images: torch.Tensor, x_values: Sequence[float], y_values: Sequence[float],
                  x_name: str, y_name: str, scale: int | None = None) -> tuple[Image.Image, GridGeometry]:
    """A grid of decoded images (rows, cols, 1, 28, 28) as one greyscale picture with axes.

    Tiles are upscaled by `scale` (nearest-neighbour); the code value of every column is
    written under it and of every row left of it, with the axis names. Returns the
    picture and its geometry.
    """
    rows, cols = images.shape[:2]
    scale = scale or auto_scale(max(rows, cols))
    labels = (tuple(f"{v:+.2f}" for v in x_values), tuple(f"{v:+.2f}" for v in y_values), x_name, y_name)
    frame, geo = _frame(rows, cols, scale, labels)
    canvas = frame.copy()
    mosaic = tile(upscale(to_uint8(images), scale))
    canvas[geo.top:geo.top + rows * geo.cell, geo.left:geo.left + cols * geo.cell] = mosaic
    return Image.fromarray(canvas), geo


@functools.lru_cache(maxsize=64)
def _frame(rows: int, cols: int, scale: int,
           labels: tuple[tuple[str, ...], tuple[str, ...], str, str]) -> tuple[np.ndarray, GridGeometry]:
    """The white margins and axis labels of a grid picture, drawn once per layout and labels
    (drawing text costs more than decoding a small grid; slider drags revisit the same axes)."""
    x_text, y_text, x_name, y_name = labels
    geo = grid_geometry(rows, cols, scale)
    picture = Image.new("L", (geo.width, geo.height), 255)
    draw = ImageDraw.Draw(picture)
    small = font(12 if geo.cell >= 40 else 10)
    label_every = max(1, int(np.ceil(40 / geo.cell)))  # skip labels that would overlap
    below = geo.top + rows * geo.cell + 3
    for j, text in enumerate(x_text):
        if j % label_every == 0 or j == cols - 1:
            draw.text((geo.left + j * geo.cell + geo.cell // 2, below), text, fill=0, font=small, anchor="ma")
    draw.text((geo.left + cols * geo.cell // 2, below + 18), x_name, fill=0, font=font(13), anchor="ma")
    for i, text in enumerate(y_text):
        if i % label_every == 0 or i == rows - 1:
            draw.text((geo.left - 4, geo.top + i * geo.cell + geo.cell // 2), text, fill=0, font=small,
                      anchor="rm")
    draw.text((4, geo.top), y_name, fill=0, font=font(13), anchor="la")
    frame = np.asarray(picture)
    frame.setflags(write=False)
    return frame, geo


def mosaic(images: torch.Tensor, cols: int, scale: int, gap: int = 2) -> Image.Image:
    """Images (rows * cols, 1, 28, 28) in rows of `cols` as one crisp greyscale picture,
    upscaled by `scale` (nearest-neighbour), with grey gaps between the tiles."""
    tiles = to_uint8(images)
    if len(tiles) % cols:
        raise ValueError(f"{len(tiles)} images do not fill rows of {cols}")
    tiles = tiles.reshape(-1, cols, *tiles.shape[-2:])  # (rows, cols, 28, 28)
    return Image.fromarray(tile(upscale(tiles, scale), gap=gap, gap_value=128))


def strip(images: torch.Tensor, scale: int | None = None, gap: int = 2) -> Image.Image:
    """Images (T, 1, 28, 28) side by side as one crisp greyscale picture (grey gaps)."""
    scale = scale or auto_scale(len(images), target=840, most=6)
    return mosaic(images, len(images), scale, gap)


def frames(images: torch.Tensor, scale: int = 6) -> list[Image.Image]:
    """Images (T, 1, 28, 28) -> T upscaled greyscale frames (for an animation)."""
    return [Image.fromarray(a) for a in upscale(to_uint8(images), scale)]


def png_bytes(picture: Image.Image | np.ndarray) -> bytes:
    """Encode a picture as PNG bytes (lossless)."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(pictures: Sequence[Image.Image], frame_ms: int = 120, bounce: bool = True) -> bytes:
    """Encode frames as a looping animated GIF; with `bounce` it plays forward then back."""
    if not pictures:
        raise ValueError("an animation needs at least one frame")
    seq = list(pictures)
    if bounce and len(seq) > 2:
        seq = seq + seq[-2:0:-1]
    buf = io.BytesIO()
    seq[0].save(buf, format="GIF", save_all=True, append_images=seq[1:], duration=frame_ms,
                loop=0, disposal=1)
    return buf.getvalue()
