"""Picture rendering: tensors in [0, 1] -> crisp pictures, and pictures -> PNG or GIF bytes.

Grey pictures of digits: upscaled by whole factors with nearest-neighbour so pixels stay
crisp, tiled into labelled grids (`labelled_grid`), mosaics and strips, and written as PNG or
animated GIF. Colour pictures for the autoregressive views:

  - `generation_frame`: samples as they are being generated, undecided pixels tinted and the
    current pixel outlined;
  - `receptive_field_picture`: which pixels a prediction depends on, with the blind spot
    (earlier pixels within its reach that it cannot see) in its own colour;
  - `heat_map`: a per-pixel value (NLL) on a fixed colour scale, with a colour bar;
  - `bar_chart`: a small bar chart (a predictive distribution);
  - `code_map`: a VQ-VAE's decoded image under its grid of codes, each cell numbered, cells
    not drawn yet hatched, the current and the selected cell outlined.

They are plain pictures rather than plot components on purpose: a stream of 15 frames a
second then costs the browser one image swap per frame, not a plot re-layout.
"""

from __future__ import annotations

import functools
import io
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

# An MNIST image's side: the tile of every grid, mosaic and strip.
SIDE = 28


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
    # The y name runs up the left edge at mid-height: at the top-left corner the page's caption
    # of the picture would cover it.
    name_font = font(13)
    box = draw.textbbox((0, 0), y_name, font=name_font)
    label = Image.new("L", (box[2] - box[0] + 2, box[3] - box[1] + 2), 255)
    ImageDraw.Draw(label).text((1 - box[0], 1 - box[1]), y_name, fill=0, font=name_font)
    label = label.rotate(90, expand=True)
    picture.paste(label, (2, max(geo.top, geo.top + rows * geo.cell // 2 - label.height // 2)))
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


def strip_scale(count: int) -> int:
    """The upscaling factor of a strip of `count` pictures on the page (about 840 px wide)."""
    return auto_scale(count, target=840, most=6)


def strip(images: torch.Tensor, scale: int | None = None, gap: int = 2) -> Image.Image:
    """Images (T, 1, 28, 28) side by side as one crisp greyscale picture (grey gaps)."""
    return mosaic(images, len(images), scale or strip_scale(len(images)), gap)


# Downloads for slides: every pixel of a 28x28 picture at least this many pixels wide, so a
# projector shows crisp blocks rather than the browser's blur.
SLIDE_SCALE = 8


def slide_ready(picture: Image.Image, scale: int, least: int = SLIDE_SCALE) -> Image.Image:
    """A picture whose digit pixels are `scale` pixels wide, enlarged by a whole factor with
    nearest-neighbour until they are at least `least` wide (labels and gaps grow alike, so
    the layout stays as on the page)."""
    factor = -(-least // max(int(scale), 1))
    if factor <= 1:
        return picture
    return picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)


def frames(images: torch.Tensor, scale: int = 6) -> list[Image.Image]:
    """Images (T, 1, 28, 28) -> T upscaled greyscale frames (for an animation)."""
    return [Image.fromarray(a) for a in upscale(to_uint8(images), scale)]


def png_bytes(picture: Image.Image | np.ndarray, level: int = 6) -> bytes:
    """Encode a picture as PNG bytes (lossless); `level`: zlib's, 0-9 (6 is PIL's default;
    1 encodes a 9x9 grid picture in 3.5 ms instead of 6.0, at 38 kB instead of 31)."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=level)
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


# ------------------------------------------------------------- colour pictures (autoregressive views)

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


SELECTED = (245, 190, 40)      # the cell a person picked (code-map editor)
CODE_TEXT = (255, 236, 140)    # code numbers over the picture
GRID_LINE = (110, 110, 130)


@dataclass(frozen=True)
class CodeMapGeometry:
    """Where the cells of a code-map picture lie: cell (r, c) spans rows r*cell .. (r+1)*cell."""

    rows: int
    cols: int
    cell: int   # side of one code's cell, in output pixels

    def cell_at(self, x: float, y: float) -> tuple[int, int]:
        """The (row, column) of the cell under picture pixel (x, y), clamped to the grid."""
        return (min(max(int(y // self.cell), 0), self.rows - 1), min(max(int(x // self.cell), 0), self.cols - 1))


def code_map_geometry(codes_shape: tuple[int, int], image_side: int = SIDE, scale: int = 11) -> CodeMapGeometry:
    rows, cols = codes_shape
    return CodeMapGeometry(rows, cols, image_side * scale // rows)


def code_map(image: torch.Tensor, codes: torch.Tensor, *, current: tuple[int, int] | None = None,
             selected: tuple[int, int] | None = None, scale: int = 11) -> Image.Image:
    """A decoded image (1, H, W) in [0, 1] under its code grid (h, w) of integers, -1 where no
    code is drawn yet: the image upscaled by `scale`, grid lines between the cells, each
    drawn cell's code written in its corner, undrawn cells tinted blue and hatched, the
    `current` cell outlined in red and the `selected` one in yellow."""
    grey = to_uint8(image.reshape(image.shape[-2:]))                          # (H, W)
    big = upscale(np.repeat(grey[None], 3, axis=0), scale).transpose(1, 2, 0).copy()   # (H*s, W*s, 3)
    codes = codes.detach().cpu().long()
    geo = code_map_geometry(tuple(codes.shape), grey.shape[0], scale)
    cell = geo.cell
    undrawn = (codes < 0).numpy()
    if undrawn.any():
        mask = upscale(undrawn.astype(np.uint8), cell).astype(bool)
        yy, xx = np.mgrid[:mask.shape[0], :mask.shape[1]]
        hatch = ((xx + yy) % 10) < 2
        tint = (0.35 * big[mask] + 0.65 * np.array(UNDECIDED)).round().astype(np.uint8)
        big[mask] = tint
        big[mask & hatch] = (150, 175, 225)
    picture = Image.fromarray(big)
    draw = ImageDraw.Draw(picture)
    for k in range(1, geo.rows):
        draw.line([(0, k * cell), (big.shape[1], k * cell)], fill=GRID_LINE)
    for k in range(1, geo.cols):
        draw.line([(k * cell, 0), (k * cell, big.shape[0])], fill=GRID_LINE)
    small = font(max(10, cell // 4))
    for r in range(geo.rows):
        for c in range(geo.cols):
            code = int(codes[r, c])
            if code >= 0:
                draw.text((c * cell + 3, r * cell + 2), str(code), fill=CODE_TEXT, font=small,
                          stroke_width=2, stroke_fill=(0, 0, 0))
    for place, colour in ((selected, SELECTED), (current, MARK)):
        if place is not None:
            r, c = place
            draw.rectangle([c * cell, r * cell, (c + 1) * cell - 1, (r + 1) * cell - 1], outline=colour,
                           width=max(2, cell // 14))
    return picture
