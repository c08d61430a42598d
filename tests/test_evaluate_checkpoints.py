"""`benchmarks.evaluate_checkpoints` on tiny checkpoints and fake data: the figures it stores
are the models' own likelihoods on the right test set."""

from __future__ import annotations

import torch

from benchmarks import evaluate_checkpoints
from explorer import checkpoints, data


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
