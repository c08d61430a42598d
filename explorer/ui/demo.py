"""The whole app: a model picker above one tab per view, joined into one `gr.Blocks`.

`build_demo(catalog)` returns the Blocks with its queue configured; `launch(demo)` starts it
with the app's styling. Models are loaded once (in the Catalog); their cached computations
(the Services) are warmed up here, so the first visitor does not pay for them; the first
picture of every tab is computed at build time.
"""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from PIL import Image

from .. import intake
from . import inputs
from . import compare, directions, encode, grid, interpolate, likelihood, manifold, pixels, replay, side_by_side
from .catalog import Catalog
from .services import Services
from .common import CSS, LIGHT, FileStore, class_picker, model_info, user_errors
from .grid import GridTab, fit_dims

TITLE = "Latent Explorer"
# Queue: at most this many waiting requests in all; beyond it new ones are turned away with
# a message instead of piling up behind a flood. A lecture hall (100-200 people, each a few
# events at once) fits; a flood past it is bounded.
MAX_QUEUE = 600
# Sessions whose state Gradio keeps (about 340 kB each); the oldest are dropped past it.
SESSIONS = 400


def default_model(catalog: Catalog) -> str | None:
    """The model the page opens on: an unconditional VAE on MNIST where there is one."""
    def rank(name: str) -> tuple[int, int, int]:
        ckpt = catalog.checkpoint(name, "latent")
        return (ckpt.dataset != "mnist", ckpt.model.num_classes != 0,
                getattr(ckpt.model, "variational", False) is not True)
    return min(catalog.latent_names, key=rank) if catalog.latent_names else None


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


def select_model(services: Services, name: str, dim_x: Any, dim_y: Any, grid_label: Any,
                 interp_label: Any) -> tuple[str, gr.Slider, gr.Slider, gr.Dropdown, gr.Dropdown]:
    """What changes with the model: its description, the dimension sliders' range (set to the
    model's two strongest dimensions), the class pickers."""
    catalog = services.catalog
    name = inputs.model_name(catalog, name, "latent")
    model = catalog.checkpoint(name, "latent").model
    top = max(model.latent_dim - 1, 1)
    dx, dy = (services.code_directions(name).ranking.strongest(2) if model.latent_dim >= 2
              else fit_dims(dim_x, dim_y, 2))
    return (model_info(catalog, name), gr.Slider(maximum=top, value=dx), gr.Slider(maximum=top, value=dy),
            class_picker(catalog, name, grid_label), class_picker(catalog, name, interp_label))


def build_demo(catalog: Catalog, warm_up: bool = True) -> gr.Blocks:
    """The Gradio app over the models in `catalog`; every event has an api_name."""
    services = Services(catalog)
    if warm_up:
        services.warm_up()
    store = FileStore()
    start = default_model(catalog)
    with gr.Blocks(title=TITLE, delete_cache=(1800, 3600)) as demo:
        gr.Markdown(f"# {TITLE}\nPick a model, walk its code space, encode your own digits and "
                    "interpolate between them; watch PixelCNN and PixelRNN draw pixel by pixel, and ask "
                    "how surprised each model is by an image.")
        gr.Markdown(notices_markdown(catalog), elem_classes=["notice"], visible=bool(notices_markdown(catalog)))
        if start is None:
            gr.Markdown("No latent model could be loaded, so there is nothing to explore yet.")
            return demo.queue(max_size=MAX_QUEUE)
        with gr.Row():
            model = gr.Dropdown(catalog.choices(), value=start, label="model (grid and interpolation tabs)",
                                scale=2)
            info = gr.Markdown(model_info(catalog, start))
        with gr.Tabs():
            with gr.Tab("Latent grid"):
                grid_tab: GridTab = grid.build(services, model)
            with gr.Tab("Interpolation"):
                interp_label = interpolate.build(services, model, store)
            with gr.Tab("Encode"):
                encode.build(services, start)
            with gr.Tab("Directions"):
                directions.build(services, start)
            with gr.Tab("AE vs VAE"):
                compare.build(catalog)
            with gr.Tab("2-D manifold"):
                manifold.build(services)
            with gr.Tab("Training replay"):
                replay.build(services)
            with gr.Tab("Pixel by pixel"):
                pixels.build(services)
            with gr.Tab("Likelihood"):
                likelihood.build(services)
            with gr.Tab("Three kinds of model"):
                side_by_side.build(services)
        model.change(user_errors(functools.partial(select_model, services)),
                     [model, grid_tab.dim_x, grid_tab.dim_y, grid_tab.label, interp_label],
                     [info, grid_tab.dim_x, grid_tab.dim_y, grid_tab.label, interp_label],
                     api_name="select_model", **LIGHT)
    return demo.queue(max_size=MAX_QUEUE, default_concurrency_limit=2)


def launch(demo: gr.Blocks, **kwargs: Any) -> Any:
    """Start the app with its styling; host and port come from GRADIO_SERVER_NAME /
    GRADIO_SERVER_PORT unless given. Extra keyword arguments go to `Blocks.launch`."""
    kwargs.setdefault("css", CSS)
    kwargs.setdefault("max_file_size", "50mb")
    kwargs.setdefault("show_error", True)
    kwargs.setdefault("state_session_capacity", SESSIONS)
    return demo.launch(**kwargs)


def configure_pil() -> None:
    """Make the app's pixel cap PIL's hard limit, process-wide: Gradio decodes some inputs
    itself (the sketchpad, image previews an API caller sends), and PIL refuses an image past
    twice MAX_IMAGE_PIXELS when it reads the header, before decoding (below that it only warns,
    and Gradio silences the warning). Also make Gradio's writes of output pictures atomic."""
    Image.MAX_IMAGE_PIXELS = intake.MAX_PIXELS // 2
    atomic_picture_cache()


def atomic_picture_cache() -> None:
    """Gradio names an output picture by its content and rewrote that file in place, so while
    one request streamed a picture (same example, same seed) another truncated it: downloads
    came back short ("Too little data for declared Content-Length"). Written to a temporary
    file and renamed into place, a reader keeps the whole old copy, identical by construction."""
    from gradio import processing_utils

    if getattr(processing_utils.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img: Image.Image, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = processing_utils.encode_pil_to_bytes(img, format)
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
        return str(target)

    save_pil_to_cache.atomic = True  # type: ignore[attr-defined]
    processing_utils.save_pil_to_cache = save_pil_to_cache


def build_from_folder(folder: str | Path, data_dir: str | Path | None = None, download: bool = True,
                      warm_up: bool = True) -> gr.Blocks:
    """Load the checkpoints in `folder` and build the app over them."""
    configure_pil()
    return build_demo(Catalog.from_folder(folder, data_dir=data_dir, download=download), warm_up=warm_up)
