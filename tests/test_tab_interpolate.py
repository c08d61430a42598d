"""The interpolation tab (`/interpolate`): strip (its ends the reconstructions), densities and downloads match
the models; a GAN interpolates between its inversions and reports their error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import intake, latent, render
from tests.helpers import model_code_image, picture, progress_lines


def strip_tiles(path: str, steps: int) -> list[np.ndarray]:
    arr = picture(path)
    scale = (arr.shape[1] - 2 * (steps - 1)) // (28 * steps)
    assert arr.shape == (28 * scale, steps * 28 * scale + 2 * (steps - 1))
    return [arr[::scale, k * (28 * scale + 2): k * (28 * scale + 2) + 28 * scale: scale] for k in range(steps)]


def test_interpolation_outputs_and_exact_endpoints(client, catalog):
    a, _ = client.predict("mnist-vae", 0, api_name="/a_from_example")
    b, _ = client.predict("mnist-vae", 1, api_name="/b_from_example")
    za, zb = model_code_image(catalog, "mnist-vae", a), model_code_image(catalog, "mnist-vae", b)
    for method, steps in (("lerp", 6), ("slerp", 2), ("lerp", 20)):
        strip, plot, note = client.predict("mnist-vae", handle_file(a), handle_file(b),
                                           method, steps, None, api_name="/interpolate")
        png, gif = client.predict("mnist-vae", handle_file(a), handle_file(b), method, steps, None,
                                  api_name="/interpolation_slides")
        assert note == ""  # the inversion note is for GANs
        tiles = strip_tiles(strip, steps)
        model = catalog.checkpoint("mnist-vae", "latent").model
        expected = render.to_uint8(latent.decode(model, torch.stack([za, zb])))
        assert np.abs(tiles[0].astype(int) - expected[0]).max() <= 1  # decode(encode(A))
        assert np.abs(tiles[-1].astype(int) - expected[1]).max() <= 1
        path = latent.interpolate(model, za, zb, steps, method)
        want = render.to_uint8(latent.decode(model, path))
        assert max(np.abs(t.astype(int) - w).max() for t, w in zip(tiles, want)) <= 1
        # The PNG download is the strip, enlarged (nearest-neighbour) until each pixel is 8 or more wide.
        scale = render.strip_scale(steps)
        factor = -(-8 // scale)
        shown_strip, slide = picture(strip), picture(png)
        assert slide.shape == (shown_strip.shape[0] * factor, shown_strip.shape[1] * factor)
        assert scale * factor >= 8 and np.array_equal(slide[::factor, ::factor], shown_strip)
        assert np.array_equal(slide, np.kron(shown_strip, np.ones((factor, factor), np.uint8)))
        shown = 2 * steps - 2 if steps > 2 else steps  # forward, then back
        with Image.open(gif) as anim:  # identical neighbours merge; their durations add up
            total = 0
            for k in range(anim.n_frames):
                anim.seek(k)
                total += anim.info["duration"]
            assert anim.size == (28 * 12, 28 * 12) and total == 120 * shown  # 12x: for slides
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


def test_a_gan_interpolates_between_its_inversions_and_reports_their_error(client, catalog):
    gan = "mnist-dcgan"
    a, _ = client.predict(gan, 0, api_name="/a_from_example")
    b, _ = client.predict(gan, 1, api_name="/b_from_example")
    strip, plot, note = client.predict(gan, handle_file(a), handle_file(b), "lerp", 5,
                                       None, api_name="/interpolate")
    model = catalog.checkpoint(gan, "latent").model
    codes = torch.stack([model_code_image(catalog, gan, a), model_code_image(catalog, gan, b)])
    ends = latent.decode(model, codes)
    tiles = strip_tiles(strip, 5)
    for tile, want in zip((tiles[0], tiles[-1]), render.to_uint8(ends)):   # the inversions, decoded
        assert np.abs(tile.astype(int) - want).max() <= 1
    targets = torch.stack([intake.prepare_digit(picture(a)), intake.prepare_digit(picture(b))])
    errors = latent.reconstruction_error(model, targets, codes)
    assert errors.max() < 0.5
    assert "GAN inversion" in note and "no encoder" in note and "found by optimisation" in note
    assert f"MSE per pixel {errors[0]:.3f} (A) / {errors[1]:.3f} (B)" in note


def test_there_is_no_interpolate_button(server):
    """Every control reruns the interpolation itself; a button that did nothing more is gone."""
    import httpx

    config = httpx.get(server[0] + "config").json()
    assert not [c for c in config["components"] if c["type"] == "button" and c["props"].get("value") == "Interpolate"]


def test_a_gans_interpolation_shows_the_progress_of_both_inversions(client, catalog, tmp_path):
    steps = catalog.checkpoint("mnist-dcgan", "latent").model.inversion["steps"]
    ends = []
    for seed in (11, 12):                       # images no other test encoded: both are inverted here
        ends.append(tmp_path / f"noise-{seed}.png")
        Image.fromarray((np.random.default_rng(seed).random((28, 28)) * 255).astype(np.uint8)).save(ends[-1])
    job = client.submit("mnist-dcgan", handle_file(str(ends[0])), handle_file(str(ends[1])), "lerp", 5, None,
                        api_name="/interpolate")
    *_, note = job.result()
    lines = progress_lines(job)
    assert "GAN inversion" in note and lines
    assert all(line.startswith("inverting the generator for digit ") and line.endswith(f" of {steps}")
               for line in lines)
    order = [line.split("digit ")[1][0] for line in lines]      # A's steps, then B's
    assert order == sorted(order)
