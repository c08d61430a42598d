"""Training replay tab: a GAN's fixed-seed samples epoch by epoch, with their class histogram,
so mode collapse can be watched as it happens.

Every epoch, training drew the same 100 codes and stored what the generator made of them
(`history["replay"]` in the checkpoint). A healthy GAN's grid sharpens while its histogram
stays flat; a collapsing one makes one kind of digit per epoch, hopping between them.

Endpoints:
  `/replay_run`:   (model) -> the epoch slider (narrowed to the run, at its last epoch), that
                   epoch's view (as `/replay_epoch`), classes covered per epoch, losses per epoch.
  `/replay_epoch`: (model, epoch) -> the 10x10 sample grid, the class histogram, a summary.
  `/replay_play`:  (model, epoch) -> streams (epoch, grid, histogram, summary) for every epoch
                   from `epoch` to the last (from the first if `epoch` is the last), a short
                   pause apart. The Stop button (and choosing another model) cancels it.
"""

from __future__ import annotations

import functools
import math
import time
from typing import Any, Iterator

import gradio as gr
import pandas as pd
from PIL import Image

from .. import metrics, render
from .catalog import Catalog
from .services import Replay, Services
from . import inputs
from .links import Shareable
from .common import PICTURE_BUTTONS, LIGHT, REPLAY, ModelSlider, how_to_read, lead, user_errors

# Seconds between epochs while playing: long enough to take in a grid, short enough to see
# collapse as motion.
PAUSE_S = 0.7
GRID_COLS = 10
HIST_X, HIST_Y = "class", "samples"
EPOCH, COVERED = "epoch", "classes covered"
LOSS_Y, LOSS_SERIES = "value", "series"
# Per-epoch history entries that are not training curves.
NOT_CURVES = {"epoch", "seconds", "replay"}

EXPLANATION = (
    "After every training epoch the GAN drew the **same 100 codes** and stored the pictures. "
    "Step through the epochs (or press Play) to watch its generator learn. The bars count which "
    "class the data set's classifier sees in each picture: a healthy GAN keeps them level; a "
    "**collapsing** GAN makes one or two kinds of digit per epoch and hops between them, because "
    "its generator chases whatever its discriminator currently lets through."
)


def frame_index(replay: Replay, epoch: Any) -> int:
    """Which stored frame shows `epoch`; a sentence naming the run's epochs if none does."""
    if epoch is None or epoch == "":
        raise ValueError("Choose an epoch.")
    epoch = inputs.whole(epoch, "epoch")
    if epoch not in replay.epochs:
        raise ValueError(f"This run has epochs {replay.epochs[0]} to {replay.epochs[-1]}; "
                         f"there is no epoch {epoch}.")
    return replay.epochs.index(epoch)


def class_label(index: int, name: str) -> str:
    """Bar label: the class name, numbered where it is a word, so sorting keeps class order."""
    return name if name == str(index) else f"{index} {name}"


def histogram_table(replay: Replay, i: int) -> pd.DataFrame:
    """Samples per class at frame i (empty without a classifier)."""
    if replay.scores is None:
        return pd.DataFrame({HIST_X: [], HIST_Y: []})
    return pd.DataFrame({HIST_X: [class_label(k, c) for k, c in enumerate(replay.classes)],
                         HIST_Y: replay.scores[i]["class_histogram"]})


def epoch_summary(catalog: Catalog, name: str, replay: Replay, i: int) -> str:
    """Markdown: which epoch this is and its coverage, or why there is no histogram."""
    n, k = replay.frames.shape[1], len(replay.classes)
    head = f"**Epoch {replay.epochs[i]} of {replay.epochs[-1]}**, the same {n} codes every epoch."
    checkpoint = catalog.checkpoint(name, "latent")
    ema = checkpoint.training.get("ema")
    if ema and replay.epochs[i] >= ema["from_epoch"]:  # train.averaging: frames from then on are the average's
        head += (f" From epoch {ema['from_epoch']} the run saved a running average of its generator's weights "
                 "(`--ema`), which changes more smoothly than the weights being trained.")
    if replay.scores is None:
        dataset = checkpoint.dataset
        return (f"{head} The class histogram needs the {dataset} classifier "
                f"(`trained/{dataset}-classifier.safetensors`, made with "
                f"`python -m train classifier --dataset {dataset}`), which is not loaded.")
    scores = replay.scores[i]
    share = 100 * metrics.COVERED_SHARE / k
    return (f"{head} **{scores['classes_covered']}/{k} classes covered** (a class counts once it has "
            f"{share:g}% of the samples); KL to uniform **{scores['kl_to_uniform']:.3f} nats** "
            f"(0 when every class is drawn equally often, log {k} = {math.log(k):.2f} when all "
            "samples are one class).")


def epoch_view(services: Services, name: str, epoch: Any) -> tuple[Image.Image, pd.DataFrame, str]:
    """The sample grid, class histogram and summary of one epoch."""
    replay = services.replay(inputs.model_name(services.catalog, name, "latent"))
    i = frame_index(replay, epoch)
    picture = render.mosaic(replay.frames[i], GRID_COLS, render.auto_scale(GRID_COLS))
    return picture, histogram_table(replay, i), epoch_summary(services.catalog, name, replay, i)


def coverage_table(replay: Replay) -> pd.DataFrame:
    """Classes covered at every epoch (empty without a classifier)."""
    if replay.scores is None:
        return pd.DataFrame({EPOCH: [], COVERED: []})
    return pd.DataFrame({EPOCH: replay.epochs, COVERED: [s["classes_covered"] for s in replay.scores]})


def losses_table(services: Services, name: str) -> pd.DataFrame:
    """Long table of every per-epoch training curve in the checkpoint's history."""
    history = services.catalog.checkpoint(name, "latent").history
    epochs = services.replay(name).epochs
    rows = [(e, float(v), key) for key, values in history.items() if key not in NOT_CURVES
            and isinstance(values, list) and len(values) == len(epochs)
            and all(isinstance(v, (int, float)) for v in values)
            for e, v in zip(epochs, values)]
    return pd.DataFrame(rows, columns=[EPOCH, LOSS_Y, LOSS_SERIES])


def run_view(services: Services, name: str) -> tuple[gr.Slider, Image.Image, pd.DataFrame, str,
                                                    pd.DataFrame, pd.DataFrame]:
    """Everything that changes with the model: the slider's range (at the last epoch), that
    epoch's view, and the whole-run plots."""
    name = inputs.model_name(services.catalog, name, "latent")
    replay = services.replay(name)
    last = replay.epochs[-1]
    slider = gr.Slider(minimum=replay.epochs[0], maximum=last, value=last)
    return (slider, *epoch_view(services, name, last), coverage_table(replay), losses_table(services, name))


def play(services: Services, name: str, epoch: Any) -> Iterator[tuple[int, Image.Image, pd.DataFrame, str]]:
    """Each epoch's view in turn, from `epoch` (or the first, if `epoch` is the last) to the end."""
    name = inputs.model_name(services.catalog, name, "latent")
    replay = services.replay(name)
    start = frame_index(replay, epoch)
    if start == len(replay.epochs) - 1:
        start = 0
    for i in range(start, len(replay.epochs)):
        if i > start:
            time.sleep(PAUSE_S)
        yield (replay.epochs[i], *epoch_view(services, name, replay.epochs[i]))


def default_replay(catalog: Catalog, names: list[str]) -> str:
    """The collapsing plain GAN where there is one (the replay's best lesson), else the first."""
    return next((n for n in names if catalog.checkpoint(n, "latent").model.name == "gan"), names[0])


def build(services: Services) -> Shareable | None:
    """The tab's widgets and its `/replay_run`, `/replay_epoch` and `/replay_play` events;
    returns what a link holds of it (the run: choosing it redraws the tab)."""
    names = services.catalog.replay_names()
    if not names:
        gr.Markdown("No checkpoint with a training replay is loaded. GAN training stores one: "
                    "train a GAN with `python -m train dcgan ...` to watch it learn here.")
        return None
    lead("After every epoch the GAN drew the same 100 codes: step through the epochs, or press Play, "
         "to watch its generator learn (or collapse).")
    start = default_replay(services.catalog, names)
    # Only the start run is scored now (the others when chosen, or by the warm-up behind the
    # server): scoring every run's epochs took seconds of the app's start.
    shown = services.replay(start)
    # The slider spans the start run's epochs; choosing another run sets its range (/replay_run),
    # and the handlers check an epoch against the run asked for (ModelSlider).
    lowest, last = shown.epochs[0], shown.epochs[-1]
    samples = shown.frames.shape[1]  # every run stores the same fixed-seed batch (train/loop.py)
    # Not run_view: a gr.Slider made here, inside the Blocks, would be put on the page.
    first = (last, *epoch_view(services, start, last), coverage_table(services.replay(start)),
             losses_table(services, start))
    with gr.Row():
        model = gr.Dropdown(services.catalog.choices(names), value=start, label="GAN", scale=3)
        epoch = ModelSlider(lowest, max(last, lowest + 1), value=first[0], step=1, label="epoch", scale=3)
        play_button = gr.Button("Play", variant="primary", scale=1, elem_id="replay-play")
        stop_button = gr.Button("Stop", variant="stop", scale=1)
    with gr.Row():
        grid = gr.Image(value=first[1], label="the same 100 codes, decoded after this epoch", type="pil",
                        format="png", interactive=False, scale=3, elem_id="replay-grid",
                        elem_classes=["main-picture", "below-controls"],
                        buttons=PICTURE_BUTTONS)
        with gr.Column(scale=2):
            histogram = gr.BarPlot(value=first[2], x=HIST_X, y=HIST_Y, sort="x", y_lim=[0, samples],
                                   label="classes of the 100 samples (the data set's classifier)", height=280)
            summary = gr.Markdown(first[3])
    with gr.Row():
        coverage = gr.LinePlot(value=first[4], x=EPOCH, y=COVERED, y_lim=[0, len(shown.classes)],
                               label="classes covered, epoch by epoch", height=260)
        losses = gr.LinePlot(value=first[5], x=EPOCH, y=LOSS_Y, color=LOSS_SERIES,
                             label="training curves (history)", height=260)
    how_to_read(EXPLANATION)
    view = [grid, histogram, summary]
    playing = play_button.click(user_errors(functools.partial(play, services)), [model, epoch], [epoch, *view],
                                api_name="replay_play", show_progress="hidden", **REPLAY)
    stop_button.click(None, None, None, cancels=[playing], api_name="replay_stop")
    model.change(user_errors(functools.partial(run_view, services)), model, [epoch, *view, coverage, losses],
                 api_name="replay_run", cancels=[playing], **LIGHT)
    epoch.input(user_errors(functools.partial(epoch_view, services)), [model, epoch], view,
                api_name="replay_epoch", trigger_mode="always_last", show_progress="minimal", **LIGHT)
    return Shareable("replay", ("model",), [model],
                     lambda params: [inputs.choice(params.get("model", start), names, "training run")])
