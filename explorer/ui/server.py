"""The server around the page: process settings, Gradio patches, the queue, start-up and the
`latent-explorer` command. `demo.py` composes the tabs; everything about running them lives here.

Start-up order (docs/ARCHITECTURE.md, "Start-up"): load the checkpoints, build the page (each
tab's first value, computed on the CPU), start listening, and only then warm up the caches in
a background thread at the lowest priority (`warm_up_behind`), so the page answers within
seconds and the first visitor's clicks are not queued behind the warm-up.

Each patch of Gradio's internals names what it relies on, and has a test that fails when a
Gradio upgrade moves it: tests/test_links.py (sessions), tests/test_bounded_memory.py (the
picture cache), tests/test_app.py (the matplotlib guard).
"""

from __future__ import annotations

import argparse
import atexit
import copy
import gc
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import gradio as gr
from PIL import Image

from .. import gpu, intake, memory, render
from .common import CSS, SHARED_PICTURES
from .services import Services

log = logging.getLogger(__name__)

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
# Presentation mode on load: `?present=1` in the address (run by the browser when the page
# opens; the header's button toggles it, demo.TOGGLE_PRESENT_JS).
PAGE_JS = """() => {
  const params = new URLSearchParams(window.location.search);
  if (params.get('present') === '1') document.body.classList.add('present');
}"""
# The warm-up waits at most this long for the server to listen before it starts anyway.
WARM_UP_WAIT = 60.0
# How long an exiting process waits for the warm-up's current step (a GAN's directions take
# several seconds).
WARM_UP_EXIT_WAIT = 60.0


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


def launch(demo: gr.Blocks, warm_up: bool = True, **kwargs: Any) -> Any:
    """Start the app with its styling; host and port come from GRADIO_SERVER_NAME /
    GRADIO_SERVER_PORT unless given. Once the server listens, the caches warm up behind it
    (`warm_up_behind`) unless `warm_up` is False. Extra keyword arguments go to `Blocks.launch`.
    The process settings (`configure_process`) are made first, if they were not already."""
    configure_process()
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
    services = getattr(demo, "services", None)
    if warm_up and services is not None:
        warm_up_behind(demo, services)
    return demo.launch(**kwargs)


def warm_up_behind(demo: gr.Blocks, services: Services) -> threading.Thread:
    """Warm the caches up (`Services.warm_up`) in a daemon thread that waits until the server
    listens and then runs at the lowest CPU priority: the page answers at once, a visitor's
    request takes the CPU first, and a visitor who asks for something the warm-up is
    computing waits for that one computation (services.Memo) instead of doing it twice.
    Everything it runs is on the CPU (never a GPU call: there is no visitor to pay for it).

    When the process exits, the warm-up stops after its current step and is waited for (at
    most WARM_UP_EXIT_WAIT s): a thread left inside a torch call while the interpreter shuts
    down makes the process abort."""
    stop = threading.Event()

    def run() -> None:
        waited = time.monotonic()
        while not demo.is_running and time.monotonic() - waited < WARM_UP_WAIT and not stop.is_set():
            time.sleep(0.1)
        lowest_priority()
        started = time.monotonic()
        try:
            services.warm_up(stop)
        except Exception:  # noqa: BLE001  a cache left cold only costs its first visitor time
            log.exception("warm-up stopped early; the caches it did not reach fill on first use")
        else:
            log.info("warm-up done in %.1f s", time.monotonic() - started)

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()

    def finish() -> None:
        stop.set()
        thread.join(WARM_UP_EXIT_WAIT)

    atexit.register(finish)
    return thread


def lowest_priority() -> None:
    """Give the calling thread the lowest CPU priority (nice 19). On Linux a thread has its own
    nice value; elsewhere this changes nothing."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


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
    """Process-wide settings for serving, each once per process:

    - the app's pixel cap as PIL's hard limit: the app decodes every picture it is sent
      itself (`intake.open_image`, also for the sketchpad and image previews, see
      `digits.sent_picture`); should Gradio still decode one somewhere, PIL refuses an image
      past twice MAX_IMAGE_PIXELS when it reads the header, before decoding (below that it
      only warns, and Gradio silences the warning);
    - freed memory handed back to the system (`memory.return_freed_memory`);
    - a refused GPU told to the visitor as a toast (`gpu.on_fallback`);
    - Gradio's writes of output pictures atomic and quick, its sessions light and its events
      free of a failing import (the patches below)."""
    Image.MAX_IMAGE_PIXELS = intake.MAX_PIXELS // 2
    memory.return_freed_memory()
    gpu.on_fallback = tell_visitor
    atomic_picture_cache()
    lazy_session_config()
    updates_keep_their_block_id()
    no_matplotlib_search()


def tell_visitor(sentence: str) -> None:
    """A toast on the visitor's page (inside a request; outside one Gradio only logs it)."""
    log.warning(sentence)
    gr.Warning(sentence)


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


def updates_keep_their_block_id() -> None:
    """A session's memory grew with every event whose outputs update a component's props that
    is also an input (a slider's range, a picker's choices): Gradio (6.31) stores the update
    as a new component under the old block's id in the session, but the new component has a
    fresh id of its own, and when it comes back as an input, preprocessing stores it again
    under that fresh id (`blocks.py`, `preprocess_data`: `if block._id not in state`). So each
    such event added a component (a few kB) to the session for good: 3 per model switch, about
    4 MB a minute in a 10-client soak (tracemalloc: gradio/components/base.py, slider.py,
    blocks.py's temp_files sets). Stored under a block's id, a replacement now takes that id,
    as Gradio's own keyed re-renders do, so the session holds one component per block."""
    from gradio import state_holder
    from gradio.blocks import Block

    if getattr(state_holder.SessionState.__setitem__, "keeps_ids", False):
        return
    original = state_holder.SessionState.__setitem__

    def __setitem__(self: state_holder.SessionState, key: int, value: Any) -> None:
        if isinstance(value, Block) and value._id != key and key in self.blocks_config.blocks:
            value._id = key
        original(self, key, value)

    __setitem__.keeps_ids = True  # type: ignore[attr-defined]
    state_holder.SessionState.__setitem__ = __setitem__  # type: ignore[method-assign]


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




def main(argv: list[str] | None = None) -> None:
    """`latent-explorer`: serve the app on the shipped checkpoints from any folder."""
    p = argparse.ArgumentParser(prog="latent-explorer", description=(
        "Serve Latent Explorer in the browser. Checkpoints: --trained, else $LATENT_EXPLORER_TRAINED, "
        "else the shipped ones. Host and port: --host/--port, else GRADIO_SERVER_NAME/GRADIO_SERVER_PORT, "
        "else 127.0.0.1:7860."))
    p.add_argument("--trained", type=Path, help="folder of checkpoints to serve")
    p.add_argument("--data-dir", type=Path, help="folder of MNIST / Fashion-MNIST IDX files for test examples")
    p.add_argument("--host", help="address to bind (0.0.0.0 to serve a network)")
    p.add_argument("--port", type=int, help="port (default 7860, or the next free one)")
    p.add_argument("--threads", type=int, help="torch threads per request (default $LATENT_EXPLORER_THREADS or 1)")
    a = p.parse_args(argv)
    from .. import checkpoints
    from .demo import build_from_folder
    import torch

    torch.set_num_threads(a.threads or int(os.environ.get("LATENT_EXPLORER_THREADS") or 1))
    folder = a.trained or checkpoints.shipped_folder()
    try:
        demo = build_from_folder(folder, data_dir=a.data_dir)
    except checkpoints.CheckpointError as err:
        raise SystemExit(f"latent-explorer: {err} (set --trained or LATENT_EXPLORER_TRAINED to a folder of "
                         "checkpoints)") from None
    kwargs = {k: v for k, v in (("server_name", a.host), ("server_port", a.port)) if v is not None}
    launch(demo, **kwargs)
