"""The Encode tab (`/encode`, `/encode_controls`): image in -> the code as a list of floats and its decoding."""

from __future__ import annotations

import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from explorer import heavy, intake, latent, render
from explorer.ui import encode as encode_tab
from tests.helpers import picture


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
