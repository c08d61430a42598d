"""Shareable links: a link restores the tab and its settings, "Copy link" writes them, bad links
open the defaults, and every preset names a shipped model and a tab the page has.

`/share_link`, `/select_model`'s follow-up `/grid_for_model`, `/interpolation_model` and
`/restore_link` are driven through gradio_client; the browser test loads a preset link.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import gradio as gr
import pytest

from explorer.ui import links
from explorer.ui.demo import TAB_LABELS
from explorer.ui.links import PRESETS, Links, Shareable, presets_markdown

ROOT = Path(__file__).resolve().parents[1]


def _tab(name: str, keys: tuple[str, ...]) -> Shareable:
    with gr.Blocks():
        components = [gr.Textbox() for _ in keys]

    def restore(params: dict[str, str]) -> list:
        if params.get(keys[0]) == "bad":
            raise ValueError("no such value")
        return [params.get(k, gr.skip()) for k in keys]

    return Shareable(name, keys, components, restore)


def test_restore_sets_only_the_linked_tab_and_skips_what_the_link_leaves_out():
    page = Links()
    page.add(_tab("grid", ("model", "dx")))
    page.add(_tab("pixels", ("model", "pixel")))
    page.add(None)  # a tab with nothing to share
    tab, values = page.restore({"tab": "pixels", "model": "mnist-pixelcnn", "dx": "3", "unknown": "x"})
    assert tab == "pixels"
    skip = type(gr.skip())
    assert isinstance(values[0], skip) and isinstance(values[1], skip)  # the grid tab is left alone
    assert values[2] == "mnist-pixelcnn" and isinstance(values[3], skip)  # no pixel in the link


def test_a_bad_or_unknown_link_changes_nothing():
    page = Links()
    page.add(_tab("grid", ("model", "dx")))
    skip = type(gr.skip())
    for params in ({"tab": "grid", "model": "bad"}, {"tab": "nowhere", "model": "x"}, {}):
        tab, values = page.restore(params)
        assert tab is None or params.get("model") == "bad"
        assert all(isinstance(v, skip) for v in values)


def test_query_holds_the_tab_and_its_values_and_round_trips_through_restore():
    page = Links()
    page.add(_tab("grid", ("model", "dx")))
    page.add(_tab("pixels", ("model", "pixel")))
    query = page.query("pixels", ["mnist-vae", 3, "mnist-pixelcnn", 407.0])
    params = dict(urllib.parse.parse_qsl(query.removeprefix("?")))
    assert params == {"tab": "pixels", "model": "mnist-pixelcnn", "pixel": "407"}
    tab, values = page.restore(params)
    assert tab == "pixels" and values[2:] == ["mnist-pixelcnn", "407"]


def test_every_preset_names_a_shipped_model_and_a_tab_of_the_page():
    shipped = {p.stem for p in (ROOT / "trained").glob("*.safetensors")}
    assert len(PRESETS) == 5
    for title, _, params in PRESETS:
        assert params["tab"] in TAB_LABELS, title
        assert params.get("model", "mnist-vae") in shipped, title
    text = presets_markdown(shipped, set(TAB_LABELS))
    assert text.count("](?tab=") == 5
    assert "mode collapse" not in presets_markdown(shipped - {"mnist-gan-collapse"}, set(TAB_LABELS))


def test_share_link_writes_the_grid_settings(client):
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/share_link"]
    # Every component of every shareable tab is an input (at its default); the grid's come first
    # after the open tab's label: model, dx, dy, span, size, fixed, seed.
    args = [p.get("parameter_default") for p in api["parameters"]]
    args[:8] = ["Latent grid", "mnist-vae2d", 1, 0, 3.5, 5, "prior mean", 0]
    params = dict(urllib.parse.parse_qsl(client.predict(*args, api_name="/share_link").removeprefix("?")))
    assert params == {"tab": "grid", "model": "mnist-vae2d", "dx": "1", "dy": "0", "span": "3.5", "size": "5"}
    args[6:8] = ["random draw (seed)", 42]
    params = dict(urllib.parse.parse_qsl(client.predict(*args, api_name="/share_link").removeprefix("?")))
    assert params["seed"] == "42"
    args[0] = "Training replay"
    params = dict(urllib.parse.parse_qsl(client.predict(*args, api_name="/share_link").removeprefix("?")))
    assert params == {"tab": "replay", "model": "mnist-dcgan"}


def test_restore_link_without_parameters_opens_the_defaults(client):
    result = client.predict(api_name="/restore_link")
    # No parameters: the tab and every setting are left as they are (updates without a value).
    assert len(result) > 10 and all(r == {"__type__": "update"} for r in result)


def test_grid_for_model_and_interpolation_model_follow_the_picker(client):
    picture, code = client.predict("mnist-vae2d", 0, 1, 2.5, 5, "prior mean", 0, None, None,
                                   api_name="/grid_for_model")
    assert Path(picture).exists() and len(code) == 2
    info, label = client.predict("mnist-cvae", None, api_name="/interpolation_model")
    assert "conditional on 10 classes" in info and label["visible"] is True
    with pytest.raises(Exception, match="no-such-model"):
        client.predict("no-such-model", None, api_name="/interpolation_model")


def test_links_module_documents_every_example_key():
    for key in ("tab=", "model=", "pixel=", "present=1"):
        assert key in links.__doc__


def test_tab_restores_check_their_values(catalog):
    from explorer.ui import grid, pixels
    from explorer.ui.services import Services

    services = Services(catalog)
    names = pixels.picker_order(catalog)
    name, position, samples, seed, given, temperature = pixels.restore(
        catalog, names, {"model": names[0], "pixel": "407", "seed": "5", "given": "3"})
    assert name == names[0] and position.value == 407 and position.maximum == 784
    assert (samples, seed, given, temperature) == (pixels.START_SAMPLES, 5, 3, pixels.START_TEMPERATURE)
    for bad in ({"pixel": "0"}, {"pixel": "785"}, {"model": "mnist-vae"}, {"seed": "nan"}):
        with pytest.raises((ValueError, gr.Error)):
            pixels.restore(catalog, names, bad)
    model, dx, dy, span, size, fixed, seed = grid.restore(services, {"model": "mnist-vae", "dx": "3", "dy": "1",
                                                                     "span": "4", "seed": "9"})
    assert (model, dx.value, dy.value, dx.maximum, span, size, fixed, seed) == (
        "mnist-vae", 3, 1, 3, 4.0, 9, "random draw (seed)", 9)
    for bad in ({"dx": "1", "dy": "1"}, {"dx": "4"}, {"span": "50"}):
        with pytest.raises((ValueError, gr.Error)):
            grid.restore(services, {"model": "mnist-vae", **bad})


def test_a_session_copies_no_blocks_configs_for_its_values(client, catalog):
    # demo.lazy_session_config: Gradio's SessionState no longer precomputes or updates a config
    # per block (only its unused deep-link button read them); it still reads and writes state.
    from gradio.state_holder import SessionState

    from explorer.ui import build_demo
    from explorer.ui.server import lazy_session_config

    lazy_session_config()
    demo = build_demo(catalog)
    session = SessionState(demo)
    assert session.config_values == {}
    assert session.blocks_config.blocks.keys() == demo.default_config.blocks.keys()
    state = next(k for k, b in demo.blocks.items() if isinstance(b, gr.State))
    session[state] = "kept"
    assert session[state] == "kept"
    # Events write values without building deep-link entries for them (setting a block itself,
    # as above, still makes one: that is rarer, and left as Gradio has it).
    before = dict(session.config_values)
    picture = next(k for k, b in demo.blocks.items() if isinstance(b, gr.Image))
    session._update_value_in_config(picture, {"path": "x.png"})
    assert session.config_values == before and picture not in session.config_values


def test_a_sessions_blocks_stay_the_pages_however_many_updates_it_receives(catalog, tmp_path):
    """server.updates_keep_their_block_id: an event that updates an input's props (the grid's
    sliders and class picker on a model switch) no longer adds a component to the session at
    every call (a leak of a few kB per event, found in a soak)."""
    from gradio_client import Client

    from explorer.ui import build_demo
    from tests.helpers import serve_on_loopback

    demo = build_demo(catalog)
    url = serve_on_loopback(demo)
    try:
        client = Client(url, verbose=False, download_files=str(tmp_path))
        sizes = []
        for i, name in enumerate(["mnist-cvae", "mnist-vae2d", "mnist-vae", "mnist-cvae"] * 3):
            info, dx, dy, grid_label = client.predict(name, 1, 0, None, api_name="/select_model")
            (session,) = demo.state_holder.session_data.values()
            sizes.append(len(session.blocks_config.blocks))
        client.close()
        # The updates still reach the page: the 2-D model's sliders end at 1.
        info, dx, dy, _ = Client(url, verbose=False).predict("mnist-vae2d", 0, 1, None, api_name="/select_model")
        assert dx["maximum"] == dy["maximum"] == 1
    finally:
        demo.close()
    assert sizes == [len(demo.default_config.blocks)] * len(sizes)
