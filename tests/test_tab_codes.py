"""The discrete codes (VQ-VAE) tab: playing the prior, editing a code map, VQ-VAE vs VAE.

Every picture the app serves is compared, pixel for pixel, with one drawn here from the model
and `explorer.render`; the endpoints are driven through gradio_client (the stream included)."""

from __future__ import annotations

import asyncio
import math
from types import SimpleNamespace

import gradio as gr
import httpx
import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError

from explorer import intake, latent, render, sampling
from explorer.ui import codes
from explorer.ui.common import user_errors
from tests.helpers import TINY_VQVAE, picture, rgb

SEED = 5
K = TINY_VQVAE["num_codes"]


def vq(catalog, name="mnist-vqvae"):
    return catalog.checkpoint(name, "discrete").model


def expected_frame(model, index: int, label=None) -> np.ndarray:
    """The play view's picture at step `index`, drawn here from an independent sample."""
    final = sampling.sample_codes(model, 1, y=label, generator=torch.Generator().manual_seed(SEED))[0]   # (7, 7)
    drawn = (torch.arange(49) <= index).view(7, 7)
    with torch.no_grad():
        image = model.decode(torch.where(drawn, final, model.blank_code())[None])[0]
    return np.asarray(render.code_map(image, torch.where(drawn, final, -1), current=divmod(index, 7),
                                      scale=codes.SCALE).convert("RGB"))


def test_the_catalog_shelves_vqvaes_apart(catalog):
    assert sorted(catalog.discrete_names) == ["mnist-vqvae", "mnist-vqvae-cond"]
    assert catalog.checkpoint("mnist-vqvae") is catalog.discrete["mnist-vqvae"]
    assert "mnist-vqvae" not in catalog.latent_names + catalog.autoregressive_names
    with pytest.raises(ValueError, match="Unknown VQ-VAE 'mnist-vae'"):
        catalog.checkpoint("mnist-vae", "discrete")
    assert codes.picker_order(catalog) == ["mnist-vqvae", "mnist-vqvae-cond"]


def test_play_view_shapes_and_the_last_frame_is_the_models_sample(client, catalog):
    model = vq(catalog)
    frame, dist, status = client.predict("mnist-vqvae", None, SEED, 48, api_name="/codes_view")
    assert rgb(frame).shape == (28 * codes.SCALE, 28 * codes.SCALE, 3) and rgb(dist).shape == (190, 380, 3)
    assert np.array_equal(rgb(frame), expected_frame(model, 48))
    final = sampling.sample_codes(model, 1, generator=torch.Generator().manual_seed(SEED))[0]
    assert "**Code 49 of 49**" in status and f"drew **code {int(final[6, 6])}**" in status
    assert "Hatched cells: not drawn yet, decoded as the blank code" in status
    # Midway: the drawn codes are the sample's first 21, the rest hatched and decoded as blank.
    frame, _, status = client.predict("mnist-vqvae", None, SEED, 20, api_name="/codes_view")
    assert np.array_equal(rgb(frame), expected_frame(model, 20)) and "row 2, column 6" in status


def test_the_page_says_how_undrawn_cells_are_decoded(server):
    config = httpx.get(server[0] + "config").text
    assert "decoded as the **blank code**, the code an all-black image gets" in config


def test_play_streams_every_step_and_ends_on_the_sample(client, catalog, monkeypatch):
    monkeypatch.setattr(codes, "FPS", 200)     # the server runs in this process: a quick stream
    model = vq(catalog)
    frames = list(client.submit("mnist-vqvae", None, SEED, 40, api_name="/codes_play"))
    assert [f[0] for f in frames] == list(range(41, 49))
    assert np.array_equal(rgb(frames[-1][1]), expected_frame(model, 48))
    # From the last step, Play starts again at the first and streams all 49.
    frames = list(client.submit("mnist-vqvae", None, SEED, 48, api_name="/codes_play"))
    assert [f[0] for f in frames] == list(range(49))
    assert np.array_equal(rgb(frames[0][1]), expected_frame(model, 0))
    assert np.array_equal(rgb(frames[-1][1]), expected_frame(model, 48))


def test_play_draws_the_whole_generation_once(services, monkeypatch):
    calls = []
    real = sampling.code_stream
    monkeypatch.setattr(sampling, "code_stream", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(codes, "FPS", 1000)
    seed = 987654
    async def whole(position: int) -> list:
        return [item async for item in codes.play(services, "mnist-vqvae", None, seed, position)]

    assert len(asyncio.run(whole(48))) == 49 and len(asyncio.run(whole(10))) == 38
    codes.view(services, "mnist-vqvae", None, seed, 3)
    assert len(calls) == 1


def test_next_and_previous_stay_inside_the_grid(client, catalog):
    position, frame, _, _ = client.predict("mnist-vqvae", None, SEED, 9, api_name="/codes_next")
    assert position == 10 and np.array_equal(rgb(frame), expected_frame(vq(catalog), 10))
    assert client.predict("mnist-vqvae", None, SEED, 48, api_name="/codes_next")[0] == 48
    assert client.predict("mnist-vqvae", None, SEED, 0, api_name="/codes_previous")[0] == 0


def test_the_conditional_prior_follows_the_class(client, catalog):
    model = vq(catalog, "mnist-vqvae-cond")
    info, picker, frame, _, status = client.predict("mnist-vqvae-cond", 3, SEED, 48, api_name="/codes_model")
    assert picker["visible"] is True and picker["value"] == 3 and "conditional on 10 classes" in info
    assert np.array_equal(rgb(frame), expected_frame(model, 48, label=3)) and "(class 3)" in status
    _, picker, *_ = client.predict("mnist-vqvae", 3, SEED, 48, api_name="/codes_model")
    assert picker["visible"] is False


# ---------------------------------------------------------------------- the code-map editor

@pytest.fixture(scope="module")
def digit_file(server):
    path, _ = server[1].predict("mnist-vqvae", 2, api_name="/codes_from_example")
    return path


def served_input(path: str) -> torch.Tensor:
    return intake.prepare_digit(picture(path))


def test_editing_one_code_decodes_the_edited_grid(client, catalog, digit_file):
    model = vq(catalog)
    x = served_input(digit_file)
    encoded = model.encode(x[None])[0]
    new = (int(encoded[3, 4]) + 1) % K
    edited = encoded.clone()
    edited[3, 4] = new
    code_map, strip, usage, note = client.predict("mnist-vqvae", handle_file(digit_file), 3, 4, new,
                                                  api_name="/codes_edit")
    with torch.no_grad():
        before, after = model.decode(torch.stack([encoded, edited]))
    # The map shows the edited grid (the new code written in the cell) over the edited decode.
    drawn = render.code_map(after, edited, selected=(3, 4), scale=codes.SCALE).convert("RGB")
    assert np.array_equal(rgb(code_map), np.asarray(drawn))
    assert not np.array_equal(np.asarray(render.code_map(after, encoded, selected=(3, 4), scale=codes.SCALE)
                                         .convert("RGB")), np.asarray(drawn))
    # The strip: input, decode, edited decode; the edit changed the decode, and only to the prediction.
    tiles = picture(strip)
    assert tiles.shape == (28 * 4, 3 * 28 * 4 + 2 * 2)
    step = 28 * 4 + 2
    assert np.array_equal(tiles[::4, 2 * step:2 * step + 112:4], render.to_uint8(after))
    assert np.array_equal(tiles[::4, step:step + 112:4], render.to_uint8(before))
    assert not np.array_equal(render.to_uint8(after), render.to_uint8(before))
    assert f"changed from code {int(encoded[3, 4])} to **code {new}**" in note
    assert rgb(usage).shape == (170, 380, 3)
    # The codebook's usage: the codes of the (fake) test images, counted here.
    split = catalog.test_set("mnist-vqvae")
    with torch.no_grad():
        counts = torch.bincount(model.encode(split.images.float().div(255.0).unsqueeze(1)).flatten(), minlength=K)
    share = counts.double() * 100 / counts.sum()
    old = int(encoded[3, 4])
    assert (f"{int((counts > 0).sum())} of {K} codes in use over {len(split.images)} encoded test images; code {old} "
            f"takes {float(share[old]):.1f}% of the cells, code {new} {float(share[new]):.1f}%.") in note


def test_encoding_sets_the_code_slider_to_the_cell_and_its_range(client, catalog, digit_file):
    model = vq(catalog)
    encoded = model.encode(served_input(digit_file)[None])[0]
    code, code_map, *_, note = client.predict("mnist-vqvae", handle_file(digit_file), 1, 5, api_name="/codes_encode")
    assert code["value"] == int(encoded[1, 5]) and code["maximum"] == K - 1 and "keeps its own code" in note
    with torch.no_grad():
        decoded = model.decode(encoded[None])[0]
    assert np.array_equal(rgb(code_map), np.asarray(render.code_map(decoded, encoded, selected=(1, 5),
                                                                    scale=codes.SCALE).convert("RGB")))


def test_a_click_picks_the_cell_under_it(services, catalog, digit_file):
    encoded = vq(catalog).encode(served_input(digit_file)[None])[0]
    cell = 28 * codes.SCALE // 7
    click = SimpleNamespace(index=[5 * cell + 3, 2 * cell + cell - 1])     # column 5, row 2
    row, col, code, code_map, *_ = codes.pick_cell(services, "mnist-vqvae", picture(digit_file), click)
    assert (row, col, code) == (2, 5, int(encoded[2, 5]))
    with torch.no_grad():
        decoded = vq(catalog).decode(encoded[None])[0]
    assert np.array_equal(np.asarray(code_map), np.asarray(render.code_map(decoded, encoded, selected=(2, 5),
                                                                           scale=codes.SCALE)))
    with pytest.raises(gr.Error, match="Click a cell of the code map"):
        user_errors(codes.pick_cell)(services, "mnist-vqvae", picture(digit_file), None)


@pytest.mark.parametrize("row, col, code, message", [
    (7, 0, 0, "The row must lie between 0 and 6, not 7."),
    (0, -1, 0, "The column must lie between 0 and 6, not -1."),
    (0, 0, K, f"The code must lie between 0 and {K - 1}, not {K}."),
    (0, 0, math.nan, "The code must be an ordinary number, not nan."),
    (0, 0, 1.5, "The code must be a whole number, not 1.5."),
])
def test_bad_cells_and_codes_get_a_sentence(services, digit_file, row, col, code, message):
    with pytest.raises(gr.Error, match=message.replace(".", r"\.")):
        user_errors(codes.edit_code)(services, "mnist-vqvae", picture(digit_file), row, col, code)


def test_bad_edits_through_the_api(client, services, digit_file):
    with pytest.raises(AppError, match="Pick, upload or draw an image to encode"):
        client.predict("mnist-vqvae", None, 0, 0, 0, api_name="/codes_edit")
    with pytest.raises(AppError, match="not in the list of choices"):     # the dropdown's own check
        client.predict("mnist-vae", handle_file(digit_file), 0, 0, 0, api_name="/codes_edit")
    with pytest.raises(AppError, match="seed must be a whole number"):
        client.predict("mnist-vqvae", None, 2**64, 0, api_name="/codes_view")
    with pytest.raises(AppError, match="greater than maximum value 48"):   # the slider's own check
        client.predict("mnist-vqvae", None, 0, 49, api_name="/codes_view")
    with pytest.raises(gr.Error, match="code step must lie between 0 and 48, not 49"):
        codes.view(services, "mnist-vqvae", None, 0, 49)


# ---------------------------------------------------------------------- VQ-VAE vs VAE

def test_vqvae_and_vae_reconstructions_side_by_side(client, catalog, services, digit_file):
    result, note = client.predict("mnist-vqvae", "mnist-vae", handle_file(digit_file), api_name="/codes_compare")
    x = torch.stack([served_input(digit_file)] + [services.example("mnist-vqvae", i)[0]
                                                  for i in range(codes.COMPARE_EXAMPLES)])
    model, vae = vq(catalog), catalog.checkpoint("mnist-vae", "latent").model
    with torch.no_grad():
        by_vq = model.decode(model.encode(x))
    by_vae = latent.decode(vae, latent.encode(vae, x))
    expected = render.mosaic(torch.cat([x, by_vq, by_vae]), len(x), codes.COMPARE_SCALE)
    assert np.array_equal(picture(result), np.asarray(expected))
    for name, by in (("VQ-VAE", by_vq), ("VAE", by_vae)):
        errors = (by - x).pow(2).flatten(1).mean(1)
        assert f"| {name} | " + " | ".join(f"{1000 * float(e):.1f}" for e in errors) + " |" in note
    assert "| | yours | 2 | 3 | 4 | 5 | 6 | 7 |" in note
    assert "**mnist-vqvae**: test_mse = **0.05000** per pixel" in note and "test_recon_nll = **150.00**" in note
    assert "**mnist-vae**: no test reconstruction error stored" in note


def test_compare_refuses_models_that_do_not_match(client, services):
    with pytest.raises(AppError, match="mnist-vqvae models mnist but fashion-mnist-vae models fashion-mnist"):
        client.predict("mnist-vqvae", "fashion-mnist-vae", None, api_name="/codes_compare")
    # A conditional VAE or a GAN is not offered; a library caller gets the reason.
    for name in ("mnist-cvae", "mnist-dcgan"):
        with pytest.raises(gr.Error, match=f"{name} cannot be compared here"):
            codes.compare(services, "mnist-vqvae", name, None)
    with pytest.raises(gr.Error, match="Unknown VQ-VAE 'mnist-vae'"):
        codes.compare(services, "mnist-vae", "mnist-vae", None)


def test_code_map_geometry_finds_cells():
    geo = render.code_map_geometry((7, 7), 28, 11)
    assert geo.cell == 44 and geo.cell_at(0, 0) == (0, 0) and geo.cell_at(43.9, 44) == (1, 0)
    assert geo.cell_at(10_000, -5) == (0, 6)
    undrawn = render.code_map(torch.zeros(1, 28, 28), torch.full((7, 7), -1), scale=2)
    arr = np.asarray(undrawn)
    assert arr.shape == (56, 56, 3) and not (arr == 0).all(-1).any()      # every cell tinted: nothing drawn


def test_a_link_restores_the_play_view(catalog):
    names = codes.picker_order(catalog)
    name, picker, seed, step = codes.restore(catalog, names, {"model": "mnist-vqvae-cond", "class": "3", "seed": "5",
                                                               "step": "20"})
    assert (name, seed, step) == ("mnist-vqvae-cond", 5, 20)
    assert picker.value == 3 and picker.visible is True
    name, picker, seed, step = codes.restore(catalog, names, {})
    assert name == "mnist-vqvae" and picker.visible is False and isinstance(seed, type(gr.skip()))
    for bad in ({"model": "mnist-vae"}, {"step": "49"}, {"seed": "-1"}, {"model": "mnist-vqvae-cond", "class": "10"}):
        with pytest.raises(gr.Error):
            codes.restore(catalog, names, bad)
