"""The training-replay tab, driven through gradio_client on the session's app (tests/conftest.py).

The tiny DCGAN's checkpoint holds a 3-epoch replay; every picture and histogram the app
serves is checked against the stored samples and `metrics.classify` run here directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer import checkpoints, metrics, packing, render
from explorer.ui import Catalog, Services
from explorer.ui import replay as replay_tab
from tests.helpers import REPLAY_EPOCHS, picture


GAN = "mnist-dcgan"
SCALE = render.auto_scale(replay_tab.GRID_COLS)
CELL = 28 * SCALE + 2  # a tile and the grey gap after it


def grid_samples(path: str) -> np.ndarray:
    """Cut a served 10x10 replay grid back into its 100 samples, (100, 28, 28) uint8."""
    arr = picture(path)
    side = 10 * CELL - 2
    assert arr.shape == (side, side) and arr.dtype == np.uint8
    return np.stack([arr[i * CELL:i * CELL + 28 * SCALE:SCALE, j * CELL:j * CELL + 28 * SCALE:SCALE]
                     for i in range(10) for j in range(10)])


def stored_replay(catalog: Catalog) -> torch.Tensor:
    """The replay as the checkpoint stores it, (E, 100, 1, 28, 28)."""
    return packing.unpack_replay(catalog.checkpoint(GAN, "latent").history["replay"])


def counts(plot: dict) -> list[int]:
    return [int(row[1]) for row in plot["data"]]


def test_classifier_is_a_tool_not_a_model_and_makes_no_notice(catalog: Catalog):
    assert "mnist-classifier" not in catalog.latent_names and catalog.classifiers["mnist"].name == "mnist-classifier"
    assert not any("classifier" in n for n in catalog.notices)
    assert catalog.replay_names() == [GAN]


def test_each_epoch_shows_its_stored_samples_and_their_classes(client, catalog: Catalog):
    frames = stored_replay(catalog)
    classifier = catalog.classifiers["mnist"].model
    grids = []
    for epoch in range(1, REPLAY_EPOCHS + 1):
        grid, histogram, summary = client.predict(GAN, epoch, api_name="/replay_epoch")
        samples = grid_samples(grid)
        assert np.array_equal(samples, render.to_uint8(frames[epoch - 1]))  # crisp: exact pixels
        want = torch.bincount(metrics.classify(classifier, frames[epoch - 1])[0], minlength=10).tolist()
        assert counts(histogram) == want and sum(counts(histogram)) == 100
        assert [row[0] for row in histogram["data"]] == [str(k) for k in range(10)]
        covered = metrics.coverage(torch.tensor(want))
        assert f"Epoch {epoch} of {REPLAY_EPOCHS}" in summary
        assert f"{covered['classes_covered']}/10 classes covered" in summary
        assert f"{covered['kl_to_uniform']:.3f} nats" in summary
        grids.append(samples)
    assert all(not np.array_equal(a, b) for a, b in zip(grids, grids[1:]))  # epochs differ


def test_choosing_a_run_narrows_the_slider_and_plots_the_whole_run(client, catalog: Catalog, services: Services):
    slider, grid, histogram, summary, coverage, losses = client.predict(GAN, api_name="/replay_run")
    assert (slider["minimum"], slider["maximum"], slider["value"]) == (1, REPLAY_EPOCHS, REPLAY_EPOCHS)
    assert np.array_equal(grid_samples(grid), render.to_uint8(stored_replay(catalog)[-1]))  # the last epoch
    scores = services.replay(GAN).scores
    assert coverage["data"] == [[e, s["classes_covered"]] for e, s in zip(range(1, 4), scores)]
    curves: dict[str, list[float]] = {}
    for epoch, value, series in losses["data"]:
        curves.setdefault(series, []).append(value)
    history = catalog.checkpoint(GAN, "latent").history
    assert curves == {k: history[k] for k in ("train_loss", "train_g_loss", "critic_gap")}


def test_play_streams_every_epoch_and_restarts_from_the_end(client, monkeypatch):
    monkeypatch.setattr(replay_tab, "PAUSE_S", 0.05)  # the server runs in this process
    for start, want in ((2, [2, 3]), (REPLAY_EPOCHS, [1, 2, 3])):
        job = client.submit(GAN, start, api_name="/replay_play")
        job.result(timeout=60)
        outputs = job.outputs()
        assert [out[0] for out in outputs] == want
        assert all(sum(counts(out[2])) == 100 for out in outputs)
        assert not np.array_equal(picture(outputs[0][1]), picture(outputs[-1][1]))


def test_replay_refuses_what_it_cannot_show(client, services: Services):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("mnist-vae", 1, api_name="/replay_epoch")  # no replay: not offered
    with pytest.raises(ValueError, match="epochs 1 to 3; there is no epoch 7"):
        replay_tab.epoch_view(services, GAN, 7)
    with pytest.raises(ValueError, match="no training replay"):
        services.replay("mnist-vae")


def test_without_a_classifier_the_grid_shows_and_the_histogram_says_why(tiny_trained_dir: Path, tmp_path: Path):
    (tmp_path / f"{GAN}.safetensors").write_bytes((tiny_trained_dir / f"{GAN}.safetensors").read_bytes())
    alone = Catalog.from_folder(tmp_path, download=False)
    picture_, histogram, summary = replay_tab.epoch_view(Services(alone), GAN, 2)
    assert picture_.size == (10 * CELL - 2,) * 2
    assert len(histogram) == 0 and "needs the mnist classifier" in summary
    assert len(replay_tab.coverage_table(Services(alone).replay(GAN))) == 0


def test_replay_scores_are_computed_once(services: Services, monkeypatch):
    first = services.replay(GAN)
    monkeypatch.setattr(metrics, "replay_class_scores", lambda *a: pytest.fail("recomputed"))
    assert services.replay(GAN) is first


def test_gan_label_shows_its_sample_quality(catalog: Catalog, tiny_trained_dir: Path):
    assert catalog.summary_line(GAN) == "DCGAN (dcgan) on mnist, frechet_distance = 12.30, classes covered = 7/10"
    assert "critic_gap" in checkpoints.load(tiny_trained_dir / f"{GAN}.safetensors").summary()


def test_the_epoch_slider_spans_the_chosen_run(tiny_trained_dir: Path, tmp_path: Path):
    """Two runs, 3 and 2 epochs: the slider opens on the start run's epochs, not on all runs'
    together; an epoch past the run asked for is a sentence (the handler checks, not Gradio)."""
    import gradio as gr

    for stem in (GAN, "mnist-dcgan-short"):
        (tmp_path / f"{stem}.safetensors").write_bytes((tiny_trained_dir / f"{GAN}.safetensors").read_bytes())
    runs = Catalog.from_folder(tmp_path, download=False)
    short = replay_tab.default_replay(runs, runs.replay_names())  # the run the tab opens on
    full = next(n for n in runs.replay_names() if n != short)
    history = runs.checkpoint(short, "latent").history
    history["replay"], history["epoch"] = history["replay"][:2], history["epoch"][:2]
    for key in ("train_loss", "train_g_loss", "critic_gap", "seconds"):
        history[key] = history[key][:2]
    services = Services(runs)
    with gr.Blocks() as demo:
        replay_tab.build(services)
    slider = next(b for b in demo.blocks.values() if isinstance(b, gr.Slider) and b.label == "epoch")
    assert (slider.minimum, slider.maximum, slider.value) == (1, 2, 2)
    assert slider.preprocess(3) == 3  # the server takes it to the handler, which knows the run
    assert replay_tab.epoch_view(services, full, 3)[2].startswith(f"**Epoch 3 of {REPLAY_EPOCHS}**")
    with pytest.raises(ValueError, match="This run has epochs 1 to 2; there is no epoch 3"):
        replay_tab.epoch_view(services, short, 3)
    update = replay_tab.run_view(services, full)[0]
    assert (update.minimum, update.maximum, update.value) == (1, REPLAY_EPOCHS, REPLAY_EPOCHS)


def test_epochs_drawn_with_averaged_weights_say_so(tiny_trained_dir: Path, tmp_path: Path):
    (tmp_path / f"{GAN}.safetensors").write_bytes((tiny_trained_dir / f"{GAN}.safetensors").read_bytes())
    runs = Catalog.from_folder(tmp_path, download=False)
    runs.checkpoint(GAN, "latent").training["ema"] = {"decay": 0.999, "from_epoch": 2}
    said = [replay_tab.epoch_view(Services(runs), GAN, epoch)[2] for epoch in (1, 2, 3)]
    assert ["From epoch 2 the run saved a running average" in s for s in said] == [False, True, True]
