"""Small pieces every tab shares: error messages for students, choices, downloads, styling."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import logging
import tempfile
import threading
import weakref
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Iterator, TypeVar

import gradio as gr
import numpy as np
import torch

from .. import latent
from ..models.base import LatentModel
from ..intake import ImageInputError
from ..render import to_uint8
from .catalog import Catalog

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

# Concurrency groups: fast decodes share one pool, encodes (a GAN's is an optimisation
# taking about a second) another, so slow work never blocks the sliders of other users.
# A hall's requests are small and the server is bound by Python's one interpreter lock, so
# the sizes decide which pool's callers wait, not how much gets done: every running event
# gets about the same share of the lock, so a pool's slots should follow its share of the
# work. Grids and interpolations cost two or three times a light event; with four slots
# each they waited longest at 100 clients, and with more slots for one, the other did. With
# six each, three 100-client bursts pooled gave p95 2.99 s (grid) and 2.31 s (interpolation)
# (`python -m benchmarks.load --rounds 3`, benchmarks/reports/load.md).
DECODE = {"concurrency_id": "decode", "concurrency_limit": 6}
ENCODE = {"concurrency_id": "encode", "concurrency_limit": 6}
LIGHT = {"concurrency_id": "light", "concurrency_limit": 4}
# A replay that plays mostly sleeps between epochs; its own pool keeps players from holding
# the light pool's slots (digit inputs, controls) for the length of a run.
REPLAY = {"concurrency_id": "replay", "concurrency_limit": 8}

# The corner buttons of every picture: no "share" (it only works on Hugging Face Spaces and
# fails with "Must be on Spaces to share." anywhere else).
PICTURE_BUTTONS = ["download", "fullscreen"]

BASE_MEAN, BASE_RANDOM, BASE_IMAGE = "prior mean", "random draw (seed)", "encoded image"

# Tiny 28x28 previews are drawn with hard pixel edges, not browser smoothing. The rest fits a
# tab's main picture and its primary control on a 1280x720 projector without scrolling
# (`.main-picture` is bounded by the viewport's height), keeps the tab bar whole on a phone,
# and is presentation mode (`body.present`: chrome hidden, larger type and pictures; toggled
# by the header's button or `?present=1`, see links.PAGE_JS).
CSS = """
.pixelated img { image-rendering: pixelated; width: 112px !important; height: 112px !important;
                 object-fit: contain; margin: auto; }
.notice { border-left: 4px solid #d97706; padding-left: 0.6em; }
.page-header { align-items: center; gap: 0.5em; flex-wrap: nowrap; }
.page-header .title { flex: 0 0 auto; width: auto; }
.page-header h1 { font-size: 1.5rem; margin: 0; }
.lead p { margin: 0; }
.main-picture img { max-height: calc(100vh - 230px); object-fit: contain; }
.main-picture.below-controls img { max-height: calc(100vh - 330px); }
.main-tabs > div[role=tablist], .main-tabs .tab-wrapper { flex-wrap: wrap; overflow-x: auto; }
@media (max-width: 640px) {
  .main-tabs button[role=tab] { padding: 4px 8px; font-size: 0.85rem; }
  .page-header { flex-wrap: wrap; }
}
body.present .chrome, body.present footer, body.present .lead { display: none !important; }
body.present .gradio-container { font-size: 1.2rem; max-width: 100% !important; }
body.present .main-picture img { max-height: calc(100vh - 150px); }
body.present .main-picture.below-controls img { max-height: calc(100vh - 250px); }
/* Every tab stays one tap away: the tabs that do not fit the bar wrap onto a second line
   instead of hiding behind Gradio's "More tabs" menu (5 of 10 did at 390 px). Gradio scopes
   this CSS under .gradio-container itself, so the rules name its classes directly. */
.tab-wrapper { flex-wrap: wrap; }
.tab-wrapper:has(.overflow-dropdown > button) { height: auto !important; }  /* only when tabs wrap */
.tab-wrapper .overflow-menu > button[aria-label="More tabs"] { display: none !important; }
.tab-wrapper .overflow-menu { flex: 1 1 100%; }
.tab-wrapper .overflow-dropdown, .tab-wrapper .overflow-dropdown.hide {
    display: flex !important; flex-direction: row !important; flex-wrap: wrap; position: static !important;
    width: 100% !important; box-shadow: none !important; border: none !important; padding: 0 !important;
    background: none !important; min-width: 0 !important; }
.tab-wrapper .overflow-dropdown > button { width: auto !important; white-space: nowrap; }
/* On a phone a row's pieces (a picker and its info, controls beside a picture) stack. */
@media (max-width: 640px) {
    .row { flex-wrap: wrap !important; }
    .row > * { flex: 1 1 100% !important; min-width: 100% !important; }
}
"""


# Last line of defence: a value of a type no check foresaw. `explorer.ui.inputs` checks every
# input first; should one slip through, the person still gets a sentence, the log one line.
UNFORESEEN = (TypeError, OverflowError, ArithmeticError, IndexError, AttributeError)


def _as_gr_error(err: Exception) -> gr.Error:
    if isinstance(err, UNFORESEEN):
        log.warning("unforeseen input error: %r", err)
        return gr.Error("One of the settings has a value this view cannot use; please check them "
                        "and try again.", print_exception=False)
    message = str(err.args[0]) if isinstance(err, KeyError) and err.args else str(err)
    return gr.Error(message, print_exception=False)


def user_errors(fn: F) -> F:
    """Turn the errors a person can cause (bad image, bad setting) into a `gr.Error` toast,
    so the message reaches them and the session carries on. A generator stays a generator,
    an async one async (Gradio streams what it yields only when it can see that it is one)."""
    target = fn.func if isinstance(fn, functools.partial) else fn
    if inspect.isasyncgenfunction(target):

        @functools.wraps(fn)
        async def streaming_async(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
            try:
                async with contextlib.aclosing(fn(*args, **kwargs)) as frames:
                    async for item in frames:
                        yield item
            except gr.Error:
                raise
            except (ImageInputError, ValueError, KeyError, *UNFORESEEN) as err:
                raise _as_gr_error(err) from None

        return streaming_async  # type: ignore[return-value]
    if inspect.isgeneratorfunction(target):

        @functools.wraps(fn)
        def streaming(*args: Any, **kwargs: Any) -> Iterator[Any]:
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except (ImageInputError, ValueError, KeyError, *UNFORESEEN) as err:
                raise _as_gr_error(err) from None

        return streaming  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ImageInputError, ValueError, KeyError, *UNFORESEEN) as err:
            raise _as_gr_error(err) from None

    return wrapper  # type: ignore[return-value]


def label_or_none(catalog: Catalog, name: str, label: Any) -> int | None:
    """The class to condition on: None for an unconditional model, else an int (default 0)."""
    from . import inputs  # inputs imports the catalog, as this module does

    return inputs.label(catalog, inputs.model_name(catalog, name), label)


def picked_class(catalog: Catalog, name: str, current: Any) -> int | None:
    """The class a model's picker shows: `current` where the model has that class, else 0;
    None for an unconditional model (its picker is hidden)."""
    classes = catalog.checkpoint(name).model.num_classes
    if not classes:
        return None
    return current if isinstance(current, int) and 0 <= current < classes else 0


def class_picker(catalog: Catalog, name: str | None, current: Any = None) -> gr.Dropdown:
    """The class picker for a model: visible, with its class names, when it is conditional.

    Called while building the page it creates the component; returned from an event it
    updates the existing one. Custom values are allowed so an API caller can pass a class
    index for any conditional model (the server-side choices follow the first model).
    """
    served = isinstance(name, str) and any(name in shelf for shelf in (catalog.latent, catalog.autoregressive,
                                                                       catalog.discrete))
    conditional = served and catalog.checkpoint(name).model.num_classes > 0
    if not conditional:
        return gr.Dropdown(choices=[], value=None, label="class (conditional model)", visible=False,
                           allow_custom_value=True)
    classes = catalog.classes(name)
    return gr.Dropdown(choices=[(c, i) for i, c in enumerate(classes)], value=picked_class(catalog, name, current),
                       label="class (conditional model)", visible=True, allow_custom_value=True)


class ModelSlider(gr.Slider):
    """A slider whose range follows the chosen model (latent dimensions, a run's epochs).

    The page shows the current model's range from the start; the server leaves the range
    check to the event's handler, which knows the model asked for: Gradio's own check would
    compare against whichever range was set last, turn away an API caller choosing another
    model, and answer a typed value past the end with a traceback instead of a sentence.
    A template of gr.Slider, so the page draws it as one."""

    is_template = True

    def preprocess(self, payload: Any) -> Any:
        return payload


class InversionProgress:
    """A GAN's inversion (a second or two of optimisation) reported on the page as a progress
    line, "inverting the generator: step 40 of 120", about REPORTS times over the run. A plain
    class, not a closure: ZeroGPU pickles it into the process that runs the inversion and sends
    its reports back to Gradio."""

    REPORTS = 24

    def __init__(self, progress: gr.Progress, what: str = "inverting the generator") -> None:
        self.progress, self.what = progress, what

    def __call__(self, done: int, total: int) -> None:
        if done % max(1, total // self.REPORTS) == 0 or done == total:
            self.progress((done, total), desc=f"{self.what}: step {done} of {total}", unit="steps")


def digit_picture(image: torch.Tensor) -> np.ndarray:
    """(1, 28, 28) in [0, 1] -> uint8 (28, 28) for a preview component."""
    return to_uint8(image)


class FileStore:
    """Downloads written by the app, named by content so repeats reuse one file; only the
    newest `keep` are kept, so a busy session cannot fill the disk."""

    def __init__(self, keep: int = 200) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="latent-explorer-"))
        self.keep = keep
        self._lock = threading.Lock()

    def write(self, data: bytes, stem: str, suffix: str) -> str:
        digest = hashlib.sha1(data).hexdigest()[:12]
        path = self.folder / f"{stem}-{digest}{suffix}"
        with self._lock:
            if not path.exists():
                path.write_bytes(data)
            files = sorted(self.folder.iterdir(), key=lambda p: p.stat().st_mtime)
            for old in files[:-self.keep]:
                old.unlink(missing_ok=True)
        return str(path)


class SharedPictures:
    """Pictures handed out again unchanged (a view remembered by `Services.picture`), and the
    files Gradio's cache writer (`demo.atomic_picture_cache`) made of them: a repeat hands out
    the same file instead of encoding the picture anew. Held weakly (PIL pictures cannot be
    hashed, so by identity): a picture its cache forgets is forgotten here too."""

    def __init__(self) -> None:
        self._files: dict[int, tuple[weakref.ref, dict[tuple, str]]] = {}
        self._lock = threading.RLock()  # a picture may die (and be forgotten) while the lock is held

    def share(self, picture: Any) -> Any:
        """Mark `picture` as never changed from now on; returns it."""
        key = id(picture)
        with self._lock:
            if key not in self._files:
                self._files[key] = (weakref.ref(picture, lambda _, key=key: self._forget(key)), {})
        return picture

    def _forget(self, key: int) -> None:
        with self._lock:
            self._files.pop(key, None)

    def file(self, picture: Any, where: tuple) -> str | None:
        """The file written for a shared `picture` with settings `where`, if any."""
        with self._lock:
            entry = self._files.get(id(picture))
            return entry[1].get(where) if entry and entry[0]() is picture else None

    def remember(self, picture: Any, where: tuple, path: str) -> None:
        with self._lock:
            entry = self._files.get(id(picture))
            if entry and entry[0]() is picture:
                entry[1][where] = path


SHARED_PICTURES = SharedPictures()


def lead(text: str) -> gr.Markdown:
    """A tab's one-line orientation at its top (hidden in presentation mode)."""
    return gr.Markdown(text, elem_classes=["lead"])


def how_to_read(text: str) -> gr.Markdown:
    """A tab's longer explanation, folded away at its foot until asked for."""
    with gr.Accordion("How to read this view", open=False, elem_classes=["chrome"]):
        return gr.Markdown(text)


def about_model(catalog: Catalog, name: str | None) -> gr.Markdown:
    """A folded "about this model" box (what it is, its metric explained, how it was trained):
    the long text stays out of the way of the picture until asked for. Returns its Markdown,
    which a model picker's event updates with `model_info`."""
    with gr.Accordion("About this model", open=False, elem_classes=["chrome"]):
        return gr.Markdown(model_info(catalog, name) if name else "")


def model_info(catalog: Catalog, name: str) -> str:
    """Markdown about any served model: what it is and how it was trained; for a latent model
    also its code space and where its examples come from, for an autoregressive one what it
    models."""
    ckpt = catalog.checkpoint(name)
    model = ckpt.model
    # First line: the plain name, the checkpoint's (what links and the API use), the metric
    # and what it means; then what the model is. Kept short: some tabs show it unfolded.
    metric = catalog.metric_note(name)
    lines = [f"**{catalog.display_name(name)}** (`{name}`)" + (f": {metric}" if metric else "")]
    if isinstance(model, LatentModel):
        lines.append(f"{getattr(model, 'description', model.name)} on {ckpt.dataset}; latent dimensions: "
                     f"{model.latent_dim}"
                     + (f"; conditional on {model.num_classes} classes" if model.num_classes else ""))
        if latent.inverts(model):
            lines.append("a GAN has no encoder: encoding an image means searching for its code by "
                         "optimisation, which takes a second or two")
    elif model.kind == "discrete_latent":
        h, w = model.grid
        lines.append(f"{model.description}: a {h}x{w} grid of codes from a codebook of {model.num_codes}"
                     + (f"; its prior is conditional on {model.num_classes} classes" if model.num_classes else "")
                     + f"; {model.num_parameters():,} parameters")
    else:
        kind = ("binary pixels (Bernoulli), binarized " if model.output_kind == "bernoulli"
                else "256 grey levels (softmax), ")
        lines.append(f"{model.description}, {model.num_parameters():,} parameters; models {kind}{ckpt.dataset}")
    command = ckpt.training.get("command")
    if command:
        lines.append(f"trained with `{command}`")
    if isinstance(model, LatentModel) and catalog.data_note(name):  # the reason is in the page's notice, said once
        lines.append("examples are samples from the model (no test images)")
    return "  \n".join(lines)
