"""The latent grid tab (`/grid`): every tile is the decoded code the settings ask for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from explorer import latent
from tests.helpers import expected_tiles, grid_tiles, model_code_image, picture


def test_grid_shape_dims_and_fixed_code(client, catalog):
    seed, span, size = 5, 2.0, 5
    base = latent.seeded_code(catalog.checkpoint("mnist-vae", "latent").model, seed)
    results = {}
    for dx, dy in ((0, 1), (2, 3)):
        path, code = client.predict("mnist-vae", dx, dy, span, size, "random draw (seed)", seed, None, None,
                                    api_name="/grid")
        assert code == pytest.approx(base.tolist(), abs=1e-4)  # the fixed code is the seeded draw
        tiles = grid_tiles(path, size)
        expected = expected_tiles(catalog, "mnist-vae", base, dx, dy, span, size)
        assert np.abs(tiles.astype(int) - expected).max() <= 1  # every tile: base with (dx, dy) swept
        results[(dx, dy)] = tiles
    assert np.abs(results[(0, 1)].astype(int) - results[(2, 3)]).mean() > 0.5  # other dims, other grid


def test_grid_sizes_and_fixed_at_the_mean(client, catalog):
    for size in (3, 15):
        path, code = client.predict("mnist-ae", 1, 0, 1.5, size, "prior mean", 0, None, None, api_name="/grid")
        assert code == pytest.approx(catalog.checkpoint("mnist-ae", "latent").model.latent_mean().tolist())
        assert grid_tiles(path, size).shape == (size, size, 28, 28)


def test_grid_fixed_at_an_encoded_image(client, catalog):
    preview, caption = client.predict("mnist-vae", 7, api_name="/grid_image_from_example")
    assert "test image #7" in caption
    path, code = client.predict("mnist-vae", 0, 3, 2.0, 3, "encoded image", 0, handle_file(preview), None,
                                api_name="/grid")
    z = model_code_image(catalog, "mnist-vae", preview)
    assert code == pytest.approx(z.tolist(), abs=1e-4)
    assert np.abs(grid_tiles(path, 3).astype(int) - expected_tiles(catalog, "mnist-vae", z, 0, 3, 2.0, 3)).max() <= 1


def test_grid_of_a_conditional_model_follows_the_class(client, catalog):
    a, _ = client.predict("mnist-cvae", 0, 1, 2.0, 3, "prior mean", 0, None, 2, api_name="/grid")
    b, _ = client.predict("mnist-cvae", 0, 1, 2.0, 3, "prior mean", 0, None, 8, api_name="/grid")
    base = latent.prior_mean(catalog.checkpoint("mnist-cvae", "latent").model)
    assert np.abs(grid_tiles(a, 3).astype(int) - expected_tiles(catalog, "mnist-cvae", base, 0, 1, 2.0, 3, 2)).max() <= 1
    assert not np.array_equal(picture(a), picture(b))


def test_grid_refuses_bad_settings_with_a_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="two different latent dimensions"):
        client.predict("mnist-vae", 2, 2, 2.0, 5, "prior mean", 0, None, None, api_name="/grid")
    with pytest.raises(AppError, match="Choose an image to encode"):
        client.predict("mnist-vae", 0, 1, 2.0, 5, "encoded image", 0, None, None, api_name="/grid")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("nope", 0, 1, 2.0, 5, "prior mean", 0, None, None, api_name="/grid")


def test_a_gan_in_the_grid_tab(client, catalog):
    gan = "mnist-dcgan"
    path, code = client.predict(gan, 2, 5, 2.0, 3, "prior mean", 0, None, None, api_name="/grid")
    base = latent.prior_mean(catalog.checkpoint(gan, "latent").model)
    assert np.abs(grid_tiles(path, 3).astype(int) - expected_tiles(catalog, gan, base, 2, 5, 2.0, 3)).max() <= 1
    preview, _ = client.predict(gan, 0, api_name="/grid_image_from_example")
    path, code = client.predict(gan, 0, 1, 2.0, 3, "encoded image", 0, handle_file(preview), None,
                                api_name="/grid")
    assert code == pytest.approx(model_code_image(catalog, gan, preview).tolist(), abs=1e-4)  # the inversion


def test_dimension_sliders_span_the_start_models_code(server, catalog):
    """On page load the axis sliders span the start model's dims (4 here), not the widest model's."""
    config = server[1].config
    sliders = {c["props"]["label"]: c["props"] for c in config["components"]
               if c.get("props", {}).get("label") in ("x-axis dimension", "y-axis dimension")}
    start = catalog.checkpoint("mnist-vae", "latent").model.latent_dim
    assert sliders and all(p["maximum"] == start - 1 for p in sliders.values())


def test_a_dimension_past_the_code_is_a_sentence_not_a_substitute(client):
    with pytest.raises(AppError, match=r"VAE, 4-D \(MNIST\) has 4 latent dimensions, z0 to z3: there is no z40"):
        client.predict("mnist-vae", 40, 1, 2.0, 3, "prior mean", 0, None, None, api_name="/grid")
    # A wider model than the page started on is still accepted (the range follows the model).
    path, _ = client.predict("mnist-dcgan", 6, 7, 2.0, 3, "prior mean", 0, None, None, api_name="/grid")
    assert grid_tiles(path, 3).shape == (3, 3, 28, 28)


def test_moving_an_axis_onto_the_other_swaps_them(services):
    from explorer.ui import grid

    # ArrowRight on x from (0, 1): x lands on y, and y takes x's old place.
    assert grid.moved_axes("x", 1, 1, (0, 1), 4, "m") == (1, 0, "")
    assert grid.moved_axes("y", 2, 2, (2, 3), 4, "m") == (3, 2, "")
    dx, dy, note = grid.moved_axes("x", 40, 1, (0, 1), 4, "VAE, 4-D (MNIST)")
    assert (dx, dy) == (3, 1) and note == ("VAE, 4-D (MNIST) has 4 latent dimensions, z0 to z3: there is no z40. "
                                           "Showing z3 instead.")
    picture, code, dx, dy, axes = grid.axis_moved(services, "x", "mnist-vae", 1, 1, (0, 1), 2.0, 3,
                                                  "prior mean", 0, None, None)
    assert (dx, dy, axes) == (1, 0, (1, 0))
    want, _ = grid.grid_picture(services, "mnist-vae", 1, 0, 2.0, 3, "prior mean", 0, None, None)
    assert np.array_equal(np.asarray(picture), np.asarray(want))


def test_after_a_model_switch_the_grid_is_drawn_on_the_new_models_axes(server, tmp_path):
    from gradio_client import Client

    client = Client(server[0], verbose=False, download_files=str(tmp_path))
    _, dx, dy, _ = client.predict("mnist-vae2d", 3, 2, None, api_name="/select_model")
    assert dx["maximum"] == 1 and {dx["value"], dy["value"]} == {0, 1}
    picture_, _ = client.predict("mnist-vae2d", dx["value"], dy["value"], 2.0, 3, "prior mean", 0, None, None,
                                 api_name="/grid_for_model")
    assert grid_tiles(picture_, 3).shape == (3, 3, 28, 28)


def test_the_grid_for_slides_is_the_page_grid_at_8x_or_more(client, services):
    from explorer import render
    from explorer.ui import grid

    made = client.predict("mnist-vae", 0, 1, 2.0, 9, "prior mean", 0, None, None, api_name="/grid_slides")
    assert made["visible"] is True  # the file box appears once there is a file
    path = made["value"]
    shown, _ = grid.grid_picture(services, "mnist-vae", 0, 1, 2.0, 9, "prior mean", 0, None, None)
    shown = np.asarray(shown)
    factor = -(-8 // render.auto_scale(9))
    slide = picture(path)
    assert render.auto_scale(9) * factor >= 8 and slide.shape == (shown.shape[0] * factor, shown.shape[1] * factor)
    assert np.array_equal(slide, np.kron(shown, np.ones((factor, factor), np.uint8)))


def test_the_fixed_code_is_shown_on_one_or_two_lines():
    from explorer.ui import grid

    assert grid.compact_code([0.123, -1.3]) == "z0 +0.12, z1 -1.30"
    assert grid.compact_code(None) == ""
    assert len(grid.compact_code([0.5] * 16)) < 200  # about two lines of the text box, not 18 rows


def test_the_y_axis_name_is_not_under_the_pictures_caption(services):
    """The page puts a picture's caption over its top-left corner: the y-axis name runs up the
    left edge at mid-height instead, and the corner is blank margin."""
    from explorer import render

    images = torch.zeros(9, 9, 1, 28, 28)
    picture_, geo = render.labelled_grid(images, [0.0] * 9, [0.0] * 9, "z3", "z11")
    arr = np.asarray(picture_)
    assert (arr[:geo.top + 20, :geo.left - 40] == 255).all()  # the caption's corner: blank
    middle = geo.top + 9 * geo.cell // 2
    strip = arr[middle - 15:middle + 15, :20]
    assert (strip < 128).any()  # the name, written up the left edge at mid-height
    plain, _ = render.labelled_grid(images, [0.0] * 9, [0.0] * 9, "z3", "")
    assert not np.array_equal(np.asarray(plain)[:, :20], arr[:, :20])


def test_the_same_grid_asked_again_is_drawn_and_encoded_once(services, tmp_path, monkeypatch):
    """A hall asking for the same view (a preset, the same slider value) draws it once and
    hands out the same file; any other setting is drawn anew."""
    from gradio import processing_utils

    from explorer.ui import grid
    from explorer.ui.server import configure_process

    configure_process()
    settings = ("mnist-vae", 0, 1, 2.0, 3, "random draw (seed)", 5, None, None)
    first, code = grid.grid_picture(services, *settings)
    again, code_again = grid.grid_picture(services, *settings)
    assert again is first and code_again == code
    other, _ = grid.grid_picture(services, "mnist-vae", 0, 1, 2.0, 3, "random draw (seed)", 6, None, None)
    assert other is not first and not np.array_equal(np.asarray(other), np.asarray(first))
    digit = np.zeros((28, 28), np.uint8)
    digit[5:23, 12:16] = 255
    encoded, _ = grid.grid_picture(services, "mnist-vae", 0, 1, 2.0, 3, "encoded image", 0, digit, None)
    moved = digit.copy()
    moved[5:23, 16:18] = 255
    assert grid.grid_picture(services, "mnist-vae", 0, 1, 2.0, 3, "encoded image", 0, moved, None)[0] is not encoded

    from explorer import render

    encodes = []
    encode = render.png_bytes
    monkeypatch.setattr(render, "png_bytes", lambda *a, **k: encodes.append(1) or encode(*a, **k))
    path = processing_utils.save_pil_to_cache(first, str(tmp_path), format="png")
    assert processing_utils.save_pil_to_cache(again, str(tmp_path), format="png") == path and len(encodes) == 1
    assert np.array_equal(picture(path), np.asarray(first))
    processing_utils.save_pil_to_cache(first.copy(), str(tmp_path), format="png")  # not shared: encoded
    assert len(encodes) == 2
