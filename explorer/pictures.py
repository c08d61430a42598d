"""Colour pictures for the autoregressive views, drawn with numpy and PIL.

  - `generation_frame`: samples as they are being generated, undecided pixels tinted and the
    current pixel outlined;
  - `receptive_field_picture`: which pixels a prediction depends on, with the blind spot
    (earlier pixels within its reach that it cannot see) in its own colour;
  - `heat_map`: a per-pixel value (NLL) on a fixed colour scale, with a colour bar;
  - `bar_chart`: a small bar chart (a predictive distribution).

They are plain pictures rather than plot components on purpose: a stream of 15 frames a
second then costs the browser one image swap per frame, not a plot re-layout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from .images import font, tile, to_uint8, upscale

UNDECIDED = (52, 70, 104)      # pixels not generated yet
MARK = (235, 52, 52)           # the current pixel
GIVEN_EDGE = (245, 190, 40)    # the line under the given rows of a completion
UNSEEN = (24, 24, 28)          # pixels a prediction cannot depend on (later ones)
BLIND = (214, 118, 24)         # earlier pixels within its reach that it cannot see: the blind spot
OUT_OF_REACH = (84, 84, 96)    # earlier pixels further away than its layers reach
SEEN_LOW, SEEN_HIGH = np.array([28, 84, 56]), np.array([150, 255, 178])
GAP = 2
# Heat-map colours from cold to hot (black, purple, red, orange, pale yellow).
HEAT_ANCHORS = np.array([[0, 0, 4], [72, 12, 106], [182, 44, 82], [246, 132, 22], [252, 250, 164]], float)


def _tile_rgb(tiles: np.ndarray, cols: int) -> np.ndarray:
    """uint8 (N, h, w, 3) -> one (rows*h + gaps, cols*w + gaps, 3) mosaic with grey gaps."""
    n, h, w, _ = tiles.shape
    if n % cols:
        raise ValueError(f"{n} images do not fill rows of {cols}")
    grid = tiles.reshape(n // cols, cols, h, w, 3)
    return np.stack([tile(grid[..., k], gap=GAP, gap_value=128) for k in range(3)], axis=-1)


def grid_columns(n: int) -> int:
    """Columns for n samples: as square as possible (16 -> 4 x 4, 6 -> 3 x 2)."""
    cols = int(np.ceil(np.sqrt(n)))
    while n % cols:
        cols += 1
    return cols


def generation_frame(image: torch.Tensor, index: int, given: torch.Tensor | None = None,
                     scale: int = 6) -> Image.Image:
    """Samples (N, 1, H, W) in [0, 1] with pixels 0..index (raster order) decided.

    Later pixels are drawn in a flat blue (not generated yet) unless given (completion);
    pixel `index` is outlined in red in every sample, and the given rows are underlined.
    `given` is the (H, W) mask of given pixels, or None.
    """
    n, _, height, width = image.shape
    grey = to_uint8(image).reshape(n, height, width)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    later = (np.arange(height * width) > index).reshape(height, width)
    if given is not None:
        later &= ~given.cpu().numpy().astype(bool)
    rgb[:, later] = UNDECIDED
    big = upscale(rgb.transpose(0, 3, 1, 2), scale).transpose(0, 2, 3, 1).copy()  # (N, H*s, W*s, 3)
    row, col = divmod(index, width)
    top, left = row * scale, col * scale
    edge = max(1, scale // 4)
    for y0, y1, x0, x1 in ((top, top + edge, left, left + scale), (top + scale - edge, top + scale, left, left + scale),
                           (top, top + scale, left, left + edge), (top, top + scale, left + scale - edge, left + scale)):
        big[:, y0:y1, x0:x1] = MARK
    if given is not None and given.any():
        rows_given = int(given.any(dim=1).nonzero().max()) + 1
        if rows_given < height:
            big[:, rows_given * scale - 1: rows_given * scale + 1] = GIVEN_EDGE
    return Image.fromarray(_tile_rgb(big, grid_columns(n)))


@dataclass(frozen=True)
class FieldCounts:
    """What a prediction at one pixel can see among the pixels before it."""

    earlier: int        # pixels before it in raster order
    seen: int           # of those, how many it depends on
    blind: int          # unseen earlier pixels within the field's reach: the blind spot
    out_of_reach: int   # unseen earlier pixels beyond it (too far up or sideways)


def field_regions(field: torch.Tensor, row: int, col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seen, blind, out of reach) boolean maps (H, W) of the earlier pixels.

    The reach is the band of rows from the highest seen pixel down to `row`, and the columns
    within the widest sideways distance of a seen pixel: an unseen earlier pixel inside it is
    a hole in the field (PixelCNN's blind spot, up and to the right), one outside it is only
    further than the layers reach.
    """
    height, width = field.shape
    f = field.detach().cpu().numpy()
    earlier = (np.arange(height * width) < row * width + col).reshape(height, width)
    seen = earlier & (f > 0)
    unseen = earlier & ~seen
    if not seen.any():
        return seen, np.zeros_like(seen), unseen
    rows, cols = np.nonzero(seen)
    side = np.abs(cols - col).max()
    r, c = np.mgrid[:height, :width]
    inside = (r >= rows.min()) & (np.abs(c - col) <= side)
    return seen, unseen & inside, unseen & ~inside


def field_counts(field: torch.Tensor, row: int, col: int) -> FieldCounts:
    """Count the seen, blind and out-of-reach earlier pixels of a receptive-field map (H, W)."""
    seen, blind, far = field_regions(field, row, col)
    return FieldCounts(row * field.shape[1] + col, int(seen.sum()), int(blind.sum()), int(far.sum()))


def receptive_field_picture(field: torch.Tensor, row: int, col: int, scale: int = 8) -> Image.Image:
    """A receptive-field map (H, W), values in [0, 1], as colours.

    Seen pixels are green, brighter for a larger gradient (on a log scale: four decades);
    earlier pixels in the blind spot are orange, those out of reach grey; later pixels are
    dark; the pixel itself is red.
    """
    f = field.detach().cpu().numpy().astype(np.float64)
    strength = np.clip(1 + np.log10(np.maximum(f, 1e-12)) / 4, 0, 1)[..., None]
    rgb = np.where(f[..., None] > 0, SEEN_LOW + strength * (SEEN_HIGH - SEEN_LOW), UNSEEN)
    _, blind, far = field_regions(field, row, col)
    rgb[blind] = BLIND
    rgb[far] = OUT_OF_REACH
    rgb[row, col] = MARK
    return Image.fromarray(upscale(rgb.round().astype(np.uint8).transpose(2, 0, 1), scale).transpose(1, 2, 0).copy())


def heat_colours(values: np.ndarray, vmax: float) -> np.ndarray:
    """Values -> uint8 RGB on the heat scale, 0 black to `vmax` (and above) pale yellow."""
    t = np.clip(np.asarray(values, float) / vmax, 0, 1) * (len(HEAT_ANCHORS) - 1)
    low = np.minimum(t.astype(int), len(HEAT_ANCHORS) - 2)
    frac = (t - low)[..., None]
    return (HEAT_ANCHORS[low] * (1 - frac) + HEAT_ANCHORS[low + 1] * frac).round().astype(np.uint8)


def heat_map(values: torch.Tensor, image: torch.Tensor, vmax: float, unit: str, scale: int = 6) -> Image.Image:
    """The image as scored (H, W in [0, 1]) beside its per-pixel values (H, W) as a heat map,
    with a colour bar from 0 to `vmax` `unit` (values above it take the top colour)."""
    height, width = values.shape
    grey = np.repeat(to_uint8(image.reshape(height, width))[..., None], 3, axis=-1)
    heat = heat_colours(values.detach().cpu().numpy(), vmax)
    pair = np.stack([grey, heat])                                        # (2, H, W, 3)
    big = upscale(pair.transpose(0, 3, 1, 2), scale).transpose(0, 2, 3, 1)
    top = _tile_rgb(np.ascontiguousarray(big), 2)
    bar_height, margin = 12, 22
    canvas = Image.new("RGB", (top.shape[1], top.shape[0] + bar_height + margin + 4), (255, 255, 255))
    canvas.paste(Image.fromarray(top), (0, 0))
    bar = heat_colours(np.linspace(0, vmax, width * scale), vmax)[None].repeat(bar_height, axis=0)
    x0 = width * scale + GAP
    canvas.paste(Image.fromarray(bar), (x0, top.shape[0] + 4))
    draw = ImageDraw.Draw(canvas)
    y = top.shape[0] + bar_height + 6
    draw.text((x0, y), "0", fill=(0, 0, 0), font=font(11))
    draw.text((x0 + width * scale, y), f"{vmax:g}+ {unit}", fill=(0, 0, 0), font=font(11), anchor="ra")
    draw.text((0, y), "as scored", fill=(0, 0, 0), font=font(11))
    return canvas


def bar_chart(values: Sequence[float], *, y_max: float, title: str, ticks: dict[int, str],
              highlight: Sequence[int] = (), size: tuple[int, int] = (380, 190)) -> Image.Image:
    """Bars for `values` (one per x position), 0 to `y_max`; `ticks` labels chosen bars and
    `highlight` bars are red. A title above, the y range at the left."""
    width, height = size
    left, right, top, bottom = 34, 8, 22, 20
    canvas = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((left, 3), title, fill=(0, 0, 0), font=font(12))
    plot_w, plot_h = width - left - right, height - top - bottom
    draw.line([(left, top), (left, top + plot_h), (left + plot_w, top + plot_h)], fill=(90, 90, 90))
    draw.text((left - 3, top), f"{y_max:g}", fill=(0, 0, 0), font=font(10), anchor="ra")
    draw.text((left - 3, top + plot_h), "0", fill=(0, 0, 0), font=font(10), anchor="rd")
    n = len(values)
    step = plot_w / max(n, 1)
    lit = set(highlight)
    for i, v in enumerate(values):
        h = plot_h * min(max(float(v), 0.0), y_max) / y_max
        x0, x1 = left + i * step + (0.15 * step if step > 4 else 0), left + (i + 1) * step - (0.15 * step if step > 4 else 0)
        if h > 0:
            draw.rectangle([x0, top + plot_h - h, max(x0, x1 - 1), top + plot_h], fill=MARK if i in lit else (70, 110, 170))
        elif i in lit:
            draw.line([(x0, top + plot_h - 2), (x1, top + plot_h - 2)], fill=MARK, width=2)
        if i in ticks:
            draw.text(((x0 + x1) / 2, top + plot_h + 3), ticks[i], fill=(0, 0, 0), font=font(10), anchor="ma")
    return canvas
