"""One image under three kinds of model: what `judge` gathers, and conditional generation two ways."""

from __future__ import annotations

import pytest
import torch

from explorer import three_kinds
from explorer.models import build

AR = {"channels": 8, "layers": 2, "first_kernel": 3}


@pytest.fixture(scope="module")
def models() -> three_kinds.ThreeKinds:
    torch.manual_seed(0)
    return three_kinds.ThreeKinds(
        classifier=build("classifier", {"channels": 4, "features": 16}).eval(),
        density=build("gated_pixelcnn", AR).eval(),
        conditional=build("gated_pixelcnn", {**AR, "num_classes": 10}).eval())


def grey_images(n: int) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_judge_gathers_every_kind_and_bayes_posteriors_sum_to_one(models):
    x = grey_images(3)
    j = models.judge(x, batch_size=2)
    assert j.classifier_probs.shape == (3, 10) and j.bayes_probs.shape == (3, 10)
    assert torch.allclose(j.classifier_probs.sum(1), torch.ones(3, dtype=torch.float64))
    assert torch.allclose(j.bayes_probs.sum(1), torch.ones(3, dtype=torch.float64))
    # The density model scores the image cut at 0.5, as the app shows it.
    binary = (x >= 0.5).float()
    assert torch.allclose(j.nll, -models.density.log_prob(binary).double(), atol=1e-4)
    assert torch.allclose(j.class_log_likelihoods[:, 4],
                          models.conditional.log_prob(binary, torch.full((3,), 4)).double(), atol=1e-4)
    scores = j.scores()
    assert set(scores) == {three_kinds.CLASSIFIER, three_kinds.DENSITY, three_kinds.CONDITIONAL, three_kinds.CORRECTED}
    assert all(s.shape == (3,) for s in scores.values())
    assert torch.allclose(scores[three_kinds.CONDITIONAL], -j.class_log_likelihoods.max(1).values)


def test_missing_models_leave_their_scores_out(models):
    only_classifier = three_kinds.ThreeKinds(classifier=models.classifier)
    assert set(only_classifier.judge(grey_images(2)).scores()) == {three_kinds.CLASSIFIER}


def test_an_8bit_density_model_scores_grey_levels():
    model = build("gated_pixelcnn", {**AR, "output": "categorical256"}).eval()
    x = grey_images(2)
    j = three_kinds.ThreeKinds(density=model).judge(x)
    assert torch.allclose(j.nll, -model.log_prob(torch.round(x * 255) / 255).double(), atol=1e-3)


def test_conditional_generation_two_ways(models):
    g = torch.Generator().manual_seed(0)
    direct = three_kinds.from_conditional(models.conditional, 3, 2, g)
    assert direct.shape == (2, 1, 28, 28) and bool(((direct == 0) | (direct == 1)).all())
    found = three_kinds.by_bayes(models.density, models.classifier, 3, draws=6, keep=4, generator=g)
    assert found.draws.shape == (6, 1, 28, 28) and found.images.shape == (4, 1, 28, 28)
    assert 1.0 <= found.effective_sample_size <= 6.0
    probs = torch.softmax(models.classifier(found.draws).double(), 1)[:, 3]
    assert torch.allclose(found.weights, probs)
    with pytest.raises(ValueError, match="class must be one of 0..9"):
        three_kinds.by_bayes(models.density, models.classifier, 12, draws=2, keep=1, generator=g)


def test_a_verdict_compares_with_the_test_spread_and_says_nothing_without_one():
    from explorer import outliers

    spread = outliers.Spread.of(torch.arange(1000).double())
    high = three_kinds.Verdict(three_kinds.DENSITY, 995.0, spread)
    low = three_kinds.Verdict(three_kinds.DENSITY, 10.0, spread)
    assert high.outlier is True and low.outlier is False
    assert high.threshold.value == pytest.approx(989.01)
    assert low.percentile == pytest.approx(1.0, abs=0.01)
    unknown = three_kinds.Verdict(three_kinds.DENSITY, 10.0, None)
    assert unknown.outlier is None and unknown.threshold is None and unknown.percentile is None
    metrics = {"test_nll_spread": spread.to_json()}
    assert three_kinds.stored_spread(metrics, three_kinds.DENSITY).n == 1000
    assert three_kinds.stored_spread(metrics, three_kinds.CONDITIONAL) is None


def test_the_most_ambiguous_image_is_torn_between_the_two_classes():
    probs = torch.tensor([[0.9, 0.05, 0.05], [0.45, 0.1, 0.45], [0.3, 0.1, 0.6], [0.1, 0.45, 0.45]])
    assert three_kinds.most_ambiguous(probs, 0, 2) == 1
    assert three_kinds.most_ambiguous(probs, 1, 2) == 3
