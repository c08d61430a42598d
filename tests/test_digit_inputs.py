"""The digit inputs every tab shares: examples, uploads and drawings end in the same 28x28
preview, and each bad input gets its own message while the session goes on."""

from __future__ import annotations

import io
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import intake
from tests.helpers import picture, png_with_size, seven


DIGIT_SLOTS = {"a": "mnist-vae", "b": "mnist-vae", "grid_image": "mnist-vae", "complete": "mnist-pixelcnn",
               "score": "mnist", "encode": "mnist-vae", "judge": "mnist", "codes": "mnist-vqvae"}


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
    # An empty canvas is a warning, not an error (whose badge would stick to the preview): the
    # preview and its caption stay as they were.
    from explorer.ui import digits

    for empty in ({"background": None, "layers": [], "composite": np.full((280, 280, 4), 255, np.uint8)},
                  {"background": None, "layers": [], "composite": None}):
        with pytest.warns(UserWarning, match="The drawing is empty: draw a digit on the sketchpad first"):
            kept = digits.drawn_digit(empty)
        assert all(isinstance(k, type(gr.skip())) for k in kept)
    client.predict({"background": None, "layers": [], "composite": handle_file(str(white))},
                   api_name="/a_from_drawing")  # no error through the API either

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


def test_a_file_sent_by_path_must_be_one_the_app_received(server, tmp_path: Path):
    """A caller can send a bare {"path": ...} (no type tag, so Gradio does not check it): the
    app reads only files in Gradio's upload folder, uploads and pictures it sent out itself."""
    from gradio_client import Client

    url, _ = server
    raw = Client(url, verbose=False, download_files=False)
    try:
        outside = tmp_path / "private.png"
        seven().save(outside)
        sneaky = [str(outside), str(tmp_path / ".." / tmp_path.name / "private.png"), "/etc/passwd"]
        for path in sneaky:
            # Previews are app-decoded gr.Images: Gradio's model takes a value without the tag.
            # (The upload box and the sketchpad have models that refuse one.)
            with pytest.raises(AppError, match="was not uploaded to this app"):
                raw.predict("mnist-vae", {"path": path}, {"path": path}, "lerp", 5, None, api_name="/interpolate")
        # A preview the app sent out can be sent back, as the page does.
        preview, _ = raw.predict("mnist-vae", 3, api_name="/a_from_example")
        strip, *_ = raw.predict("mnist-vae", {"path": preview["path"]}, {"path": preview["path"]}, "lerp", 5, None,
                                api_name="/interpolate")
        assert Path(strip["path"]).is_file()
    finally:
        raw.close()
