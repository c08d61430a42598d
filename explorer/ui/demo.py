"""The whole app: a compact header (presentation mode, copy link, presets) above one tab per
view, joined into one `gr.Blocks`. Each tab has its own model picker where one applies.

`build_demo(catalog)` returns the Blocks with its queue configured; `launch(demo)` starts it
with the app's styling. Models are loaded once (in the Catalog); their cached computations
(the Services) are warmed up here, so the first visitor does not pay for them; the first
picture of every tab is computed at build time.
"""

from __future__ import annotations

import copy
import gc
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

from .. import intake, memory, render
from . import inputs
from . import compare, directions, encode, grid, interpolate, likelihood, manifold, pixels, replay, side_by_side
from . import codes
from .catalog import Catalog
from .services import Services
from .common import CSS, SHARED_PICTURES, FileStore
from .grid import default_model
from .links import Links, presets_markdown

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
# button, or on load by `?present=1` (PAGE_JS, run by the browser when the page opens).
TOGGLE_PRESENT_JS = "() => { document.body.classList.toggle('present'); }"
PAGE_JS = """() => {
  const params = new URLSearchParams(window.location.search);
  if (params.get('present') === '1') document.body.classList.add('present');
}"""
# Queue: at most this many waiting requests in all; beyond it new ones are turned away with
# a message instead of piling up behind a flood. A lecture hall (100-200 people, each a few
# events at once) fits; a flood past it is bounded.
MAX_QUEUE = 600
# Sessions whose state Gradio keeps (about 340 kB each); the oldest are dropped past it.
SESSIONS = 400
# Waiting visitors hear their place in the queue every this many seconds. Gradio's default
# ("auto") tells every waiting request of a pool each time one of them starts: with a hall
# queued, O(n) messages per request, written by the one event loop and parsed by every client
# (60 clients making 2 grids each: 55-57 ms of server CPU per call with "auto", 42-46 at 2 s).
QUEUE_STATUS_EVERY = 1.0
# Gradio's monitoring summary is rebuilt every this many events, over as many (see `queued`).
ANALYTICS_EVERY = 1000


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


def build_demo(catalog: Catalog, warm_up: bool = True) -> gr.Blocks:
    """The Gradio app over the models in `catalog`; every event has an api_name."""
    services = Services(catalog)
    if warm_up:
        services.warm_up()
    store = FileStore()
    start = default_model(catalog) if catalog.latent_names else None
    links = Links()
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
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


def queued(demo: gr.Blocks) -> gr.Blocks:
    """The app's queue: bounded (MAX_QUEUE), two requests of a kind at a time unless an event
    says otherwise, places in the queue told every QUEUE_STATUS_EVERY seconds."""
    # Gradio's monitoring summary (a pandas group-by over the last 10,000 events) is rebuilt
    # after every event by default, a cost that grows with the events kept until 10,000 have
    # run. Nothing here reads it: rebuild it every ANALYTICS_EVERY events, over the last as
    # many. The Queue reads both settings when it is made, here.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(ANALYTICS_EVERY))
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", str(ANALYTICS_EVERY))
    return demo.queue(max_size=MAX_QUEUE, default_concurrency_limit=2, status_update_rate=QUEUE_STATUS_EVERY)


def launch(demo: gr.Blocks, **kwargs: Any) -> Any:
    """Start the app with its styling; host and port come from GRADIO_SERVER_NAME /
    GRADIO_SERVER_PORT unless given. Extra keyword arguments go to `Blocks.launch`."""
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("js", PAGE_JS)
    kwargs.setdefault("max_file_size", "50mb")
    kwargs.setdefault("show_error", True)
    kwargs.setdefault("state_session_capacity", SESSIONS)
    kwargs.setdefault("max_threads", worker_slots(demo))
    # FastAPI's OpenTelemetry hooks, unused here, looked up their providers in os.environ on
    # every request (about 4% of the time the server holds the interpreter lock under load);
    # switched off, a request skips them. A deployment that traces passes its own app_kwargs.
    kwargs.setdefault("app_kwargs", {"telemetry": {"tracing": False, "metrics": False, "logs": False}})
    # Start-up leaves about 480,000 objects for the cycle collector (models, the page's blocks);
    # each full collection walked them all, stopping every request for 260-380 ms, 13 times in
    # 2.5 minutes of 100-client bursts (timed with gc.callbacks in the server). Frozen, they are
    # skipped: full collections then took 9-36 ms (one 76).
    gc.collect()
    gc.freeze()
    return demo.launch(**kwargs)


def worker_slots(demo: gr.Blocks) -> int:
    """How many events the queue may run at once: the sum of every pool's own limit. Gradio's
    queue has one more limit over all pools, `max_threads` (40 by default), so with its default
    the 41st of 60 plays pressed at once waited for a whole play (13 s) to end although the
    play pool has 256 slots (benchmarks/reports/play_capacity.md). Its thread limiter, the same
    number, only bounds threads the pools already bound (each sync handler runs in its pool's
    slot) and the brief pre- and postprocessing of values."""
    queue = demo._queue
    limits: dict[str, int] = {}
    for fn in demo.fns.values():
        if fn.fn is None or not fn.queue:
            continue
        limit = queue.default_concurrency_limit if fn.concurrency_limit == "default" else fn.concurrency_limit
        limits[fn.concurrency_id] = min(limits.get(fn.concurrency_id, limit or 1), limit or 1)
    return max(40, sum(limits.values()))


def configure_process() -> None:
    """Make the app's pixel cap PIL's hard limit, process-wide: the app decodes every picture
    it is sent itself (`intake.open_image`, also for the sketchpad and image previews, see
    `digits.sent_picture`); should Gradio still decode one somewhere, PIL refuses an image past
    twice MAX_IMAGE_PIXELS when it reads the header, before decoding (below that it only warns,
    and Gradio silences the warning). Also make Gradio's writes of output pictures atomic and
    quick, its sessions light and its events free of a failing import."""
    Image.MAX_IMAGE_PIXELS = intake.MAX_PIXELS // 2
    atomic_picture_cache()
    lazy_session_config()
    no_matplotlib_search()


def no_matplotlib_search() -> None:
    """Gradio runs every event inside a guard that imports matplotlib (to switch its backend);
    without matplotlib installed, each such import failed only after searching every folder on
    sys.path again (about 1% of the server's time under a hall's load, in a py-spy profile).
    Marked missing in sys.modules, the import fails at once, with the same ImportError."""
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


def lazy_session_config() -> None:
    """A new session's first event made Gradio copy the config of every block of the page
    (about 330 here: 60 ms on a quiet core, 0.2 s under load, on the one event loop, so a hall
    of students opening the page at once queued behind each other for it). Gradio keeps that
    copy only for its "deep link" button, which this app does not use (its links are plain
    query strings, see `links`); it filled in an entry on demand, from the block's whole
    config, whenever an event wrote a value (about 4.5% of the server's time that holds the
    interpreter lock in a 100-client run, py-spy --gil). So a session starts with none and
    builds none for the values events write."""
    from gradio import state_holder

    if getattr(state_holder.SessionState.__init__, "lazy", False):
        return
    original = state_holder.SessionState.__init__

    # The original, run on a page of no blocks (so it precomputes nothing), then given the real one.
    no_blocks = SimpleNamespace(default_config=SimpleNamespace(blocks={}), blocks={})

    def __init__(self: state_holder.SessionState, blocks: gr.Blocks) -> None:
        original(self, no_blocks)
        self.blocks_config = copy.copy(blocks.default_config)

    __init__.lazy = True  # type: ignore[attr-defined]
    state_holder.SessionState.__init__ = __init__  # type: ignore[method-assign]
    state_holder.SessionState._update_value_in_config = lambda self, key, value: None  # type: ignore[method-assign]


def atomic_picture_cache() -> None:
    """Gradio names an output picture by its content and rewrote that file in place, so while
    one request streamed a picture (same example, same seed) another truncated it: downloads
    came back short ("Too little data for declared Content-Length"). Written to a temporary
    file and renamed into place, a reader keeps the whole old copy, identical by construction.
    A shared picture (`common.SHARED_PICTURES`, never changed) handed out again is not encoded
    again: its file is."""
    from gradio import processing_utils

    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        where = (cache_dir, name, format)
        known = SHARED_PICTURES.file(img, where)  # a remembered view handed out again: its file
        if known is not None and os.path.exists(known):
            os.utime(known)
            return known
        # PNGs at zlib level 1: the app's pictures are flat and blocky (upscaled pixels), so
        # they grow by a fifth and encode in about half the time, work the server does for
        # every picture it sends.
        data = (render.png_bytes(img, level=1) if format.lower() == "png"
                else processing_utils.encode_pil_to_bytes(img, format))
        folder = Path(cache_dir) / processing_utils.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        target = (folder / f"{name}.{format}").resolve()
        if not target.exists():
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        else:
            os.utime(target)  # the cache ages files by time: a picture handed out again is fresh
        SHARED_PICTURES.remember(img, where, str(target))
        return str(target)

    save_pil_to_cache.atomic = True  # type: ignore[attr-defined]
    processing_utils.save_pil_to_cache = save_pil_to_cache


def build_from_folder(folder: str | Path, data_dir: str | Path | None = None, download: bool = True,
                      warm_up: bool = True) -> gr.Blocks:
    """Load the checkpoints in `folder` and build the app over them."""
    memory.return_freed_memory()
    configure_process()
    return build_demo(Catalog.from_folder(folder, data_dir=data_dir, download=download), warm_up=warm_up)
