"""The likelihood tab (`/likelihood`, `/score_source`): each model's -log p(x) of an image, as
the models themselves give it; without test data, model samples to score; without an image, a sentence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import intake, render
from tests.helpers import rgb


def test_likelihood_table_matches_the_models(client, catalog):
    preview, caption = client.predict("mnist", 5, api_name="/score_source")
    assert "mnist test image #5" in caption
    table, gallery, text = client.predict(handle_file(preview), api_name="/likelihood")
    names = {catalog.display_name(n): n for n in (*catalog.latent, *catalog.autoregressive)}
    rows = {names[r[0]]: r[1:] for r in table["data"]}  # the table shows plain names
    assert set(rows) == {"mnist-pixelcnn", "mnist-gated_pixelcnn", "mnist-row_lstm", "mnist-diagonal_bilstm",
                         "fashion-mnist-gated_pixelcnn", "mnist-vae", "mnist-vae2d"}
    rows = {n: [n, None, *r] for n, r in rows.items()}  # old column positions: name, data set, ...
    x = intake.prepare_digit(np.asarray(Image.open(preview)))
    for name in ("mnist-pixelcnn", "mnist-gated_pixelcnn", "mnist-row_lstm", "mnist-diagonal_bilstm"):
        expected = -float(catalog.checkpoint(name, "autoregressive").model.log_prob((x >= 0.5).float()[None]).detach())
        assert rows[name][3] == pytest.approx(expected, abs=0.01)
        assert rows[name][4] == pytest.approx(expected / (784 * math.log(2)), abs=1e-4)
        assert rows[name][6] == pytest.approx(expected / 500.0, abs=0.01)
    fashion = catalog.checkpoint("fashion-mnist-gated_pixelcnn", "autoregressive").model
    assert rows["fashion-mnist-gated_pixelcnn"][3] == pytest.approx(
        -float(fashion.log_prob((torch.round(x * 255) / 255)[None]).detach()), abs=0.01)
    assert rows["mnist-vae"][2].startswith("binary; VAE bound")
    assert len(gallery) == 5 and all(rgb(g["image"]).shape[0] > 28 * 6 for g in gallery)
    assert "How to read this" in text


def test_likelihood_without_data_scores_model_samples_and_without_an_image_says_why(client, services):
    # No Fashion-MNIST test images here: the example is a sample from a Fashion-MNIST model.
    preview, caption = client.predict("fashion-mnist", 2, api_name="/score_source")
    assert caption == "no test images available; a sample from fashion-mnist-vae (seed 2)"
    sample = services.example("fashion-mnist-vae", 2)[0]
    assert np.abs(np.asarray(Image.open(preview)).astype(int) - render.to_uint8(sample)).max() <= 1
    with pytest.raises(AppError, match="Pick, upload or draw an image to score"):
        client.predict(None, api_name="/likelihood")


def test_the_reading_speaks_of_every_data_sets_models_and_only_fitting_remarks(catalog):
    from explorer.ui import likelihood

    def score(name, dataset, kind, ratio):
        return likelihood.Score(name, catalog.display_name(name), dataset, "x", 100.0 * ratio, 100.0, None,
                                torch.zeros(1, 28, 28), kind)

    # An MNIST digit: MNIST models find it typical, the Fashion 256-level model finds it cheap.
    text = likelihood.reading([score("mnist-pixelcnn", "mnist", "bernoulli", 1.1),
                               score("mnist-row_lstm", "mnist", "bernoulli", 0.95),
                               score("fashion-mnist-gated_pixelcnn", "fashion-mnist", "categorical256", 0.4)])
    assert "**Models trained on MNIST** (PixelCNN (MNIST), PixelRNN Row LSTM (MNIST)): 0.95x to 1.10x" in text
    assert "About as likely as their own test data." in text
    assert "**Models trained on Fashion-MNIST** (Gated PixelCNN (Fashion-MNIST)): 0.40x" in text
    assert "binarized" not in text and "256 grey levels predicts large flat black areas" in text
    # A binary model finding it cheap gets the binarization remark; one surprised, the rarely-seen one.
    text = likelihood.reading([score("mnist-pixelcnn", "mnist", "bernoulli", 0.8),
                               score("fashion-mnist-gated_pixelcnn", "fashion-mnist", "categorical256", 3.0)])
    assert "binarized at random" in text and "rarely seen anything like it" in text
    assert list(likelihood.table([score("mnist-pixelcnn", "mnist", "bernoulli", 1.0)]).columns) == likelihood.COLUMNS
    assert len(likelihood.COLUMNS) == 6 and sum(map(len, likelihood.COLUMNS)) <= 70  # fits about 960 px
