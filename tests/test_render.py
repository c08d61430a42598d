"""explorer.render: tensors -> exact uint8 pictures, labelled grids whose tiles lie where their
geometry says, strips, PNG and GIF bytes; generation frames, receptive-field regions and heat colours."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image

from explorer import render


def test_to_uint8_and_upscale_are_exact():
    x = torch.tensor([[[[0.0, 0.5], [1.0, 0.2]]]])
    a = render.to_uint8(x)
    assert a.dtype == np.uint8 and a.shape == (1, 2, 2)
    assert a.tolist() == [[[0, 128], [255, 51]]]
    up = render.upscale(a[0], 3)
    assert up.shape == (6, 6) and np.all(up[:3, 3:] == 128) and np.all(up[3:, :3] == 255)


def test_labelled_grid_puts_each_tile_where_its_geometry_says():
    tiles = torch.rand(3, 4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    picture, geo = render.labelled_grid(tiles, [-1, 0, 1, 2], [1, 0, -1], "z0", "z1", scale=2)
    assert picture.mode == "L" and picture.size == (geo.width, geo.height)
    arr = np.asarray(picture)
    expected = render.to_uint8(tiles)
    for i in range(3):
        for j in range(4):
            top, left, bottom, right = geo.tile_box(i, j)
            assert np.array_equal(arr[top:bottom:2, left:right:2], expected[i, j])
            assert np.all(arr[top:bottom, left:right][1::2, 1::2] == expected[i, j])  # crisp blocks
    assert arr[:, : geo.left].min() < 128  # axis labels were drawn in the margin


def test_strip_png_and_gif():
    frames = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    pic = render.strip(frames, scale=2, gap=2)
    assert pic.size == (5 * 56 + 4 * 2, 56)
    png = Image.open(io.BytesIO(render.png_bytes(pic)))
    assert np.array_equal(np.asarray(png), np.asarray(pic))  # lossless
    gif = Image.open(io.BytesIO(render.gif_bytes(render.frames(frames, scale=3))))
    assert gif.size == (84, 84) and gif.n_frames == 8  # forward 5, back 3
    assert gif.info.get("loop") == 0


def test_generation_frame_marks_later_pixels_and_the_current_one():
    image = torch.rand(6, 1, 28, 28)
    picture = np.asarray(render.generation_frame(image, 100, scale=4))
    cols = render.grid_columns(6)
    assert cols == 3 and picture.shape == (2 * 28 * 4 + 2, 3 * 28 * 4 + 4, 3)
    row, col = divmod(100, 28)
    top, left = row * 4, col * 4
    assert (picture[top, left + 1] == render.MARK).all()                  # the outline
    assert (picture[27 * 4 + 2, 27 * 4 + 2] == render.UNDECIDED).all()   # the last pixel: not drawn yet
    v = int(render.to_uint8(image[0, 0, 0, 0]))
    assert (picture[2, 2] == v).all()                                       # pixel 0 as it is


def test_field_regions_split_the_unseen_earlier_pixels():
    # A PixelCNN-like field at (5, 5): a triangle up-left within 2 rows / 3 columns.
    field = torch.zeros(10, 10)
    for r in range(3, 6):
        for c in range(2, 6 + (5 - r)):
            if (r, c) < (5, 5):
                field[r, c] = 1.0
    field[5, 2:5] = 0.5
    counts = render.field_counts(field, 5, 5)
    seen, blind, far = render.field_regions(field, 5, 5)
    assert counts.earlier == 55 and counts.seen == int((field > 0).sum())
    assert counts.seen + counts.blind + counts.out_of_reach == counts.earlier
    assert blind[3, 8] and not blind[0, 0] and far[0, 0] and far[5, 0]
    full = torch.ones(10, 10)
    assert render.field_counts(full, 5, 5).blind == 0


def test_heat_colours_run_from_black_to_pale_yellow():
    colours = render.heat_colours(np.array([0.0, 2.0, 4.0, 100.0]), vmax=4.0)
    assert (colours[0] == render.HEAT_ANCHORS[0]).all() and (colours[2] == render.HEAT_ANCHORS[-1]).all()
    assert (colours[3] == colours[2]).all()            # clipped above the scale
    assert colours.sum(1)[0] < colours.sum(1)[1] < colours.sum(1)[2]
