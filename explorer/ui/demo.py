"""The whole app: a compact header (presentation mode, copy link, presets) above one tab per
view, joined into one `gr.Blocks`. Each tab has its own model picker where one applies.

`build_demo(catalog)` returns the Blocks with its queue configured (`server.queued`); models
are loaded once (in the Catalog), and the first picture of every tab is computed here, on the
CPU. Running the page (process settings, start-up, the warm-up behind the server) is
`server.py`'s job.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .. import gpu
from . import compare, directions, encode, grid, interpolate, likelihood, manifold, pixels, replay, side_by_side
from . import codes
from .catalog import Catalog
from .services import Services
from .common import FileStore
from .grid import default_model
from .links import Links, presets_markdown
from .server import configure_process, queued

TITLE = "Latent Explorer"
TAGLINE = ("Walk a model's code space, encode and interpolate digits, watch PixelCNN and PixelRNN draw "
           "pixel by pixel, and ask how surprised each model is by an image.")
# The tabs, by the id a link names them with (see `links`).
TAB_LABELS = {"grid": "Latent grid", "interpolation": "Interpolation", "encode": "Encode",
              "directions": "Directions", "compare": "AE vs VAE", "manifold": "2-D manifold",
              "replay": "Training replay", "pixels": "Pixel by pixel", "codes": "Discrete codes (VQ-VAE)",
              "likelihood": "Likelihood",
              "three-kinds": "Three kinds of model"}
# Presentation mode: a class on the page's body (styles in common.CSS), toggled by the header's
# button, or on load by `?present=1` (server.PAGE_JS).
TOGGLE_PRESENT_JS = "() => { document.body.classList.toggle('present'); }"


def notices_markdown(catalog: Catalog) -> str:
    """Visible notes on skipped checkpoints (and missing test data), or nothing."""
    lines = [f"- {n}" for n in catalog.notices]
    # One line per reason, not per data set: "no internet" is said once.
    reasons: dict[str, list[str]] = {}
    for dataset, why in catalog.data_notes.items():
        reasons.setdefault(why, []).append(dataset)
    lines += [f"- No test images of {' or '.join(datasets)}: {why}. The examples are samples from the models."
              for why, datasets in reasons.items()]
    return ("**Notice**\n" + "\n".join(lines)) if lines else ""


def build_demo(catalog: Catalog, services: Services | None = None) -> gr.Blocks:
    """The Gradio app over the models in `catalog`; every event has an api_name. `services`
    (default: new ones over `catalog`) hold the cached computations; `server.launch` warms
    them up behind the running server."""
    services = services or Services(catalog)
    store = FileStore()
    start = default_model(catalog) if catalog.latent_names else None
    links = Links()
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        demo.services = services  # what server.launch warms up
        with gr.Row(elem_classes=["page-header"], equal_height=True):
            gr.Markdown(f"# {TITLE}", elem_classes=["title"])
            with gr.Column(scale=3, min_width=300, elem_classes=["chrome"]):
                with gr.Accordion("Presets and links: lecture moments, one click each", open=False) as sharing:
                    presets = gr.Markdown("")
                    link_box = gr.Textbox(label="link to this view (also copied to the clipboard)",
                                          placeholder="Copy link puts the address of this view here",
                                          buttons=["copy"], elem_id="link-box")
                    gr.Markdown(TAGLINE)
            present = gr.Button("Presentation mode", size="sm", scale=0, min_width=160, elem_id="present-toggle")
            link_button = gr.Button("Copy link", size="sm", scale=0, min_width=110, elem_id="copy-link",
                                    elem_classes=["chrome"])
        notices = notices_markdown(catalog)
        # Folded to one line, so the tabs keep their first screen; its title says how many.
        with gr.Accordion(f"Notice: {notices.count(chr(10) + '- ')} item(s) about files and data (open to read)",
                          open=False, visible=bool(notices), elem_classes=["notice"]):
            gr.Markdown(notices)
        if start is None:
            gr.Markdown("No latent model could be loaded, so there is nothing to explore yet.")
            return queued(demo)
        with gr.Tabs(elem_classes=["main-tabs"]) as tabs:
            with gr.Tab(TAB_LABELS["grid"], id="grid"):
                links.add(grid.build(services, start, store).link)
            with gr.Tab(TAB_LABELS["interpolation"], id="interpolation"):
                links.add(interpolate.build(services, start, store))
            with gr.Tab(TAB_LABELS["encode"], id="encode"):
                encode.build(services, start)
            with gr.Tab(TAB_LABELS["directions"], id="directions"):
                directions.build(services, start)
            with gr.Tab(TAB_LABELS["compare"], id="compare"):
                compare.build(catalog)
            with gr.Tab(TAB_LABELS["manifold"], id="manifold"):
                manifold.build(services)
            with gr.Tab(TAB_LABELS["replay"], id="replay"):
                links.add(replay.build(services))
            with gr.Tab(TAB_LABELS["pixels"], id="pixels"):
                links.add(pixels.build(services))
            with gr.Tab(TAB_LABELS["codes"], id="codes"):
                links.add(codes.build(services))
            with gr.Tab(TAB_LABELS["likelihood"], id="likelihood"):
                likelihood.build(services)
            with gr.Tab(TAB_LABELS["three-kinds"], id="three-kinds"):
                links.add(side_by_side.build(services))
        presets.value = presets_markdown({*catalog.latent, *catalog.autoregressive}, set(links.tabs))
        present.click(None, None, None, js=TOGGLE_PRESENT_JS, api_name="presentation_mode")
        links.wire(demo, tabs, TAB_LABELS, link_button, link_box, sharing)
    return queued(demo)


def build_from_folder(folder: str | Path, data_dir: str | Path | None = None, download: bool = True) -> gr.Blocks:
    """Load the checkpoints in `folder` and build the app over them (a folder that does not
    exist is a CheckpointError)."""
    configure_process()
    return gpu.outside_zerogpu_modes(lambda: build_demo(Catalog.from_folder(folder, data_dir=data_dir, download=download)))
