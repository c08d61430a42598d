"""`python app.py` as a new Space meets it: no data folder, no network, an empty home.

Nothing on the page or in an endpoint's answer may show a raw network error, a traceback or
a server path; the data sets' absence is said once, and every tab has examples (samples from
the models), the Likelihood tab's picture included.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import httpx
import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from tests.helpers import REPO, app_py_serving, free_port

RAW = ("urlopen", "Errno", "Traceback", "Error:", "site-packages")
# An absolute path: a slash after a space, quote, bracket or line start, then two path parts.
ABSOLUTE_PATH = re.compile(r"(?:^|[\s(`'\"\[])/(?:[\w.-]+/)+[\w.-]*")


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value, except inside Gradio's file references (pictures, which
    Gradio serves from its own cache by URL)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and not {"path", "url"} <= set(value):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from strings(v)


def page_texts(config: dict) -> list[str]:
    """What the page shows in words: the components' values, labels and info lines (not the
    file references Gradio keeps for pictures)."""
    out = []
    for comp in config["components"]:
        props = comp.get("props", {})
        for key in ("value", "label", "info", "placeholder", "choices", "headers"):
            out.extend(strings(props.get(key)))
    return out


def assert_friendly(texts: list[str], *private: Path) -> None:
    for text in texts:
        for raw in RAW:
            assert raw not in text, text
        assert not ABSOLUTE_PATH.search(text), text
        for path in private:
            assert str(path) not in text, text


pytestmark = pytest.mark.slow  # python app.py as a process, its downloads failing


@pytest.fixture(scope="module")
def offline_app(tiny_trained_dir, tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"  # a proxy that nobody answers: every download fails
    env = {k: v for k, v in os.environ.items() if k not in ("LATENT_EXPLORER_DATA", "XDG_CACHE_HOME")}
    env.update(HOME=str(home), LATENT_EXPLORER_TRAINED=str(tiny_trained_dir), GRADIO_SERVER_NAME="127.0.0.1",
               GRADIO_SERVER_PORT=str(port), GRADIO_ANALYTICS_ENABLED="False", OMP_NUM_THREADS="1",
               HF_HUB_OFFLINE="1", http_proxy=dead, https_proxy=dead, HTTP_PROXY=dead, HTTPS_PROXY=dead,
               no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost")
    url = f"http://127.0.0.1:{port}/"
    with app_py_serving(env, port):
        client = Client(url, verbose=False, download_files=str(tmp_path_factory.mktemp("offline-downloads")))
        yield url, client, home, tiny_trained_dir
        client.close()


def test_the_page_says_once_and_kindly_that_there_are_no_test_images(offline_app):
    url, _, home, trained = offline_app
    config = httpx.get(url + "config", timeout=10).json()
    texts = page_texts(config)
    assert_friendly(texts, home, trained, REPO)
    notices = [t for t in texts if "could not be downloaded" in t]
    assert len(notices) == 1 and notices[0].count("could not be downloaded") == 1
    assert ("No test images of fashion-mnist or mnist: they could not be downloaded (no internet connection?). "
            "The examples are samples from the models.") in notices[0]
    assert not any(p.suffix == ".part" or ".part" in p.name for p in home.rglob("*"))
    html = httpx.get(url, timeout=10).text
    for raw in ("urlopen", "Errno", "Traceback", str(home), str(trained)):
        assert raw not in html


def test_every_answer_is_friendly_and_the_likelihood_tab_scores_a_sample(offline_app, tmp_path):
    _, client, home, trained = offline_app
    answers = []
    info, *_ = client.predict("mnist-vae", 0, 1, None, api_name="/select_model")
    answers.append(info)
    assert "examples are samples from the model" in info
    digit, caption = client.predict("mnist-vae", 3, api_name="/a_from_example")
    answers.append(caption)
    assert caption == "no test images available; a sample from mnist-vae (seed 3)"
    picture, table, note = client.predict("mnist-vae2d", 5, None, api_name="/manifold")
    answers += [note, json.dumps(table)]
    assert table["data"] == [] and "No test images are available for mnist" in note
    preview, caption = client.predict("mnist", 0, api_name="/score_source")
    answers.append(caption)
    assert "a sample from" in caption
    scores, gallery, reading = client.predict(handle_file(preview), api_name="/likelihood")
    answers += [reading, json.dumps(scores)]
    assert len(scores["data"]) >= 4  # every unconditional autoregressive model and the VAE bound
    assert gallery and np.asarray(Image.open(gallery[0]["image"])).shape[0] > 28  # a heat-map picture
    code, decoded, note = client.predict("mnist-vae", handle_file(digit), None, api_name="/encode")
    answers.append(note)
    assert len(code) == 4 and np.asarray(Image.open(decoded)).shape == (28, 28)
    assert_friendly(answers, home, trained, REPO)
