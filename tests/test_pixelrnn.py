"""PixelRNN (Row LSTM, Diagonal BiLSTM): skewing, causality, receptive fields, the fast
stepper against the parallel pass, exact likelihoods, checkpoints, completion, the CLI."""

from __future__ import annotations

import pytest
import torch

from explorer import checkpoints, data, sampling
from explorer.models import build
from explorer.models.pixelrnn import skew, unskew
from tests.helpers import random_images, write_fake_dataset
from train.__main__ import main as train_main

# Tiny models: 8x8 images, 8 channels, a 3x3 mask-A first layer (it reaches p = 1 pixel), 2 layers.
TINY = {"channels": 8, "layers": 2, "first_kernel": 3, "data_shape": [1, 8, 8]}
MODELS = ["row_lstm", "diagonal_bilstm"]
VARIANTS = {f"{name}-{out}": (name, out) for name in MODELS for out in ("bernoulli", "categorical256")}


def tiny(key: str, **extra):
    name, output = VARIANTS[key] if key in VARIANTS else (key, "bernoulli")
    torch.manual_seed(0)
    return build(name, {**TINY, "output": output, **extra}).eval()


def seen(model, row: int, col: int) -> torch.Tensor:
    """(H, W) bool: the pixels the prediction at (row, col) depends on."""
    return sampling.receptive_field(model, row, col, probes=8, generator=torch.Generator().manual_seed(row)) > 0


def earlier(row: int, col: int, height: int = 8, width: int = 8) -> torch.Tensor:
    """(H, W) bool: every pixel before (row, col) in raster order, the whole causal context."""
    return (torch.arange(height * width) < row * width + col).view(height, width)


def test_skew_shifts_row_i_right_by_i_and_unskew_undoes_it_exactly():
    x = torch.randn(2, 3, 4, 5)
    s = skew(x)
    assert s.shape == (2, 3, 4, 5 + 4 - 1)
    for i in range(4):
        assert torch.equal(s[:, :, i, i:i + 5], x[:, :, i])
        assert not s[:, :, i, :i].any() and not s[:, :, i, i + 5:].any()   # the rest is zero padding
    assert torch.equal(unskew(s), x)
    # a skewed column is an anti-diagonal of the image: column 2 holds (0, 2), (1, 1), (2, 0)
    assert torch.equal(s[0, 0, :3, 2], torch.stack([x[0, 0, 0, 2], x[0, 0, 1, 1], x[0, 0, 2, 0]]))
    tall = torch.randn(1, 1, 9, 3)                                            # H > W works too
    assert torch.equal(unskew(skew(tall)), tall)


@pytest.mark.parametrize("name", MODELS)   # the output kind only changes the 1x1 head
def test_output_at_a_pixel_ignores_that_pixel_and_every_later_one(name):
    model = tiny(name)
    for index in range(64):
        row, col = divmod(index, 8)
        field = seen(model, row, col).flatten()
        assert not field[index:].any(), (row, col)
        if col > 0:  # it does see its left neighbour, and the pixel above
            assert field[index - 1], (row, col)
        if row > 0:
            assert field[index - 8], (row, col)


def test_row_lstm_sees_a_triangle_above_and_a_few_pixels_to_the_left():
    model = tiny("row_lstm")
    row, col, p, layers = 6, 4, 1, 2
    # d rows up: columns col - d - p - layers .. col + d + p - 1 (each row up widens it by one
    # on either side); in its own row only the p + layers pixels the input taps reach.
    expected = torch.zeros(8, 8, dtype=torch.bool)
    for d in range(row + 1):
        expected[row - d, max(0, col - d - p - layers):col + d + p] = True
    expected &= earlier(row, col)
    assert torch.equal(seen(model, row, col), expected)
    assert not expected[row, 0] and not expected[row - 1, col + 2]             # context it misses


def test_diagonal_bilstm_sees_the_whole_context_where_pixelcnn_has_a_blind_spot():
    diagonal = tiny("diagonal_bilstm")
    pixelcnn = build("pixelcnn", {"channels": 8, "layers": 2, "first_kernel": 3, "kernel": 3,
                                  "data_shape": [1, 8, 8]}).eval()
    row, col = 6, 2
    field, blind, triangle = seen(diagonal, row, col), seen(pixelcnn, row, col), seen(tiny("row_lstm"), row, col)
    # Up-right, several columns away: seen by the Diagonal BiLSTM, not by PixelCNN or the Row LSTM.
    for r, c in [(row - 1, col + 3), (row - 1, col + 4), (row - 2, col + 5)]:
        assert field[r, c] and not blind[r, c] and not triangle[r, c]
    # Everything before (row, col), but for the last pixel of the row above: only features
    # at row `row` right of col could hold it (the mask-A layer reaches p = 1 column), and
    # those are later pixels. Close enough to the right edge it is seen too.
    expected = earlier(row, col)
    expected[row - 1, 7] = False
    assert torch.equal(field, expected)
    assert torch.equal(seen(diagonal, row, 6), earlier(row, 6))


SHAPES = {"wide": [1, 5, 9], "tall": [1, 9, 5]}   # H != W: the skew is no longer square


@pytest.mark.parametrize("key", [*VARIANTS, "row_lstm:wide", "diagonal_bilstm:wide", "diagonal_bilstm:tall"])
def test_fast_stepper_logits_match_the_parallel_pass_at_every_pixel(key):
    name, _, shape = key.partition(":")
    model = tiny(name, data_shape=SHAPES[shape]) if shape else tiny(key)
    _, height, width = model.data_shape
    x = random_images(model, 3)
    full = model.logits(x)[:, :, 0]                                        # (N, K, H, W)
    stepper = model.fast_stepper(3)
    for index in range(height * width):
        row, col = divmod(index, width)
        torch.testing.assert_close(stepper.logits_at(x, row, col), full[:, :, row, col], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_cached_and_naive_samplers_give_identical_samples(key):
    model = tiny(key)
    for seed, temperature in ((7, 1.0), (11, 0.7)):
        runs = {method: sampling.sample(model, 3, generator=torch.Generator().manual_seed(seed),
                                        temperature=temperature, method=method)
                for method in ("naive", "cached")}
        assert torch.equal(runs["naive"], runs["cached"])
    images = runs["cached"]
    if model.output_kind == "bernoulli":
        assert set(images.unique().tolist()) <= {0.0, 1.0}
    else:
        assert torch.equal(torch.round(images * 255) / 255, images) and len(images.unique()) > 20


def test_cached_sampler_never_reruns_the_whole_network(monkeypatch):
    for name in MODELS:
        model = tiny(name)

        def refuse(*args, **kwargs):
            raise AssertionError("the cached path ran the full parallel pass")
        monkeypatch.setattr(model, "logits", refuse)
        image = sampling.sample(model, 2, method="cached", generator=torch.Generator().manual_seed(0))
        assert image.shape == (2, 1, 8, 8)


@pytest.mark.parametrize("key", list(VARIANTS))
def test_log_prob_is_minus_the_sum_of_the_pixel_nll_map(key):
    model = tiny(key)
    x = random_images(model, 4)
    nll_map = model.pixel_nll(x)
    assert nll_map.shape == (4, 1, 8, 8) and (nll_map >= 0).all()
    torch.testing.assert_close(model.log_prob(x), -nll_map.sum((1, 2, 3)))


@pytest.mark.parametrize("name", MODELS)
def test_probabilities_of_all_binary_images_sum_to_one(name):
    torch.manual_seed(0)
    model = build(name, {**TINY, "data_shape": [1, 3, 3]}).eval()
    every_image = torch.tensor([[(i >> b) & 1 for b in range(9)] for i in range(512)]).float().view(-1, 1, 3, 3)
    with torch.no_grad():
        total = model.log_prob(every_image).double().exp().sum()
    assert abs(float(total) - 1.0) < 1e-4


@pytest.mark.parametrize("key", list(VARIANTS))
def test_checkpoint_round_trip_gives_identical_logits(key, tmp_path):
    model = tiny(key)
    x = random_images(model, 3)
    path = tmp_path / "m.safetensors"
    checkpoints.save(path, model, dataset="mnist", metrics={"test_nll": 1.0, "headline": "test_nll"})
    loaded = checkpoints.load(path).model
    assert loaded.name == model.name and loaded.config == model.config and loaded.kind == "autoregressive"
    with torch.no_grad():
        assert torch.equal(loaded.logits(x), model.logits(x))


@pytest.mark.parametrize("name", MODELS)
def test_bad_config_is_refused_with_a_sentence(name):
    with pytest.raises(ValueError, match="first_kernel must be odd"):
        build(name, {"first_kernel": 4})
    with pytest.raises(ValueError, match="output must be"):
        build(name, {"output": "gaussian"})
    with pytest.raises(ValueError, match="layers must be at least 1"):
        build(name, {"layers": 0})
    with pytest.raises(ValueError, match="unknown config keys"):
        build(name, {"kernel": 3})
    with pytest.raises(ValueError, match="one-channel"):
        build(name, {"data_shape": [3, 8, 8]})


@pytest.mark.parametrize("key", list(VARIANTS))
def test_completion_keeps_every_given_pixel(key):
    model = tiny(key)
    g = torch.Generator().manual_seed(3)
    given = random_images(model, 1, seed=5)[0]                            # (1, 8, 8)
    for mask in (sampling.top_rows_mask(model, 4), torch.rand((1, 8, 8), generator=g) < 0.4):
        runs = [sampling.complete(model, given, mask, n=4, generator=torch.Generator().manual_seed(1), method=m)
                for m in ("naive", "cached")]
        assert torch.equal(*runs)
        assert torch.equal(runs[1][:, mask], given[mask].expand(4, -1))
        assert len({tuple(img[~mask].tolist()) for img in runs[1]}) > 1   # the rest is sampled afresh


@pytest.mark.parametrize("name", MODELS)
def test_train_cli_writes_a_loadable_checkpoint(name, tmp_path):
    data_dir = write_fake_dataset(tmp_path / "data", "mnist", n_train=64, n_test=16)
    out = tmp_path / f"mnist-{name}.safetensors"
    rc = train_main([name, "--dataset", "mnist", "--epochs", "1", "--out", str(out), "--data-dir", str(data_dir),
                     "--set", "channels=4", "layers=1", "--no-progress", "--state-dir", str(tmp_path)])
    assert rc == 0
    ckpt = checkpoints.load(out)
    assert ckpt.model.name == name and ckpt.model.config["channels"] == 4
    assert ckpt.metrics["headline"] == "test_nll"
    # the metric is the model's exact NLL of the fixed binarized test set
    test = data.fixed_binarized_test(data.load_split("mnist", "test", data_dir).images)
    with torch.no_grad():
        nll = float(-ckpt.model.log_prob(test).double().mean())
    assert abs(ckpt.metrics["test_nll"] - nll) < 1e-4 * nll
