"""Hostile and malformed input: every endpoint answers with a sentence, never a traceback.

A seeded generator gives every endpoint's handler at least 200 malformed values (wrong
types, NaN and infinities, huge and negative numbers, unknown names, path-like strings,
arrays that are no picture), one argument at a time with the others valid; a sample of
them goes through `gradio_client` against the running app.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import re

import gradio as gr
import numpy as np
import pytest
from gradio_client.exceptions import AppError

from explorer.ui import inputs

CALLS_PER_ENDPOINT = 200
# What a message for a person never holds: Python's words for its own failures, server paths.
TECHNICAL = re.compile(r"Traceback|unhashable|cannot convert|Overflow|long long|NoneType|object has no"
                       r"|not subscriptable|invalid literal|/tmp/|/work/|/home/|site-packages|\.py\b",
                       re.IGNORECASE)

SCALARS = [None, "", " ", "abc", "NaN", "inf", "-inf", "1e999", " 3 ", "\x00", "../../etc/passwd",
           "/etc/passwd", "mnist-vae\n", "MNIST-VAE", [], ["mnist-vae"], [1, 2], [[1, 2], [3]], {}, {"a": 1},
           math.nan, math.inf, -math.inf, 1e308, -1e308, 2**63, 2**64, -2**63 - 1, 10**30, -(10**30), -1,
           -10**9, 0.5, 2.5, 1e-300, True, False, 0, 1, 3, 99, 10**6]
ARRAYS = [np.zeros((0, 0), np.uint8), np.zeros(5, np.uint8), np.zeros((2, 2, 2, 2), np.uint8),
          np.full((28, 28), np.nan), np.full((28, 28), np.inf), np.array([["a", "b"]]),
          np.zeros((28, 28, 7), np.uint8), np.zeros((5000, 3), np.uint8), np.zeros((28, 28), bool),
          np.random.default_rng(0).integers(0, 255, (28, 28, 4), dtype=np.uint8), np.zeros((28, 28))]


def malformed(rng: random.Random):
    """One malformed value: a scalar from the list, a random huge or tiny number, or an array."""
    roll = rng.random()
    if roll < 0.6:
        return rng.choice(SCALARS)
    if roll < 0.8:
        return rng.choice([-1, 1]) * 10 ** rng.uniform(-5, 40) * rng.choice([1, 1.0])
    if roll < 0.9:
        return rng.choice(ARRAYS)
    return "".join(rng.choice("abc/.\\%$\x00é9 -") for _ in range(rng.randint(1, 30)))


def digit() -> np.ndarray:
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 12:16] = 255
    return image


def baseline(component: gr.components.Component):
    """A valid value for an input component, as the handler would get it from the page."""
    if isinstance(component, gr.Image):
        return digit()
    if isinstance(component, (gr.File, gr.Sketchpad)):
        return None
    if isinstance(component, gr.Slider) and re.search(r"size|steps|samples|pixel", component.label or ""):
        return component.minimum  # the cheapest valid setting: the suite stays fast
    return component.value


def endpoints(demo: gr.Blocks):
    for fn in demo.fns.values():
        if fn.fn is not None and fn.api_name and fn.inputs:
            yield fn


def call(fn, args):
    result = fn.fn(*args)
    if hasattr(result, "__next__"):  # a stream: its first frames are enough
        result = list(itertools.islice(result, 2))
    return result


@pytest.fixture(scope="module")
def demo(catalog):
    from explorer.ui import build_demo

    return build_demo(catalog)


def test_every_endpoint_answers_malformed_values_with_a_sentence(demo, caplog):
    rng = random.Random(17)
    tried: dict[str, int] = {}
    refused: dict[str, int] = {}
    with caplog.at_level(logging.WARNING):
        for fn in endpoints(demo):
            valid = [baseline(c) for c in fn.inputs]
            for _ in range(CALLS_PER_ENDPOINT):
                args = list(valid)
                args[rng.randrange(len(args))] = malformed(rng)
                try:
                    call(fn, args)
                except gr.Error as err:
                    refused[fn.api_name] = refused.get(fn.api_name, 0) + 1
                    assert err.message and not TECHNICAL.search(err.message), (fn.api_name, args, err.message)
                except Exception as err:  # noqa: BLE001  the point: nothing else may escape
                    pytest.fail(f"/{fn.api_name} raised {err!r} for {args!r}")
                tried[fn.api_name] = tried.get(fn.api_name, 0) + 1
                # Every refusal came from a check made for it, not from the catch-all.
                caught = [r.getMessage() for r in caplog.records if "unforeseen input error" in r.getMessage()]
                assert not caught, (fn.api_name, args, caught)
    assert len(tried) >= 20 and min(tried.values()) >= CALLS_PER_ENDPOINT
    assert sum(refused.values()) > len(tried) * CALLS_PER_ENDPOINT // 3  # most were refused, not ignored


@pytest.mark.parametrize("value, message", [
    (["mnist-vae"], "Pick a model"), (7, "Pick a model"), ("no-such-model", "Unknown model"),
])
def test_model_names(catalog, value, message):
    with pytest.raises(gr.Error, match=message):
        inputs.model_name(catalog, value)


@pytest.mark.parametrize("value", [2**63, -1, math.nan, math.inf, "x", [3], 1.5, True])
def test_seeds_out_of_range_get_the_range(value):
    with pytest.raises(gr.Error, match="seed must be a whole number from 0 to 9,223,372,036,854,775,807"):
        inputs.seed(value)


def test_clean_values_pass_through(catalog):
    assert inputs.seed(2**63 - 1) == 2**63 - 1 and inputs.seed(5.0) == 5 and inputs.seed("12") == 12
    assert inputs.whole(3.0, "x", 0, 3) == 3 and inputs.number("0.5", "x", 0, 1) == 0.5
    assert inputs.label(catalog, "mnist-cvae", 9) == 9 and inputs.label(catalog, "mnist-vae", 99) is None
    with pytest.raises(gr.Error, match="class must be a whole number from 0 to 9"):
        inputs.label(catalog, "mnist-cvae", math.inf)


@pytest.mark.parametrize("api, args, message", [
    ("/grid", (["mnist-vae"], 0, 1, 2.0, 3, "prior mean", 0, None, None), "Pick a model"),
    ("/grid", ("mnist-vae", 0, 1, 2.0, 3, "random draw (seed)", 2**64, None, None), "seed must be"),
    ("/grid", ("mnist-cvae", 0, 1, 2.0, 3, "prior mean", 0, None, 1e300), "class must be"),
    ("/interpolate", (["mnist-vae"], None, None, "slerp", 10, None), "Pick a model"),
    ("/a_from_example", (["mnist-vae"], 3), "Pick a model"),
    ("/compare", ("mnist-ae", "mnist-vae", 0, 1, 2.0, 5, "random draw (seed)", -3, None), "seed must be"),
    ("/a_from_example", ("mnist-vae", 1e300), "test image number"),
])
def test_a_sample_through_the_client(client, api, args, message):
    with pytest.raises(AppError, match=message) as caught:
        client.predict(*args, api_name=api)
    assert not TECHNICAL.search(str(caught.value))


@pytest.mark.parametrize("content, message", [
    (None, "too big"),                            # the bomb: 97 kB, 8,880 x 8,880 pixels
    (b"", "is empty"),
    (b"not a picture at all", "not an image this app can read"),
    ("truncated", "damaged or incomplete"),
])
def test_pictures_sent_as_a_preview_or_drawing_get_the_apps_sentence(client, tmp_path, content, message):
    """Pictures Gradio decoded itself (a preview an API caller sends, a sketchpad's layers) are
    decoded by the app: a sentence for a person, the pixel cap read from the header, no cache
    path (Gradio's own decoding answered with a ComponentProcessingError naming them)."""
    from gradio_client import handle_file

    from tests.helpers import png_with_size

    path = tmp_path / "picture.png"
    if content is None:
        path.write_bytes(png_with_size(8880, 8880))
    elif content == "truncated":
        from PIL import Image
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:200])
    else:
        path.write_bytes(content)
    for api, args in (("/encode", ("mnist-vae", handle_file(str(path)), None)),
                      ("/a_from_drawing", ({"background": None, "layers": [], "composite": handle_file(str(path))},))):
        with pytest.raises(AppError, match=message) as caught:
            client.predict(*args, api_name=api)
        assert not TECHNICAL.search(str(caught.value)) and "ComponentProcessing" not in str(caught.value), api


def test_a_preview_sent_by_an_api_caller_still_works(client, tmp_path):
    from gradio_client import handle_file
    from PIL import Image

    path = tmp_path / "digit.png"
    Image.fromarray(digit()).save(path)
    code, decoded, _ = client.predict("mnist-vae", handle_file(str(path)), None, api_name="/encode")
    assert len(code) > 0 and decoded
