"""The three-kinds tab (`/three_kinds`, `/three_kinds_example`, `/three_kinds_generate`): the
classifier's, the density model's and the conditional model's answers as the models give them,
verdicts against thresholds read off the test images, conditional generation two ways."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from explorer import bayes, data, intake, outliers, three_kinds


def confidences(label_value: dict) -> dict[str, float]:
    return {c["label"]: c["confidence"] for c in label_value["confidences"]}


def test_the_three_answers_match_the_models_and_thresholds_come_from_the_test_images(client, catalog):
    preview, caption = client.predict("mnist", 3, api_name="/three_kinds_source")
    assert "mnist test image #3" in caption
    probs, density, bars, bayes_probs, conditional, reading = client.predict("mnist", handle_file(preview),
                                                                             api_name="/three_kinds")
    x = intake.prepare_digit(np.asarray(Image.open(preview)))[None]
    binary = (x >= 0.5).float()
    classifier = catalog.classifiers["mnist"].model
    with torch.no_grad():
        expected_probs = torch.softmax(classifier(x), 1)[0]
        nll = -float(catalog.checkpoint("mnist-gated_pixelcnn", "autoregressive").model.log_prob(binary))
    conditional_model = catalog.checkpoint("mnist-gated_pixelcnn-classes", "autoregressive").model
    log_lik = bayes.class_log_likelihoods(conditional_model, binary)
    post, _ = bayes.posterior(log_lik)
    # The bars show the top classes, each with the model's own probability.
    for shown, expected in ((confidences(probs), expected_probs), (confidences(bayes_probs), post[0])):
        assert shown and all(p == pytest.approx(float(expected[int(c)]), abs=1e-4) for c, p in shown.items())
        assert min(shown.values()) >= float(expected.sort(descending=True).values[len(shown) - 1]) - 1e-4
    assert f"-log p(x)** = {nll:.1f} nats" in density
    heights = [row[1] for row in bars["data"]]
    assert heights == pytest.approx((-log_lik[0]).tolist(), abs=1e-3)
    # The threshold is the 99th percentile of the served test images' scores (64 fake images here).
    split = catalog.test_sets["mnist"]
    test_nll = three_kinds.ThreeKinds(density=catalog.checkpoint("mnist-gated_pixelcnn", "autoregressive").model
                                      ).judge(data.to_float(split.images[:500])).nll
    threshold = outliers.threshold_from(test_nll)
    assert f"threshold {threshold.value:.4g} nats" in density and f"of {len(split)} real test images" in density
    assert re.search(r"Verdict: \*\*(OUTLIER|looks like the data)", conditional)
    assert "p(y|x) = p(x|y) p(y) / p(x)" in reading


def test_ready_examples_and_sentences_for_what_is_missing(client):
    blank, caption = client.predict("a blank image", api_name="/three_kinds_example")
    assert np.asarray(Image.open(blank)).max() == 0 and "blank" in caption
    letter, _ = client.predict("a drawn letter", api_name="/three_kinds_example")
    assert np.asarray(Image.open(letter)).max() > 200
    with pytest.raises(AppError, match="No fashion-mnist test images here"):
        client.predict("a Fashion sneaker", api_name="/three_kinds_example")
    with pytest.raises(AppError, match="Pick an example, upload or draw an image first"):
        client.predict("mnist", None, api_name="/three_kinds")


def test_conditional_generation_two_ways_reports_the_effective_sample_size(client):
    classes = client.predict("mnist", api_name="/three_kinds_classes")
    assert [c[0] for c in classes["choices"]] == [str(k) for k in range(10)] and classes["value"] == "0"
    direct, resampled, note = client.predict("mnist", "3", 0, api_name="/three_kinds_generate")
    assert len(direct) == 8 and len(resampled) == 8
    ess = float(re.search(r"Effective sample size \*\*([0-9.]+)\*\*", note).group(1))
    assert 1.0 <= ess <= 64.0
    with pytest.raises(AppError, match="not in the list of choices"):
        client.predict("mnist", "Sneaker", 0, api_name="/three_kinds_generate")
