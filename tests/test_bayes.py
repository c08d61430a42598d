"""Bayes' rule between the three kinds of model: generative classification and resampling."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from explorer import bayes
from explorer.models import build

# A tiny class-conditional gated PixelCNN on 2x3 binary images: small enough to enumerate
# all 64 images, so sums over x are exact.
ENUMERABLE = {"channels": 4, "layers": 2, "first_kernel": 3, "kernel": 3, "num_classes": 3,
              "data_shape": [1, 2, 3]}


def conditional_model(**extra):
    torch.manual_seed(0)
    model = build("gated_pixelcnn", {**ENUMERABLE, **extra}).eval()
    for layer in model.layers:  # class biases start at zero; make the classes differ
        torch.nn.init.normal_(layer.class_bias.weight, std=0.5)
    return model


def every_binary_image(shape) -> torch.Tensor:
    c, h, w = shape
    bits = torch.tensor(list(itertools.product([0.0, 1.0], repeat=c * h * w)))
    return bits.view(-1, c, h, w)


def test_class_log_likelihoods_match_scoring_one_label_at_a_time():
    model = conditional_model()
    x = every_binary_image(model.data_shape)[::5]
    batched = bayes.class_log_likelihoods(model, x, batch_size=4)
    assert batched.shape == (len(x), 3) and batched.dtype == torch.float64
    for y in range(3):
        one = model.log_prob(x, torch.full((len(x),), y)).double()
        assert torch.allclose(batched[:, y], one, atol=1e-5)


def test_posterior_sums_to_one_and_is_bayes_rule():
    model = conditional_model()
    x = every_binary_image(model.data_shape)
    log_lik = bayes.class_log_likelihoods(model, x)
    prior = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64).log()
    post, evidence = bayes.posterior(log_lik, prior)
    assert torch.allclose(post.sum(1), torch.ones(len(x), dtype=torch.float64))
    assert bool((post >= 0).all())
    # Bayes' rule term by term: p(y|x) p(x) = p(x|y) p(y).
    assert torch.allclose(post * evidence.exp()[:, None], log_lik.exp() * prior.exp(), atol=1e-12)
    # p(x) from the conditional model is a distribution over images...
    assert math.isclose(float(evidence.exp().sum()), 1.0, abs_tol=1e-5)
    # ...and averaging the posterior over it gives back the prior: sum_x p(y|x) p(x) = p(y).
    assert torch.allclose((post * evidence.exp()[:, None]).sum(0), prior.exp(), atol=1e-5)


def test_uniform_prior_is_the_default_and_training_frequencies_are_used_when_given():
    log_lik = torch.tensor([[-10.0, -10.0]])
    assert torch.allclose(bayes.posterior(log_lik)[0], torch.tensor([[0.5, 0.5]], dtype=torch.float64))
    prior = bayes.log_prior_from_labels(torch.tensor([0, 0, 0, 1]), 2)   # add-one: 4/6, 2/6
    assert torch.allclose(bayes.posterior(log_lik, prior)[0], torch.tensor([[4 / 6, 2 / 6]], dtype=torch.float64))
    assert bool(torch.isfinite(bayes.log_prior_from_labels(torch.tensor([0, 0]), 3)).all())


def test_posterior_does_not_underflow_for_images_hundreds_of_nats_unlikely():
    post, evidence = bayes.posterior(torch.tensor([[-900.0, -902.0, -1500.0]]))
    assert torch.allclose(post.sum(1), torch.ones(1, dtype=torch.float64))
    assert math.isclose(float(post[0, 0]), 1 / (1 + math.exp(-2)), rel_tol=1e-9)
    assert math.isfinite(float(evidence))


def test_the_conditional_model_is_causal_for_every_label():
    """The logits at a pixel depend on no pixel at or after it, whatever the label."""
    model = conditional_model(data_shape=[1, 6, 6], channels=12)
    _, height, width = model.data_shape
    g = torch.Generator().manual_seed(0)
    for y in range(model.num_classes):
        for row, col in itertools.product(range(height), range(width)):
            x = (torch.rand((32, *model.data_shape), generator=g) < 0.5).float().requires_grad_(True)
            out = model.logits(x, torch.full((32,), y))[:, :, :, row, col]
            (grad,) = torch.autograd.grad(out.pow(2).sum() + out.sum(), x)
            seen = grad.abs().sum((0, 1)).flatten()
            index = row * width + col
            assert torch.equal(seen[index:], torch.zeros_like(seen[index:])), (y, row, col)
            if col > 0:   # and it does see its neighbours to the left and above
                assert seen[index - 1] > 0, (y, row, col)
            if row > 0:
                assert seen[index - width] > 0, (y, row, col)


def test_an_unconditional_model_is_refused_with_a_sentence():
    model = build("gated_pixelcnn", {**ENUMERABLE, "num_classes": 0})
    with pytest.raises(ValueError, match="not class-conditional"):
        bayes.class_log_likelihoods(model, every_binary_image(model.data_shape))


def test_effective_sample_size_runs_from_one_to_n():
    assert bayes.effective_sample_size(torch.ones(50)) == pytest.approx(50)
    assert bayes.effective_sample_size(torch.tensor([0.0, 3.0, 0.0])) == pytest.approx(1)
    assert bayes.effective_sample_size(torch.tensor([1.0, 1.0, 0.0, 0.0])) == pytest.approx(2)
    assert bayes.effective_sample_size(torch.zeros(4)) == 0.0
    with pytest.raises(ValueError):
        bayes.effective_sample_size(torch.tensor([1.0, -1.0]))


def test_resampling_follows_the_weights_and_never_picks_a_zero_weight():
    weights = torch.tensor([0.0, 1.0, 3.0, 0.0])
    picks = bayes.resample(weights, 40_000, torch.Generator().manual_seed(0))
    counts = torch.bincount(picks, minlength=4).double() / len(picks)
    assert counts[0] == 0 and counts[3] == 0
    assert counts[2] == pytest.approx(0.75, abs=0.01)
    again = bayes.resample(weights, 100, torch.Generator().manual_seed(0))
    assert torch.equal(again, bayes.resample(weights, 100, torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="every weight is zero"):
        bayes.resample(torch.zeros(3), 5)


def test_resampling_unconditional_draws_by_the_posterior_recovers_the_conditional():
    """Enumerate p(x) from the conditional model's evidence; draws from it weighted by
    p(y=2 | x) and resampled land on each image with probability p(x | y=2)."""
    model = conditional_model()
    x = every_binary_image(model.data_shape)
    log_lik = bayes.class_log_likelihoods(model, x)
    post, evidence = bayes.posterior(log_lik)
    g = torch.Generator().manual_seed(1)
    draws = torch.multinomial(evidence.exp(), 200_000, replacement=True, generator=g)   # x_i ~ p(x)
    chosen = draws[bayes.resample(post[draws, 2], 200_000, g)]
    freq = torch.bincount(chosen, minlength=len(x)).double() / len(chosen)
    assert torch.allclose(freq, log_lik[:, 2].exp(), atol=0.01)
