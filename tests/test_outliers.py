"""Outlier scores, thresholds read off data, AUROC."""

from __future__ import annotations

import itertools

import pytest
import torch

from explorer import outliers


def brute_force_auroc(inliers, outliers_):
    pairs = list(itertools.product(inliers.tolist(), outliers_.tolist()))
    return sum(1.0 if o > i else 0.5 if o == i else 0.0 for i, o in pairs) / len(pairs)


def test_auroc_is_the_chance_an_outlier_scores_above_an_inlier():
    g = torch.Generator().manual_seed(0)
    inl = torch.randint(0, 8, (40,), generator=g).double()      # many ties on purpose
    out = torch.randint(3, 12, (30,), generator=g).double()
    assert outliers.auroc(inl, out) == pytest.approx(brute_force_auroc(inl, out))
    assert outliers.auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 1.0
    assert outliers.auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 0.0
    assert outliers.auroc(torch.ones(5), torch.ones(7)) == 0.5
    with pytest.raises(ValueError):
        outliers.auroc(torch.tensor([]), torch.ones(2))


def test_threshold_comes_from_the_data_and_flags_its_share_of_them():
    g = torch.Generator().manual_seed(0)
    low, high = torch.randn(10_000, generator=g), 100 + 5 * torch.randn(10_000, generator=g)
    a, b = outliers.threshold_from(low), outliers.threshold_from(high)
    assert a.value != b.value and b.value > 100          # a different test set moves the line
    assert a.n == 10_000 and a.quantile == outliers.DEFAULT_QUANTILE
    assert float(a.flags(low).double().mean()) == pytest.approx(0.01, abs=0.001)
    assert float(outliers.threshold_from(low, 0.9).flags(low).double().mean()) == pytest.approx(0.1, abs=0.001)
    assert bool(a.flags(a.value + 1e-6)) and not bool(a.flags(a.value))
    assert "99th percentile of 10000 real test images" in a.describe(" nats")
    with pytest.raises(ValueError):
        outliers.threshold_from(low, 1.0)
    with pytest.raises(ValueError):
        outliers.threshold_from(torch.tensor([1.0]))


def test_a_stored_spread_places_values_and_gives_the_same_threshold_as_the_scores():
    scores = torch.randn(5000, generator=torch.Generator().manual_seed(0)) * 10 + 90
    spread = outliers.Spread.of(scores)
    assert spread.n == 5000 and len(spread.percentiles) == 101
    assert spread.threshold().value == pytest.approx(outliers.threshold_from(scores).value, rel=1e-9)
    assert spread.threshold(0.5).value == pytest.approx(float(scores.median()), abs=0.01)
    assert spread.percentile_of(float(scores.min()) - 1) == 0.0
    assert spread.percentile_of(float(scores.max()) + 1) == 100.0
    assert spread.percentile_of(spread.percentiles[25]) == pytest.approx(25)
    assert outliers.Spread.from_json(spread.to_json()).threshold().value == pytest.approx(spread.threshold().value,
                                                                                          abs=1e-3)
    with pytest.raises(ValueError):
        outliers.Spread.from_json({"percentiles": [3.0, 2.0], "n": 2})


def test_scores_are_higher_for_stranger_images():
    probs = torch.tensor([[0.98, 0.01, 0.01], [0.4, 0.3, 0.3]])
    doubt = outliers.classifier_doubt(probs)
    assert doubt[1] > doubt[0] and doubt[0] == pytest.approx(0.02)
    log_lik = torch.tensor([[-80.0, -120.0], [-300.0, -310.0]])
    assert torch.equal(outliers.conditional_doubt(log_lik), torch.tensor([80.0, 300.0]))


def test_png_complexity_is_zero_for_a_blank_image_and_grows_with_clutter():
    blank = torch.zeros(1, 1, 28, 28)
    bar = blank.clone()
    bar[:, :, 10:14, 4:24] = 1
    noise = (torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    c = outliers.png_complexity(torch.cat([blank, bar, noise]))
    assert c[0] == 0.0 and 0 < c[1] < c[2]
    # Grey images are compressed as 8-bit grey: grey noise costs more than binary noise.
    grey = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert outliers.png_complexity(grey)[0] > c[2]
    corrected = outliers.complexity_corrected(torch.tensor([100.0, 100.0, 100.0]), c)
    assert corrected[0] == 100.0 and corrected[2] < corrected[1]
    with pytest.raises(ValueError):
        outliers.png_complexity(torch.zeros(28, 28))
