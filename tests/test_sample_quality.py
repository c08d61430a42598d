"""Sample-quality scores: coverage and KL on hand-made histograms, the Frechet distance in closed form."""

from __future__ import annotations

import math

import pytest
import torch

from explorer import metrics
from explorer.models import build


def test_all_one_class_covers_one_with_kl_log_k():
    counts = torch.zeros(10)
    counts[3] = 500
    s = metrics.coverage(counts)
    assert s["classes_covered"] == 1
    assert s["kl_to_uniform"] == pytest.approx(math.log(10))


def test_uniform_classes_cover_all_with_zero_kl():
    s = metrics.coverage(torch.full((10,), 100))
    assert s == {"classes_covered": 10, "kl_to_uniform": pytest.approx(0.0, abs=1e-12)}


def test_coverage_threshold_is_a_quarter_of_the_uniform_share():
    counts = torch.tensor([0.30, 0.30, 0.30, 0.026, 0.024, 0.05, 0, 0, 0, 0]) * 1000
    assert metrics.coverage(counts)["classes_covered"] == 5  # 2.6% counts, 2.4% does not


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(200_000, 3, generator=g, dtype=torch.float64)
    b = torch.randn(200_000, 3, generator=g, dtype=torch.float64) * torch.tensor([2.0, 1.0, 0.5]) + 1.0
    # N(0, I) vs N(1, diag(4, 1, 0.25)): |mu|^2 = 3, trace term sum (1 + s^2 - 2 s) = 1 + 0 + 0.25
    assert metrics.frechet_distance(a, b) == pytest.approx(4.25, abs=0.05)
    assert metrics.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)


def test_sample_quality_on_a_classifier_that_sees_one_class():
    torch.manual_seed(0)
    clf = build("classifier", {"channels": 4, "features": 8}).eval()
    with torch.no_grad():
        clf.head[1].weight.zero_()
        clf.head[1].bias.copy_(torch.arange(10.0) == 7)  # always predicts class 7
    images = torch.rand(50, 1, 28, 28)
    ref = metrics.classify(clf, torch.rand(60, 1, 28, 28))[1]
    s = metrics.sample_quality(images, clf, ref)
    assert s["class_histogram"] == [0] * 7 + [50] + [0, 0]
    assert s["classes_covered"] == 1 and s["kl_to_uniform"] == pytest.approx(math.log(10))
    assert s["frechet_distance"] >= 0


def _one_class_classifier(logit: float):
    """A classifier whose top class (7) gets softmax probability e^logit / (e^logit + 9), always."""
    clf = build("classifier", {"channels": 4, "features": 8}).eval()
    with torch.no_grad():
        clf.head[1].weight.zero_()
        clf.head[1].bias.copy_((torch.arange(10.0) == 7) * logit)
    return clf


def test_legible_share_counts_images_at_or_above_probability_0_9():
    images = torch.rand(20, 1, 28, 28)
    # p = e^L / (e^L + 9) >= 0.9  <=>  L >= ln 81 = 4.394
    assert metrics.legible_share(_one_class_classifier(4.5), images) == 1.0
    assert metrics.legible_share(_one_class_classifier(4.3), images) == 0.0
    assert metrics.sample_quality(images, _one_class_classifier(5.0), metrics.classify(
        _one_class_classifier(5.0), images)[1])["legible"] == 1.0


def test_autoregressive_samples_are_the_samplers_own():
    from explorer import sampling
    torch.manual_seed(0)
    model = build("gated_pixelcnn", {"channels": 4, "layers": 1, "first_kernel": 3, "num_classes": 10}).eval()
    got = metrics.model_samples(model, 6, seed=3, batch_size=4)
    g = torch.Generator().manual_seed(3)
    first = sampling.sample(model, 4, y=torch.arange(4), generator=g)
    second = sampling.sample(model, 2, y=torch.arange(4, 6), generator=g)
    assert got.shape == (6, 1, 28, 28) and set(got.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(got, torch.cat([first, second]))


def test_benchmark_scores_latent_and_autoregressive_models_and_stores_legibility(tiny_trained_dir, tmp_path):
    from benchmarks import sample_quality
    from explorer import checkpoints
    from tests.helpers import REPLAY_EPOCHS, benchmark_setup

    folder, data = benchmark_setup(tiny_trained_dir, tmp_path, ("mnist-vae", "mnist-pixelcnn", "mnist-dcgan",
                                                                 "mnist-classifier"), n_train=64)
    out = tmp_path / "quality.md"
    sample_quality.main(["--trained", str(folder), "--data-dir", str(data), "--n", "8", "--n-autoregressive", "8", "--threads", "1",
                         "--write-metadata", "--report", str(out)])
    rows = {ln.split("|")[1].strip(): ln for ln in out.read_text().splitlines() if ln.startswith("| mnist-")}
    assert set(rows) == {"mnist-vae", "mnist-pixelcnn", "mnist-dcgan"}
    assert "mnist (binary)" in rows["mnist-pixelcnn"] and "mnist (binary)" not in rows["mnist-vae"]
    for stem in rows:
        m = checkpoints.load(folder / f"{stem}.safetensors").metrics
        assert 0 <= m["legible"] <= 1 and 0 <= m["test_legible"] <= 1
        assert sum(m["sample_class_histogram"]) == 8
        assert "probability >= 0.9" in m["how"]["legible"] and "(seed 0)" in m["how"]["legible"]
    # The GAN's training replay: a row per stored epoch, and the summary the collapse target reads.
    text = out.read_text()
    replay = text.split("## Training replay: mnist-dcgan")[1]
    epochs = [int(ln.split("|")[1]) for ln in replay.splitlines() if ln.split("|")[1:2] and ln.split("|")[1].strip().isdigit()]
    assert epochs == list(range(1, REPLAY_EPOCHS + 1))
    assert f"epochs with 1-3 classes: " in replay and f"of {REPLAY_EPOCHS}" in replay


def test_benchmark_draws_with_the_seed_it_is_given(tiny_trained_dir, tmp_path, monkeypatch):
    from benchmarks import sample_quality
    from explorer import checkpoints
    from tests.helpers import benchmark_setup

    folder, data = benchmark_setup(tiny_trained_dir, tmp_path, ("mnist-vae", "mnist-classifier"), n_train=64)
    seeds, draw = [], metrics.model_samples
    monkeypatch.setattr(sample_quality.metrics, "model_samples",
                        lambda model, n, seed=0, **kw: seeds.append(seed) or draw(model, n, seed=seed, **kw))
    sample_quality.main(["--trained", str(folder), "--data-dir", str(data), "--n", "8", "--threads", "1",
                         "--seed", "5", "--write-metadata", "--report", str(tmp_path / "quality.md")])
    assert seeds == [5]
    assert "(seed 5)" in checkpoints.load(folder / "mnist-vae.safetensors").metrics["how"]["legible"]
