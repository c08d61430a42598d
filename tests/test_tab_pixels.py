"""The pixel-by-pixel tab: its endpoints driven through gradio_client (streaming and Stop
included), every frame checked against the sampler and the models."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import render, sampling
from explorer.ui import pixels
from tests.helpers import picture, rgb


SEED = 3


def frame_tiles(path: str, n: int, side: int = 28) -> np.ndarray:
    """Cut a served generation frame back into (n, side, side, 3): each pixel's block centre."""
    arr = rgb(path)
    cols = render.grid_columns(n)
    scale = max(2, min(12, pixels.FRAME_SIDE // (cols * side)))
    cell = side * scale + render.GAP
    centre = np.arange(side) * scale + scale // 2
    return np.stack([arr[(k // cols) * cell + centre][:, (k % cols) * cell + centre] for k in range(n)])


def reference_step(model, n: int, index: int, **kwargs) -> sampling.PixelStep:
    for step in sampling.sample_stream(model, n, generator=torch.Generator().manual_seed(SEED), **kwargs):
        if step.index == index:
            return step
    raise AssertionError


def expected_colours(step: sampling.PixelStep, given: torch.Tensor | None = None) -> np.ndarray:
    grey = render.to_uint8(step.image)                                     # (N, H, W)
    out = np.repeat(grey[..., None], 3, axis=-1)
    height, width = grey.shape[1:]
    later = (np.arange(height * width) > step.index).reshape(height, width)
    if given is not None:
        later &= ~given.numpy()
    out[:, later] = render.UNDECIDED
    return out


def view_args(name="mnist-pixelcnn", samples=4, temperature=1.0, given_rows=0, image=None, label=None):
    return (name, samples, temperature, SEED, given_rows, image, label)


def test_pixel_view_matches_the_sampler(client, catalog):
    model = catalog.checkpoint("mnist-pixelcnn", "autoregressive").model
    picture, dist, field, status = client.predict(*view_args(), 301, api_name="/pixel_view")   # pixel 301: index 300
    step = reference_step(model, 4, 300)
    assert np.array_equal(frame_tiles(picture, 4), expected_colours(step))
    assert f"p(white) = **{float(step.probs[0, 0]):.3f}**" in status
    assert "Pixel 301 of 784" in status and "(row 10, column 20)" in status
    assert rgb(dist).shape == (190, 380, 3) and rgb(field).shape == (28 * 8, 28 * 8, 3)


def test_pixel_receptive_field_shows_the_blind_spot_and_its_fix(client):
    # The tiny PixelCNN (3x3 type A, one 3x3 type B) misses the pixel up-right; gated does not.
    *_, plain = client.predict(*view_args(), 301, api_name="/pixel_view")
    *_, gated = client.predict(*view_args("mnist-gated_pixelcnn"), 301, api_name="/pixel_view")
    assert "blind spot" in plain and "lie in its **blind spot**" in plain
    assert "lie in its **blind spot**" not in gated and "no blind spot" in gated


def test_next_and_previous_pixel_stay_inside_the_image(client, catalog):
    position, picture, *_, status = client.predict(*view_args(), 42, api_name="/pixel_next")
    assert position == 43 and "**Pixel 43 of 784**" in status
    step = reference_step(catalog.checkpoint("mnist-pixelcnn", "autoregressive").model, 4, 42)
    assert np.array_equal(frame_tiles(picture, 4), expected_colours(step))
    position, *_ = client.predict(*view_args(), 1, api_name="/pixel_previous")
    assert position == 1
    position, *_ = client.predict(*view_args(), 784, api_name="/pixel_next")
    assert position == 784


def test_play_streams_frames_to_the_finished_samples(client, catalog):
    job = client.submit(*view_args(samples=2), 701, 20, api_name="/pixel_play")
    frames = list(job)
    positions = [f[0] for f in frames]
    assert positions == [721, 741, 761, 781, 784]
    # The progress line: each frame's summary names the pixel the slider shows.
    assert all(f[4].startswith(f"**Pixel {f[0]} of 784**") for f in frames)
    finished = sampling.sample(catalog.checkpoint("mnist-pixelcnn", "autoregressive").model, 2, generator=torch.Generator().manual_seed(SEED))
    tiles = frame_tiles(frames[-1][1], 2)
    assert np.array_equal(tiles[..., 0], render.to_uint8(finished))
    # From the last pixel, Play starts again at the first.
    first = next(iter(client.submit(*view_args(samples=1), 784, 112, api_name="/pixel_play")))
    assert first[0] == 112 and first[4].startswith("**Pixel 112 of 784**")


@pytest.mark.parametrize("name", ["mnist-row_lstm", "mnist-diagonal_bilstm"])
def test_pixelrnn_models_stream_step_and_complete_in_the_pixel_tab(client, catalog, name):
    model = catalog.checkpoint(name, "autoregressive").model
    frames = list(client.submit(*view_args(name, samples=2), 601, 100, api_name="/pixel_play"))
    assert [f[0] for f in frames] == [701, 784]
    finished = sampling.sample(model, 2, generator=torch.Generator().manual_seed(SEED))
    assert np.array_equal(frame_tiles(frames[-1][1], 2)[..., 0], render.to_uint8(finished))
    position, picture, _, _, status = client.predict(*view_args(name), 300, api_name="/pixel_next")
    assert position == 301 and np.array_equal(frame_tiles(picture, 4), expected_colours(reference_step(model, 4, 300)))
    assert "p(white)" in status
    preview, _ = client.predict(name, 2, api_name="/complete_from_example")
    picture, *_ = client.predict(*view_args(name, samples=2, given_rows=12, image=handle_file(preview)), 784,
                                 api_name="/pixel_view")
    given = np.asarray(Image.open(preview)) >= 128
    assert all(np.array_equal(tile[:12] == 255, given[:12]) for tile in frame_tiles(picture, 2)[..., 0])


def test_receptive_fields_of_the_pixelrnn_models(client):
    # Row LSTM: a triangle above, a few pixels to the left; the rest of the context is unseen.
    *_, row = client.predict(*view_args("mnist-row_lstm"), 301, api_name="/pixel_view")
    assert "lie in its **blind spot**" in row
    # Diagonal BiLSTM: all but the last pixel of the row above, (9, 27), which the first layer
    # (3x3 here, reach 1) only brings into features from column 26 on (see pixelrnn.py).
    *_, diagonal = client.predict(*view_args("mnist-diagonal_bilstm"), 301, api_name="/pixel_view")
    assert "**299 of the 300** earlier pixels; **1** within its reach lie in its **blind spot**" in diagonal
    *_, diagonal = client.predict(*view_args("mnist-diagonal_bilstm"), 10 * 28 + 26 + 1, api_name="/pixel_view")
    assert "all of them, no blind spot" in diagonal


def test_stop_cancels_a_stream_and_the_app_goes_on(client):
    job = client.submit(*view_args(samples=1), 784, 1, api_name="/pixel_play")   # 784 frames at 15 a second
    deadline = time.monotonic() + 20
    while len(job.outputs()) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    job.cancel()
    deadline = time.monotonic() + 15                    # a frame already on its way may still land
    while not job.done() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    seen = len(job.outputs())
    # 784 frames had it not stopped. (Stop lands within a second here when the machine is quiet;
    # once, with the whole quick suite on 2 cores, 225 frames had arrived first.)
    assert job.done() and 3 <= seen < 784
    time.sleep(1.0)
    assert len(job.outputs()) == seen                   # nothing more arrives
    position, *_ = client.predict(*view_args(), 5, api_name="/pixel_next")
    assert position == 6


def test_more_plays_than_gradios_default_40_workers_all_start_at_once(server):
    """Gradio's queue runs at most `max_threads` events at once over all pools (40 by default):
    the 41st of a hall's plays waited for a whole play to end. Every one of 48 long plays
    (784 frames, 52 s) must show its first frame within seconds."""
    from gradio_client import Client

    players = 48
    hall = Client(server[0], verbose=False, download_files=False, ssl_verify=False, max_workers=players)
    try:
        jobs = [hall.submit(*view_args(samples=1, name="mnist-gated_pixelcnn"), 784, 1, api_name="/pixel_play")
                for _ in range(players)]
        deadline = time.monotonic() + 30
        while not all(job.outputs() for job in jobs) and time.monotonic() < deadline:
            time.sleep(0.05)
        started = sum(bool(job.outputs()) for job in jobs)
        for job in jobs:
            job.cancel()
        assert started == players
    finally:
        hall.close()


def test_a_play_far_behind_skips_whole_chunks_unrendered(services, monkeypatch):
    """A server too slow to render frames in time (here 20 ms more a frame, against 10 ms of
    playback each) renders only the chunks it can still show on time; the last frame comes."""
    monkeypatch.setattr(pixels, "FPS", 100)               # a chunk (15 frames) is 0.15 s of play
    slow_frame, render = pixels.Player.frame_files, pixels.Playback._render
    monkeypatch.setattr(pixels.Player, "frame_files", lambda self, *a: time.sleep(0.02) or slow_frame(self, *a))
    rendered = []
    monkeypatch.setattr(pixels.Playback, "_render", lambda self, k: rendered.append(k) or render(self, k))

    async def whole() -> list:
        return [f async for f in pixels.play(pixels.Player(services), *view_args(samples=1), 784, 4)]

    frames = asyncio.run(whole())
    chunks = pixels.chunk_of(len(pixels.frame_indices(784, 0, 4)) - 1) + 1
    numbers = [f[0] for f in frames]
    assert numbers == sorted(set(numbers)) and numbers[0] == 4 and numbers[-1] == 784
    assert 0 in rendered and chunks - 1 in rendered and len(set(rendered)) < chunks


def test_a_plays_chunks_cover_every_frame_once_and_the_first_frame_comes_alone():
    frames = list(range(200))
    covered = [f for k in range(pixels.chunk_of(199) + 1) for f in frames[slice(*pixels.chunk_frames(k))]]
    assert covered == frames
    assert pixels.chunk_frames(0) == (0, 1) and pixels.chunk_frames(1) == (1, pixels.CHUNK)
    assert all(pixels.chunk_of(f) == k for k in range(pixels.chunk_of(199) + 1)
               for f in frames[slice(*pixels.chunk_frames(k))])


def test_completion_keeps_the_given_rows(client, catalog):
    preview, _ = client.predict("mnist-pixelcnn", 2, api_name="/complete_from_example")
    given = np.asarray(Image.open(preview)) >= 128                        # thresholded at 0.5
    picture, _, _, status = client.predict(*view_args(samples=3, given_rows=10, image=handle_file(preview)), 784,
                                           api_name="/pixel_view")
    tiles = frame_tiles(picture, 3)[..., 0]
    for tile in tiles:
        assert np.array_equal(tile[:10] == 255, given[:10])
    model = catalog.checkpoint("mnist-pixelcnn", "autoregressive").model
    x = torch.from_numpy(given).float()[None]
    mask = sampling.top_rows_mask(model, 10)
    done = sampling.sample(model, 3, generator=torch.Generator().manual_seed(SEED), known=x, known_mask=mask)
    assert np.array_equal(tiles, render.to_uint8(done))
    # At a given pixel the summary says so.
    *_, status = client.predict(*view_args(samples=3, given_rows=10, image=handle_file(preview)), 51,
                                api_name="/pixel_view")
    assert "**given**" in status


def test_an_8bit_model_shows_a_histogram_over_grey_levels(client, catalog):
    info, picker, slider, picture, dist, field, status = client.predict(
        *view_args("fashion-mnist-gated_pixelcnn", samples=1), 784, api_name="/pixel_model")
    assert "256 grey levels" in info and slider["maximum"] == 784 and slider["value"] == 784 and picker["visible"] is False
    step = reference_step(catalog.checkpoint("fashion-mnist-gated_pixelcnn", "autoregressive").model, 1, 783)
    level = int(round(float(step.image[0, 0, 27, 27]) * 255))
    assert f"drew level **{level}**" in status and "entropy" in status


def test_pixel_tab_refuses_bad_settings_with_a_message(client, catalog, services):
    with pytest.raises(AppError, match="less than minimum value 1"):      # the slider's own check
        client.predict(*view_args(samples=0), 5, api_name="/pixel_view")
    with pytest.raises(AppError, match="less than minimum value 0.05"):
        client.predict(*view_args(temperature=0), 5, api_name="/pixel_view")
    # The same checks behind the sliders, for callers of the library function.
    with pytest.raises(ValueError, match="samples must lie between 1 and 16"):
        pixels.request(catalog, *view_args(samples=17))
    with pytest.raises(ValueError, match="temperature must lie"):
        pixels.request(catalog, *view_args(temperature=3.0))
    with pytest.raises(AppError, match="Pick, upload or draw an image to complete"):
        client.predict(*view_args(given_rows=5), 5, api_name="/pixel_view")
    with pytest.raises(ValueError, match="pixels per frame"):
        asyncio.run(anext(pixels.play(pixels.Player(services), *view_args(), 5, 0)))
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict(*view_args("mnist-vae"), 5, api_name="/pixel_view")


def served_config(server) -> dict:
    url, _ = server
    return httpx.get(f"{url.rstrip('/')}/config", timeout=10).json()


def component(config: dict, elem_id: str) -> dict:
    (found,) = [c for c in config["components"] if c.get("props", {}).get("elem_id") == elem_id]
    return found


def test_the_tab_opens_on_a_mid_pixel_with_the_blind_spot_and_counts_pixels_from_1(server, client):
    config = served_config(server)
    slider = component(config, "pixel-position")["props"]
    # Row 14, column 14 of 28x28 is pixel 14 * 28 + 14 + 1 = 407; the slider counts as the caption does.
    assert (slider["minimum"], slider["maximum"], slider["value"]) == (1, 784, 407)
    assert slider["label"].startswith("pixel (1 to 784")
    status = component(config, "pixel-status")["props"]["value"]
    assert status.startswith("**Pixel 407 of 784** (row 14, column 14)") and "lie in its **blind spot**" in status
    # Any pixel number the slider can hold is the one the summary names, the ends included.
    for pixel, where in ((1, "(row 0, column 0)"), (784, "(row 27, column 27)")):
        *_, text = client.predict(*view_args(), pixel, api_name="/pixel_view")
        assert text.startswith(f"**Pixel {pixel} of 784** {where}")
    with pytest.raises(AppError, match="The pixel must lie between 1 and 784, not 0"):
        client.predict(*view_args(), 0, api_name="/pixel_view")


def test_pixel_tab_controls_redraw_on_every_change_a_person_makes(server):
    # `.input` fires on dragging, typed numbers and arrow keys alike; `.release` only on a mouse release.
    config = served_config(server)
    ids = {elem: component(config, elem)["id"] for elem in ("pixel-position",)}
    (view,) = [d for d in config["dependencies"] if d.get("api_name") == "pixel_view"]
    triggers = {tuple(t) for t in view["targets"]}
    assert (ids["pixel-position"], "input") in triggers
    assert not any(event == "release" for _, event in triggers)
    labels = {c["id"]: c["props"].get("label") for c in config["components"]}
    on_input = {labels[i] for i, event in triggers if event == "input"}
    assert {"samples", "seed", "given rows (0 = generate from nothing)"} <= on_input
    assert any(label.startswith("temperature") for label in on_input)


# ---------------------------------------------------------------------- a VQ-VAE's prior, played here

def code_args(name="mnist-vqvae", label=None, seed=5):
    """The tab's inputs for a VQ-VAE: samples, temperature and given rows are for pixel models."""
    return (name, 4, 1.0, seed, 0, None, label)


def test_the_picker_offers_the_vqvaes_after_the_pixel_models(catalog, server):
    from explorer.ui import codes

    names = pixels.picker_order(catalog)
    assert names[-2:] == codes.picker_order(catalog) and set(catalog.autoregressive_names) <= set(names[:-2])
    (picker,) = [c for c in served_config(server)["components"]
                 if c.get("props", {}).get("label") == "autoregressive model"]
    assert {"mnist-vqvae", "mnist-vqvae-cond"} <= {value for _, value in picker["props"]["choices"]}


def test_picking_a_vqvae_counts_codes_and_hides_the_receptive_field(client):
    info, label, slider, picture, _, field, status = client.predict(*code_args(), 407, api_name="/pixel_model")
    assert (slider["maximum"], slider["value"]) == (49, 49) and slider["label"].startswith("code (1 to 49")
    assert field["visible"] is False and label["visible"] is False
    assert status.startswith("**Code 49 of 49**") and "pixel models" in status
    _, label, slider, _, _, field, status = client.predict(*code_args("mnist-vqvae-cond", 3), 20,
                                                           api_name="/pixel_model")
    assert slider["value"] == 20 and label["visible"] is True and "class" in status
    # Back to a pixel model: pixels again, and the receptive field shows.
    _, _, slider, _, _, field, status = client.predict(*view_args(), 20, api_name="/pixel_model")
    assert (slider["maximum"], slider["value"]) == (784, 20) and field["visible"] is True
    assert status.startswith("**Pixel 20 of 784**")


def test_a_vqvae_frame_here_is_the_codes_tabs_frame(client):
    for number in (1, 20, 49):
        picture, distribution, field, status = client.predict(*code_args(), number, api_name="/pixel_view")
        codes_picture, codes_distribution, codes_status = client.predict("mnist-vqvae", None, 5, number - 1,
                                                                          api_name="/codes_view")
        assert np.array_equal(rgb(picture), rgb(codes_picture))
        assert np.array_equal(rgb(distribution), rgb(codes_distribution))
        assert field is None and status.startswith(codes_status) and status.startswith(f"**Code {number} of 49**")
    position, *_ = client.predict(*code_args(), 49, api_name="/pixel_next")
    assert position == 49
    position, *_, status = client.predict(*code_args(), 1, api_name="/pixel_previous")
    assert position == 1 and status.startswith("**Code 1 of 49**")
    with pytest.raises(AppError, match="code must lie between 1 and 49"):
        client.predict(*code_args(), 50, api_name="/pixel_view")


def test_playing_a_vqvae_streams_one_code_a_frame_to_the_sample(client, monkeypatch):
    from explorer.ui import codes

    monkeypatch.setattr(codes, "FPS", 200)     # the server runs in this process: a quick stream
    frames = list(client.submit(*code_args(), 40, 4, api_name="/pixel_play"))
    assert [f[0] for f in frames] == list(range(41, 50))
    assert all(f[3] is None and f[4].startswith(f"**Code {f[0]} of 49**") for f in frames)
    final, *_ = client.predict("mnist-vqvae", None, 5, 48, api_name="/codes_view")
    assert np.array_equal(rgb(frames[-1][1]), rgb(final))
    # From the last code, Play starts again at the first and shows all 49.
    frames = list(client.submit(*code_args(), 49, 4, api_name="/pixel_play"))
    assert [f[0] for f in frames] == list(range(1, 50))
    first, *_ = client.predict("mnist-vqvae", None, 5, 0, api_name="/codes_view")
    assert np.array_equal(rgb(frames[0][1]), rgb(first))


def test_a_link_opens_the_pixel_tab_on_a_vqvae(catalog):
    names = pixels.picker_order(catalog)
    name, slider, *_ = pixels.restore(catalog, names, {"model": "mnist-vqvae", "pixel": "12"})
    assert name == "mnist-vqvae" and slider.maximum == 49 and slider.value == 12
    _, slider, *_ = pixels.restore(catalog, names, {"model": "mnist-vqvae"})
    assert slider.value == 49
