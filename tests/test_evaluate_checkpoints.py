"""`benchmarks.evaluate_checkpoints` on tiny checkpoints and fake data: the figures it stores
are the models' own likelihoods on the right test set."""

from __future__ import annotations

import pytest
import torch

from benchmarks import evaluate_checkpoints
from explorer import checkpoints, data, metrics


def test_autoregressive_models_get_their_exact_test_nll(tiny_trained_dir, fake_data, tmp_path):
    report = tmp_path / "report.md"
    evaluate_checkpoints.main(["--trained", str(tiny_trained_dir), "--data-dir", str(fake_data), "--k", "0",
                               "--only", "mnist-pixelcnn", "--threads", "1", "--report", str(report)])
    ckpt = checkpoints.load(tiny_trained_dir / "mnist-pixelcnn.safetensors")
    x = data.fixed_binarized_test(data.load_split("mnist", "test", fake_data).images)
    with torch.no_grad():
        expected = float(-ckpt.model.log_prob(x).mean())
    text = report.read_text()
    row = next(line for line in text.splitlines() if "| test_nll |" in line)
    assert f"{expected:.4g}" in row and "mnist-pixelcnn" in row


def test_an_8bit_model_is_scored_in_bits_per_dimension(tiny_trained_dir, tmp_path):
    from tests.helpers import write_fake_dataset

    folder = write_fake_dataset(tmp_path / "data", "fashion-mnist")
    ckpt = checkpoints.load(tiny_trained_dir / "fashion-mnist-gated_pixelcnn.safetensors")
    result = evaluate_checkpoints.evaluate(ckpt, str(folder), k=0, limit=None)
    x = data.to_float(data.load_split("fashion-mnist", "test", folder).images)
    with torch.no_grad():
        nats = float(-ckpt.model.log_prob(torch.round(x * 255) / 255).mean())
    assert result["headline"] == "test_bits_per_dim"
    assert abs(result["test_bits_per_dim"] - nats / (784 * torch.log(torch.tensor(2.0)).item())) < 1e-4


def test_a_vqvae_gets_its_codes_report(fake_data, tmp_path):
    from explorer.models import build

    folder = tmp_path / "trained"
    model = build("vqvae", {"channels": 4, "embedding_dim": 3, "num_codes": 6,
                            "prior": {"channels": 6, "layers": 2, "first_kernel": 3}}).eval()
    checkpoints.save(folder / "mnist-vqvae.safetensors", model, dataset="mnist", training={"binarized": False})
    evaluate_checkpoints.main(["--trained", str(folder), "--data-dir", str(fake_data), "--k", "0", "--threads", "1",
                               "--report", str(tmp_path / "report.md"), "--write-metadata"])
    stored = checkpoints.load(folder / "mnist-vqvae.safetensors").metrics
    x = data.to_float(data.load_split("mnist", "test", fake_data).images)       # trained on grey: grey test images
    assert stored["test_nll_bound"] == pytest.approx(metrics.codes_report(model, x, binary=False)["test_nll_bound"])
    assert "not a bound on a likelihood" in stored["how"]["test_nll_bound"]


def test_a_class_conditional_model_gets_its_conditional_nll_and_bayes_accuracy(fake_data, tmp_path):
    from explorer.models import build

    torch.manual_seed(0)
    model = build("gated_pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3, "num_classes": 10}).eval()
    for layer in model.layers:   # class biases start at zero: make the labels matter
        torch.nn.init.normal_(layer.class_bias.weight)
    path = tmp_path / "mnist-gated_pixelcnn-classes.safetensors"
    checkpoints.save(path, model, dataset="mnist", training={"binarized": True})
    result = evaluate_checkpoints.evaluate(checkpoints.load(path), str(fake_data), k=0, limit=None)
    test = data.load_split("mnist", "test", fake_data)
    x = data.fixed_binarized_test(test.images)
    with torch.no_grad():
        per_label = torch.stack([model.log_prob(x, torch.full((len(x),), k)) for k in range(10)], 1)
        true_nll = float(-per_label.gather(1, test.labels.long()[:, None]).mean())
    assert abs(result["test_nll"] - true_nll) < 1e-3
    assert result["bayes_test_accuracy"] == float((per_label.argmax(1) == test.labels).float().mean())
    assert "Bayes classifier" in result["how"]["bayes_test_accuracy"]
    # Beside it, the discriminative classifier's figure where one sits in the same folder.
    checkpoints.save(tmp_path / "mnist-classifier.safetensors", build("classifier", {"channels": 4, "features": 16}),
                     dataset="mnist", metrics={"test_accuracy": 0.9862})
    again = evaluate_checkpoints.evaluate(checkpoints.load(path), str(fake_data), k=0, limit=None)
    assert "the discriminative classifier mnist-classifier.safetensors: 0.9862" in again["how"]["bayes_test_accuracy"]
