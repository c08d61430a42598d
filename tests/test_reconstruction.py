"""`benchmarks.reconstruction` on tiny checkpoints and fake data: one row per model with an
encoder network (GANs skipped), each its own reconstruction of the right test set."""

from __future__ import annotations

import pytest
import torch

from benchmarks import reconstruction
from explorer import checkpoints, data, metrics
from explorer.models import build


def test_models_with_an_encoder_are_compared_on_the_same_test_set(fake_data, tmp_path):
    folder = tmp_path / "trained"
    torch.manual_seed(0)
    models = {"mnist-vae": build("vae", {"hidden": 16, "channels": 4, "latent_dim": 3}),
              "mnist-vqvae": build("vqvae", {"channels": 4, "embedding_dim": 3, "num_codes": 6,
                                             "prior": {"channels": 6, "layers": 2, "first_kernel": 3}}),
              "mnist-dcgan": build("dcgan", {"latent_dim": 8, "channels": 4})}
    for stem, model in models.items():
        checkpoints.save(folder / f"{stem}.safetensors", model.eval(), dataset="mnist",
                         training={"binarized": True})
    report = tmp_path / "reconstruction.md"
    rows = list(reconstruction.main(["--trained", str(folder), "--data-dir", str(fake_data), "--threads", "1",
                                     "--report", str(report)]))
    assert [name for name, _ in rows] == ["mnist-vae", "mnist-vae", "mnist-vqvae", "mnist-vqvae"]
    images = data.load_split("mnist", "test", fake_data).images
    model = checkpoints.load(folder / "mnist-vqvae.safetensors").model
    for (_, row), x in zip(rows[2:], (data.fixed_binarized_test(images), data.to_float(images))):
        assert row["test_recon_nll"] == pytest.approx(metrics.reconstruction_report(model, x)["test_recon_nll"])
    text = report.read_text()
    assert "| mnist-vqvae | vqvae | mnist binarized | fixed binarized |" in text
    assert "| mnist-vqvae | vqvae | mnist binarized | grey |" in text and "dcgan" not in text
