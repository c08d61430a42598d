"""explorer.intake: any picture -> an MNIST-style digit, and a clear error for what cannot become one."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from explorer import intake
from tests.helpers import png_with_size, seven


def bbox(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(a.max(1) > 0), np.flatnonzero(a.max(0) > 0)
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    ys, xs = np.indices(a.shape)
    return float((ys * a).sum() / a.sum()), float((xs * a).sum() / a.sum())


# ----------------------------------------------------------------------------- input


def test_a_dark_digit_on_paper_becomes_an_mnist_digit():
    x = intake.to_mnist(seven())
    assert x.shape == (1, 28, 28) and x.dtype == torch.float32
    a = x[0].numpy()
    assert a.min() == 0.0 and a.max() == pytest.approx(1.0, abs=0.02)
    assert a[0].max() == 0 and a[:, 0].max() == 0  # black background, white ink
    assert max(bbox(a)) in (20, 21)  # longer side scaled to 20 (resampling may bleed a pixel)
    cy, cx = centre_of_mass(a)
    assert abs(cy - 14) <= 1.0 and abs(cx - 14) <= 1.0


def test_polarity_colour_and_size_do_not_matter():
    reference = intake.to_mnist(seven())
    variants = [
        seven(ink="white", paper="black"),
        seven(ink=(200, 20, 20), paper=(180, 220, 255)),
        seven(size=(3000, 2000), width=120),
        seven().resize((90, 60), Image.Resampling.BILINEAR),
    ]
    for img in variants:
        x = intake.to_mnist(img)
        assert x.shape == (1, 28, 28)
        assert (x - reference).abs().mean() < 0.08, img


def test_aspect_ratio_is_kept():
    img = Image.new("L", (400, 400), 255)
    ImageDraw.Draw(img).line([(200, 50), (200, 350)], fill=0, width=30)  # a '1': tall and thin
    h, w = bbox(intake.to_mnist(img)[0].numpy())
    assert h in (20, 21) and w <= 4


@pytest.mark.parametrize("mode", ["1", "L", "P", "LA", "RGBA", "CMYK", "I", "I;16", "F"])
def test_any_pil_mode(mode):
    base = seven()
    img = base.convert("L").convert("I").convert(mode) if mode.startswith("I") else base.convert(mode)
    if mode == "F":
        img = base.convert("F")
    assert (intake.to_mnist(img) - intake.to_mnist(base)).abs().max() < 0.1


def test_transparent_backgrounds_with_either_ink_colour():
    for ink in ((0, 0, 0, 255), (255, 255, 255, 255)):
        img = Image.new("RGBA", (300, 300), (ink[0], ink[1], ink[2], 0))
        ImageDraw.Draw(img).ellipse([60, 40, 240, 260], outline=ink, width=25)
        x = intake.to_mnist(img)[0].numpy()
        assert x[14, 14] == 0 and x.max() > 0.9  # a ring: hollow middle, bright stroke
        assert max(bbox(x)) in (20, 21)


def test_arrays_from_the_sketchpad_any_channels():
    rgba = np.asarray(seven().convert("RGBA"))
    for arr in (rgba, rgba[:, :, :3], rgba[:, :, 0], rgba[:, :, :1], rgba[:, :, 0] / 255.0):
        assert intake.to_mnist(arr).shape == (1, 28, 28)
    value = {"background": None, "layers": [], "composite": rgba}
    assert intake.digit_from_drawing(value).sum() > 10


@pytest.mark.parametrize("value", [
    None,
    {"background": None, "layers": [], "composite": None},
    {"background": None, "layers": [], "composite": np.full((280, 280, 4), 255, np.uint8)},
    {"background": None, "layers": [], "composite": np.zeros((280, 280, 4), np.uint8)},
])
def test_an_empty_drawing_says_so(value):
    with pytest.raises(intake.EmptyImageError, match="drawing is empty"):
        intake.digit_from_drawing(value)


def test_a_blank_upload_says_there_is_no_digit():
    with pytest.raises(intake.EmptyImageError, match="No digit found"):
        intake.to_mnist(Image.new("RGB", (200, 100), (120, 130, 140)))


def test_prepare_digit_passes_28x28_digits_through_unchanged():
    digit = (np.arange(784).reshape(28, 28) % 256).astype(np.uint8)
    digit[0, :] = digit[-1, :] = digit[:, 0] = digit[:, -1] = 0
    x = intake.prepare_digit(digit)
    assert torch.equal(x[0], torch.from_numpy(digit.astype(np.float32) / 255.0))
    inverted = intake.prepare_digit(255 - digit)  # black on white: only the polarity flips
    assert torch.allclose(inverted, x)
    assert intake.prepare_digit(np.asarray(seven())).shape == (1, 28, 28)  # other sizes: full treatment


# ------------------------------------------------------------------------ bad files


def test_files_that_are_not_images(tmp_path: Path):
    text = tmp_path / "notes.txt"
    text.write_text("a shopping list, not a picture")
    with pytest.raises(intake.ImageInputError, match="not an image"):
        intake.digit_from_file(text)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(intake.ImageInputError, match="empty"):
        intake.digit_from_file(empty)
    with pytest.raises(intake.ImageInputError, match="No file"):
        intake.digit_from_file(None)


def test_a_corrupt_image(tmp_path: Path):
    buf = io.BytesIO()
    seven().save(buf, format="PNG")
    broken = tmp_path / "broken.png"
    broken.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(intake.ImageInputError, match="damaged"):
        intake.digit_from_file(broken)


def test_a_decompression_bomb_is_refused_before_decoding(tmp_path: Path):
    for w, h in ((10_000, 10_000), (100_000, 100_000)):  # over our cap; over PIL's own limit
        bomb = tmp_path / f"bomb{w}.png"
        bomb.write_bytes(png_with_size(w, h))
        assert bomb.stat().st_size < 200
        with pytest.raises(intake.ImageInputError, match="too big"):
            intake.digit_from_file(bomb)


def test_a_file_over_the_size_limit(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 1000)
    big = tmp_path / "big.bmp"
    seven((100, 100)).save(big)  # ~30 kB
    with pytest.raises(intake.ImageInputError, match="too large"):
        intake.digit_from_file(big)


def test_uploads_in_common_formats(tmp_path: Path):
    reference = intake.to_mnist(seven())
    for suffix in ("png", "jpg", "gif", "bmp", "webp"):
        path = tmp_path / f"seven.{suffix}"
        seven().save(path)
        assert (intake.digit_from_file(path) - reference).abs().mean() < 0.05, suffix
    assert intake.digit_from_file((tmp_path / "seven.png").read_bytes()).shape == (1, 28, 28)


def test_exif_rotation_is_applied(tmp_path: Path):
    upright = seven()
    stored = upright.rotate(90, expand=True)  # stored turned; EXIF says turn it back
    exif = Image.Exif()
    exif[274] = 6  # rotate 90 CW to display
    path = tmp_path / "phone.jpg"
    stored.save(path, exif=exif)
    assert (intake.digit_from_file(path) - intake.to_mnist(upright)).abs().mean() < 0.05
