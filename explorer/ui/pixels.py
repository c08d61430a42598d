"""Pixel-by-pixel tab: watch PixelCNN or PixelRNN draw images one pixel at a time.

A frame shows the samples so far (pixels not drawn yet in blue, the current pixel outlined
in red), the model's predictive distribution at that pixel, and its receptive field there:
which earlier pixels the prediction can depend on, measured from gradients, with PixelCNN's
blind spot in orange. With "given rows" above 0 the top of an image (an example, an upload
or a drawing) is kept and the model completes the rest, one completion per sample.

The picker also lists the VQ-VAEs: their PixelCNN prior draws a 7x7 grid of codes one at a
time, and a frame shows the codes drawn so far over their decode (cells not drawn yet hatched),
the prior's distribution at the current cell, and a summary, as the Discrete codes tab plays it
(`codes.view`, `codes.play`: one sample a seed; samples, temperature and given rows are for
pixel models). The slider then counts codes, 1 to 49, and the receptive-field view is hidden.

Generation is deterministic in (model, samples, temperature, seed, given image): every
uniform number is drawn from the seed up front (`explorer.sampling`). So stepping needs no
server state: a frame at pixel p is recomputed by the cached sampler (well under a second
for 16 samples), and playing from p continues exactly where the step view stood.

Endpoints (inputs: model, samples, temperature, seed, given rows, image, class, pixel):
  `/pixel_model`:    (..., pixel) -> description, class picker, pixel slider, its frame.
  `/pixel_view`:     the frame at `pixel` (its number, 1 to H * W in raster order, as the
                     slider and the summary count): picture, distribution, receptive field,
                     a summary.
  `/pixel_next`, `/pixel_previous`: (..., pixel) -> (pixel + 1 or - 1, its frame).
  `/pixel_play`:     (..., pixel, pixels per frame) -> streams (pixel, frame) from the next
                     pixel to the last (from the first if `pixel` is the last), FPS frames
                     a second. Stop (and choosing another model) cancels it.
  `/complete_from_example|upload|drawing`: the image to complete (see `digits`).

The tab opens on the middle pixel, where PixelCNN's blind spot shows. Keys (KEYBOARD_JS):
Space plays and stops, the left and right arrows step one pixel.

Playing is built for a lecture hall pressing Play at once. A default play shows 196 frames
over 13 s, but generating its samples takes a fifth of a second and a frame costs about 12 ms
(samples picture 5 ms, prediction chart 3 ms, their PNGs 4 ms; the receptive field's gradients
40 ms, once per pixel and model, and its picture once per pixel). So a play generates first,
renders frames a second ahead in RENDER (a pool as big as the machine's cores), writes them as
PNG files that Gradio serves as they are, and waits for each frame's time without holding any
slot. Plays with the same settings share their frames (`Player`), so sixty students pressing
Play on the defaults cost one rendering. A server too busy to send every frame on time
skips frames (LATE) rather than stretch the play, and does not render a chunk that is past due.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import math
import os
import shutil
import tempfile
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import gradio as gr
import numpy as np
import torch
from PIL import Image

from .. import intake, render, sampling
from ..models.base import AutoregressiveModel
from ..sampling import PixelStep
from .catalog import Catalog
from .services import FIELD_CACHE, Memo, Services, content_key
from . import codes, inputs
from .common import (PICTURE_BUTTONS, DECODE, ModelSlider, about_model, class_picker, how_to_read, label_or_none, model_info, picked_class,
                     user_errors)
from .digits import digit_input
from .links import Shareable

MAX_SAMPLES = 16
TEMPERATURES = (0.05, 2.0)   # below: nearly greedy; above: mostly noise
# Frames a second while playing: smooth to the eye, and few enough that the browser keeps up.
FPS = 15
# The settings the tab opens with (a play on them is what a lecture hall presses at once).
START_SAMPLES, START_TEMPERATURE, START_SEED, START_SPEED = 4, 1.0, 0, 4
FRAME_SIDE = 460          # about how wide the sample mosaic is drawn, in screen pixels
# A play mostly waits between frames (its frames are rendered ahead, in RENDER), so a whole
# lecture hall can play at once: this pool only bounds how many streams the server keeps open
# (`server.launch` raises Gradio's limit over all pools, 40 by default, to the pools' sum).
PLAY = {"concurrency_id": "play", "concurrency_limit": 256}
# Frames rendered in one go, ahead of showing them: one second of playback. The first chunk is
# what a player waits for before the first frame; later ones render while earlier ones show.
CHUNK = FPS
# The bounded compute section of playing: generation and frame rendering run here, as many at
# once as there are cores; a hall of players queues here for the CPU, not for Gradio's slots.
RENDER = ThreadPoolExecutor(max_workers=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                            else (os.cpu_count() or 1), thread_name_prefix="pixel-render")
# Plays remembered (by everything that decides their frames): a hall pressing Play with the
# same settings renders them once. Each is a folder of PNG frames, removed when forgotten.
PLAYS = 32
# Frame pictures are written fast rather than small: they travel over a lecture hall's network once.
PNG_LEVEL = 1
# A play more than this many seconds behind its schedule (a busy server) skips frames until it
# is back on time, so it still ends when it should; the first and last frames are always shown.
LATE = 0.5

# Keys on this tab (shown only while it is: the frame must be visible): Space plays and stops,
# the arrows step one pixel. Keys typed into a text or number box, or arrows on a focused
# slider, keep their own meaning. It clicks the tab's buttons, so each key does exactly what
# its button does; playing is known from the buttons pressed and the pixel slider's place
# (a play ends on the last pixel). Run once per page, however often the tab is drawn.
KEYBOARD_JS = """
if (!window.pixelTabKeys) {
  window.pixelTabKeys = true;
  let playing = false;
  const byId = id => document.getElementById(id);
  const visible = el => el !== null && el.offsetParent !== null;
  const atEnd = () => {
    const box = document.querySelector('#pixel-position input[type=number]');
    return box !== null && Number(box.value) >= Number(box.max);
  };
  document.addEventListener('click', event => {
    const button = event.target.closest ? event.target.closest('button') : null;
    if (button === null) return;
    if (button.id === 'pixel-play') playing = true;
    else if (['pixel-stop', 'pixel-next', 'pixel-previous'].includes(button.id)) playing = false;
  }, true);
  const typing = el => el !== null && (el.isContentEditable || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT'
                                       || (el.tagName === 'INPUT' && el.type !== 'button' && el.type !== 'checkbox'));
  const ours = event => visible(byId('pixel-frame')) && !event.ctrlKey && !event.metaKey && !event.altKey
                        && !typing(event.target) && [' ', 'ArrowLeft', 'ArrowRight'].includes(event.key);
  document.addEventListener('keydown', event => {
    if (!ours(event)) return;
    event.preventDefault();   // no page scroll, no second click of a focused button
    if (event.key === ' ') {
      if (!event.repeat) byId(playing && !atEnd() ? 'pixel-stop' : 'pixel-play').click();
    } else {
      byId(event.key === 'ArrowRight' ? 'pixel-next' : 'pixel-previous').click();
    }
  });
  document.addEventListener('keyup', event => { if (ours(event)) event.preventDefault(); });
}
"""
KEYS_HINT = "Keys: <kbd>Space</kbd> plays and stops; <kbd>←</kbd> <kbd>→</kbd> step one pixel (or one code)."

EXPLANATION = (
    "An autoregressive model writes an image **one pixel at a time**, left to right, top to bottom: "
    "each pixel is drawn from the model's prediction given every pixel before it. Press **Play** to "
    "watch, or step with **Pixel ▶**. On the right: the prediction at the red pixel, and which "
    "earlier pixels it can see (green; brighter = stronger influence). Orange marks earlier pixels within "
    "its reach that it **cannot** see: the blind spot of a plain PixelCNN, which the gated PixelCNN removes; "
    "the Row LSTM sees a triangle above and only a few pixels to its left; the Diagonal BiLSTM sees all but one "
    "(the last pixel of the row above); grey ones are further away than its layers reach. "
    "Set *given rows* above 0 to keep the top of an image and let the model complete the rest."
)


@dataclass(frozen=True)
class Request:
    """One generation, checked: everything that decides its pixels."""

    name: str
    samples: int
    temperature: float
    seed: int
    given_rows: int
    image: torch.Tensor | None   # (1, H, W) in [0, 1] for a completion, else None
    label: int | None


def request(catalog: Catalog, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
            image: np.ndarray | None, label: Any) -> Request:
    """Check the controls; a ValueError names what is wrong."""
    model = catalog.checkpoint(inputs.model_name(catalog, name, "autoregressive"), "autoregressive").model
    height = model.data_shape[1]
    samples = inputs.count(samples, "number of samples", 1, MAX_SAMPLES)
    temperature = inputs.number(temperature, "temperature", *TEMPERATURES)
    seed = inputs.seed(seed)
    given_rows = inputs.count(given_rows or 0, "number of given rows", 0, height - 1)
    picture = None
    if given_rows:
        image = inputs.image(image)
        if image is None:
            raise ValueError("Pick, upload or draw an image to complete, or set given rows to 0.")
        picture = intake.prepare_digit(image)
    return Request(name, samples, temperature, seed, given_rows, picture, label_or_none(catalog, name, label))


def plays_codes(catalog: Catalog, name: Any) -> bool:
    """Whether `name` is a VQ-VAE, whose prior draws codes rather than pixels (see `codes`)."""
    return isinstance(name, str) and name in catalog.discrete


def tab_model(catalog: Catalog, name: Any) -> str:
    """A model this tab plays, checked: an autoregressive model, or a VQ-VAE."""
    return inputs.model_name(catalog, name, "discrete" if plays_codes(catalog, name) else "autoregressive")


def positions(catalog: Catalog, name: str) -> int:
    """How many steps a generation by `name` takes: its pixels, or a VQ-VAE's codes."""
    if plays_codes(catalog, name):
        return codes.total_steps(catalog, name)
    return math.prod(catalog.checkpoint(name, "autoregressive").model.data_shape[1:])


# Said under a VQ-VAE's frame: which of this tab's settings it uses.
CODES_NOTE = "  \n<small>A VQ-VAE's prior draws one grid a seed; samples, temperature and given rows are for pixel models.</small>"


def code_frame(shown: tuple[Image.Image, Image.Image, str]) -> tuple[Image.Image, Image.Image, None, str]:
    """A VQ-VAE's frame (`codes.frame`) in this tab's views: no receptive field, a note on the settings."""
    picture, distribution, summary = shown
    return picture, distribution, None, summary + CODES_NOTE


def stream(catalog: Catalog, req: Request) -> Iterator[PixelStep]:
    model = catalog.checkpoint(req.name, "autoregressive").model
    known = mask = None
    if req.given_rows:
        known, mask = model.as_input(req.image, threshold=True), sampling.top_rows_mask(model, req.given_rows)
    return sampling.sample_stream(model, req.samples, y=req.label, temperature=req.temperature,
                                  generator=torch.Generator().manual_seed(req.seed), known=known, known_mask=mask)


def step_at(catalog: Catalog, req: Request, pixel: Any) -> PixelStep:
    """The step that decides pixel number `pixel` (1 to H * W in raster order), computed from the start."""
    index = inputs.whole(pixel, "pixel", 1, positions(catalog, req.name)) - 1
    for step in stream(catalog, req):
        if step.index == index:
            return step
    raise AssertionError("the stream ended early")  # pragma: no cover


def distribution_picture(model: AutoregressiveModel, step: PixelStep) -> Image.Image:
    """The prediction at the current pixel: p(white) of every sample (binary), or the 256-level
    histogram of sample 1 (8-bit), the drawn value in red."""
    probs = step.probs.detach().cpu()
    drawn = model.targets(step.image[:, :, step.row, step.col]).flatten().tolist()    # (N,) class indices
    if model.output_kind == "bernoulli":
        p = probs[:, 0].tolist()
        ticks = {i: str(i + 1) for i in range(len(p))}
        return render.bar_chart(p, y_max=1.0, title="p(white) at the red pixel, per sample (red: drew white)",
                                  ticks=ticks, highlight=[i for i, d in enumerate(drawn) if d == 1])
    levels = probs[0].tolist()
    top = max(levels)
    y_max = float(f"{min(1.0, top * 1.1):.2g}") or 1.0
    return render.bar_chart(levels, y_max=max(y_max, top), title="sample 1: p(grey level) at the red pixel",
                              ticks={0: "0", 64: "64", 128: "128", 192: "192", 255: "255"}, highlight=[drawn[0]])


def summary(catalog: Catalog, req: Request, step: PixelStep, field: torch.Tensor) -> str:
    model = catalog.checkpoint(req.name, "autoregressive").model
    counts = render.field_counts(field, step.row, step.col)
    head = f"**Pixel {step.index + 1} of {step.total}** (row {step.row}, column {step.col})."
    if not bool(step.sampled[0]):
        what = f"Sample 1: this pixel is **given** (the top {req.given_rows} rows are kept), so nothing is drawn."
    elif model.output_kind == "bernoulli":
        p = float(step.probs[0, 0])
        colour = "white" if float(step.image[0, 0, step.row, step.col]) == 1 else "black"
        what = f"Sample 1: p(white) = **{p:.3f}**, drew **{colour}**."
    else:
        probs = step.probs[0]
        level = int(model.targets(step.image[0:1, :, step.row, step.col]).item())
        entropy = float(-(probs * torch.log2(probs.clamp_min(1e-30))).sum())
        what = (f"Sample 1: most likely level {int(probs.argmax())} (p = {float(probs.max()):.3f}); "
                f"drew level **{level}**; the prediction's entropy is {entropy:.2f} bits (8 = uniform).")
    if counts.earlier == 0:
        return f"{head} {what}  \nIt is the first pixel: nothing comes before it, so its prediction is the same for every image."
    seen = f"The prediction here depends on **{counts.seen} of the {counts.earlier}** earlier pixels"
    if counts.blind:
        seen += f"; **{counts.blind}** within its reach lie in its **blind spot** (orange)"
    elif counts.out_of_reach:
        seen += "; no blind spot"
    if counts.out_of_reach:
        seen += (f"; {counts.out_of_reach} {'is' if counts.out_of_reach == 1 else 'are'} further away than "
                 "its layers reach (grey)")
    seen += "." if counts.out_of_reach or counts.blind else ": all of them, no blind spot."
    return f"{head} {what}  \n{seen}"


def samples_picture(model: AutoregressiveModel, req: Request, step: PixelStep) -> Image.Image:
    """The samples so far: pixels not drawn yet in blue (given ones shown), the current one outlined."""
    given = sampling.top_rows_mask(model, req.given_rows)[0] if req.given_rows else None
    cols = render.grid_columns(req.samples)
    scale = max(2, min(12, FRAME_SIDE // (cols * model.data_shape[2])))
    return render.generation_frame(step.image, step.index, given, scale)


def frame(services: Services, req: Request, step: PixelStep) -> tuple[Image.Image, Image.Image, Image.Image, str]:
    """The four views of one step: samples, distribution, receptive field, summary."""
    catalog = services.catalog
    model = catalog.checkpoint(req.name, "autoregressive").model
    field = services.receptive_field(req.name, step.row, step.col, req.label)
    return (samples_picture(model, req, step), distribution_picture(model, step),
            render.receptive_field_picture(field, step.row, step.col), summary(catalog, req, step, field))


def view(services: Services, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
         image: np.ndarray | None, label: Any, position: Any) -> tuple[Image.Image, Image.Image, Image.Image | None, str]:
    if plays_codes(services.catalog, name):
        index = inputs.whole(position, "code", 1, codes.total_steps(services.catalog, name)) - 1
        return code_frame(codes.view(services, name, label, seed, index))
    req = request(services.catalog, name, samples, temperature, seed, given_rows, image, label)
    return frame(services, req, step_at(services.catalog, req, position))


def step_by(services: Services, delta: int, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
            image: np.ndarray | None, label: Any, position: Any) -> tuple[int, Image.Image, Image.Image, Image.Image, str]:
    """One pixel (or code) forward or back (staying inside the image)."""
    name = tab_model(services.catalog, name)
    total = positions(services.catalog, name)
    position = min(max(inputs.whole(position or 1, "pixel") + delta, 1), total)
    return (position, *view(services, name, samples, temperature, seed, given_rows, image, label, position))


def chunk_frames(k: int) -> tuple[int, int]:
    """Frame numbers [first, end) of a play's chunk k: the first frame alone (it shows as soon
    as it is drawn, instead of after a second's worth of frames), then the rest of the first
    second, then a second (CHUNK frames) each."""
    if k == 0:
        return 0, 1
    return max(1, (k - 1) * CHUNK), k * CHUNK


def chunk_of(frame: int) -> int:
    """The chunk that holds frame number `frame` (inverse of `chunk_frames`)."""
    return 0 if frame == 0 else frame // CHUNK + 1


def frame_indices(total: int, start: int, speed: int) -> list[int]:
    """The raster indices a play shows: every `speed`-th pixel from `start` on, and the last."""
    return [i for i in range(start, total) if (i - start + 1) % speed == 0 or i == total - 1]


def save_png(picture: Image.Image, path: Path) -> str:
    picture.save(path, format="png", compress_level=PNG_LEVEL)
    return str(path)


@functools.cache
def frames_root() -> Path:
    """The one folder every play's frame files live in (a folder each), served by Gradio as
    static files: handed out as they are, not hashed and copied into its cache for every
    player and frame. Registered once, so the check Gradio makes per file stays one path."""
    root = Path(tempfile.mkdtemp(prefix="latent-explorer-plays-"))
    gr.set_static_paths([root])
    return root


class Player:
    """What plays share: the plays remembered, and the receptive-field picture of every pixel
    (it depends on the model and the position only, so every frame of every play reuses it)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.folder = Path(tempfile.mkdtemp(prefix="fields-", dir=frames_root()))
        weakref.finalize(self, shutil.rmtree, self.folder, True)
        self._plays: Memo[Playback] = Memo(PLAYS)
        self._fields: Memo[str] = Memo(FIELD_CACHE)

    def warm(self, name: str) -> None:
        """Compute the receptive field of every pixel of model `name` in RENDER, so that the first
        plays after start-up do not wait for them (about 40 ms a pixel for the shipped PixelCNN,
        30 s for the image, once). The pixels a play on the opening settings shows come first
        (a quarter of them); a row's worth at a time, each batch queueing the next when it is
        done, so a play's frames queued meanwhile go first."""
        model = self.services.catalog.checkpoint(name, "autoregressive").model
        label = 0 if model.num_classes else None
        height, width = model.data_shape[1:]
        first = frame_indices(height * width, 0, START_SPEED)
        order = first + sorted(set(range(height * width)) - set(first))

        def fields(start: int) -> None:
            for index in order[start:start + width]:
                self.services.receptive_field(name, *divmod(index, width), label)
            if start + width < len(order):
                RENDER.submit(fields, start + width)
        RENDER.submit(fields, 0)

    def playback(self, req: Request, start: int, speed: int) -> "Playback":
        """The play of `req` from raster index `start`, a frame every `speed` pixels (shared)."""
        image = None if req.image is None else content_key(req.image)
        key = (req.name, req.samples, req.temperature, req.seed, req.given_rows, image, req.label, start, speed)
        total = positions(self.services.catalog, req.name)
        return self._plays.get(key, lambda: Playback(self, req, frame_indices(total, start, speed)))

    def field_picture(self, req: Request, step: PixelStep) -> tuple[str, torch.Tensor]:
        """The receptive field at the step's pixel: its picture's file, and the field."""
        field = self.services.receptive_field(req.name, step.row, step.col, req.label)
        key = (req.name, step.row, step.col, req.label)
        name = hashlib.sha1(repr(key).encode()).hexdigest()[:16]
        path = self._fields.get(key, lambda: save_png(render.receptive_field_picture(field, step.row, step.col),
                                                      self.folder / f"field-{name}.png"))
        return path, field

    def frame_files(self, req: Request, step: PixelStep, folder: Path) -> tuple[int, str, str, str, str]:
        """One frame of a play: (raster index, samples, distribution and receptive-field picture
        files, summary), the same pictures `frame` draws."""
        model = self.services.catalog.checkpoint(req.name, "autoregressive").model
        field_path, field = self.field_picture(req, step)
        return (step.index, save_png(samples_picture(model, req, step), folder / f"{step.index:04d}-samples.png"),
                save_png(distribution_picture(model, step), folder / f"{step.index:04d}-prediction.png"),
                field_path, summary(self.services.catalog, req, step, field))


class Playback:
    """One play's frames: the generation runs only as far as the frames asked for so far (the
    first chunk's pixels, then the next chunk's: the first frame shows after a chunk's worth of
    pixels, not the whole image), and frames are rendered a chunk (a second of playback) at a
    time in RENDER, each chunk once, however many players show it; kept as PNG files in a folder
    of its own, removed with the Playback."""

    def __init__(self, player: Player, req: Request, indices: list[int]) -> None:
        self.player, self.req, self.indices = player, req, indices
        self.folder = Path(tempfile.mkdtemp(prefix="play-", dir=frames_root()))
        weakref.finalize(self, shutil.rmtree, self.folder, True)
        self._lock = threading.Lock()
        self._generating = threading.Lock()
        self._chunks: dict[int, Future] = {}
        self._shown = set(indices)
        self._steps: dict[int, PixelStep] = {}   # generated and not yet rendered (shown ones only)
        self._stream: Iterator[PixelStep] | None = None
        self._reached = -1                       # the last raster index generated

    def chunk(self, k: int) -> Future | None:
        """The frames of chunk k (`chunk_frames`), a future list of `Player.frame_files`, set
        rendering on first request; None past the last frame."""
        if chunk_frames(k)[0] >= len(self.indices):
            return None
        with self._lock:
            if k not in self._chunks:
                self._chunks[k] = RENDER.submit(self._render, k)
            return self._chunks[k]

    def _render(self, k: int) -> list[tuple[int, str, str, str, str]]:
        first, end = chunk_frames(k)
        wanted = self.indices[first:end]
        steps = self._generated_through(wanted[-1], wanted)
        return [self.player.frame_files(self.req, steps[index], self.folder) for index in wanted]

    def _generated_through(self, last: int, wanted: list[int]) -> dict[int, PixelStep]:
        """The steps of `wanted`, generating in raster order up to pixel `last` if not yet
        there (one generator per play, advanced under a lock; only shown steps are kept, each
        until its chunk takes it)."""
        with self._generating:
            if self._stream is None:
                self._stream = stream(self.player.services.catalog, self.req)
            while self._reached < last:
                step = next(self._stream)
                self._reached = step.index
                if step.index in self._shown:
                    self._steps[step.index] = step
            return {index: self._steps.pop(index) for index in wanted}


async def play(player: Player, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
               image: np.ndarray | None, label: Any, position: Any, speed: Any
               ) -> AsyncIterator[tuple[int, str, str, str, str]]:
    """Stream frames every `speed` pixels from the pixel after `position` to the last, FPS a
    second. Only rendering takes a slot (in RENDER, a second of frames ahead of the one shown);
    waiting for a frame's time holds nothing, so a hall's worth of plays run side by side.
    A VQ-VAE plays its codes (`codes.play`), the pixel after `position` being its code."""
    catalog = player.services.catalog
    if plays_codes(catalog, name):
        after = inputs.whole(position or 0, "code") - 1        # the raster index of code number `position`
        async with contextlib.aclosing(codes.play(player.services, name, label, seed, after)) as frames:
            async for index, *shown in frames:
                yield (index + 1, *code_frame(tuple(shown)))
        return
    req = request(catalog, name, samples, temperature, seed, given_rows, image, label)
    total = positions(catalog, req.name)
    speed = inputs.count(speed, "number of pixels per frame", 1, total)
    position = inputs.whole(position or 0, "pixel")
    start = 0 if position >= total else max(position, 0)   # the index of the pixel after pixel number `position`
    playback = player.playback(req, start, speed)
    loop = asyncio.get_running_loop()
    first = None
    frames: list[tuple[int, str, str, str, str]] = []
    last = len(playback.indices) - 1
    past_due = False
    for k in range(last + 1):
        j = chunk_of(k)
        begin, end = chunk_frames(j)
        if k == begin:
            # A chunk whose last frame is already more than LATE overdue is skipped unrendered
            # (never the last chunk): a busy server (a hall playing a seed each) then renders
            # only what it can still show on time, instead of every frame of every play.
            end = min(end, last + 1) - 1
            past_due = first is not None and end < last and loop.time() - (first + end / FPS) > LATE
            if not past_due:
                # Shielded: the chunk is shared, so one player's Stop must not cancel it for the rest.
                frames = await asyncio.shield(asyncio.wrap_future(playback.chunk(j)))
                playback.chunk(j + 1)          # the next chunk renders while this one shows
        if past_due:
            continue
        if first is None:
            first = loop.time()
        else:   # paced from the first frame, so a late frame does not delay the rest
            wait = first + k / FPS - loop.time()
            if wait < -LATE and k < last:
                continue
            await asyncio.sleep(max(0.0, wait))
        index, *shown = frames[k - begin]
        yield (index + 1, *shown)


def start_pixel(model: AutoregressiveModel) -> int:
    """The pixel the tab opens on: the middle of the image (row 14, column 14 of 28x28), where a
    plain PixelCNN's blind spot shows (in orange) beside what it sees."""
    height, width = model.data_shape[1:]
    return (height // 2) * width + width // 2 + 1


def select(services: Services, name: str, samples: Any, temperature: Any, seed: Any, given_rows: Any,
           image: np.ndarray | None, label: Any, position: Any
           ) -> tuple[str, gr.Dropdown, gr.Slider, Image.Image, Image.Image, Image.Image, str]:
    """What changes with the model: its description, the class picker, the pixel slider's
    range (the position kept where it fits), and the frame there."""
    catalog = services.catalog
    name = tab_model(catalog, name)
    total = positions(catalog, name)
    try:
        position = min(max(inputs.whole(position, "pixel"), 1), total)
    except gr.Error:
        position = opening_position(catalog, name)
    label = picked_class(catalog, name, label)
    picture, distribution, field, summary = view(services, name, samples, temperature, seed, given_rows, image,
                                                 label, position)
    return (model_info(catalog, name), class_picker(catalog, name, label),
            gr.Slider(maximum=total, value=position, label=position_label(catalog, name)),
            # no label badge over a code map: it would cover the top row's codes (as on the codes tab)
            gr.Image(picture, label=picture_label(catalog, name), show_label=not plays_codes(catalog, name)),
            distribution,
            gr.Image(field, visible=field is not None), summary)


def opening_position(catalog: Catalog, name: str) -> int:
    """Where a model opens: a pixel model on its middle pixel (the blind spot), a VQ-VAE on its
    last code (the whole grid drawn)."""
    if plays_codes(catalog, name):
        return positions(catalog, name)
    return start_pixel(catalog.checkpoint(name, "autoregressive").model)


def position_label(catalog: Catalog, name: str) -> str:
    what = "code" if plays_codes(catalog, name) else "pixel"
    return f"{what} (1 to {positions(catalog, name)}, in raster order)"


def picture_label(catalog: Catalog, name: str) -> str:
    if plays_codes(catalog, name):
        return "codes drawn so far, over their decode (hatched: not drawn yet; red: the current cell)"
    return "samples (blue: not drawn yet; red: the current pixel)"


# The order the picker lists families in: the blind spot first, then its fixes.
FAMILY_ORDER = ["pixelcnn", "gated_pixelcnn", "row_lstm", "diagonal_bilstm"]


def picker_order(catalog: Catalog) -> list[str]:
    """Pixel models, MNIST first, then by family (plain PixelCNN first, to show its blind spot);
    then the VQ-VAEs, whose priors draw codes (only beside a pixel model: the tab opens on one)."""
    def rank(name: str) -> tuple[bool, int, str]:
        ckpt = catalog.checkpoint(name)
        family = FAMILY_ORDER.index(ckpt.model.name) if ckpt.model.name in FAMILY_ORDER else len(FAMILY_ORDER)
        return ckpt.dataset != "mnist", family, name
    pixel_models = sorted(catalog.autoregressive_names, key=rank)
    return pixel_models + codes.picker_order(catalog) if pixel_models else []


# What a link holds.
LINK_KEYS = ("model", "pixel", "samples", "seed", "given", "temperature")


def restore(catalog: Catalog, names: list[str], params: dict[str, str]) -> list[Any]:
    """A link's settings (see `links`), in LINK_KEYS order: model, pixel (or code) number,
    samples, seed, given rows, temperature."""
    name = inputs.choice(params.get("model", names[0]), names, "autoregressive model")
    model = catalog.checkpoint(name).model
    total = positions(catalog, name)
    pixel = inputs.whole(params.get("pixel", opening_position(catalog, name)), "pixel", 1, total)
    return [name, gr.Slider(maximum=total, value=pixel, label=position_label(catalog, name)),
            inputs.count(params.get("samples", START_SAMPLES), "number of samples", 1, MAX_SAMPLES),
            inputs.seed(params.get("seed", START_SEED)),
            inputs.count(params.get("given", 0), "number of given rows", 0, model.data_shape[1] - 1),
            inputs.number(params.get("temperature", START_TEMPERATURE), "temperature", *TEMPERATURES)]


def build(services: Services) -> Shareable | None:
    """The tab's widgets and events (see the module docstring); returns what a link holds of it."""
    catalog = services.catalog
    names = picker_order(catalog)
    if not names:
        gr.Markdown("No autoregressive model is loaded. Train one with `python -m train pixelcnn ...` "
                    "(or gated_pixelcnn, row_lstm, diagonal_bilstm) to watch it generate here.")
        return None
    start = names[0]
    total = positions(catalog, start)
    opening = opening_position(catalog, start)
    first = view(services, start, START_SAMPLES, START_TEMPERATURE, START_SEED, 0, None, None, opening)
    # On a 1280x720 projector the model, the pixel and the buttons take one row and the samples
    # are bounded by the screen's height; settings, model details and the explanation follow.
    with gr.Row(equal_height=True):
        model = gr.Dropdown(catalog.choices(names), value=start, label="autoregressive model", scale=3)
        # Its range follows the model (784 pixels, or a VQ-VAE's 49 codes): the handlers check it.
        position = ModelSlider(1, total, value=opening, step=1, label=f"pixel (1 to {total}, in raster order)",
                             elem_id="pixel-position", scale=4)
        play_button = gr.Button("Play", variant="primary", elem_id="pixel-play", scale=1, min_width=70)
        stop_button = gr.Button("Stop", variant="stop", elem_id="pixel-stop", scale=1, min_width=70)
        previous_button = gr.Button("◀ Pixel", elem_id="pixel-previous", scale=1, min_width=70)
        next_button = gr.Button("Pixel ▶", elem_id="pixel-next", scale=1, min_width=70)
    with gr.Row():
        picture = gr.Image(buttons=PICTURE_BUTTONS, value=first[0], label="samples (blue: not drawn yet; red: the current pixel)",
                           type="pil", format="png", interactive=False, scale=3, elem_id="pixel-frame",
                           elem_classes=["main-picture", "below-controls"])
        with gr.Column(scale=2):
            distribution = gr.Image(buttons=PICTURE_BUTTONS, value=first[1], label="prediction at the red pixel", show_label=False,
                                    type="pil", format="png", interactive=False, height=210)
            field = gr.Image(buttons=PICTURE_BUTTONS, value=first[2], label="receptive field (green: seen; orange: blind spot; grey: out of reach)",
                             type="pil", format="png", interactive=False, height=240)
    with gr.Row():
        status = gr.Markdown(first[3], elem_id="pixel-status")
        gr.HTML(KEYS_HINT, js_on_load=KEYBOARD_JS, elem_id="pixel-keys", container=False)
    with gr.Row():
        samples = gr.Slider(1, MAX_SAMPLES, value=START_SAMPLES, step=1, label="samples")
        temperature = gr.Slider(*TEMPERATURES, value=START_TEMPERATURE, step=0.05,
                                label="temperature (<1 bolder, >1 wilder)")
        seed = gr.Number(value=START_SEED, precision=0, minimum=0, label="seed")
        speed = gr.Slider(1, 112, value=START_SPEED, step=1, label="pixels per frame while playing")
        label = class_picker(catalog, start)
    with gr.Accordion("Completion: keep the top of an image, let the model draw the rest", open=False):
        with gr.Row():
            given_rows = gr.Slider(0, catalog.checkpoint(start, "autoregressive").model.data_shape[1] - 1, value=0, step=1,
                                   label="given rows (0 = generate from nothing)")
            digit = digit_input(services.example, model, "complete", "Image to complete")
    info = about_model(catalog, start)
    how_to_read(EXPLANATION)
    controls = [model, samples, temperature, seed, given_rows, digit.preview, label]
    frame_out = [picture, distribution, field, status]
    player = Player(services)
    player.warm(start)
    playing = play_button.click(user_errors(functools.partial(play, player)), [*controls, position, speed],
                                [position, *frame_out], api_name="pixel_play", show_progress="hidden", **PLAY)
    stop_button.click(None, None, None, cancels=[playing], api_name="pixel_stop")
    next_button.click(user_errors(functools.partial(step_by, services, 1)), [*controls, position],
                      [position, *frame_out], api_name="pixel_next", cancels=[playing], **DECODE)
    previous_button.click(user_errors(functools.partial(step_by, services, -1)), [*controls, position],
                          [position, *frame_out], api_name="pixel_previous", cancels=[playing], **DECODE)
    # `.input`: a person's pick only. A link sets the model and the pixel together and then runs
    # `select` itself (the Shareable's redraw, below); on `.change` the link's model fired it
    # with the page's pixel from before the link (407: a VQ-VAE's clamped to 49, and another
    # pixel model's pixel=100 shown as 407).
    model_picked = [*controls, position], [info, label, position, *frame_out]
    model.input(user_errors(functools.partial(select, services)), *model_picked, api_name="pixel_model",
                cancels=[playing], **DECODE)
    # The pixel slider, and any control that changes the samples, redraw the frame there. `.input`
    # fires on every change a person makes (dragging, a typed number, arrow keys), never on the
    # updates Play sends to the pixel slider; `always_last` keeps only the newest pending redraw.
    gr.on([position.input, samples.input, temperature.input, seed.input, given_rows.input,
           digit.preview.change], user_errors(functools.partial(view, services)), [*controls, position], frame_out,
          api_name="pixel_view", trigger_mode="always_last", show_progress="minimal", cancels=[playing], **DECODE)
    return Shareable("pixels", LINK_KEYS, [model, position, samples, seed, given_rows, temperature],
                     functools.partial(restore, catalog, names),
                     redraw=(functools.partial(select, services), *model_picked))
