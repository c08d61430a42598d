"""The Encode tab (`/encode`, `/encode_controls`): image in -> the code as a list of floats and its decoding."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from explorer import heavy, intake, latent, render
from explorer.ui import encode as encode_tab
from tests.helpers import picture, progress_lines


@pytest.mark.parametrize("name, label", [("mnist-vae", None), ("mnist-cvae", 7), ("mnist-dcgan", None)])
def test_encode_returns_the_code_and_its_decoding(client, catalog, name, label):
    preview, caption = client.predict(name, 5, api_name="/encode_from_example")
    code, decoded, note = client.predict(name, handle_file(preview), label, api_name="/encode")
    model = catalog.checkpoint(name, "latent").model
    x = intake.prepare_digit(picture(preview)).unsqueeze(0)
    want = latent.encode(model, x, label)[0]
    assert isinstance(code, list) and len(code) == model.latent_dim and all(isinstance(v, float) for v in code)
    assert code == pytest.approx(want.tolist(), abs=1e-4)
    expected = render.to_uint8(latent.decode(model, want.unsqueeze(0), label)[0])
    assert picture(decoded).shape == (28, 28) and np.abs(picture(decoded).astype(int) - expected).max() <= 1
    error = float(latent.reconstruction_error(model, x, want.unsqueeze(0), label)[0])
    assert f"**{model.latent_dim} numbers**" in note and f"{error:.4f} mean squared error per pixel" in note
    assert ("found by optimisation" in note) == (name == "mnist-dcgan")


def test_encode_takes_any_picture_the_way_uploads_are_taken(client, catalog, tmp_path):
    photo = Image.new("RGB", (300, 200), "white")
    ImageDraw.Draw(photo).line([(150, 30), (150, 170)], fill="black", width=20)  # a "1", black on white
    path = tmp_path / "one.png"
    photo.save(path)
    code, decoded, _ = client.predict("mnist-vae", handle_file(str(path)), None, api_name="/encode")
    x = intake.prepare_digit(np.asarray(Image.open(path))).unsqueeze(0)
    assert code == pytest.approx(latent.encode(catalog.checkpoint("mnist-vae", "latent").model, x)[0].tolist(), abs=1e-4)


def test_encode_says_what_is_missing(client):
    with pytest.raises(AppError, match="Pick, upload or draw an image to encode"):
        client.predict("mnist-vae", None, None, api_name="/encode")
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("nope", None, None, api_name="/encode")
    label = client.predict("mnist-cvae", None, api_name="/encode_controls")
    assert label["visible"] is True
    assert client.predict("mnist-vae", None, api_name="/encode_controls")["visible"] is False


def test_a_gan_is_inverted_once_per_image_and_an_encoder_never_asks_for_a_gpu(services, monkeypatch):
    """The inversion is heavy work (a GPU on ZeroGPU); encoding the same image again is
    remembered, and an encoder network's one quick pass never goes through the GPU call."""
    inverted = []
    monkeypatch.setattr(heavy, "invert", lambda *a, **k: inverted.append(a) or heavy.encode(*a, **k))
    image = (np.random.default_rng(1).random((28, 28)) * 255).astype(np.uint8)
    first = encode_tab.encode(services, "mnist-dcgan", image, None)
    second = encode_tab.encode(services, "mnist-dcgan", image, None)
    assert second[0] == first[0] and len(inverted) == 1
    encode_tab.encode(services, "mnist-vae", image, None)
    assert len(inverted) == 1


class RecordedProgress:
    """Stands in for the gr.Progress Gradio hands a handler: records what it is told."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, int], str]] = []

    def __call__(self, progress, desc=None, total=None, unit="steps"):
        self.calls.append((progress, desc))


def test_a_gan_encode_reports_its_inversion_step_by_step_and_the_code_is_unchanged(services, catalog):
    model = catalog.checkpoint("mnist-dcgan", "latent").model
    steps = model.inversion["steps"]
    image = (np.random.default_rng(7).random((28, 28)) * 255).astype(np.uint8)
    progress = RecordedProgress()
    code, _, _ = encode_tab.encode(services, "mnist-dcgan", image, None, progress)
    x = intake.prepare_digit(image).unsqueeze(0)
    assert code == pytest.approx(latent.encode(model, x)[0].tolist(), abs=1e-5)
    done = [p[0] for p, _ in progress.calls]
    assert progress.calls[0] == ((0, steps), f"inverting the generator: step 0 of {steps}")
    assert progress.calls[-1] == ((steps, steps), f"inverting the generator: step {steps} of {steps}")
    assert done == sorted(done) and 10 <= len(done) <= steps + 1
    assert all(p == (d, steps) and desc == f"inverting the generator: step {d} of {steps}"
               for (p, desc), d in zip(progress.calls, done))
    again = RecordedProgress()                      # remembered: no inversion, nothing to report
    assert encode_tab.encode(services, "mnist-dcgan", image, None, again)[0] == code and again.calls == []
    vae = RecordedProgress()                        # an encoder network: one quick pass, no progress line
    encode_tab.encode(services, "mnist-vae", image, None, vae)
    assert vae.calls == []


def test_the_encode_endpoint_streams_the_inversion_progress_of_a_gan(client, catalog, tmp_path):
    steps = catalog.checkpoint("mnist-dcgan", "latent").model.inversion["steps"]
    path = tmp_path / "noise.png"
    Image.fromarray((np.random.default_rng(8).random((28, 28)) * 255).astype(np.uint8)).save(path)
    job = client.submit("mnist-dcgan", handle_file(str(path)), None, api_name="/encode")
    code, _, note = job.result()
    lines = progress_lines(job)
    assert lines and all(line.startswith("inverting the generator: step ") and line.endswith(f" of {steps}")
                         for line in lines)
    assert "found by optimisation" in note and len(code) == catalog.checkpoint("mnist-dcgan", "latent").model.latent_dim
