"""The Gradio app, served in-process on a free port and driven through gradio_client.

Every endpoint is called; outputs are checked against the same maths done here directly on
the loaded models. The app runs on the tiny random-weight checkpoints (plus a damaged one
it must skip) and a tiny fake data set, so no real data or network is needed.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from gradio_client import handle_file
from PIL import Image

from explorer import intake, latent, render
from explorer.ui import Catalog, Services
from explorer.ui import manifold as manifold_tab
from tests.helpers import REPO, free_port, picture, png_with_size, seven, write_fake_dataset

ENDPOINTS = {
    "/select_model", "/grid", "/interpolate", "/compare", "/compare_controls", "/manifold",
    "/manifold_controls", "/replay_run", "/replay_epoch", "/replay_play",
    "/pixel_model", "/pixel_view", "/pixel_next", "/pixel_previous", "/pixel_play", "/likelihood", "/score_source",
    "/encode", "/encode_controls",
    *(f"/{slot}_from_{source}" for slot in ("grid_image", "a", "b", "complete", "score", "encode")
      for source in ("example", "upload", "drawing")),
}
# Where each digit input's examples come from: a model's data set, or a data set by name.
DIGIT_SLOTS = {"a": "mnist-vae", "b": "mnist-vae", "grid_image": "mnist-vae", "complete": "mnist-pixelcnn",
               "score": "mnist", "encode": "mnist-vae"}


def model_code_image(catalog: Catalog, name: str, image_path: str, label=None) -> torch.Tensor:
    """Encode a served 28x28 preview here, the way the app should."""
    x = intake.prepare_digit(picture(image_path))
    return latent.encode(catalog.checkpoint(name, "latent").model, x.unsqueeze(0), label)[0]


def grid_tiles(path: str, size: int) -> np.ndarray:
    """Cut a served grid picture back into its (size, size, 28, 28) tiles."""
    arr = picture(path)
    geo = render.grid_geometry(size, size, render.auto_scale(size))
    assert arr.shape == (geo.height, geo.width)
    tiles = np.empty((size, size, 28, 28), np.uint8)
    for i in range(size):
        for j in range(size):
            top, left, bottom, right = geo.tile_box(i, j)
            tiles[i, j] = arr[top:bottom:geo.scale, left:right:geo.scale]
    return tiles


def expected_tiles(catalog: Catalog, name: str, base: torch.Tensor, dx: int, dy: int, span: float,
                   size: int, label=None) -> np.ndarray:
    g = latent.latent_grid(catalog.checkpoint(name, "latent").model, base, dx, dy, span, size, label)
    return render.to_uint8(g.images)


def strip_tiles(path: str, steps: int) -> list[np.ndarray]:
    arr = picture(path)
    scale = (arr.shape[1] - 2 * (steps - 1)) // (28 * steps)
    assert arr.shape == (28 * scale, steps * 28 * scale + 2 * (steps - 1))
    return [arr[::scale, k * (28 * scale + 2): k * (28 * scale + 2) + 28 * scale: scale] for k in range(steps)]


# ------------------------------------------------------------------------ the page


def test_every_event_is_an_endpoint_and_every_endpoint_is_tested(client):
    api = client.view_api(return_format="dict", print_info=False)
    assert set(api["named_endpoints"]) == ENDPOINTS
    assert not api["unnamed_endpoints"]


def test_damaged_checkpoints_are_skipped_with_a_visible_notice(server, catalog):
    assert sorted(catalog.latent_names) == ["fashion-mnist-vae", "mnist-ae", "mnist-cvae", "mnist-dcgan", "mnist-vae",
                                     "mnist-vae2d"]
    assert any("garbage.safetensors" in n for n in catalog.notices)
    assert any("truncated.safetensors" in n for n in catalog.notices)
    config = httpx.get(server[0] + "config").text
    assert "Skipped garbage.safetensors" in config and "Skipped truncated.safetensors" in config
    assert "No test images of fashion-mnist" in config  # no fake Fashion-MNIST was written


def test_select_model_narrows_the_sliders_and_shows_the_class_picker(server, tmp_path):
    from gradio_client import Client

    # Its own session: narrowing the sliders is per session, as on the page.
    client = Client(server[0], verbose=False, download_files=str(tmp_path))
    info, dx, dy, grid_label, interp_label = client.predict("mnist-cvae", 3, 2, None, None,
                                                            api_name="/select_model")
    assert "conditional on 10 classes" in info and (dx["value"], dy["value"]) == (3, 2)
    assert grid_label["visible"] is True and len(grid_label["choices"]) == 10
    info, dx, dy, grid_label, interp_label = client.predict("mnist-vae2d", 3, 2, None, None,
                                                            api_name="/select_model")
    assert "latent dimensions: 2" in info
    assert dx["maximum"] == dy["maximum"] == 1 and {dx["value"], dy["value"]} == {0, 1}
    assert grid_label["visible"] is False


# ------------------------------------------------------------------------ latent grid


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


# ---------------------------------------------------------------------- digit inputs


def test_every_digit_source_gives_a_28x28_preview(client, catalog, tmp_path: Path):
    drawing = tmp_path / "drawing.png"
    seven((280, 280), width=18, mode="RGBA").save(drawing)
    upload = tmp_path / "photo.jpg"
    seven((900, 700), ink=(40, 40, 60), paper=(230, 225, 210), width=50).save(upload)
    for slot, source in DIGIT_SLOTS.items():
        calls = [
            (f"/{slot}_from_example", (source, 3)),
            (f"/{slot}_from_upload", (handle_file(str(upload)),)),
            (f"/{slot}_from_drawing", ({"background": None, "layers": [], "composite": handle_file(str(drawing))},)),
        ]
        previews = []
        for api_name, args in calls:
            path, caption = client.predict(*args, api_name=api_name)
            arr = picture(path)
            assert arr.shape == (28, 28) and arr.dtype == np.uint8, api_name
            previews.append(arr)
        assert np.array_equal(previews[0], catalog.test_set("mnist-vae").images[3].numpy())  # as in the file
        for arr in previews[1:]:
            assert arr[0].max() == 0 and arr.max() >= 200  # white ink on black
        assert np.abs(previews[1].astype(int) - previews[2]).mean() < 25  # the same '7' either way


def test_examples_without_test_data_are_model_samples(client):
    path, caption = client.predict("fashion-mnist-vae", 4, api_name="/a_from_example")
    assert "sample from fashion-mnist-vae" in caption and picture(path).shape == (28, 28)


def test_each_bad_input_gets_its_message_and_the_session_goes_on(client, tmp_path: Path, monkeypatch):
    from gradio_client.exceptions import AppError

    white = tmp_path / "white.png"
    Image.new("RGBA", (280, 280), "white").save(white)
    with pytest.raises(AppError, match="drawing is empty"):
        client.predict({"background": None, "layers": [], "composite": handle_file(str(white))},
                       api_name="/a_from_drawing")
    with pytest.raises(AppError, match="drawing is empty"):
        client.predict({"background": None, "layers": [], "composite": None}, api_name="/b_from_drawing")

    good = io.BytesIO()
    seven().save(good, format="PNG")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(good.getvalue()[:300])
    with pytest.raises(AppError, match="damaged or incomplete"):
        client.predict(handle_file(str(corrupt)), api_name="/a_from_upload")

    bomb = tmp_path / "huge.png"
    bomb.write_bytes(png_with_size(50_000, 50_000))
    with pytest.raises(AppError, match="too big"):
        client.predict(handle_file(str(bomb)), api_name="/a_from_upload")

    monkeypatch.setattr(intake, "MAX_FILE_BYTES", 2000)  # the server runs in this process
    heavy = tmp_path / "heavy.bmp"
    seven((200, 200)).save(heavy)
    with pytest.raises(AppError, match="too large"):
        client.predict(handle_file(str(heavy)), api_name="/grid_image_from_upload")
    monkeypatch.undo()

    text = tmp_path / "essay.pdf"
    text.write_bytes(b"%PDF-1.4 this is a document, not a picture")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(text)), api_name="/b_from_upload")

    path, _ = client.predict(handle_file(str(heavy)), api_name="/b_from_upload")  # still serving
    assert picture(path).shape == (28, 28)


# --------------------------------------------------------------------- interpolation


def test_interpolation_outputs_and_exact_endpoints(client, catalog):
    a, _ = client.predict("mnist-vae", 0, api_name="/a_from_example")
    b, _ = client.predict("mnist-vae", 1, api_name="/b_from_example")
    za, zb = model_code_image(catalog, "mnist-vae", a), model_code_image(catalog, "mnist-vae", b)
    for method, steps in (("lerp", 6), ("slerp", 2), ("lerp", 20)):
        strip, rec_a, rec_b, plot, png, gif, note = client.predict("mnist-vae", handle_file(a), handle_file(b),
                                                                   method, steps, None, api_name="/interpolate")
        assert note == ""  # the inversion note is for GANs
        tiles = strip_tiles(strip, steps)
        assert np.array_equal(tiles[0], picture(rec_a)) and np.array_equal(tiles[-1], picture(rec_b))
        model = catalog.checkpoint("mnist-vae", "latent").model
        expected = render.to_uint8(latent.decode(model, torch.stack([za, zb])))
        assert np.abs(picture(rec_a).astype(int) - expected[0]).max() <= 1  # decode(encode(A))
        assert np.abs(picture(rec_b).astype(int) - expected[1]).max() <= 1
        path = latent.interpolate(model, za, zb, steps, method)
        want = render.to_uint8(latent.decode(model, path))
        assert max(np.abs(t.astype(int) - w).max() for t, w in zip(tiles, want)) <= 1
        assert np.array_equal(picture(png), picture(strip))
        shown = 2 * steps - 2 if steps > 2 else steps  # forward, then back
        with Image.open(gif) as anim:  # identical neighbours merge; their durations add up
            total = 0
            for k in range(anim.n_frames):
                anim.seek(k)
                total += anim.info["duration"]
            assert anim.size == (168, 168) and total == 120 * shown
        curves = {}
        for t, logp, curve in plot["data"]:
            curves.setdefault(curve, []).append((t, logp))
        assert set(curves) == {"lerp", "slerp", "typical prior sample"}
        assert all(len(v) == steps for v in curves.values())
        assert curves["lerp"][0][1] == pytest.approx(float(model.log_prior(za[None])[0]), abs=1e-3)


def test_interpolation_of_a_conditional_model_and_bad_settings(client):
    from gradio_client.exceptions import AppError

    a, _ = client.predict("mnist-cvae", 2, api_name="/a_from_example")
    b, _ = client.predict("mnist-cvae", 5, api_name="/b_from_example")
    strip, *_ = client.predict("mnist-cvae", handle_file(a), handle_file(b), "slerp", 4, 6,
                                api_name="/interpolate")
    assert len(strip_tiles(strip, 4)) == 4
    with pytest.raises(AppError, match="greater than maximum value 20"):
        client.predict("mnist-vae", handle_file(a), handle_file(b), "lerp", 30, None,
                       api_name="/interpolate")
    with pytest.raises(AppError, match="Choose both digits"):
        client.predict("mnist-vae", handle_file(a), None, "lerp", 5, None, api_name="/interpolate")


# ------------------------------------------------------------- AE vs VAE, 2-D manifold


def test_compare_shows_the_same_grid_for_both_models(client, catalog):
    left, right = client.predict("mnist-ae", "mnist-vae", 1, 2, 2.0, 5, "random draw (seed)", 3, None,
                                 api_name="/compare")
    u = latent.standard_draw(4, 3)
    for path, name in ((left, "mnist-ae"), (right, "mnist-vae")):
        model = catalog.checkpoint(name, "latent").model
        want = expected_tiles(catalog, name, latent.unstandardize(model, u), 1, 2, 2.0, 5)
        assert np.abs(grid_tiles(path, 5).astype(int) - want).max() <= 1
    dx, dy, label = client.predict("mnist-vae2d", "mnist-cvae", 3, 2, api_name="/compare_controls")
    assert dx["maximum"] == 1 and label["visible"] is True
    left, right = client.predict("mnist-vae2d", "mnist-cvae", 0, 1, 2.0, 3, "prior mean", 0, 4,
                                 api_name="/compare")
    assert grid_tiles(left, 3).shape == grid_tiles(right, 3).shape


def test_manifold_with_and_without_test_data(client, services, app_folder):
    path, table, note = client.predict("mnist-vae2d", 7, None, api_name="/manifold")
    assert grid_tiles_any(path, 7)
    assert table["columns"] == ["z0", "z1", "class"] and len(table["data"]) == 64  # the fake test set
    codes, labels = services.test_codes("mnist-vae2d")
    assert [r[2] for r in table["data"]] == [str(int(k)) for k in labels]
    assert "64 test images" in note
    label = client.predict("mnist-vae2d", None, api_name="/manifold_controls")
    assert label["visible"] is False
    no_data = Catalog.from_folder(app_folder, data_dir=app_folder / "no-such-folder", download=False)
    _, empty, note = manifold_tab.manifold(Services(no_data), "mnist-vae2d", 5, None)
    assert len(empty) == 0 and "No test images are available" in note


def grid_tiles_any(path: str, size: int) -> bool:
    arr = picture(path)
    geo = render.grid_geometry(size, size, render.auto_scale(size, target=600))
    return arr.shape == (geo.height, geo.width)


# ------------------------------------------------------------------------- app.py


def test_python_app_py_serves_on_the_port_from_the_environment(tiny_trained_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "LATENT_EXPLORER_TRAINED": str(tiny_trained_dir),
           "LATENT_EXPLORER_DATA": str(write_fake_dataset(tmp_path / "data")),
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # Generous: a loaded 2-core machine takes a minute or more to import torch and gradio.
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                config = httpx.get(f"http://127.0.0.1:{port}/config", timeout=2)
                if config.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.5)
        else:
            pytest.fail("python app.py did not start serving within 300 s")
        assert "mnist-vae2d" in config.text and "Latent Explorer" in config.text
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# ------------------------------------------------------------------------------ GANs


def test_a_gan_in_the_grid_tab(client, catalog):
    gan = "mnist-dcgan"
    path, code = client.predict(gan, 2, 5, 2.0, 3, "prior mean", 0, None, None, api_name="/grid")
    base = latent.prior_mean(catalog.checkpoint(gan, "latent").model)
    assert np.abs(grid_tiles(path, 3).astype(int) - expected_tiles(catalog, gan, base, 2, 5, 2.0, 3)).max() <= 1
    preview, _ = client.predict(gan, 0, api_name="/grid_image_from_example")
    path, code = client.predict(gan, 0, 1, 2.0, 3, "encoded image", 0, handle_file(preview), None,
                                api_name="/grid")
    assert code == pytest.approx(model_code_image(catalog, gan, preview).tolist(), abs=1e-4)  # the inversion


def test_a_gan_interpolates_between_its_inversions_and_reports_their_error(client, catalog):
    gan = "mnist-dcgan"
    a, _ = client.predict(gan, 0, api_name="/a_from_example")
    b, _ = client.predict(gan, 1, api_name="/b_from_example")
    strip, rec_a, rec_b, plot, png, gif, note = client.predict(gan, handle_file(a), handle_file(b), "lerp", 5,
                                                               None, api_name="/interpolate")
    model = catalog.checkpoint(gan, "latent").model
    codes = torch.stack([model_code_image(catalog, gan, a), model_code_image(catalog, gan, b)])
    ends = latent.decode(model, codes)
    tiles = strip_tiles(strip, 5)
    for tile, rec, want in zip((tiles[0], tiles[-1]), (rec_a, rec_b), render.to_uint8(ends)):
        assert np.array_equal(tile, picture(rec)) and np.abs(tile.astype(int) - want).max() <= 1
    targets = torch.stack([intake.prepare_digit(picture(a)), intake.prepare_digit(picture(b))])
    errors = latent.reconstruction_error(model, targets, codes)
    assert errors.max() < 0.5
    assert "GAN inversion" in note and "no encoder" in note and "found by optimisation" in note
    assert f"MSE per pixel {errors[0]:.3f} (A) / {errors[1]:.3f} (B)" in note


def test_a_gan_gets_no_scatter_of_encoded_test_images(services):
    table, note = manifold_tab.scatter_table(services, "mnist-dcgan")
    assert len(table) == 0 and "is a GAN" in note and "by optimisation" in note
    assert services.test_codes("mnist-dcgan") is None


def test_select_model_describes_a_gan(client):
    info, *_ = client.predict("mnist-dcgan", 0, 1, None, None, api_name="/select_model")
    assert "frechet_distance = 12.30" in info and "no encoder" in info
