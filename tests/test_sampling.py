"""The streaming sampler: cached == naive for a seed, completion, the stream, receptive fields."""

from __future__ import annotations

import pytest
import torch

from explorer import sampling
from explorer.models.base import AutoregressiveModel
from tests.helpers import PIXELCNN_VARIANTS, labels, tiny_pixelcnn


def draw_both(model, n: int = 3, seed: int = 7, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    y = labels(model, n)
    naive = sampling.sample(model, n, y=y, generator=torch.Generator().manual_seed(seed), method="naive", **kwargs)
    cached = sampling.sample(model, n, y=y, generator=torch.Generator().manual_seed(seed), method="cached", **kwargs)
    return naive, cached


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_cached_and_naive_samplers_give_identical_samples(key):
    model = tiny_pixelcnn(key)
    naive, cached = draw_both(model)
    assert torch.equal(naive, cached)
    levels = {0.0, 1.0} if model.output_kind == "bernoulli" else None
    if levels:
        assert set(naive.unique().tolist()) <= levels
    else:
        assert torch.equal(torch.round(naive * 255) / 255, naive)
        assert len(naive.unique()) > 20   # 256-way draws spread over many levels
    # and the same with a temperature and another seed
    naive, cached = draw_both(model, seed=11, temperature=0.7)
    assert torch.equal(naive, cached)


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_cached_stepper_logits_match_the_parallel_pass(key):
    model = tiny_pixelcnn(key)
    x = sampling.sample(model, 2, y=labels(model, 2), generator=torch.Generator().manual_seed(0))
    full = model.logits(x, labels(model, 2))[:, :, 0]               # (N, K, H, W)
    stepper = model.fast_stepper(2, labels(model, 2))
    for index in range(100):
        row, col = divmod(index, 10)
        torch.testing.assert_close(stepper.logits_at(x, row, col), full[:, :, row, col], rtol=1e-5, atol=1e-5)


def test_cached_sampler_never_reruns_the_whole_network(monkeypatch):
    for key in ("pixelcnn", "gated-256-classes"):
        model = tiny_pixelcnn(key)

        def refuse(*args, **kwargs):
            raise AssertionError("the cached path ran the full parallel pass")
        monkeypatch.setattr(model, "logits", refuse)
        image = sampling.sample(model, 2, y=labels(model, 2), method="cached",
                                generator=torch.Generator().manual_seed(0))
        assert image.shape == (2, 1, 10, 10)


@pytest.mark.parametrize("key", list(PIXELCNN_VARIANTS))
def test_completion_keeps_every_given_pixel_and_matches_naive(key):
    model = tiny_pixelcnn(key)
    g = torch.Generator().manual_seed(3)
    given = sampling.sample(model, 1, y=labels(model, 1), generator=g)[0]          # (1, 10, 10)
    masks = {"top half": sampling.top_rows_mask(model, 5),
             "scattered": torch.rand((1, 10, 10), generator=g) < 0.4}
    for what, mask in masks.items():
        naive, cached = draw_both(model, n=4, known=given, known_mask=mask)
        assert torch.equal(naive, cached), what
        for images in (naive, cached):
            assert torch.equal(images[:, mask], given[mask].expand(4, -1)), what
        # the hidden pixels are sampled afresh: the four completions differ
        assert len({tuple(img[~mask].tolist()) for img in cached}) > 1, what


def test_every_step_of_a_completion_shows_the_given_pixels_and_flags_them():
    model = tiny_pixelcnn("gated")
    given = (torch.arange(100).view(1, 10, 10) % 3 == 0).float()
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[:, :, :5] = True                                              # the left half is given
    for step in sampling.sample_stream(model, 2, known=given, known_mask=mask,
                                       generator=torch.Generator().manual_seed(0)):
        assert torch.equal(step.image[:, mask], given[mask].expand(2, -1))
        assert step.sampled.tolist() == [step.col >= 5] * 2


def test_stream_yields_every_pixel_in_raster_order_with_its_distribution():
    model = tiny_pixelcnn("pixelcnn-256")
    steps = list(sampling.sample_stream(model, 2, generator=torch.Generator().manual_seed(0)))
    assert [(s.row, s.col) for s in steps] == [divmod(i, 10) for i in range(100)]
    assert [s.index for s in steps] == list(range(100)) and steps[0].total == 100
    final = steps[-1].image
    for step in steps:
        assert step.probs.shape == (2, 256)
        torch.testing.assert_close(step.probs.sum(1), torch.ones(2))
        flat = step.image.flatten(1)
        assert torch.equal(flat[:, :step.index + 1], final.flatten(1)[:, :step.index + 1])  # decided so far
        assert not flat[:, step.index + 1:].any()                                         # not yet drawn
        assert step.sampled.all()
    # the images are snapshots: later steps did not change earlier ones
    assert not steps[0].image.flatten(1)[:, 1:].any()
    # Bernoulli: the distribution is p(pixel = 1), one number per sample
    step = next(sampling.sample_stream(tiny_pixelcnn("gated"), 3))
    assert step.probs.shape == (3, 1) and ((step.probs > 0) & (step.probs < 1)).all()


def test_same_seed_same_samples_other_seed_other_samples():
    model = tiny_pixelcnn("gated")
    a, b, c = (sampling.sample(model, 2, generator=torch.Generator().manual_seed(s)) for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_temperature_sharpens_the_predictive_distribution():
    model = tiny_pixelcnn("pixelcnn-256")
    first = {t: next(sampling.sample_stream(model, 1, temperature=t)).probs[0] for t in (0.5, 1.0, 2.0)}
    entropy = {t: float(-(p * p.log()).sum()) for t, p in first.items()}
    assert entropy[0.5] < entropy[1.0] < entropy[2.0]
    logits = model.logits(torch.zeros(1, 1, 10, 10))[0, :, 0, 0, 0]
    torch.testing.assert_close(first[0.5], torch.softmax(logits / 0.5, 0))
    with pytest.raises(ValueError, match="temperature"):
        sampling.sample_stream(model, 1, temperature=0)   # raised at the call, before any step


class IndependentPixels(AutoregressiveModel):
    """Every pixel independent with learnt logits: no fast stepper, so only the naive path."""

    name = "test_independent"
    defaults = {"output": "bernoulli", "data_shape": [1, 8, 8], "num_classes": 0}

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.pixel_logits = torch.nn.Parameter(torch.zeros(self.num_logits, *self.data_shape))

    def logits(self, x, y=None):
        return self.pixel_logits.expand(x.shape[0], *self.pixel_logits.shape)


def test_any_autoregressive_model_streams_through_the_naive_path_and_draws_are_calibrated():
    model = IndependentPixels()
    with torch.no_grad():
        model.pixel_logits.fill_(torch.logit(torch.tensor(0.7)).item())
    images = sampling.sample(model, 64, generator=torch.Generator().manual_seed(0))   # 4096 pixels
    assert abs(float(images.mean()) - 0.7) < 0.03
    with pytest.raises(ValueError, match="no cached sampler"):
        sampling.sample(model, 1, method="cached")
    # a 256-way model: the inverse-CDF draw follows the distribution (mass on levels 10 and 200)
    model = IndependentPixels(output="categorical256")
    with torch.no_grad():
        model.pixel_logits.fill_(-30.0)
        model.pixel_logits[10] = 0.0
        model.pixel_logits[200] = torch.log(torch.tensor(3.0))
    levels = torch.round(sampling.sample(model, 64, generator=torch.Generator().manual_seed(0)) * 255)
    assert set(levels.unique().tolist()) == {10.0, 200.0}
    assert abs(float((levels == 200).float().mean()) - 0.75) < 0.03


def test_receptive_field_shows_causality_and_the_blind_spot():
    plain, gated = tiny_pixelcnn("pixelcnn"), tiny_pixelcnn("gated")
    row, col = 6, 4
    for model in (plain, gated):
        field = sampling.receptive_field(model, row, col, probes=8, generator=torch.Generator().manual_seed(0))
        assert field.shape == (10, 10) and float(field.max()) == 1.0
        flat = field.flatten()
        assert not flat[row * 10 + col:].any()            # itself and every later pixel: unseen
        assert field[row, col - 1] > 0 and field[row - 1, col] > 0
    plain_field = sampling.receptive_field(plain, row, col, probes=8)
    gated_field = sampling.receptive_field(gated, row, col, probes=8)
    assert plain_field[row - 1, col + 3] == 0 and gated_field[row - 1, col + 3] > 0
    with pytest.raises(ValueError, match="outside"):
        sampling.receptive_field(gated, 10, 0)


def test_bad_completion_inputs_get_a_sentence():
    model = tiny_pixelcnn("pixelcnn")
    mask = sampling.top_rows_mask(model, 3)
    with pytest.raises(ValueError, match="binary"):
        sampling.complete(model, torch.full((1, 10, 10), 0.5), mask)
    with pytest.raises(ValueError, match="broadcast"):
        sampling.complete(model, torch.zeros(1, 7, 7), mask)
    with pytest.raises(ValueError, match="both"):
        sampling.sample(model, 1, known=torch.zeros(1, 10, 10))
