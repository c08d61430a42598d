"""The whole app, served in-process on a free port and driven through gradio_client: every
event is a named endpoint, damaged checkpoints are skipped with a notice, the model picker
updates the page, and `python app.py` serves on the port from the environment.

Each tab has its own test module (test_tab_*.py, test_digit_inputs.py); they all drive the
same session server (conftest.py), which runs on tiny random-weight checkpoints and a tiny
fake data set, so no real data or network is needed. Outputs are checked against the same
maths done directly on the loaded models.
"""

from __future__ import annotations

import os

import httpx
import pytest

from tests.helpers import app_py_serving, free_port, write_fake_dataset


ENDPOINTS = {
    "/select_model", "/grid_for_model", "/grid", "/interpolation_model", "/restore_link", "/share_link",
    "/interpolate", "/interpolation_slides", "/compare", "/compare_controls", "/manifold",
    "/grid_x", "/grid_y", "/grid_slides", "/compare_x", "/compare_y", "/compare_after_models",
    "/manifold_controls", "/replay_run", "/replay_epoch", "/replay_play",
    "/pixel_model", "/pixel_view", "/pixel_next", "/pixel_previous", "/pixel_play", "/likelihood", "/score_source",
    "/encode", "/encode_controls",
    "/dimension_ranking", "/direction_grid", "/attribute_walk", "/direction_scatter", "/preset_1_to_7",
    "/three_kinds", "/three_kinds_source", "/three_kinds_example", "/three_kinds_classes", "/three_kinds_generate",
    "/codes_model", "/codes_view", "/codes_next", "/codes_previous", "/codes_play", "/codes_encode", "/codes_edit",
    "/codes_pick", "/codes_compare",
    *(f"/{slot}_from_{source}" for slot in ("grid_image", "a", "b", "complete", "score", "encode",
                                            "directions_image", "judge", "codes")
      for source in ("example", "upload", "drawing")),
}


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
    info, dx, dy, grid_label = client.predict("mnist-cvae", 3, 2, None, api_name="/select_model")
    # The sliders move to the model's two strongest dimensions, as the Directions tab ranks them.
    ranking, _ = client.predict("mnist-cvae", api_name="/dimension_ranking")
    strongest = [int(d[1:]) for d in (row[0] for row in ranking["data"][:2])]
    assert "conditional on 10 classes" in info and [dx["value"], dy["value"]] == strongest
    assert grid_label["visible"] is True and len(grid_label["choices"]) == 10
    info, dx, dy, grid_label = client.predict("mnist-vae2d", 3, 2, None, api_name="/select_model")
    assert "latent dimensions: 2" in info
    assert dx["maximum"] == dy["maximum"] == 1 and {dx["value"], dy["value"]} == {0, 1}
    assert grid_label["visible"] is False


def test_select_model_describes_a_gan(client):
    info, *_ = client.predict("mnist-dcgan", 0, 1, None, api_name="/select_model")
    assert "frechet_distance = 12.30" in info and "no encoder" in info


@pytest.mark.slow  # starts python app.py as a process
def test_python_app_py_serves_on_the_port_from_the_environment(tiny_trained_dir, tmp_path):
    port = free_port()
    env = {**os.environ, "LATENT_EXPLORER_TRAINED": str(tiny_trained_dir),
           "LATENT_EXPLORER_DATA": str(write_fake_dataset(tmp_path / "data")),
           "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}
    with app_py_serving(env, port) as config:
        assert "mnist-vae2d" in config.text and "Latent Explorer" in config.text


def test_the_server_skips_work_nothing_here_uses(monkeypatch):
    """Per-request work that profiles of a hall's load found and nothing in the app reads:
    FastAPI's telemetry hooks, a failing search for matplotlib on every event, and the cycle
    collector's walks over everything start-up made."""
    import importlib.util
    import sys

    import gradio as gr

    from explorer.ui import launch
    from explorer.ui.server import no_matplotlib_search

    import gc

    seen = {}
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kwargs: seen.update(kwargs))
    with gr.Blocks() as demo:
        gr.Markdown("x")
    gc.unfreeze()
    try:
        launch(demo.queue())
        # What start-up made is frozen: full collections skip it.
        assert gc.get_freeze_count() > 1000 and not gc.is_finalized(demo) and demo not in gc.get_objects()
    finally:
        gc.unfreeze()
    assert seen["app_kwargs"] == {"telemetry": {"tracing": False, "metrics": False, "logs": False}}
    seen.clear()
    launch(demo, app_kwargs={"docs_url": "/docs"})     # a deployment's own settings win
    assert seen["app_kwargs"] == {"docs_url": "/docs"}

    # Without matplotlib, its import fails at once, with the ImportError Gradio expects...
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    no_matplotlib_search()
    assert sys.modules["matplotlib"] is None
    try:
        import matplotlib  # noqa: F401
        raise AssertionError("matplotlib imported")
    except ImportError:
        pass
    # ...and where it is installed, nothing changes.
    monkeypatch.delitem(sys.modules, "matplotlib")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object())
    no_matplotlib_search()
    assert "matplotlib" not in sys.modules
